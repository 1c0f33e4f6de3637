/**
 * The sync engine's public entry: start this instance's job runner and scheduler (main.ts,
 * when JOBS is on), repair work left by a dead process at start, and reach the runners of
 * this process (to wake them after a request, or stop a job they run).
 */
import { eq, sql } from "drizzle-orm";
import type { AppDatabase, Db } from "../db/mod.ts";
import { type DataSourceType, jobs } from "../db/schema.ts";
import { log } from "../telemetry.ts";
import { metrics } from "../telemetry.ts";
import { runHealthCheck } from "./health.ts";
import { releaseExpiredJobs } from "./jobs.ts";
import { activeRun, failInterruptedRuns, type Requester } from "./records.ts";
import { cancelRun } from "./requests.ts";
import { DEFAULT_TUNING, runSyncJob, type SyncDeps, type SyncTuning } from "./run.ts";
import { type JobHandler, type JobRunner, startJobRunner, type StopReason } from "./runner.ts";
import { cleanStaging, startScheduler } from "./scheduler.ts";

export type EngineOptions = {
  instanceId?: string;
  /** Jobs this instance runs at once. */
  concurrency?: number;
  leaseMs?: number;
  pollMs?: number;
  heartbeatMs?: number;
  /** Scheduler tick; 0 runs no scheduler (jobs only). */
  tickMs?: number;
  healthIntervalMs?: number;
  tuning?: Partial<SyncTuning>;
};

export type SyncEngine = {
  runner: JobRunner;
  stop(): Promise<void>;
};

const logger = log("jobs");

/** Engines of this process: a request wakes them; a cancel stops a job they run at once. */
const localEngines = new Set<SyncEngine>();

/** Tells this process's runners that a job was queued. */
export function wakeLocalRunners(): void {
  for (const engine of localEngines) engine.runner.wake();
}

/** Stops a job if a runner of this process runs it; true when one did. */
export function abortLocalJob(jobId: string, reason: StopReason = "cancelled"): boolean {
  let found = false;
  for (const engine of localEngines) found = engine.runner.abortLocal(jobId, reason) || found;
  return found;
}

/**
 * Cancels a source's queued or running sync, before the source is deleted: a run here stops
 * at once (its reads are abandoned and their connections ended), one on another instance at
 * its next heartbeat. Without this the run would only notice when its job row vanished with
 * the source, as if its instance had died.
 */
export async function stopSourceRuns(
  db: Db,
  source: { id: string; type: DataSourceType; requester?: Requester },
): Promise<void> {
  const run = await activeRun(db, source.id);
  if (!run) return;
  await cancelRun(db, {
    log: run,
    sourceType: source.type,
    requester: source.requester,
    abortLocal: (jobId) => abortLocalJob(jobId),
  });
}

/**
 * Repairs what a dead process left, at start: runs marked RUNNING whose job lease ran out
 * are failed (on the embedded database every one: no other process can hold it), expired
 * jobs go back to the queue, staging tables of runs that are not running are dropped.
 */
export async function recoverInterruptedWork(database: AppDatabase): Promise<void> {
  const db = database.db;
  if (database.kind === "pglite") {
    await db.update(jobs).set({ lockedUntil: sql`now()` }).where(eq(jobs.status, "running"));
  }
  const expired = await releaseExpiredJobs(db);
  const failed = await failInterruptedRuns(db, { everyRunning: database.kind === "pglite" });
  const dropped = await cleanStaging(database);
  if (expired.requeued.length || expired.failed.length || failed.length || dropped.length) {
    logger.warn("Recovered work interrupted by a stop", {
      requeuedJobs: expired.requeued.length,
      failedJobs: expired.failed.length,
      failedRuns: failed.length,
      droppedStagingTables: dropped.length,
    });
  }
}

function counted(kind: string, handler: JobHandler): JobHandler {
  return async (job, control) => {
    const outcome = await handler(job, control);
    metrics.jobsTotal.inc({ kind, status: outcome.status });
    return outcome;
  };
}

/** Starts this instance's runner (syncs, health checks) and scheduler. */
export function startSyncEngine(deps: SyncDeps, options: EngineOptions = {}): SyncEngine {
  const tuning = { ...DEFAULT_TUNING, ...options.tuning };
  const runner = startJobRunner({
    db: deps.db,
    instanceId: options.instanceId,
    concurrency: options.concurrency,
    leaseMs: options.leaseMs,
    pollMs: options.pollMs,
    heartbeatMs: options.heartbeatMs,
    handlers: {
      sync: counted(
        "sync",
        (job, control) => runSyncJob(deps, { job, ...control, tuning }),
      ),
      health_check: counted(
        "health_check",
        (job, control) => runHealthCheck(deps, { job, signal: control.signal }),
      ),
    },
    onExpired: async () => {
      await failInterruptedRuns(deps.db);
    },
  });
  const scheduler = options.tickMs === 0 ? null : startScheduler({
    database: deps.database,
    tickMs: options.tickMs,
    healthIntervalMs: options.healthIntervalMs,
    onQueued: () => runner.wake(),
  });
  const engine: SyncEngine = {
    runner,
    async stop() {
      localEngines.delete(engine);
      await scheduler?.stop();
      await runner.stop();
    },
  };
  localEngines.add(engine);
  return engine;
}

export { type SyncDeps } from "./run.ts";
