/**
 * PostgreSQL, through postgres.js.
 *
 * Every connection of a source's pool is opened by `openSocket`: the host is resolved and
 * checked by the address guard, the TCP connection goes to the checked address, and TLS
 * is negotiated here (SSLRequest, then TLS with the configured host as server name) so
 * each stage is timed on its own; postgres.js then logs in and runs queries.
 * Failures are classified from SQLSTATE codes, postgres.js's connection codes and errno.
 */
import { Buffer } from "node:buffer";
import type net from "node:net";
import type { Readable } from "node:stream";
import type tls from "node:tls";
import postgresJs from "postgres";
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
  closedBeforeAnswer,
  ConnectionMeter,
  connectTimeoutOf,
  describe,
  jsonSafe,
  jsonSafeRow,
  networkFailure,
  openTcp,
  reusedStages,
  sslModeField,
  sslRootCertField,
  StageFailure,
  startTls,
  tablesToCount,
  testFailed,
  testSucceeded,
  timeoutError,
  type TlsPlan,
  tlsPlanOf,
  unexpected,
  watchReadable,
  withoutSecrets,
  withTimeout,
} from "./_sql.ts";
import {
  type Column,
  type Connector,
  type ConnectorContext,
  type ConnectorError,
  ConnectorFailure,
  type CopyColumn,
  type CopyOutEnd,
  type CopyOutRequest,
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
  port: portField(5432),
  database: databaseField(),
  username: usernameField(),
  ssl: sslField(),
  sslMode: sslModeField(),
  sslRootCert: sslRootCertField(),
  connectionTimeoutMillis: timeoutField("Connection timeout"),
  idleTimeoutMillis: z.coerce.number().int().min(1000).max(3_600_000).optional().meta({
    title: "Idle timeout",
    description: "Milliseconds before an idle pooled connection is closed",
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

/** Discovery reads the whole catalog; give it longer than a connection. */
const DISCOVERY_TIMEOUT_MS = 120_000;
const PREVIEW_TIMEOUT_MS = 60_000;
/** The longest wait for one batch of a read. */
const READ_BATCH_TIMEOUT_MS = 300_000;

type Pool = {
  sql: postgresJs.Sql;
  meter: ConnectionMeter;
  config: Config;
  secrets: Secrets;
  timeoutMs: number;
  tls: boolean;
};

// --- Connections -----------------------------------------------------------------------

/** The SSLRequest message: length 8, code 80877103. */
const SSL_REQUEST = new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function firstAnswer(socket: net.Socket): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Uint8Array) => {
      cleanup();
      resolve(chunk);
    };
    const onEnd = (error?: unknown) => {
      cleanup();
      reject(error ?? Object.assign(new Error("closed"), { code: "ECONNRESET" }));
    };
    function cleanup() {
      socket.off("data", onData);
      socket.off("error", onEnd);
      socket.off("close", onEnd);
    }
    socket.on("data", onData);
    socket.once("error", onEnd);
    socket.once("close", onEnd);
  });
}

/** Asks the server for TLS and upgrades the socket; the answer must be exactly "S". */
async function negotiateTls(
  socket: net.Socket,
  plan: TlsPlan,
  where: { host: string; port: number; timeoutMs: number },
): Promise<tls.TLSSocket> {
  const context = { ...where, protocol: "PostgreSQL" };
  let answer: Uint8Array;
  try {
    socket.write(SSL_REQUEST);
    answer = await withTimeout(
      firstAnswer(socket),
      where.timeoutMs,
      () => new StageFailure(timeoutError({ ...where, stage: "tls" }), "tls"),
    );
  } catch (error) {
    socket.destroy();
    if (error instanceof StageFailure) throw error;
    throw new StageFailure(
      networkFailure(error, { ...context, stage: "tls" }) ?? unexpected(error, "TLS request"),
      "tls",
    );
  }
  if (answer.length !== 1 || answer[0] !== 0x53) {
    socket.destroy();
    const refused = answer[0] === 0x4e;
    throw new StageFailure({
      code: "TLS_ERROR",
      message: refused
        ? `${where.host}:${where.port} does not accept TLS connections`
        : `${where.host}:${where.port} answered the TLS request with something else`,
      hint: refused
        ? "Turn ssl off, or enable TLS on the server"
        : "Check the port: the server there may not be PostgreSQL",
      field: refused ? "ssl" : "port",
    }, "tls");
  }
  return await startTls(socket, plan, context);
}

/** Opens one connection's socket: resolve, connect and (if asked) TLS, each timed. */
async function openSocket(
  options: {
    config: Config;
    ctx: ConnectorContext;
    timeoutMs: number;
    plan: TlsPlan | null;
    meter?: ConnectionMeter;
  },
): Promise<net.Socket> {
  const { config, timeoutMs, plan } = options;
  const attempt = options.meter?.begin();
  const socket = await openTcp({
    host: config.host,
    port: config.port,
    network: options.ctx.network,
    timeoutMs,
    attempt: attempt ?? new Attempt(),
    protocol: "PostgreSQL",
  });
  options.meter?.track(socket);
  if (!plan) {
    attempt?.restart();
    return socket;
  }
  const secure = await negotiateTls(socket, plan, {
    host: config.host,
    port: config.port,
    timeoutMs,
  });
  if (attempt) {
    attempt.tls = true;
    attempt.pass("tls");
  }
  return secure;
}

