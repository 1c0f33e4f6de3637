/**
 * The app's own tables. Field names of data_sources and data_source_sync_logs are the
 * seed's (see ../../shared/reference); migrations in db/migrations are generated from here
 * with `deno task db:generate`.
 */
import { sql } from "drizzle-orm";
import {
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

export const DATA_SOURCE_TYPES = [
  "POSTGRESQL",
  "MYSQL",
  "MONGODB",
  "REST_API",
  "GRAPHQL",
  "S3",
  "GOOGLE_SHEETS",
  "CSV_FILE",
] as const;
export type DataSourceType = (typeof DATA_SOURCE_TYPES)[number];

export const DATA_SOURCE_STATUSES = [
  "CONNECTED",
  "DISCONNECTED",
  "ERROR",
  "TESTING",
  "CONFIGURING",
] as const;
export type DataSourceStatus = (typeof DATA_SOURCE_STATUSES)[number];

export const ROLES = ["ADMIN", "USER"] as const;
export type Role = (typeof ROLES)[number];

export const roleEnum = pgEnum("role", ROLES);
export const dataSourceTypeEnum = pgEnum("data_source_type", DATA_SOURCE_TYPES);
export const dataSourceStatusEnum = pgEnum("data_source_status", DATA_SOURCE_STATUSES);

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();

export const users = pgTable("users", {
  id: text("id").primaryKey(),
  email: text("email").notNull(),
  passwordHash: text("password_hash").notNull(),
  role: roleEnum("role").notNull().default("USER"),
  createdAt: createdAt(),
}, (t) => [uniqueIndex("users_email_lower_idx").on(sql`lower(${t.email})`)]);

/** `id` is the SHA-256 of the cookie token: the token itself is never stored. */
export const sessions = pgTable("sessions", {
  id: text("id").primaryKey(),
  userId: text("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  createdAt: createdAt(),
}, (t) => [index("sessions_user_idx").on(t.userId)]);

/** Bearer tokens for scripts; only the SHA-256 of the token is stored. */
export const apiTokens = pgTable("api_tokens", {
  id: text("id").primaryKey(),
  userId: text("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: createdAt(),
  lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
  /** After this the token no longer authenticates; null: it never expires. */
  expiresAt: timestamp("expires_at", { withTimezone: true }),
}, (t) => [index("api_tokens_user_idx").on(t.userId)]);

export const dataSources = pgTable("data_sources", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  description: text("description"),
  type: dataSourceTypeEnum("type").notNull(),
  status: dataSourceStatusEnum("status").notNull().default("CONFIGURING"),
  /** Non-secret, type-specific settings (see connectors/<type>.ts). */
  configuration: jsonb("configuration").$type<Record<string, unknown>>().notNull().default({}),
  host: text("host"),
  port: integer("port"),
  database: text("database"),
  ssl: boolean("ssl").notNull().default(false),
  username: text("username"),
  /** Vault envelope (JSON text), never plaintext. */
  password: text("password"),
  /** Vault envelope (JSON text), never plaintext. */
  apiKey: text("api_key"),
  /** The type's other secrets (secretKey, credentials, secret header values): field → envelope. */
  secrets: jsonb("secrets").$type<Record<string, string>>().notNull().default({}),
  lastConnectionTest: timestamp("last_connection_test", { withTimezone: true }),
  lastSuccessfulSync: timestamp("last_successful_sync", { withTimezone: true }),
  connectionError: text("connection_error"),
  totalRecords: integer("total_records").notNull().default(0),
  totalSyncs: integer("total_syncs").notNull().default(0),
  failedSyncs: integer("failed_syncs").notNull().default(0),
  avgResponseTime: doublePrecision("avg_response_time"),
  /** Restrict: removing a user never silently removes the sources it created. */
  createdById: text("created_by_id").notNull().references(() => users.id, {
    onDelete: "restrict",
  }),
  createdAt: createdAt(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  index("data_sources_created_by_idx").on(t.createdById),
  index("data_sources_created_at_idx").on(t.createdAt),
]);

export const dataSourceSyncLogs = pgTable("data_source_sync_logs", {
  id: text("id").primaryKey(),
  dataSourceId: text("data_source_id").notNull().references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
  completedAt: timestamp("completed_at", { withTimezone: true }),
  success: boolean("success").notNull().default(false),
  recordsSync: integer("records_sync").notNull().default(0),
  errorMessage: text("error_message"),
  /** Milliseconds. */
  duration: integer("duration"),
  mode: text("mode").notNull().default("full_refresh"),
  /** Records per stream: { "<stream>": count }. */
  streams: jsonb("streams").$type<Record<string, number>>().notNull().default({}),
  createdAt: createdAt(),
  /** QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED (see sync/records.ts). */
  status: text("status").notNull().default("QUEUED"),
  /** What started the run: manual (a user, page or API) or schedule. */
  trigger: text("trigger").notNull().default("manual"),
  requestedById: text("requested_by_id").references(() => users.id, { onDelete: "set null" }),
  /** The job that runs it; no foreign key, so the log outlives finished jobs. */
  jobId: text("job_id"),
  /** 1 for the first try; a run picked up again after its instance died counts up. */
  attempt: integer("attempt").notNull().default(1),
  /** Per stream: destination table, mode, records, outcome and error. */
  streamResults: jsonb("stream_results").$type<SyncStreamResult[]>().notNull().default([]),
}, (t) => [
  index("sync_logs_source_started_idx").on(t.dataSourceId, t.startedAt),
  index("sync_logs_status_idx").on(t.status),
]);

/** One stream's outcome within a sync run. */
export type SyncStreamResult = {
  stream: string;
  table: string;
  mode: "full_refresh" | "incremental";
  records: number;
  status: "SUCCEEDED" | "FAILED" | "CANCELLED" | "SKIPPED";
  error?: string;
  /** Why the stream ran in another mode than asked (no cursor column, no capability). */
  note?: string;
  cursorColumn?: string;
};

export type AuditMetadata = {
  ip?: string;
  userAgent?: string;
  timestamp: string;
  outcome: "success" | "failure" | "denied";
  [key: string]: unknown;
};

export const auditLogs = pgTable("audit_logs", {
  id: text("id").primaryKey(),
  userId: text("user_id").references(() => users.id, { onDelete: "set null" }),
  action: text("action").notNull(),
  entityType: text("entity_type").notNull(),
  entityId: text("entity_id"),
  metadata: jsonb("metadata").$type<AuditMetadata>().notNull(),
  createdAt: createdAt(),
}, (t) => [
  index("audit_logs_created_idx").on(t.createdAt),
  index("audit_logs_user_idx").on(t.userId),
  index("audit_logs_action_idx").on(t.action),
]);

/** Counters for rate-limiter-flexible's RateLimiterDrizzle: shared by every instance. */
export const rateLimits = pgTable("rate_limits", {
  key: text("key").primaryKey(),
  points: integer("points").notNull().default(0),
  expire: timestamp("expire", { withTimezone: true }),
});

export type User = typeof users.$inferSelect;
export type DataSource = typeof dataSources.$inferSelect;
export type SyncLog = typeof dataSourceSyncLogs.$inferSelect;
export type AuditLog = typeof auditLogs.$inferSelect;

/**
 * One known value per key version, encrypted with that key: lets the app refuse to start
 * with a wrong ENCRYPTION_MASTER_KEY instead of failing on every secret later.
 */
export const vaultCanaries = pgTable("vault_canaries", {
  version: integer("version").primaryKey(),
  canary: text("canary").notNull(),
  createdAt: createdAt(),
});

/** What discovery found, kept to show what changed between two discoveries. */
export const schemaSnapshots = pgTable("schema_snapshots", {
  id: text("id").primaryKey(),
  dataSourceId: text("data_source_id").notNull().references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  discoveredAt: timestamp("discovered_at", { withTimezone: true }).notNull().defaultNow(),
  /** SHA-256 of the schema JSON: equal hashes mean nothing changed. */
  hash: text("hash").notNull(),
  schema: jsonb("schema").$type<unknown>().notNull(),
}, (t) => [index("schema_snapshots_source_idx").on(t.dataSourceId, t.discoveredAt)]);

/** Recent connection tests of a source (for the response-time chart); trimmed per source. */
export const connectionTests = pgTable("connection_tests", {
  id: text("id").primaryKey(),
  dataSourceId: text("data_source_id").notNull().references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  testedAt: timestamp("tested_at", { withTimezone: true }).notNull().defaultNow(),
  success: boolean("success").notNull(),
  /** Milliseconds. */
  responseTime: doublePrecision("response_time").notNull(),
  errorCode: text("error_code"),
  /** manual (a user), health (the scheduled check). */
  trigger: text("trigger").notNull().default("manual"),
}, (t) => [index("connection_tests_source_idx").on(t.dataSourceId, t.testedAt)]);

/**
 * Background work shared by every instance: syncs and health checks. Claimed with
 * `FOR UPDATE SKIP LOCKED`; a claim holds a lease (`lockedUntil`) that the running instance
 * renews, so a job whose instance died is picked up again once the lease runs out.
 */
export const jobs = pgTable("jobs", {
  id: text("id").primaryKey(),
  /** sync, health_check (see sync/jobs.ts). */
  kind: text("kind").notNull(),
  dataSourceId: text("data_source_id").references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  payload: jsonb("payload").$type<Record<string, unknown>>().notNull().default({}),
  /** Enqueuing the same key twice creates one job (a health check slot, a cron tick). */
  dedupeKey: text("dedupe_key").unique(),
  /** queued, running, succeeded, failed, cancelled. */
  status: text("status").notNull().default("queued"),
  runAt: timestamp("run_at", { withTimezone: true }).notNull().defaultNow(),
  attempts: integer("attempts").notNull().default(0),
  maxAttempts: integer("max_attempts").notNull().default(1),
  /** The instance holding the job while it runs (kept afterwards: the one that ran it). */
  lockedBy: text("locked_by"),
  lockedUntil: timestamp("locked_until", { withTimezone: true }),
  /** Set by a cancel request on any instance; the running instance polls it. */
  cancelRequested: boolean("cancel_requested").notNull().default(false),
  lastError: text("last_error"),
  createdAt: createdAt(),
  startedAt: timestamp("started_at", { withTimezone: true }),
  finishedAt: timestamp("finished_at", { withTimezone: true }),
}, (t) => [
  index("jobs_claim_idx").on(t.status, t.runAt),
  // At most one sync of a source waits or runs at a time, whichever instance asked.
  uniqueIndex("jobs_one_active_sync_idx").on(t.dataSourceId)
    .where(sql`${t.kind} = 'sync' and ${t.status} in ('queued', 'running')`),
]);

export type Job = typeof jobs.$inferSelect;

/** How and when a source syncs: schedule (cron), streams, mode, cursor columns. */
export const syncSettings = pgTable("sync_settings", {
  dataSourceId: text("data_source_id").primaryKey().references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  /** Cron expression (5 fields or a nickname such as @daily); null means by hand only. */
  schedule: text("schedule"),
  /** IANA time zone the schedule is read in. */
  timezone: text("timezone").notNull().default("UTC"),
  mode: text("mode").notNull().default("full_refresh"),
  /** Stream keys to sync; null means every discovered stream. */
  streams: jsonb("streams").$type<string[] | null>(),
  /** Chosen cursor column per stream key (incremental); others are suggested. */
  cursorColumns: jsonb("cursor_columns").$type<Record<string, string>>().notNull().default({}),
  nextRunAt: timestamp("next_run_at", { withTimezone: true }),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [index("sync_settings_next_run_idx").on(t.nextRunAt)]);

export type SyncSettings = typeof syncSettings.$inferSelect;

/** What the last sync of a stream left: destination table, rows, incremental cursor. */
export const syncStreamStates = pgTable("sync_stream_states", {
  dataSourceId: text("data_source_id").notNull().references(() => dataSources.id, {
    onDelete: "cascade",
  }),
  stream: text("stream").notNull(),
  /** Table in schema ds_<source id>; chosen at the first sync and kept. */
  tableName: text("table_name").notNull(),
  rowCount: integer("row_count").notNull().default(0),
  cursorColumn: text("cursor_column"),
  /** The largest cursor value committed, typed: {type, value}. */
  cursorValue: jsonb("cursor_value").$type<{ type: string; value: unknown } | null>(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.dataSourceId, t.stream] })]);

export type SyncStreamState = typeof syncStreamStates.$inferSelect;
