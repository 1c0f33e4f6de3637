/**
 * Data-source pages: the list, a source's detail page with its test, schema, preview and
 * delete. Each handler renders the whole page, or only the fragment htmx asks for (by the
 * id of the element it will fill). The form pages (new, edit) are in source_form_pages.tsx.
 */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { connectors } from "../connectors/mod.ts";
import {
  discoverSource,
  findStream,
  latestDiscovery,
  previewSource,
  recentTests,
  releaseSource,
  schemaChanges,
} from "../connectors/operations.ts";
import { rowToConfig } from "../connectors/settings.ts";
import {
  type ConnectorError,
  type Discovery,
  type Result,
  UnsupportedOperationError,
} from "../connectors/types.ts";
import { sanitize } from "../db/data_sources.ts";
import {
  DATA_SOURCE_STATUSES,
  DATA_SOURCE_TYPES,
  type DataSource,
  dataSources,
} from "../db/schema.ts";
import {
  DEFAULT_PAGE_SIZE,
  type SourceFilters,
  SourceListPage,
  SourceResults,
} from "../views/data_sources.tsx";
import {
  PREVIEW_LIMITS,
  PreviewGrid,
  PreviewSection,
  type PreviewState,
} from "../views/preview_grid.tsx";
import {
  SchemaSection,
  type SchemaState,
  SchemaTables,
  streamLabel,
} from "../views/schema_browser.tsx";
import { settingsFields } from "../views/settings_fields.ts";
import {
  ChartBlock,
  DeleteSourcePage,
  type SettingSummary,
  SourceDetailPage,
  StatusFacts,
} from "../views/source_detail.tsx";
import { fieldLabels, type TestOutcome, TestResultPanel } from "../views/test_result.tsx";
import { stopSourceRuns } from "../sync/mod.ts";
import { SyncPanelSlot } from "../views/sync_panel.tsx";
import { audit, requesterOf } from "./_audit.ts";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError } from "./_errors.ts";
import { pageBodyLimit, seeOther, wantsFragment } from "./_pages.ts";
import { listSources, loadSource } from "./data_sources.ts";
import { runSourceTest, takeTestToken } from "./source_connections.ts";

/** Blank query values mean "no filter"; a value that is not valid is ignored, not an error. */
const listPageQuery = z.object({
  search: z.string().trim().max(200).optional().catch(undefined),
  type: z.enum(DATA_SOURCE_TYPES).optional().catch(undefined),
  status: z.enum(DATA_SOURCE_STATUSES).optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(1_000_000).catch(1).default(1),
  limit: z.coerce.number().int().min(1).max(1000).catch(DEFAULT_PAGE_SIZE).default(
    DEFAULT_PAGE_SIZE,
  ),
});

const previewPageQuery = z.object({
  table: z.string().min(1).max(1100).optional().catch(undefined),
  limit: z.coerce.number().int().refine((n) => (PREVIEW_LIMITS as readonly number[]).includes(n))
    .catch(50).default(50),
});

function withoutBlanks(query: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value.trim() !== ""));
}

/** Non-secret settings as label and value; secrets only say whether one is stored. */
function settingsSummary(source: DataSource): SettingSummary[] {
  const spec = connectors[source.type];
  const config = rowToConfig(spec, source);
  const stored = new Set(sanitize(source).secretsSet);
  const summary: SettingSummary[] = [];
  for (const field of settingsFields(spec)) {
    if (field.secret) {
      if (field.kind === "group") continue;
      summary.push({ label: field.label, value: stored.has(field.key) ? "stored" : "not set" });
      continue;
    }
    const value = config[field.key];
    if (value === undefined || value === null) continue;
    if (field.kind === "headers") {
      const headers = Array.isArray(value) ? value as { name?: string; secret?: boolean }[] : [];
      if (headers.length === 0) continue;
      summary.push({
        label: field.label,
        value: headers.map((header) => `${header.name}${header.secret ? " (secret)" : ""}`)
          .join(", "),
      });
    } else if (field.kind === "group") {
      const parts = Object.entries(value as Record<string, unknown>)
        .filter(([, inner]) => inner !== undefined && inner !== null && inner !== "")
        .map(([key, inner]) => `${key} ${String(inner)}`);
      if (parts.length) summary.push({ label: field.label, value: parts.join(", ") });
    } else if (value !== "") {
      summary.push({
        label: field.label,
        value: field.kind === "checkbox" ? (value ? "yes" : "no") : String(value),
      });
    }
  }
  return summary;
}

