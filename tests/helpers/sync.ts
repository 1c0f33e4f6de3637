/**
 * Helpers for sync tests: an owner and a stored source in an app database, raw queries on
 * either backend, and waiting for a condition the database will reach (a run ending).
 */
import { sql } from "drizzle-orm";
import { type AppDatabase, queryRows } from "../../db/mod.ts";
import { newId } from "../../db/ids.ts";
import { dataSources, type DataSourceType } from "../../db/schema.ts";
import { createUser } from "../../db/users.ts";

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
