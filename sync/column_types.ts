/**
 * Destination column types (PostgreSQL) from what discovery reports: the app's small
 * vocabulary for sources without a declared schema (integer, number, boolean, date,
 * timestamp, text, object, array) and the native type names of the SQL connectors
 * (PostgreSQL's `format_type` spelling, MySQL's `COLUMN_TYPE`).
 *
 * The rule is "never lose a value": types PostgreSQL cannot hold exactly (MySQL's TIME
 * beyond 24 h, money with a currency sign, geometry) land in text; nested documents and
 * arrays in jsonb.
 */

/** How a value is written for a destination type (see sync/values.ts). */
export type ValueKind =
  | "integer"
  | "float"
  | "numeric"
  | "boolean"
  | "date"
  | "timestamp"
  | "timestamptz"
  | "json"
  | "bytea"
  | "text";

export type DestinationType = {
  /** SQL type of the destination column. */
  sql: string;
  kind: ValueKind;
  /**
   * The source type was inferred from a sample (the app's vocabulary), so a later value may
   * not fit it: such values are checked and the column widened to text when one does not.
   */
  inferred: boolean;
};

const VOCABULARY: Record<string, DestinationType> = {
  integer: { sql: "bigint", kind: "integer", inferred: true },
  number: { sql: "double precision", kind: "float", inferred: true },
  boolean: { sql: "boolean", kind: "boolean", inferred: true },
  date: { sql: "date", kind: "date", inferred: true },
  timestamp: { sql: "timestamptz", kind: "timestamptz", inferred: true },
  text: { sql: "text", kind: "text", inferred: false },
  object: { sql: "jsonb", kind: "json", inferred: false },
  array: { sql: "jsonb", kind: "json", inferred: false },
};

const TEXT: DestinationType = { sql: "text", kind: "text", inferred: false };

function native(sql: string, kind: ValueKind): DestinationType {
  return { sql, kind, inferred: false };
}

/** Native names (arguments and `unsigned` removed) to destination types. */
const NATIVE: Record<string, DestinationType> = {
  smallint: native("smallint", "integer"),
  int2: native("smallint", "integer"),
  tinyint: native("smallint", "integer"),
  year: native("smallint", "integer"),
  smallserial: native("smallint", "integer"),
  int: native("integer", "integer"),
  integer: native("integer", "integer"),
  int4: native("integer", "integer"),
  mediumint: native("integer", "integer"),
  serial: native("integer", "integer"),
  bigint: native("bigint", "integer"),
  int8: native("bigint", "integer"),
  bigserial: native("bigint", "integer"),
  real: native("real", "float"),
  float4: native("real", "float"),
  float: native("double precision", "float"),
  "double precision": native("double precision", "float"),
  float8: native("double precision", "float"),
  double: native("double precision", "float"),
  bool: native("boolean", "boolean"),
  boolean: native("boolean", "boolean"),
  date: native("date", "date"),
  text: native("text", "text"),
  uuid: native("uuid", "text"),
  json: native("jsonb", "json"),
  jsonb: native("jsonb", "json"),
  "timestamp with time zone": native("timestamptz", "timestamptz"),
  timestamptz: native("timestamptz", "timestamptz"),
  "timestamp without time zone": native("timestamp", "timestamp"),
  datetime: native("timestamp", "timestamp"),
  "time without time zone": native("time", "text"),
  "time with time zone": native("timetz", "text"),
  timetz: native("timetz", "text"),
  interval: native("interval", "text"),
  bytea: native("bytea", "bytea"),
  blob: native("bytea", "bytea"),
  tinyblob: native("bytea", "bytea"),
  mediumblob: native("bytea", "bytea"),
  longblob: native("bytea", "bytea"),
  binary: native("bytea", "bytea"),
  varbinary: native("bytea", "bytea"),
};

const DECIMAL = /^(numeric|decimal|dec|fixed)\s*(\(\s*(\d+)\s*(,\s*(\d+)\s*)?\))?/;

/** Vocabulary words that are also SQL type names: a declared schema means the SQL type. */
const ALSO_NATIVE = new Set(["integer", "boolean", "date", "text", "timestamp"]);

/**
 * The destination type for a discovered column type. `declared` says the source has a
 * schema of its own (SQL tables and views): "integer" is then PostgreSQL's integer, not a
 * sampled guess, and its values need no checking.
 */
export function destinationType(
  sourceType: string,
  options: { declared?: boolean } = {},
): DestinationType {
  const type = sourceType.trim().toLowerCase().replace(/\s+/g, " ");
  if (type in VOCABULARY && !(options.declared && ALSO_NATIVE.has(type))) {
    return VOCABULARY[type];
  }
  // Arrays: `integer[]`, PostgreSQL's internal `_int4`, information_schema's ARRAY.
  if (type.endsWith("]") || type.startsWith("_") || type === "array") {
    return native("jsonb", "json");
  }
  const decimal = DECIMAL.exec(type);
  if (decimal) {
    const [, , , precision, , scale] = decimal;
    // PostgreSQL's numeric holds up to 1000 digits of precision; MySQL's DECIMAL at most 65.
    const sql = precision ? `numeric(${precision},${scale ?? 0})` : "numeric";
    return native(sql, "numeric");
  }
  const unsigned = /\bunsigned\b/.test(type);
  // `varchar(255)`, `timestamp(6) with time zone`, `int(11) unsigned zerofill`.
  const base = type.replace(/\(.*?\)/g, "").replace(/\b(unsigned|zerofill|signed)\b/g, "")
    .replace(/\s+/g, " ").trim();
  if (unsigned) {
    // One size up, so the largest unsigned value still fits.
    if (base === "tinyint" || base === "smallint") return native("integer", "integer");
    if (base === "mediumint" || base === "int" || base === "integer") {
      return native("bigint", "integer");
    }
    if (base === "bigint") return native("numeric(20,0)", "numeric");
  }
  if (base in NATIVE) return NATIVE[base];
  if (base === "time") {
    // MySQL's TIME spans -838:59:59 to 838:59:59, beyond PostgreSQL's time of day.
    return TEXT;
  }
  if (base === "timestamp") return native("timestamptz", "timestamptz");
  return TEXT;
}

/** The type a value found in a row of a schemaless source gets when its field is new. */
export function typeOfNewValue(value: unknown): DestinationType {
  if (value === null || value === undefined) return { ...TEXT, inferred: false };
  if (typeof value === "boolean") return VOCABULARY.boolean;
  if (typeof value === "bigint") return VOCABULARY.integer;
  if (typeof value === "number") {
    return Number.isInteger(value) ? VOCABULARY.integer : VOCABULARY.number;
  }
  if (value instanceof Date) return VOCABULARY.timestamp;
  if (value instanceof Uint8Array) return native("bytea", "bytea");
  if (typeof value === "object") return VOCABULARY.object;
  return TEXT;
}

/** What a column becomes when a value does not fit its inferred type. */
export const WIDENED: DestinationType = TEXT;
