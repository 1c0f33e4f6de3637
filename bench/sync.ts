/**
 * `deno task bench:sync`: syncs 1,000,000 rows × 10 columns from PostgreSQL and from
 * MariaDB into PostgreSQL through the real sync path (job, runner, connector read, COPY
 * loader), and moves the same rows with the native tools in the same run:
 *
 *   psql -c "\copy (select ...) to stdout" | psql -c "\copy ... from stdin"
 *   mariadb --batch --quick -e "select ..." | psql -c "\copy ... from stdin"
 *
 * Targets: the sync at least 50% of the pipe's rows per second, a peak memory under 256 MB,
 * and about the same peak at 4,000,000 rows as at 1,000,000 (memory must not grow with the
 * row count). The sync runs in a child process (bench/_sync_child.ts) that reports its own
 * peak resident set size (VmHWM). The machine is shared, so each comparison runs a few
 * rounds of the two sides back to back, in alternating order, and the median of the rounds'
 * ratios is compared with the target. Every database it makes is named dafel_bench_* and is
 * dropped at the end. BENCH_ROWS and BENCH_LARGE_ROWS change the two sizes (0 skips the
 * larger runs); BENCH_ROUNDS the rounds (3); the sync child runs with the V8 flags of
 * `deno task start` (BENCH_CHILD_V8_FLAGS tries others).
 */
import mysql2 from "mysql2/promise";
import postgres from "postgres";
import { openDatabase } from "../db/mod.ts";
import { createUser } from "../db/users.ts";
import { createDeps } from "../main.ts";
import { parseConfig } from "../config.ts";
import { createSource } from "../routes/data_sources.ts";
import { writeSyncSettings } from "../sync/settings.ts";
import { verifyKeyring } from "../vault/keys.ts";
import { createVault, generateKeyHex, parseKeyring } from "../vault/mod.ts";
import { startTaskV8Flags } from "./_start_flags.ts";

const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 1_000_000);
const LARGE_ROWS = Number(Deno.env.get("BENCH_LARGE_ROWS") ?? 4_000_000);
/** V8 flags for the sync child: the start task's, unless BENCH_CHILD_V8_FLAGS tries others. */
const CHILD_V8_FLAGS = Deno.env.get("BENCH_CHILD_V8_FLAGS") ?? await startTaskV8Flags();
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
const TARGET_RATIO = 0.5;
const MEMORY_LIMIT_MB = 256;
/** "About the same": the larger run may peak at most this much higher. */
const MEMORY_GROWTH_LIMIT = 1.25;
const PG = { host: "127.0.0.1", port: 5432, user: "postgres" };
const MY = { host: "127.0.0.1", port: 3306, user: "root", password: "" };
/** The MySQL connector needs a password: the sync reads as a user made for the run. */
const MY_READER = { user: "dafel_bench_reader", password: "dafel-bench-reader" };

const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 8);
const names = {
  app: `dafel_bench_app_${suffix}`,
  source: `dafel_bench_src_${suffix}`,
  pipe: `dafel_bench_pipe_${suffix}`,
  mysql: `dafel_bench_my_${suffix}`,
};
const pgUrl = (database: string) => `postgres://${PG.user}@${PG.host}:${PG.port}/${database}`;

const COLUMNS_PG = `id bigint primary key, name text not null, qty integer, price numeric(12,2),
  updated_at timestamptz, active boolean, hash text, bucket bigint, score double precision,
  day date`;
const COLUMNS_MY = `id bigint primary key, name varchar(64) not null, qty int, price decimal(12,2),
  updated_at datetime(6), active tinyint(1), hash char(32), bucket bigint, score double,
  day date`;

function pgRows(table: string, from: number, to: number): string {
  return `insert into ${table} select g, 'name ' || g, g % 1000, g * 1.5, timestamptz '2024-01-01'
    + g * interval '1 second', g % 2 = 0, md5(g::text), g % 7, g / 7.0, date '2020-01-01' + g % 1000
    from generate_series(${from}, ${to}) g`;
}

function myRows(table: string, from: number, to: number): string {
  return `insert into ${table} select seq, concat('name ', seq), seq % 1000, seq * 1.5,
    timestamp '2024-01-01 00:00:00' + interval seq second, seq % 2 = 0, md5(seq), seq % 7, seq / 7.0,
    date '2020-01-01' + interval (seq % 1000) day from seq_${from}_to_${to}`;
}

