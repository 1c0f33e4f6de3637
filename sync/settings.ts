/**
 * A source's sync settings: the cron schedule (croner) and its next run, the streams to sync
 * (all discovered ones by default), the mode and chosen cursor columns.
 */
import { Cron } from "croner";
import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../db/mod.ts";
import { type SyncSettings, syncSettings } from "../db/schema.ts";
import { SYNC_MODES, type SyncMode } from "./records.ts";

/** Runs closer together than this are refused: a sync is not a busy loop. */
export const MIN_SCHEDULE_GAP_MS = 60_000;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The schedule's next run after `after`, or null when it never runs again. */
export function nextRunOf(
  schedule: string,
  options: { timezone: string; after?: Date },
): Date | null {
  const cron = new Cron(schedule, { timezone: options.timezone, paused: true, mode: "5-part" });
  return cron.nextRun(options.after ?? new Date());
}

/** Why a cron expression cannot be used, or null when it can. */
export function scheduleProblem(schedule: string, timezone: string): string | null {
  let runs: Date[];
  try {
    const cron = new Cron(schedule, { timezone, paused: true, mode: "5-part" });
    runs = cron.nextRuns(2);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `Not a cron expression (minute hour day month weekday, or @daily): ${reason}`;
  }
  if (runs.length === 0) return "The schedule never runs";
  if (runs.length === 2 && runs[1].getTime() - runs[0].getTime() < MIN_SCHEDULE_GAP_MS) {
    return "Runs at most once a minute";
  }
  return null;
}

const streamName = z.string().trim().min(1).max(1024);

/** What `PUT /api/data-sources/:id/sync-settings` accepts; fields left out keep their value. */
export const syncSettingsInput = z.strictObject({
  schedule: z.string().trim().max(200).nullable().optional().meta({
    description: "Cron expression (minute hour day month weekday) or a nickname such as " +
      "@daily; null syncs by hand only",
  }),
  timezone: z.string().trim().min(1).max(100).refine(isTimeZone, "Unknown time zone").optional(),
  mode: z.enum(SYNC_MODES).optional(),
  streams: z.array(streamName).max(10_000).nullable().optional().meta({
    description: "Stream keys (schema.table or name); null syncs every discovered stream",
  }),
  cursorColumns: z.record(streamName, z.string().min(1).max(1024)).optional(),
}).superRefine((input, ctx) => {
  if (input.schedule) {
    const problem = scheduleProblem(input.schedule, input.timezone ?? "UTC");
    if (problem) ctx.addIssue({ code: "custom", path: ["schedule"], message: problem });
  }
});

export type SyncSettingsInput = z.infer<typeof syncSettingsInput>;

export type SyncSettingsView = {
  schedule: string | null;
  timezone: string;
  nextRunAt: Date | null;
  mode: SyncMode;
  streams: string[] | null;
  cursorColumns: Record<string, string>;
};

function view(row: SyncSettings | undefined): SyncSettingsView {
  return {
    schedule: row?.schedule ?? null,
    timezone: row?.timezone ?? "UTC",
    nextRunAt: row?.nextRunAt ?? null,
    mode: (row?.mode ?? "full_refresh") as SyncMode,
    streams: row?.streams ?? null,
    cursorColumns: row?.cursorColumns ?? {},
  };
}

/** A source's settings (the defaults when it has none stored). */
export async function readSyncSettings(db: Db, sourceId: string): Promise<SyncSettingsView> {
  const [row] = await db.select().from(syncSettings).where(eq(syncSettings.dataSourceId, sourceId));
  return view(row);
}

/** Stores changes; a new schedule or time zone computes the next run from now. */
export async function writeSyncSettings(
  db: Db,
  change: { sourceId: string; input: SyncSettingsInput },
): Promise<SyncSettingsView> {
  const { sourceId, input } = change;
  const current = await readSyncSettings(db, sourceId);
  const next = {
    schedule: input.schedule === undefined ? current.schedule : input.schedule || null,
    timezone: input.timezone ?? current.timezone,
    mode: input.mode ?? current.mode,
    streams: input.streams === undefined ? current.streams : input.streams,
    cursorColumns: input.cursorColumns ?? current.cursorColumns,
  };
  const timingChanged = next.schedule !== current.schedule || next.timezone !== current.timezone;
  const nextRunAt = timingChanged
    ? next.schedule ? nextRunOf(next.schedule, { timezone: next.timezone }) : null
    : current.nextRunAt;
  const values = { ...next, nextRunAt, updatedAt: new Date() };
  const [row] = await db.insert(syncSettings).values({ dataSourceId: sourceId, ...values })
    .onConflictDoUpdate({ target: syncSettings.dataSourceId, set: values }).returning();
  return view(row);
}

/**
 * Sources whose scheduled run is due, each moved to its following run in the same
 * transaction (rows another instance is handling are skipped), handed to `enqueue`.
 */
export async function takeDueSchedules(
  db: Db,
  enqueue: (tx: Db, due: { sourceId: string; dueAt: Date }) => Promise<void>,
  limit = 50,
): Promise<number> {
  return await db.transaction(async (tx) => {
    const due = await tx.select().from(syncSettings)
      .where(sql`${syncSettings.schedule} is not null and ${syncSettings.nextRunAt} <= now()`)
      .orderBy(syncSettings.nextRunAt).limit(limit)
      .for("update", { skipLocked: true });
    for (const row of due) {
      const dueAt = row.nextRunAt!;
      let following: Date | null = null;
      try {
        following = nextRunOf(row.schedule!, { timezone: row.timezone });
      } catch {
        following = null;
      }
      await tx.update(syncSettings).set({ nextRunAt: following })
        .where(eq(syncSettings.dataSourceId, row.dataSourceId));
      await enqueue(tx as unknown as Db, { sourceId: row.dataSourceId, dueAt });
    }
    return due.length;
  });
}
