/**
 * MySQL and MariaDB, through mysql2.
 *
 * Every connection of a source's pool gets its socket from `openSocket`: the host is
 * resolved and checked by the address guard and the TCP connection goes to the checked
 * address; mysql2 then reads the greeting, negotiates TLS (server name = the configured
 * host) and logs in. Failures are classified from MySQL error numbers, mysql2's own codes
 * and errno.
 */
import net from "node:net";
import { escapeId, type PoolConnection as CorePoolConnection } from "mysql2";
import mysql2 from "mysql2/promise";
import { z } from "zod";
import {
  databaseField,
  hostField,
  passwordField,
  portField,
  sslField,
  timeoutField,
  usernameField,
} from "./_fields.ts";
import { closePool, pooled } from "./_pools.ts";
import {
  Attempt,
  ConnectionMeter,
  connectTimeoutOf,
  describe,
  jsonSafeRow,
  makeJsonSafe,
  networkFailure,
  openTcp,
  reusedStages,
  sslModeField,
  sslRootCertField,
  StageFailure,
  streamBatches,
  tablesToCount,
  testFailed,
  testSucceeded,
  timeoutError,
  type TlsPlan,
  tlsPlanOf,
  withoutSecrets,
  withTimeout,
} from "./_sql.ts";
import {
  type Column,
  type Connector,
  type ConnectorContext,
  type ConnectorError,
  ConnectorFailure,
  type Discovery,
  type ForeignKey,
  type Preview,
  type ReadRequest,
  type RecordBatch,
  type Result,
  type SourceSettings,
  type Stage,
  type StageName,
  type Stream,
  type StreamRef,
  type TestResult,
} from "./types.ts";

const configSchema = z.strictObject({
  host: hostField(),
  port: portField(3306),
  database: databaseField(),
  username: usernameField(),
  ssl: sslField(),
  sslMode: sslModeField(),
  sslRootCert: sslRootCertField(),
  connectionTimeoutMillis: timeoutField("Connection timeout"),
  idleTimeoutMillis: z.coerce.number().int().min(1000).max(3_600_000).optional().meta({
    title: "Idle timeout",
    description: "Milliseconds before an idle pooled connection above the minimum is closed",
  }),
  poolConfig: z.strictObject({
    min: z.coerce.number().int().min(0).max(100).optional(),
    max: z.coerce.number().int().min(1).max(100).optional(),
  }).optional().meta({ title: "Pool size", description: "Connections kept for this source" }),
});

const secretsSchema = z.strictObject({ password: passwordField() });

type Config = z.infer<typeof configSchema>;
type Secrets = z.infer<typeof secretsSchema>;
type Settings = SourceSettings<Config, Secrets>;

const DISCOVERY_TIMEOUT_MS = 120_000;
const PREVIEW_TIMEOUT_MS = 60_000;
const READ_BATCH_TIMEOUT_MS = 300_000;
/**
 * Rows mysql2 may hold before it pauses the connection. Few: each is an object until the
 * loader has written it, and rows kept alive across collections end up in the old
 * generation, which grows the process for what is garbage a moment later.
 */
const STREAM_BUFFER_ROWS = 256;

/** mysql2 gives no sign between its TLS handshake and the login, so one number covers both. */
const TLS_WITH_LOGIN = "TLS handshake and login together: the driver runs them as one exchange";

type Pool = {
  pool: mysql2.Pool;
  /** Ends each read in progress with the given error (the pool is closing). */
  reads: Set<(error: Error) => void>;
  meter: ConnectionMeter;
  config: Config;
  secrets: Secrets;
  timeoutMs: number;
  tls: boolean;
};

// --- Connections -----------------------------------------------------------------------

/**
 * A socket for mysql2, which wants one at once: it is connected in place once the host is
 * checked, and a failure reaches mysql2 as the socket's error.
 */
