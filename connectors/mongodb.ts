/**
 * MongoDB, through the official driver.
 *
 * Every host the driver connects to (the configured one, replica set members it discovers,
 * hosts from SRV records) goes through the guard's lookup: resolved once, checked, and
 * connected to at the checked address. Collections are streams; their columns are inferred
 * from a sample of documents (nested fields as dot paths such as `address.city`, with the
 * share of documents that have each), and their counts are the server's estimates. Reads
 * are cursor-based batches; an incremental read asks the server for documents past the
 * cursor field's saved value, converted back to that field's BSON type. Values without a
 * JSON form (ObjectId, Date, Decimal128, Binary, Long) are turned into strings or numbers.
 */
import { resolveSrv } from "node:dns/promises";
import {
  type Binary,
  type Collection,
  type CollectionInfo,
  type Db,
  Decimal128,
  type Document,
  Long,
  MongoAPIError,
  MongoClient,
  type MongoClientOptions,
  MongoError,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoParseError,
  MongoServerError,
  MongoServerSelectionError,
  ObjectId,
  type ServerHeartbeatFailedEvent,
} from "mongodb";
import { z } from "zod";
import {
  AddressGuardError,
  type CheckedHost,
  checkHost,
  guardedLookup,
  refusedLiteral,
} from "./_guard.ts";
import { databaseField, portField, sslField } from "./_fields.ts";
import { ColumnSampler, type InferredType, jsonType } from "./_infer.ts";
import { closePool, pooled } from "./_pools.ts";
import type {
  Column,
  Connector,
  ConnectorContext,
  ConnectorError,
  ErrorCode,
  Preview,
  Result,
  SourceSettings,
  Stage,
  StageName,
  Stream,
  TestResult,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";

const configSchema = z.strictObject({
  host: z.string().trim().min(1).max(255).optional().meta({
    title: "Host",
    description: "Leave empty when you give a connection string",
    placeholder: "mongo.example.com",
  }),
  port: portField(27017),
  database: databaseField().meta({
    title: "Database",
    description: "The database whose collections are read",
    placeholder: "shop",
  }),
  username: z.string().trim().max(255).optional().meta({
    title: "Username",
    description: "Leave empty for a server without authentication",
    placeholder: "reader",
  }),
  ssl: sslField(),
  replicaSet: z.string().trim().max(255).optional().meta({
    title: "Replica set",
    description: "The replica set's name, to connect to its primary",
    placeholder: "rs0",
  }),
  authSource: z.string().trim().max(255).optional().meta({
    title: "Authentication database",
    description: "Where the user is defined; admin by default",
    placeholder: "admin",
  }),
});

const secretsSchema = z.strictObject({
  password: z.string().max(1024).optional().meta({
    title: "Password",
    description: "The user's password; stored encrypted",
  }),
  uri: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, "Must start with mongodb:// or mongodb+srv://")
    .max(4096)
    .optional()
    .meta({
      title: "Connection string",
      description: "Instead of host and port; stored encrypted because it may hold a password",
      placeholder: "mongodb://user:pass@host:27017/db",
    }),
});

type Config = z.infer<typeof configSchema>;
type Secrets = z.infer<typeof secretsSchema>;
type Settings = SourceSettings<Config, Secrets>;

/** Documents sampled per collection to infer its columns. */
const SAMPLE_SIZE = 200;
/** Nested objects deeper than this are typed as a whole. */
const MAX_PATH_DEPTH = 5;

// ---- Settings to a client ------------------------------------------------------------------

type Connection = {
  url: string;
  options: MongoClientOptions;
  /** Hosts to check before connecting (or the SRV name to look up). */
  seeds: { host: string; port: number }[];
  srvHost?: string;
  credentials: boolean;
  /** The setting the hint should name for connection problems. */
  field: "host" | "uri";
};

