// deno-lint-ignore-file no-explicit-any
/**
 * A source's PostgreSQL goes down while the app works with it, and comes back. The server is
 * a cluster this file owns (tests/helpers/pg_cluster.ts); the app is a real one with its
 * sync engine, on the shared PostgreSQL as its own database.
 *
 * While a sync streams and connection tests run, the cluster is stopped (a clean fast
 * shutdown, and an immediate one, like a crash): every test answers with a classified
 * error, the breaker opens and answers without trying, the sync ends FAILED with the
 * reason and leaves the tables of the last good run as they were, and the rest of the app
 * keeps answering. Started again, without restarting the app: the breaker lets a probe
 * through and closes, the pool opens new connections and keeps them, a sync succeeds.
 *
 * Also the driver-level fault behind one of these: the server ending a reading session
 * between two batches must fail the read, not end it as if every row had come.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAILURES_TO_OPEN } from "../../connectors/_breaker.ts";
import { hasPool, poolSummary } from "../../connectors/_pools.ts";
import { breakerState } from "../../connectors/operations.ts";
import { postgres as connector } from "../../connectors/postgres.ts";
import type { ConnectorContext } from "../../connectors/types.ts";
import { destinationSchema, STAGING_PREFIX } from "../../sync/naming.ts";
import {
  createPgCluster,
  type PgCluster,
  SLOW_FEED_SQL,
  type StopMode,
} from "../helpers/pg_cluster.ts";
import {
  createSource,
  rawRows,
  startSyncApp,
  syncedRows,
  syncNow,
  waitFor,
} from "../helpers/sync.ts";

/** The source's connection timeout, so a test against a dead server is bounded by it. */
const CONNECT_TIMEOUT_MS = 2_000;
/** What a test may answer while the server is down or going down. */
const DOWN_CODES = ["CONNECTION_REFUSED", "TIMEOUT"];

let cluster: PgCluster;
let target: postgres.Sql;
let app: Awaited<ReturnType<typeof startSyncApp>>;

/**
 * `items` is a table; `feed` is a view whose rows come as slowly as `knobs` says, so a sync
 * of it is still streaming when the server stops, however fast the machine is.
 */
const TARGET_SQL = `
create table items (id int primary key, label text not null);
insert into items select g, 'item ' || g from generate_series(1, 2000) g;
${SLOW_FEED_SQL}`;