function schemaState(latest: { discovery: Discovery; discoveredAt: Date } | null): SchemaState {
  return latest ? { kind: "discovered", ...latest } : { kind: "none" };
}

/** The stream a preview asks for: its label (`public.orders`) or bare name. */
/** The preview section emptied (out of band) after a discovery changed its table choices. */
function FreshPreview(props: { sourceId: string; discovery: Discovery }) {
  return (
    <PreviewSection
      sourceId={props.sourceId}
      streams={props.discovery.streams}
      state={{ kind: "none" }}
      limit={50}
      oob
    />
  );
}

function streamFor(discovery: Discovery | undefined, label: string) {
  if (!discovery) return undefined;
  return discovery.streams.find((stream) => streamLabel(stream) === label) ??
    findStream(discovery, { name: label });
}

async function previewState(
  deps: AppDeps,
  source: DataSource,
  table: string | undefined,
  limit: number,
): Promise<PreviewState> {
  if (!table) return { kind: "none" };
  let discovery = (await latestDiscovery(deps.db, source.id))?.discovery;
  let stream = streamFor(discovery, table);
  if (!stream) {
    // The table may be newer than the last discovery: look once more before saying no.
    const fresh = await orUnsupported(() => discoverSource(deps, source));
    if (!fresh.ok) return { kind: "failed", table, error: fresh.error };
    discovery = fresh.value;
    stream = streamFor(discovery, table);
  }
  if (!stream) return { kind: "unknown-table", table };
  const result = await orUnsupported(() => previewSource(deps, source, stream, limit));
  return result.ok
    ? { kind: "rows", table: streamLabel(stream), preview: result.value }
    : { kind: "failed", table, error: result.error };
}

/** A type whose connector cannot do this yet answers like a failure, not a 500. */
async function orUnsupported<T>(run: () => Promise<Result<T>>): Promise<Result<T>> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof UnsupportedOperationError)) throw error;
    return {
      ok: false,
      error: { code: "UNKNOWN", message: error.message, hint: "This type cannot be reached yet" },
    };
  }
}

type DetailExtras = {
  schemaFilter?: string;
  preview?: PreviewState;
  previewLimit?: number;
  test?: TestOutcome;
};

async function renderDetail(
  deps: AppDeps,
  user: SessionUser,
  source: DataSource,
  extras: DetailExtras = {},
) {
  const [tests, latest, changes] = await Promise.all([
    recentTests(deps.db, source.id),
    latestDiscovery(deps.db, source.id),
    schemaChanges(deps.db, source.id),
  ]);
  return (
    <SourceDetailPage
      user={user}
      source={sanitize(source)}
      settings={settingsSummary(source)}
      tests={tests}
      schema={schemaState(latest)}
      schemaFilter={extras.schemaFilter}
      changes={changes}
      preview={extras.preview ?? { kind: "none" }}
      previewLimit={extras.previewLimit ?? 50}
      test={extras.test}
      labels={fieldLabels(settingsFields(connectors[source.type]))}
      sync={<SyncPanelSlot sourceId={source.id} />}
    />
  );
}

/** A connection test from a page, under the same 10-a-minute limit as the API. */
async function testFromPage(
  c: Parameters<typeof runSourceTest>[0],
  deps: AppDeps,
  user: SessionUser,
  source: DataSource,
): Promise<{ outcome: TestOutcome; status: 200 | 429 }> {
  try {
    await takeTestToken(deps, user);
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      for (const [name, value] of Object.entries(error.headers ?? {})) c.header(name, value);
      const seconds = Number(error.headers?.["Retry-After"] ?? 60);
      return { outcome: { kind: "rate-limited", retryAfterSeconds: seconds }, status: 429 };
    }
    throw error;
  }
  try {
    const result = await runSourceTest(c, deps, source);
    return { outcome: { kind: "result", result }, status: 200 };
  } catch (error) {
    if (!(error instanceof UnsupportedOperationError)) throw error;
    return { outcome: { kind: "unavailable", message: error.message }, status: 200 };
  }
}