/** Text types kept as the server wrote them (ISO), so JSON gets them whole. */
const DATE_TYPES = {
  dafelDate: { to: 1082, from: [1082], serialize: String, parse: (text: string) => text },
  dafelTimestamp: {
    to: 1114,
    from: [1114],
    serialize: String,
    parse: (text: string) => text.replace(" ", "T"),
  },
  dafelTimestamptz: {
    to: 1184,
    from: [1184],
    serialize: (value: unknown) => value instanceof Date ? value.toISOString() : String(value),
    // "2025-01-01 10:00:00.123456+00" → "2025-01-01T10:00:00.123456+00:00": ISO 8601 with
    // the microseconds a Date would drop.
    parse: (text: string) => text.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"),
  },
};

function driverOptions(
  config: Config,
  secrets: Secrets,
  socket: () => Promise<net.Socket>,
  timeoutMs: number,
) {
  return {
    // Only named in driver errors: every socket comes from openSocket.
    host: config.host,
    port: config.port,
    database: config.database,
    username: config.username,
    password: secrets.password,
    ssl: false as const,
    socket,
    connect_timeout: timeoutMs / 1000,
    // The breaker paces retries of a failing source; the driver need not add long waits.
    backoff: (retries: number) => Math.min(0.05 * retries, 1),
    onnotice: () => {},
    connection: { application_name: "dafel", DateStyle: "ISO" },
    types: DATE_TYPES,
  };
}

function poolOf(settings: Settings, ctx: ConnectorContext): Promise<Pool> {
  return pooled(
    { sourceId: settings.id, fingerprint: settings.fingerprint, type: "POSTGRESQL" },
    () => {
      const { config, secrets } = settings;
      const meter = new ConnectionMeter();
      const timeoutMs = connectTimeoutOf(config, ctx);
      const plan = tlsPlanOf(config);
      const sql = postgresJs({
        ...driverOptions(
          config,
          secrets,
          () => openSocket({ config, ctx, timeoutMs, plan, meter }),
          timeoutMs,
        ),
        max: config.poolConfig?.max ?? ctx.pool.max,
        idle_timeout: (config.idleTimeoutMillis ?? ctx.pool.idleTimeoutMs) / 1000,
        // The first status message follows a successful login.
        onparameter: () => {
          const attempt = meter.latest;
          if (attempt && !attempt.has("authenticate")) attempt.pass("authenticate");
        },
      });
      const pool: Pool = { sql, meter, config, secrets, timeoutMs, tls: plan !== null };
      return Promise.resolve({
        pool,
        stats: () => meter.stats(),
        close: () => sql.end({ timeout: 2 }),
      });
    },
  );
}

/**
 * A quoted identifier (quote_ident's rule). Not postgres.js's sql(name): it splits a name
 * at dots ("a.b" → "a"."b"), which would break tables whose names contain one.
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function qualified(stream: StreamRef): string {
  return `${quoteIdentifier(stream.schema ?? "public")}.${quoteIdentifier(stream.name)}`;
}

/** Runs a query within `ms`, cancelling it on the server when time runs out. */
async function bounded<T>(query: postgresJs.PendingQuery<postgresJs.Row[]>, ms: number) {
  try {
    return await withTimeout(
      query as unknown as Promise<T>,
      ms,
      () => Object.assign(new Error("query timed out"), { code: "QUERY_TIMEOUT" }),
    );
  } catch (error) {
    if ((error as { code?: string }).code === "QUERY_TIMEOUT") query.cancel();
    throw error;
  }
}

// --- Failures --------------------------------------------------------------------------

type PgContext = {
  config: Config;
  secrets: Secrets;
  stage: StageName;
  /** False when the failed connection is new and the server has sent nothing on it. */
  answered?: boolean;
};

/** How a connection ends when the other side closes or resets it. */
const CLOSED_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
]);

/** SQLSTATE → classified failure. Class 28 and 3D are login failures; 42501 permissions. */
function sqlStateFailure(code: string, serverMessage: string, c: PgContext): ConnectorError | null {
  const who = `"${c.config.username}"`;
  const db = `"${c.config.database}"`;
  switch (code) {
    case "28P01":
      return {
        code: "AUTH_FAILED",
        message: `Login as ${who} failed: the password was rejected (28P01)`,
        hint: "Check the username and password",
        field: "password",
      };
    case "28000":
      return {
        code: "PERMISSION_DENIED",
        message: `The server refused the login as ${who} (28000): ${serverMessage}`,
        hint: "Check the username: the server (pg_hba.conf) does not let this user in from " +
          "this address, or the role may not log in",
        field: "username",
      };
    case "3D000":
      return {
        code: "DATABASE_NOT_FOUND",
        message: `Database ${db} does not exist (3D000)`,
        hint: "Check the database name (names are case-sensitive)",
        field: "database",
      };
    case "42501":
      return {
        code: "PERMISSION_DENIED",
        message: `Permission denied for ${who} (42501): ${serverMessage}`,
        hint: c.stage === "authenticate"
          ? `Check the username: it needs CONNECT on database ${db}`
          : "Check the username: it needs SELECT on the table and USAGE on its schema",
        field: "username",
      };
    case "42P01":
    case "3F000":
      return {
        code: "RESOURCE_NOT_FOUND",
        message: `Not found (${code}): ${serverMessage}`,
        hint: "The table or schema is gone: discover the schema again",
      };
    case "53300":
      return {
        code: "UNKNOWN",
        message: "The server has no free connections (53300)",
        hint: "Lower the pool size of this or other sources, or raise max_connections",
        field: "configuration.poolConfig",
      };
    case "57014":
      return timeoutError({ host: c.config.host, port: c.config.port, stage: c.stage });
  }
  if (code.startsWith("08")) {
    return {
      code: "INVALID_RESPONSE",
      message: `Connection failure (${code}): ${serverMessage}`,
      hint: "Check the host and port",
      field: "port",
    };
  }
  if (code === "57P01" || code === "57P02" || code === "57P03") {
    // admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping, restarting
    // or recovering, and refuses this session; the cause is known, not UNKNOWN.
    return {
      code: "CONNECTION_REFUSED",
      message: `${c.config.host}:${c.config.port} is not accepting connections now (${code}): ` +
        serverMessage,
      hint: "The server is shutting down, restarting or recovering (or an administrator " +
        "ended the session): try again shortly",
    };
  }
  if (code.startsWith("57P")) {
    return {
      code: "UNKNOWN",
      message: `The server is not accepting work now (${code}): ${serverMessage}`,
      hint: "The server is starting, stopping or in recovery: try again shortly",
    };
  }
  return null;
}

