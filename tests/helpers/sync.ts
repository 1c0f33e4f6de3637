/**
 * Helpers for sync tests: an owner and a stored source in an app database, raw queries on
 * either backend, waiting for a condition the database will reach (a run ending), and an
 * app with a running sync engine to sync real sources through the API.
 */
import { sql } from "drizzle-orm";
import { parseConfig } from "../../config.ts";
import { type AppDatabase, openDatabase, queryRows } from "../../db/mod.ts";
import { newId } from "../../db/ids.ts";
import { dataSources, type DataSourceType } from "../../db/schema.ts";
import { createUser } from "../../db/users.ts";
import { type EngineOptions, startSyncEngine, type SyncEngine } from "../../sync/mod.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { createDeps } from "../../main.ts";
import type { AppDeps } from "../../routes/_env.ts";
import { verifyKeyring } from "../../vault/keys.ts";
import { createVault, parseKeyring } from "../../vault/mod.ts";
import { startTestApp, type TestApp } from "./app.ts";

/** A user to own sources, created directly. */
export async function seedOwner(database: AppDatabase): Promise<string> {
  const user = await createUser(database.db, {
    email: `owner-${newId()}@example.com`,
    password: "owner-password",
    role: "ADMIN",
  });
  return user!.id;
}

/** A data_sources row without secrets (enough for destination and job tests). */
export async function seedSource(
  database: AppDatabase,
  options: { ownerId: string; type?: DataSourceType; status?: "CONNECTED" | "CONFIGURING" },
): Promise<string> {
  const id = newId();
  await database.db.insert(dataSources).values({
    id,
    name: `source ${id}`,
    type: options.type ?? "CSV_FILE",
    status: options.status ?? "CONFIGURING",
    createdById: options.ownerId,
  });
  return id;
}

/** Rows of raw SQL text on the app database, whichever backend it is. */
export async function rawRows<T = Record<string, unknown>>(
  database: AppDatabase,
  text: string,
): Promise<T[]> {
  return await queryRows<T>(database.db, sql.raw(text));
}

/**
 * Waits until `check` returns a value other than undefined/false (polling the database, not
 * timing anything); fails after `timeoutMs` with `what` in the message.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false | null>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined && value !== false && value !== null) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** An async iterable of the given batches (the rows a connector would yield). */
export async function* batchesOf(
  batches: Record<string, unknown>[][],
  options: { failAfter?: number; error?: Error } = {},
): AsyncGenerator<Record<string, unknown>[]> {
  let index = 0;
  for (const batch of batches) {
    if (options.failAfter !== undefined && index === options.failAfter) {
      throw options.error ?? new Error("source broke mid-stream");
    }
    index++;
    yield batch;
  }
}

/**
 * A test app whose app database is `backend` (PostgreSQL by default: the production
 * destination, loaded with COPY), with a signed-in user and a running sync engine.
 */
export async function startSyncApp(
  options: {
    env?: Record<string, string>;
    backend?: "postgres" | "pglite";
    /** The engine's options (the defaults poll quickly and run no scheduler). */
    engine?: EngineOptions;
  } = {},
): Promise<{ t: TestApp; cookie: string; engine: SyncEngine; close(): Promise<void> }> {
  const previous = Deno.env.get("TEST_DATABASE");
  Deno.env.set("TEST_DATABASE", options.backend ?? "postgres");
  let t: TestApp;
  try {
    t = await startTestApp({ env: options.env });
  } finally {
    if (previous === undefined) Deno.env.delete("TEST_DATABASE");
    else Deno.env.set("TEST_DATABASE", previous);
  }
  await t.user("syncer@example.com", "syncer-password");
  const cookie = await t.login("syncer@example.com", "syncer-password");
  const engine = startSyncEngine(t.deps, {
    pollMs: 50,
    heartbeatMs: 100,
    tickMs: 0,
    tuning: { batchSize: 500, progressMs: 0 },
    ...options.engine,
  });
  const app = {
    t,
    cookie,
    /** Replaceable: a test may stop it and start another (a restarted instance). */
    engine,
    async close() {
      await app.engine.stop();
      await t.close();
    },
  };
  return app;
}

/** Creates a source through the API; returns its id. */
export async function createSource(
  t: TestApp,
  cookie: string,
  body: Record<string, unknown>,
): Promise<string> {
  const reply = await t.call("POST", "/api/data-sources", { cookie, json: body });
  if (reply.status !== 201) throw new Error(`create failed: ${reply.status} ${reply.text}`);
  return reply.body.id;
}

/** Starts a sync through the API and waits for its log to end; returns the log. */
export async function syncNow(
  t: TestApp,
  options: { cookie: string; sourceId: string; body?: Record<string, unknown> },
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const reply = await t.call("POST", `/api/data-sources/${options.sourceId}/sync`, {
    cookie: options.cookie,
    json: options.body ?? {},
  });
  if (reply.status !== 202) throw new Error(`sync refused: ${reply.status} ${reply.text}`);
  const logId = reply.body.syncLogId;
  return await waitFor(`sync ${logId} to end`, async () => {
    const log = await t.call("GET", `/api/data-sources/${options.sourceId}/sync-logs/${logId}`, {
      cookie: options.cookie,
    });
    return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(log.body?.status) ? log.body : undefined;
  }, 60_000);
}

/** Rows of a synced table, ordered. */
export async function syncedRows<T = Record<string, unknown>>(
  t: TestApp,
  options: { sourceId: string; table: string; columns?: string; orderBy: string },
): Promise<T[]> {
  return await rawRows<T>(
    t.deps.database,
    `select ${options.columns ?? "*"} from "${
      destinationSchema(options.sourceId)
    }"."${options.table}"
      order by ${options.orderBy}`,
  );
}

/**
 * The app's dependencies over the PostgreSQL at `url` with `masterKey`, as an app instance
 * has them (the sync tests' child processes are such instances).
 */
export async function openAppDeps(url: string, masterKey: string): Promise<AppDeps> {
  const database = await openDatabase({ url, max: 4 });
  const vault = await createVault(parseKeyring(masterKey));
  await verifyKeyring(database.db, vault);
  const dataDir = await Deno.makeTempDir({ prefix: "dafel-sync-instance-" });
  const config = parseConfig({
    DATA_DIR: dataDir,
    DATABASE_URL: url,
    ENCRYPTION_MASTER_KEY: masterKey,
    DEMO_DB: "false",
  });
  return createDeps({ config, database, vault });
}
