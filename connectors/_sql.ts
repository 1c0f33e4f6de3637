/**
 * Helpers shared by the SQL connectors (PostgreSQL, MySQL): opening a guarded socket with
 * timed stages, TLS settings, errno classification, JSON-safe rows, timeouts and the choice
 * of tables to count exactly. Plain functions and two small bookkeeping classes; each
 * connector keeps its own protocol and its own error table.
 */
import net from "node:net";
import type { Readable } from "node:stream";
import tls from "node:tls";
import { encodeBase64 } from "@oslojs/encoding";
import { z } from "zod";
import { type CheckedHost, checkHost, pinnedLookup } from "./_guard.ts";
import type { PoolStats } from "./_pools.ts";
import {
  type ConnectorContext,
  type ConnectorError,
  ConnectorFailure,
  type Stage,
  type StageName,
  type TestResult,
} from "./types.ts";

// --- Settings --------------------------------------------------------------------------

/** How a TLS connection checks the server (used only when `ssl` is on). */
export function sslModeField() {
  return z.enum(["require", "verify-full"]).optional().meta({
    title: "TLS verification",
    description: "require (default): encrypt without checking the certificate, like libpq's " +
      "sslmode=require; verify-full: the certificate must be trusted and name the host",
  });
}

/** A CA certificate to trust for verify-full (public, not a secret). */
export function sslRootCertField() {
  return z.string().trim().max(65_536).startsWith("-----BEGIN", "Must be a PEM certificate")
    .optional().meta({
      title: "CA certificate (PEM)",
      description: "Trusted for verify-full in addition to the system's authorities",
    });
}

export type TlsPlan = {
  /** SNI and the name the certificate must carry: the configured host, unless it is an IP. */
  servername?: string;
  verify: boolean;
  ca?: string[];
};

/** What TLS to negotiate for these settings, or null for a plain connection. */
export function tlsPlanOf(
  config: { host: string; ssl: boolean; sslMode?: "require" | "verify-full"; sslRootCert?: string },
): TlsPlan | null {
  if (!config.ssl) return null;
  const verify = config.sslMode === "verify-full";
  return {
    servername: net.isIP(config.host) ? undefined : config.host,
    verify,
    ca: verify && config.sslRootCert ? [...tls.rootCertificates, config.sslRootCert] : undefined,
  };
}

/** The connection timeout for a source: its own setting, else CONNECTION_TIMEOUT_MS. */
export function connectTimeoutOf(
  config: { connectionTimeoutMillis?: number },
  ctx: ConnectorContext,
): number {
  return config.connectionTimeoutMillis ?? ctx.pool.connectionTimeoutMs;
}

// --- Stages ----------------------------------------------------------------------------

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** The timed stages of opening one connection. */
export class Attempt {
  readonly stages: Stage[] = [];
  /** The checked address the connection went to. */
  address?: string;
  tls = false;
  /** The TCP socket, once connected. */
  socket?: net.Socket;
  #mark = performance.now();