function hostPart(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The secret strings to keep out of messages: the password, the URI and its password. */
function secretStrings(secrets: Secrets): string[] {
  const values = [secrets.password, secrets.uri].filter((value): value is string => !!value);
  const userinfo = secrets.uri && /^mongodb(?:\+srv)?:\/\/([^@/]*)@/.exec(secrets.uri)?.[1];
  const password = userinfo?.split(":").slice(1).join(":");
  if (password) {
    values.push(password);
    try {
      values.push(decodeURIComponent(password));
    } catch {
      // Not percent-encoded: already listed as it is.
    }
  }
  return values;
}

function redact(text: string, secrets: Secrets): string {
  let out = text;
  for (const secret of secretStrings(secrets)) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out;
}

function clientOptions(settings: Settings, ctx: ConnectorContext): MongoClientOptions {
  const { config, secrets } = settings;
  const timeout = ctx.pool.connectionTimeoutMs;
  const options: MongoClientOptions = {
    appName: "dafel",
    serverSelectionTimeoutMS: timeout,
    connectTimeoutMS: timeout,
    // A query that stops answering still ends; sampling big collections can take a while.
    socketTimeoutMS: Math.max(60_000, timeout * 4),
    maxPoolSize: Math.max(1, ctx.pool.max),
    minPoolSize: Math.min(ctx.pool.min, Math.max(1, ctx.pool.max)),
    maxIdleTimeMS: ctx.pool.idleTimeoutMs,
  };
  if (config.replicaSet) options.replicaSet = config.replicaSet;
  if (config.authSource) options.authSource = config.authSource;
  if (config.ssl) options.tls = true;
  if (config.username && secrets.password !== undefined) {
    // Credentials as options, never spliced into a URL the driver might quote back.
    options.auth = { username: config.username, password: secrets.password };
  }
  return options;
}

/** How to reach the source, parsed the way the driver parses it (a bad URI is INVALID_CONFIG). */
function connectionOf(settings: Settings, ctx: ConnectorContext): Result<Connection> {
  const { config, secrets } = settings;
  const url = secrets.uri ?? `mongodb://${hostPart(config.host ?? "")}:${config.port}/`;
  const options = clientOptions(settings, ctx);
  try {
    // Parsing only: a client opens nothing until connect().
    const parsed = new MongoClient(url, options).options;
    // One host and no replica set named: talk to that host only, never to members it
    // announces (which no one configured, and which may be written as bare addresses).
    const single = parsed.hosts.length === 1 && !parsed.srvHost && !parsed.replicaSet &&
      !parsed.loadBalanced;
    return {
      ok: true,
      value: {
        url,
        options: single ? { ...options, directConnection: true } : options,
        seeds: parsed.srvHost
          ? []
          : parsed.hosts.flatMap((address) =>
            address.host ? [{ host: address.host, port: address.port ?? 27017 }] : []
          ),
        srvHost: parsed.srvHost,
        credentials: Boolean(parsed.credentials?.username),
        field: secrets.uri ? "uri" : "host",
      },
    };
  } catch (error) {
    return {
      ok: false,
      error: {
        code: "INVALID_CONFIG",
        message: redact(
          `The connection settings are not usable: ${
            error instanceof Error ? error.message : String(error)
          }`,
          secrets,
        ),
        hint: secrets.uri ? "Check the connection string" : "Check the host, port and options",
        field: secrets.uri ? "uri" : "host",
      },
    };
  }
}

/**
 * Resolves and checks every seed host (or the SRV record's targets) before any connection:
 * the test's resolve stage. The checked addresses are handed to the driver's lookup.
 */
async function checkSeeds(
  connection: Connection,
  ctx: ConnectorContext,
): Promise<Result<CheckedHost[]>> {
  let hosts = connection.seeds.map((seed) => seed.host);
  if (connection.srvHost) {
    try {
      const records = await resolveSrv(`_mongodb._tcp.${connection.srvHost}`);
      hosts = records.map((record) => record.name);
    } catch (error) {
      return {
        ok: false,
        error: {
          code: "HOST_NOT_FOUND",
          message: `No SRV record for ${connection.srvHost} (${
            (error as { code?: string }).code ?? "lookup failed"
          })`,
          hint: "Check the connection string's host",
          field: "uri",
        },
      };
    }
  }
  const checked: CheckedHost[] = [];
  for (const host of hosts) {
    const result = await checkHost(host.replace(/^\[(.*)\]$/, "$1"), "database", ctx.network);
    if (!result.ok) return { ok: false, error: { ...result.error, field: connection.field } };
    checked.push(result.value);
  }
  return { ok: true, value: checked };
}

/**
 * A client whose every connection goes through the guard: the seeds were checked just now
 * (their lookups answer from that check), any other name is checked when the driver asks
 * for it, and members announced as refused addresses are dropped from hello replies. A
 * test's client keeps no idle connections (it is closed right after).
 */
function newClient(
  connection: Connection,
  ctx: ConnectorContext,
  options: { checked: CheckedHost[]; forTest?: boolean },
) {
  const { checked, forTest } = options;
  const client = new MongoClient(connection.url, {
    ...connection.options,
    ...(forTest ? { minPoolSize: 0 } : {}),
    lookup: guardedLookup(ctx.network, {
      purpose: "database",
      checked,
      field: connection.field,
    }),
  });
  // Runs before the driver reads the reply (its own listener comes after this relay).
  client.on("serverHeartbeatSucceeded", (event) => withoutRefusedMembers(event.reply, ctx.network));
  return client;
}

function addressHost(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1];
  const colon = address.lastIndexOf(":");
  return colon > 0 && address.indexOf(":") === colon ? address.slice(0, colon) : address;
}

