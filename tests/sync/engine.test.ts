// deno-lint-ignore-file no-explicit-any
/**
 * The engine in one process on the embedded database: work left by a dead process is
 * settled at start (runs failed, jobs back in the queue, staging tables dropped), a cron
 * schedule runs a sync by itself, and stopping the instance mid-run fails the run and hands
 * its job to the next instance, which finishes it.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataSources, dataSourceSyncLogs, jobs, syncSettings } from "../../db/schema.ts";
import { INTERRUPTED } from "../../sync/jobs.ts";
import { recoverInterruptedWork, startSyncEngine } from "../../sync/mod.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { requestSync } from "../../sync/requests.ts";
import { json, startHttpServer, type TestServer } from "../helpers/http_fixtures.ts";
import { createSource, rawRows, startSyncApp, waitFor } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;
let api: TestServer;
let gate: Promise<void> = Promise.resolve();
let openGate: () => void = () => {};

const ENGINE = {
  pollMs: 50,
  heartbeatMs: 100,
  tickMs: 100,
  tuning: { batchSize: 200, progressMs: 0 },
};

/** Another instance of the app, as after a restart. */
function restartEngine() {
  app.engine = startSyncEngine(app.t.deps, ENGINE);
}

function closeGate() {
  gate = new Promise<void>((resolve) => (openGate = resolve));
}

beforeAll(async () => {
  api = startHttpServer(async (_request, url) => {
    const page = Number(url.searchParams.get("page") ?? 1);
    if (page === 2) await gate;
    // Discovery samples the first page only (600 rows are enough for it).
    const rows = page > 2 ? [] : Array.from({ length: 600 }, (_, i) => ({
      id: (page - 1) * 600 + i + 1,
      name: `row ${i}`,
    }));
    return json(rows);
  });
  app = await startSyncApp({
    backend: "pglite",
    env: { ALLOW_PRIVATE_NETWORKS: "true" },
    engine: ENGINE,
  });
});
afterAll(async () => {
  openGate();
  await app?.close();
  await api?.close();
});

async function apiSource(name: string) {
  return await createSource(app.t, app.cookie, {
    name,
    type: "REST_API",
    configuration: { endpoint: `${api.origin}/rows`, pagination: { type: "page", maxPages: 5 } },
  });
}

describe("at start", () => {
  it("fails every run left RUNNING on the embedded database and drops its staging table", async () => {
    const db = app.t.deps.db;
    const sourceId = await apiSource("Left behind");
    const queued = await requestSync(db, { sourceId, mode: "full_refresh", trigger: "manual" });
    if (!queued.ok) throw new Error("not queued");
    // What a process killed mid-run leaves: a claimed job, a RUNNING log, a staging table.
    const [log] = await db.select().from(dataSourceSyncLogs)
      .where(eq(dataSourceSyncLogs.id, queued.syncLogId));
    await db.update(jobs).set({
      status: "running",
      lockedBy: "dead-process",
      lockedUntil: new Date(Date.now() + 60_000),
      attempts: 1,
    }).where(eq(jobs.id, log.jobId!));
    await db.update(dataSourceSyncLogs).set({ status: "RUNNING", recordsSync: 42 })
      .where(eq(dataSourceSyncLogs.id, log.id));
    const schema = destinationSchema(sourceId);
    await rawRows(app.t.deps.database, `create schema if not exists "${schema}"`);
    await rawRows(
      app.t.deps.database,
      `create table "${schema}"."_dafel_staging_${log.id}_0" (id int)`,
    );

    await app.engine.stop();
    await recoverInterruptedWork(app.t.deps.database);

    const [after] = await db.select().from(dataSourceSyncLogs)
      .where(eq(dataSourceSyncLogs.id, log.id));
    expect(after).toMatchObject({ status: "FAILED", errorMessage: INTERRUPTED, recordsSync: 42 });
    const [job] = await db.select().from(jobs).where(eq(jobs.id, log.jobId!));
    // One attempt of two used: the job waits for the next runner.
    expect(job).toMatchObject({ status: "queued", lockedBy: null });
    const [source] = await db.select().from(dataSources).where(eq(dataSources.id, sourceId));
    expect(source).toMatchObject({ totalSyncs: 1, failedSyncs: 1 });
    const staging = await rawRows<any>(
      app.t.deps.database,
      `select tablename from pg_tables where schemaname = '${schema}'`,
    );
    expect(staging).toEqual([]);

    // The next runner takes the job and runs it as attempt 2.
    restartEngine();
    const retried = await waitFor("the job's second attempt", async () => {
      const logs = await db.select().from(dataSourceSyncLogs)
        .where(eq(dataSourceSyncLogs.jobId, log.jobId!));
      return logs.find((entry) => entry.attempt === 2 && entry.status === "SUCCEEDED");
    });
    expect(retried.recordsSync).toBe(1200);
  });
});

describe("schedules", () => {
  it("runs a sync when its cron time comes", async () => {
    const db = app.t.deps.db;
    const sourceId = await apiSource("Scheduled");
    const reply = await app.t.call("PUT", `/api/data-sources/${sourceId}/sync-settings`, {
      cookie: app.cookie,
      json: { schedule: "*/10 * * * *" },
    });
    expect(reply.status).toBe(200);
    // Its time has come.
    await db.update(syncSettings).set({ nextRunAt: new Date(Date.now() - 1000) })
      .where(eq(syncSettings.dataSourceId, sourceId));
    const log = await waitFor("the scheduled run", async () => {
      const [row] = await db.select().from(dataSourceSyncLogs)
        .where(eq(dataSourceSyncLogs.dataSourceId, sourceId));
      return row?.status === "SUCCEEDED" ? row : undefined;
    });
    expect(log).toMatchObject({ trigger: "schedule", recordsSync: 1200, requestedById: null });
    const settings = await app.t.call("GET", `/api/data-sources/${sourceId}/sync-settings`, {
      cookie: app.cookie,
    });
    expect(Date.parse(settings.body.nextRunAt)).toBeGreaterThan(Date.now());
  });
});

describe("stopping an instance during a run", () => {
  it("fails the run and hands the job to the next instance", async () => {
    const db = app.t.deps.db;
    const sourceId = await apiSource("Interrupted");
    closeGate();
    const queued = await requestSync(db, { sourceId, mode: "full_refresh", trigger: "manual" });
    if (!queued.ok) throw new Error("not queued");
    await waitFor("the run to wait for page 2", async () => {
      const [row] = await db.select().from(dataSourceSyncLogs)
        .where(eq(dataSourceSyncLogs.id, queued.syncLogId));
      return row.status === "RUNNING" && row.recordsSync >= 600;
    });
    await app.engine.stop();
    const [stopped] = await db.select().from(dataSourceSyncLogs)
      .where(eq(dataSourceSyncLogs.id, queued.syncLogId));
    expect(stopped).toMatchObject({ status: "FAILED", errorMessage: INTERRUPTED });
    const [job] = await db.select().from(jobs).where(eq(jobs.id, stopped.jobId!));
    expect(job.status).toBe("queued");
    const tables = await rawRows<any>(
      app.t.deps.database,
      `select tablename from pg_tables where schemaname = '${destinationSchema(sourceId)}'`,
    );
    expect(tables).toEqual([]);

    openGate();
    restartEngine();
    const second = await waitFor("the next instance to finish the job", async () => {
      const logs = await db.select().from(dataSourceSyncLogs)
        .where(eq(dataSourceSyncLogs.jobId, stopped.jobId!));
      return logs.find((row) => row.attempt === 2 && row.status === "SUCCEEDED");
    });
    expect(second.recordsSync).toBe(1200);
  });
});
