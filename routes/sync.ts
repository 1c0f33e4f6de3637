/**
 * The sync API: start a run (202 with its log id; the job runs on whichever instance claims
 * it), list a source's runs newest first, read one, cancel one, and read or change the
 * source's sync settings (schedule, streams, mode, cursor columns).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import { latestDiscovery } from "../connectors/operations.ts";
import type { DataSource } from "../db/schema.ts";
import { abortLocalJob, wakeLocalRunners } from "../sync/mod.ts";
import { listRuns, SYNC_MODES } from "../sync/records.ts";
import { cancelRun, requestSync } from "../sync/requests.ts";
import { findRun, selectStreams } from "../sync/run.ts";
import { readSyncSettings, syncSettingsInput, writeSyncSettings } from "../sync/settings.ts";
import { audit, requesterOf } from "./_audit.ts";
import { currentUser, requireUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { ApiError, badRequest, issuesToDetails, notFound } from "./_errors.ts";
import { validate } from "./_validate.ts";
import { loadSource } from "./data_sources.ts";

/** `POST /api/data-sources/:id/sync`: the body is optional. */
export const syncRequestSchema = z.strictObject({
  streams: z.array(z.string().trim().min(1).max(1024)).min(1).max(10_000).optional().meta({
    description: "Stream keys (schema.table, or a name that is unique); default: the " +
      "settings' selection, else every discovered stream",
  }),
  mode: z.enum(SYNC_MODES).optional().meta({
    description: "full_refresh (default from the settings) or incremental",
  }),
});

export const syncLogsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/** A JSON body that may be absent (an empty POST means "defaults"). */
async function optionalJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(400, "INVALID_JSON", "Request body is not valid JSON");
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const details = issuesToDetails(parsed.error.issues);
    throw badRequest(`Invalid body: ${details[0].path || "body"}: ${details[0].message}`, details);
  }
  return parsed.data;
}

/** Refuses stream names the newest discovery does not have (400 naming each). */
export async function checkStreams(
  deps: AppDeps,
  request: { source: DataSource; streams: string[] | null | undefined },
): Promise<void> {
  const { source, streams } = request;
  if (!streams?.length) return;
  const latest = await latestDiscovery(deps.db, source.id);
  // Without a discovery yet the run discovers first and reports unknown streams itself.
  if (!latest) return;
  const { missing } = selectStreams(latest.discovery, streams);
  if (missing.length) {
    throw badRequest(
      `Unknown stream: ${missing[0]}`,
      missing.map((name) => ({
        path: `streams.${streams.indexOf(name)}`,
        message: `No stream "${name}" in the source's schema`,
      })),
    );
  }
}

/** Queues a run for a user's request; 409 while another run of the source is active. */
export async function startSync(
  c: Context<AppEnv>,
  deps: AppDeps,
  options: { source: DataSource; streams?: string[]; mode?: (typeof SYNC_MODES)[number] },
): Promise<string> {
  const { source } = options;
  await checkStreams(deps, { source, streams: options.streams });
  const settings = await readSyncSettings(deps.db, source.id);
  const mode = options.mode ?? settings.mode;
  const result = await requestSync(deps.db, {
    sourceId: source.id,
    streams: options.streams,
    mode,
    trigger: "manual",
    requester: requesterOf(c, deps),
  });
  if (!result.ok) {
    await audit(c, deps, {
      action: "DATA_SOURCE_SYNC_REQUEST",
      entityType: "DataSource",
      entityId: source.id,
      outcome: "failure",
      details: { reason: "a sync is already queued or running" },
    });
    const active = result.reason === "busy" && result.activeLogId ? ` (${result.activeLogId})` : "";
    throw new ApiError(
      409,
      "SYNC_IN_PROGRESS",
      `A sync of this source is already queued or running${active}`,
    );
  }
  await audit(c, deps, {
    action: "DATA_SOURCE_SYNC_REQUEST",
    entityType: "DataSource",
    entityId: source.id,
    outcome: "success",
    details: { syncLogId: result.syncLogId, mode, streams: options.streams ?? null },
  });
  wakeLocalRunners();
  return result.syncLogId;
}

export function syncApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireUser);

  app.post("/:id/sync", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const input = await optionalJson(c, syncRequestSchema);
    const syncLogId = await startSync(c, deps, { source, ...input });
    return c.json({ syncLogId }, 202);
  });

  app.get("/:id/sync-logs", validate("query", syncLogsQuerySchema), async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    return c.json(
      await listRuns(deps.db, { sourceId: source.id, limit: c.req.valid("query").limit }),
    );
  });

  app.get("/:id/sync-logs/:logId", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const run = await findRun(deps.db, { sourceId: source.id, logId: c.req.param("logId") });
    if (!run) throw notFound("Sync log");
    return c.json(run);
  });

  app.post("/:id/sync-logs/:logId/cancel", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const run = await findRun(deps.db, { sourceId: source.id, logId: c.req.param("logId") });
    if (!run) throw notFound("Sync log");
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
    if (outcome === "finished") {
      throw new ApiError(409, "SYNC_FINISHED", `The sync already ended (${run.status})`);
    }
    return c.json({ syncLogId: run.id, status: outcome }, 202);
  });

  app.get("/:id/sync-settings", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    return c.json(await readSyncSettings(deps.db, source.id));
  });

  app.put("/:id/sync-settings", validate("json", syncSettingsInput), async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const input = c.req.valid("json");
    await checkStreams(deps, { source, streams: input.streams });
    const saved = await writeSyncSettings(deps.db, { sourceId: source.id, input });
    await audit(c, deps, {
      action: "DATA_SOURCE_SYNC_SETTINGS",
      entityType: "DataSource",
      entityId: source.id,
      outcome: "success",
      details: { changed: Object.keys(input), schedule: saved.schedule, mode: saved.mode },
    });
    return c.json(saved);
  });

  return app;
}
