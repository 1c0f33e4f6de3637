// deno-lint-ignore-file no-explicit-any
/**
 * Real app instances (child `deno run` processes, tests/sync/_instance.ts) on one
 * PostgreSQL: an instance killed with SIGKILL in the middle of a full refresh leaves the old
 * table as it was and no staging table; its run is marked failed once its lease runs out
 * and another instance takes the job again and finishes it. Two instances racing for the
 * same queue run every sync and every health check exactly once.
 */
import { and, eq, sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataSources, dataSourceSyncLogs, jobs } from "../../db/schema.ts";
import { createSource as storeSource } from "../../routes/data_sources.ts";
import type { AppDeps } from "../../routes/_env.ts";
import { INTERRUPTED } from "../../sync/jobs.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { requestSync } from "../../sync/requests.ts";
import { generateKeyHex } from "../../vault/mod.ts";
import { createScratchDatabase } from "../helpers/app.ts";
import { openAppDeps, rawRows, seedOwner, waitFor } from "../helpers/sync.ts";

const INSTANCE = new URL("./_instance.ts", import.meta.url).pathname;

type Instance = { instanceId: string; child: Deno.ChildProcess; stop(): Promise<void> };

let app: { url: string; drop(): Promise<void> };
let sourceDb: { url: string; drop(): Promise<void> };
let source: postgres.Sql;
let deps: AppDeps;
let owner: { id: string; email: string; role: "ADMIN" };
const masterKey = generateKeyHex();
const running = new Set<Instance>();

