/** The data-source API: list, create, read, update, delete (the seed's routes and shapes). */
import { and, count, desc, eq, ilike, or, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { connectors } from "../connectors/mod.ts";
import { releaseSource } from "../connectors/operations.ts";
import {
  configToColumns,
  resolveSettings,
  rowToConfig,
  type Settings,
  settingsDiffer,
  TOP_LEVEL_FIELDS,
} from "../connectors/settings.ts";
import { findSourceFor, sanitize } from "../db/data_sources.ts";
import { newId } from "../db/ids.ts";
import {
  DATA_SOURCE_STATUSES,
  DATA_SOURCE_TYPES,
  type DataSource,
  dataSources,
} from "../db/schema.ts";
import { stopSourceRuns } from "../sync/mod.ts";
import { openSecrets, sealSecrets } from "../vault/secrets.ts";
import { audit, requesterOf } from "./_audit.ts";
import { currentUser, requireUser } from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError, badRequest, forbidden, notFound } from "./_errors.ts";
import { validate } from "./_validate.ts";

const name = z.string().trim().min(1, "Name is required").max(200);
const description = z.string().trim().max(2000).nullish();
const configuration = z.record(z.string(), z.unknown());
/** Top-level connection fields are checked by the type's own schema, not here. */
const topLevel = Object.fromEntries(
  TOP_LEVEL_FIELDS.map((field) => [field, z.unknown().optional()]),
);

export const createSourceSchema = z.strictObject({
  name,
  description,
  type: z.enum(DATA_SOURCE_TYPES),
  configuration: configuration.optional(),
  ...topLevel,
});

/** Fields a client may echo back from a GET; accepted and ignored. */
const readOnly = Object.fromEntries(
  [
    "id",
    "status",
    "secretsSet",
    "lastConnectionTest",
    "lastSuccessfulSync",
    "connectionError",
    "totalRecords",
    "totalSyncs",
    "failedSyncs",
    "avgResponseTime",
    "createdById",
    "createdAt",
    "updatedAt",
  ].map((field) => [field, z.unknown().optional()]),
);

export const updateSourceSchema = z.strictObject({
  name: name.optional(),
  description,
  type: z.enum(DATA_SOURCE_TYPES).optional(),
  configuration: configuration.nullish(),
  ...topLevel,
  ...readOnly,
});

