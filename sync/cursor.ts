/**
 * Incremental sync cursors: which column a stream's cursor is (chosen by the user, or
 * suggested: an updated_at-like timestamp, else an increasing integer key), the largest
 * value seen in a batch, and how that value is kept in the database and handed back to
 * `read` on the next run with its type intact.
 */
import type { Stream } from "../connectors/types.ts";
import { destinationType, type ValueKind } from "./column_types.ts";

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

/** A sortable key for a cursor value of a column of `kind`; null for no value. */
function keyFor(kind: ValueKind): (value: unknown) => number | bigint | string | null {
  switch (kind) {
    case "integer":
    case "float":
    case "numeric":
      // PostgreSQL's bigint and numeric come as text: compare them as numbers.
      return (value) => {
        if (value === null || value === undefined) return null;
        if (typeof value === "number" || typeof value === "bigint") return value;
        const text = String(value);
        return INTEGER_TEXT.test(text) ? BigInt(text) : Number(text);
      };
    case "timestamptz":
      // Offsets differ across daylight saving time: compare instants, not text.
      return (value) => {
        if (value === null || value === undefined) return null;
        if (value instanceof Date) return value.getTime();
        const time = Date.parse(String(value));
        return Number.isNaN(time) ? String(value) : time;
      };
    default:
      // ISO dates and timestamps without a zone sort as text.
      return (value) => {
        if (value === null || value === undefined) return null;
        return value instanceof Date ? value.toISOString() : String(value);
      };
  }
}

/** ISO text with the same zone suffix sorts as text: the instant is only needed otherwise. */
function sameZoneLater(value: string, max: string): boolean | null {
  const zone = value.length >= 6 ? value.slice(-6) : "";
  if (zone === "" || !/^[+-]\d\d:\d\d$/.test(zone) || zone !== max.slice(-6)) return null;
  return value > max;
}

/** The larger of `current` and every row's value of the cursor field. */
export function maxCursor(
  rows: Record<string, unknown>[],
  cursor: { current: unknown; field: string; kind: ValueKind },
): unknown {
  const { current } = cursor;
  if (cursor.kind === "timestamptz") return maxTimestamp(current, rows, cursor.field);
  const key = keyFor(cursor.kind);
  let max = current;
  let maxKey = key(current);
  for (let i = 0; i < rows.length; i++) {
    const value = rows[i][cursor.field];
    const valueKey = key(value);
    if (valueKey === null) continue;
    if (
      maxKey === null ||
      (typeof valueKey === typeof maxKey ? valueKey > maxKey : String(valueKey) > String(maxKey))
    ) {
      max = value;
      maxKey = valueKey;
    }
  }
  return max;
}

/**
 * maxCursor for timestamptz: rows from one source share their zone suffix almost always, so
 * text comparison decides and Date.parse runs only when the suffixes differ.
 */
function maxTimestamp(current: unknown, rows: Record<string, unknown>[], field: string): unknown {
  const key = keyFor("timestamptz");
  let max = current;
  for (let i = 0; i < rows.length; i++) {
    const value = rows[i][field];
    if (value === null || value === undefined) continue;
    if (max === null || max === undefined) {
      max = value;
      continue;
    }
    const quick = typeof value === "string" && typeof max === "string"
      ? sameZoneLater(value, max)
      : null;
    if (quick ?? (key(value)! > key(max)!)) max = value;
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