function openSocket(
  options: { config: Config; ctx: ConnectorContext; timeoutMs: number; attempt: Attempt },
  meter?: ConnectionMeter,
): net.Socket {
  const socket = new net.Socket();
  openTcp({
    host: options.config.host,
    port: options.config.port,
    network: options.ctx.network,
    timeoutMs: options.timeoutMs,
    attempt: options.attempt,
    protocol: "MySQL",
    socket,
  }).then(() => meter?.track(socket), () => {/* reported through the socket's error */});
  return socket;
}

function sslOptions(plan: TlsPlan | null) {
  if (!plan) return undefined;
  return { rejectUnauthorized: plan.verify, verifyIdentity: plan.verify, ca: plan.ca };
}

/** DATETIME and TIMESTAMP as ISO text ("2025-01-01T10:00:00"), the rest as mysql2 reads it. */
function typeCast(
  field: { type: string; string(): string | null },
  next: () => unknown,
): unknown {
  if (field.type === "DATETIME" || field.type === "TIMESTAMP") {
    return field.string()?.replace(" ", "T") ?? null;
  }
  return next();
}

function driverOptions(config: Config, secrets: Secrets, timeoutMs: number, plan: TlsPlan | null) {
  return {
    // The name stays the configured host: it is the TLS server name. The socket goes to
    // the checked address (openSocket), so mysql2 never resolves it.
    host: config.host,
    port: config.port,
    user: config.username,
    password: secrets.password,
    database: config.database,
    ssl: sslOptions(plan),
    connectTimeout: timeoutMs,
    charset: "UTF8MB4_UNICODE_CI",
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    typeCast,
    multipleStatements: false,
    enableKeepAlive: true,
  };
}

function poolOf(settings: Settings, ctx: ConnectorContext): Promise<Pool> {
  return pooled({ sourceId: settings.id, fingerprint: settings.fingerprint, type: "MYSQL" }, () => {
    const { config, secrets } = settings;
    const meter = new ConnectionMeter();
    const timeoutMs = connectTimeoutOf(config, ctx);
    const plan = tlsPlanOf(config);
    const max = config.poolConfig?.max ?? ctx.pool.max;
    const pool = mysql2.createPool({
      ...driverOptions(config, secrets, timeoutMs, plan),
      stream: () => openSocket({ config, ctx, timeoutMs, attempt: meter.begin() }, meter),
      connectionLimit: max,
      // mysql2 keeps this many idle connections past the idle timeout: the pool's minimum.
      maxIdle: Math.min(config.poolConfig?.min ?? ctx.pool.min, max),
      idleTimeout: config.idleTimeoutMillis ?? ctx.pool.idleTimeoutMs,
      waitForConnections: true,
      queueLimit: 0,
    });
    // mysql2 negotiates TLS and logs in as one exchange; the pool says when it is done.
    pool.on("connection", () => {
      const attempt = meter.latest;
      if (!attempt || attempt.has("authenticate")) return;
      if (plan) {
        attempt.pass("tls", { detail: TLS_WITH_LOGIN });
        attempt.stages.push({ name: "authenticate", ok: true, ms: 0, detail: "counted in tls" });
      } else {
        attempt.pass("authenticate");
      }
    });
    // Every connection, to end the busy ones when closing: mysql2's end() waits for the
    // query a connection runs, and a read on a stalled link never finishes it.
    const opened = new Set<{ destroy(): void }>();
    pool.on("connection", (connection) => {
      opened.add(connection);
      connection.once("end", () => opened.delete(connection));
    });
    const reads = new Set<(error: Error) => void>();
    return Promise.resolve({
      pool: { pool, reads, meter, config, secrets, timeoutMs, tls: plan !== null },
      stats: () => meter.stats(),
      close: async () => {
        // A read's connection is ended with the rest; the read learns why at once.
        const closing = Object.assign(new Error("The source's connections were closed"), {
          code: "PROTOCOL_CONNECTION_LOST",
        });
        for (const abandon of reads) abandon(closing);
        const ended = pool.end().catch(() => {});
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<"late">((resolve) => (timer = setTimeout(resolve, 2_000, "late")));
        const first = await Promise.race([ended, late]);
        clearTimeout(timer);
        // end() counts on every connection ending cleanly: a destroyed one never reports.
        if (first === "late") { for (const connection of opened) connection.destroy(); }
      },
    });
  });
}

