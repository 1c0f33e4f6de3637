/**
 * Where a stream's rows go: the app database, PostgreSQL through postgres.js (COPY) or the
 * embedded PGlite (batched inserts). Both load a full refresh into a staging table swapped
 * in by one transaction, upsert incremental batches by primary key, and save the stream's
 * state (table, rows, cursor) in the same transaction that commits its data. PostgreSQL also
 * takes rows a source sends as COPY text (`copy`), without making rows of them.
 */
import type { CopyOutEnd } from "../connectors/types.ts";
import type { AppDatabase } from "../db/mod.ts";
import { storeCursor } from "./cursor.ts";
import { pgliteDestination } from "./pglite_destination.ts";
import { postgresDestination } from "./postgres_destination.ts";
import type { TablePlan } from "./table_plan.ts";

export type Row = Record<string, unknown>;

/** Which stream of which source a load is for, and its destination table. */
export type StreamState = {
  sourceId: string;
  stream: string;
  table: string;
  cursorColumn: string | null;
};

export type LoadOptions = {
  plan: TablePlan;
  batches: AsyncIterable<Row[]>;
  state: StreamState;
  /** The field holding the cursor (a source column name), when the stream has one. */
  cursorField?: string;
  /** The cursor the read started after (incremental); the result's cursor is never smaller. */
  startCursor?: unknown;
  /** Called after each batch is written; throwing stops the load (cancel, lost lease). */
  onBatch(records: number): Promise<void>;
};

/** A load of COPY text as a source wrote it (connectors' `copyOut`). */
export type CopyLoadOptions = {
  plan: TablePlan;
  /**
   * The source's COPY text of the plan's columns, in plan order; its return value carries the
   * cursor high-water mark. Lazy: nothing is read before the load asks.
   */
  source: AsyncGenerator<Uint8Array, CopyOutEnd, undefined>;
  state: StreamState;
  /** The cursor the read started after (incremental); kept when no row came. */
  startCursor?: unknown;
  /** Rows between two onBatch calls. */
  batchRows: number;
  signal: AbortSignal;
  /** A source silent for longer fails the load. */
  idleMs: number;
  /** Called as rows arrive (and at the end); throwing stops the load (cancel, lost lease). */
  onBatch(records: number): Promise<void>;
};

export type LoadResult = {
  /** Rows written by this load. */
  records: number;
  /** Rows in the destination table afterwards. */
  rowCount: number;
  /** The largest cursor value committed. */
  cursor: unknown;
};

export type Destination = {
  kind: "postgres" | "pglite";
  ensureSchema(schema: string): Promise<void>;
  tableExists(schema: string, table: string): Promise<boolean>;
  /** Full refresh: load into `staging`, then swap it for the table in one transaction. */
  replace(options: LoadOptions & { staging: string }): Promise<LoadResult>;
  /** Incremental: each batch upserted by primary key (appended without one) and committed. */
  upsert(options: LoadOptions): Promise<LoadResult>;
  /**
   * Drops staging tables left by runs that are not running any more; returns their names.
   * `running` is asked after the tables are listed, so a run starting meanwhile keeps its own.
   */
  dropStaleStaging(running: () => Promise<(syncLogId: string) => boolean>): Promise<string[]>;
  /**
   * Loads of COPY text, where the destination has COPY FROM STDIN: the same full refresh
   * (staging table swapped in) and incremental upsert, with all the source's rows in one
   * transaction and the cursor the source read in the same snapshot.
   */
  copy?: {
    replace(options: CopyLoadOptions & { staging: string }): Promise<LoadResult>;
    upsert(options: CopyLoadOptions): Promise<LoadResult>;
  };
};

/** The destination for the app database. */
export function destinationFor(database: AppDatabase): Destination {
  if (database.kind === "postgres" && database.client) return postgresDestination(database.client);
  if (database.kind === "pglite" && database.pglite) return pgliteDestination(database.pglite);
  throw new Error(`No loader for an app database of kind ${database.kind}`);
}

/** Upserts a stream's state: `$1..$6` = source, stream, table, rows (null keeps), column, cursor. */
export const SAVE_STATE_SQL = `insert into sync_stream_states
    (data_source_id, stream, table_name, row_count, cursor_column, cursor_value, updated_at)
  values ($1, $2, $3, coalesce($4::integer, 0), $5, $6::jsonb, now())
  on conflict (data_source_id, stream) do update set
    table_name = excluded.table_name,
    row_count = coalesce($4::integer, sync_stream_states.row_count),
    cursor_column = excluded.cursor_column,
    cursor_value = excluded.cursor_value,
    updated_at = now()`;

/** The parameters of SAVE_STATE_SQL. */
export function saveStateParams(
  state: StreamState,
  values: { rowCount: number | null; cursor: unknown },
): (string | number | null)[] {
  const { rowCount, cursor } = values;
  const stored = state.cursorColumn === null ? null : storeCursor(cursor);
  return [
    state.sourceId,
    state.stream,
    state.table,
    rowCount === null ? null : Math.min(rowCount, 2_147_483_647),
    state.cursorColumn,
    stored === null ? null : JSON.stringify(stored),
  ];
}

/** Names of staging tables in `ds_` schemas, with the sync log id each belongs to. */
export const STAGING_TABLES_SQL = `select n.nspname as schema, c.relname as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname like 'ds\\_%' and c.relkind = 'r' and c.relname like '\\_dafel\\_staging\\_%'`;

/** The sync log id inside a staging table name (`_dafel_staging_<log id>_<n>`). */
export function stagingLogId(table: string): string {
  return table.replace(/^_dafel_staging_/, "").replace(/_\d+$/, "");
}
