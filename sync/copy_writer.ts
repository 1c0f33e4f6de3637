/**
 * COPY ... FROM STDIN through postgres.js, with backpressure and a reliable end.
 *
 * postgres.js 3.4.9 loses a server error that arrives after `end()` (the COPY's final
 * callback is never called, porsager/postgres#1173, fix pending in #1183): awaiting the
 * stream would hang and the transaction would stay open. The error does reach the query's
 * `reject`, so it is caught there and turned into the stream's error.
 */
import { once } from "node:events";
import { finished } from "node:stream/promises";
import type { Writable } from "node:stream";
import type postgres from "postgres";
import { copyEncoder } from "./values.ts";
import type { PlannedColumn } from "./table_plan.ts";
import { quoteIdent } from "./table_plan.ts";
import type { Row } from "./destination.ts";

export type CopyWriter = {
  /**
   * Sends a chunk (rows as COPY text, or bytes of it as another server's COPY TO wrote
   * them); waits only while the previous chunk is still being sent.
   */
  write(chunk: string | Uint8Array): Promise<void>;
  /** Ends the COPY and waits until the server has stored every row (or refused them). */
  finish(): Promise<void>;
  /** Abandons the COPY (the server discards it); the connection stays usable. */
  abort(reason: Error): void;
};

type RejectableQuery = { reject(error: unknown): void; writable(): Promise<Writable> };

/**
 * Starts `COPY <target> (<columns>) FROM STDIN` on `sql` (a transaction or reserved session).
 * An abort of `signal` abandons it, even while a chunk waits for the server.
 */
export async function openCopy(
  sql: postgres.TransactionSql | postgres.ReservedSql,
  target: string,
  options: { columns: PlannedColumn[]; signal?: AbortSignal },
): Promise<CopyWriter> {
  const { columns, signal } = options;
  const columnList = columns.map((column) => quoteIdent(column.name)).join(", ");
  const query = sql.unsafe(
    `copy ${target} (${columnList}) from stdin`,
  ) as unknown as RejectableQuery;
  let failure: unknown = null;
  let stream: Writable | null = null;
  const reject = query.reject;
  query.reject = (error: unknown) => {
    failure ??= error;
    stream?.destroy(error instanceof Error ? error : new Error(String(error)));
    reject(error);
  };
  stream = await query.writable();
  const writable = stream;
  // Without a listener an 'error' event would end the process.
  writable.on("error", (error) => {
    failure ??= error;
  });
  let draining: Promise<unknown> | null = null;
  const onAbort = () => {
    if (!writable.destroyed) writable.destroy(abortReason(signal));
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  const detach = () => signal?.removeEventListener("abort", onAbort);

  function check() {
    if (failure) throw failure;
  }

  return {
    async write(chunk) {
      if (draining) await draining;
      check();
      if (!writable.write(chunk)) draining = once(writable, "drain");
      else draining = null;
    },
    async finish() {
      try {
        if (draining) await draining;
        check();
        writable.end();
        await finished(writable);
        check();
      } finally {
        detach();
      }
    },
    abort(reason) {
      detach();
      if (!writable.destroyed) writable.destroy(reason);
    },
  };
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason = signal?.reason;
  return reason instanceof Error ? reason : new Error("The load was stopped");
}

/** Rows in COPY's text format, one line each, columns in `columns` order. */
export function copyText(rows: Row[], columns: PlannedColumn[]): string {
  const fields = columns.map((column) => column.field);
  const encoders = columns.map((column) => copyEncoder(column.type.kind));
  const count = columns.length;
  // One growing string: V8 joins the pieces once, when the stream turns it into bytes.
  let text = "";
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    let line = encoders[0](row[fields[0]]);
    for (let c = 1; c < count; c++) line += "\t" + encoders[c](row[fields[c]]);
    text += line + "\n";
  }
  return text;
}
