// deno-lint-ignore-file no-explicit-any
/**
 * The jobs table under contention: independent runners on separate connections to one
 * PostgreSQL (as two app instances would be) never run a job twice, a job whose instance
 * stopped is taken again once its lease runs out, a cancel asked on another connection
 * reaches the running handler, and health checks and cron ticks are queued once however
 * many instances ask at the same moment.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppDatabase, openDatabase } from "../../db/mod.ts";
import { dataSourceSyncLogs, jobs, syncSettings } from "../../db/schema.ts";
import { enqueueHealthChecks } from "../../sync/health.ts";
import { claimJobs, enqueueJob, releaseExpiredJobs, requestCancel } from "../../sync/jobs.ts";
import { requestSync } from "../../sync/requests.ts";
import { JobStopped, startJobRunner } from "../../sync/runner.ts";
import { enqueueDueSyncs } from "../../sync/scheduler.ts";
import { nextRunOf, writeSyncSettings } from "../../sync/settings.ts";
import { createScratchDatabase } from "../helpers/app.ts";
import { seedOwner, seedSource, waitFor } from "../helpers/sync.ts";

let scratch: { url: string; drop(): Promise<void> };
let first: AppDatabase;
let second: AppDatabase;
let owner: string;

beforeAll(async () => {
  scratch = await createScratchDatabase();
  first = await openDatabase({ url: scratch.url, max: 4 });
  second = await openDatabase({ url: scratch.url, max: 4 });
  owner = await seedOwner(first);
});
afterAll(async () => {
  await first.close();
  await second.close();
  await scratch.drop();
});

describe("two runners on one PostgreSQL", () => {
  it("run every job exactly once, both taking part", async () => {
    const total = 40;
    for (let i = 0; i < total; i++) {
      await enqueueJob(first.db, { kind: "probe", payload: { n: i } });
    }
    const seen: { job: string; by: string }[] = [];
    const byRunner = new Map<string, number>();
    // Each runner holds its first job until the other has claimed one too: proof that both
    // were claiming at the same time, not one after the other.
    let releaseFirstJobs!: () => void;
    const bothStarted = new Promise<void>((resolve) => (releaseFirstJobs = resolve));
    const handler = (name: string) => async (job: any) => {
      seen.push({ job: job.id, by: name });
      byRunner.set(name, (byRunner.get(name) ?? 0) + 1);
      if (byRunner.size === 2) releaseFirstJobs();
      await bothStarted;
      return { status: "succeeded" as const };
    };
    const a = startJobRunner({
      db: first.db,
      handlers: { probe: handler("a") },
      pollMs: 20,
      concurrency: 3,
    });
    const b = startJobRunner({
      db: second.db,
      handlers: { probe: handler("b") },
      pollMs: 20,
      concurrency: 3,
    });
    try {
      await waitFor("every job to finish", async () => {
        const rows = await first.db.select().from(jobs).where(eq(jobs.kind, "probe"));
        return rows.every((row) => row.status === "succeeded") && rows.length === total;
      });
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(seen.length).toBe(total);
    expect(new Set(seen.map((entry) => entry.job)).size).toBe(total);
    expect(byRunner.get("a")).toBeGreaterThan(0);
    expect(byRunner.get("b")).toBeGreaterThan(0);
    const rows = await first.db.select().from(jobs).where(eq(jobs.kind, "probe"));
    expect(rows.every((row) => row.attempts === 1)).toBe(true);
  });

  it("claims disjoint sets when both claim at the same moment", async () => {
    for (let i = 0; i < 30; i++) await enqueueJob(first.db, { kind: "race", payload: {} });
    const [x, y] = await Promise.all([
      claimJobs(first.db, { instanceId: "x", kinds: ["race"], limit: 20, leaseMs: 60_000 }),
      claimJobs(second.db, { instanceId: "y", kinds: ["race"], limit: 20, leaseMs: 60_000 }),
    ]);
    const ids = [...x, ...y].map((job) => job.id);
    expect(ids.length).toBe(30);
    expect(new Set(ids).size).toBe(30);
  });

  it("take again a job whose instance stopped, once its lease has run out", async () => {
    const job = await enqueueJob(first.db, { kind: "orphan", maxAttempts: 2 });
    // An instance claims it and then dies: nothing renews its short lease.
    const [claimed] = await claimJobs(second.db, {
      instanceId: "dead-instance",
      kinds: ["orphan"],
      limit: 1,
      leaseMs: 300,
    });
    expect(claimed.id).toBe(job!.id);
    const ran: number[] = [];
    const runner = startJobRunner({
      db: first.db,
      pollMs: 50,
      handlers: {
        orphan: (picked) => {
          ran.push(picked.attempts);
          return Promise.resolve({ status: "succeeded" });
        },
      },
    });
    try {
      const done = await waitFor("the orphan to be taken again", async () => {
        const [row] = await first.db.select().from(jobs).where(eq(jobs.id, job!.id));
        return row.status === "succeeded" ? row : undefined;
      });
      expect(done.lockedBy).toBe(runner.instanceId);
      expect(done.attempts).toBe(2);
      expect(ran).toEqual([2]);
    } finally {
      await runner.stop();
    }
  });

  it("fail a job whose instance died on its last attempt", async () => {
    const job = await enqueueJob(first.db, { kind: "doomed", maxAttempts: 1 });
    await claimJobs(second.db, { instanceId: "dead", kinds: ["doomed"], limit: 1, leaseMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const released = await releaseExpiredJobs(first.db);
    expect(released.failed.map((row) => row.id)).toContain(job!.id);
    const [row] = await first.db.select().from(jobs).where(eq(jobs.id, job!.id));
    expect(row.status).toBe("failed");
    expect(row.lastError).toMatch(/stopped before it finished/);
  });

  it("deliver a cancel asked on another connection to the running handler", async () => {
    const job = await enqueueJob(first.db, { kind: "long" });
    let reason: unknown;
    const runner = startJobRunner({
      db: first.db,
      pollMs: 20,
      heartbeatMs: 50,
      handlers: {
        long: (_job, control) =>
          new Promise((resolve) => {
            control.signal.addEventListener("abort", () => {
              reason = control.signal.reason;
              resolve({ status: "cancelled" });
            });
          }),
      },
    });
    try {
      await waitFor("the job to run", async () => {
        const [row] = await second.db.select().from(jobs).where(eq(jobs.id, job!.id));
        return row.status === "running";
      });
      expect(await requestCancel(second.db, job!.id)).toBe("requested");
      const row = await waitFor("the job to end", async () => {
        const [row] = await second.db.select().from(jobs).where(eq(jobs.id, job!.id));
        return row.status === "cancelled" ? row : undefined;
      });
      expect(row.finishedAt).not.toBeNull();
      expect(reason).toBeInstanceOf(JobStopped);
      expect((reason as JobStopped).reason).toBe("cancelled");
    } finally {
      await runner.stop();
    }
  });

  it("put a job back on shutdown only when its handler was interrupted", async () => {
    const finished = await enqueueJob(first.db, { kind: "finishes", maxAttempts: 2 });
    const interrupted = await enqueueJob(first.db, { kind: "interrupted", maxAttempts: 2 });
    const started = new Set<string>();
    const waitForStop = (signal: AbortSignal) =>
      new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    const runner = startJobRunner({
      db: first.db,
      pollMs: 20,
      concurrency: 2,
      handlers: {
        // Its work was done when the stop came: it must not run again.
        finishes: async (job, control) => {
          started.add(job.id);
          await waitForStop(control.signal);
          return { status: "succeeded" };
        },
        interrupted: async (job, control) => {
          started.add(job.id);
          await waitForStop(control.signal);
          return { status: "failed", error: "stopped midway", interrupted: true };
        },
      },
    });
    await waitFor("both jobs to start", () => Promise.resolve(started.size === 2));
    await runner.stop();
    const [done] = await first.db.select().from(jobs).where(eq(jobs.id, finished!.id));
    const [back] = await first.db.select().from(jobs).where(eq(jobs.id, interrupted!.id));
    expect(done.status).toBe("succeeded");
    expect(back).toMatchObject({ status: "queued", lockedBy: null, attempts: 1 });
  });

  it("cancel a queued job at once", async () => {
    const job = await enqueueJob(first.db, { kind: "never-claimed" });
    expect(await requestCancel(second.db, job!.id)).toBe("cancelled");
    expect(await requestCancel(second.db, job!.id)).toBeNull();
  });
});

describe("queueing from every instance at once", () => {
  it("queues one health check per connected source and slot", async () => {
    const connected = await Promise.all(
      [1, 2, 3].map(() => seedSource(first, { ownerId: owner, status: "CONNECTED" })),
    );
    const idle = await seedSource(first, { ownerId: owner, status: "CONFIGURING" });
    const now = Date.now();
    const counts = await Promise.all([
      enqueueHealthChecks(first.db, { now }),
      enqueueHealthChecks(second.db, { now }),
      enqueueHealthChecks(first.db, { now }),
    ]);
    expect(counts.reduce((sum, n) => sum + n, 0)).toBe(3);
    const rows = await first.db.select().from(jobs).where(eq(jobs.kind, "health_check"));
    expect(rows.map((row) => row.dataSourceId).sort()).toEqual([...connected].sort());
    expect(rows.some((row) => row.dataSourceId === idle)).toBe(false);
    // The next slot finds the previous checks still queued: none added.
    expect(await enqueueHealthChecks(second.db, { now: now + 30_000 })).toBe(0);
  });

  it("queues a due cron run once, and moves the schedule to its next run", async () => {
    const source = await seedSource(first, { ownerId: owner });
    await writeSyncSettings(first.db, { sourceId: source, input: { schedule: "*/5 * * * *" } });
    await first.db.update(syncSettings).set({ nextRunAt: new Date(Date.now() - 1000) })
      .where(eq(syncSettings.dataSourceId, source));
    const counts = await Promise.all([enqueueDueSyncs(first.db), enqueueDueSyncs(second.db)]);
    expect(counts[0] + counts[1]).toBe(1);
    const logs = await first.db.select().from(dataSourceSyncLogs)
      .where(eq(dataSourceSyncLogs.dataSourceId, source));
    expect(logs.map((log) => [log.status, log.trigger])).toEqual([["QUEUED", "schedule"]]);
    const [settings] = await first.db.select().from(syncSettings)
      .where(eq(syncSettings.dataSourceId, source));
    expect(settings.nextRunAt!.getTime()).toBeGreaterThan(Date.now());
    expect(settings.nextRunAt!.getUTCMinutes() % 5).toBe(0);
  });

  it("keeps one sync of a source queued or running, whoever asks", async () => {
    const source = await seedSource(first, { ownerId: owner });
    const results = await Promise.all([
      requestSync(first.db, { sourceId: source, mode: "full_refresh", trigger: "manual" }),
      requestSync(second.db, { sourceId: source, mode: "full_refresh", trigger: "manual" }),
    ]);
    const accepted = results.filter((result) => result.ok);
    const refused = results.filter((result) => !result.ok);
    expect(accepted.length).toBe(1);
    expect(refused).toEqual([{
      ok: false,
      reason: "busy",
      activeLogId: (accepted[0] as { syncLogId: string }).syncLogId,
    }]);
  });
});

describe("schedules", () => {
  it("computes the next run in the schedule's time zone", () => {
    const after = new Date("2025-06-01T12:00:00Z");
    expect(nextRunOf("0 9 * * *", { timezone: "UTC", after })?.toISOString())
      .toBe("2025-06-02T09:00:00.000Z");
    expect(nextRunOf("0 9 * * *", { timezone: "America/Lima", after })?.toISOString())
      .toBe("2025-06-01T14:00:00.000Z");
    expect(nextRunOf("@hourly", { timezone: "UTC", after })?.toISOString())
      .toBe("2025-06-01T13:00:00.000Z");
  });
});
