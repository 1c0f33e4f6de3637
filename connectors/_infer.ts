/**
 * Column types inferred from sample records, shared by the connectors whose sources have
 * no declared schema (REST, GraphQL, MongoDB, S3 files, Google Sheets, CSV).
 *
 * Types are the app's small vocabulary: integer, number, boolean, date, timestamp, text,
 * object, array. Values read from text (CSV cells, sheet cells) are typed by what they
 * look like; JSON values by what they are.
 */
import type { Column } from "./types.ts";

export type InferredType =
  | "integer"
  | "number"
  | "boolean"
  | "date"
  | "timestamp"
  | "text"
  | "object"
  | "array";

const INTEGER = /^[+-]?(0|[1-9]\d{0,17})$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BOOLEAN = /^(true|false)$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** The type a text cell looks like; null for an empty cell (which says nothing). */
export function textType(value: string): InferredType | null {
  const text = value.trim();
  if (text === "") return null;
  if (INTEGER.test(text)) return "integer";
  if (NUMBER.test(text)) return "number";
  if (BOOLEAN.test(text)) return "boolean";
  if (DATE.test(text) && !Number.isNaN(Date.parse(text))) return "date";
  if (TIMESTAMP.test(text) && !Number.isNaN(Date.parse(text.replace(" ", "T")))) {
    return "timestamp";
  }
  return "text";
}

/** The type of a JSON value; null for null/undefined (which says nothing). */
export function jsonType(value: unknown): InferredType | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "bigint") return "integer";
  if (typeof value === "string") {
    const looks = textType(value);
    // A JSON string stays text unless it is clearly a date or timestamp.
    return looks === "date" || looks === "timestamp" ? looks : "text";
  }
  if (value instanceof Date) return "timestamp";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return "object";
  return "text";
}

/** The narrowest type that holds both. */
export function widen(a: InferredType | null, b: InferredType | null): InferredType | null {
  if (a === null) return b;
  if (b === null || a === b) return a;
  const pair = new Set([a, b]);
  if (pair.has("integer") && pair.has("number")) return "number";
  if (pair.has("date") && pair.has("timestamp")) return "timestamp";
  if (pair.has("object") || pair.has("array")) return "object";
  return "text";
}

/** Accumulates what a sample of records says about each field. */
export class ColumnSampler {
  private readonly fields = new Map<
    string,
    { type: InferredType | null; seen: number; nulls: number }
  >();
  private records = 0;

  constructor(private readonly typeOf: (value: unknown) => InferredType | null = jsonType) {}

  /** Adds one record (field → value). */
  add(record: Record<string, unknown>): void {
    this.records++;
    for (const [name, value] of Object.entries(record)) {
      const field = this.fields.get(name) ?? { type: null, seen: 0, nulls: 0 };
      const type = this.typeOf(value);
      field.seen++;
      if (type === null) field.nulls++;
      field.type = widen(field.type, type);
      this.fields.set(name, field);
    }
  }

  get size(): number {
    return this.records;
  }

  /**
   * Columns in first-seen order. A field missing from some records or null in some is
   * nullable; a field never seen with a value is text.
   */
  columns(): (Column & { presence: number })[] {
    return [...this.fields].map(([name, field]) => ({
      name,
      type: field.type ?? "text",
      nullable: field.nulls > 0 || field.seen < this.records,
      presence: this.records === 0 ? 0 : field.seen / this.records,
    }));
  }
}
