/**
 * One sync run, as the handler of a `sync` job: discover the source, pick the streams (the
 * request's, the settings', or every discovered one), and for each stream read batches from
 * the connector straight into its table in schema `ds_<source id>` (full refresh through a
 * staging table, or incremental past the saved cursor), then record how it went.
 *
 * Failures are results: a stream that fails is recorded and the others still run; the run
 * ends FAILED with the reasons. A cancel (from any instance), a lost lease or a shutdown
 * stops it between batches and aborts the read.
 */
import { and, eq } from "drizzle-orm";
import { connectorFor, discoverSource, settingsOf } from "../connectors/operations.ts";
import type { Connector, Discovery, Stream, StreamRef } from "../connectors/types.ts";
import { ConnectorFailure } from "../connectors/types.ts";
import type { AppDatabase } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import {
  type DataSource,
  dataSources,
  dataSourceSyncLogs,
  type Job,
  jobs,
  type SyncLog,
  type SyncStreamResult,
  syncStreamStates,
} from "../db/schema.ts";
import type { OperationDeps } from "../connectors/operations.ts";
import { log as logger, withLogContext } from "../telemetry.ts";
import { metrics } from "../telemetry.ts";
import { boundedBatches, SourceReadError } from "./batches.ts";
import { cursorFor, reviveCursor, type StoredCursor } from "./cursor.ts";
import { canCopy, copyRequest } from "./copy_transfer.ts";
import {
  type Destination,
  destinationFor,
  type LoadResult,
  type StreamState,
} from "./destination.ts";
import { INTERRUPTED } from "./jobs.ts";
import { chooseTableNames, destinationSchema, stagingTableName, streamKey } from "./naming.ts";
import { endRun, markRunning, recordProgress, type RunEnd, type SyncMode } from "./records.ts";
import type { SyncPayload } from "./requests.ts";
import { type JobOutcome, JobStopped } from "./runner.ts";
import { readSyncSettings } from "./settings.ts";
import { planTable, type TablePlan } from "./table_plan.ts";

export type SyncDeps = OperationDeps & { database: AppDatabase };

export type SyncTuning = {
  /** Rows per batch asked of the connector. */
  batchSize: number;
  /** A source silent for longer fails the stream. */
  idleMs: number;
  /** How often a running log's counts are written (the page's live status). */
  progressMs: number;
};

export const DEFAULT_TUNING: SyncTuning = {
  // Large enough that per-batch costs (a cursor round trip, a COPY chunk) vanish; small
  // enough that the rows in flight (the driver's buffer, a batch and the one read ahead)
  // are a few hundred kB and mostly die in V8's young generation.
  batchSize: 500,
  idleMs: 5 * 60_000,
  progressMs: 1_000,
};

const log = logger("sync");

function message(error: unknown): string {
  if (error instanceof ConnectorFailure) return `${error.error.code}: ${error.error.message}`;
  if (error instanceof SourceReadError) return message(error.cause);
  return error instanceof Error ? error.message : String(error);
}

/** The run's log for this attempt: the queued one, or a new one after an interrupted try. */
async function logForAttempt(db: SyncDeps["db"], job: Job, payload: SyncPayload) {
  const [current] = await db.select().from(dataSourceSyncLogs)
    .where(eq(dataSourceSyncLogs.id, payload.syncLogId));
  if (!current) return null;
  if (current.status === "QUEUED") return current;
  const earlierTry = current.attempt < job.attempts;
  const interrupted = current.status === "RUNNING" ||
    (current.status === "FAILED" && current.errorMessage === INTERRUPTED);
  if (!earlierTry || !interrupted) return current;
  return await db.transaction(async (tx) => {
    const [next] = await tx.insert(dataSourceSyncLogs).values({
      id: newId(),
      dataSourceId: current.dataSourceId,
      status: "QUEUED",
      mode: current.mode,
      trigger: current.trigger,
      requestedById: current.requestedById,
      jobId: job.id,
      attempt: job.attempts,
    }).returning();
    await tx.update(jobs).set({ payload: { ...payload, syncLogId: next.id } })
      .where(eq(jobs.id, job.id));
    return next;
  });
}