/** postgres.js's own connection codes. */
function driverFailure(code: string, c: PgContext): ConnectorError | null {
  const at = `${c.config.host}:${c.config.port}`;
  switch (code) {
    case "CONNECT_TIMEOUT":
    case "QUERY_TIMEOUT":
      return timeoutError({ host: c.config.host, port: c.config.port, stage: c.stage });
    case "CONNECTION_CLOSED":
    case "CONNECTION_ENDED":
    case "CONNECTION_DESTROYED":
      return {
        code: "INVALID_RESPONSE",
        message: `${at} closed the connection during ${c.stage} (${code})`,
        hint: "Check the port: the server there may not be PostgreSQL, or it dropped us",
        field: "port",
      };
    case "SASL_SIGNATURE_MISMATCH":
    case "AUTH_TYPE_NOT_IMPLEMENTED":
      return {
        code: "AUTH_FAILED",
        message: `Login as "${c.config.username}" failed (${code})`,
        hint: "Check the password, and that the server's authentication method is supported",
        field: "password",
      };
  }
  return null;
}

function classify(error: unknown, c: PgContext): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  const code = (error as { code?: unknown }).code;
  const message = describe(error);
  const failure =
    (c.answered === false && typeof code === "string" && CLOSED_CODES.has(code)
      ? closedBeforeAnswer(code, { ...c.config, protocol: "PostgreSQL" })
      : null) ??
      (error instanceof postgresJs.PostgresError
        ? sqlStateFailure(error.code, message, c)
        : typeof code === "string"
        ? driverFailure(code, c) ??
          networkFailure(error, { ...c.config, stage: c.stage, protocol: "PostgreSQL" })
        : null) ??
      {
        code: "UNKNOWN" as const,
        message: `PostgreSQL error${typeof code === "string" ? ` (${code})` : ""}: ${message}`,
        hint: "See the message; check the settings",
      };
  return withoutSecrets(failure, [c.secrets.password]);
}

/**
 * After a 28000 refusal of a plain connection: does the same login get further over TLS?
 * Then the server wants TLS for this user (a hostssl-only rule), which is the thing to fix.
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
  const probe = postgresJs({
    ...driverOptions(
      config,
      secrets,
      () => openSocket({ config, ctx, timeoutMs, plan }),
      timeoutMs,
    ),
    max: 1,
    fetch_types: false,
  });
  try {
    await withTimeout(probe`select 1`, timeoutMs, () => new Error("probe timed out"));
    return true;
  } catch (error) {
    return error instanceof postgresJs.PostgresError && error.code !== "28000";
  } finally {
    await probe.end({ timeout: 1 }).catch(() => {});
  }
}

// --- Test ------------------------------------------------------------------------------

const SERVER_INFO_SQL = `select current_setting('server_version') as version,
  current_database() as database, current_user as "user",
  current_setting('TimeZone') as timezone, current_setting('server_encoding') as encoding,
  pg_is_in_recovery() as replica, pg_backend_pid() as "connectionId"`;

type ServerInfoRow = {
  version: string;
  database: string;
  user: string;
  timezone: string;
  encoding: string;
  replica: boolean;
  connectionId: number;
};

function connectionStages(tls: boolean): StageName[] {
  return tls
    ? ["resolve", "connect", "tls", "authenticate"]
    : ["resolve", "connect", "authenticate"];
}

/** Ways a pooled connection ends when the server drops it (restart, shutdown, idle cut). */
const DROPPED_CODES = new Set([
  ...CLOSED_CODES,
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P05", // idle_session_timeout
]);

/**
 * Closes a source's pool after the server dropped one of its connections, so the next call
 * starts on new ones: the driver can hand a query to a connection whose socket has failed
 * but not yet closed, which then fails with the dropped session's error (seen after a
 * session was ended between two batches of a read).
 */
async function closeIfDropped(error: unknown, sourceId: string): Promise<void> {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && DROPPED_CODES.has(code)) await closePool(sourceId);
}