async function run(command: string, args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(command, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** Seconds a shell pipeline takes, start to end. */
async function timePipe(pipeline: string): Promise<number> {
  const started = performance.now();
  await run("bash", ["-o", "pipefail", "-c", pipeline]);
  return (performance.now() - started) / 1000;
}

type SyncRun = { records: number; seconds: number; peakMb: number };

async function timeSync(appUrl: string, masterKey: string, sourceId: string): Promise<SyncRun> {
  const child = new URL("./_sync_child.ts", import.meta.url).pathname;
  const flags = CHILD_V8_FLAGS ? [`--v8-flags=${CHILD_V8_FLAGS}`] : [];
  const output = await run("deno", ["run", "-A", ...flags, child, appUrl, sourceId], {
    DAFEL_BENCH_MASTER_KEY: masterKey,
  });
  const result = JSON.parse(output.trim().split("\n").at(-1)!);
  if (result.status !== "SUCCEEDED") throw new Error(`Sync ${result.status}: ${result.error}`);
  return { records: result.records, seconds: result.ms / 1000, peakMb: result.peakMb };
}

/** A source of the bench table `table`, syncing only that stream. */
async function addSource(
  deps: ReturnType<typeof createDeps>,
  options: {
    user: { id: string; email: string; role: "ADMIN" | "USER" };
    type: "POSTGRESQL" | "MYSQL";
    table: string;
  },
): Promise<string> {
  const { type, table } = options;
  const row = await createSource(
    deps,
    options.user,
    {
      name: `${type} ${table}`,
      type,
      host: type === "POSTGRESQL" ? PG.host : MY.host,
      port: type === "POSTGRESQL" ? PG.port : MY.port,
      database: type === "POSTGRESQL" ? names.source : names.mysql,
      username: type === "POSTGRESQL" ? PG.user : MY_READER.user,
      password: type === "POSTGRESQL" ? "unused-with-trust-auth" : MY_READER.password,
    } as Parameters<typeof createSource>[2],
  );
  const stream = type === "POSTGRESQL" ? `public.${table}` : `${names.mysql}.${table}`;
  await writeSyncSettings(deps.db, { sourceId: row.id, input: { streams: [stream] } });
  return row.id;
}

const admin = postgres(pgUrl("postgres"), { max: 1, onnotice: () => {} });
let my: mysql2.Connection | undefined;

async function cleanup() {
  for (const name of [names.app, names.source, names.pipe]) {
    await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
  }
  await my?.query(`drop database if exists ${names.mysql}`).catch(() => {});
  await my?.query(`drop user if exists '${MY_READER.user}'@'%'`).catch(() => {});
  await my?.end().catch(() => {});
  await admin.end();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function rate(rows: number, seconds: number): string {
  return `${Math.round(rows / seconds).toLocaleString("en-US")} rows/s`;
}

try {
  for (const name of [names.app, names.source, names.pipe]) {
    await admin.unsafe(`create database ${name}`);
  }
  console.log(
    `Preparing ${ROWS.toLocaleString("en-US")} rows × 10 columns in PostgreSQL and MariaDB…`,
  );
  const sourceSql = postgres(pgUrl(names.source), { max: 1, onnotice: () => {} });
  await sourceSql.unsafe(`create table bench (${COLUMNS_PG})`);
  await sourceSql.unsafe(pgRows("bench", 1, ROWS));
  await sourceSql.unsafe(`create table bench_large (${COLUMNS_PG})`);
  await sourceSql.unsafe(pgRows("bench_large", 1, LARGE_ROWS));
  await sourceSql.unsafe(`vacuum analyze`);
  await sourceSql.end();
  const pipe = postgres(pgUrl(names.pipe), { max: 1, onnotice: () => {} });
  await pipe.unsafe(`create table bench_pg (${COLUMNS_PG}); create table bench_my (${COLUMNS_PG})`);

  my = await mysql2.createConnection({ ...MY, multipleStatements: true });
  await my.query(`create database ${names.mysql}`);
  await my.query(
    `create or replace user '${MY_READER.user}'@'%' identified by '${MY_READER.password}'`,
  );
  await my.query(`grant select, show view on ${names.mysql}.* to '${MY_READER.user}'@'%'`);
  await my.query(`use ${names.mysql}`);
  await my.query(`create table bench (${COLUMNS_MY})`);
  await my.query(myRows("bench", 1, ROWS));
  await my.query(`create table bench_large (${COLUMNS_MY})`);
  await my.query(myRows("bench_large", 1, LARGE_ROWS));

  // The app database and one source per table: PostgreSQL and MariaDB, 1M and 4M rows.
  const masterKey = generateKeyHex();
  const appUrl = pgUrl(names.app);
  const database = await openDatabase({ url: appUrl, max: 2 });
  const vault = await createVault(parseKeyring(masterKey));
  await verifyKeyring(database.db, vault);
  const deps = createDeps({
    config: parseConfig({
      DATABASE_URL: appUrl,
      ENCRYPTION_MASTER_KEY: masterKey,
      DEMO_DB: "false",
    }),
    database,
    vault,
  });
  const owner = await createUser(database.db, {
    email: "bench@example.com",
    password: "bench-password",
    role: "ADMIN",
  });
  const user = { id: owner!.id, email: owner!.email, role: owner!.role };
  const sources = {
    pg: await addSource(deps, { user, type: "POSTGRESQL", table: "bench" }),
    pgLarge: await addSource(deps, { user, type: "POSTGRESQL", table: "bench_large" }),
    my: await addSource(deps, { user, type: "MYSQL", table: "bench" }),
    myLarge: await addSource(deps, { user, type: "MYSQL", table: "bench_large" }),
  };
  await database.close();

  const psql = `psql -X -q -h ${PG.host} -p ${PG.port} -U ${PG.user}`;
  if (CHILD_V8_FLAGS) console.log(`\nSync child V8 flags: ${CHILD_V8_FLAGS}`);
  const comparisons = [
    {
      label: "PostgreSQL → PostgreSQL",
      pipeLabel: "psql \\copy | psql \\copy",
      pipe: `${psql} -d ${names.source} -c "\\copy (select * from bench) to stdout" | ` +
        `${psql} -d ${names.pipe} -c "\\copy bench_pg from stdin"`,
      pipeTable: "bench_pg",
      source: sources.pg,
      large: sources.pgLarge,
    },
    {
      label: "MariaDB → PostgreSQL",
      pipeLabel: "mariadb --batch --quick | psql \\copy",
      pipe: `mariadb -h ${MY.host} -P ${MY.port} -u ${MY.user} --batch --quick ` +
        `--skip-column-names -e "select * from bench" ${names.mysql} | ` +
        `${psql} -d ${names.pipe} -c "\\copy bench_my from stdin with (null 'NULL')"`,
      pipeTable: "bench_my",
      source: sources.my,
      large: sources.myLarge,
    },
  ];
  const results = [];
  for (const comparison of comparisons) {
    console.log(`\n${comparison.label} (${ROUNDS} rounds, the two sides back to back)`);
    const ratios: number[] = [];
    const syncs: SyncRun[] = [];
    const pipes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first: the machine is shared, a pair sees the same load.
      let pipeSeconds = 0;
      let sync: SyncRun | undefined;
      for (const side of round % 2 === 0 ? ["pipe", "sync"] : ["sync", "pipe"]) {
        if (side === "pipe") {
          await pipe.unsafe(`truncate ${comparison.pipeTable}`);
          pipeSeconds = await timePipe(comparison.pipe);
        } else {
          sync = await timeSync(appUrl, masterKey, comparison.source);
        }
      }
      const ratio = (sync!.records / sync!.seconds) / (ROWS / pipeSeconds);
      ratios.push(ratio);
      syncs.push(sync!);
      pipes.push(pipeSeconds);
      console.log(
        `  round ${round + 1}: pipe (${comparison.pipeLabel}) ${pipeSeconds.toFixed(2)} s, ` +
          `${rate(ROWS, pipeSeconds)}; sync ${sync!.seconds.toFixed(2)} s, ` +
          `${rate(sync!.records, sync!.seconds)}, peak ${sync!.peakMb.toFixed(0)} MB; ` +
          `ratio ${ratio.toFixed(2)}`,
      );
    }
    const large = LARGE_ROWS
      ? await timeSync(appUrl, masterKey, comparison.large)
      : { records: 0, seconds: 1, peakMb: 0 };
    if (LARGE_ROWS) {
      console.log(
        `  ${LARGE_ROWS.toLocaleString("en-US")} rows: sync ${large.seconds.toFixed(2)} s, ` +
          `${rate(large.records, large.seconds)}, peak ${large.peakMb.toFixed(0)} MB`,
      );
    }
    results.push({ comparison, ratios, syncs, pipes, large });
  }

  const checks: [string, boolean][] = [];
  for (const { comparison, ratios, syncs, large } of results) {
    const ratio = median(ratios);
    const peak = Math.max(...syncs.map((sync) => sync.peakMb));
    const growth = LARGE_ROWS ? large.peakMb / peak : 1;
    console.log(`\n${comparison.label}`);
    console.log(
      `  rows/s ratio sync/pipe: median ${ratio.toFixed(2)} of ${
        ratios.map((value) => value.toFixed(2)).join(", ")
      } (target ≥ ${TARGET_RATIO})`,
    );
    console.log(
      `  peak memory: ${peak.toFixed(0)} MB at ${ROWS.toLocaleString("en-US")} rows` +
        (LARGE_ROWS
          ? `, ${large.peakMb.toFixed(0)} MB at ${LARGE_ROWS.toLocaleString("en-US")} rows ` +
            `(×${growth.toFixed(2)})`
          : "") +
        ` (target < ${MEMORY_LIMIT_MB} MB, ×≤ ${MEMORY_GROWTH_LIMIT})`,
    );
    checks.push([`${comparison.label} speed`, ratio >= TARGET_RATIO]);
    checks.push([
      `${comparison.label} peak memory`,
      Math.max(peak, large.peakMb) < MEMORY_LIMIT_MB,
    ]);
    if (LARGE_ROWS) {
      checks.push([
        `${comparison.label} memory flat from 1M to 4M rows`,
        growth <= MEMORY_GROWTH_LIMIT,
      ]);
    }
    checks.push([
      `${comparison.label} rows`,
      syncs.every((sync) => sync.records === ROWS) && (!LARGE_ROWS || large.records === LARGE_ROWS),
    ]);
  }
  console.log("");
  for (const [label, ok] of checks) console.log(`${ok ? "PASS" : "FAIL"}  ${label}`);
  const passed = checks.every(([, ok]) => ok);
  console.log(passed ? "\nPASS" : "\nFAIL");
  await pipe.end();
  await cleanup();
  Deno.exit(passed ? 0 : 1);
} catch (error) {
  console.error(error);
  await cleanup();
  Deno.exit(1);
}
