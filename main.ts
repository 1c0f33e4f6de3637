/**
 * Starts Dafel Data Sources: parses the environment, opens the app database (embedded
 * PGlite or PostgreSQL) and applies migrations, checks the encryption key, starts the demo
 * database, creates the first admin if asked to, and serves the app.
 */
import { RateLimiterDrizzle } from "rate-limiter-flexible";
import { type Config, loadConfig } from "./config.ts";
import { closeAllPools } from "./connectors/_pools.ts";
import type { ConnectorContext } from "./connectors/types.ts";
import {
  type DemoDatabase,
  type DemoSettings,
  demoSettingsFromUrl,
  startDemoDatabase,
} from "./db/demo.ts";
import { type AppDatabase, openDatabase } from "./db/mod.ts";
import { rateLimits } from "./db/schema.ts";
import { createUser } from "./db/users.ts";
import { userCount } from "./routes/_auth.ts";
import type { AppDeps } from "./routes/_env.ts";
import { metricsResponse } from "./routes/health.ts";
import { createApp } from "./routes/mod.ts";
import { recoverInterruptedWork, startSyncEngine, type SyncEngine } from "./sync/mod.ts";
import { configureLogging, installProcessGuards, log } from "./telemetry.ts";
import { openVault } from "./vault/keys.ts";
import type { Vault } from "./vault/mod.ts";

/** The dependencies routes receive, around an open database and vault. */
export function createDeps(
  options: { config: Config; database: AppDatabase; vault: Vault; demo?: DemoSettings },
): AppDeps {
  const { config, database, vault } = options;
  const limiter = (keyPrefix: string, points: number) =>
    new RateLimiterDrizzle({
      storeClient: database.db,
      schema: rateLimits,
      keyPrefix,
      points,
      duration: 60,
      clearExpiredByTimeout: false,
    });
  const connectorContext: ConnectorContext = {
    network: config.network,
    pool: config.pool,
    filesDir: config.filesDir,
  };
  return {
    config,
    database,
    db: database.db,
    vault,
    connectorContext,
    limiters: {
      login: limiter("login", config.rateLimits.loginPerMinute),
      connectionTest: limiter("test", config.rateLimits.connectionTestsPerMinute),
    },
    demo: options.demo,
    startedAt: Date.now(),
  };
}

export type Running = { deps: AppDeps; server: Deno.HttpServer; close(): Promise<void> };

/** Starts everything for `config`; resolves once the server listens. */
export async function start(config: Config): Promise<Running> {
  const logger = log("start");
  if (!config.databaseUrl) await Deno.mkdir(config.dataDir, { recursive: true });
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.pgliteDir,
  });
  const { vault, generatedFile } = await openVault(database.db, {
    masterKey: config.masterKey,
    previousKeys: config.previousKeys,
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
  });
  if (generatedFile) {
    logger.warn(
      "No ENCRYPTION_MASTER_KEY set: generated a key file. Back it up with the data " +
        "directory; without it stored secrets cannot be decrypted.",
      { file: generatedFile },
    );
  }
  let demo: DemoDatabase | undefined;
  let demoSettings: DemoSettings | undefined;
  if (config.demo.url) {
    demoSettings = demoSettingsFromUrl(config.demo.url);
  } else if (config.demo.enabled) {
    demo = await startDemoDatabase({
      dataDir: config.demo.dataDir,
      port: config.demo.port,
    });
    demoSettings = demo.settings;
    logger.info("Demo database listening", { address: `127.0.0.1:${demoSettings.port}` });
  }
  if (config.admin && await userCount(database.db) === 0) {
    const admin = await createUser(database.db, { ...config.admin, role: "ADMIN" });
    if (admin) logger.info("Created the first administrator", { user: admin.email });
  }
  await Deno.mkdir(config.filesDir, { recursive: true });

  const deps = createDeps({ config, database, vault, demo: demoSettings });
  // Runs and jobs a stopped process left behind are settled before anything new starts.
  await recoverInterruptedWork(database);
  const engine: SyncEngine | null = config.jobs ? startSyncEngine(deps) : null;
  const app = createApp(deps);
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => {
      logger.info("Listening", { url: `http://${hostname}:${port}` });
    },
  }, app.fetch);
  const metricsServer = config.metricsPort === undefined ? null : serveMetrics(config);
  return {
    deps,
    server,
    async close() {
      await server.shutdown();
      await metricsServer?.shutdown();
      await engine?.stop();
      await closeAllPools();
      await demo?.close();
      await database.close();
    },
  };
}

/**
 * `/metrics` on its own port (METRICS_PORT), so a scraper can reach it without reaching the
 * app; the main port then has no `/metrics`.
 */
function serveMetrics(config: Config): Deno.HttpServer {
  return Deno.serve({
    hostname: config.host,
    port: config.metricsPort,
    onListen: ({ hostname, port }) => {
      log("start").info("Serving metrics", { url: `http://${hostname}:${port}/metrics` });
    },
  }, (request) => {
    if (new URL(request.url).pathname !== "/metrics") {
      return new Response("Not found; metrics are at /metrics\n", { status: 404 });
    }
    return request.method === "GET" || request.method === "HEAD"
      ? metricsResponse()
      : new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  });
}

if (import.meta.main) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
  await configureLogging({ level: config.logLevel });
  installProcessGuards();
  try {
    const running = await start(config);
    const stop = async () => {
      await running.close();
      Deno.exit(0);
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  } catch (error) {
    log("start").fatal("Cannot start", {
      reason: error instanceof Error ? error.message : String(error),
    });
    Deno.exit(1);
  }
}
