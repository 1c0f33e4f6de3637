/**
 * The job loop of one instance: claims due jobs (up to its concurrency), runs each with its
 * kind's handler while a heartbeat renews the lease and polls the cancel flag, records how it
 * ended, and puts back jobs whose instance died. Every instance runs one; the database
 * decides who runs what.
 */
import type { Db } from "../db/mod.ts";
import type { Job } from "../db/schema.ts";
import { log, withLogContext } from "../telemetry.ts";
import { claimJobs, finishJob, type JobStatus, releaseExpiredJobs, renewLease } from "./jobs.ts";

/** Why a running job's signal aborted. */
export type StopReason = "cancelled" | "lease_lost" | "shutdown";

/** An abort reason a handler can tell apart from a failure of its own. */
export class JobStopped extends Error {
  override name = "JobStopped";
  constructor(readonly reason: StopReason) {
    super(
      reason === "cancelled"
        ? "Cancelled"
        : reason === "lease_lost"
        ? "The job's lease ran out and another instance may have taken it"
        : "The instance is shutting down",
    );
  }
}

export type JobOutcome = {
  status: Extract<JobStatus, "succeeded" | "failed" | "cancelled">;
  error?: string | null;
  /**
   * The handler stopped because its signal aborted, before its work was done: on a
   * shutdown the job goes back to the queue (while attempts remain) for another instance.
   */
  interrupted?: boolean;
};

export type JobHandler = (
  job: Job,
  control: { signal: AbortSignal; instanceId: string },
) => Promise<JobOutcome>;

export type RunnerOptions = {
  db: Db;
  handlers: Partial<Record<string, JobHandler>>;
  /** Identifies this instance in `locked_by`. */
  instanceId?: string;
  /** Jobs run at once by this instance. */
  concurrency?: number;
  leaseMs?: number;
  /** How often the queue is looked at when nothing woke the loop. */
  pollMs?: number;
  /** How often a running job's lease is renewed and its cancel flag read. */
  heartbeatMs?: number;
  /** Called for expired jobs put back or failed (the sync marks their runs failed). */
  onExpired?: (jobs: { requeued: Job[]; failed: Job[] }) => Promise<void>;
};

export type JobRunner = {
  instanceId: string;
  /** Looks at the queue now (after something was enqueued by this instance). */
  wake(): void;
  /** Jobs this instance is running. */
  running(): string[];
  /** Aborts the job if this instance runs it (the fast path of a cancel). */
  abortLocal(jobId: string, reason: StopReason): boolean;
  /** Stops claiming, stops running jobs (requeued), waits for them (bounded). */
  stop(): Promise<void>;
};

const logger = log("jobs");

/** How long `stop` waits for running jobs to wind down. */
const STOP_WAIT_MS = 15_000;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Starts the loop; it runs until `stop()`. */
export function startJobRunner(options: RunnerOptions): JobRunner {
  const instanceId = options.instanceId ??
    `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
  const concurrency = options.concurrency ?? 2;
  const leaseMs = options.leaseMs ?? 30_000;
  const pollMs = options.pollMs ?? 1_000;
  const heartbeatMs = options.heartbeatMs ?? Math.min(1_000, Math.floor(leaseMs / 3));
  const kinds = Object.keys(options.handlers).filter((kind) => options.handlers[kind]);
  const active = new Map<
    string,
    { controller: AbortController; done: Promise<void>; heartbeat?: ReturnType<typeof setInterval> }
  >();
  let stopping = false;
  let wakeUp: (() => void) | null = null;

  async function runOne(job: Job, controller: AbortController) {
    const handler = options.handlers[job.kind]!;
    const entry = active.get(job.id);
    const heartbeat = setInterval(async () => {
      try {
        const renewed = await renewLease(options.db, { jobId: job.id, instanceId, leaseMs });
        if (renewed === null) controller.abort(new JobStopped("lease_lost"));
        else if (renewed.cancelRequested) controller.abort(new JobStopped("cancelled"));
      } catch (error) {
        // The app database is unreachable: keep going; the lease decides who owns the job.
        logger.warn("Cannot renew a job's lease", { jobId: job.id, error: describe(error) });
      }
    }, heartbeatMs);
    if (entry) entry.heartbeat = heartbeat;
    let outcome: JobOutcome;
    try {
      outcome = await withLogContext(
        { jobId: job.id, jobKind: job.kind, sourceId: job.dataSourceId ?? undefined },
        () => handler(job, { signal: controller.signal, instanceId }),
      );
    } catch (error) {
      outcome = {
        status: "failed",
        error: describe(error),
        interrupted: controller.signal.aborted,
      };
      logger.error("A job failed unexpectedly", {
        jobId: job.id,
        kind: job.kind,
        error: describe(error),
        stack: error instanceof Error ? error.stack : undefined,
      });
    } finally {
      clearInterval(heartbeat);
    }
    const reason = controller.signal.reason;
    if (reason instanceof JobStopped && reason.reason === "lease_lost") return;
    const requeue = reason instanceof JobStopped && reason.reason === "shutdown" &&
      outcome.interrupted === true && job.attempts < job.maxAttempts;
    try {
      await finishJob(options.db, {
        jobId: job.id,
        instanceId,
        status: requeue ? "queued" : outcome.status,
        error: outcome.error ?? null,
      });
    } catch (error) {
      // The lease will run out and another instance will settle the job.
      logger.error("Cannot record a job's end", { jobId: job.id, error: describe(error) });
    }
  }

  async function tick() {
    try {
      const expired = await releaseExpiredJobs(options.db);
      if ((expired.requeued.length || expired.failed.length) && options.onExpired) {
        await options.onExpired(expired);
      }
      const free = concurrency - active.size;
      if (free <= 0 || stopping) return;
      const claimed = await claimJobs(options.db, { instanceId, kinds, limit: free, leaseMs });
      for (const job of claimed) {
        const controller = new AbortController();
        const entry = { controller, done: Promise.resolve() };
        active.set(job.id, entry);
        entry.done = runOne(job, controller).finally(() => {
          active.delete(job.id);
          wakeUp?.();
        });
      }
    } catch (error) {
      logger.warn("The job loop could not reach the app database", { error: describe(error) });
    }
  }

  const loop = (async () => {
    while (!stopping) {
      await tick();
      if (stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollMs);
        function done() {
          clearTimeout(timer);
          wakeUp = null;
          resolve();
        }
        wakeUp = done;
      });
    }
  })();

  return {
    instanceId,
    wake() {
      wakeUp?.();
    },
    running() {
      return [...active.keys()];
    },
    abortLocal(jobId, reason) {
      const entry = active.get(jobId);
      if (!entry) return false;
      entry.controller.abort(new JobStopped(reason));
      return true;
    },
    async stop() {
      stopping = true;
      wakeUp?.();
      await loop;
      for (const entry of active.values()) entry.controller.abort(new JobStopped("shutdown"));
      const all = Promise.all([...active.values()].map((entry) => entry.done));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        all,
        new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
      // A handler that ignores its signal keeps running, but its lease is left to run out
      // so another instance takes the job.
      for (const entry of active.values()) clearInterval(entry.heartbeat);
    },
  };
}
