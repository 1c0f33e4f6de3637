/**
 * The one interface every connector implements. A connector is a plain object in its own
 * file (connectors/<type>.ts) that `satisfies Connector`; connectors/mod.ts is the registry.
 *
 * Settings arrive in two parts, parsed by the connector's own schemas: `config` (may be
 * logged and rendered) and `secrets` (decrypted just before the call, never logged).
 * Remote failures are values (`ConnectorError`), not exceptions.
 */
import type { z } from "zod";
import type { DataSourceType } from "../db/schema.ts";

export const ERROR_CODES = [
  "HOST_NOT_FOUND",
  "CONNECTION_REFUSED",
  "TIMEOUT",
  "TLS_ERROR",
  "SSL_REQUIRED",
  "AUTH_FAILED",
  "PERMISSION_DENIED",
  "DATABASE_NOT_FOUND",
  "RESOURCE_NOT_FOUND",
  "INVALID_RESPONSE",
  "BLOCKED_ADDRESS",
  "INVALID_CONFIG",
  "UNKNOWN",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A classified failure of the remote side (or of the settings), with what to fix. */
export type ConnectorError = {
  code: ErrorCode;
  message: string;
  /** What the user should check, naming the setting. */
  hint: string;
  /** The setting the hint is about (`host`, `password`, `configuration.recordsPath`, ...). */
  field?: string;
};

/** Errors as values at the connector boundary. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ConnectorError };

export type StageName =
  | "resolve"
  | "connect"
  | "tls"
  | "authenticate"
  | "query";

export type Stage = {
  name: StageName;
  ok: boolean;
  ms: number;
  /** Done earlier by a pooled connection, so nothing was timed now. */
  reused?: boolean;
  /** What the number covers when a driver does not let the stage be timed on its own. */
  detail?: string;
};

export type ServerInfo = Record<string, string | number | boolean | null>;

export type TestResult = {
  success: boolean;
  message: string;
  /** Milliseconds from start to answer (or failure). */
  responseTime: number;
  stages: Stage[];
  serverInfo?: ServerInfo;
  error?: ConnectorError;
};

export type Column = {
  name: string;
  type: string;
  nullable: boolean;
  primaryKey?: boolean;
  unique?: boolean;
  default?: string | null;
};

export type ForeignKey = {
  name?: string;
  columns: string[];
  referencedSchema?: string;
  referencedTable: string;
  referencedColumns: string[];
};

/** A table, view, collection, object group, sheet or endpoint: what a sync reads. */
export type Stream = {
  name: string;
  /** Namespace where the source has them (SQL schema). */
  schema?: string;
  kind: "table" | "view" | "collection" | "file" | "sheet" | "endpoint";
  columns: Column[];
  rowCount: number | null;
  /** False when rowCount comes from statistics or a sample. */
  rowCountExact: boolean;
  constraints: {
    primaryKeys: string[];
    foreignKeys: ForeignKey[];
    /** Columns that are unique on their own (the seed's shape). */
    uniqueKeys: string[];
    /** Every unique constraint, composite ones included. */
    uniqueConstraints?: { name?: string; columns: string[] }[];
  };
};

export type Discovery = { streams: Stream[] };

export type StreamRef = { name: string; schema?: string };

export type Preview = {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
};

export type ReadRequest = {
  stream: StreamRef;
  /** Read only rows whose cursor column is past this value (incremental sync). */
  cursor?: { column: string; after?: unknown };
  batchSize: number;
  signal?: AbortSignal;
};

export type RecordBatch = { rows: Record<string, unknown>[] };

/** A column of a raw COPY read, in the order its fields are wanted. */
export type CopyColumn = {
  /** The source column's name. */
  name: string;
  /**
   * Write the field as JSON text (what a jsonb column takes), the way `read` would hand the
   * value over: for columns the destination keeps as jsonb (arrays, json).
   */
  json?: boolean;
};