/** The streams to sync: those asked for (by key, or by name when unambiguous), or all. */
export function selectStreams(
  discovery: Discovery,
  wanted: string[] | null | undefined,
): { selected: Stream[]; missing: string[] } {
  if (!wanted) return { selected: discovery.streams, missing: [] };
  const selected: Stream[] = [];
  const missing: string[] = [];
  for (const key of wanted) {
    const exact = discovery.streams.find((stream) => streamKey(stream) === key);
    const byName = discovery.streams.filter((stream) => stream.name === key);
    const stream = exact ?? (byName.length === 1 ? byName[0] : undefined);
    if (!stream) missing.push(key);
    else if (!selected.includes(stream)) selected.push(stream);
  }
  return { selected, missing };
}

type StreamPlan = {
  stream: Stream;
  key: string;
  table: string;
  mode: SyncMode;
  cursorColumn: string | null;
  note?: string;
  stored?: { cursorColumn: string | null; cursorValue: StoredCursor | null };
};

function planStreams(options: {
  connector: Connector;
  discovery: Discovery;
  selected: Stream[];
  mode: SyncMode;
  cursorColumns: Record<string, string>;
  states: Map<
    string,
    { tableName: string; cursorColumn: string | null; cursorValue: StoredCursor | null }
  >;
}): StreamPlan[] {
  const kept = new Map([...options.states].map(([key, state]) => [key, state.tableName]));
  const tables = chooseTableNames(options.selected, {
    discovered: options.discovery.streams,
    kept,
  });
  return options.selected.map((stream) => {
    const key = streamKey(stream);
    const choice = cursorFor(stream, options.cursorColumns[key]);
    const canIncrement = options.connector.capabilities.incremental;
    let mode = options.mode;
    let note: string | undefined;
    if (mode === "incremental" && !canIncrement) {
      mode = "full_refresh";
      note = "The connector cannot read past a cursor: loaded in full";
    } else if (mode === "incremental" && choice.column === null) {
      mode = "full_refresh";
      note = `${choice.reason}; loaded in full`;
    }
    const state = options.states.get(key);
    return {
      stream,
      key,
      table: tables.get(key)!,
      mode,
      cursorColumn: canIncrement ? choice.column : null,
      note,
      stored: state && { cursorColumn: state.cursorColumn, cursorValue: state.cursorValue },
    };
  });
}

/** Runs the job's sync; the job's outcome mirrors the run's. */
export async function runSyncJob(
  deps: SyncDeps,
  run: { job: Job; signal: AbortSignal; instanceId: string; tuning?: SyncTuning },
): Promise<JobOutcome> {
  const { job, tuning = DEFAULT_TUNING } = run;
  const payload = job.payload as SyncPayload;
  const db = deps.db;
  const runLog = await logForAttempt(db, job, payload);
  if (!runLog) return { status: "failed", error: "The sync log is gone (source deleted)" };
  if (runLog.status !== "QUEUED") {
    return { status: runLog.status === "SUCCEEDED" ? "succeeded" : "failed" };
  }
  const [source] = await db.select().from(dataSources).where(eq(dataSources.id, job.dataSourceId!));
  if (!source) return { status: "failed", error: "The source was deleted" };
  if (!(await markRunning(db, runLog.id))) return { status: "cancelled" };

  let end: RunEnd;
  try {
    end = await withLogContext(
      { syncLogId: runLog.id },
      () => syncSource(deps, { source, runLog, payload, signal: run.signal, tuning }),
    );
  } catch (error) {
    // Not a remote failure (those are results): a secret that no longer decrypts, the app
    // database gone mid-run, a bug. Still a recorded run, not a log left RUNNING.
    const stop = stopReason(run.signal);
    end = {
      status: stop?.reason === "cancelled" ? "CANCELLED" : "FAILED",
      records: 0,
      streams: {},
      streamResults: [],
      errorMessage: stop
        ? (stop.reason === "cancelled" ? "Cancelled" : INTERRUPTED)
        : message(error),
      failureReason: stop ? "interrupted" : "internal",
    };
    if (!stop) {
      log.error("A sync run failed unexpectedly", {
        sourceId: source.id,
        syncLogId: runLog.id,
        error: message(error),
        stack: error instanceof Error ? error.stack : undefined,
      });
    }
  }
  const interrupted = end.failureReason === "interrupted";
  await endRun(db, {
    log: runLog,
    sourceType: source.type,
    end,
    requester: payload.requester,
    // An interrupted run leaves its job to the runner: it may go back to the queue.
    ...(interrupted ? {} : { job: { id: job.id, instanceId: run.instanceId } }),
  });
  log.info("Sync run ended", {
    sourceId: source.id,
    syncLogId: runLog.id,
    status: end.status,
    records: end.records,
    ...(end.errorMessage ? { error: end.errorMessage } : {}),
  });
  if (end.status === "SUCCEEDED") return { status: "succeeded" };
  if (end.status === "CANCELLED") return { status: "cancelled" };
  return { status: "failed", error: end.errorMessage, interrupted };
}