export function sourcePages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/data-sources/*", pageBodyLimit);

  app.get("/data-sources", async (c) => {
    const user = currentUser(c);
    const query = listPageQuery.parse(withoutBlanks(c.req.query()));
    const filters: SourceFilters = { ...query };
    const { rows, total } = await listSources(deps, user, {
      search: query.search,
      type: query.type,
      status: query.status,
      limit: query.limit,
      offset: (query.page - 1) * query.limit,
    });
    const filtered = Boolean(query.search || query.type || query.status || query.page > 1);
    if (wantsFragment(c, "source-results")) {
      return c.html(<SourceResults sources={rows} total={total} filters={filters} hasAny />);
    }
    return c.html(
      <SourceListPage
        user={user}
        sources={rows}
        total={total}
        filters={filters}
        hasAny={filtered || total > 0}
      />,
    );
  });

  app.get("/data-sources/:id", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const filter = c.req.query("filter")?.trim() || undefined;
    return c.html(await renderDetail(deps, user, source, { schemaFilter: filter }));
  });

  app.post("/data-sources/:id/test", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const discoveredBefore = await latestDiscovery(deps.db, source.id) !== null;
    const { outcome, status } = await testFromPage(c, deps, user, source);
    const labels = fieldLabels(settingsFields(connectors[source.type]));
    if (wantsFragment(c, "test-result")) {
      // The panel, plus what the test just changed: status facts, chart, and the schema
      // when this test discovered it for the first time.
      const [fresh, tests, latest] = await Promise.all([
        loadSource(deps, user, source.id),
        recentTests(deps.db, source.id),
        discoveredBefore ? null : latestDiscovery(deps.db, source.id),
      ]);
      return c.html(
        <>
          <TestResultPanel
            outcome={outcome}
            labels={labels}
            editHref={`/data-sources/${source.id}/edit`}
          />
          <StatusFacts source={sanitize(fresh)} oob />
          <ChartBlock tests={tests} oob />
          {latest && <SchemaSection sourceId={source.id} state={schemaState(latest)} oob />}
          {latest && <FreshPreview sourceId={source.id} discovery={latest.discovery} />}
        </>,
        status,
      );
    }
    const fresh = await loadSource(deps, user, source.id);
    return c.html(await renderDetail(deps, user, fresh, { test: outcome }), status);
  });

  app.get("/data-sources/:id/schema", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const filter = c.req.query("filter")?.trim() || undefined;
    if (!wantsFragment(c, "schema-tables")) {
      return c.redirect(
        `/data-sources/${source.id}${filter ? `?filter=${encodeURIComponent(filter)}` : ""}#schema`,
      );
    }
    const latest = await latestDiscovery(deps.db, source.id);
    if (!latest) return c.html(<p class="muted" id="schema-tables">Not discovered yet.</p>);
    return c.html(
      <SchemaTables sourceId={source.id} discovery={latest.discovery} filter={filter} />,
    );
  });

  app.post("/data-sources/:id/discover", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const result = await orUnsupported(() => discoverSource(deps, source));
    let error: ConnectorError | undefined;
    if (!result.ok) error = result.error;
    if (wantsFragment(c, "schema")) {
      const latest = await latestDiscovery(deps.db, source.id);
      return c.html(
        <>
          <SchemaSection sourceId={source.id} state={schemaState(latest)} error={error} />
          {latest && <FreshPreview sourceId={source.id} discovery={latest.discovery} />}
        </>,
      );
    }
    return seeOther(c, `/data-sources/${source.id}#schema`);
  });

  app.get("/data-sources/:id/preview", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    const query = previewPageQuery.parse(withoutBlanks(c.req.query()));
    const preview = await previewState(deps, source, query.table, query.limit);
    if (wantsFragment(c, "preview-grid")) return c.html(<PreviewGrid state={preview} />);
    return c.html(
      await renderDetail(deps, user, source, { preview, previewLimit: query.limit }),
    );
  });

  app.get("/data-sources/:id/delete", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    return c.html(<DeleteSourcePage user={user} source={sanitize(source)} />);
  });

  app.post("/data-sources/:id/delete", async (c) => {
    const user = currentUser(c);
    const source = await loadSource(deps, user, c.req.param("id"));
    // The same steps as DELETE /api/data-sources/:id.
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
    return seeOther(c, "/data-sources");
  });

  return app;
}