/** A quoted identifier: mysql2's escapeId, whole (a dot is part of the name, not a qualifier). */
function quoteIdentifier(name: string): string {
  return escapeId(name, true);
}

function qualified(stream: StreamRef, database: string): string {
  return `${quoteIdentifier(stream.schema ?? database)}.${quoteIdentifier(stream.name)}`;
}

// --- Failures --------------------------------------------------------------------------

type MyContext = { config: Config; secrets: Secrets; stage: StageName };

/** MySQL / MariaDB error numbers that say what to fix. */
function errnoFailure(errno: number, serverMessage: string, c: MyContext): ConnectorError | null {
  const who = `"${c.config.username}"`;
  const db = `"${c.config.database}"`;
  switch (errno) {
    case 1045: // ER_ACCESS_DENIED_ERROR
    case 1698: // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
      return {
        code: "AUTH_FAILED",
        message: `Login as ${who} failed: access denied (${errno})`,
        hint: "Check the username and password",
        field: "password",
      };
    case 1251: // ER_NOT_SUPPORTED_AUTH_MODE
      return {
        code: "AUTH_FAILED",
        message: `Login as ${who} failed: unsupported authentication method (${errno})`,
        hint: "Check the user's authentication plugin on the server",
        field: "username",
      };
    case 3159: // ER_SECURE_TRANSPORT_REQUIRED (MySQL)
      return {
        code: "SSL_REQUIRED",
        message: `The server accepts connections only over TLS (${errno})`,
        hint: "Turn on ssl (Use TLS) for this source",
        field: "ssl",
      };
    case 1044: // ER_DBACCESS_DENIED_ERROR
      return {
        code: "PERMISSION_DENIED",
        message: `${who} may not use database ${db} (${errno})`,
        hint: `Check the username: it needs privileges on ${db}, or choose another database`,
        field: "username",
      };
    case 1130: // ER_HOST_NOT_PRIVILEGED
    case 1129: // ER_HOST_IS_BLOCKED
    case 1227: // ER_SPECIFIC_ACCESS_DENIED_ERROR
    case 1142: // ER_TABLEACCESS_DENIED_ERROR
    case 1143: // ER_COLUMNACCESS_DENIED_ERROR
    case 3118: // ER_ACCOUNT_HAS_BEEN_LOCKED
    case 4151: // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
      return {
        code: "PERMISSION_DENIED",
        message: `Permission denied for ${who} (${errno}): ${serverMessage}`,
        hint: "Check the username: the server does not allow this (grants, host or account lock)",
        field: "username",
      };
    case 1049: // ER_BAD_DB_ERROR
      return {
        code: "DATABASE_NOT_FOUND",
        message: `Database ${db} does not exist (${errno})`,
        hint: "Check the database name",
        field: "database",
      };
    case 1146: // ER_NO_SUCH_TABLE
      return {
        code: "RESOURCE_NOT_FOUND",
        message: `Not found (${errno}): ${serverMessage}`,
        hint: "The table is gone: discover the schema again",
      };
    case 1040: // ER_CON_COUNT_ERROR
      return {
        code: "UNKNOWN",
        message: `The server has no free connections (${errno})`,
        hint: "Lower the pool size of this or other sources, or raise max_connections",
        field: "configuration.poolConfig",
      };
    case 3024: // ER_QUERY_TIMEOUT (MySQL)
    case 1969: // ER_STATEMENT_TIMEOUT (MariaDB)
      return timeoutError({ host: c.config.host, port: c.config.port, stage: c.stage });
  }
  return null;
}

