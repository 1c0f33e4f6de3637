/**
 * One data source: overview with the response-time chart, connection test, schema browser,
 * schema changes, data preview, sync (issue 7) and the edit/delete actions.
 */
import type { Child } from "hono/jsx";
import { connectors } from "../connectors/mod.ts";
import type { SchemaDiff } from "../connectors/schema_diff.ts";
import type { Stream } from "../connectors/types.ts";
import type { SanitizedSource } from "../db/data_sources.ts";
import type { SessionUser } from "../routes/_env.ts";
import { formatCount, formatDate, formatMs, isoDate } from "./_format.ts";
import { StatusBadge, TypeIcon } from "./icons.tsx";
import { Layout, PageHead } from "./layout.tsx";
import { PreviewSection, type PreviewState } from "./preview_grid.tsx";
import { ResponseChart, type TestPoint } from "./response_chart.tsx";
import { SchemaChanges, SchemaSection, type SchemaState } from "./schema_browser.tsx";
import { type TestOutcome, TestResultPanel } from "./test_result.tsx";

/** A setting as the overview shows it: label and value (secrets only as "stored"). */
export type SettingSummary = { label: string; value: string };

export type SourceDetailProps = {
  user: SessionUser;
  source: SanitizedSource;
  settings: SettingSummary[];
  tests: TestPoint[];
  schema: SchemaState;
  schemaFilter?: string;
  changes: { from: Date; to: Date; changes: SchemaDiff } | null;
  preview: PreviewState;
  previewLimit: number;
  /** A test run by a no-JavaScript form post, shown in place. */
  test?: TestOutcome;
  labels: Record<string, string>;
  /**
   * The sync section (issue 7: "Sync now", schedule, history). Routes pass it in; the page
   * keeps its place between the preview and the settings.
   */
  sync?: Child;
};

function Fact(props: { label: string; children: Child; id?: string }) {
  return (
    <>
      <dt>{props.label}</dt>
      <dd id={props.id}>{props.children}</dd>
    </>
  );
}

/** Status facts that a test changes: swapped out of band after a test from this page. */
export function StatusFacts(props: { source: SanitizedSource; oob?: boolean }) {
  const { source } = props;
  return (
    <dl class="facts" id="status-facts" hx-swap-oob={props.oob ? "true" : undefined}>
      <Fact label="Status">
        <StatusBadge status={source.status} />
      </Fact>
      <Fact label="Last test">
        <time datetime={isoDate(source.lastConnectionTest)}>
          {formatDate(source.lastConnectionTest)}
        </time>
      </Fact>
      <Fact label="Average response">{formatMs(source.avgResponseTime)}</Fact>
      {source.connectionError && (
        <Fact label="Last error">
          <span class="error-text">{source.connectionError}</span>
        </Fact>
      )}
      <Fact label="Records synced">{formatCount(source.totalRecords)}</Fact>
      <Fact label="Last sync">
        <time datetime={isoDate(source.lastSuccessfulSync)}>
          {formatDate(source.lastSuccessfulSync)}
        </time>
      </Fact>
      <Fact label="Syncs">
        {formatCount(source.totalSyncs)}
        {source.failedSyncs > 0 && ` (${formatCount(source.failedSyncs)} failed)`}
      </Fact>
    </dl>
  );
}

/** The chart block, swapped out of band after a test so the new point shows at once. */
export function ChartBlock(props: { tests: TestPoint[]; oob?: boolean }) {
  return (
    <div id="response-chart" hx-swap-oob={props.oob ? "true" : undefined}>
      <ResponseChart tests={props.tests} />
    </div>
  );
}

export function SourceDetailPage(props: SourceDetailProps) {
  const { source } = props;
  const spec = connectors[source.type];
  const base = `/data-sources/${source.id}`;
  const streams: Stream[] = props.schema.kind === "discovered"
    ? props.schema.discovery.streams
    : [];
  return (
    <Layout title={source.name} user={props.user} active="sources">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/data-sources">Data sources</a> / {source.name}
      </nav>
      <PageHead
        title={
          <span class="with-icon">
            <TypeIcon type={source.type} size={28} />
            {source.name}
          </span>
        }
        actions={
          <>
            <a class="button" href={`${base}/edit`}>Edit</a>
            <a class="button danger" href={`${base}/delete`}>Delete</a>
          </>
        }
      >
        <p class="muted">
          {spec.label}
          {source.description && <>· {source.description}</>}
        </p>
      </PageHead>

      <div class="detail-grid">
        <section class="card" aria-labelledby="overview-title">
          <h2 id="overview-title">Overview</h2>
          <StatusFacts source={source} />
          <form
            method="post"
            action={`${base}/test`}
            class="test-form"
            hx-post={`${base}/test`}
            hx-target="#test-result"
            hx-swap="innerHTML"
            hx-push-url="false"
            hx-disabled-elt="find button"
          >
            <button type="submit" class="primary">Test connection</button>
            <span class="htmx-indicator muted" aria-hidden="true">Testing…</span>
          </form>
          <div id="test-result" class="test-result" aria-live="polite">
            {props.test && (
              <TestResultPanel
                outcome={props.test}
                labels={props.labels}
                editHref={`${base}/edit`}
              />
            )}
          </div>
        </section>
        <section class="card" aria-labelledby="chart-heading">
          <h2 id="chart-heading">Response time</h2>
          <ChartBlock tests={props.tests} />
        </section>
      </div>

      <SchemaSection sourceId={source.id} state={props.schema} filter={props.schemaFilter} />

      <section id="schema-changes" class="card" aria-labelledby="changes-title">
        <h2 id="changes-title">Schema changes</h2>
        <SchemaChanges changes={props.changes} />
      </section>

      <PreviewSection
        sourceId={source.id}
        streams={streams}
        state={props.preview}
        limit={props.previewLimit}
      />

      {/* Sync (issue 7) renders here: "Sync now", the schedule with its next run, history. */}
      <section id="sync" class="card" aria-labelledby="sync-title" hidden={!props.sync}>
        <h2 id="sync-title">Sync</h2>
        {props.sync}
      </section>

      <section class="card" aria-labelledby="settings-title">
        <div class="section-head">
          <h2 id="settings-title">Settings</h2>
          <a class="button small" href={`${base}/edit`}>Edit settings</a>
        </div>
        <dl class="facts">
          {props.settings.map((setting) => (
            <Fact label={setting.label}>
              <span class="mono">{setting.value}</span>
            </Fact>
          ))}
          <Fact label="Created">{formatDate(source.createdAt)}</Fact>
          <Fact label="Updated">{formatDate(source.updatedAt)}</Fact>
        </dl>
      </section>
    </Layout>
  );
}

/** "Are you sure?" for deleting without JavaScript (htmx asks with hx-confirm instead). */
export function DeleteSourcePage(props: { user: SessionUser; source: SanitizedSource }) {
  const { source } = props;
  return (
    <Layout title={`Delete ${source.name}`} user={props.user} active="sources">
      <section class="card narrow">
        <h1>Delete {source.name}?</h1>
        <p>
          The source, its stored secrets, its test history and its schema snapshots are removed.
          This cannot be undone.
        </p>
        <form method="post" action={`/data-sources/${source.id}/delete`} class="form-actions">
          <button type="submit" class="danger">Delete {source.name}</button>
          <a href={`/data-sources/${source.id}`}>Cancel</a>
        </form>
      </section>
    </Layout>
  );
}