/**
 * Removes replica set members a server announces at refused addresses from its hello
 * reply. Names are checked by the guard's lookup when the driver connects, but node does
 * not call `lookup` for an address, so a member announced as 169.254.169.254 would be
 * reached unchecked. Returns the members removed.
 */
export function withoutRefusedMembers(
  reply: Document,
  network: ConnectorContext["network"],
): string[] {
  const removed: string[] = [];
  const refused = (member: unknown) =>
    typeof member === "string" && refusedLiteral(addressHost(member), "database", network) !== null;
  for (const key of ["hosts", "passives", "arbiters"]) {
    const members = reply[key];
    if (!Array.isArray(members)) continue;
    const kept = members.filter((member) => {
      if (!refused(member)) return true;
      removed.push(String(member));
      return false;
    });
    members.splice(0, members.length, ...kept);
  }
  for (const key of ["primary", "me"]) {
    if (refused(reply[key])) {
      removed.push(String(reply[key]));
      delete reply[key];
    }
  }
  return removed;
}

// ---- Errors --------------------------------------------------------------------------------

/** An error and everything it wraps: causes, and each server's error in a selection failure. */
function errorsWithin(error: unknown): unknown[] {
  const found: unknown[] = [];
  const queue: { value: unknown; depth: number }[] = [{ value: error, depth: 0 }];
  while (queue.length) {
    const { value, depth } = queue.shift()!;
    if (!value || typeof value !== "object" || found.includes(value) || depth > 6) continue;
    found.push(value);
    const inner = value as {
      cause?: unknown;
      errors?: unknown[];
      reason?: { error?: unknown; servers?: Map<string, { error?: unknown }> };
    };
    queue.push({ value: inner.cause, depth: depth + 1 });
    for (const each of inner.errors ?? []) queue.push({ value: each, depth: depth + 1 });
    queue.push({ value: inner.reason?.error, depth: depth + 1 });
    for (const server of inner.reason?.servers?.values() ?? []) {
      queue.push({ value: server.error, depth: depth + 1 });
    }
  }
  return found;
}

const ERRNO: Record<string, ErrorCode> = {
  ECONNREFUSED: "CONNECTION_REFUSED",
  EHOSTUNREACH: "CONNECTION_REFUSED",
  ENETUNREACH: "CONNECTION_REFUSED",
  ENOTFOUND: "HOST_NOT_FOUND",
  EAI_AGAIN: "HOST_NOT_FOUND",
  EAI_NONAME: "HOST_NOT_FOUND",
  ETIMEDOUT: "TIMEOUT",
};

function isTlsCode(code: string): boolean {
  return code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") || code.includes("CERT") ||
    code.startsWith("UNABLE_TO_");
}

