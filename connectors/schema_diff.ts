/** What changed between two discoveries of the same source. */
import type { Discovery, Stream } from "./types.ts";

export type TableRef = { schema?: string; name: string };

export type SchemaDiff = {
  tablesAdded: TableRef[];
  tablesRemoved: TableRef[];
  columnsAdded: (TableRef & { column: string; type: string })[];
  columnsRemoved: (TableRef & { column: string; type: string })[];
  typesChanged: (TableRef & { column: string; from: string; to: string })[];
  nullabilityChanged: (TableRef & { column: string; from: boolean; to: boolean })[];
  keysChanged: (TableRef & {
    kind: "primaryKey" | "foreignKeys" | "uniqueKeys";
    from: unknown;
    to: unknown;
  })[];
  /** True when nothing changed. */
  unchanged: boolean;
};

function keyOf(stream: { schema?: string; name: string }): string {
  return JSON.stringify([stream.schema ?? null, stream.name]);
}

function ref(stream: Stream): TableRef {
  return stream.schema === undefined
    ? { name: stream.name }
    : { schema: stream.schema, name: stream.name };
}

/** Canonical text of a key set, so order does not count as a change. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return JSON.stringify(value.map(canonical).sort());
  if (value && typeof value === "object") {
    return JSON.stringify(
      Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return JSON.stringify(value);
}

export function diffSchemas(before: Discovery, after: Discovery): SchemaDiff {
  const diff: SchemaDiff = {
    tablesAdded: [],
    tablesRemoved: [],
    columnsAdded: [],
    columnsRemoved: [],
    typesChanged: [],
    nullabilityChanged: [],
    keysChanged: [],
    unchanged: true,
  };
  const old = new Map(before.streams.map((stream) => [keyOf(stream), stream]));
  const now = new Map(after.streams.map((stream) => [keyOf(stream), stream]));
  for (const [key, stream] of now) if (!old.has(key)) diff.tablesAdded.push(ref(stream));
  for (const [key, stream] of old) if (!now.has(key)) diff.tablesRemoved.push(ref(stream));
  for (const [key, newer] of now) {
    const older = old.get(key);
    if (!older) continue;
    const table = ref(newer);
    const oldColumns = new Map(older.columns.map((column) => [column.name, column]));
    const newColumns = new Map(newer.columns.map((column) => [column.name, column]));
    for (const [name, column] of newColumns) {
      const previous = oldColumns.get(name);
      if (!previous) {
        diff.columnsAdded.push({ ...table, column: name, type: column.type });
        continue;
      }
      if (previous.type !== column.type) {
        diff.typesChanged.push({ ...table, column: name, from: previous.type, to: column.type });
      }
      if (previous.nullable !== column.nullable) {
        diff.nullabilityChanged.push({
          ...table,
          column: name,
          from: previous.nullable,
          to: column.nullable,
        });
      }
    }
    for (const [name, column] of oldColumns) {
      if (!newColumns.has(name)) {
        diff.columnsRemoved.push({ ...table, column: name, type: column.type });
      }
    }
    for (const kind of ["primaryKey", "foreignKeys", "uniqueKeys"] as const) {
      const pick = (stream: Stream) =>
        kind === "primaryKey"
          ? stream.constraints.primaryKeys
          : kind === "foreignKeys"
          ? stream.constraints.foreignKeys
          : stream.constraints.uniqueConstraints ?? stream.constraints.uniqueKeys;
      const from = pick(older);
      const to = pick(newer);
      const same = kind === "primaryKey"
        ? JSON.stringify(from) === JSON.stringify(to)
        : canonical(from) === canonical(to);
      if (!same) diff.keysChanged.push({ ...table, kind, from, to });
    }
  }
  diff.unchanged = diff.tablesAdded.length + diff.tablesRemoved.length + diff.columnsAdded.length +
      diff.columnsRemoved.length + diff.typesChanged.length + diff.nullabilityChanged.length +
      diff.keysChanged.length === 0;
  return diff;
}
