/**
 * Rows moved as COPY text from a source's COPY TO into the destination's COPY FROM STDIN:
 * the bytes pass through as they come, with backpressure both ways (a chunk is asked of the
 * source only once the previous one is on its way to the destination) and no JavaScript
 * object per row. Rows are counted from the line ends: COPY's text format escapes every
 * line break inside a value, so each newline byte ends exactly one row.
 *
 * Used when the connector offers `copyOut` and the destination is PostgreSQL; everything
 * else goes through `read` and the row loaders.
 */
import type { Connector, CopyOutEnd, StreamRef } from "../connectors/types.ts";
import { abandon, bounded, SourceReadError } from "./batches.ts";
import type { CopyWriter } from "./copy_writer.ts";
import type { Destination } from "./destination.ts";
import type { TablePlan } from "./table_plan.ts";

/** A source's COPY text of a plan's columns, in plan order; its return value ends it. */
export type CopySource = AsyncGenerator<Uint8Array, CopyOutEnd, undefined>;

const NEWLINE = 10;

/** Rows in a chunk of COPY text: its newline bytes. */
export function countRows(chunk: Uint8Array): number {
  let rows = 0;
  for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) rows++;
  return rows;
}

/**
 * Whether a stream of `connector` can go to `destination` as COPY text: the connector
 * offers it, the destination takes it, and the plan's columns are the source's declared
 * ones (a schemaless stream is followed row by row, which needs the rows).
 */
export function canCopy(
  connector: Connector,
  options: { destination: Destination; plan: TablePlan },
): boolean {
  const { destination, plan } = options;
  return connector.capabilities.copyOut === true && typeof connector.copyOut === "function" &&
    destination.copy !== undefined && !plan.open &&
    plan.columns.every((column) => !column.type.inferred);
}

/** The copyOut request for a plan: its columns in order, jsonb ones asked as JSON. */
export function copyRequest(
  plan: TablePlan,
  options: {
    stream: StreamRef;
    cursor?: { column: string; after?: unknown };
    signal: AbortSignal;
  },
) {
  return {
    stream: options.stream,
    columns: plan.columns.map((column) => ({
      name: column.field,
      ...(column.type.kind === "json" ? { json: true } : {}),
    })),
    ...(options.cursor ? { cursor: options.cursor } : {}),
    signal: options.signal,
  };
}

/**
 * Pumps `source` into `writer` until the source ends; returns the rows moved and the
 * source's end. `onBatch` is called every `batchRows` rows and at the end (progress, and the
 * place a cancel stops the load). A failure of the source is a SourceReadError; the source
 * is abandoned whenever the pump stops early.
 */
export async function pumpCopy(
  source: CopySource,
  options: {
    writer: CopyWriter;
    signal: AbortSignal;
    idleMs: number;
    batchRows: number;
    onBatch(records: number): Promise<void>;
  },
): Promise<{ records: number; end: CopyOutEnd }> {
  const { writer, signal, idleMs } = options;
  const batchRows = Math.max(1, options.batchRows);
  let records = 0;
  let reported = 0;
  let finished = false;
  try {
    while (true) {
      let next: IteratorResult<Uint8Array, CopyOutEnd>;
      try {
        next = await bounded(source.next(), { signal, idleMs });
      } catch (error) {
        if (signal.aborted) throw error;
        throw new SourceReadError(error);
      }
      if (next.done) {
        finished = true;
        if (records > reported) await options.onBatch(records);
        return { records, end: next.value };
      }
      records += countRows(next.value);
      await writer.write(next.value);
      if (records - reported >= batchRows) {
        reported = records;
        await options.onBatch(records);
      }
    }
  } finally {
    if (!finished) await abandon(source);
  }
}