/** Waits for `work`, or rejects with the signal's reason when it aborts first. */
function untilStopped<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // Nobody waits for it any more: its failure is not a new error.
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function stopReason(signal: AbortSignal): JobStopped | null {
  return signal.aborted && signal.reason instanceof JobStopped ? signal.reason : null;
}

/** The run itself: every stream, then the outcome (never throws for a remote failure). */
async function syncSource(
  deps: SyncDeps,
  options: {
    source: DataSource;
    runLog: SyncLog;
    payload: SyncPayload;
    signal: AbortSignal;
    tuning: SyncTuning;
  },
): Promise<RunEnd> {
  const { source, runLog, payload, signal, tuning } = options;
  const streams: Record<string, number> = {};
  const results: SyncStreamResult[] = [];
  const stoppedEnd = (stop: JobStopped): RunEnd => ({
    status: stop.reason === "cancelled" ? "CANCELLED" : "FAILED",
    records: Object.values(streams).reduce((sum, count) => sum + count, 0),
    streams,
    streamResults: results,
    errorMessage: stop.reason === "cancelled" ? "Cancelled" : INTERRUPTED,
    failureReason: "interrupted",
  });

  let connector: Connector;
  let discovery: Discovery;
  try {
    connector = connectorFor(source.type);
    if (typeof connector.read !== "function") {
      throw new Error(`${source.type} sources cannot be read yet`);
    }
    const discovered = await untilStopped(discoverSource(deps, source), signal);
    if (!discovered.ok) {
      return {
        status: "FAILED",
        records: 0,
        streams,
        streamResults: results,
        errorMessage: `Discovery failed: ${discovered.error.code}: ${discovered.error.message}`,
        failureReason: "source",
      };
    }
    discovery = discovered.value;
  } catch (error) {
    const stop = stopReason(signal);
    if (stop) return stoppedEnd(stop);
    return {
      status: "FAILED",
      records: 0,
      streams,
      streamResults: results,
      errorMessage: message(error),
      failureReason: "source",
    };
  }

  const settings = await readSyncSettings(deps.db, source.id);
  const mode = payload.mode ?? settings.mode;
  const { selected, missing } = selectStreams(discovery, payload.streams ?? settings.streams);
  for (const key of missing) {
    results.push({
      stream: key,
      table: "",
      mode,
      records: 0,
      status: "FAILED",
      error: "Not in the source (any more)",
    });
  }
  const stateRows = await deps.db.select().from(syncStreamStates)
    .where(eq(syncStreamStates.dataSourceId, source.id));
  const plans = planStreams({
    connector,
    discovery,
    selected,
    mode,
    cursorColumns: settings.cursorColumns,
    states: new Map(stateRows.map((row) => [row.stream, {
      tableName: row.tableName,
      cursorColumn: row.cursorColumn,
      cursorValue: row.cursorValue as StoredCursor | null,
    }])),
  });

  const destination = destinationFor(deps.database);
  const schema = destinationSchema(source.id);
  try {
    await destination.ensureSchema(schema);
  } catch (error) {
    return {
      status: "FAILED",
      records: 0,
      streams,
      streamResults: results,
      errorMessage: `Cannot prepare schema ${schema}: ${message(error)}`,
      failureReason: "destination",
    };
  }

  const sourceSettings = await settingsOf(deps, source);
  let lastProgress = 0;
  let failureReason: RunEnd["failureReason"];
  for (const [index, plan] of plans.entries()) {
    const stop = stopReason(signal);
    if (stop) return stoppedEnd(stop);
    streams[plan.key] = 0;
    const result: SyncStreamResult = {
      stream: plan.key,
      table: `${schema}.${plan.table}`,
      mode: plan.mode,
      records: 0,
      status: "SUCCEEDED",
      ...(plan.note ? { note: plan.note } : {}),
      ...(plan.cursorColumn ? { cursorColumn: plan.cursorColumn } : {}),
    };
    const started = performance.now();
    const table = planTable(plan.stream, { schema, table: plan.table });
    // COPY text straight from the source where both sides speak it; rows otherwise.
    const transfer = canCopy(connector, { destination, plan: table }) ? "copy" : "read";
    try {
      const loaded = await syncStream({
        destination,
        table,
        transfer,
        connector,
        settings: sourceSettings,
        deps,
        plan,
        schema,
        staging: stagingTableName(runLog.id, index),
        sourceId: source.id,
        signal,
        tuning,
        onBatch: async (records) => {
          streams[plan.key] = records;
          const stopped = stopReason(signal);
          if (stopped) throw stopped;
          if (performance.now() - lastProgress >= tuning.progressMs) {
            lastProgress = performance.now();
            await recordProgress(deps.db, {
              logId: runLog.id,
              records: Object.values(streams).reduce((sum, count) => sum + count, 0),
              streams,
            });
          }
        },
      });
      result.records = loaded.records;
      streams[plan.key] = loaded.records;
      log.info("Stream loaded", {
        sourceId: source.id,
        syncLogId: runLog.id,
        stream: plan.key,
        mode: plan.mode,
        transfer,
        records: loaded.records,
      });
    } catch (error) {
      const stopped = stopReason(signal) ?? (error instanceof JobStopped ? error : null);
      if (stopped) {
        result.status = stopped.reason === "cancelled" ? "CANCELLED" : "FAILED";
        result.records = 0;
        streams[plan.key] = 0;
        results.push(result);
        return stoppedEnd(stopped);
      }
      const fromSource = error instanceof SourceReadError || error instanceof ConnectorFailure;
      failureReason ??= fromSource ? "source" : "destination";
      result.status = "FAILED";
      result.records = 0;
      streams[plan.key] = 0;
      result.error = fromSource
        ? `Reading failed: ${message(error)}`
        : `Loading failed: ${message(error)}`;
      log.warn("A stream failed", {
        sourceId: source.id,
        syncLogId: runLog.id,
        stream: plan.key,
        error: result.error,
      });
    } finally {
      metrics.queryDuration.observe(
        { type: source.type, operation: transfer },
        (performance.now() - started) / 1000,
      );
    }
    results.push(result);
  }

  const failed = results.filter((result) => result.status === "FAILED");
  const records = Object.values(streams).reduce((sum, count) => sum + count, 0);
  if (failed.length === 0) {
    return {
      status: "SUCCEEDED",
      records,
      streams,
      streamResults: results,
      errorMessage: null,
    };
  }
  const first = `${failed[0].stream}: ${failed[0].error}`;
  return {
    status: "FAILED",
    records,
    streams,
    streamResults: results,
    errorMessage: failed.length === 1
      ? first
      : `${failed.length} of ${results.length} streams failed; ${first}`,
    failureReason: failureReason ?? "source",
  };
}