  /** Ends the running stage as passed. */
  pass(name: StageName, extra: Partial<Stage> = {}): void {
    const now = performance.now();
    this.stages.push({ name, ok: true, ms: round(now - this.#mark), ...extra });
    this.#mark = now;
  }

  /** The running stage, as failed now. */
  failed(name: StageName): Stage {
    return { name, ok: false, ms: round(performance.now() - this.#mark) };
  }

  /** Starts timing the next stage from now (after a pause that belongs to no stage). */
  restart(): void {
    this.#mark = performance.now();
  }

  has(name: StageName): boolean {
    return this.stages.some((stage) => stage.name === name);
  }

  /** Whether the server has sent anything on this connection yet. */
  answered(): boolean {
    return (this.socket?.bytesRead ?? 0) > 0;
  }
}

/**
 * Bookkeeping of one pool: sockets open, calls running, and the stages of the newest
 * connection (a connection test reports them when it was the one that opened it).
 */
export class ConnectionMeter {
  /** Connections started since the pool was made. */
  started = 0;
  open = 0;
  active = 0;
  latest?: Attempt;

  begin(): Attempt {
    this.started++;
    this.latest = new Attempt();
    return this.latest;
  }

  /** Counts a socket as open until it closes. */
  track(socket: net.Socket): void {
    this.open++;
    socket.once("close", () => this.open--);
  }

  /** Runs a call, counted as active while it runs. */
  async busy<T>(call: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await call();
    } finally {
      this.active--;
    }
  }

  stats(): PoolStats {
    return { size: this.open, active: this.active };
  }
}

/** Stages of a connection the pool already had: nothing was done, nothing took time. */
export function reusedStages(names: StageName[]): Stage[] {
  return names.map((name) => ({ name, ok: true, ms: 0, reused: true }));
}

export function testSucceeded(
  options: {
    started: number;
    stages: Stage[];
    serverInfo: TestResult["serverInfo"];
    message: string;
  },
): TestResult {
  return {
    success: true,
    message: options.message,
    responseTime: round(performance.now() - options.started),
    stages: options.stages,
    serverInfo: options.serverInfo,
  };
}

export function testFailed(
  options: { started: number; stages: Stage[]; error: ConnectorError },
): TestResult {
  return {
    success: false,
    message: options.error.message,
    responseTime: round(performance.now() - options.started),
    stages: options.stages,
    error: options.error,
  };
}

// --- Failures --------------------------------------------------------------------------

/** A classified failure while opening a connection, with the stage it happened in. */
export class StageFailure extends ConnectorFailure {
  override name = "StageFailure";
  constructor(error: ConnectorError, readonly stage: StageName) {
    super(error);
  }
}

type Endpoint = { host: string; port: number };

/** The errno (or TLS) code of a socket error; happy-eyeballs failures carry a list. */
export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string") return code;
  const inner = (error as { errors?: unknown[] }).errors;
  return Array.isArray(inner) && inner.length ? errorCodeOf(inner[inner.length - 1]) : undefined;
}

const REFUSED = new Set(["ECONNREFUSED"]);
const UNREACHABLE = new Set([
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EADDRNOTAVAIL",
]);
const TIMED_OUT = new Set(["ETIMEDOUT", "ETIMEOUT"]);
const CUT = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * A socket-level failure (errno codes and TLS verification codes), or null when the error
 * is not one: the caller then classifies it by its protocol code.
 */
export function networkFailure(
  error: unknown,
  where: Endpoint & { stage: StageName; protocol: string },
): ConnectorError | null {
  const code = errorCodeOf(error);
  if (!code) return null;
  const at = `${where.host}:${where.port}`;
  if (REFUSED.has(code)) {
    return {
      code: "CONNECTION_REFUSED",
      message: `Connection refused by ${at} (${code})`,
      hint: `Check the host and port: nothing accepts ${where.protocol} connections there`,
      field: "port",
    };
  }
  if (UNREACHABLE.has(code)) {
    return {
      code: "CONNECTION_REFUSED",
      message: `Cannot reach ${at} (${code})`,
      hint: "Check the host: the server cannot route to it",
      field: "host",
    };
  }
  if (TIMED_OUT.has(code)) return timeoutError(where);
  if (CUT.has(code) && where.stage === "connect") return closedBeforeAnswer(code, where);
  if (CUT.has(code)) {
    return {
      code: "INVALID_RESPONSE",
      message: `${at} closed the connection during ${where.stage} (${code})`,
      hint: `Check the port: the server there may not speak ${where.protocol}, or dropped us`,
      field: "port",
    };
  }
  if (
    where.stage === "tls" || /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)
  ) {
    return {
      code: "TLS_ERROR",
      message: `TLS with ${at} failed (${code})`,
      hint: "Check the TLS settings: the certificate must be trusted and name the host for " +
        "verify-full (add the CA certificate), or choose require",
      field: "configuration.sslMode",
    };
  }
  return null;
}

/**
 * A connection closed or reset before the server sent a byte: a listener shutting down (its
 * queued connections are reset) or one that turns connections away. Nothing at that
 * address took the connection, which is what a refusal is.
 */
export function closedBeforeAnswer(
  code: string,
  where: Endpoint & { protocol: string },
): ConnectorError {
  return {
    code: "CONNECTION_REFUSED",
    message: `${where.host}:${where.port} closed the connection before answering (${code})`,
    hint: `Check that the server is running and accepts ${where.protocol} connections at ` +
      "this host and port",
    field: "port",
  };
}

export function timeoutError(where: Endpoint & { stage: StageName }): ConnectorError {
  return {
    code: "TIMEOUT",
    message: `No answer from ${where.host}:${where.port} during ${where.stage} within the ` +
      "connection timeout",
    hint: "Check the host, port and firewall, or raise the connection timeout",
    field: "configuration.connectionTimeoutMillis",
  };
}

/** Shorter values would blank out ordinary words of a message ("x" in "exist"). */
const MIN_REDACTED_LENGTH = 4;

/** Replaces every secret value in a failure's text (server messages may echo input). */
export function withoutSecrets(error: ConnectorError, secrets: unknown[]): ConnectorError {
  const values = secrets.filter((value): value is string =>
    typeof value === "string" && value.length >= MIN_REDACTED_LENGTH
  );
  const scrub = (text: string) =>
    values.reduce((out, value) => out.split(value).join("[REDACTED]"), text);
  return { ...error, message: scrub(error.message), hint: scrub(error.hint) };
}

// --- Sockets ---------------------------------------------------------------------------

/** Resolves within `ms` or rejects with `onTimeout()`. */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves the host through the address guard and opens a TCP connection to a checked
 * address (every checked address in turn, never resolving again), timing the resolve and
 * connect stages on `attempt`. A `socket` made beforehand (drivers that want one at once)
 * is connected in place; on failure it is destroyed with the StageFailure.
 */
export async function openTcp(
  options: Endpoint & {
    network: ConnectorContext["network"];
    timeoutMs: number;
    attempt: Attempt;
    protocol: string;
    socket?: net.Socket;
  },
): Promise<net.Socket> {
  const { host, port, attempt } = options;
  const socket = options.socket ?? new net.Socket();
  try {
    const checked = await withTimeout<Awaited<ReturnType<typeof checkHost>>>(
      checkHost(host, "database", options.network),
      options.timeoutMs,
      () => new StageFailure(timeoutError({ host, port, stage: "resolve" }), "resolve"),
    );
    if (!checked.ok) throw new StageFailure(checked.error, "resolve");
    attempt.pass("resolve");
    await connectSocket(socket, checked.value, options);
    attempt.address = socket.remoteAddress;
    attempt.socket = socket;
    attempt.pass("connect");
    return socket;
  } catch (error) {
    const failure = error instanceof StageFailure ? error : new StageFailure(
      networkFailure(error, { host, port, stage: "connect", protocol: options.protocol }) ?? {
        code: "UNKNOWN",
        message: `Cannot connect to ${host}:${port}: ${describe(error)}`,
        hint: "Check the host and port",
        field: "host",
      },
      "connect",
    );
    // A socket handed in is watched by its driver, which learns of the failure this way;
    // our own has no listener yet, so the rejection alone carries it.
    socket.destroy(options.socket ? failure : undefined);
    throw failure;
  }
}

function connectSocket(
  socket: net.Socket,
  checked: CheckedHost,
  options: Endpoint & { timeoutMs: number; protocol: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new StageFailure(timeoutError({ ...options, stage: "connect" }), "connect"));
    }, options.timeoutMs);
    const onConnect = () => {
      cleanup();
      socket.setNoDelay(true);
      resolve();
    };
    const onError = (error: unknown) => {
      cleanup();
      reject(error);
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("error", onError);
    }
    socket.once("connect", onConnect);
    socket.once("error", onError);
    socket.connect({
      host: checked.host,
      port: options.port,
      lookup: pinnedLookup(checked) as unknown as net.LookupFunction,
      autoSelectFamily: checked.addresses.length > 1,
    });
  });
}

