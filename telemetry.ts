/**
 * Logs (LogTape, one JSON object per line, secret fields redacted) and metrics
 * (prom-client). Both are process-wide, set up once at start.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  type Logger,
  type LogLevel,
  type Sink,
} from "@logtape/logtape";
import { redactByField } from "@logtape/redaction";
import client from "prom-client";

/** Property names whose values never reach a log line. */
const SECRET_FIELDS = [
  /pass(word|phrase)?$/i,
  /secret/i,
  /token/i,
  /api_?key/i,
  /credential/i,
  /authorization/i,
  /cookie/i,
  /^uri$/i,
  /private_?key/i,
];

export type LoggingOptions = {
  level: LogLevel;
  /** Where finished lines go; stdout by default. Tests pass a collector. */
  write?: (line: string) => void;
};

/**
 * What the code running now belongs to (a request's id, a sync run's source and log):
 * added to every log line written inside it, and to the report of an error that escapes.
 */
const context = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs `work` with `properties` added to every log line it writes (also after awaits). */
export function withLogContext<T>(properties: Record<string, unknown>, work: () => T): T {
  return context.run({ ...context.getStore(), ...properties }, work);
}

/** Configures LogTape for the process: JSON lines, secrets redacted. */
export async function configureLogging(options: LoggingOptions): Promise<void> {
  const formatter = getJsonLinesFormatter({ properties: "flatten", message: "rendered" });
  const encoder = new TextEncoder();
  const write = options.write ?? ((line: string) => Deno.stdout.writeSync(encoder.encode(line)));
  const jsonLines: Sink = (record) => write(formatter(record));
  await configure({
    reset: true,
    contextLocalStorage: context,
    sinks: {
      out: redactByField(jsonLines, {
        fieldPatterns: SECRET_FIELDS,
        action: () => "[REDACTED]",
      }),
    },
    loggers: [
      { category: ["dafel"], lowestLevel: options.level, sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

/** A logger under the app's category: `log("http")` → `dafel.http`. */
export function log(...category: string[]): Logger {
  return getLogger(["dafel", ...category]);
}

/**
 * Errors after which the process cannot go on: the embedded database's WebAssembly
 * instance has aborted (its memory is in an unknown state and every later query would
 * fail or, worse, answer wrongly). A supervisor should start the process again.
 */
export function leavesProcessUnusable(error: unknown): boolean {
  return error instanceof WebAssembly.RuntimeError;
}

/**
 * The last line of defence: an error no code handled (a rejected promise nobody awaited, a
 * throw from a timer or an event without a listener) is logged once, with its stack and the
 * request or run it came from where that is known, and the process keeps serving. Only an
 * error that leaves the process unusable ends it, with exit code 1. Every such error is a
 * bug of ours: each one logged here should be fixed where it starts.
 */
export function installProcessGuards(options: { exit?: (code: number) => void } = {}): {
  remove(): void;
} {
  const exit = options.exit ?? ((code: number) => Deno.exit(code));
  const logger = log("process");
  const seen = new WeakSet<object>();
  function report(error: unknown, kind: string) {
    if (typeof error === "object" && error !== null) {
      if (seen.has(error)) return;
      seen.add(error);
    }
    const fields = {
      kind,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      stack: error instanceof Error ? error.stack : undefined,
      ...context.getStore(),
    };
    if (leavesProcessUnusable(error)) {
      logger.fatal("An unhandled error left the process unusable; exiting", fields);
      exit(1);
      return;
    }
    logger.error("An error escaped every handler; the process goes on", fields);
  }
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report(event.reason, "unhandled rejection");
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report(event.error ?? event.message, "uncaught exception");
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return {
    remove() {
      globalThis.removeEventListener("unhandledrejection", onRejection);
      globalThis.removeEventListener("error", onError);
    },
  };
}

export const registry = new client.Registry();

type PoolStatsByType = Record<string, { size: number; active: number }>;
let poolStats: () => PoolStatsByType = () => ({});

/** Where the pool gauges read from (connectors/_pools.ts registers itself). */
export function setPoolStatsProvider(provider: () => PoolStatsByType): void {
  poolStats = provider;
}

export const metrics = {
  httpRequests: new client.Counter({
    name: "http_requests_total",
    help: "HTTP requests answered, by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  }),
  httpDuration: new client.Histogram({
    name: "http_request_duration_seconds",
    help: "Time to answer an HTTP request",
    labelNames: ["method", "route"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
  connectionDuration: new client.Histogram({
    name: "datasource_connection_duration_seconds",
    help: "Duration of connection tests against data sources",
    labelNames: ["type", "outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  }),
  connectionTotal: new client.Counter({
    name: "datasource_connection_total",
    help: "Connection tests against data sources, by type and outcome (error code on failure)",
    labelNames: ["type", "outcome"] as const,
    registers: [registry],
  }),
  queryDuration: new client.Histogram({
    name: "datasource_query_duration_seconds",
    help: "Duration of discovery, preview and read queries against data sources",
    labelNames: ["type", "operation"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [registry],
  }),
  poolSize: new client.Gauge({
    name: "connection_pool_size",
    help: "Connections open in data-source pools of this instance",
    labelNames: ["type"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, pool] of Object.entries(poolStats())) this.set({ type }, pool.size);
    },
  }),
  poolActive: new client.Gauge({
    name: "connection_pool_active",
    help: "Connections of data-source pools of this instance that are running a query",
    labelNames: ["type"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, pool] of Object.entries(poolStats())) this.set({ type }, pool.active);
    },
  }),
  syncRecords: new client.Counter({
    name: "sync_records_total",
    help: "Records loaded into the app database by sync runs, by source type",
    labelNames: ["type"] as const,
    registers: [registry],
  }),
  syncRuns: new client.Counter({
    name: "sync_runs_total",
    help: "Sync runs that ended, by source type and status (SUCCEEDED, FAILED, CANCELLED)",
    labelNames: ["type", "status"] as const,
    registers: [registry],
  }),
  syncFailures: new client.Counter({
    name: "sync_failures_total",
    help: "Sync runs that failed, by source type and where (source, destination, interrupted)",
    labelNames: ["type", "reason"] as const,
    registers: [registry],
  }),
  syncDuration: new client.Histogram({
    name: "sync_run_duration_seconds",
    help: "Duration of sync runs, by source type and status",
    labelNames: ["type", "status"] as const,
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  }),
  jobsTotal: new client.Counter({
    name: "jobs_total",
    help: "Background jobs (syncs, health checks) this instance ran, by kind and status",
    labelNames: ["kind", "status"] as const,
    registers: [registry],
  }),
};

client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: undefined });