/** Classifies a driver error by its class, server error code and the causes it wraps. */
export function classifyMongoError(
  error: unknown,
  context: { credentials: boolean; field: "host" | "uri"; secrets: Secrets; timeoutMs: number },
): ConnectorError {
  const all = errorsWithin(error);
  const where = context.field;
  const guard = all.find((each) => each instanceof AddressGuardError) as
    | AddressGuardError
    | undefined;
  if (guard) return { ...guard.error, field: guard.error.field ?? where };

  const server = all.find((each) => each instanceof MongoServerError) as
    | MongoServerError
    | undefined;
  if (server) {
    const detail = redact(
      `${server.codeName ?? server.code}: ${server.errmsg ?? ""}`,
      context.secrets,
    );
    if (server.code === 18) {
      return {
        code: "AUTH_FAILED",
        message: "Authentication failed: the server refused the username or password",
        hint: context.field === "uri"
          ? "Check the credentials in the connection string, and the authentication database"
          : "Check the username, password and authentication database",
        field: context.field === "uri" ? "uri" : "password",
      };
    }
    if (server.code === 13) {
      return context.credentials
        ? {
          code: "PERMISSION_DENIED",
          message: `The user may not read this database (${detail})`,
          hint: "Grant the user the read role on the database",
          field: "username",
        }
        : {
          code: "AUTH_FAILED",
          message: `The server requires authentication (${detail})`,
          hint: "Give a username and password",
          field: "username",
        };
    }
    if (server.code === 26) {
      return {
        code: "RESOURCE_NOT_FOUND",
        message: `Not found on the server (${detail})`,
        hint: "Discover the source again",
      };
    }
    return {
      code: "UNKNOWN",
      message: `The server answered with an error (${detail})`,
      hint: "See the server's log for the cause",
    };
  }

  for (const each of all) {
    const code = String((each as { code?: unknown }).code ?? "");
    if (ERRNO[code] === "CONNECTION_REFUSED") {
      return {
        code: "CONNECTION_REFUSED",
        message: `Connection refused (${code})`,
        hint: `Check the ${where} and port: nothing accepts connections there`,
        field: where,
      };
    }
    if (ERRNO[code] === "HOST_NOT_FOUND") {
      return {
        code: "HOST_NOT_FOUND",
        message: `The host does not resolve (${code})`,
        hint: `Check the ${where}`,
        field: where,
      };
    }
    if (isTlsCode(code)) {
      return {
        code: "TLS_ERROR",
        message: `TLS handshake failed (${code})`,
        hint: "Check the TLS setting and the server's certificate",
        field: "ssl",
      };
    }
  }
  if (
    all.some((each) =>
      each instanceof MongoNetworkTimeoutError || (each as { code?: unknown }).code === "ETIMEDOUT"
    )
  ) {
    return {
      code: "TIMEOUT",
      message: `The server did not answer within ${context.timeoutMs} ms`,
      hint: `Check that the ${where} is reachable and is a MongoDB server`,
      field: where,
    };
  }
  if (
    all.some((each) => each instanceof MongoParseError) &&
    all.some((each) => each instanceof MongoNetworkError)
  ) {
    return {
      code: "INVALID_RESPONSE",
      message: "The server's answer is not the MongoDB wire protocol",
      hint: `Check the ${where} and port: another kind of server answers there`,
      field: where,
    };
  }
  if (
    all.some((each) =>
      each instanceof MongoNetworkError && !(each instanceof MongoNetworkTimeoutError)
    )
  ) {
    return {
      code: "INVALID_RESPONSE",
      message: "The server closed the connection without a MongoDB answer",
      hint: `Check that the ${where} and port are a MongoDB server's, and turn on TLS if the ` +
        "server requires it",
      field: where,
    };
  }
  if (error instanceof MongoServerSelectionError) {
    return {
      code: "TIMEOUT",
      message: `No usable server answered within ${context.timeoutMs} ms`,
      hint: `Check the ${where}, and the replica set name if one is set`,
      field: where,
    };
  }
  if (error instanceof MongoParseError || error instanceof MongoAPIError) {
    return {
      code: "INVALID_CONFIG",
      message: redact(`The settings are not usable: ${error.message}`, context.secrets),
      hint: "Check the connection settings",
      field: where,
    };
  }
  if (error instanceof MongoError) {
    return {
      code: "UNKNOWN",
      message: redact(`${error.name}: ${error.message}`, context.secrets),
      hint: `Check the ${where} and that the server is MongoDB 4.4 or newer`,
      field: where,
    };
  }
  // Not the driver's: a bug of ours, for the caller's error handling.
  throw error;
}

