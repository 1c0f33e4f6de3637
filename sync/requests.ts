/**
 * Asking for a sync and cancelling one, from any instance: a run is a sync log row plus a
 * job, written together; at most one sync of a source waits or runs at a time (a partial
 * unique index on jobs decides, across instances).
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import { dataSourceSyncLogs, type DataSourceType, jobs, type SyncLog } from "../db/schema.ts";
import { isUniqueViolation, jobValues, requestCancel } from "./jobs.ts";
import { endRun, type Requester, type SyncMode } from "./records.ts";

/** What the sync job carries. */
export type SyncPayload = {
  syncLogId: string;
  /** Stream keys asked for; absent means the settings' selection (or all). */
  streams?: string[];
  mode?: SyncMode;
  requester?: Requester;
};

/** Attempts a sync job gets: the first, and one more if its instance dies during it. */
export const SYNC_MAX_ATTEMPTS = 2;

export type SyncRequest = {
  sourceId: string;
  streams?: string[];
  mode: SyncMode;
  trigger: "manual" | "schedule";
  requester?: Requester;
  /** A key that makes a second request for the same thing a no-op (a cron tick). */
  dedupeKey?: string;
};

export type SyncRequestResult =
  | { ok: true; syncLogId: string }
  | { ok: false; reason: "busy"; activeLogId: string | null }
  | { ok: false; reason: "duplicate" };

/** Queues a run; refuses while another run of the source is queued or running. */
export async function requestSync(db: Db, request: SyncRequest): Promise<SyncRequestResult> {
  const syncLogId = newId();
  try {
    const inserted = await db.transaction(async (tx) => {
      const job = jobValues({
        kind: "sync",
        dataSourceId: request.sourceId,
        dedupeKey: request.dedupeKey,
        maxAttempts: SYNC_MAX_ATTEMPTS,
        payload: {
          syncLogId,
          ...(request.streams ? { streams: request.streams } : {}),
          mode: request.mode,
          requester: request.requester,
        } satisfies SyncPayload,
      });
      const [row] = await tx.insert(jobs).values(job)
        .onConflictDoNothing({ target: jobs.dedupeKey }).returning({ id: jobs.id });
      if (!row) return false;
      await tx.insert(dataSourceSyncLogs).values({
        id: syncLogId,
        dataSourceId: request.sourceId,
        status: "QUEUED",
        mode: request.mode,
        trigger: request.trigger,
        requestedById: request.requester?.userId ?? null,
        jobId: row.id,
        attempt: 1,
      });
      return true;
    });
    if (!inserted) return { ok: false, reason: "duplicate" };
    return { ok: true, syncLogId };
  } catch (error) {
    if (!isUniqueViolation(error, "jobs_one_active_sync_idx")) throw error;
    const [active] = await db.select({ id: dataSourceSyncLogs.id }).from(dataSourceSyncLogs)
      .where(and(
        eq(dataSourceSyncLogs.dataSourceId, request.sourceId),
        inArray(dataSourceSyncLogs.status, ["QUEUED", "RUNNING"]),
      )).limit(1);
    return { ok: false, reason: "busy", activeLogId: active?.id ?? null };
  }
}

export type CancelResult = "cancelled" | "requested" | "finished";

/**
 * Cancels a run: a queued one at once, a running one by the flag its instance polls (it
 * stops between batches; `abortLocal` stops it at once when it runs here).
 */
export async function cancelRun(
  db: Db,
  options: {
    log: SyncLog;
    sourceType: DataSourceType;
    requester?: Requester;
    abortLocal?: (jobId: string) => boolean;
  },
): Promise<CancelResult> {
  const { log } = options;
  if ((log.status !== "QUEUED" && log.status !== "RUNNING") || !log.jobId) return "finished";
  const outcome = await requestCancel(db, log.jobId);
  if (outcome === null) return "finished";
  if (outcome === "requested") {
    options.abortLocal?.(log.jobId);
    return "requested";
  }
  await endRun(db, {
    log,
    sourceType: options.sourceType,
    end: {
      status: "CANCELLED",
      records: 0,
      streams: {},
      streamResults: [],
      errorMessage: "Cancelled before it started",
    },
    requester: options.requester,
  });
  return "cancelled";
}
