/**
 * Records from text files, shared by the file-like connectors (CSV files, S3 objects, Google
 * Sheets): CSV, JSON Lines and JSON arrays parsed as streams, batching for `read`, the
 * cursor filter for incremental reads, and the classification of parser and transport
 * failures. Nothing here holds a whole file: every parser pulls from its input as its
 * consumer asks, so a slow consumer slows the download instead of filling memory.
 */
import { Readable } from "node:stream";
import { JSONParser, TokenizerError, TokenParserError } from "@streamparser/json";
import { CsvError, parse as parseCsv } from "csv-parse";
import type { ConnectorError, ErrorCode, ReadRequest, RecordBatch } from "./types.ts";
import { ConnectorFailure } from "./types.ts";

export type TabularRecord = Record<string, unknown>;

export type TextFormat = "csv" | "jsonl" | "json";

export type CsvOptions = {
  delimiter: string;
  quote: string;
  encoding: "utf8" | "latin1";
  /** The first row names the columns; otherwise they are column_1, column_2, ... */
  headers: boolean;
};

export const DEFAULT_CSV: CsvOptions = {
  delimiter: ",",
  quote: '"',
  encoding: "utf8",
  headers: true,
};

/** A record larger than this is refused: a missing closing quote would otherwise swallow the file. */
const MAX_RECORD_BYTES = 8 * 1024 * 1024;

/**
 * Column names from a header row: blanks become column_N and repeats get a suffix, so no
 * value silently overwrites another in the record.
 */
export function uniqueColumnNames(header: readonly unknown[]): string[] {
  const seen = new Map<string, number>();
  return header.map((cell, index) => {
    let name = String(cell ?? "").trim();
    if (name === "") name = `column_${index + 1}`;
    const count = seen.get(name) ?? 0;
    seen.set(name, count + 1);
    return count === 0 ? name : `${name}_${count + 1}`;
  });
}

/** Names for a file without a header row. */
export function positionalNames(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `column_${index + 1}`);
}

/**
 * Whatever records a readable has buffered, as one array, until it ends. Draining the buffer
 * synchronously costs one await per input chunk instead of one per record (what `for await`
 * over a stream costs), and reading nothing while the consumer is busy keeps backpressure.
 */