/** mysql2's own codes for what happens on the client side. */
function driverFailure(code: string, c: MyContext): ConnectorError | null {
  const at = `${c.config.host}:${c.config.port}`;
  switch (code) {
    case "ETIMEDOUT":
    case "PROTOCOL_SEQUENCE_TIMEOUT":
    case "QUERY_TIMEOUT":
      return timeoutError({ host: c.config.host, port: c.config.port, stage: c.stage });
    case "HANDSHAKE_NO_SSL_SUPPORT":
      return {
        code: "TLS_ERROR",
        message: `${at} does not accept TLS connections`,
        hint: "Turn ssl off, or enable TLS on the server",
        field: "ssl",
      };
    case "PROTOCOL_CONNECTION_LOST":
    case "PROTOCOL_PACKETS_OUT_OF_ORDER":
    case "HANDSHAKE_UNKNOWN_ERROR":
      return {
        code: "INVALID_RESPONSE",
        message: `${at} closed the connection or answered out of protocol (${code})`,
        hint: "Check the port: the server there may not be MySQL",
        field: "port",
      };
  }
  return null;
}

function classify(error: unknown, c: MyContext): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  const message = describe(error);
  const failure =
    (typeof errno === "number" && errno > 0 ? errnoFailure(errno, message, c) : null) ??
      (typeof code === "string"
        ? driverFailure(code, c) ??
          networkFailure(error, {
            ...c.config,
            stage: code.startsWith("HANDSHAKE_SSL") ? "tls" : c.stage,
            protocol: "MySQL",
          })
        : null) ??
      {
        code: "UNKNOWN" as const,
        message: `MySQL error${typeof code === "string" ? ` (${code})` : ""}: ${message}`,
        hint: "See the message; check the settings",
      };
  return withoutSecrets(failure, [c.secrets.password]);
}

/** The stage a failure while getting a connection belongs to. */
function failedStage(error: unknown, attempt: Attempt | undefined, tls: boolean): StageName {
  if (error instanceof StageFailure) return error.stage;
  if ((error as { code?: string }).code === "HANDSHAKE_SSL_ERROR") return "tls";
  if (attempt && !attempt.has("connect")) return "connect";
  // A server error number is the server's answer to the login, so TLS (if any) was done.
  const errno = (error as { errno?: unknown }).errno;
  if (typeof errno === "number" && errno > 0) return "authenticate";
  return tls ? "tls" : "authenticate";
}

/**
 * After 1045 on a plain connection: does the same login succeed over TLS? Then the user is
 * one that must use TLS (REQUIRE SSL), which is the thing to fix.
 */
async function refusedOnlyWithoutTls(
  config: Config,
  secrets: Secrets,
  ctx: ConnectorContext,
  timeoutMs: number,
): Promise<boolean> {
  const plan: TlsPlan = {
    servername: tlsPlanOf({ ...config, ssl: true })!.servername,
    verify: false,
  };
  let connection: mysql2.Connection | undefined;
  try {
    connection = await withTimeout(
      mysql2.createConnection({
        ...driverOptions(config, secrets, timeoutMs, plan),
        stream: () => openSocket({ config, ctx, timeoutMs, attempt: new Attempt() }),
      }),
      timeoutMs,
      () => new Error("probe timed out"),
    );
    return true;
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    // Any server answer but "access denied" means the TLS login got further.
    return typeof errno === "number" && errno > 0 && errno !== 1045;
  } finally {
    connection?.destroy();
  }
}

// --- Test ------------------------------------------------------------------------------

const SERVER_INFO_SQL = `select version() as version, database() as \`database\`,
  current_user() as \`user\`, @@time_zone as timezone, @@system_time_zone as systemTimezone,
  @@character_set_database as encoding, @@read_only as readOnly, connection_id() as connectionId`;

