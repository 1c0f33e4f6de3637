/**
 * The jobs table as a queue shared by every instance. A job is claimed with
 * `FOR UPDATE SKIP LOCKED` (two instances never take the same row) and held by a lease the
 * running instance renews; when an instance dies its lease runs out and any instance puts
 * the job back in the queue (or fails it after its last attempt).
 */
import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import { type Job, jobs } from "../db/schema.ts";

export const JOB_KINDS = ["sync", "health_check"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Why a job stopped running before it finished. */
export const INTERRUPTED = "Interrupted: the instance running it stopped before it finished";

export type NewJob = {
  /** One of JOB_KINDS in the app; the queue itself takes any kind a runner handles. */
  kind: string;
  dataSourceId?: string | null;
  payload?: Record<string, unknown>;
  /** Enqueuing a key that exists does nothing (see `enqueueJob`). */
  dedupeKey?: string;
  runAt?: Date;
  maxAttempts?: number;
};

function lease(ms: number) {
  return sql`now() + ${`${Math.round(ms)} milliseconds`}::interval`;
}

/** The job's row values. */
export function jobValues(job: NewJob) {
  return {
    id: newId(),
    kind: job.kind,
    dataSourceId: job.dataSourceId ?? null,
    payload: job.payload ?? {},
    dedupeKey: job.dedupeKey ?? null,
    runAt: job.runAt ?? new Date(),
    maxAttempts: job.maxAttempts ?? 1,
  };
}

/** Adds a job; with a dedupe key that exists already, adds nothing and returns null. */
export async function enqueueJob(db: Db, job: NewJob): Promise<Job | null> {
  const [row] = await db.insert(jobs).values(jobValues(job))
    .onConflictDoNothing({ target: jobs.dedupeKey }).returning();
  return row ?? null;
}

/**
 * Claims up to `limit` due jobs of `kinds` for `instanceId`, oldest first, each with a
 * lease of `leaseMs`. Rows another instance is claiming at the same moment are skipped.
 */
export async function claimJobs(
  db: Db,
  options: { instanceId: string; kinds: string[]; limit: number; leaseMs: number },
): Promise<Job[]> {
  if (options.limit <= 0 || options.kinds.length === 0) return [];
  const due = db.select({ id: jobs.id }).from(jobs)
    .where(and(
      eq(jobs.status, "queued"),
      lte(jobs.runAt, sql`now()`),
      inArray(jobs.kind, options.kinds),
    ))
    .orderBy(asc(jobs.runAt), asc(jobs.createdAt))
    .limit(options.limit)
    .for("update", { skipLocked: true });
  return await db.update(jobs).set({
    status: "running",
    lockedBy: options.instanceId,
    lockedUntil: lease(options.leaseMs),
    attempts: sql`${jobs.attempts} + 1`,
    startedAt: sql`now()`,
  }).where(inArray(jobs.id, due)).returning();
}

/**
 * Extends the lease of a job this instance holds. Returns whether a cancel was asked for,
 * or null when the job is no longer ours (its lease ran out and another took it, or it was
 * deleted with its source).
 */
export async function renewLease(
  db: Db,
  options: { jobId: string; instanceId: string; leaseMs: number },
): Promise<{ cancelRequested: boolean } | null> {
  const [row] = await db.update(jobs).set({ lockedUntil: lease(options.leaseMs) })
    .where(and(
      eq(jobs.id, options.jobId),
      eq(jobs.lockedBy, options.instanceId),
      eq(jobs.status, "running"),
    ))
    .returning({ cancelRequested: jobs.cancelRequested });
  return row ?? null;
}

/** Records how a job this instance holds ended, unless it was ended already. */
export async function finishJob(
  db: Db,
  options: {
    jobId: string;
    instanceId: string;
    status: Exclude<JobStatus, "running">;
    error?: string | null;
  },
): Promise<void> {
  const requeue = options.status === "queued";
  await db.update(jobs).set({
    status: options.status,
    // Kept after the end: which instance ran the job. A requeued job belongs to no one.
    ...(requeue ? { lockedBy: null } : {}),
    lockedUntil: null,
    lastError: options.error ?? null,
    finishedAt: requeue ? null : sql`now()`,
    ...(requeue ? { runAt: sql`now()` } : {}),
  }).where(and(
    eq(jobs.id, options.jobId),
    eq(jobs.lockedBy, options.instanceId),
    // A handler may have ended its job itself (with its run, in one transaction).
    eq(jobs.status, "running"),
  ));
}

/**
 * Jobs whose lease ran out (their instance died or hung): back to the queue while attempts
 * remain, failed otherwise. Safe to run on every instance at once.
 */
export async function releaseExpiredJobs(db: Db): Promise<{ requeued: Job[]; failed: Job[] }> {
  const rows = await db.update(jobs).set({
    status: sql`case when ${jobs.attempts} < ${jobs.maxAttempts} then 'queued' else 'failed' end`,
    lockedBy: null,
    lockedUntil: null,
    runAt: sql`now()`,
    lastError: INTERRUPTED,
    finishedAt: sql`case when ${jobs.attempts} < ${jobs.maxAttempts} then null else now() end`,
  }).where(and(eq(jobs.status, "running"), lte(jobs.lockedUntil, sql`now()`))).returning();
  return {
    requeued: rows.filter((row) => row.status === "queued"),
    failed: rows.filter((row) => row.status === "failed"),
  };
}

/**
 * A cancel request: a queued job is cancelled at once (returns "cancelled"); a running one
 * gets the flag its instance polls (returns "requested"); null when it already ended.
 */
export async function requestCancel(
  db: Db,
  jobId: string,
): Promise<"cancelled" | "requested" | null> {
  const [queued] = await db.update(jobs).set({
    status: "cancelled",
    cancelRequested: true,
    finishedAt: sql`now()`,
  }).where(and(eq(jobs.id, jobId), eq(jobs.status, "queued"))).returning({ id: jobs.id });
  if (queued) return "cancelled";
  const [running] = await db.update(jobs).set({ cancelRequested: true })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, "running"))).returning({ id: jobs.id });
  return running ? "requested" : null;
}

/** Forgets finished jobs older than `olderThanMs` (their sync logs stay). */
export async function deleteFinishedJobs(db: Db, olderThanMs: number): Promise<number> {
  const rows = await db.delete(jobs).where(and(
    inArray(jobs.status, ["succeeded", "failed", "cancelled"]),
    lte(jobs.finishedAt, sql`now() - ${`${Math.round(olderThanMs)} milliseconds`}::interval`),
  )).returning({ id: jobs.id });
  return rows.length;
}

/** Ids of jobs running with a live lease, on any instance. */
export async function liveJobIds(db: Db): Promise<Set<string>> {
  const rows = await db.select({ id: jobs.id }).from(jobs)
    .where(and(eq(jobs.status, "running"), sql`${jobs.lockedUntil} > now()`));
  return new Set(rows.map((row) => row.id));
}

/** True when a database error is a unique violation of `constraint`. */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const { code, constraint: name, constraint_name: pgName } = current as Record<string, unknown>;
    if (code === "23505" && (name === constraint || pgName === constraint)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
