// deno-lint-ignore-file no-explicit-any
/**
 * The embedded mode as an operator runs it: `deno run -A main.ts` with a DATA_DIR, no
 * DATABASE_URL and no key (the app keeps its data in PGlite and generates master.key), the
 * first admin from DAFEL_ADMIN_EMAIL/PASSWORD, jobs on, the demo database on.
 *
 * While sources are being created through the API and a sync loads into PGlite, the process
 * is killed with SIGKILL, then started again on the same DATA_DIR: it starts, every write it
 * acknowledged is there, master.key still decrypts the secrets (a saved source whose server
 * checks its password connects), the demo database opens, and the interrupted sync is
 * marked failed and run again to the end, leaving no staging table behind.
 */
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, queryRows } from "../../db/mod.ts";
import { INTERRUPTED } from "../../sync/jobs.ts";
import { destinationSchema, STAGING_PREFIX } from "../../sync/naming.ts";
import { createScratchDatabase } from "../helpers/app.ts";
import { SLOW_FEED_SQL } from "../helpers/pg_cluster.ts";
import { recordDatabase } from "../helpers/secret_scan.ts";
import { waitFor } from "../helpers/sync.ts";
import { type AppProcess, freePort, logIn, startAppProcess } from "./_app_process.ts";

const ADMIN = { email: "embedded@example.com", password: "embedded-password-1" };
/** A role on the shared PostgreSQL that must give this password (.ci/fixtures.sh). */
const SCRAM = { username: "dafel_t_scram", password: "dafel-scram-fixture" };

let dataDir: string;
let env: Record<string, string>;
let scratch: { url: string; drop(): Promise<void> };
let remote: postgres.Sql;
let app: AppProcess | undefined;
let cookie: string;
let checkedId: string;
let slowId: string;
let killedRunId: string;
const acknowledged: { id: string; name: string }[] = [];

async function runOf(sourceId: string, logId: string): Promise<any> {
  const reply = await app!.call("GET", `/api/data-sources/${sourceId}/sync-logs/${logId}`, {
    cookie,
  });
  return reply.body;
}

async function createSource(body: Record<string, unknown>): Promise<string> {
  const reply = await app!.call("POST", "/api/data-sources", { cookie, json: body });
  expect(reply.status, reply.text).toBe(201);
  return reply.body.id;
}

beforeAll(async () => {
  scratch = await createScratchDatabase();
  remote = postgres(scratch.url, { max: 1, onnotice: () => {} });
  await remote.unsafe(SLOW_FEED_SQL);
  dataDir = await Deno.makeTempDir({ prefix: "dafel-fault-pglite-" });
  env = {
    DATA_DIR: dataDir,
    DAFEL_ADMIN_EMAIL: ADMIN.email,
    DAFEL_ADMIN_PASSWORD: ADMIN.password,
    DEMO_DB_PORT: String(freePort()),
  };
  app = await startAppProcess(env, { secrets: [ADMIN.password, SCRAM.password] });
  cookie = await logIn(app, ADMIN);
}, 120_000);

