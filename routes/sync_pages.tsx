/**
 * The sync section's page routes: the panel (a fragment for htmx, a page otherwise),
 * "Sync now", the schedule form and cancel. Forms work without JavaScript (303 back to the
 * panel's page); with htmx each answers with the refreshed panel.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import type { DataSource } from "../db/schema.ts";
import { abortLocalJob } from "../sync/mod.ts";
import { listRuns, SYNC_MODES, type SyncMode } from "../sync/records.ts";
import { cancelRun } from "../sync/requests.ts";
import { findRun } from "../sync/run.ts";
import { readSyncSettings, syncSettingsInput, writeSyncSettings } from "../sync/settings.ts";
import { SyncPage, SyncPanel, type SyncPanelProps } from "../views/sync_panel.tsx";
import { audit, requesterOf } from "./_audit.ts";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { ApiError, notFound } from "./_errors.ts";
import { field, formBody, fromHtmx, pageBodyLimit } from "./_pages.ts";
import { loadSource } from "./data_sources.ts";
import { startSync } from "./sync.ts";

/** Runs shown in the history. */
const HISTORY = 20;

async function panelProps(
  deps: AppDeps,
  source: DataSource,
  extras: Pick<SyncPanelProps, "error" | "scheduleInput"> = {},
): Promise<SyncPanelProps> {
  const [runs, settings] = await Promise.all([
    listRuns(deps.db, { sourceId: source.id, limit: HISTORY }),
    readSyncSettings(deps.db, source.id),
  ]);
  return {
    sourceId: source.id,
    sourceName: source.name,
    runs,
    settings,
    totals: {
      totalRecords: source.totalRecords,
      totalSyncs: source.totalSyncs,
      failedSyncs: source.failedSyncs,
      lastSuccessfulSync: source.lastSuccessfulSync,
    },
    ...extras,
  };
}

/** The panel for htmx, the page otherwise; after a form post without htmx, back to the page. */
async function answer(
  c: Context<AppEnv>,
  deps: AppDeps,
  options: {
    sourceId: string;
    posted: boolean;
    extras?: Parameters<typeof panelProps>[2];
    status?: 200 | 400 | 409;
  },
) {
  const user = currentUser(c);
  // Reloaded: the post changed the totals or the runs.
  const source = await loadSource(deps, user, options.sourceId);
  if (options.posted && !fromHtmx(c) && !options.extras?.error) {
    return c.redirect(`/data-sources/${source.id}/sync`, 303);
  }
  const props = await panelProps(deps, source, options.extras);
  if (fromHtmx(c)) return c.html(<SyncPanel {...props} />, options.status ?? 200);
  return c.html(<SyncPage {...props} user={user} />, options.status ?? 200);
}

function modeOf(value: string | undefined): SyncMode | undefined {
  return (SYNC_MODES as readonly string[]).includes(value ?? "") ? value as SyncMode : undefined;
}

export function syncPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/data-sources/*", pageBodyLimit);

  app.get("/data-sources/:id/sync", (c) => {
    return answer(c, deps, { sourceId: c.req.param("id"), posted: false });
  });

  app.post("/data-sources/:id/sync", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const body = await formBody(c);
    try {
      await startSync(c, deps, { source, mode: modeOf(field(body, "mode")) });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
      return answer(c, deps, {
        sourceId: source.id,
        posted: true,
        extras: { error: error.message },
        status: 409,
      });
    }
    return answer(c, deps, { sourceId: source.id, posted: true });
  });

  app.post("/data-sources/:id/sync/schedule", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const body = await formBody(c);
    const scheduleInput = {
      schedule: field(body, "schedule")?.trim() ?? "",
      timezone: field(body, "timezone")?.trim() || "UTC",
      mode: field(body, "mode") ?? "full_refresh",
    };
    const parsed = syncSettingsInput.safeParse({
      schedule: scheduleInput.schedule || null,
      timezone: scheduleInput.timezone,
      mode: modeOf(scheduleInput.mode) ?? scheduleInput.mode,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return answer(c, deps, {
        sourceId: source.id,
        posted: true,
        extras: { error: `${issue.path.join(".") || "Schedule"}: ${issue.message}`, scheduleInput },
        status: 400,
      });
    }
    const saved = await writeSyncSettings(deps.db, { sourceId: source.id, input: parsed.data });
    await audit(c, deps, {
      action: "DATA_SOURCE_SYNC_SETTINGS",
      entityType: "DataSource",
      entityId: source.id,
      outcome: "success",
      details: { changed: ["schedule", "timezone", "mode"], schedule: saved.schedule },
    });
    return answer(c, deps, { sourceId: source.id, posted: true });
  });

  app.post("/data-sources/:id/sync/:logId/cancel", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const run = await findRun(deps.db, { sourceId: source.id, logId: c.req.param("logId") });
    if (!run) throw notFound("Sync run");
    const outcome = await cancelRun(deps.db, {
      log: run,
      sourceType: source.type,
      requester: requesterOf(c, deps),
      abortLocal: (jobId) => abortLocalJob(jobId),
    });
    await audit(c, deps, {
      action: "DATA_SOURCE_SYNC_CANCEL",
      entityType: "DataSource",
      entityId: source.id,
      outcome: outcome === "finished" ? "failure" : "success",
      details: { syncLogId: run.id, result: outcome },
    });
    return answer(c, deps, { sourceId: source.id, posted: true });
  });

  return app;
}