function classifier(settings: Settings, ctx: ConnectorContext, connection?: Connection) {
  return (error: unknown) =>
    classifyMongoError(error, {
      credentials: connection?.credentials ?? Boolean(settings.config.username),
      field: connection?.field ?? (settings.secrets.uri ? "uri" : "host"),
      secrets: settings.secrets,
      timeoutMs: ctx.pool.connectionTimeoutMs,
    });
}

/** Failures that will not go away by waiting for server selection to time out. */
const DEFINITIVE: ErrorCode[] = [
  "CONNECTION_REFUSED",
  "HOST_NOT_FOUND",
  "BLOCKED_ADDRESS",
  "TLS_ERROR",
  "INVALID_RESPONSE",
];

/**
 * Connects, but gives up as soon as the only seed host fails in a way waiting cannot fix
 * (refused, blocked, not MongoDB) instead of waiting out server selection. With several
 * seeds one member down is normal, so the driver's own selection decides.
 */
async function connectDecisively(
  client: MongoClient,
  connection: Connection,
  classify: (error: unknown) => ConnectorError,
): Promise<void> {
  const connecting = client.connect();
  if (connection.seeds.length !== 1 || connection.srvHost) {
    await connecting;
    return;
  }
  let onFailure: ((event: ServerHeartbeatFailedEvent) => void) | undefined;
  const hopeless = new Promise<never>((_, reject) => {
    onFailure = (event) => {
      if (DEFINITIVE.includes(classify(event.failure).code)) reject(event.failure);
    };
    client.on("serverHeartbeatFailed", onFailure);
  });
  // Whichever loses the race settles later with nobody listening.
  connecting.catch(() => {});
  hopeless.catch(() => {});
  try {
    await Promise.race([connecting, hopeless]);
  } finally {
    if (onFailure) client.off("serverHeartbeatFailed", onFailure);
  }
}

// ---- Values --------------------------------------------------------------------------------

function bsonTypeOf(value: unknown): string | undefined {
  return value !== null && typeof value === "object"
    ? (value as { _bsontype?: string })._bsontype
    : undefined;
}

function isPlainDocument(value: unknown): value is Document {
  return value !== null && typeof value === "object" && !Array.isArray(value) &&
    !(value instanceof Date) && !(value instanceof Uint8Array) && !bsonTypeOf(value);
}

/** A BSON value as plain JSON: strings for ids, dates, decimals and binaries. */
export function jsonSafe(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === "bigint") {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value instanceof RegExp) return String(value);
  switch (bsonTypeOf(value)) {
    case "ObjectId":
      return (value as ObjectId).toHexString();
    case "Decimal128":
      return (value as Decimal128).toString();
    case "Long": {
      const long = value as Long;
      return long.greaterThan(Number.MAX_SAFE_INTEGER) || long.lessThan(Number.MIN_SAFE_INTEGER)
        ? long.toString()
        : long.toNumber();
    }
    case "Int32":
    case "Double":
      return Number((value as { valueOf(): number }).valueOf());
    case "Binary": {
      const binary = value as Binary;
      if (binary.sub_type === 4) return binary.toUUID().toString();
      return binary.toString("base64");
    }
    case "Timestamp": {
      const stamp = value as unknown as { t: number; i: number };
      return { t: stamp.t, i: stamp.i };
    }
    case "BSONRegExp": {
      const pattern = value as unknown as { pattern: string; options: string };
      return `/${pattern.pattern}/${pattern.options}`;
    }
    case "MinKey":
    case "MaxKey":
      return bsonTypeOf(value);
    case "Code":
      return (value as unknown as { code: string }).code;
    case "BSONSymbol":
      return String((value as { valueOf(): unknown }).valueOf());
    case "DBRef": {
      const ref = value as unknown as { collection: string; oid: unknown; db?: string };
      return { $ref: ref.collection, $id: jsonSafe(ref.oid), ...(ref.db ? { $db: ref.db } : {}) };
    }
  }
  if (value instanceof Uint8Array) return btoa(String.fromCharCode(...value));
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Document).map(([key, inner]) => [key, jsonSafe(inner)]),
    );
  }
  return value;
}

/** A document as a row the API can send. */
function rowOf(document: Document): Record<string, unknown> {
  return jsonSafe(document) as Record<string, unknown>;
}