/**
 * Tests the source. A connection kept in the pool that the server dropped since its last
 * use says nothing about the server now (it may have restarted, or be stopping): the test
 * is then made once more on a new connection, whose outcome is the answer.
 */
async function test(settings: Settings, ctx: ConnectorContext): Promise<TestResult> {
  const started = performance.now();
  const first = await testOnce(settings, ctx, started);
  return first.droppedReused ? (await testOnce(settings, ctx, started)).result : first.result;
}

async function testOnce(
  settings: Settings,
  ctx: ConnectorContext,
  started: number,
): Promise<{ result: TestResult; droppedReused: boolean }> {
  const pool = await poolOf(settings, ctx);
  const { meter, config } = pool;
  const startedBefore = meter.started;
  const opened = () => meter.started > startedBefore ? meter.latest : undefined;
  try {
    const queryStarted = performance.now();
    const [row] = await withTimeout(
      meter.busy(() => pool.sql.unsafe<ServerInfoRow[]>(SERVER_INFO_SQL, [], { prepare: true })),
      pool.timeoutMs,
      () => Object.assign(new Error("timed out"), { code: "CONNECT_TIMEOUT" }),
    );
    const attempt = opened();
    attempt?.pass("query", {
      detail: "includes the driver's one-time type lookup on a new connection",
    });
    const stages: Stage[] = attempt ? attempt.stages : [
      ...reusedStages(connectionStages(pool.tls)),
      { name: "query", ok: true, ms: Math.round((performance.now() - queryStarted) * 100) / 100 },
    ];
    const result = testSucceeded({
      started,
      stages,
      message: `Connected to PostgreSQL ${row.version} as ${row.user} on ${row.database}`,
      serverInfo: {
        product: "PostgreSQL",
        version: row.version,
        database: row.database,
        user: row.user,
        host: config.host,
        address: meter.latest?.address ?? null,
        port: config.port,
        timezone: row.timezone,
        encoding: row.encoding,
        ssl: pool.tls,
        replica: row.replica,
        connectionId: row.connectionId,
      },
    });
    return { result, droppedReused: false };
  } catch (error) {
    const attempt = opened();
    const stage: StageName = error instanceof StageFailure
      ? error.stage
      : attempt && !attempt.has("authenticate")
      ? "authenticate"
      : "query";
    let failure = classify(error, {
      config,
      secrets: pool.secrets,
      stage,
      answered: attempt?.answered(),
    });
    if (
      failure.code === "PERMISSION_DENIED" && stage === "authenticate" && !pool.tls &&
      (error as { code?: string }).code === "28000" &&
      await refusedOnlyWithoutTls(config, pool.secrets, ctx, pool.timeoutMs)
    ) {
      failure = {
        code: "SSL_REQUIRED",
        message: `The server accepts "${config.username}" only over TLS: the plain login was ` +
          "refused and the same login over TLS was not",
        hint: "Turn on ssl (Use TLS) for this source",
        field: "ssl",
      };
    }
    const stages = [
      ...(attempt?.stages ?? reusedStages(connectionStages(pool.tls))),
      attempt ? attempt.failed(stage) : { name: stage, ok: false, ms: 0 },
    ];
    // A failed pool may hold half-open connections (to a server that never answered, say):
    // drop them now, and let the next test start from scratch.
    await pool.sql.end({ timeout: 0 });
    await closePool(settings.id);
    const code = (error as { code?: unknown }).code;
    return {
      result: testFailed({ started, stages, error: failure }),
      droppedReused: !attempt && typeof code === "string" && DROPPED_CODES.has(code),
    };
  }
}

// --- Discovery -------------------------------------------------------------------------

/**
 * Every relation of every non-system schema with its columns in order. Sizes and counts
 * come from the catalog (relpages, reltuples): functions such as pg_relation_size would
 * open every relation, which on thousands of tables costs more than the rest together.
 */
const RELATIONS_SQL = `
select c.oid::int8 as oid, n.nspname as schema, c.relname as name, c.relkind as kind,
  c.reltuples::float8 as estimate, c.relpages::int4 as pages,
  has_schema_privilege(n.oid, 'USAGE') and has_table_privilege(c.oid, 'SELECT') as readable,
  coalesce((
    select json_agg(json_build_array(a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
             not a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated)
           order by a.attnum)
    from pg_attribute a
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  ), '[]') as columns
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
  and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
order by n.nspname, c.relname`;

/**
 * Primary and unique keys (from their indexes, so a unique index counts too) and foreign
 * keys, with column numbers: names come from the relations query, which is cheaper than
 * looking each one up here.
 */
const KEYS_SQL = `
select i.indrelid::int8 as oid, case when i.indisprimary then 'p' else 'u' end as kind,
  ic.relname as name,
  array_to_json((i.indkey::int2[])[0:i.indnkeyatts - 1]) as columns,
  null::int8 as ref_oid, null::json as ref_columns
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
where (i.indisprimary or i.indisunique) and i.indisvalid and i.indpred is null
  and i.indexprs is null
  and ic.relnamespace not in (select oid from pg_namespace
                              where nspname = 'information_schema' or nspname ~ '^pg_')
union all
select con.conrelid::int8, 'f', con.conname, array_to_json(con.conkey),
  con.confrelid::int8, array_to_json(con.confkey)
from pg_constraint con
where con.contype = 'f'
  and con.connamespace not in (select oid from pg_namespace
                               where nspname = 'information_schema' or nspname ~ '^pg_')`;

