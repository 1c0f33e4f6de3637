/**
 * What the app does with a stored source through its connector: test it (recording the
 * outcome on the source), discover its schema (keeping a snapshot), preview a stream.
 * Shared by the API, the pages, the scheduled health checks and the sync engine.
 */
import { encodeHexLowerCase } from "@oslojs/encoding";
import { sha256 } from "@oslojs/crypto/sha2";
import { and, desc, eq, notInArray } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import {
  connectionTests,
  type DataSource,
  dataSources,
  type DataSourceType,
  schemaSnapshots,
} from "../db/schema.ts";
import { metrics } from "../telemetry.ts";
import type { Vault } from "../vault/mod.ts";
import { openSecrets } from "../vault/secrets.ts";
import { breakerState, forgetBreaker, throughBreaker } from "./_breaker.ts";
import { connectors } from "./mod.ts";
import { rowToConfig, type Settings } from "./settings.ts";
import type {
  Connector,
  ConnectorContext,
  ConnectorError,
  Discovery,
  Preview,
  Result,
  SourceSettings,
  Stream,
  TestResult,
} from "./types.ts";
import { UnsupportedOperationError } from "./types.ts";
import { diffSchemas, type SchemaDiff } from "./schema_diff.ts";

export type OperationDeps = { db: Db; vault: Vault; connectorContext: ConnectorContext };

/** How many recent tests are kept per source for the response-time chart. */
const KEPT_TESTS = 100;
/** Weight of the newest response time in the moving average. */
const AVERAGE_WEIGHT = 0.2;

/** The connector for a type, with its operations. */
export function connectorFor(type: DataSourceType): Connector {
  const connector = connectors[type] as Partial<Connector>;
  if (typeof connector.test !== "function") {
    throw new UnsupportedOperationError(`${type} sources cannot be reached yet`);
  }
  return connector as Connector;
}

/** A stable digest of settings: changes when anything that affects a connection changes. */
export function fingerprintOf(settings: Settings): string {
  const text = JSON.stringify(
    settings,
    (_key, value) =>
      value && typeof value === "object" && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
        : value,
  );
  return encodeHexLowerCase(sha256(new TextEncoder().encode(text))).slice(0, 32);
}

/** Settings of a stored source for its connector, secrets decrypted just now. */
export async function settingsOf(
  deps: OperationDeps,
  source: DataSource,
): Promise<SourceSettings<Record<string, unknown>, Record<string, unknown>>> {
  const spec = connectors[source.type];
  const config = spec.configSchema.parse(rowToConfig(spec, source));
  const secrets = spec.secretsSchema.parse(await openSecrets(deps.vault, source));
  return { id: source.id, fingerprint: fingerprintOf({ config, secrets }), config, secrets };
}

function circuitOpenResult(source: DataSource): TestResult {
  return {
    success: false,
    message: "Not tried: the source failed repeatedly and is resting",
    responseTime: 0,
    stages: [],
    error: {
      code: "UNKNOWN",
      message: `Circuit open: ${source.name} failed several times in a row; the next attempt ` +
        "is allowed after a short, growing pause",
      hint: source.connectionError
        ? `Last error: ${source.connectionError}. Fix the settings (which resets the pause) or wait`
        : "Wait a moment and test again",
    },
  };
}

/** Runs a connection test with no stored source (the wizard's test before saving, the demo). */
export async function testSettings(
  deps: OperationDeps,
  type: DataSourceType,
  settings: Settings,
): Promise<TestResult> {
  const connector = connectorFor(type);
  const id = `unsaved-${newId()}`;
  const started = performance.now();
  try {
    const result = await connector.test(
      { id, fingerprint: fingerprintOf(settings), ...settings },
      deps.connectorContext,
    );
    recordTestMetrics(type, result, performance.now() - started);
    return result;
  } finally {
    await connector.close?.(id);
  }
}

function recordTestMetrics(type: DataSourceType, result: TestResult, ms: number) {
  const outcome = result.success ? "success" : result.error?.code ?? "UNKNOWN";
  metrics.connectionTotal.inc({ type, outcome });
  metrics.connectionDuration.observe(
    { type, outcome: result.success ? "success" : "failure" },
    ms / 1000,
  );
}

/** Failures that say the source could not be reached, rather than that a setting is wrong. */
const UNREACHABLE: ReadonlySet<string> = new Set([
  "HOST_NOT_FOUND",
  "CONNECTION_REFUSED",
  "TIMEOUT",
]);

/**
 * A source's status after a test: CONNECTED when it succeeded; DISCONNECTED when a source
 * that was connected can no longer be reached (its settings are not the suspect, and the
 * health checks keep trying it); ERROR for every other failure. A test the circuit breaker
 * did not let through (`tried: false`) says nothing new: a DISCONNECTED source stays so.
 */