async function syncStream(options: {
  destination: Destination;
  table: TablePlan;
  transfer: "copy" | "read";
  connector: Connector;
  settings: Awaited<ReturnType<typeof settingsOf>>;
  deps: SyncDeps;
  plan: StreamPlan;
  schema: string;
  staging: string;
  sourceId: string;
  signal: AbortSignal;
  tuning: SyncTuning;
  onBatch(records: number): Promise<void>;
}) {
  const { destination, plan, schema, signal, tuning, table } = options;
  const state = {
    sourceId: options.sourceId,
    stream: plan.key,
    table: plan.table,
    cursorColumn: plan.cursorColumn,
  };
  let startCursor: unknown = undefined;
  if (plan.mode === "incremental" && plan.stored?.cursorColumn === plan.cursorColumn) {
    // A table someone dropped is loaded again from the start.
    if (await destination.tableExists(schema, plan.table)) {
      startCursor = reviveCursor(plan.stored?.cursorValue);
    }
  }
  const streamRef = {
    name: plan.stream.name,
    ...(plan.stream.schema === undefined ? {} : { schema: plan.stream.schema }),
  };
  if (options.transfer === "copy" && destination.copy) {
    return await syncByCopy({
      ...options,
      copy: destination.copy,
      state,
      stream: streamRef,
      startCursor,
    });
  }
  const reader = options.connector.read(options.settings, {
    stream: streamRef,
    batchSize: tuning.batchSize,
    signal,
    ...(plan.mode === "incremental" && plan.cursorColumn
      ? {
        cursor: {
          column: plan.cursorColumn,
          ...(startCursor === undefined ? {} : { after: startCursor }),
        },
      }
      : {}),
  }, options.deps.connectorContext);
  const batches = boundedBatches(reader, { signal, idleMs: tuning.idleMs });
  const load = {
    plan: table,
    batches,
    state,
    cursorField: plan.cursorColumn ?? undefined,
    startCursor,
    onBatch: options.onBatch,
  };
  return plan.mode === "incremental"
    ? await destination.upsert(load)
    : await destination.replace({ ...load, staging: options.staging });
}