export async function* drained<T>(readable: Readable): AsyncGenerator<T[]> {
  let ended = false;
  let failure: unknown = undefined;
  let wake: (() => void) | null = null;
  const notify = () => {
    const resume = wake;
    wake = null;
    resume?.();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (error: unknown) => {
    failure ??= error;
    notify();
  };
  readable.on("readable", notify).on("end", onEnd).on("close", onEnd).on("error", onError);
  try {
    while (true) {
      const items: T[] = [];
      for (let item = readable.read(); item !== null; item = readable.read()) items.push(item);
      if (failure !== undefined) throw failure;
      if (items.length) {
        yield items;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    // The error listener stays: a stream destroyed with an error after its reader has gone
    // would otherwise end the process.
    readable.off("readable", notify).off("end", onEnd).off("close", onEnd);
  }
}

/**
 * Records of a CSV byte stream, in chunks. Empty cells are null (a typed column has no other
 * way to say "no value"); every other cell stays the text it was. A malformed file fails
 * with a `ConnectorFailure` naming the line.
 */
export async function* csvChunks(
  input: Readable,
  options: CsvOptions,
  where: { field: string; label: string },
): AsyncGenerator<TabularRecord[]> {
  const parser = parseCsv({
    delimiter: options.delimiter,
    quote: options.quote,
    encoding: options.encoding,
    bom: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
    // Rows as arrays: the records are built below in one pass that also turns empty
    // cells into nulls (csv-parse's own `columns` would need a second pass for that).
    columns: false,
  });
  input.on("error", (error) => parser.destroy(error));
  // Failures surface through `drained` while it runs; one after the consumer stopped must
  // not become an uncaught error.
  parser.on("error", () => {});
  input.pipe(parser);
  let names: string[] | null = null;
  try {
    for await (const rows of drained<string[]>(parser)) {
      let first = 0;
      if (names === null) {
        names = options.headers ? uniqueColumnNames(rows[0]) : positionalNames(rows[0].length);
        if (options.headers) first = 1;
      }
      const records: TabularRecord[] = new Array(rows.length - first);
      const count = names.length;
      for (let row = first; row < rows.length; row++) {
        const cells = rows[row];
        const record: TabularRecord = {};
        for (let index = 0; index < count; index++) {
          const cell = cells[index];
          record[names[index]] = cell === "" ? null : cell;
        }
        records[row - first] = record;
      }
      if (records.length) yield records;
    }
  } catch (error) {
    throw new ConnectorFailure(recordsError(error, where));
  } finally {
    input.unpipe(parser);
    parser.destroy();
    input.destroy();
  }
}

/** Records of a JSON Lines stream, in chunks: one object per line, blank lines skipped. */
export async function* jsonLinesChunks(
  input: AsyncIterable<Uint8Array>,
  where: { field: string; label: string },
): AsyncGenerator<TabularRecord[]> {
  const decoder = new TextDecoder();
  let pending = "";
  let lineNumber = 0;
  const parseLines = (lines: string[]) => {
    const records: TabularRecord[] = [];
    for (const line of lines) {
      lineNumber++;
      if (line.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw invalidContent(where, `Line ${lineNumber} is not valid JSON`);
      }
      if (!isRecord(value)) throw invalidContent(where, `Line ${lineNumber} is not a JSON object`);
      records.push(value);
    }
    return records;
  };
  try {
    for await (const bytes of input) {
      const lines = (pending + decoder.decode(bytes, { stream: true })).split("\n");
      pending = lines.pop() ?? "";
      if (pending.length > MAX_RECORD_BYTES) {
        throw invalidContent(where, `Line ${lineNumber + lines.length + 1} is longer than 8 MiB`);
      }
      const records = parseLines(lines);
      if (records.length) yield records;
    }
    const records = parseLines([pending + decoder.decode()]);
    if (records.length) yield records;
  } catch (error) {
    if (error instanceof ConnectorFailure) throw error;
    throw new ConnectorFailure(recordsError(error, where));
  } finally {
    (input as Partial<Readable>).destroy?.();
  }
}

/**
 * Records of a JSON document, in chunks: the elements of a top-level array, read element by
 * element; a document that starts with `{` is JSON Lines (a single object is one line), as
 * many exports name their NDJSON files .json.
 */
export async function* jsonChunks(
  input: Readable,
  where: { field: string; label: string },
): AsyncGenerator<TabularRecord[]> {
  const chunks = (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  try {
    let first: Uint8Array | undefined;
    while (first === undefined) {
      const next = await chunks.next();
      if (next.done) return;
      const bytes = withoutBom(next.value);
      if (firstNonSpace(bytes) !== undefined) first = bytes;
    }
    const opening = firstNonSpace(first);
    if (opening === BRACE) {
      yield* jsonLinesChunks(prepended(first, chunks), where);
      return;
    }
    if (opening !== BRACKET) {
      throw invalidContent(where, "The document is neither a JSON array nor JSON Lines");
    }
    yield* arrayElements(prepended(first, chunks), where);
  } catch (error) {
    if (error instanceof ConnectorFailure) throw error;
    throw new ConnectorFailure(recordsError(error, where));
  } finally {
    input.destroy();
  }
}

/** The chunk already taken, then the rest of the iterator. */
async function* prepended(
  first: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield first;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

async function* arrayElements(
  chunks: AsyncIterable<Uint8Array>,
  where: { field: string; label: string },
): AsyncGenerator<TabularRecord[]> {
  const parser = new JSONParser({ paths: ["$.*"], keepStack: false });
  let ready: unknown[] = [];
  parser.onValue = ({ value }) => {
    ready.push(value);
  };
  let element = 0;
  for await (const chunk of chunks) {
    try {
      parser.write(chunk);
    } catch (error) {
      if (!(error instanceof TokenizerError || error instanceof TokenParserError)) throw error;
      throw invalidContent(where, `Element ${element + ready.length + 1} is not valid JSON`);
    }
    for (const value of ready) {
      element++;
      if (!isRecord(value)) throw invalidContent(where, `Element ${element} is not an object`);
    }
    if (ready.length) yield ready as TabularRecord[];
    ready = [];
  }
  if (!parser.isEnded) {
    throw invalidContent(where, "The JSON array is not closed (the file may be truncated)");
  }
}

const BRACE = 0x7b;
const BRACKET = 0x5b;
const SPACE_BYTES = new Set([0x20, 0x09, 0x0d, 0x0a]);

function withoutBom(bytes: Uint8Array): Uint8Array {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
}

function firstNonSpace(bytes: Uint8Array): number | undefined {
  for (const byte of bytes) if (!SPACE_BYTES.has(byte)) return byte;
  return undefined;
}

/** Records of a stream in the given format, in chunks. */
export function chunksOf(
  input: Readable,
  format: TextFormat,
  options: { csv: CsvOptions; field: string; label: string },
): AsyncGenerator<TabularRecord[]> {
  const where = { field: options.field, label: options.label };
  if (format === "csv") return csvChunks(input, options.csv, where);
  if (format === "jsonl") return jsonLinesChunks(input, where);
  return jsonChunks(input, where);
}

function isRecord(value: unknown): value is TabularRecord {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function invalidContent(where: { field: string; label: string }, problem: string) {
  return new ConnectorFailure({
    code: "INVALID_RESPONSE",
    message: `${where.label}: ${problem}`,
    hint: "Check that the file is in the format its name says",
    field: where.field,
  });
}

/** What csv-parse's error codes mean to a user, by code. */
const CSV_PROBLEMS: Record<string, (lines: number | undefined) => string> = {
  CSV_RECORD_INCONSISTENT_COLUMNS: (line) =>
    `Line ${line}: the row has a different number of fields than the header`,
  CSV_RECORD_INCONSISTENT_FIELDS_LENGTH: (line) =>
    `Line ${line}: the row has a different number of fields than the first row (the header)`,
  CSV_QUOTE_NOT_CLOSED: (line) =>
    `Line ${line}: a quoted field is never closed (the file ends inside quotes)`,
  CSV_INVALID_CLOSING_QUOTE: (line) =>
    `Line ${line}: a quote is followed by an unexpected character`,
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: (line) =>
    `Line ${line}: a closing quote is followed by an unexpected character`,
  CSV_MAX_RECORD_SIZE: (line) =>
    `Line ${line}: a record is larger than ${MAX_RECORD_BYTES / 1024 / 1024} MiB ` +
    "(an unclosed quote?)",
};

/** A parser or transport failure while reading records, as a classified error. */
export function recordsError(
  error: unknown,
  where: { field: string; label: string },
): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  if (error instanceof CsvError) {
    const lines = (error as CsvError & { lines?: number }).lines;
    if (
      error.code.startsWith("CSV_INVALID_OPTION") ||
      error.code === "CSV_OPTION_COLUMNS_MISSING_NAME"
    ) {
      return {
        code: "INVALID_CONFIG",
        message: `${where.label}: the CSV settings are not usable (${error.code})`,
        hint: "Check the delimiter, quote and encoding settings",
        field: "configuration.delimiter",
      };
    }
    const describe = CSV_PROBLEMS[error.code];
    return {
      code: "INVALID_RESPONSE",
      message: `${where.label}: ${
        describe ? describe(lines) : `Line ${lines}: the CSV is malformed (${error.code})`
      }`,
      hint: "Fix the file, or check the delimiter and quote settings match it",
      field: where.field,
    };
  }
  return transportError(error, where.field);
}

const ERRNO_CODES: Record<string, ErrorCode> = {
  ENOTFOUND: "HOST_NOT_FOUND",
  EAI_AGAIN: "HOST_NOT_FOUND",
  EAI_NONAME: "HOST_NOT_FOUND",
  ECONNREFUSED: "CONNECTION_REFUSED",
  ECONNRESET: "CONNECTION_REFUSED",
  EHOSTUNREACH: "CONNECTION_REFUSED",
  ENETUNREACH: "CONNECTION_REFUSED",
  EPIPE: "CONNECTION_REFUSED",
  ETIMEDOUT: "TIMEOUT",
  ESOCKETTIMEDOUT: "TIMEOUT",
  ECONNABORTED: "TIMEOUT",
  UND_ERR_CONNECT_TIMEOUT: "TIMEOUT",
  ENOENT: "RESOURCE_NOT_FOUND",
  EACCES: "PERMISSION_DENIED",
  EPERM: "PERMISSION_DENIED",
  EISDIR: "INVALID_CONFIG",
};

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "EPROTO",
]);

/** The errno-style code of an error or of one of its causes. */
export function errnoOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (ERRNO_CODES[code] || TLS_CODES.has(code))) return code;
    const name = (current as { name?: unknown }).name;
    if (name === "TimeoutError" || name === "AbortError") return "ETIMEDOUT";
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A network or file-system failure by its errno code. Anything without one is UNKNOWN with
 * the error's name only: library messages can quote request details.
 */
export function transportError(error: unknown, field: string): ConnectorError {
  const errno = errnoOf(error);
  if (errno && TLS_CODES.has(errno)) {
    return {
      code: "TLS_ERROR",
      message: `TLS handshake failed (${errno})`,
      hint: "Check the endpoint's certificate, and that the URL's scheme matches the server",
      field,
    };
  }
  const code = errno ? ERRNO_CODES[errno] : undefined;
  if (code === "TIMEOUT") {
    return {
      code,
      message: "The server did not answer in time",
      hint: "Check that the endpoint is reachable from the server and not overloaded " +
        "(CONNECTION_TIMEOUT_MS sets the limit)",
      field,
    };
  }
  if (code) {
    return {
      code,
      message: `Connection failed (${errno})`,
      hint: `Check the ${field}`,
      field,
    };
  }
  const name = error instanceof Error ? error.name : typeof error;
  return {
    code: "UNKNOWN",
    message: `Unexpected failure (${name})`,
    hint: "See the server log for details",
    field,
  };
}

/**
 * True when a row's cursor value is past `after`: numerically when both are numbers (or
 * text that reads as one), otherwise by text order, which orders ISO dates and times too.
 */
export function isPastCursor(value: unknown, after: unknown): boolean {
  if (after === undefined || after === null) return true;
  if (value === undefined || value === null) return false;
  const a = toNumber(value);
  const b = toNumber(after);
  if (a !== null && b !== null) return a > b;
  return String(value) > String(after);
}

function toNumber(value: unknown): number | null {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "bigint") return Number(value);
  if (typeof value !== "string" || value.trim() === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/**
 * Regroups chunks of records into batches of `batchSize`, keeping only rows past the cursor.
 * The source is pulled one chunk at a time, so nothing is read ahead of what the consumer
 * takes.
 */
export async function* inBatches(
  chunks: AsyncIterable<TabularRecord[]>,
  request: Pick<ReadRequest, "batchSize" | "cursor" | "signal">,
): AsyncGenerator<RecordBatch> {
  const size = Math.max(1, Math.floor(request.batchSize));
  const cursor = request.cursor;
  let rows: TabularRecord[] = [];
  for await (const chunk of chunks) {
    request.signal?.throwIfAborted();
    const kept = cursor
      ? chunk.filter((record) => isPastCursor(record[cursor.column], cursor.after))
      : chunk;
    let start = 0;
    while (start < kept.length) {
      if (rows.length === 0 && kept.length - start >= size) {
        yield { rows: kept.slice(start, start + size) };
        start += size;
        continue;
      }
      const take = Math.min(size - rows.length, kept.length - start);
      for (let index = start; index < start + take; index++) rows.push(kept[index]);
      start += take;
      if (rows.length === size) {
        yield { rows };
        rows = [];
      }
    }
  }
  request.signal?.throwIfAborted();
  if (rows.length) yield { rows };
}

/** The first `limit` records; the rest of the input is never read. */
export async function firstRecords(
  chunks: AsyncIterable<TabularRecord[]>,
  limit: number,
): Promise<TabularRecord[]> {
  const rows: TabularRecord[] = [];
  if (limit <= 0) return rows;
  for await (const chunk of chunks) {
    for (const record of chunk) {
      rows.push(record);
      if (rows.length >= limit) return rows;
    }
  }
  return rows;
}