/** The column type of a BSON value. */
export function bsonType(value: unknown): InferredType | null {
  switch (bsonTypeOf(value)) {
    case "ObjectId":
    case "Binary":
    case "BSONRegExp":
    case "Code":
    case "BSONSymbol":
    case "MinKey":
    case "MaxKey":
      return "text";
    case "Decimal128":
    case "Double":
      return "number";
    case "Long":
    case "Int32":
      return "integer";
    case "Timestamp":
      return "timestamp";
    case "DBRef":
      return "object";
  }
  if (typeof value === "string") return "text";
  return jsonType(value);
}

/** Every field path of a document (`address`, `address.city`, ...) with its value. */
export function fieldPaths(
  document: Document,
  prefix = "",
  depth = 0,
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  for (const [key, value] of Object.entries(document)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out[path] = value;
    if (isPlainDocument(value) && depth < MAX_PATH_DEPTH) fieldPaths(value, path, depth + 1, out);
  }
  return out;
}

/** Columns from sample documents: every field path, its type, and the share of documents holding it. */
function documentColumns(documents: Document[]): (Column & { presence: number })[] {
  const sampler = new ColumnSampler(bsonType);
  for (const document of documents) sampler.add(fieldPaths(document));
  const columns = sampler.columns();
  if (!columns.some((column) => column.name === "_id")) {
    columns.unshift({ name: "_id", type: "text", nullable: false, presence: 1 });
  }
  for (const column of columns) {
    if (column.name === "_id") Object.assign(column, { primaryKey: true, unique: true });
  }
  return columns;
}

/** Top-level columns of rows read (what preview shows). */
function topLevelColumns(documents: Document[]): { name: string; type: string }[] {
  const sampler = new ColumnSampler(bsonType);
  for (const document of documents) sampler.add(document);
  return sampler.columns().map(({ name, type }) => ({ name, type }));
}

/** The saved cursor value (JSON) as the BSON type the field holds. */
function cursorValue(example: unknown, after: unknown): unknown {
  const text = String(after);
  switch (bsonTypeOf(example)) {
    case "ObjectId":
      return ObjectId.isValid(text) ? new ObjectId(text) : after;
    case "Decimal128":
      return Decimal128.fromString(text);
    case "Long":
      return Long.fromString(text);
  }
  if (example instanceof Date) {
    const date = new Date(typeof after === "number" ? after : text);
    return Number.isNaN(date.getTime()) ? after : date;
  }
  if (typeof example === "number" && typeof after === "string" && after.trim() !== "") {
    const number = Number(after);
    return Number.isNaN(number) ? after : number;
  }
  return after;
}

function valueAtPath(document: Document | null, path: string): unknown {
  let current: unknown = document;
  for (const key of path.split(".")) {
    if (!current || typeof current !== "object") return undefined;
    current = (current as Document)[key];
  }
  return current;
}

// ---- Operations ----------------------------------------------------------------------------

/** Collections the user may list: every one, or (without that privilege) the authorized ones. */
async function collectionsOf(db: Db): Promise<CollectionInfo[]> {
  let infos: Pick<CollectionInfo, "name" | "type">[];
  try {
    infos = await db.listCollections({}, { nameOnly: false }).toArray();
  } catch (error) {
    if (!(error instanceof MongoServerError) || error.code !== 13) throw error;
    // Without listCollections on the database, a user may still read some collections.
    infos = await db.listCollections({}, { nameOnly: true, authorizedCollections: true })
      .toArray();
    if (infos.length === 0) throw error;
  }
  return infos.filter((info) => !info.name.startsWith("system.")) as CollectionInfo[];
}

type PoolMeter = { size: number; active: number };

/** The source's pooled client, connected. */
async function poolFor(settings: Settings, ctx: ConnectorContext): Promise<MongoClient> {
  const connection = connectionOf(settings, ctx);
  if (!connection.ok) throw new ConnectorFailure(connection.error);
  return await pooled(
    { sourceId: settings.id, fingerprint: settings.fingerprint, type: "MONGODB" },
    async () => {
      // Node connects to an address without calling `lookup`: check the seeds here first.
      const checked = await checkSeeds(connection.value, ctx);
      if (!checked.ok) throw new ConnectorFailure(checked.error);
      const client = newClient(connection.value, ctx, { checked: checked.value });
      const meter: PoolMeter = { size: 0, active: 0 };
      client.on("connectionCreated", () => meter.size++);
      client.on("connectionClosed", () => meter.size = Math.max(0, meter.size - 1));
      client.on("connectionCheckedOut", () => meter.active++);
      client.on("connectionCheckedIn", () => meter.active = Math.max(0, meter.active - 1));
      const classify = classifier(settings, ctx, connection.value);
      try {
        await connectDecisively(client, connection.value, classify);
      } catch (error) {
        await client.close().catch(() => {});
        throw new ConnectorFailure(classify(error));
      }
      return { pool: client, stats: () => ({ ...meter }), close: () => client.close() };
    },
  );
}