type ServerInfoRow = {
  version: string;
  database: string | null;
  user: string;
  timezone: string;
  systemTimezone: string;
  encoding: string;
  readOnly: number;
  connectionId: number | string;
};

function connectionStages(tls: boolean): StageName[] {
  return tls
    ? ["resolve", "connect", "tls", "authenticate"]
    : ["resolve", "connect", "authenticate"];
}

function round(ms: number) {
  return Math.round(ms * 100) / 100;
}

async function test(settings: Settings, ctx: ConnectorContext): Promise<TestResult> {
  const started = performance.now();
  const pool = await poolOf(settings, ctx);
  const { meter, config } = pool;
  const startedBefore = meter.started;
  const opened = () => meter.started > startedBefore ? meter.latest : undefined;
  let connection: mysql2.PoolConnection | undefined;
  let stage: StageName = "authenticate";
  meter.active++;
  try {
    connection = await withTimeout(
      pool.pool.getConnection(),
      pool.timeoutMs,
      () => Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }),
    );
    stage = "query";
    const queryStarted = performance.now();
    const [rows] = await connection.query<(ServerInfoRow & mysql2.RowDataPacket)[]>({
      sql: SERVER_INFO_SQL,
      timeout: pool.timeoutMs,
    });
    const query: Stage = { name: "query", ok: true, ms: round(performance.now() - queryStarted) };
    const row = rows[0];
    const attempt = opened();
    const product = /mariadb/i.test(row.version) ? "MariaDB" : "MySQL";
    return testSucceeded({
      started,
      stages: [...(attempt?.stages ?? reusedStages(connectionStages(pool.tls))), query],
      message: `Connected to ${product} ${row.version} as ${row.user} on ${row.database}`,
      serverInfo: {
        product,
        version: row.version,
        database: row.database,
        user: row.user,
        host: config.host,
        address: meter.latest?.address ?? null,
        port: config.port,
        timezone: row.timezone === "SYSTEM" ? row.systemTimezone : row.timezone,
        encoding: row.encoding,
        ssl: pool.tls,
        replica: Number(row.readOnly) === 1,
        connectionId: Number(row.connectionId),
      },
    });
  } catch (error) {
    const attempt = opened();
    if (stage !== "query") stage = failedStage(error, attempt, pool.tls);
    let failure = classify(error, { config, secrets: pool.secrets, stage });
    if (
      (error as { errno?: number }).errno === 1045 && !pool.tls &&
      await refusedOnlyWithoutTls(config, pool.secrets, ctx, pool.timeoutMs)
    ) {
      failure = {
        code: "SSL_REQUIRED",
        message: `The server accepts "${config.username}" only over TLS: the plain login was ` +
          "denied and the same login over TLS was not",
        hint: "Turn on ssl (Use TLS) for this source",
        field: "ssl",
      };
    }
    let last: Stage = attempt ? attempt.failed(stage) : { name: stage, ok: false, ms: 0 };
    if (attempt && pool.tls && stage === "authenticate") {
      attempt.pass("tls", { detail: TLS_WITH_LOGIN });
      last = { name: "authenticate", ok: false, ms: 0, detail: "counted in tls" };
    }
    const stages = [...(attempt?.stages ?? reusedStages(connectionStages(pool.tls))), last];
    await closePool(settings.id);
    return testFailed({ started, stages, error: failure });
  } finally {
    meter.active--;
    connection?.release();
  }
}

// --- Discovery -------------------------------------------------------------------------

const TABLES_SQL = `select table_name as name, table_type as type, table_rows as estimate,
  data_length as bytes
from information_schema.tables where table_schema = ? order by table_name`;

const COLUMNS_SQL = `select table_name as tableName, column_name as name, column_type as type,
  is_nullable as nullable, column_default as defaultValue, extra
from information_schema.columns where table_schema = ?
order by table_name, ordinal_position`;

/**
 * Key columns: PRIMARY is always the primary key's name; a row with a referenced table is a
 * foreign key; the rest are unique keys (the view lists no plain indexes).
 */
