/**
 * What each instance does every few seconds besides running jobs: queue the scheduled syncs
 * that are due (cron, croner) and this slot's health checks, fail runs whose instance died,
 * and clean up (finished jobs, staging tables of runs that no longer run). All of it is safe
 * with every instance doing it at once.
 */
import { eq, inArray } from "drizzle-orm";
import type { AppDatabase, Db } from "../db/mod.ts";
import { dataSourceSyncLogs } from "../db/schema.ts";
import { log } from "../telemetry.ts";
import { destinationFor } from "./destination.ts";
import { enqueueHealthChecks, HEALTH_INTERVAL_MS } from "./health.ts";
import { deleteFinishedJobs } from "./jobs.ts";
import { failInterruptedRuns, type SyncMode } from "./records.ts";
import { requestSync } from "./requests.ts";
import { takeDueSchedules } from "./settings.ts";
import { syncSettings } from "../db/schema.ts";

const logger = log("scheduler");

/** Finished jobs are kept this long (for inspection), then deleted; their logs stay. */
const KEEP_FINISHED_JOBS_MS = 24 * 60 * 60_000;
/** Cleanup runs at most this often. */
const CLEANUP_EVERY_MS = 60_000;

export type SchedulerOptions = {
  database: AppDatabase;
  tickMs?: number;
  healthIntervalMs?: number;
  /** Called after something was queued, so this instance's runner looks at once. */
  onQueued?: () => void;
};

/** Queues due scheduled syncs; a source still syncing skips this tick's run. */
export async function enqueueDueSyncs(db: Db): Promise<number> {
  let queued = 0;
  await takeDueSchedules(db, async (tx, due) => {
    const [settings] = await tx.select({ mode: syncSettings.mode }).from(syncSettings)
      .where(eq(syncSettings.dataSourceId, due.sourceId));
    const result = await requestSync(tx, {
      sourceId: due.sourceId,
      mode: (settings?.mode ?? "full_refresh") as SyncMode,
      trigger: "schedule",
      dedupeKey: `schedule:${due.sourceId}:${due.dueAt.toISOString()}`,
    });
    if (result.ok) queued++;
    else if (result.reason === "busy") {
      logger.info("Skipped a scheduled sync: the previous run has not finished", {
        sourceId: due.sourceId,
        dueAt: due.dueAt.toISOString(),
      });
    }
  });
  return queued;
}

/** Drops staging tables whose run is not running (PGlite leaves them when killed). */
export async function cleanStaging(database: AppDatabase): Promise<string[]> {
  const destination = destinationFor(database);
  return await destination.dropStaleStaging(() => runningLogIds(database.db));
}

async function runningLogIds(db: Db): Promise<(id: string) => boolean> {
  const rows = await db.select({ id: dataSourceSyncLogs.id }).from(dataSourceSyncLogs)
    .where(inArray(dataSourceSyncLogs.status, ["QUEUED", "RUNNING"]));
  const ids = new Set(rows.map((row) => row.id.toLowerCase()));
  return (id) => ids.has(id);
}

/** Starts the periodic work; `stop` ends it (waiting for a tick in progress). */
export function startScheduler(options: SchedulerOptions): { stop(): Promise<void> } {
  const db = options.database.db;
  const tickMs = options.tickMs ?? 5_000;
  const intervalMs = options.healthIntervalMs ?? HEALTH_INTERVAL_MS;
  let lastCleanup = 0;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();

  async function tick() {
    try {
      const syncs = await enqueueDueSyncs(db);
      const checks = await enqueueHealthChecks(db, { intervalMs });
      if (syncs + checks > 0) options.onQueued?.();
      await failInterruptedRuns(db);
      if (Date.now() - lastCleanup >= CLEANUP_EVERY_MS) {
        lastCleanup = Date.now();
        await deleteFinishedJobs(db, KEEP_FINISHED_JOBS_MS);
        const dropped = await cleanStaging(options.database);
        if (dropped.length) logger.info("Dropped leftover staging tables", { tables: dropped });
      }
    } catch (error) {
      logger.warn("A scheduler tick failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  const timer = setInterval(() => {
    if (stopped) return;
    current = current.then(tick);
  }, tickMs);
  current = tick();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}