/** Runs `work` with the source's database; remote failures come back as values. */
async function withDatabase<T>(
  settings: Settings,
  ctx: ConnectorContext,
  work: (db: Db) => Promise<T>,
): Promise<Result<T>> {
  try {
    const client = await poolFor(settings, ctx);
    return { ok: true, value: await work(client.db(settings.config.database)) };
  } catch (error) {
    if (error instanceof ConnectorFailure) return { ok: false, error: error.error };
    return { ok: false, error: classifier(settings, ctx)(error) };
  }
}

async function existingCollection(db: Db, name: string): Promise<Collection> {
  const infos = await collectionsOf(db);
  if (!infos.some((info) => info.name === name)) {
    throw new ConnectorFailure({
      code: "RESOURCE_NOT_FOUND",
      message: `No collection "${name}" in database "${db.databaseName}"`,
      hint: "Discover the source again",
    });
  }
  return db.collection(name);
}

function topologyOf(hello: Document): string {
  if (hello.msg === "isdbgrid") return "sharded";
  if (hello.setName) return `replica set ${hello.setName}`;
  return "standalone";
}

async function runTest(settings: Settings, ctx: ConnectorContext): Promise<TestResult> {
  const started = performance.now();
  const stages: Stage[] = [];
  const stage = (name: StageName, ok: boolean, since: number, until = performance.now()) =>
    stages.push({ name, ok, ms: Math.max(0, Math.round(until - since)) });
  const failed = (error: ConnectorError): TestResult => ({
    success: false,
    message: error.message,
    responseTime: Math.round(performance.now() - started),
    stages,
    error,
  });

  const connection = connectionOf(settings, ctx);
  if (!connection.ok) {
    stage("resolve", false, started);
    return failed(connection.error);
  }
  const classify = classifier(settings, ctx, connection.value);
  const checked = await checkSeeds(connection.value, ctx);
  stage("resolve", checked.ok, started);
  if (!checked.ok) return failed(checked.error);

  const client = newClient(connection.value, ctx, { checked: checked.value, forTest: true });
  let reachedAt: number | undefined;
  client.on("serverHeartbeatSucceeded", () => reachedAt ??= performance.now());
  const connecting = performance.now();
  try {
    try {
      await connectDecisively(client, connection.value, classify);
    } catch (error) {
      const classified = classify(error);
      const authProblem = classified.code === "AUTH_FAILED" ||
        classified.code === "PERMISSION_DENIED";
      if (connection.value.credentials && authProblem && reachedAt !== undefined) {
        stage("connect", true, connecting, reachedAt);
        stage("authenticate", false, reachedAt);
      } else stage("connect", false, connecting);
      return failed(classified);
    }
    const connectedAt = performance.now();
    stage("connect", true, connecting, reachedAt ?? connectedAt);
    if (connection.value.credentials) {
      stage("authenticate", true, reachedAt ?? connectedAt, connectedAt);
    }

    const querying = performance.now();
    try {
      const admin = client.db("admin");
      const [build, hello] = await Promise.all([
        admin.command({ buildInfo: 1 }),
        admin.command({ hello: 1 }),
      ]);
      const collections = await collectionsOf(client.db(settings.config.database));
      stage("query", true, querying);
      return {
        success: true,
        message: `Connected to MongoDB ${build.version}: ${collections.length} collection${
          collections.length === 1 ? "" : "s"
        } in ${settings.config.database}`,
        responseTime: Math.round(performance.now() - started),
        stages,
        serverInfo: {
          version: String(build.version),
          topology: topologyOf(hello),
          database: settings.config.database,
          collections: collections.length,
          maxWireVersion: typeof hello.maxWireVersion === "number" ? hello.maxWireVersion : null,
        },
      };
    } catch (error) {
      stage("query", false, querying);
      return failed(classify(error));
    }
  } finally {
    await client.close().catch(() => {});
  }
}