const KEYS_SQL =
  `select table_name as tableName, constraint_name as name, column_name as \`column\`,
  referenced_table_schema as refSchema, referenced_table_name as refTable,
  referenced_column_name as refColumn
from information_schema.key_column_usage where table_schema = ?
order by table_name, constraint_name, ordinal_position`;

type TableRow = { name: string; type: string; estimate: string | null; bytes: string | null };
type ColumnRow = {
  tableName: string;
  name: string;
  type: string;
  nullable: "YES" | "NO";
  defaultValue: string | null;
  extra: string;
};
type KeyRow = {
  tableName: string;
  name: string;
  column: string;
  refSchema: string | null;
  refTable: string | null;
  refColumn: string | null;
};

type Key = {
  name: string;
  columns: string[];
  ref?: { schema: string; table: string; columns: string[] };
};

function keysOf(rows: KeyRow[]): Key[] {
  const keys = new Map<string, Key>();
  for (const row of rows) {
    let key = keys.get(row.name);
    if (!key) {
      key = { name: row.name, columns: [] };
      if (row.refTable) key.ref = { schema: row.refSchema ?? "", table: row.refTable, columns: [] };
      keys.set(row.name, key);
    }
    key.columns.push(row.column);
    if (key.ref && row.refColumn) key.ref.columns.push(row.refColumn);
  }
  return [...keys.values()];
}

/** MariaDB writes a NULL default as the word NULL; a string default is quoted. */
function columnDefault(row: ColumnRow): string | null {
  if (row.defaultValue !== null && row.defaultValue !== "NULL") return row.defaultValue;
  return /auto_increment/i.test(row.extra) ? "auto_increment" : null;
}

function toStream(
  database: string,
  table: TableRow,
  columns: ColumnRow[],
  keyRows: KeyRow[],
): Stream {
  const keys = keysOf(keyRows);
  const primary = keys.find((key) => key.name === "PRIMARY" && !key.ref);
  const uniques = keys.filter((key) => key.name !== "PRIMARY" && !key.ref)
    .sort((a, b) => a.name.localeCompare(b.name));
  const soloUnique = new Set(
    uniques.filter((key) => key.columns.length === 1).map((key) => key.columns[0]),
  );
  const primaryColumns = new Set(primary?.columns ?? []);
  const isView = table.type === "VIEW";
  return {
    name: table.name,
    schema: database,
    kind: isView ? "view" : "table",
    columns: columns.map((row): Column => ({
      name: row.name,
      type: row.type,
      nullable: row.nullable === "YES",
      primaryKey: primaryColumns.has(row.name),
      unique: soloUnique.has(row.name) ||
        (primary?.columns.length === 1 && primaryColumns.has(row.name)),
      default: columnDefault(row),
    })),
    rowCount: isView || table.estimate === null ? null : Number(table.estimate),
    rowCountExact: false,
    constraints: {
      primaryKeys: primary?.columns ?? [],
      foreignKeys: keys.filter((key) => key.ref).sort((a, b) => a.name.localeCompare(b.name))
        .map((key): ForeignKey => ({
          name: key.name,
          columns: key.columns,
          referencedSchema: key.ref!.schema,
          referencedTable: key.ref!.table,
          referencedColumns: key.ref!.columns,
        })),
      uniqueKeys: [...soloUnique].sort(),
      uniqueConstraints: uniques.map((key) => ({ name: key.name, columns: key.columns })),
    },
  };
}

async function rowsOf<T>(pool: mysql2.Pool, sql: string, values: unknown[], timeout: number) {
  const [rows] = await pool.query<(T & mysql2.RowDataPacket)[]>({ sql, values, timeout });
  return rows as T[];
}

/**
 * Four queries whatever the number of tables: tables, columns and key columns of the
 * source's database, then one UNION ALL of exact counts for the small tables.
 */