/** The count query gives up (keeping the estimates) rather than hold discovery up. */
const EXACT_COUNT_TIMEOUT_MS = 10_000;
/** Tables counted exactly in the one counting query, smallest first. */
const EXACT_COUNT_MAX_TABLES = 500;
const PAGE_BYTES = 8192;

type ColumnTuple = [number, string, string, boolean, string | null, string, string];

type RelationRow = {
  oid: string;
  schema: string;
  name: string;
  kind: "r" | "p" | "v" | "m" | "f";
  estimate: number;
  pages: number;
  readable: boolean;
  columns: ColumnTuple[];
};

type KeyRow = {
  oid: string;
  kind: "p" | "u" | "f";
  name: string;
  columns: number[];
  ref_oid: string | null;
  ref_columns: number[] | null;
};

function columnDefault(
  expression: string | null,
  identity: string,
  generated: string,
): string | null {
  if (identity === "a") return "generated always as identity";
  if (identity === "d") return "generated by default as identity";
  if (generated === "s" && expression) return `generated always as (${expression}) stored`;
  return expression;
}

type Named = { name: string; columns: string[] };

function toStream(
  relation: RelationRow,
  keys: KeyRow[],
  relations: Map<string, RelationRow>,
): Stream {
  const namesOf = (oid: string, numbers: number[]) => {
    const columns = relations.get(oid)?.columns ?? [];
    return numbers.map((number) =>
      columns.find((column) => column[0] === number)?.[1] ?? `#${number}`
    );
  };
  const named = (key: KeyRow): Named => ({
    name: key.name,
    columns: namesOf(key.oid, key.columns),
  });
  const primaryKey = keys.find((key) => key.kind === "p");
  const primary = primaryKey ? named(primaryKey) : undefined;
  const uniques = keys.filter((key) => key.kind === "u").map(named)
    .sort((a, b) => a.name.localeCompare(b.name));
  const soloUnique = new Set(
    uniques.filter((key) => key.columns.length === 1).map((key) => key.columns[0]),
  );
  const primaryColumns = new Set(primary?.columns ?? []);
  const columns: Column[] = relation.columns.map((
    [, name, type, nullable, expression, identity, generated],
  ) => ({
    name,
    type,
    nullable,
    primaryKey: primaryColumns.has(name),
    unique: soloUnique.has(name) || (primary?.columns.length === 1 && primaryColumns.has(name)),
    default: columnDefault(expression, identity, generated),
  }));
  const foreignKeys: ForeignKey[] = keys.filter((key) => key.kind === "f")
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((key) => {
      const referenced = relations.get(key.ref_oid!);
      return {
        name: key.name,
        columns: namesOf(key.oid, key.columns),
        referencedSchema: referenced?.schema ?? "",
        referencedTable: referenced?.name ?? "",
        referencedColumns: namesOf(key.ref_oid!, key.ref_columns ?? []),
      };
    });
  const isView = relation.kind === "v" || relation.kind === "m";
  return {
    name: relation.name,
    schema: relation.schema,
    kind: isView ? "view" : "table",
    columns,
    // reltuples is -1 until the table is first vacuumed or analyzed: unknown.
    rowCount: relation.estimate >= 0 && relation.kind !== "v" ? relation.estimate : null,
    rowCountExact: false,
    constraints: {
      primaryKeys: primary?.columns ?? [],
      foreignKeys,
      uniqueKeys: [...soloUnique].sort(),
      uniqueConstraints: uniques,
    },
  };
}

/**
 * One UNION ALL of count(*) over the smallest tables, bounded by a timeout (the query is
 * cancelled on the server): a table that the statistics call small but is not (never
 * analyzed) cannot hold discovery up. Null when the counting gave up.
 */
async function exactCounts(
  sql: postgresJs.Sql,
  relations: RelationRow[],
): Promise<Map<RelationRow, number> | null> {
  const counted = tablesToCount(
    relations.filter((relation) => relation.readable).map((relation) => ({
      relation,
      bytes: relation.kind === "r" || relation.kind === "m" ? relation.pages * PAGE_BYTES : null,
    })),
    { maxTables: EXACT_COUNT_MAX_TABLES },
  );
  if (!counted.length) return new Map();
  const text = counted.map((entry, position) =>
    `select ${position}::int4 as i, count(*)::int8 as n from ${qualified(entry.relation)}`
  ).join("\nunion all\n");
  try {
    const counts = await bounded<{ i: number; n: string }[]>(
      sql.unsafe(text),
      EXACT_COUNT_TIMEOUT_MS,
    );
    return new Map(counts.map(({ i, n }) => [counted[i].relation, Number(n)]));
  } catch (error) {
    // Timed out (and cancelled on the server): the estimates stand.
    if ((error as { code?: string }).code === "QUERY_TIMEOUT") return null;
    throw error;
  }
}

/**
 * Three catalog queries whatever the number of tables: relations with their columns, keys,
 * and one UNION ALL of exact counts for the small tables.
 */