/**
 * A stream moved as COPY text from the source into PostgreSQL (sync/copy_transfer.ts): the
 * same full refresh or incremental upsert as the row path, all rows in one transaction.
 */
async function syncByCopy(options: {
  copy: NonNullable<Destination["copy"]>;
  connector: Connector;
  settings: Awaited<ReturnType<typeof settingsOf>>;
  deps: SyncDeps;
  plan: StreamPlan;
  table: TablePlan;
  state: StreamState;
  stream: StreamRef;
  startCursor: unknown;
  staging: string;
  signal: AbortSignal;
  tuning: SyncTuning;
  onBatch(records: number): Promise<void>;
}): Promise<LoadResult> {
  const { plan, signal, tuning } = options;
  // The source's read ends with the load, whichever way: a read still waiting on a stalled
  // source is abandoned instead of holding its connection.
  const reading = new AbortController();
  const stopReading = () => reading.abort(signal.reason);
  signal.addEventListener("abort", stopReading, { once: true });
  try {
    const source = options.connector.copyOut!(
      options.settings,
      copyRequest(options.table, {
        stream: options.stream,
        signal: reading.signal,
        ...(plan.cursorColumn
          ? {
            cursor: {
              column: plan.cursorColumn,
              ...(options.startCursor === undefined ? {} : { after: options.startCursor }),
            },
          }
          : {}),
      }),
      options.deps.connectorContext,
    );
    const load = {
      plan: options.table,
      source,
      state: options.state,
      startCursor: options.startCursor,
      batchRows: tuning.batchSize,
      signal,
      idleMs: tuning.idleMs,
      onBatch: options.onBatch,
    };
    return plan.mode === "incremental"
      ? await options.copy.upsert(load)
      : await options.copy.replace({ ...load, staging: options.staging });
  } finally {
    signal.removeEventListener("abort", stopReading);
    reading.abort();
  }
}

/** The log of a run (for the API and pages). */
export async function findRun(
  db: SyncDeps["db"],
  ids: { sourceId: string; logId: string },
): Promise<SyncLog | null> {
  const { sourceId, logId } = ids;
  const [row] = await db.select().from(dataSourceSyncLogs).where(and(
    eq(dataSourceSyncLogs.id, logId),
    eq(dataSourceSyncLogs.dataSourceId, sourceId),
  ));
  return row ?? null;
}