/**
 * Upgrades a connected socket to TLS (server name = the configured host), bounded by
 * `timeoutMs`; failures are TLS_ERROR (or TIMEOUT) at the tls stage.
 */
export function startTls(
  socket: net.Socket,
  plan: TlsPlan,
  where: Endpoint & { timeoutMs: number; protocol: string },
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      servername: plan.servername,
      rejectUnauthorized: plan.verify,
      ca: plan.ca,
      // Without verification the name is not checked either (libpq's sslmode=require).
      checkServerIdentity: plan.verify ? tls.checkServerIdentity : () => undefined,
    });
    const timer = setTimeout(() => {
      fail(new StageFailure(timeoutError({ ...where, stage: "tls" }), "tls"));
    }, where.timeoutMs);
    function fail(error: StageFailure) {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy(error);
      reject(error);
    }
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      secure.removeAllListeners("error");
      resolve(secure);
    });
    secure.once("error", (error) => {
      fail(
        new StageFailure(
          networkFailure(error, { ...where, stage: "tls" }) ?? {
            code: "TLS_ERROR",
            message: `TLS with ${where.host}:${where.port} failed: ${describe(error)}`,
            hint: "Check the TLS settings",
            field: "ssl",
          },
          "tls",
        ),
      );
    });
  });
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// --- Rows ------------------------------------------------------------------------------

/** A value as JSON carries it: bigint → string, bytes → base64, dates → ISO strings. */
export function jsonSafe(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return encodeBase64(value);
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map((
        [key, inner],
      ) => [key, jsonSafe(inner)]),
    );
  }
  return String(value);
}

