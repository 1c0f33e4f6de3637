/**
 * `deno task bench:pages`: server time of the admin pages with 1,000 sources in the list,
 * against the JSON list endpoint in the same run. Target: every page under 50 ms (median).
 *
 * In-process through `app.request`, so the figures are the app's own time (routing, the
 * session check, queries, rendering), not the network's. The database is an in-memory
 * PGlite (the default `deno task start` setup), or a scratch database on the PostgreSQL at
 * BENCH_POSTGRES_URL (the production setup), with 1,000 sources created through
 * createSource (encrypted secrets and all); one of them has a discovered schema and 50
 * recorded tests for the detail page.
 *
 * The list page shows 50 rows a page. One more line renders all 1,000 rows on one page; it
 * is informative, set against the JSON endpoint returning the same 1,000 rows, because
 * there the time is mostly the query that both share.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { parseConfig } from "../config.ts";
import { createSession } from "../routes/_auth.ts";
import { createSource } from "../routes/data_sources.ts";
import { createApp } from "../routes/mod.ts";
import { createDeps } from "../main.ts";
import { openDatabase } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import { connectionTests, schemaSnapshots } from "../db/schema.ts";
import { createUser } from "../db/users.ts";
import { verifyKeyring } from "../vault/keys.ts";
import { createVault, generateKeyHex, parseKeyring } from "../vault/mod.ts";
import type { Discovery, Stream } from "../connectors/types.ts";

const SOURCES = 1000;
const TARGET_MS = 50;
const WARMUP = 15;
const ITERATIONS = Number(Deno.env.get("BENCH_ITERATIONS") ?? 60);

const types = ["POSTGRESQL", "MYSQL", "REST_API", "S3"] as const;
const statuses = ["CONNECTED", "ERROR", "CONFIGURING", "DISCONNECTED"] as const;

function sourceInput(index: number) {
  const type = types[index % types.length];
  const name = `Source ${String(index).padStart(4, "0")}`;
  const description = `Benchmark source number ${index}`;
  switch (type) {
    case "POSTGRESQL":
    case "MYSQL":
      return {
        name,
        description,
        type,
        host: `db-${index}.internal`,
        database: "shop",
        username: "reader",
        password: `password-${index}`,
      };
    case "REST_API":
      return {
        name,
        description,
        type,
        apiKey: `key-${index}`,
        configuration: {
          endpoint: `https://api-${index}.example.com/items`,
          auth: { type: "apiKey" },
        },
      };
    case "S3":
      return {
        name,
        description,
        type,
        configuration: {
          bucketName: `bucket-${index}`,
          region: "eu-west-1",
          accessKey: "AKIAEXAMPLE",
          secretKey: `secret-${index}`,
        },
      };
  }
}

/** A store-like schema: 12 tables of 10 columns with keys, for the detail page. */
function schema(): Discovery {
  const streams: Stream[] = [];
  for (let table = 0; table < 12; table++) {
    streams.push({
      name: `table_${table}`,
      schema: "public",
      kind: "table",
      columns: Array.from({ length: 10 }, (_, column) => ({
        name: column === 0 ? "id" : `column_${column}`,
        type: column === 0 ? "integer" : "text",
        nullable: column !== 0,
        primaryKey: column === 0,
      })),
      rowCount: 1000 * (table + 1),
      rowCountExact: true,
      constraints: {
        primaryKeys: ["id"],
        foreignKeys: table > 0
          ? [{
            columns: ["column_1"],
            referencedTable: `table_${table - 1}`,
            referencedColumns: ["id"],
          }]
          : [],
        uniqueKeys: [],
      },
    });
  }
  return { streams };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))];
}

