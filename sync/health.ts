/**
 * Scheduled health checks: every 30 s each CONNECTED source gets one connection test,
 * across all instances (one job per source and 30-second slot, deduplicated by the
 * database). A DISCONNECTED source (connected before, now unreachable), and one a health
 * check put in ERROR, are tried again with exponential backoff (30 s, 1 min, 2 min, ... up
 * to 30 min) until they answer; one a user's own test found broken waits for the user.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { type OperationDeps, testSource } from "../connectors/operations.ts";
import { type Db, queryRows } from "../db/mod.ts";
import { connectionTests, dataSources, jobs } from "../db/schema.ts";
import { jobValues } from "./jobs.ts";
import type { JobOutcome } from "./runner.ts";

export const HEALTH_INTERVAL_MS = 30_000;
/** The longest pause between checks of a source that keeps failing. */
export const MAX_HEALTH_BACKOFF_MS = 30 * 60_000;

/** Pause before the next check after `failures` failed health checks in a row. */
export function healthBackoffMs(failures: number, intervalMs = HEALTH_INTERVAL_MS): number {
  if (failures <= 1) return intervalMs;
  return Math.min(intervalMs * 2 ** (failures - 1), MAX_HEALTH_BACKOFF_MS);
}

/** Tests looked at to count a source's failures in a row (enough for the longest pause). */
const RECENT_TESTS = 12;

/**
 * Sources due for another try: DISCONNECTED ones, and those in ERROR that a health check
 * (not a user) put there. One query for all of them, each with its newest tests, since the
 * scheduler asks every few seconds on every instance.
 */
async function brokenSourcesDue(db: Db, now: number, intervalMs: number): Promise<string[]> {
  const rows = await queryRows<{
    id: string;
    status: "ERROR" | "DISCONNECTED";
    last_test: Date | string | null;
    success: boolean;
    trigger: string;
  }>(
    db,
    sql`select s.id, s.status, s.last_connection_test as last_test, t.success, t.trigger
      from ${dataSources} s
      cross join lateral (
        select c.success, c.trigger, c.tested_at from ${connectionTests} c
        where c.data_source_id = s.id order by c.tested_at desc limit ${RECENT_TESTS}
      ) t
      where s.status in ('ERROR', 'DISCONNECTED')
      order by s.id, t.tested_at desc`,
  );
  const bySource = Map.groupBy(rows, (row) => row.id);
  const due: string[] = [];
  for (const [id, recent] of bySource) {
    const [newest] = recent;
    if (newest.success) continue;
    if (newest.status === "ERROR" && newest.trigger !== "health") continue;
    let failures = 0;
    while (failures < recent.length && !recent[failures].success) failures++;
    const last = newest.last_test ? new Date(newest.last_test).getTime() : 0;
    if (last + healthBackoffMs(failures, intervalMs) <= now) due.push(id);
  }
  return due;
}

/**
 * Queues this slot's checks; a source with a check still queued or running gets none.
 * Every instance may call it at once: the slot's dedupe key lets one job per source in.
 */
export async function enqueueHealthChecks(
  db: Db,
  options: { now?: number; intervalMs?: number } = {},
): Promise<number> {
  const now = options.now ?? Date.now();
  const intervalMs = options.intervalMs ?? HEALTH_INTERVAL_MS;
  const connected = await db.select({ id: dataSources.id }).from(dataSources)
    .where(and(
      eq(dataSources.status, "CONNECTED"),
      sql`not exists (select 1 from ${jobs} where ${jobs.dataSourceId} = ${dataSources.id}
        and ${jobs.kind} = 'health_check' and ${jobs.status} in ('queued', 'running'))`,
    ));
  const ids = [...connected.map((row) => row.id), ...await brokenSourcesDue(db, now, intervalMs)];
  if (ids.length === 0) return 0;
  const slot = Math.floor(now / intervalMs);
  const rows = await db.insert(jobs).values(
    ids.map((id) =>
      jobValues({ kind: "health_check", dataSourceId: id, dedupeKey: `health:${id}:${slot}` })
    ),
  ).onConflictDoNothing({ target: jobs.dedupeKey }).returning({ id: jobs.id });
  return rows.length;
}

/** Handles a `health_check` job: tests the source unless it changed state meanwhile. */
export async function runHealthCheck(
  deps: OperationDeps,
  check: { job: { dataSourceId: string | null }; signal: AbortSignal },
): Promise<JobOutcome> {
  const { job, signal } = check;
  const control = { signal };
  if (!job.dataSourceId) return { status: "failed", error: "No source" };
  const [source] = await deps.db.select().from(dataSources)
    .where(and(
      eq(dataSources.id, job.dataSourceId),
      inArray(dataSources.status, ["CONNECTED", "DISCONNECTED", "ERROR"]),
    ));
  // Deleted, being edited (CONFIGURING) or tested by a user right now: nothing to check.
  if (!source) return { status: "succeeded" };
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(control.signal.reason);
    control.signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    const result = await Promise.race([testSource(deps, source, { trigger: "health" }), aborted]);
    return result.success
      ? { status: "succeeded" }
      : { status: "failed", error: result.error?.code ?? result.message };
  } catch (error) {
    return { status: "failed", error: error instanceof Error ? error.message : String(error) };
  } finally {
    control.signal.removeEventListener("abort", onAbort!);
  }
}
