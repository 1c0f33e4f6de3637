/**
 * The destination table of one stream: its columns (source field → destination column and
 * type), primary key and cursor column; and how it follows the data when a source without a
 * declared schema sends a field it did not sample, or a value its sampled type cannot hold.
 */
import type { Stream } from "../connectors/types.ts";
import {
  type DestinationType,
  destinationType,
  typeOfNewValue,
  type ValueKind,
  WIDENED,
} from "./column_types.ts";
import { fitsInferred } from "./values.ts";

export type PlannedColumn = {
  /** The field name in the rows `read` yields. */
  field: string;
  /** The destination column name (the field's name unless PostgreSQL cannot hold it). */
  name: string;
  type: DestinationType;
};

export type TablePlan = {
  schema: string;
  table: string;
  columns: PlannedColumn[];
  /** Destination column names of the primary key; empty when the stream has none. */
  primaryKey: string[];
  /** Rows may carry fields discovery did not see (documents, files, API records). */
  open: boolean;
};

/** A change the loader must apply to its tables before loading a batch. */
export type ColumnChange =
  | { kind: "add"; column: PlannedColumn }
  | { kind: "widen"; column: PlannedColumn };

/** PostgreSQL keeps identifiers to 63 bytes and silently cuts longer ones. */
const MAX_IDENTIFIER_BYTES = 63;
/** PostgreSQL allows 1600 columns; leave room for what the table already dropped. */
const MAX_COLUMNS = 1500;

const encoder = new TextEncoder();

function shortHash(text: string): string {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/** Cuts `text` to at most `bytes` UTF-8 bytes without splitting a character. */
function cutToBytes(text: string, bytes: number): string {
  let out = "";
  let used = 0;
  for (const char of text) {
    const size = encoder.encode(char).length;
    if (used + size > bytes) break;
    out += char;
    used += size;
  }
  return out;
}

/** A destination column name for a field: the same name when PostgreSQL can hold it. */
export function columnNameFor(
  field: string,
  options: { position: number; taken: Set<string> },
): string {
  const { position, taken } = options;
  let name = field.replaceAll("\u0000", "");
  if (name === "") name = `column_${position + 1}`;
  if (encoder.encode(name).length > MAX_IDENTIFIER_BYTES) {
    name = `${cutToBytes(name, MAX_IDENTIFIER_BYTES - 9)}_${shortHash(field)}`;
  }
  let unique = name;
  for (let n = 2; taken.has(unique); n++) {
    const suffix = `_${n}`;
    unique = `${cutToBytes(name, MAX_IDENTIFIER_BYTES - suffix.length)}${suffix}`;
  }
  taken.add(unique);
  return unique;
}

/** Plans the destination table of a discovered stream. */
export function planTable(stream: Stream, destination: { schema: string; table: string }) {
  const taken = new Set<string>();
  const open = stream.kind !== "table" && stream.kind !== "view";
  const columns = stream.columns.map((column, position): PlannedColumn => ({
    field: column.name,
    name: columnNameFor(column.name, { position, taken }),
    type: destinationType(column.type, { declared: !open }),
  }));
  const byField = new Map(columns.map((column) => [column.field, column]));
  const primaryKey = stream.constraints.primaryKeys
    .map((field) => byField.get(field)?.name)
    .filter((name): name is string => name !== undefined);
  const plan: TablePlan = {
    ...destination,
    columns,
    // A key we cannot map entirely is no key at all.
    primaryKey: primaryKey.length === stream.constraints.primaryKeys.length ? primaryKey : [],
    open,
  };
  return plan;
}

/**
 * Follows a batch: for open streams, fields never seen become columns; for columns whose
 * type was inferred, a value that does not fit widens the column to text. Changes `plan` in
 * place and returns what changed, so the loader can alter its tables first.
 */
export function followBatch(plan: TablePlan, rows: Record<string, unknown>[]): ColumnChange[] {
  const changes: ColumnChange[] = [];
  if (plan.open) {
    const known = new Set(plan.columns.map((column) => column.field));
    const taken = new Set(plan.columns.map((column) => column.name));
    for (const row of rows) {
      for (const field in row) {
        if (known.has(field)) continue;
        const value = row[field];
        if (value === null || value === undefined) continue;
        if (plan.columns.length >= MAX_COLUMNS) {
          throw new Error(
            `The stream has more than ${MAX_COLUMNS} distinct fields; PostgreSQL cannot hold them as columns`,
          );
        }
        const column: PlannedColumn = {
          field,
          name: columnNameFor(field, { position: plan.columns.length, taken }),
          type: typeOfNewValue(value),
        };
        known.add(field);
        plan.columns.push(column);
        changes.push({ kind: "add", column });
      }
    }
  }
  for (const column of plan.columns) {
    if (!column.type.inferred) continue;
    const { field, type } = column;
    for (let i = 0; i < rows.length; i++) {
      if (!fitsInferred(rows[i][field], type.kind)) {
        column.type = WIDENED;
        // An added column is created with its final type; only existing ones are altered.
        if (!changes.some((change) => change.column === column)) {
          changes.push({ kind: "widen", column });
        }
        break;
      }
    }
  }
  return changes;
}

/** The cursor field of a plan with the kind of its column (how its values compare). */
export function cursorOf(plan: TablePlan, field: string): { field: string; kind: ValueKind } {
  const column = plan.columns.find((candidate) => candidate.field === field);
  return { field, kind: column?.type.kind ?? "text" };
}

/** `"name"` with embedded quotes doubled: any identifier, safely. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."table"`. */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** Column definitions for CREATE TABLE. */
export function columnDefinitions(columns: PlannedColumn[]): string {
  return columns.map((column) => `${quoteIdent(column.name)} ${column.type.sql}`).join(", ");
}