async function startInstance(args: string[] = []): Promise<Instance> {
  const child = new Deno.Command("deno", {
    args: ["run", "-A", INSTANCE, app.url, ...args],
    env: { DAFEL_TEST_MASTER_KEY: masterKey },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The instance exited before it started");
    output += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { instanceId } = JSON.parse(output.split("\n")[0]);
  const instance: Instance = {
    instanceId,
    child,
    async stop() {
      running.delete(instance);
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
  running.add(instance);
  return instance;
}

async function pgSource(name: string, streams?: string[]): Promise<string> {
  const url = new URL(sourceDb.url);
  const row = await storeSource(deps, owner, {
    name,
    type: "POSTGRESQL",
    host: "127.0.0.1",
    port: 5432,
    database: url.pathname.slice(1),
    username: "postgres",
    password: "trust-auth-ignores-it",
  } as any);
  if (streams) {
    const { writeSyncSettings } = await import("../../sync/settings.ts");
    await writeSyncSettings(deps.db, { sourceId: row.id, input: { streams } });
  }
  return row.id;
}

async function logOf(id: string) {
  const [row] = await deps.db.select().from(dataSourceSyncLogs).where(
    eq(dataSourceSyncLogs.id, id),
  );
  return row;
}

beforeAll(async () => {
  app = await createScratchDatabase();
  sourceDb = await createScratchDatabase();
  deps = await openAppDeps(app.url, masterKey);
  owner = { id: await seedOwner(deps.database), email: "owner@example.com", role: "ADMIN" };
  source = postgres(sourceDb.url, { max: 1, onnotice: () => {} });
  await source.unsafe(`
    create table big (id bigint primary key, label text, amount numeric(12,2), at timestamptz);
    insert into big select g, 'row ' || g, g / 3.0, now() from generate_series(1, 1000) g;
    create table small (id int primary key, label text);
    insert into small select g, 'small ' || g from generate_series(1, 3000) g;
  `);
});

afterAll(async () => {
  await Promise.all([...running].map((instance) => instance.stop()));
  await deps?.database.close();
  await source?.end();
  await app?.drop();
  await sourceDb?.drop();
});

describe("an instance killed during a sync", () => {
  it("leaves the old table, its run failed, and another instance finishes the job", async () => {
    const first = await startInstance();
    const sourceId = await pgSource("Big", ["public.big"]);
    const initial = await requestSync(deps.db, {
      sourceId,
      mode: "full_refresh",
      trigger: "manual",
    });
    if (!initial.ok) throw new Error("not queued");
    await waitFor(
      "the first sync",
      async () => (await logOf(initial.syncLogId)).status === "SUCCEEDED",
    );
    const schema = destinationSchema(sourceId);
    const before = await rawRows<any>(
      deps.database,
      `select count(*)::int as n, sum(id)::text as s from "${schema}"."big"`,
    );
    expect(before[0]).toEqual({ n: 1000, s: "500500" });

    await source.unsafe(
      `insert into big select g, 'row ' || g, g / 3.0, now() from generate_series(1001, 400000) g`,
    );
    const second = await requestSync(deps.db, {
      sourceId,
      mode: "full_refresh",
      trigger: "manual",
    });
    if (!second.ok) throw new Error("not queued");
    await waitFor("the load to be under way", async () => {
      const log = await logOf(second.syncLogId);
      return log.status === "RUNNING" && log.recordsSync >= 20_000;
    });
    first.child.kill("SIGKILL");
    const status = await first.child.status;
    running.delete(first);
    expect(status.signal).toBe("SIGKILL");

    // The old table is whole, and nothing of the half-done load is visible.
    const after = await rawRows<any>(
      deps.database,
      `select count(*)::int as n, sum(id)::text as s from "${schema}"."big"`,
    );
    expect(after[0]).toEqual({ n: 1000, s: "500500" });
    const tables = await rawRows<any>(
      deps.database,
      `select tablename from pg_tables where schemaname = '${schema}'`,
    );
    expect(tables.map((row) => row.tablename)).toEqual(["big"]);
    const killed = await logOf(second.syncLogId);
    expect(killed.status).toBe("RUNNING");
    expect(killed.recordsSync).toBeGreaterThan(0);

    // Another instance: once the lease has run out, it fails the run and takes the job again.
    const next = await startInstance();
    const failed = await waitFor("the killed run to be marked failed", async () => {
      const log = await logOf(second.syncLogId);
      return log.status === "FAILED" ? log : undefined;
    });
    expect(failed.errorMessage).toBe(INTERRUPTED);
    expect(failed.completedAt).not.toBeNull();
    const retry = await waitFor("the job to be run again", async () => {
      const [log] = await deps.db.select().from(dataSourceSyncLogs).where(and(
        eq(dataSourceSyncLogs.jobId, killed.jobId!),
        eq(dataSourceSyncLogs.attempt, 2),
      ));
      return log?.status === "SUCCEEDED" ? log : undefined;
    }, 120_000);
    expect(retry.recordsSync).toBe(400_000);
    const [job] = await deps.db.select().from(jobs).where(eq(jobs.id, killed.jobId!));
    expect(job).toMatchObject({ status: "succeeded", attempts: 2, lockedBy: next.instanceId });
    const loaded = await rawRows<any>(
      deps.database,
      `select count(*)::int as n from "${schema}"."big"`,
    );
    expect(loaded[0].n).toBe(400_000);
    const [totals] = await deps.db.select().from(dataSources).where(eq(dataSources.id, sourceId));
    expect(totals).toMatchObject({ totalSyncs: 3, failedSyncs: 1, totalRecords: 400_000 });
    await next.stop();
  }, 240_000);
});

describe("two instances on one database", () => {
  it("run every queued sync once, both taking part", async () => {
    const sources = [];
    for (let i = 0; i < 8; i++) sources.push(await pgSource(`Small ${i}`, ["public.small"]));
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const requested = await Promise.all(
      sources.map((sourceId) =>
        requestSync(deps.db, { sourceId, mode: "full_refresh", trigger: "manual" })
      ),
    );
    const ids = requested.map((result) => (result.ok ? result.syncLogId : ""));
    await waitFor("every sync to end", async () => {
      const logs = await Promise.all(ids.map(logOf));
      return logs.every((log) => log.status === "SUCCEEDED");
    }, 120_000);
    const logs = await deps.db.select().from(dataSourceSyncLogs)
      .where(sql`${dataSourceSyncLogs.dataSourceId} in ${sources}`);
    expect(logs.length).toBe(8);
    expect(logs.every((log) => log.attempt === 1 && log.recordsSync === 3000)).toBe(true);
    const ran = await deps.db.select().from(jobs).where(sql`${jobs.dataSourceId} in ${sources}`);
    expect(ran.every((job) => job.status === "succeeded" && job.attempts === 1)).toBe(true);
    const byInstance = new Set(ran.map((job) => job.lockedBy));
    expect([...byInstance].sort()).toEqual([a.instanceId, b.instanceId].sort());
    await Promise.all([a.stop(), b.stop()]);
  }, 180_000);

  it("run each 1-second health check slot once per connected source", async () => {
    const sources = [];
    for (let i = 0; i < 3; i++) sources.push(await pgSource(`Checked ${i}`));
    await deps.db.update(dataSources).set({ status: "CONNECTED" })
      .where(sql`${dataSources.id} in ${sources}`);
    const args = ["--tick-ms", "200", "--health-ms", "1000"];
    const instances = await Promise.all([startInstance(args), startInstance(args)]);
    await waitFor("several slots of checks", async () => {
      const rows = await rawRows<any>(
        deps.database,
        `select count(*)::int as n from connection_tests where trigger = 'health'`,
      );
      return rows[0].n >= 12;
    }, 60_000);
    await Promise.all(instances.map((instance) => instance.stop()));
    const checks = await deps.db.select().from(jobs)
      .where(and(eq(jobs.kind, "health_check"), sql`${jobs.dataSourceId} in ${sources}`));
    const finished = checks.filter((job) => job.status === "succeeded" || job.status === "failed");
    const tests = await rawRows<any>(
      deps.database,
      `select data_source_id, count(*)::int as n from connection_tests where trigger = 'health'
        group by 1`,
    );
    // One connection test per finished check job: no check ran twice.
    expect(tests.reduce((sum, row) => sum + row.n, 0)).toBe(finished.length);
    expect(finished.every((job) => job.attempts === 1)).toBe(true);
    // One job per source and slot, whichever instance queued it.
    const keys = checks.map((job) => job.dedupeKey);
    expect(new Set(keys).size).toBe(keys.length);
    const [row] = await deps.db.select().from(dataSources).where(eq(dataSources.id, sources[0]));
    expect(row.status).toBe("CONNECTED");
    expect(row.avgResponseTime).not.toBeNull();
  }, 120_000);
});