export function jsonSafeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(row)) {
    // Plain assignment keeps rows fast (a sync reads millions); only a column named
    // __proto__ needs defineProperty, which assignment would turn into a prototype change.
    if (key !== "__proto__") {
      out[key] = jsonSafe(row[key]);
      continue;
    }
    Object.defineProperty(out, key, {
      value: jsonSafe(row[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Makes a driver's row JSON-safe in place (see jsonSafe), replacing only the values that
 * change: a sync reads millions of rows, and a second object per row is garbage the
 * collector must keep up with.
 */
export function makeJsonSafe(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    const value = row[key];
    if (value === null || typeof value === "string" || typeof value === "boolean") continue;
    if (typeof value === "number" && Number.isFinite(value)) continue;
    const safe = jsonSafe(value);
    if (key !== "__proto__") {
      row[key] = safe;
      continue;
    }
    // Assignment would change the prototype of the row instead.
    Object.defineProperty(row, key, {
      value: safe,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return row;
}

/**
 * A Readable's end and failure as state a pull loop reads between its read() calls, and a
 * promise for its next event (readable, end, error or close). `stop` removes the listeners
 * but the error one: a driver may still destroy the stream with an error after its reader
 * has gone (postgres.js does when a connection it is ending still holds a COPY), and an
 * 'error' event without a listener ends the process.
 */
export function watchReadable(stream: Readable) {
  const state: { ended: boolean; failure: { error: unknown } | null } = {
    ended: false,
    failure: null,
  };
  let wake: (() => void) | null = null;
  const poke = () => wake?.();
  const onEnd = () => {
    state.ended = true;
    poke();
  };
  const onError = (error: unknown) => {
    state.failure ??= { error };
    poke();
  };
  stream.on("readable", poke);
  stream.on("end", onEnd);
  stream.on("error", onError);
  stream.on("close", poke);
  return {
    state,
    async nextEvent(): Promise<void> {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    },
    stop() {
      stream.off("readable", poke);
      stream.off("end", onEnd);
      stream.off("close", poke);
    },
  };
}

/**
 * The rows of a driver's object-mode stream in batches of up to `size`, taken with read()
 * as they arrive: `for await` over the stream makes a promise and a result object per row.
 * A stream destroyed before its end (by its error, or by a watchdog) fails the read.
 */
export async function* streamBatches<T>(
  stream: Readable,
  options: { size: number; each(row: T): T },
): AsyncGenerator<T[], void, undefined> {
  const { size, each } = options;
  const watch = watchReadable(stream);
  try {
    let batch: T[] = [];
    while (true) {
      if (watch.state.failure) throw watch.state.failure.error;
      let row: T | null;
      while (batch.length < size && (row = stream.read() as T | null) !== null) {
        batch.push(each(row));
      }
      if (batch.length === size) {
        yield batch;
        batch = [];
        continue;
      }
      if (stream.readableLength > 0) continue;
      if (watch.state.ended) break;
      if (stream.destroyed) throw new Error("The result stream closed before its end");
      await watch.nextEvent();
    }
    if (batch.length) yield batch;
  } finally {
    watch.stop();
  }
}

// --- Row counts ------------------------------------------------------------------------

/** Tables up to this size are counted exactly... */
export const EXACT_COUNT_MAX_TABLE_BYTES = 16 * 1024 * 1024;
/** ...while the counted tables add up to at most this much... */
export const EXACT_COUNT_MAX_TOTAL_BYTES = 256 * 1024 * 1024;
/** ...and at most this many tables go into the one counting query. */
export const EXACT_COUNT_MAX_TABLES = 2_000;

/**
 * The smallest tables, within the limits above (a connector may count fewer tables): the
 * ones worth one exact count query.
 */
export function tablesToCount<T extends { bytes: number | null }>(
  tables: T[],
  options: { maxTables?: number } = {},
): T[] {
  const maxTables = Math.min(options.maxTables ?? EXACT_COUNT_MAX_TABLES, EXACT_COUNT_MAX_TABLES);
  const candidates = tables
    .filter((table) => table.bytes !== null && table.bytes <= EXACT_COUNT_MAX_TABLE_BYTES)
    .sort((a, b) => a.bytes! - b.bytes!);
  const chosen: T[] = [];
  let total = 0;
  for (const table of candidates) {
    if (chosen.length === maxTables) break;
    if (total + table.bytes! > EXACT_COUNT_MAX_TOTAL_BYTES) break;
    total += table.bytes!;
    chosen.push(table);
  }
  return chosen;
}

/** An error code and hint for a failure that is not the remote side's (a bug of ours). */
export function unexpected(error: unknown, what: string): ConnectorError {
  return {
    code: "UNKNOWN",
    message: `${what} failed: ${describe(error)}`,
    hint: "See the server log for details",
  };
}
