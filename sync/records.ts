/**
 * What a sync run leaves behind: its data_source_sync_logs row (status, counts, error,
 * duration), the source's totals, metrics and an audit row. Also the repair of runs whose
 * instance died: marked failed like any other failure, so totals and metrics stay true.
 */
import { and, desc, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import {
  auditLogs,
  type AuditMetadata,
  dataSources,
  dataSourceSyncLogs,
  type DataSourceType,
  jobs,
  type SyncLog,
  type SyncStreamResult,
  syncStreamStates,
} from "../db/schema.ts";
import { metrics } from "../telemetry.ts";
import { INTERRUPTED } from "./jobs.ts";

export const SYNC_STATUSES = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type SyncStatus = (typeof SYNC_STATUSES)[number];
export const SYNC_MODES = ["full_refresh", "incremental"] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** Who asked for a run, kept for the audit row written when it ends. */
export type Requester = {
  userId?: string | null;
  ip?: string;
  userAgent?: string;
  requestId?: string;
};

export type RunEnd = {
  status: Exclude<SyncStatus, "QUEUED" | "RUNNING">;
  records: number;
  streams: Record<string, number>;
  streamResults: SyncStreamResult[];
  errorMessage: string | null;
  /** Where a failure came from, for the failures metric. */
  failureReason?: "source" | "destination" | "interrupted" | "internal";
};

/** Marks a queued log RUNNING; false when it is not queued any more (cancelled meanwhile). */
export async function markRunning(db: Db, logId: string): Promise<boolean> {
  const rows = await db.update(dataSourceSyncLogs).set({
    status: "RUNNING",
    startedAt: sql`now()`,
  }).where(and(eq(dataSourceSyncLogs.id, logId), eq(dataSourceSyncLogs.status, "QUEUED")))
    .returning({ id: dataSourceSyncLogs.id });
  return rows.length > 0;
}

/** Records progress of a running log (for the live status on the detail page). */
export async function recordProgress(
  db: Db,
  progress: { logId: string; records: number; streams: Record<string, number> },
): Promise<void> {
  const { logId } = progress;
  await db.update(dataSourceSyncLogs).set({
    recordsSync: Math.min(progress.records, 2_147_483_647),
    streams: progress.streams,
  }).where(and(eq(dataSourceSyncLogs.id, logId), eq(dataSourceSyncLogs.status, "RUNNING")));
}

/** Rows held in a source's destination tables, from the stream states. */
async function destinationRows(db: Db, sourceId: string): Promise<number> {
  const [row] = await db.select({
    total: sql<string>`coalesce(sum(${syncStreamStates.rowCount}), 0)`,
  })
    .from(syncStreamStates).where(eq(syncStreamStates.dataSourceId, sourceId));
  return Math.min(Number(row?.total ?? 0), 2_147_483_647);
}

/**
 * Ends a run: its log, the source's totals (every ended run counts in totalSyncs, a failed
 * one in failedSyncs, totalRecords is what the destination tables hold), metrics and the
 * audit row. Only a log still QUEUED or RUNNING is ended, so two enders cannot both count.
 */
export async function endRun(
  db: Db,
  options: {
    log: SyncLog;
    sourceType: DataSourceType;
    end: RunEnd;
    requester?: Requester;
    /**
     * The job running it, ended in the same transaction: once the log says the run ended,
     * a new run of the source may be queued at once.
     */
    job?: { id: string; instanceId: string };
  },
): Promise<boolean> {
  const { log, end, job } = options;
  const ended = await db.transaction(async (tx) => {
    const [row] = await tx.update(dataSourceSyncLogs).set(endValues(end)).where(and(
      eq(dataSourceSyncLogs.id, log.id),
      inArray(dataSourceSyncLogs.status, ["QUEUED", "RUNNING"]),
    )).returning();
    if (row && job) {
      await tx.update(jobs).set({
        status: end.status === "SUCCEEDED"
          ? "succeeded"
          : end.status === "CANCELLED"
          ? "cancelled"
          : "failed",
        lockedUntil: null,
        finishedAt: sql`now()`,
        lastError: end.errorMessage?.slice(0, 4000) ?? null,
      }).where(and(eq(jobs.id, job.id), eq(jobs.lockedBy, job.instanceId)));
    }
    return row;
  });
  if (!ended) return false;
  await recordEnd(db, {
    log: ended,
    sourceType: options.sourceType,
    end,
    requester: options.requester,
  });
  return true;
}

function endValues(end: RunEnd) {
  return {
    status: end.status,
    success: end.status === "SUCCEEDED",
    completedAt: sql`now()`,
    duration:
      sql`greatest(0, (extract(epoch from now() - ${dataSourceSyncLogs.startedAt}) * 1000)::integer)`,
    recordsSync: Math.min(end.records, 2_147_483_647),
    streams: end.streams,
    streamResults: end.streamResults,
    errorMessage: end.errorMessage?.slice(0, 4000) ?? null,
  };
}

/** Totals, metrics and audit of an ended run. */
async function recordEnd(
  db: Db,
  options: { log: SyncLog; sourceType: DataSourceType; end: RunEnd; requester?: Requester },
) {
  const { log, end } = options;
  const totalRecords = await destinationRows(db, log.dataSourceId);
  await db.update(dataSources).set({
    totalSyncs: sql`${dataSources.totalSyncs} + 1`,
    failedSyncs: end.status === "FAILED"
      ? sql`${dataSources.failedSyncs} + 1`
      : sql`${dataSources.failedSyncs}`,
    totalRecords,
    ...(end.status === "SUCCEEDED" ? { lastSuccessfulSync: sql`now()` } : {}),
  }).where(eq(dataSources.id, log.dataSourceId));
  const type = options.sourceType;
  metrics.syncRuns.inc({ type, status: end.status });
  metrics.syncDuration.observe({ type, status: end.status }, (log.duration ?? 0) / 1000);
  if (end.records > 0) metrics.syncRecords.inc({ type }, end.records);
  if (end.status === "FAILED") {
    metrics.syncFailures.inc({ type, reason: end.failureReason ?? "source" });
  }
  const requester = options.requester ?? {};
  const metadata: AuditMetadata = {
    syncLogId: log.id,
    status: end.status,
    mode: log.mode,
    trigger: log.trigger,
    records: end.records,
    ...(end.errorMessage ? { error: end.errorMessage.slice(0, 500) } : {}),
    ip: requester.ip,
    userAgent: requester.userAgent,
    requestId: requester.requestId,
    timestamp: new Date().toISOString(),
    outcome: end.status === "SUCCEEDED" ? "success" : "failure",
  };
  await db.insert(auditLogs).values({
    id: newId(),
    userId: requester.userId ?? log.requestedById ?? null,
    action: "DATA_SOURCE_SYNC",
    entityType: "DataSource",
    entityId: log.dataSourceId,
    metadata,
  });
}

/**
 * Runs left RUNNING by an instance that died: every such log whose job is not running with a
 * live lease is marked FAILED, counted and audited. One statement decides, so an instance
 * that claims the job at the same moment is never overruled; safe on every instance at once.
 * On the embedded database, where only this process runs jobs, `everyRunning` marks them all.
 */
export async function failInterruptedRuns(
  db: Db,
  options: { everyRunning?: boolean } = {},
): Promise<SyncLog[]> {
  const end: RunEnd = {
    status: "FAILED",
    records: 0,
    streams: {},
    streamResults: [],
    errorMessage: INTERRUPTED,
    failureReason: "interrupted",
  };
  const { recordsSync: _records, streams: _streams, streamResults: _results, ...values } =
    endValues(
      end,
    );
  const ended = await db.update(dataSourceSyncLogs).set(values).where(and(
    eq(dataSourceSyncLogs.status, "RUNNING"),
    options.everyRunning ? undefined : sql`not exists (select 1 from ${jobs}
      where ${jobs.id} = ${dataSourceSyncLogs.jobId} and ${jobs.status} = 'running'
        and ${jobs.lockedUntil} > now())`,
  )).returning();
  for (const log of ended) {
    const [source] = await db.select({ type: dataSources.type }).from(dataSources)
      .where(eq(dataSources.id, log.dataSourceId));
    if (!source) continue;
    await recordEnd(db, {
      log,
      sourceType: source.type,
      end: { ...end, records: log.recordsSync, streams: log.streams },
      requester: requesterOf(log),
    });
  }
  return ended;
}

/** The requester an interrupted run's job kept, when it is still there. */
function requesterOf(log: SyncLog): Requester {
  return { userId: log.requestedById };
}

/** A source's runs, newest first. */
export async function listRuns(
  db: Db,
  options: { sourceId: string; limit?: number },
): Promise<SyncLog[]> {
  const { sourceId, limit = 50 } = options;
  return await db.select().from(dataSourceSyncLogs)
    .where(eq(dataSourceSyncLogs.dataSourceId, sourceId))
    .orderBy(desc(dataSourceSyncLogs.createdAt), desc(dataSourceSyncLogs.id))
    .limit(limit);
}

/** The run of a source that is queued or running, if any. */
export async function activeRun(db: Db, sourceId: string): Promise<SyncLog | null> {
  const [row] = await db.select().from(dataSourceSyncLogs)
    .where(and(
      eq(dataSourceSyncLogs.dataSourceId, sourceId),
      inArray(dataSourceSyncLogs.status, ["QUEUED", "RUNNING"]),
    ))
    .orderBy(desc(dataSourceSyncLogs.createdAt)).limit(1);
  return row ?? null;
}