async function discover(settings: Settings, ctx: ConnectorContext): Promise<Result<Discovery>> {
  const pool = await poolOf(settings, ctx);
  const { sql, meter } = pool;
  try {
    return await meter.busy(async () => {
      const [relations, keys] = await Promise.all([
        bounded<RelationRow[]>(sql.unsafe(RELATIONS_SQL), DISCOVERY_TIMEOUT_MS),
        bounded<KeyRow[]>(sql.unsafe(KEYS_SQL), DISCOVERY_TIMEOUT_MS),
      ]);
      const byOid = new Map(relations.map((relation) => [relation.oid, relation]));
      const keysByTable = Map.groupBy(keys, (key) => key.oid);
      const readable = relations.filter((relation) => relation.readable);
      const counts = await exactCounts(sql, readable);
      const streams = readable.map((relation) => {
        const stream = toStream(relation, keysByTable.get(relation.oid) ?? [], byOid);
        const exact = counts?.get(relation);
        if (exact !== undefined) {
          stream.rowCount = exact;
          stream.rowCountExact = true;
        }
        return stream;
      });
      return { ok: true as const, value: { streams } };
    });
  } catch (error) {
    await closeIfDropped(error, settings.id);
    return {
      ok: false,
      error: classify(error, { config: pool.config, secrets: pool.secrets, stage: "query" }),
    };
  }
}

// --- Preview and read ------------------------------------------------------------------

const COLUMN_TYPES_SQL = `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
order by a.attnum`;

async function preview(
  settings: Settings,
  request: { stream: StreamRef; limit: number },
  ctx: ConnectorContext,
): Promise<Result<Preview>> {
  const pool = await poolOf(settings, ctx);
  const { sql, meter } = pool;
  const limit = Math.max(1, Math.min(1000, Math.trunc(request.limit)));
  try {
    return await meter.busy(async () => {
      // One after the other: servers that funnel every connection into one session (the
      // embedded demo database, pglite-socket) interleave two concurrent extended queries.
      const columns = await bounded<{ name: string; type: string }[]>(
        sql.unsafe(COLUMN_TYPES_SQL, [request.stream.schema ?? "public", request.stream.name]),
        PREVIEW_TIMEOUT_MS,
      );
      const rows = await bounded<Record<string, unknown>[]>(
        sql.unsafe(`select * from ${qualified(request.stream)} limit $1`, [limit]),
        PREVIEW_TIMEOUT_MS,
      );
      return {
        ok: true as const,
        value: {
          columns: columns.map(({ name, type }) => ({ name, type })),
          rows: rows.map(jsonSafeRow),
        },
      };
    });
  } catch (error) {
    await closeIfDropped(error, settings.id);
    return {
      ok: false,
      error: classify(error, { config: pool.config, secrets: pool.secrets, stage: "query" }),
    };
  }
}

type CursorReader = {
  /** The next batch, or null after the last; throws when the query or connection failed. */
  next(): Promise<postgresJs.Row[] | null>;
  /** Stops early: the portal is closed (now, or when the batch being fetched arrives). */
  close(): Promise<void>;
};

/**
 * A query's rows in batches of `size`, through postgres.js's callback cursor: the driver
 * fetches the next batch only once the consumer asks for it. Not the driver's async
 * iterator: when the connection fails between two batches, that one ends as if every row had
 * been read (porsager/postgres#1166), so a sync would load a truncated table as complete;
 * and closing it then writes to the dead socket from a timer, an uncaught error that ends
 * the process. Here the failure reaches the consumer, and the driver is told nothing more.
 */
function cursorReader(
  sql: postgresJs.Sql,
  query: postgresJs.PendingQuery<postgresJs.Row[]>,
  size: number,
): CursorReader {
  let batch: postgresJs.Row[] | null = null;
  /** Ends the driver's wait after handing over `batch`: go on, or close. */
  let release: ((value?: unknown) => void) | null = null;
  let finished = false;
  let failure: { error: unknown } | null = null;
  let stopping = false;
  let wake: (() => void) | null = null;
  const ended = (query.cursor(size, (rows: postgresJs.Row[]) => {
    if (stopping) return sql.CLOSE;
    batch = rows;
    const taken = new Promise((resolve) => (release = resolve));
    wake?.();
    return taken;
  }) as Promise<unknown>).then(
    () => {
      finished = true;
      wake?.();
    },
    (error) => {
      failure = { error };
      finished = true;
      wake?.();
    },
  );
  /** Lets the driver go on (or close): never after a failure, its connection is gone. */
  function answer(value?: unknown) {
    const waiting = release;
    release = null;
    if (!failure) waiting?.(value);
  }
  return {
    async next() {
      answer();
      while (batch === null && !finished) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      if (batch !== null) {
        const rows: postgresJs.Row[] = batch;
        batch = null;
        return rows;
      }
      if (failure) throw failure.error;
      return null;
    },
    async close() {
      if (finished) return;
      stopping = true;
      answer(sql.CLOSE);
      await withTimeout(ended, 5_000, () => new Error("cursor close timed out")).catch(() => {});
    },
  };
}

/**
 * Array element types whose to_jsonb form is exact: JSON numbers, booleans, objects, text
 * and ISO dates. Arrays of anything else (int8, numeric, uuid, ...) go to JSON as the
 * elements' text, so no digit is lost to a JSON number.
 */
const JSON_EXACT_ELEMENTS = new Set([
  16, // bool
  21, // int2
  23, // int4
  26, // oid
  700, // float4
  701, // float8
  114, // json
  3802, // jsonb
  1082, // date
  1114, // timestamp
  1184, // timestamptz
  25, // text
  1043, // varchar
]);