async function discover(settings: Settings, ctx: ConnectorContext): Promise<Result<Discovery>> {
  const pool = await poolOf(settings, ctx);
  const database = pool.config.database;
  try {
    return await pool.meter.busy(async () => {
      const [tables, columns, keys] = await Promise.all([
        rowsOf<TableRow>(pool.pool, TABLES_SQL, [database], DISCOVERY_TIMEOUT_MS),
        rowsOf<ColumnRow>(pool.pool, COLUMNS_SQL, [database], DISCOVERY_TIMEOUT_MS),
        rowsOf<KeyRow>(pool.pool, KEYS_SQL, [database], DISCOVERY_TIMEOUT_MS),
      ]);
      const columnsByTable = Map.groupBy(columns, (row) => row.tableName);
      const keysByTable = Map.groupBy(keys, (row) => row.tableName);
      const streams = tables.map((table) =>
        toStream(
          database,
          table,
          columnsByTable.get(table.name) ?? [],
          keysByTable.get(table.name) ?? [],
        )
      );
      const counted = tablesToCount(
        tables.map((table, index) => ({
          index,
          table,
          bytes: table.type === "VIEW" || table.bytes === null ? null : Number(table.bytes),
        })),
      );
      if (counted.length) {
        const sql = counted.map((entry, position) =>
          `select ${position} as i, count(*) as n from ${
            qualified({ name: entry.table.name }, database)
          }`
        ).join("\nunion all\n");
        const counts = await rowsOf<{ i: number | string; n: string }>(
          pool.pool,
          sql,
          [],
          DISCOVERY_TIMEOUT_MS,
        );
        for (const { i, n } of counts) {
          const stream = streams[counted[Number(i)].index];
          stream.rowCount = Number(n);
          stream.rowCountExact = true;
        }
      }
      return { ok: true as const, value: { streams } };
    });
  } catch (error) {
    return {
      ok: false,
      error: classify(error, { config: pool.config, secrets: pool.secrets, stage: "query" }),
    };
  }
}

// --- Preview and read ------------------------------------------------------------------

const COLUMN_TYPES_SQL = `select column_name as name, column_type as type
from information_schema.columns where table_schema = ? and table_name = ?
order by ordinal_position`;

async function preview(
  settings: Settings,
  request: { stream: StreamRef; limit: number },
  ctx: ConnectorContext,
): Promise<Result<Preview>> {
  const pool = await poolOf(settings, ctx);
  const database = pool.config.database;
  const limit = Math.max(1, Math.min(1000, Math.trunc(request.limit)));
  try {
    return await pool.meter.busy(async () => {
      const [columns, rows] = await Promise.all([
        rowsOf<{ name: string; type: string }>(
          pool.pool,
          COLUMN_TYPES_SQL,
          [request.stream.schema ?? database, request.stream.name],
          PREVIEW_TIMEOUT_MS,
        ),
        rowsOf<Record<string, unknown>>(
          pool.pool,
          `select * from ${qualified(request.stream, database)} limit ?`,
          [limit],
          PREVIEW_TIMEOUT_MS,
        ),
      ]);
      return {
        ok: true as const,
        value: {
          columns: columns.map(({ name, type }) => ({ name, type })),
          rows: rows.map((row) => jsonSafeRow(row)),
        },
      };
    });
  } catch (error) {
    return {
      ok: false,
      error: classify(error, { config: pool.config, secrets: pool.secrets, stage: "query" }),
    };
  }
}

/**
 * Streams a table in batches (mysql2 pauses the connection while a batch waits, so memory
 * stays bounded). With a cursor column, only rows past `after`, in cursor order.
 */