/** A throwaway database on a PostgreSQL server; dropped by the returned function. */
async function scratchDatabase(adminUrl: string) {
  const name = `dafel_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** `target`: held to the 50 ms target; `baseline`: the JSON endpoint; `info`: reported only. */
type Kind = "target" | "baseline" | "info";

type Case = {
  label: string;
  path: string;
  kind: Kind;
  /** The line it is compared with (defaults to the first). */
  against?: number;
  headers?: Record<string, string>;
};

async function main() {
  const postgresUrl = Deno.env.get("BENCH_POSTGRES_URL");
  const scratch = postgresUrl ? await scratchDatabase(postgresUrl) : undefined;
  console.log(
    `Setting up ${SOURCES} sources in ${
      scratch ? "a scratch PostgreSQL database" : "an in-memory PGlite database"
    }...`,
  );
  const database = scratch
    ? await openDatabase({ url: scratch.url, max: 5 })
    : await openDatabase({ dataDir: "memory://" });
  const vault = await createVault(parseKeyring(generateKeyHex()));
  await verifyKeyring(database.db, vault);
  const dataDir = await Deno.makeTempDir({ prefix: "dafel-bench-pages-" });
  const config = parseConfig({ DATA_DIR: dataDir, JOBS: "false" });
  const deps = createDeps({ config, database, vault });
  const app = createApp(deps);
  const admin = await createUser(database.db, {
    email: "bench@example.com",
    password: "bench-password",
    role: "ADMIN",
  });
  const user = { id: admin!.id, email: admin!.email, role: admin!.role };
  let detailId = "";
  for (let index = 0; index < SOURCES; index++) {
    const row = await createSource(deps, user, sourceInput(index));
    if (index === SOURCES - 1) detailId = row.id;
  }
  // Statuses spread like a real fleet's, so the badges and filters have work to do.
  await database.db.execute(sql.raw(
    `update data_sources set status = (array[${
      statuses.map((status) => `'${status}'`).join(",")
    }])[1 + (abs(hashtext(id)) % 4)]::data_source_status, avg_response_time = 10 + abs(hashtext(name)) % 90, last_connection_test = now()`,
  ));
  await database.db.insert(schemaSnapshots).values({
    id: newId(),
    dataSourceId: detailId,
    hash: "bench",
    schema: schema(),
  });
  await database.db.insert(connectionTests).values(
    Array.from({ length: 50 }, (_, index) => ({
      id: newId(),
      dataSourceId: detailId,
      testedAt: new Date(Date.now() - (50 - index) * 60_000),
      success: index % 9 !== 4,
      responseTime: 10 + (index * 37) % 60,
      errorCode: index % 9 === 4 ? "TIMEOUT" : null,
    })),
  );
  const session = await createSession(database.db, user.id, 24);
  const cookie = `dafel_session=${session.token}`;

  const fragment = { "hx-request": "true", "hx-target": "source-results" };
  const cases: Case[] = [
    {
      label: "JSON  GET /api/data-sources?limit=50",
      path: "/api/data-sources?limit=50",
      kind: "baseline",
    },
    {
      label: "JSON  GET /api/data-sources (all 1,000)",
      path: "/api/data-sources",
      kind: "baseline",
    },
    { label: "page  GET /data-sources (50 rows of 1,000)", path: "/data-sources", kind: "target" },
    {
      label: "frag  GET /data-sources?search=source 09 (htmx)",
      path: "/data-sources?search=source%2009",
      kind: "target",
      headers: fragment,
    },
    {
      label: "frag  GET /data-sources?type=S3&status=ERROR (htmx)",
      path: "/data-sources?type=S3&status=ERROR",
      kind: "target",
      headers: fragment,
    },
    {
      label: "page  GET /data-sources?page=20 (last page)",
      path: "/data-sources?page=20",
      kind: "target",
    },
    {
      label: "page  GET /data-sources/:id (detail)",
      path: `/data-sources/${detailId}`,
      kind: "target",
    },
    {
      label: "page  GET /data-sources/new?type=REST_API",
      path: "/data-sources/new?type=REST_API",
      kind: "target",
    },
    {
      label: "page  GET /data-sources?limit=1000 (all on one page)",
      path: "/data-sources?limit=1000",
      kind: "info",
      against: 1,
    },
  ];

  async function once(item: Case): Promise<{ ms: number; bytes: number }> {
    const started = performance.now();
    const response = await app.request(`http://localhost${item.path}`, {
      headers: { cookie, ...item.headers },
    });
    const body = await response.text();
    const ms = performance.now() - started;
    if (response.status !== 200) throw new Error(`${item.path}: HTTP ${response.status}`);
    return { ms, bytes: body.length };
  }

  const samples = new Map<Case, number[]>(cases.map((item) => [item, []]));
  const sizes = new Map<Case, number>();
  for (const item of cases) for (let i = 0; i < WARMUP; i++) await once(item);
  // Interleaved in a new random order each round, so machine noise (other processes on
  // shared cores) and garbage collection after a large response hit every case alike.
  for (let i = 0; i < ITERATIONS; i++) {
    const order = [...cases].sort(() => Math.random() - 0.5);
    for (const item of order) {
      const { ms, bytes } = await once(item);
      samples.get(item)!.push(ms);
      sizes.set(item, bytes);
    }
  }

  console.log(
    `\n${ITERATIONS} requests each, interleaved in random order; server time in ms (in-process app.request)\n`,
  );
  console.log(
    `${"request".padEnd(56)}${"median".padStart(8)}${"p95".padStart(8)}${"KiB".padStart(7)}` +
      `${"vs JSON".padStart(9)}  result`,
  );
  let failed = false;
  for (const item of cases) {
    const values = samples.get(item)!;
    const mid = median(values);
    const baseline = median(samples.get(cases[item.against ?? 0])!);
    const verdict = item.kind === "target"
      ? (mid < TARGET_MS ? "PASS" : "FAIL")
      : item.kind === "baseline"
      ? "baseline"
      : "info";
    if (verdict === "FAIL") failed = true;
    console.log(
      `${item.label.padEnd(56)}${mid.toFixed(1).padStart(8)}${
        percentile(values, 0.95).toFixed(1).padStart(8)
      }${(sizes.get(item)! / 1024).toFixed(0).padStart(7)}${
        `${(mid / baseline).toFixed(2)}x`.padStart(9)
      }  ${verdict}`,
    );
  }
  console.log(
    `\nTarget: every page under ${TARGET_MS} ms (median) with ${SOURCES} sources: ${
      failed ? "FAIL" : "PASS"
    }`,
  );
  await database.close();
  await scratch?.drop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  if (failed) Deno.exit(1);
}

await main();