const STREAM_COLUMNS_SQL = `select a.attname as name, t.typname as type,
  case when t.typcategory = 'A' and t.typelem <> 0 then t.typelem::int8 end as element
from pg_attribute a join pg_type t on t.oid = a.atttypid
where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
order by a.attnum`;

type StreamColumn = { name: string; type: string; element: string | null };

/**
 * An array column as JSON, made by the server. postgres.js's own array parsing reads a NULL
 * element as the text "NULL" (NaN in a number array); to_jsonb gets every element right.
 */
function arrayAsJson(column: StreamColumn): string {
  const name = quoteIdentifier(column.name);
  return JSON_EXACT_ELEMENTS.has(Number(column.element))
    ? `to_jsonb(${name})`
    : `to_jsonb(${name}::text[])`;
}

/** The select list of a read: every column in table order, arrays as JSON. */
function readList(columns: StreamColumn[]): string {
  return columns.map((column) =>
    column.element === null
      ? quoteIdentifier(column.name)
      : `${arrayAsJson(column)} as ${quoteIdentifier(column.name)}`
  ).join(", ");
}

/**
 * The select-list expression of a COPY column: its text as the destination column takes it,
 * the same value `read` yields. JSON fields: json and jsonb as they are, arrays as in
 * `read`, anything else as a JSON string of its text.
 */
function copyExpression(column: CopyColumn, found: StreamColumn | undefined): string {
  if (!found) throw new Error(`Column "${column.name}" is not in the table any more`);
  const name = quoteIdentifier(column.name);
  if (!column.json || found.type === "json" || found.type === "jsonb") return name;
  return found.element === null ? `to_jsonb(${name}::text)` : arrayAsJson(found);
}

/**
 * Reads a table in batches through a server-side cursor (memory stays bounded). With a
 * cursor column, only rows past `after`, in cursor order, for incremental syncs.
 */
async function* read(
  settings: Settings,
  request: ReadRequest,
  ctx: ConnectorContext,
): AsyncGenerator<RecordBatch> {
  const pool = await poolOf(settings, ctx);
  const { sql, meter } = pool;
  const context = { config: pool.config, secrets: pool.secrets, stage: "query" as const };
  let columns: StreamColumn[];
  try {
    columns = await bounded<StreamColumn[]>(
      sql.unsafe(STREAM_COLUMNS_SQL, [qualified(request.stream)]),
      READ_BATCH_TIMEOUT_MS,
    );
  } catch (error) {
    await closeIfDropped(error, settings.id);
    throw new ConnectorFailure(classify(error, context));
  }
  const params: unknown[] = [];
  let text = `select ${readList(columns)} from ${qualified(request.stream)}`;
  if (request.cursor) {
    const column = quoteIdentifier(request.cursor.column);
    if (request.cursor.after !== undefined && request.cursor.after !== null) {
      params.push(request.cursor.after);
      text += ` where ${column} > $1`;
    }
    text += ` order by ${column}`;
  }
  const batches = cursorReader(
    sql,
    sql.unsafe(text, params as postgresJs.ParameterOrJSON<never>[]),
    Math.max(1, request.batchSize),
  );
  meter.active++;
  try {
    while (true) {
      request.signal?.throwIfAborted();
      let rows: postgresJs.Row[] | null;
      try {
        rows = await withTimeout(
          batches.next(),
          READ_BATCH_TIMEOUT_MS,
          () => Object.assign(new Error("batch timed out"), { code: "QUERY_TIMEOUT" }),
        );
      } catch (error) {
        await closeIfDropped(error, settings.id);
        throw new ConnectorFailure(classify(error, context));
      }
      if (rows === null) return;
      yield { rows: rows.map(jsonSafeRow) };
    }
  } finally {
    meter.active--;
    await batches.close();
  }
}

// --- Raw COPY --------------------------------------------------------------------------

/**
 * A SQL string literal that means `value` as postgres.js would bind it as a parameter (COPY
 * takes none): Dates as timestamptz, bigints as int8, the rest as untyped text that the
 * server reads as the column's type. An E'' literal, so it does not depend on
 * standard_conforming_strings.
 */