afterAll(async () => {
  if (app && !app.exited()) await app.kill("SIGKILL");
  await remote?.end({ timeout: 1 });
  await scratch?.drop();
  if (dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
});

describe("the embedded app killed with SIGKILL mid-write", () => {
  it("is killed while it creates sources and syncs into PGlite", async () => {
    const database = new URL(scratch.url).pathname.slice(1);
    checkedId = await createSource({
      name: "Checks its password",
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: 5432,
      database,
      username: SCRAM.username,
      password: SCRAM.password,
    });
    const before = await app!.call("POST", `/api/data-sources/${checkedId}/test`, { cookie });
    expect(before.body.success, before.text).toBe(true);
    slowId = await createSource({
      name: "Slow feed",
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: 5432,
      database,
      username: "postgres",
      password: "trust-auth-ignores-it",
    });
    const settings = await app!.call("PUT", `/api/data-sources/${slowId}/sync-settings`, {
      cookie,
      json: { streams: ["public.feed"] },
    });
    expect(settings.status, settings.text).toBe(200);
    const first = await app!.call("POST", `/api/data-sources/${slowId}/sync`, { cookie });
    expect(first.status, first.text).toBe(202);
    const firstRun = await waitFor("the first sync to end", async () => {
      const run = await runOf(slowId, first.body.syncLogId);
      return run.status === "RUNNING" || run.status === "QUEUED" ? undefined : run;
    }, 60_000);
    expect(firstRun.status, firstRun.errorMessage).toBe("SUCCEEDED");

    // A sync that streams until the kill, and sources created one after another meanwhile.
    await remote`update knobs set rows = 1000000, delay = 0.0005`;
    const second = await app!.call("POST", `/api/data-sources/${slowId}/sync`, { cookie });
    expect(second.status, second.text).toBe(202);
    killedRunId = second.body.syncLogId;
    await waitFor("the second sync to load rows", async () => {
      const run = await runOf(slowId, killedRunId);
      return run.status === "RUNNING" && run.recordsSync > 0;
    }, 60_000);
    let creating = true;
    const creator = (async () => {
      for (let n = 0; creating; n++) {
        const name = `Created ${n}`;
        const reply = await app!.call("POST", "/api/data-sources", {
          cookie,
          json: {
            name,
            type: "MYSQL",
            host: "db.example.com",
            database: "shop",
            username: "reader",
            password: `created-secret-${n}`,
          },
        }).catch(() => null);
        if (!reply) return; // The process is gone: this one was not acknowledged.
        expect(reply.status, reply.text).toBe(201);
        acknowledged.push({ id: reply.body.id, name });
      }
    })();
    await waitFor("some sources to be created", () => Promise.resolve(acknowledged.length >= 20));
    const status = await app!.kill("SIGKILL");
    creating = false;
    await creator;
    expect(status.signal).toBe("SIGKILL");
  }, 180_000);

  it("starts again on the same data directory with every acknowledged write", async () => {
    // The retry of the interrupted run may load the whole view: make it short.
    await remote`update knobs set rows = 1500, delay = 0`;
    app = await startAppProcess(env);
    const health = await app.call("GET", "/api/health");
    expect(health.body).toMatchObject({ status: "ok", database: { ok: true, kind: "pglite" } });
    // The session written before the kill still signs in.
    expect((await app.call("GET", "/api/auth/me", { cookie })).status).toBe(200);
    const list = await app.call("GET", "/api/data-sources?limit=1000", { cookie });
    expect(list.status).toBe(200);
    const stored = new Map(list.body.map((source: any) => [source.id, source.name]));
    for (const { id, name } of acknowledged) expect(stored.get(id), id).toBe(name);
    expect(stored.has(checkedId) && stored.has(slowId)).toBe(true);
  }, 120_000);

  it("still decrypts the saved secrets with master.key, and the demo database opens", async () => {
    const test = await app!.call("POST", `/api/data-sources/${checkedId}/test`, { cookie });
    expect(test.status).toBe(200);
    expect(test.body.success, JSON.stringify(test.body.error)).toBe(true);
    const demo = await app!.call("POST", "/api/test-demo", { cookie });
    expect(demo.body.success, demo.text).toBe(true);
  });

  it("marks the interrupted sync failed and runs it again to the end", async () => {
    const killed = await runOf(slowId, killedRunId);
    expect(killed).toMatchObject({ status: "FAILED", errorMessage: INTERRUPTED });
    expect(killed.completedAt).not.toBeNull();
    const retry = await waitFor("the retry of the interrupted job to end", async () => {
      const runs = await app!.call("GET", `/api/data-sources/${slowId}/sync-logs`, { cookie });
      const next = runs.body.find((run: any) => run.jobId === killed.jobId && run.attempt === 2);
      return next && next.status !== "QUEUED" && next.status !== "RUNNING" ? next : undefined;
    }, 60_000);
    expect(retry.status, retry.errorMessage).toBe("SUCCEEDED");
    expect(retry.recordsSync).toBe(1500);
    const next = await app!.call("POST", `/api/data-sources/${slowId}/sync`, { cookie });
    expect(next.status, next.text).toBe(202);
    const run = await waitFor("a new sync to end", async () => {
      const run = await runOf(slowId, next.body.syncLogId);
      return run.status === "RUNNING" || run.status === "QUEUED" ? undefined : run;
    }, 60_000);
    expect(run.status, run.errorMessage).toBe("SUCCEEDED");
  }, 120_000);

  it("leaves the synced table whole and no staging table, once stopped", async () => {
    const status = await app!.kill("SIGTERM");
    expect(status.code).toBe(0);
    const database = await openDatabase({ dataDir: `${dataDir}/pgdata` });
    try {
      const schema = destinationSchema(slowId);
      const tables = await queryRows<{ name: string }>(
        database.db,
        sql`select tablename as name from pg_tables where schemaname = ${schema}`,
      );
      expect(tables.map((table) => table.name)).toEqual(["feed"]);
      expect(tables.some((table) => table.name.startsWith(STAGING_PREFIX))).toBe(false);
      const [row] = await queryRows<{ n: number }>(
        database.db,
        sql.raw(`select count(*)::int as n from "${schema}"."feed"`),
      );
      expect(row.n).toBe(1500);
      await recordDatabase(database.db);
    } finally {
      await database.close();
    }
  });
});