beforeAll(async () => {
  cluster = await createPgCluster();
  const admin = postgres(cluster.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe("create database shop");
  await admin.end();
  target = postgres(cluster.url("shop"), { max: 1, onnotice: () => {} });
  await target.unsafe(TARGET_SQL);
  app = await startSyncApp({ env: { CONNECTION_TESTS_PER_MINUTE: "1000" } });
});

afterAll(async () => {
  await app?.close();
  await target?.end({ timeout: 1 });
  await cluster?.destroy();
});

function circuitOpen(result: any): boolean {
  return result.success === false && /^Not tried/.test(result.message);
}

describe.each<StopMode>(["fast", "immediate"])("the source's PostgreSQL stopped (%s)", (mode) => {
  let sourceId: string;

  async function test(): Promise<any> {
    const reply = await app.t.call("POST", `/api/data-sources/${sourceId}/test`, {
      cookie: app.cookie,
    });
    expect(reply.status, reply.text).toBe(200);
    return reply.body;
  }

  async function count(table: string): Promise<number> {
    const [row] = await syncedRows<{ n: number }>(app.t, {
      sourceId,
      table,
      columns: "count(*)::int as n",
      orderBy: "1",
    });
    return row.n;
  }

  async function stagingTables(): Promise<string[]> {
    const rows = await rawRows<{ tablename: string }>(
      app.t.deps.database,
      `select tablename from pg_tables where schemaname = '${destinationSchema(sourceId)}'`,
    );
    return rows.map((row) => row.tablename).filter((name) => name.startsWith(STAGING_PREFIX));
  }

  beforeAll(async () => {
    await target`update knobs set rows = 1000, delay = 0`;
    sourceId = await createSource(app.t, app.cookie, {
      name: `Owned cluster (${mode})`,
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: cluster.port,
      database: "shop",
      username: "postgres",
      password: "trust-auth-ignores-it",
      configuration: { connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
    });
  });

  it("classifies each test, opens the breaker and fails the sync; the app stays up", async () => {
    expect((await test()).success).toBe(true);
    const first = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(first.status, first.errorMessage).toBe("SUCCEEDED");
    expect(await count("feed")).toBe(1000);
    expect(await count("items")).toBe(2000);

    // The next run streams `feed` slowly; the server stops once rows are coming in.
    await target`update knobs set rows = 1000000, delay = 0.002`;
    const started = await app.t.call("POST", `/api/data-sources/${sourceId}/sync`, {
      cookie: app.cookie,
      json: {},
    });
    expect(started.status).toBe(202);
    const logPath = `/api/data-sources/${sourceId}/sync-logs/${started.body.syncLogId}`;
    await waitFor("the sync to stream its first rows", async () => {
      const log = (await app.t.call("GET", logPath, { cookie: app.cookie })).body;
      return log.status === "RUNNING" && log.recordsSync > 0;
    });

    // Tests go on while the server goes down, then until the breaker answers one.
    const stopping = cluster.stop(mode);
    let stopped = false;
    stopping.then(() => (stopped = true), () => (stopped = true));
    const results: any[] = [];
    while (!stopped) results.push(await test());
    await stopping;
    for (let tries = 0; tries < 30 && !results.some(circuitOpen); tries++) {
      results.push(await test());
    }
    for (const result of results) {
      if (result.success || circuitOpen(result)) continue;
      expect(DOWN_CODES, result.message).toContain(result.error.code);
      expect(result.error.hint).toBeTruthy();
    }
    // The breaker opened after repeated failures, and then answered without trying.
    const opened = results.findIndex(circuitOpen);
    expect(opened, "the breaker never answered a test").toBeGreaterThanOrEqual(0);
    const failures = results.slice(0, opened).filter((result) => !result.success);
    expect(failures.length).toBeGreaterThanOrEqual(FAILURES_TO_OPEN);
    expect(results[opened]).toMatchObject({ stages: [], responseTime: 0 });

    // The running sync ends FAILED with the reason; the tables of the last good run stand.
    const failed = await waitFor("the interrupted sync to end", async () => {
      const log = (await app.t.call("GET", logPath, { cookie: app.cookie })).body;
      return log.status === "RUNNING" || log.status === "QUEUED" ? undefined : log;
    });
    expect(failed.status).toBe("FAILED");
    expect(failed.errorMessage).toMatch(/public\.feed: Reading failed: [A-Z_]+: .*127\.0\.0\.1/);
    expect(failed.streamResults.find((s: any) => s.stream === "public.feed").status)
      .toBe("FAILED");
    expect(await count("feed")).toBe(1000);
    expect(await count("items")).toBe(2000);
    expect(await stagingTables()).toEqual([]);

    // The rest of the app answers as usual, and shows the source as unreachable.
    const health = await app.t.call("GET", "/api/health");
    expect(health.status).toBe(200);
    expect(health.body.database.ok).toBe(true);
    const list = await app.t.call("GET", "/api/data-sources", { cookie: app.cookie });
    expect(list.status).toBe(200);
    const listed = list.body.find((row: any) => row.id === sourceId);
    // It worked before and now cannot be reached: DISCONNECTED (not ERROR, which would point
    // at its settings).
    expect(listed.status).toBe("DISCONNECTED");
    expect(listed.connectionError).toBeTruthy();
    const logs = await app.t.call("GET", `/api/data-sources/${sourceId}/sync-logs`, {
      cookie: app.cookie,
    });
    expect(logs.body.map((log: any) => log.status)).toEqual(["FAILED", "SUCCEEDED"]);
    const page = await app.t.call("GET", `/data-sources/${sourceId}`, { cookie: app.cookie });
    expect(page.status).toBe(200);
    const schema = await app.t.call("GET", `/api/data-sources/${sourceId}/schema`, {
      cookie: app.cookie,
    });
    expect(schema.status).toBe(200);
    expect(schema.body.success).toBe(false);
  }, 120_000);

  it("recovers once the server is back, without restarting the app", async () => {
    await cluster.start();
    await target`update knobs set rows = 1500, delay = 0`;
    // The breaker lets one probe through after its pause; until then tests are not tried.
    let result: any = { success: false };
    for (let tries = 0; tries < 300 && !result.success; tries++) {
      if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      result = await test();
      if (!result.success && !circuitOpen(result)) {
        expect(DOWN_CODES, result.message).toContain(result.error.code);
      }
    }
    expect(result.success, result.message).toBe(true);
    expect(breakerState(sourceId)).toBe("closed");
    // A new connection was opened, and the pool keeps it for the next test.
    expect(result.stages.find((stage: any) => stage.name === "connect").reused).toBeUndefined();
    expect(hasPool(sourceId)).toBe(true);
    const again = await test();
    expect(again.success).toBe(true);
    expect(again.stages.find((stage: any) => stage.name === "connect").reused).toBe(true);

    const next = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(next.status, next.errorMessage).toBe("SUCCEEDED");
    expect(await count("feed")).toBe(1500);
    expect(await count("items")).toBe(2000);
    const source = await app.t.call("GET", `/api/data-sources/${sourceId}`, {
      cookie: app.cookie,
    });
    expect(source.body).toMatchObject({ status: "CONNECTED", connectionError: null });
  }, 120_000);
});

describe("a read whose session the server ends between two batches", () => {
  const ctx: ConnectorContext = {
    network: { allowedHosts: [], allowPrivateNetworks: false },
    // One connection: a read that left it busy would hold up the next one.
    pool: { min: 1, max: 1, idleTimeoutMs: 30_000, connectionTimeoutMs: CONNECT_TIMEOUT_MS },
    filesDir: "/nonexistent",
  };
  const settings = () => ({
    id: "fault-read",
    fingerprint: "fault-read",
    config: connector.configSchema.parse({
      host: "127.0.0.1",
      port: cluster.port,
      database: "shop",
      username: "postgres",
    }),
    secrets: { password: "trust-auth-ignores-it" },
  });

  afterAll(async () => {
    await connector.close("fault-read");
  });

  it("fails with a classified error instead of ending as if every row had come", async () => {
    let rows = 0;
    const read = async () => {
      for await (
        const batch of connector.read(settings(), {
          stream: { schema: "public", name: "items" },
          batchSize: 100,
        }, ctx)
      ) {
        rows += batch.rows.length;
        if (rows === 300) {
          // Between two batches: the session ends while the consumer holds this one, and
          // the driver has seen its connection close before the next batch is asked for.
          await target`select pg_terminate_backend(pid) from pg_stat_activity
            where datname = 'shop' and application_name = 'dafel'`;
          await waitFor(
            "the app's connections to close",
            () => Promise.resolve((poolSummary().POSTGRESQL?.size ?? 0) === 0),
          );
        }
      }
    };
    const error = await read().then(() => null, (error) => error);
    expect(error, `the read ended normally after ${rows} of 2000 rows`).not.toBeNull();
    expect(error.error.code).toMatch(/^[A-Z_]+$/);
    expect(error.error.code).not.toBe("UNKNOWN");
    expect(rows).toBe(300);
  });

  it("stops early on request and leaves its connection ready for the next read", async () => {
    let rows = 0;
    for await (
      const batch of connector.read(settings(), {
        stream: { schema: "public", name: "items" },
        batchSize: 100,
      }, ctx)
    ) {
      rows += batch.rows.length;
      if (rows === 500) break;
    }
    const all: unknown[] = [];
    for await (
      const batch of connector.read(settings(), {
        stream: { schema: "public", name: "items" },
        batchSize: 700,
      }, ctx)
    ) all.push(...batch.rows);
    expect(all.length).toBe(2000);
  });
});
