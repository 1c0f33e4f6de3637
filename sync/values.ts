/**
 * Values as PostgreSQL reads them in text form: what COPY's text format carries (escaped by
 * `copyField`) and what the batched inserts bind as parameters. Drivers hand us numbers,
 * bigints, Dates, Buffers, parsed JSON and strings; each destination kind has one writer.
 */
import type { ValueKind } from "./column_types.ts";

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

function localDate(date: Date): string {
  return `${String(date.getFullYear()).padStart(4, "0")}-${pad2(date.getMonth() + 1)}-${
    pad2(date.getDate())
  }`;
}

/**
 * A `timestamp` (without time zone) as the driver meant it. Drivers build such Dates from
 * the wall-clock text in the process's time zone, so its local fields are the source's
 * value; PostgreSQL would ignore a zone suffix here rather than convert it.
 */
function localTimestamp(date: Date): string {
  return `${localDate(date)} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${
    pad2(date.getSeconds())
  }.${pad3(date.getMilliseconds())}`;
}

/**
 * A `date`. postgres.js parses dates as UTC midnight, mysql2 as local midnight: take the
 * UTC fields of a UTC midnight and the local fields otherwise, so both mean the same day.
 */
function calendarDate(date: Date): string {
  const utcMidnight = date.getUTCHours() === 0 && date.getUTCMinutes() === 0 &&
    date.getUTCSeconds() === 0 && date.getUTCMilliseconds() === 0;
  if (!utcMidnight) return localDate(date);
  return `${String(date.getUTCFullYear()).padStart(4, "0")}-${pad2(date.getUTCMonth() + 1)}-${
    pad2(date.getUTCDate())
  }`;
}

function hex(bytes: Uint8Array): string {
  let out = "\\x";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Bytes a connector sent as text: the SQL connectors hand binary columns over as base64
 * (their JSON-safe rows); anything else is taken as UTF-8 text.
 */
function bytesOfText(text: string): Uint8Array {
  if (BASE64.test(text)) return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  return new TextEncoder().encode(text);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string" && value.includes("\u0000")) return value.replaceAll("\u0000", "");
  return value;
}

/** JSON for a jsonb column; jsonb refuses the NUL character, so it is dropped. */
export function jsonText(value: unknown): string {
  if (value instanceof Uint8Array) return JSON.stringify(hex(value));
  return JSON.stringify(value, jsonReplacer) ?? "null";
}

/**
 * The text PostgreSQL parses into a column of `kind`; null for SQL NULL. Text cannot hold
 * NUL characters in PostgreSQL, so they are dropped.
 */
export function valueText(value: unknown, kind: ValueKind): string | null {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case "json":
      return jsonText(value);
    case "boolean":
      if (typeof value === "boolean") return value ? "t" : "f";
      if (typeof value === "number") return value === 0 ? "f" : "t";
      break;
    case "timestamptz":
      if (value instanceof Date) return value.toISOString();
      break;
    case "timestamp":
      if (value instanceof Date) return localTimestamp(value);
      break;
    case "date":
      if (value instanceof Date) return calendarDate(value);
      break;
    case "bytea":
      if (value instanceof Uint8Array) return hex(value);
      if (typeof value === "string") return hex(bytesOfText(value));
      break;
    case "integer":
    case "float":
    case "numeric":
      if (typeof value === "boolean") return value ? "1" : "0";
      break;
    case "text":
      break;
  }
  if (typeof value === "string") {
    return value.includes("\u0000") ? value.replaceAll("\u0000", "") : value;
  }
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return hex(value);
  return jsonText(value);
}

const NEEDS_ESCAPE = /[\\\n\r\t]/;
// NUL is looked for on purpose: PostgreSQL text cannot hold it.
// deno-lint-ignore no-control-regex
const NEEDS_CARE = /[\\\n\r\t\u0000]/;

/**
 * The COPY field writer for a column of `kind`: the same text as `copyField(valueText(...))`,
 * with the common cases (a string for a text-like column, a number) taking the shortest way,
 * since a sync writes every field of every row through it.
 */
export function copyEncoder(kind: ValueKind): (value: unknown) => string {
  const stringsAsIs = kind !== "json" && kind !== "bytea";
  const numbersAsIs = kind !== "json" && kind !== "boolean";
  return (value) => {
    if (value === null || value === undefined) return "\\N";
    if (typeof value === "string" && stringsAsIs) {
      if (!NEEDS_CARE.test(value)) return value;
      return copyField(value.includes("\u0000") ? value.replaceAll("\u0000", "") : value);
    }
    if (typeof value === "number" && numbersAsIs) return String(value);
    return copyField(valueText(value, kind));
  };
}

/** A field of COPY's text format: `\N` for NULL, backslash, tab and line breaks escaped. */
export function copyField(text: string | null): string {
  if (text === null) return "\\N";
  if (!NEEDS_ESCAPE.test(text)) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else out += char;
  }
  return out;
}

const INTEGER = /^\s*[+-]?\d{1,18}\s*$/;
const NUMBER = /^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?Infinity|NaN)\s*$/;
const BOOLEAN = /^\s*(t|f|true|false|y|n|yes|no|on|off|1|0)\s*$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;

/**
 * Whether PostgreSQL accepts `value` for a column of `kind` whose type was inferred from a
 * sample. Only the kinds inference produces are checked; text and json take anything.
 */
export function fitsInferred(value: unknown, kind: ValueKind): boolean {
  if (value === null || value === undefined) return true;
  switch (kind) {
    case "integer":
      if (typeof value === "number") return Number.isSafeInteger(value);
      if (typeof value === "bigint") return value < 2n ** 63n && value >= -(2n ** 63n);
      return typeof value === "string" && INTEGER.test(value);
    case "float":
      if (typeof value === "number" || typeof value === "bigint") return true;
      return typeof value === "string" && NUMBER.test(value);
    case "boolean":
      if (typeof value === "boolean") return true;
      if (typeof value === "number") return value === 0 || value === 1;
      return typeof value === "string" && BOOLEAN.test(value);
    case "date":
      if (value instanceof Date) return !Number.isNaN(value.getTime());
      return typeof value === "string" && DATE.test(value.trim()) &&
        !Number.isNaN(Date.parse(value.trim()));
    case "timestamptz":
    case "timestamp":
      if (value instanceof Date) return !Number.isNaN(value.getTime());
      return typeof value === "string" && TIMESTAMP.test(value.trim()) &&
        !Number.isNaN(Date.parse(value.trim().replace(" ", "T")));
    default:
      return true;
  }
}
