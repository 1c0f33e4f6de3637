/**
 * Batches from a connector's `read`, with one batch read ahead (the source works while the
 * loader writes; memory holds at most two batches) and two bounds: the run's AbortSignal
 * (cancel, lost lease, shutdown) and an idle limit, so a source that stops answering fails
 * the stream instead of holding the job forever.
 */
import type { RecordBatch } from "../connectors/types.ts";
import type { Row } from "./destination.ts";

/** Thrown when the source sends nothing for longer than the idle limit. */
export class SourceIdleError extends Error {
  override name = "SourceIdleError";
}

/** A failure of the source's side of a stream (its `cause`), told apart from loading ones. */
export class SourceReadError extends Error {
  override name = "SourceReadError";
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

function stopped(signal: AbortSignal): Error {
  const reason = signal.reason;
  return reason instanceof Error ? reason : new Error("The sync was stopped");
}

/** Waits for `promise`, or rejects when `signal` aborts or `idleMs` pass first. */
export function bounded<T>(
  promise: Promise<T>,
  options: { signal: AbortSignal; idleMs: number },
): Promise<T> {
  const { signal, idleMs } = options;
  if (signal.aborted) {
    // Nobody waits for it any more: its failure (often this very abort) is not a new error.
    promise.catch(() => {});
    return Promise.reject(stopped(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new SourceIdleError(
          `The source sent nothing for ${Math.round(idleMs / 1000)} s; the read was abandoned`,
        ),
      );
    }, idleMs);
    const onAbort = () => {
      cleanup();
      reject(stopped(signal));
    };
    function cleanup() {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error) => {
        cleanup();
        reject(error);
      },
    );
  });
}

/** The rows of each non-empty batch of `source`, read one batch ahead. */
export async function* boundedBatches(
  source: AsyncIterable<RecordBatch>,
  options: { signal: AbortSignal; idleMs: number },
): AsyncGenerator<Row[]> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<RecordBatch>> | null = iterator.next();
  // A rejection of the read-ahead is handled when it is awaited; never unhandled meanwhile.
  pending.catch(() => {});
  let finished = false;
  try {
    while (pending) {
      let next: IteratorResult<RecordBatch>;
      try {
        next = await bounded(pending, options);
      } catch (error) {
        if (options.signal.aborted) throw error;
        throw new SourceReadError(error);
      }
      if (next.done) {
        finished = true;
        return;
      }
      pending = iterator.next();
      pending.catch(() => {});
      if (next.value.rows.length) yield next.value.rows;
    }
  } finally {
    if (!finished) await abandon(iterator);
  }
}

/** How long a stopped read may take to give back what it holds at the source. */
export const ABANDON_WAIT_MS = 5_000;

/**
 * Ends a read stopped midway: its clean-up (a cursor killed, a connection ended) runs before
 * the run reports itself stopped, so a shutdown that follows does not cut it short. Bounded:
 * a connector that ignores its signal may never settle its pending read.
 */
export async function abandon(
  iterator: AsyncIterator<unknown>,
  options: { waitMs?: number } = {},
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ending = Promise.resolve(iterator.return?.()).catch(() => {});
  const waited = new Promise((resolve) => {
    timer = setTimeout(resolve, options.waitMs ?? ABANDON_WAIT_MS);
  });
  await Promise.race([ending, waited]);
  clearTimeout(timer);
}