async function* read(
  settings: Settings,
  request: ReadRequest,
  ctx: ConnectorContext,
): AsyncGenerator<RecordBatch> {
  const pool = await poolOf(settings, ctx);
  const context = { config: pool.config, secrets: pool.secrets, stage: "query" as const };
  const batchSize = Math.max(1, request.batchSize);
  const values: unknown[] = [];
  let sql = `select * from ${qualified(request.stream, pool.config.database)}`;
  if (request.cursor) {
    const column = quoteIdentifier(request.cursor.column);
    if (request.cursor.after !== undefined && request.cursor.after !== null) {
      values.push(request.cursor.after);
      sql += ` where ${column} > ?`;
    }
    sql += ` order by ${column}`;
  }
  let connection: mysql2.PoolConnection;
  try {
    connection = await pool.pool.getConnection();
  } catch (error) {
    throw new ConnectorFailure(classify(error, context));
  }
  // The promise wrapper's typings call its inner connection a promise one; it is mysql2's
  // callback connection, the one with streaming queries.
  const core = connection.connection as unknown as CorePoolConnection;
  const rows = core.query({ sql, values }).stream({
    highWaterMark: Math.min(batchSize, STREAM_BUFFER_ROWS),
  });
  let finished = false;
  // One watchdog per batch: a stalled server ends the read instead of hanging it.
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      rows.destroy(Object.assign(new Error("batch timed out"), { code: "QUERY_TIMEOUT" }));
    }, READ_BATCH_TIMEOUT_MS);
  };
  const batches = streamBatches<Record<string, unknown>>(rows, {
    size: batchSize,
    each: makeJsonSafe,
  });
  // A read stopped while it waits for rows ends now, not once the next rows come (on a slow
  // link, minutes later, holding the connection that closing the pool waits for).
  const abandon = () => rows.destroy(abortError(request.signal!));
  request.signal?.addEventListener("abort", abandon, { once: true });
  // mysql2 tells a running query nothing when its connection ends under it (closed by us,
  // or by the peer without an error): the read would wait for rows that never come.
  const lost = (error?: unknown) => {
    if (rows.destroyed) return;
    rows.destroy(
      error instanceof Error ? error : Object.assign(
        new Error("Connection lost: The server closed the connection."),
        { code: "PROTOCOL_CONNECTION_LOST" },
      ),
    );
  };
  pool.reads.add(lost);
  core.once("end", lost);
  core.once("error", lost);
  pool.meter.active++;
  try {
    while (true) {
      arm();
      let next: IteratorResult<Record<string, unknown>[]>;
      try {
        request.signal?.throwIfAborted();
        next = await batches.next();
      } catch (error) {
        if (request.signal?.aborted) throw abortError(request.signal);
        throw new ConnectorFailure(classify(error, context));
      }
      clearTimeout(watchdog);
      if (next.done) break;
      yield { rows: next.value };
    }
    finished = true;
  } finally {
    request.signal?.removeEventListener("abort", abandon);
    pool.reads.delete(lost);
    core.off("end", lost);
    core.off("error", lost);
    clearTimeout(watchdog);
    pool.meter.active--;
    // A result read only in part leaves the connection mid-protocol: drop it, and the
    // stream with it.
    if (!finished) rows.destroy();
    await batches.return();
    if (finished) connection.release();
    else {
      connection.destroy();
      // The server goes on with a query whose client has left until it next writes to it
      // (a sort can take minutes first): stop it there too.
      killQuery(pool.pool, core.threadId);
    }
  }
}

/** The error a read stopped by its signal ends with. */
function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException("The read was stopped", "AbortError");
}

/** Asks the server to stop a connection's query; best effort (the pool may be closing). */
function killQuery(pool: mysql2.Pool, threadId: number | null): void {
  if (threadId === null) return;
  withTimeout(pool.query("KILL QUERY ?", [threadId]), 5_000, () => new Error("kill timed out"))
    .catch(() => {});
}

export const mysql = {
  type: "MYSQL",
  label: "MySQL",
  description: "MySQL 5.7+ or MariaDB 10.3+",
  configSchema,
  secretsSchema,
  capabilities: { pooled: true, incremental: true },
  test,
  discover,
  preview,
  read,
  close: closePool,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