export function statusAfterTest(
  result: TestResult,
  options: { before: DataSource["status"]; tried: boolean },
): "CONNECTED" | "DISCONNECTED" | "ERROR" {
  const { before, tried } = options;
  if (result.success) return "CONNECTED";
  if (!tried) return before === "DISCONNECTED" ? "DISCONNECTED" : "ERROR";
  const wasConnected = before === "CONNECTED" || before === "DISCONNECTED";
  return wasConnected && result.error && UNREACHABLE.has(result.error.code)
    ? "DISCONNECTED"
    : "ERROR";
}

/**
 * Tests a stored source and records the outcome: status TESTING while it runs, then
 * CONNECTED, DISCONNECTED or ERROR (statusAfterTest), lastConnectionTest, connectionError, the moving average of response
 * times, and a row in the recent-tests history.
 */
export async function testSource(
  deps: OperationDeps,
  source: DataSource,
  options: { trigger: "manual" | "health" } = { trigger: "manual" },
): Promise<TestResult> {
  const connector = connectorFor(source.type);
  await deps.db.update(dataSources).set({ status: "TESTING" }).where(eq(dataSources.id, source.id));
  const started = performance.now();
  let result: TestResult;
  let tried = true;
  try {
    const settings = await settingsOf(deps, source);
    const outcome = await throughBreaker(
      source.id,
      () => connector.test(settings, deps.connectorContext),
      (value) => !value.success,
    );
    tried = !outcome.open;
    result = outcome.open ? circuitOpenResult(source) : outcome.value;
  } catch (error) {
    // A bug of ours or an unreadable secret: still a recorded, classified failure.
    result = {
      success: false,
      message: "Connection test failed",
      responseTime: Math.round(performance.now() - started),
      stages: [],
      error: {
        code: "UNKNOWN",
        message: error instanceof Error ? error.message : String(error),
        hint: "See the server log for details",
      },
    };
  }
  recordTestMetrics(source.type, result, performance.now() - started);
  const now = new Date();
  const average = result.success
    ? source.avgResponseTime === null
      ? result.responseTime
      : source.avgResponseTime * (1 - AVERAGE_WEIGHT) + result.responseTime * AVERAGE_WEIGHT
    : source.avgResponseTime;
  await deps.db.update(dataSources).set({
    status: statusAfterTest(result, { before: source.status, tried }),
    lastConnectionTest: now,
    connectionError: result.success ? null : result.error?.message ?? result.message,
    avgResponseTime: average,
  }).where(eq(dataSources.id, source.id));
  await deps.db.insert(connectionTests).values({
    id: newId(),
    dataSourceId: source.id,
    testedAt: now,
    success: result.success,
    responseTime: result.responseTime,
    errorCode: result.error?.code ?? null,
    trigger: options.trigger,
  });
  await trimTestHistory(deps.db, source.id);
  return result;
}

async function trimTestHistory(db: Db, sourceId: string) {
  const keep = db.select({ id: connectionTests.id }).from(connectionTests)
    .where(eq(connectionTests.dataSourceId, sourceId))
    .orderBy(desc(connectionTests.testedAt)).limit(KEPT_TESTS);
  await db.delete(connectionTests).where(
    and(eq(connectionTests.dataSourceId, sourceId), notInArray(connectionTests.id, keep)),
  );
}

/** Recent tests of a source, oldest first (for the chart). */
export async function recentTests(db: Db, sourceId: string, limit = 50) {
  const rows = await db.select().from(connectionTests)
    .where(eq(connectionTests.dataSourceId, sourceId))
    .orderBy(desc(connectionTests.testedAt)).limit(limit);
  return rows.reverse();
}

function breakerOpenError(): ConnectorError {
  return {
    code: "UNKNOWN",
    message: "Not tried: the source failed several times in a row and is resting",
    hint: "Test the connection, or wait a moment and try again",
  };
}

/** Discovers a source's schema and keeps a snapshot when it changed. */
export async function discoverSource(
  deps: OperationDeps,
  source: DataSource,
): Promise<Result<Discovery>> {
  const connector = connectorFor(source.type);
  const settings = await settingsOf(deps, source);
  const started = performance.now();
  const outcome = await throughBreaker(
    source.id,
    () => connector.discover(settings, deps.connectorContext),
    (value) => !value.ok && value.error.code !== "INVALID_CONFIG",
  );
  metrics.queryDuration.observe(
    { type: source.type, operation: "discover" },
    (performance.now() - started) / 1000,
  );
  if (outcome.open) return { ok: false, error: breakerOpenError() };
  if (outcome.value.ok) await keepSnapshot(deps.db, source.id, outcome.value.value);
  return outcome.value;
}

