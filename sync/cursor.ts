/**
 * Incremental sync cursors: which column a stream's cursor is (chosen by the user, or
 * suggested: an updated_at-like timestamp, else an increasing integer key), the largest
 * value seen in a batch, and how that value is kept in the database and handed back to
 * `read` on the next run with its type intact.
 */
import type { Stream } from "../connectors/types.ts";
import { destinationType } from "./column_types.ts";

/** Names (folded: lowercase, letters and digits only) of columns that record a change. */
const CHANGE_COLUMNS = [
  "updatedat",
  "updatedon",
  "updatetime",
  "updatedtime",
  "modifiedat",
  "modifiedon",
  "modifiedtime",
  "lastmodified",
  "lastmodifiedat",
  "lastmodifieddate",
  "lastupdated",
  "lastupdatedat",
  "changedat",
  "updated",
  "modified",
  "dateupdated",
  "datemodified",
];

function fold(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

export type CursorChoice =
  | { column: string; source: "chosen" | "suggested" }
  | { column: null; reason: string };

/**
 * The cursor column of a stream. A chosen column must exist; otherwise an updated_at-like
 * timestamp or date column, otherwise a single-column integer primary key.
 */
export function cursorFor(stream: Stream, chosen?: string): CursorChoice {
  if (chosen !== undefined) {
    if (stream.columns.some((column) => column.name === chosen)) {
      return { column: chosen, source: "chosen" };
    }
    return { column: null, reason: `The chosen cursor column "${chosen}" is not in the stream` };
  }
  for (const wanted of CHANGE_COLUMNS) {
    const column = stream.columns.find((candidate) => {
      if (fold(candidate.name) !== wanted) return false;
      const kind = destinationType(candidate.type).kind;
      return kind === "timestamp" || kind === "timestamptz" || kind === "date";
    });
    if (column) return { column: column.name, source: "suggested" };
  }
  const keys = stream.constraints.primaryKeys;
  if (keys.length === 1) {
    const key = stream.columns.find((column) => column.name === keys[0]);
    if (key && destinationType(key.type).kind === "integer") {
      return { column: key.name, source: "suggested" };
    }
  }
  return {
    column: null,
    reason: "No cursor column: choose one (such as updated_at) in the sync settings",
  };
}

/** A cursor value as stored in `sync_stream_states.cursor_value`. */
export type StoredCursor = { type: "date" | "bigint" | "number" | "string"; value: unknown };

const INTEGER_TEXT = /^-?\d+$/;
const NUMBER_TEXT = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function comparable(value: unknown): number | bigint | string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number" || typeof value === "bigint") return value;
  return String(value);
}

function greater(a: unknown, b: unknown): boolean {
  const x = comparable(a);
  const y = comparable(b);
  if (x === null) return false;
  if (y === null) return true;
  if (typeof x === "string" || typeof y === "string") {
    // Numeric strings (PostgreSQL's bigint and numeric come as text) compare as numbers.
    const sx = String(x);
    const sy = String(y);
    if (INTEGER_TEXT.test(sx) && INTEGER_TEXT.test(sy)) return BigInt(sx) > BigInt(sy);
    if (NUMBER_TEXT.test(sx) && NUMBER_TEXT.test(sy)) return Number(sx) > Number(sy);
    return sx > sy;
  }
  return x > y;
}

/** The larger of `current` and every row's `column` value. */
export function maxCursor(
  current: unknown,
  rows: Record<string, unknown>[],
  column: string,
): unknown {
  let max = current;
  for (let i = 0; i < rows.length; i++) {
    const value = rows[i][column];
    if (greater(value, max)) max = value;
  }
  return max;
}

/** A cursor value in a form JSON keeps. */
export function storeCursor(value: unknown): StoredCursor | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return { type: "date", value: value.toISOString() };
  if (typeof value === "bigint") return { type: "bigint", value: value.toString() };
  if (typeof value === "number") return { type: "number", value };
  return { type: "string", value: String(value) };
}

/** The value `read` gets back: a Date stays a Date, a bigint a bigint. */
export function reviveCursor(stored: StoredCursor | null | undefined): unknown {
  if (!stored) return undefined;
  if (stored.type === "date") return new Date(String(stored.value));
  if (stored.type === "bigint") return BigInt(String(stored.value));
  return stored.value;
}