function cursorLiteral(value: unknown): string {
  const text = value instanceof Date
    ? value.toISOString()
    : typeof value === "string"
    ? value
    : String(value);
  const literal = `E'${text.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
  if (value instanceof Date) return `${literal}::timestamptz`;
  if (typeof value === "bigint") return `${literal}::int8`;
  if (typeof value === "boolean") return `${literal}::boolean`;
  return literal;
}

/**
 * A connection of its own for one COPY read (not one of the pool's): it is ended at once
 * when the read is abandoned, which is what stops a COPY TO on the server. Its settings make
 * the text one any PostgreSQL reads back the same: ISO dates, `postgres` intervals and
 * floats with every digit.
 */
function copyConnection(
  pool: Pool,
  ctx: ConnectorContext,
  sockets: Set<net.Socket>,
): postgresJs.Sql {
  const { config, secrets, timeoutMs } = pool;
  const plan = tlsPlanOf(config);
  const options = driverOptions(config, secrets, async () => {
    // Not the pool's meter attempts: those time the stages of a connection test.
    const socket = await openSocket({ config, ctx, timeoutMs, plan });
    pool.meter.track(socket);
    sockets.add(socket);
    return socket;
  }, timeoutMs);
  return postgresJs({
    ...options,
    max: 1,
    connection: {
      ...options.connection,
      IntervalStyle: "postgres",
      extra_float_digits: "3",
    },
  });
}

/**
 * The bytes of a COPY TO stream as they arrive, everything buffered taken at once. The
 * stream holds one buffer per row (one CopyData message each), and Deno's Readable hands
 * out one buffer per read() or per step of its async iterator: a chunk a row, and as many
 * writes downstream. Reads ask for at most the stream's high-water mark: a larger read(n)
 * raises that mark to n, the driver then pauses its socket ever later, and chunks (and
 * memory) double without end. A truncated stream (the connection closed before CopyDone)
 * is an error.
 */
async function* copyChunks(readable: Readable): AsyncGenerator<Uint8Array, void, undefined> {
  const watch = watchReadable(readable);
  try {
    while (true) {
      if (watch.state.failure) throw watch.state.failure.error;
      if (readable.readableLength > 0) {
        const limit = readable.readableHighWaterMark;
        const parts: Uint8Array[] = [];
        while (readable.readableLength > 0) {
          parts.push(readable.read(Math.min(readable.readableLength, limit)) as Uint8Array);
        }
        yield parts.length === 1 ? parts[0] : Buffer.concat(parts);
        continue;
      }
      if (watch.state.ended) return;
      if (readable.destroyed) throw new Error("The COPY stream closed before its end");
      // Asks for more (the driver resumes its socket), or lets a finished stream end.
      readable.read();
      if (readable.readableLength > 0 || watch.state.ended || watch.state.failure) continue;
      await watch.nextEvent();
    }
  } finally {
    watch.stop();
  }
}

/**
 * A stream's rows as COPY text: `COPY (SELECT <columns> FROM <table> [WHERE <cursor> > x])
 * TO STDOUT` on a connection of its own, in a REPEATABLE READ snapshot that also gives the
 * largest cursor value of those rows, so the high-water mark matches the rows exactly.
 */
async function* copyOut(
  settings: Settings,
  request: CopyOutRequest,
  ctx: ConnectorContext,
): AsyncGenerator<Uint8Array, CopyOutEnd, undefined> {
  const pool = await poolOf(settings, ctx);
  const context = { config: pool.config, secrets: pool.secrets, stage: "query" as const };
  const sockets = new Set<net.Socket>();
  const sql = copyConnection(pool, ctx, sockets);
  const table = qualified(request.stream);
  const { cursor } = request;
  const past = cursor && cursor.after !== undefined && cursor.after !== null
    ? `${quoteIdentifier(cursor.column)} > ${cursorLiteral(cursor.after)}`
    : null;
  // Ending the driver only half-closes its socket: the server, still sending a COPY nobody
  // reads, would wait on a full socket buffer for ever, holding its snapshot and locks. A
  // read left before its end closes the socket outright, and the server ends the session.
  let finished = false;
  const abandon = () => {
    void sql.end({ timeout: 0 }).catch(() => {});
    for (const socket of sockets) socket.destroy();
  };
  request.signal?.addEventListener("abort", abandon, { once: true });
  pool.meter.active++;
  try {
    request.signal?.throwIfAborted();
    let readable: Readable;
    let highest: unknown = null;
    try {
      await sql.unsafe("begin isolation level repeatable read, read only");
      const found = await sql.unsafe<StreamColumn[]>(STREAM_COLUMNS_SQL, [table]);
      const byName = new Map(found.map((row) => [row.name, row]));
      const list = request.columns.map((column) => copyExpression(column, byName.get(column.name)));
      if (cursor) {
        const column = quoteIdentifier(cursor.column);
        const [row] = await sql.unsafe<{ value: unknown }[]>(
          `select ${column} as value from ${table} where ${column} is not null` +
            `${past ? ` and ${past}` : ""} order by ${column} desc limit 1`,
        );
        highest = row ? jsonSafe(row.value) : null;
      }
      readable = await sql.unsafe(
        `copy (select ${list.join(", ")} from ${table}${past ? ` where ${past}` : ""}) to stdout`,
      ).readable();
    } catch (error) {
      request.signal?.throwIfAborted();
      await closeIfDropped(error, settings.id);
      throw new ConnectorFailure(classify(error, context));
    }
    try {
      yield* copyChunks(readable);
      finished = true;
    } catch (error) {
      request.signal?.throwIfAborted();
      await closeIfDropped(error, settings.id);
      throw new ConnectorFailure(classify(error, context));
    }
    return { cursor: highest };
  } finally {
    pool.meter.active--;
    request.signal?.removeEventListener("abort", abandon);
    // Ended, never committed: the snapshot was read-only, and postgres.js 3.4.9 can leave
    // the socket paused once a COPY TO has ended with its buffer full, so a COMMIT's answer
    // would never be read. Every byte of the COPY has arrived once the stream has ended.
    await sql.end({ timeout: 0 }).catch(() => {});
    if (!finished) abandon();
  }
}

export const postgres = {
  type: "POSTGRESQL",
  label: "PostgreSQL",
  description: "PostgreSQL 11 or newer, including hosted services",
  configSchema,
  secretsSchema,
  capabilities: { pooled: true, incremental: true, copyOut: true },
  test,
  discover,
  preview,
  read,
  copyOut,
  close: closePool,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