/**
 * The hash of a schema's shape. Row counts are left out: rows come and go all the time,
 * and a snapshot per count change would push the last real change out of the diff.
 */
function schemaHash(discovery: Discovery): string {
  const shape = discovery.streams.map(({ rowCount: _rows, rowCountExact: _exact, ...rest }) =>
    rest
  );
  return encodeHexLowerCase(sha256(new TextEncoder().encode(JSON.stringify(shape))));
}

/**
 * Stores a snapshot; an identical schema only refreshes the newest one (its time and its
 * row counts).
 */
async function keepSnapshot(db: Db, sourceId: string, discovery: Discovery) {
  const hash = schemaHash(discovery);
  const [latest] = await db.select({ id: schemaSnapshots.id, hash: schemaSnapshots.hash })
    .from(schemaSnapshots).where(eq(schemaSnapshots.dataSourceId, sourceId))
    .orderBy(desc(schemaSnapshots.discoveredAt)).limit(1);
  if (latest?.hash === hash) {
    await db.update(schemaSnapshots).set({ discoveredAt: new Date(), schema: discovery })
      .where(eq(schemaSnapshots.id, latest.id));
    return;
  }
  await db.insert(schemaSnapshots).values({
    id: newId(),
    dataSourceId: sourceId,
    hash,
    schema: discovery,
  });
  // Two snapshots are all a diff needs; keep a few more for history.
  const keep = db.select({ id: schemaSnapshots.id }).from(schemaSnapshots)
    .where(eq(schemaSnapshots.dataSourceId, sourceId))
    .orderBy(desc(schemaSnapshots.discoveredAt)).limit(10);
  await db.delete(schemaSnapshots).where(
    and(eq(schemaSnapshots.dataSourceId, sourceId), notInArray(schemaSnapshots.id, keep)),
  );
}

/** The newest discovered schema, without asking the source. */
export async function latestDiscovery(
  db: Db,
  sourceId: string,
): Promise<{ discovery: Discovery; discoveredAt: Date } | null> {
  const [latest] = await db.select().from(schemaSnapshots)
    .where(eq(schemaSnapshots.dataSourceId, sourceId))
    .orderBy(desc(schemaSnapshots.discoveredAt)).limit(1);
  return latest
    ? { discovery: latest.schema as Discovery, discoveredAt: latest.discoveredAt }
    : null;
}

/** What changed between the two newest snapshots (null when there are fewer than two). */
export async function schemaChanges(
  db: Db,
  sourceId: string,
): Promise<{ from: Date; to: Date; changes: SchemaDiff } | null> {
  const rows = await db.select().from(schemaSnapshots)
    .where(eq(schemaSnapshots.dataSourceId, sourceId))
    .orderBy(desc(schemaSnapshots.discoveredAt)).limit(2);
  if (rows.length < 2) return null;
  const [newer, older] = rows;
  return {
    from: older.discoveredAt,
    to: newer.discoveredAt,
    changes: diffSchemas(older.schema as Discovery, newer.schema as Discovery),
  };
}

/** Finds a stream that discovery returned; anything else is not previewable. */
export function findStream(
  discovery: Discovery,
  ref: { name: string; schema?: string },
): Stream | undefined {
  const matches = discovery.streams.filter((stream) =>
    stream.name === ref.name && (ref.schema === undefined || stream.schema === ref.schema)
  );
  // Without a schema the name must be unambiguous.
  return matches.length === 1 ? matches[0] : undefined;
}

/** Previews rows of a stream discovery returned. */
export async function previewSource(
  deps: OperationDeps,
  source: DataSource,
  stream: Stream,
  limit: number,
): Promise<Result<Preview>> {
  const connector = connectorFor(source.type);
  const settings = await settingsOf(deps, source);
  const started = performance.now();
  const outcome = await throughBreaker(
    source.id,
    () =>
      connector.preview(
        settings,
        { stream: { name: stream.name, schema: stream.schema }, limit },
        deps.connectorContext,
      ),
    (value) => !value.ok && value.error.code !== "INVALID_CONFIG",
  );
  metrics.queryDuration.observe(
    { type: source.type, operation: "preview" },
    (performance.now() - started) / 1000,
  );
  if (outcome.open) return { ok: false, error: breakerOpenError() };
  return outcome.value;
}

/** Releases what is kept for a source (pool, breaker) after it changed or was deleted. */
export async function releaseSource(type: DataSourceType, sourceId: string): Promise<void> {
  forgetBreaker(sourceId);
  const connector = connectors[type] as Partial<Connector>;
  await connector.close?.(sourceId);
}

export { breakerState };
