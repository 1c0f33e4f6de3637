/**
 * Opens the app database: embedded PGlite under DATA_DIR when no DATABASE_URL is set,
 * otherwise PostgreSQL through postgres.js. Both run the same Drizzle schema and the same
 * generated migrations, applied at open.
 */
import { PGlite } from "@electric-sql/pglite";
import { type SQL, sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "./schema.ts";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type AppDatabase = {
  db: Db;
  kind: "pglite" | "postgres";
  /** The postgres.js client when kind is "postgres" (COPY and cursors need it). */
  client?: postgres.Sql;
  /** The PGlite instance when kind is "pglite". */
  pglite?: PGlite;
  close(): Promise<void>;
};

const migrationsFolder = new URL("./migrations", import.meta.url).pathname;

export type OpenOptions = {
  /** PostgreSQL URL; without it the database is an embedded PGlite. */
  url?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  dataDir?: string;
  /** Connections in the postgres.js pool. */
  max?: number;
};

/** Opens the database and applies pending migrations. */
export async function openDatabase(options: OpenOptions): Promise<AppDatabase> {
  if (options.url) {
    const client = postgres(options.url, {
      max: options.max ?? 10,
      connect_timeout: 10,
      // The driver's default waits up to 20 s before reconnecting after failed connections:
      // while the database is down a request would hang that long before its 503, and
      // after it is back requests would wait it out. Retry soon; requests pace themselves.
      backoff: (retries: number) => Math.min(0.05 * retries, 1),
      idle_timeout: 60,
      onnotice: () => {},
      connection: { application_name: "dafel-data-sources" },
    });
    const db = drizzlePostgres({ client, schema }) as unknown as Db;
    try {
      await migratePostgres(db as never, { migrationsFolder });
    } catch (error) {
      await client.end({ timeout: 1 });
      throw error;
    }
    return {
      db,
      kind: "postgres",
      client,
      close: () => client.end({ timeout: 5 }),
    };
  }
  const pglite = await PGlite.create(options.dataDir ?? "memory://");
  const db = drizzlePglite({ client: pglite, schema }) as unknown as Db;
  await migratePglite(db as never, { migrationsFolder });
  return {
    db,
    kind: "pglite",
    pglite,
    close: () => pglite.close(),
  };
}

/** Rows of a raw query, whichever driver runs it (postgres.js returns an array, PGlite `{rows}`). */
export async function queryRows<T = Record<string, unknown>>(db: Db, query: SQL): Promise<T[]> {
  const result = await db.execute(query) as unknown;
  if (Array.isArray(result)) return result as T[];
  return (result as { rows: T[] }).rows;
}

/** Round trip to the database; throws when it cannot be reached. */
export async function pingDatabase(db: Db): Promise<number> {
  const started = performance.now();
  await db.execute(sql`select 1`);
  return performance.now() - started;
}

const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

/** True when an error means the app database cannot be reached (an HTTP 503, not a bug). */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && unreachableCodes.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export { schema };