export const mongodb = {
  type: "MONGODB",
  label: "MongoDB",
  description: "MongoDB 4.4 or newer, replica sets and Atlas",
  configSchema,
  secretsSchema,
  check(config, secrets) {
    if (!config.host && !secrets.uri) {
      return [{ path: "host", message: "Give a host or a connection string" }];
    }
    if (config.username && !secrets.password && !secrets.uri) {
      return [{ path: "password", message: "Password is required with a username" }];
    }
    return [];
  },
  capabilities: { pooled: true, incremental: true },

  test: runTest,

  async discover(settings, ctx) {
    return await withDatabase(settings, ctx, async (db) => {
      const streams: Stream[] = [];
      for (const info of await collectionsOf(db)) {
        const collection = db.collection(info.name);
        const view = info.type === "view";
        const [documents, count] = await Promise.all([
          collection.aggregate([{ $sample: { size: SAMPLE_SIZE } }]).toArray(),
          view ? Promise.resolve(null) : collection.estimatedDocumentCount(),
        ]);
        streams.push({
          name: info.name,
          kind: view ? "view" : "collection",
          columns: documentColumns(documents),
          rowCount: count,
          rowCountExact: false,
          constraints: { primaryKeys: ["_id"], foreignKeys: [], uniqueKeys: ["_id"] },
        });
      }
      return { streams };
    });
  },

  async preview(settings, request, ctx): Promise<Result<Preview>> {
    if (request.stream.schema !== undefined) {
      return {
        ok: false,
        error: {
          code: "RESOURCE_NOT_FOUND",
          message: "MongoDB collections have no schema",
          hint: "Name the collection only",
        },
      };
    }
    return await withDatabase(settings, ctx, async (db) => {
      const collection = await existingCollection(db, request.stream.name);
      const documents = await collection.find({}, { limit: request.limit }).toArray();
      return { columns: topLevelColumns(documents), rows: documents.map(rowOf) };
    });
  },

  async *read(settings, request, ctx) {
    const classify = classifier(settings, ctx);
    const fail = (error: unknown) =>
      error instanceof ConnectorFailure || (error as Error)?.name === "AbortError"
        ? error
        : new ConnectorFailure(classify(error));
    let client: MongoClient;
    let collection: Collection;
    let filter: Document = {};
    let sort: Document | undefined;
    try {
      client = await poolFor(settings, ctx);
      collection = await existingCollection(
        client.db(settings.config.database),
        request.stream.name,
      );
      const column = request.cursor?.column;
      if (column) {
        sort = column === "_id" ? { _id: 1 } : { [column]: 1, _id: 1 };
        const after = request.cursor?.after;
        if (after !== undefined && after !== null) {
          // The saved value is JSON; compare it as the type the field holds.
          const example = await collection.findOne(
            { [column]: { $exists: true, $ne: null } },
            { projection: { [column]: 1 } },
          );
          filter = { [column]: { $gt: cursorValue(valueAtPath(example, column), after) } };
        }
      }
    } catch (error) {
      throw fail(error);
    }
    const size = Math.max(1, Math.floor(request.batchSize));
    const cursor = collection.find(filter, { sort, batchSize: size });
    // A read stopped while it waits for documents kills its cursor now, while the client can
    // still tell the server; a server left with it would hold it until the session expires.
    const abandon = () => void cursor.close().catch(() => {});
    request.signal?.addEventListener("abort", abandon, { once: true });
    try {
      let rows: Record<string, unknown>[] = [];
      while (true) {
        let document: Document | null;
        try {
          document = await cursor.next();
        } catch (error) {
          throw fail(error);
        }
        if (!document) break;
        rows.push(rowOf(document));
        if (rows.length === size) {
          request.signal?.throwIfAborted();
          yield { rows };
          rows = [];
        }
      }
      request.signal?.throwIfAborted();
      if (rows.length) yield { rows };
    } finally {
      request.signal?.removeEventListener("abort", abandon);
      await cursor.close().catch(() => {});
    }
  },

  close: closePool,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