export const listQuerySchema = z.object({
  search: z.string().trim().max(200).optional(),
  type: z.enum(DATA_SOURCE_TYPES).optional(),
  status: z.enum(DATA_SOURCE_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
});

export type CreateSourceInput = z.infer<typeof createSourceSchema>;
export type UpdateSourceInput = z.infer<typeof updateSourceSchema>;
export type ListQuery = z.infer<typeof listQuerySchema>;

function topLevelOf(input: Record<string, unknown>) {
  return Object.fromEntries(TOP_LEVEL_FIELDS.map((field) => [field, input[field]]));
}

function settingsError(issues: { path: string; message: string }[]): ApiError {
  const first = issues[0];
  return badRequest(`Invalid settings: ${first.path}: ${first.message}`, issues);
}

/** Escapes LIKE wildcards so a search for `50%` finds "50%", not everything. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

/** Sources visible to the user, filtered; newest first. */
export async function listSources(deps: AppDeps, user: SessionUser, query: ListQuery) {
  const conditions: SQL[] = [];
  if (user.role !== "ADMIN") conditions.push(eq(dataSources.createdById, user.id));
  if (query.type) conditions.push(eq(dataSources.type, query.type));
  if (query.status) conditions.push(eq(dataSources.status, query.status));
  if (query.search) {
    const pattern = likePattern(query.search);
    conditions.push(or(ilike(dataSources.name, pattern), ilike(dataSources.description, pattern))!);
  }
  const where = conditions.length ? and(...conditions) : undefined;
  const rowsQuery = deps.db.select().from(dataSources).where(where)
    .orderBy(desc(dataSources.createdAt), desc(dataSources.id)).offset(query.offset).$dynamic();
  const [rows, [{ total }]] = await Promise.all([
    query.limit ? rowsQuery.limit(query.limit) : rowsQuery,
    deps.db.select({ total: count() }).from(dataSources).where(where),
  ]);
  return { rows: rows.map(sanitize), total: Number(total) };
}

/** Loads a source for the user: 404 when missing, 403 when it is someone else's. */
export async function loadSource(
  deps: AppDeps,
  user: SessionUser,
  id: string,
): Promise<DataSource> {
  const access = await findSourceFor(deps.db, user, id);
  if (!access.ok) throw access.reason === "forbidden" ? forbidden() : notFound("Data source");
  return access.source;
}

/** The stored settings of a source, secrets decrypted. */
export async function storedSettings(deps: AppDeps, source: DataSource): Promise<Settings> {
  return {
    config: rowToConfig(connectors[source.type], source),
    secrets: await openSecrets(deps.vault, source),
  };
}

/** Validates and stores a new source; secrets encrypted, bound to the new id. */
export async function createSource(
  deps: AppDeps,
  user: SessionUser,
  input: CreateSourceInput,
): Promise<DataSource> {
  const resolved = resolveSettings(connectors[input.type], {
    configuration: input.configuration,
    topLevel: topLevelOf(input),
  });
  if (!resolved.ok) throw settingsError(resolved.issues);
  const id = newId();
  const sealed = await sealSecrets(deps.vault, id, resolved.settings.secrets);
  const [row] = await deps.db.insert(dataSources).values({
    id,
    name: input.name,
    description: input.description ?? null,
    type: input.type,
    status: "CONFIGURING",
    ...configToColumns(resolved.settings.config),
    ...sealed,
    createdById: user.id,
  }).returning();
  return row;
}

/**
 * Applies changes to a source. A secret left out keeps its value, `null` clears it. A change
 * to connection settings sends the source back to CONFIGURING until it is tested again.
 */
export async function updateSource(
  deps: AppDeps,
  source: DataSource,
  input: UpdateSourceInput,
): Promise<{ row: DataSource; changed: string[] }> {
  if (input.type && input.type !== source.type) {
    throw badRequest("The type of a data source cannot change: create a new one", [
      { path: "type", message: `Stays ${source.type}` },
    ]);
  }
  const previous = await storedSettings(deps, source);
  const resolved = resolveSettings(connectors[source.type], {
    configuration: input.configuration ?? undefined,
    topLevel: topLevelOf(input),
  }, previous);
  if (!resolved.ok) throw settingsError(resolved.issues);
  const changed: string[] = [];
  if (input.name !== undefined && input.name !== source.name) changed.push("name");
  if (input.description !== undefined && (input.description ?? null) !== source.description) {
    changed.push("description");
  }
  const connectionChanged = settingsDiffer(previous, resolved.settings);
  if (connectionChanged) changed.push("settings");
  const sealed = await sealSecrets(deps.vault, source.id, resolved.settings.secrets);
  const [row] = await deps.db.update(dataSources).set({
    name: input.name ?? source.name,
    description: input.description === undefined ? source.description : input.description,
    ...configToColumns(resolved.settings.config),
    ...sealed,
    ...(connectionChanged ? { status: "CONFIGURING" as const, connectionError: null } : {}),
    updatedAt: new Date(),
  }).where(eq(dataSources.id, source.id)).returning();
  return { row, changed };
}

export function dataSourcesApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireUser);

  app.get("/", validate("query", listQuerySchema), async (c) => {
    const { rows, total } = await listSources(deps, currentUser(c), c.req.valid("query"));
    c.header("X-Total-Count", String(total));
    return c.json(rows);
  });

  app.post("/", validate("json", createSourceSchema), async (c) => {
    const input = c.req.valid("json");
    const row = await createSource(deps, currentUser(c), input);
    await audit(c, deps, {
      action: "DATA_SOURCE_CREATE",
      entityType: "DataSource",
      entityId: row.id,
      outcome: "success",
      details: { name: row.name, type: row.type },
    });
    const { id, type, status, createdAt } = row;
    return c.json({ id, name: row.name, type, status, createdAt }, 201);
  });

  app.get("/:id", async (c) => {
    return c.json(sanitize(await loadSource(deps, currentUser(c), c.req.param("id"))));
  });

  app.put("/:id", validate("json", updateSourceSchema), async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const { row, changed } = await updateSource(deps, source, c.req.valid("json"));
    if (changed.includes("settings")) await releaseSource(source.type, source.id);
    await audit(c, deps, {
      action: "DATA_SOURCE_UPDATE",
      entityType: "DataSource",
      entityId: row.id,
      outcome: "success",
      details: { changed },
    });
    return c.json(sanitize(row));
  });

  app.delete("/:id", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    await stopSourceRuns(deps.db, { ...source, requester: requesterOf(c, deps) });
    await deps.db.delete(dataSources).where(eq(dataSources.id, source.id));
    await releaseSource(source.type, source.id);
    await audit(c, deps, {
      action: "DATA_SOURCE_DELETE",
      entityType: "DataSource",
      entityId: source.id,
      outcome: "success",
      details: { name: source.name, type: source.type },
    });
    return c.body(null, 204);
  });

  return app;
}