export type CopyOutRequest = {
  stream: StreamRef;
  columns: CopyColumn[];
  /**
   * Only rows whose cursor column is past `after`; the largest cursor value of the rows sent
   * is returned, taken from the same snapshot as the rows.
   */
  cursor?: { column: string; after?: unknown };
  signal?: AbortSignal;
};

/** What a raw COPY read ends with, once every byte was sent. */
export type CopyOutEnd = {
  /** The largest cursor value among the rows sent (as `read` would yield it); null for none. */
  cursor: unknown;
};

/** Settings for one call: what the source stores, split by its two schemas. */
export type SourceSettings<C, S> = {
  /** The source's id; connectors key their pools by it. */
  id: string;
  /**
   * Changes whenever a setting or secret changes: a connector holding a pool made with other
   * settings (say, by another app instance before an edit) must not reuse it.
   */
  fingerprint: string;
  config: C;
  secrets: S;
};

/** App-wide limits and policies a connector needs; built once from Config. */
export type ConnectorContext = {
  network: { allowedHosts: string[]; allowPrivateNetworks: boolean };
  pool: { min: number; max: number; idleTimeoutMs: number; connectionTimeoutMs: number };
  filesDir: string;
};

/** What the creation form and request validation need: no connection code. */
export type ConnectorSpec<
  C extends z.ZodObject = z.ZodObject,
  S extends z.ZodObject = z.ZodObject,
> = {
  type: DataSourceType;
  label: string;
  description: string;
  /** Non-secret settings; fields carry `.meta({ title, description, placeholder })` for forms. */
  configSchema: C;
  /** Secret settings; stored encrypted, never returned. */
  secretsSchema: S;
  /** Rules that need both parts (such as "a uri or a host"). */
  check?(config: z.infer<C>, secrets: z.infer<S>): { path: string; message: string }[];
};

/** A missing capability, asked for anyway. */
export class UnsupportedOperationError extends Error {
  override name = "UnsupportedOperationError";
}

/** A classified remote failure thrown from inside `read` (an iterator cannot return a value). */
export class ConnectorFailure extends Error {
  override name = "ConnectorFailure";
  constructor(readonly error: ConnectorError) {
    super(error.message);
  }
}

export type Connector<
  C extends z.ZodObject = z.ZodObject,
  S extends z.ZodObject = z.ZodObject,
> = ConnectorSpec<C, S> & {
  capabilities: {
    /** Keeps a pool per source between calls (close it with `close`). */
    pooled: boolean;
    /** `read` can start past a cursor value. */
    incremental: boolean;
    /** `copyOut` is there: rows as PostgreSQL COPY text, without a JavaScript object each. */
    copyOut?: boolean;
  };
  test(
    settings: SourceSettings<z.infer<C>, z.infer<S>>,
    ctx: ConnectorContext,
  ): Promise<TestResult>;
  discover(
    settings: SourceSettings<z.infer<C>, z.infer<S>>,
    ctx: ConnectorContext,
  ): Promise<Result<Discovery>>;
  preview(
    settings: SourceSettings<z.infer<C>, z.infer<S>>,
    request: { stream: StreamRef; limit: number },
    ctx: ConnectorContext,
  ): Promise<Result<Preview>>;
  read(
    settings: SourceSettings<z.infer<C>, z.infer<S>>,
    request: ReadRequest,
    ctx: ConnectorContext,
  ): AsyncIterable<RecordBatch>;
  /**
   * The rows of a stream as bytes of PostgreSQL's COPY text format (one line a row, fields
   * tab-separated in `columns` order, `\N` for NULL), read in one consistent snapshot; the
   * generator's return value carries the cursor high-water mark. For a PostgreSQL
   * destination this moves rows at close to COPY's own speed. Stopping the iteration early
   * (or aborting `signal`) abandons the read on the source.
   */
  copyOut?(
    settings: SourceSettings<z.infer<C>, z.infer<S>>,
    request: CopyOutRequest,
    ctx: ConnectorContext,
  ): AsyncGenerator<Uint8Array, CopyOutEnd, undefined>;
  /** Releases what the connector keeps for a source (its pool). */
  close?(sourceId: string): Promise<void>;
};
