/**
 * Talking to a stored source: connection test, schema discovery and its changes, preview,
 * and the demo database test. A remote failure is an answer (`success: false` with a
 * classified error), not an HTTP error.
 */
import { Hono } from "hono";
import { RateLimiterRes } from "rate-limiter-flexible";
import { z } from "zod";
import {
  discoverSource,
  findStream,
  latestDiscovery,
  previewSource,
  schemaChanges,
  testSettings,
  testSource,
} from "../connectors/operations.ts";
import type { Discovery, TestResult } from "../connectors/types.ts";
import type { DataSource } from "../db/schema.ts";
import { audit } from "./_audit.ts";
import { currentUser, requireUser } from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError, notFound, tooManyRequests } from "./_errors.ts";
import { validate } from "./_validate.ts";
import { loadSource } from "./data_sources.ts";

export const previewQuerySchema = z.object({
  table: z.string().min(1, "table is required").max(512),
  schema: z.string().min(1).max(512).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

/** Connection tests: 10 a minute per user, counted in the database (shared by instances). */
export async function takeTestToken(deps: AppDeps, user: SessionUser): Promise<void> {
  try {
    await deps.limiters.connectionTest.consume(user.id);
  } catch (error) {
    if (error instanceof RateLimiterRes) throw tooManyRequests(error.msBeforeNext / 1000);
    throw error;
  }
}

/**
 * The seed's table summary: name, column count, rows. A name carries its schema only where
 * the source spans several (a MySQL source is one database: its name would be noise).
 */
export function schemaSummary(discovery: Discovery | undefined) {
  const streams = discovery?.streams ?? [];
  const severalSchemas = new Set(streams.map((stream) => stream.schema)).size > 1;
  return streams.map((stream) => ({
    tableName: severalSchemas && stream.schema && stream.schema !== "public"
      ? `${stream.schema}.${stream.name}`
      : stream.name,
    columns: stream.columns.length,
    rowCount: stream.rowCount,
  }));
}

/** Discovery in the seed's response shape. */
export function schemaBody(discovery: Discovery) {
  const tables = discovery.streams.map((stream) => ({
    name: stream.name,
    ...(stream.schema === undefined ? {} : { schema: stream.schema }),
    kind: stream.kind,
    columns: stream.columns,
    rowCount: stream.rowCount,
    rowCountExact: stream.rowCountExact,
    constraints: stream.constraints,
  }));
  return {
    tables,
    totalTables: tables.length,
    totalRows: tables.reduce((sum, table) => sum + (table.rowCount ?? 0), 0),
  };
}

/**
 * Tests a stored source and writes its audit row. The schema summary comes from the
 * newest discovery (run once if the source has none), so a test stays one round trip.
 */
export async function runSourceTest(
  c: Parameters<typeof audit>[0],
  deps: AppDeps,
  source: DataSource,
): Promise<TestResult & { schema: ReturnType<typeof schemaSummary> }> {
  const result = await testSource(deps, source);
  let discovery = (await latestDiscovery(deps.db, source.id))?.discovery;
  if (result.success && !discovery) {
    const discovered = await discoverSource(deps, source);
    if (discovered.ok) discovery = discovered.value;
  }
  await audit(c, deps, {
    action: "DATA_SOURCE_CONNECTION_TEST",
    entityType: "DataSource",
    entityId: source.id,
    outcome: result.success ? "success" : "failure",
    details: {
      responseTime: result.responseTime,
      ...(result.error ? { errorCode: result.error.code } : {}),
    },
  });
  return { ...result, schema: schemaSummary(discovery) };
}

export function sourceConnectionsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireUser);

  app.post("/:id/test", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    await takeTestToken(deps, user);
    return c.json(await runSourceTest(c, deps, source));
  });

  app.get("/:id/schema", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const result = await discoverSource(deps, source);
    if (!result.ok) return c.json({ success: false, error: result.error });
    return c.json({ success: true, schema: schemaBody(result.value) });
  });

  app.get("/:id/schema/changes", async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const changes = await schemaChanges(deps.db, source.id);
    if (!changes) {
      return c.json({ success: true, from: null, to: null, changes: null });
    }
    return c.json({ success: true, ...changes });
  });

  app.get("/:id/preview", validate("query", previewQuerySchema), async (c) => {
    const source = await loadSource(deps, currentUser(c), c.req.param("id"));
    const query = c.req.valid("query");
    let discovery = (await latestDiscovery(deps.db, source.id))?.discovery;
    let stream = discovery && findStream(discovery, { name: query.table, schema: query.schema });
    if (!stream) {
      // The table may be new since the last discovery: look again before saying no.
      const fresh = await discoverSource(deps, source);
      if (!fresh.ok) return c.json({ success: false, error: fresh.error });
      discovery = fresh.value;
      stream = findStream(discovery, { name: query.table, schema: query.schema });
    }
    if (!stream) throw notFound(`Table "${query.schema ? `${query.schema}.` : ""}${query.table}"`);
    const result = await previewSource(deps, source, stream, query.limit);
    if (!result.ok) return c.json({ success: false, error: result.error });
    return c.json({ success: true, ...result.value });
  });

  return app;
}

/** `POST /api/test-demo`: the embedded (or DEMO_DATABASE_URL) demo database. */
export function testDemoApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireUser);
  app.post("/", async (c) => {
    const user = currentUser(c);
    if (!deps.demo) {
      throw new ApiError(409, "DEMO_DISABLED", "The demo database is not running on this server");
    }
    await takeTestToken(deps, user);
    const { password, ...config } = deps.demo;
    const result = await testSettings(deps, "POSTGRESQL", { config, secrets: { password } });
    await audit(c, deps, {
      action: "DATA_SOURCE_CONNECTION_TEST",
      entityType: "DataSource",
      entityId: null,
      outcome: result.success ? "success" : "failure",
      details: {
        type: "POSTGRESQL",
        demo: true,
        responseTime: result.responseTime,
        ...(result.error ? { errorCode: result.error.code } : {}),
      },
    });
    return c.json({
      success: result.success,
      message: result.success ? "Demo database connection successful" : result.message,
      connectionTime: result.responseTime,
      serverInfo: result.serverInfo ?? null,
      stages: result.stages,
      ...(result.error ? { error: result.error } : {}),
    });
  });
  return app;
}
