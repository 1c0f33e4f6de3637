/**
 * The sync section of a source: "Sync now", the schedule with its next run, and the history
 * of runs. One component serves the detail page (loaded into it by htmx), its own page
 * without JavaScript, and the refreshes htmx asks for: while a run is queued or running the
 * panel polls itself every two seconds, and stops once nothing is active.
 */
import type { SyncLog } from "../db/schema.ts";
import type { SessionUser } from "../routes/_env.ts";
import type { SyncSettingsView } from "../sync/settings.ts";
import { formatCount, formatDate, formatMs, isoDate } from "./_format.ts";
import { FormError, Layout, PageHead } from "./layout.tsx";

export type SyncPanelProps = {
  sourceId: string;
  sourceName: string;
  runs: SyncLog[];
  settings: SyncSettingsView;
  /** A problem with the last form post, shown next to the form. */
  error?: string | null;
  /** What the schedule form sent, shown again when it was refused. */
  scheduleInput?: { schedule: string; timezone: string; mode: string };
  /** Facts from the source row. */
  totals: {
    totalRecords: number;
    totalSyncs: number;
    failedSyncs: number;
    lastSuccessfulSync: Date | null;
  };
};

const STATUS_CLASS: Record<string, string> = {
  QUEUED: "status-configuring",
  RUNNING: "status-testing",
  SUCCEEDED: "status-connected",
  FAILED: "status-error",
  CANCELLED: "status-disconnected",
};

const STATUS_TEXT: Record<string, string> = {
  QUEUED: "Queued",
  RUNNING: "Running",
  SUCCEEDED: "Succeeded",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};

const MODE_TEXT: Record<string, string> = {
  full_refresh: "Full refresh",
  incremental: "Incremental",
};

export function RunStatus(props: { status: string }) {
  return (
    <span class={`badge ${STATUS_CLASS[props.status] ?? ""}`} title={props.status}>
      {STATUS_TEXT[props.status] ?? props.status}
    </span>
  );
}

function isActive(run: SyncLog): boolean {
  return run.status === "QUEUED" || run.status === "RUNNING";
}

function runDuration(run: SyncLog): string {
  if (run.duration !== null) return formatMs(run.duration);
  if (run.status === "RUNNING") return `${formatMs(Date.now() - run.startedAt.getTime())} so far`;
  return "—";
}

function RunRow(props: { run: SyncLog; sourceId: string }) {
  const { run } = props;
  const streams = run.streamResults.length
    ? run.streamResults
    : Object.entries(run.streams).map(([stream, records]) => ({
      stream,
      table: "",
      mode: run.mode,
      records,
      status: run.status,
      error: undefined,
      note: undefined,
    }));
  return (
    <tr>
      <td>
        <RunStatus status={run.status} />
        {run.attempt > 1 && <span class="muted small">attempt {run.attempt}</span>}
      </td>
      <td>
        <time datetime={isoDate(run.startedAt)}>{formatDate(run.startedAt)}</time>
      </td>
      <td>{run.trigger === "schedule" ? "Schedule" : "By hand"}</td>
      <td>{MODE_TEXT[run.mode] ?? run.mode}</td>
      <td class="num">{formatCount(run.recordsSync)}</td>
      <td class="num">{runDuration(run)}</td>
      <td>
        {run.errorMessage && <span class="field-error">{run.errorMessage}</span>}
        {streams.length > 0 && (
          <details>
            <summary>{streams.length} stream(s)</summary>
            <ul class="small">
              {streams.map((stream) => (
                <li>
                  <span class="mono">{stream.stream}</span>
                  {stream.table && (
                    <>
                      → <span class="mono">{stream.table}</span>
                    </>
                  )}: {formatCount(
                    stream.records,
                  )} ({STATUS_TEXT[stream.status] ?? stream.status}
                  {stream.mode !== run.mode && `, ${MODE_TEXT[stream.mode] ?? stream.mode}`})
                  {stream.error && <span class="field-error">{stream.error}</span>}
                  {stream.note && <span class="muted">{stream.note}</span>}
                </li>
              ))}
            </ul>
          </details>
        )}
        {isActive(run) && (
          <form
            method="post"
            action={`/data-sources/${props.sourceId}/sync/${run.id}/cancel`}
            hx-post={`/data-sources/${props.sourceId}/sync/${run.id}/cancel`}
            hx-target="#sync-panel"
            hx-swap="outerHTML"
            class="inline-form"
          >
            <button type="submit" class="danger small" hx-disabled-elt="this">Cancel</button>
          </form>
        )}
      </td>
    </tr>
  );
}

/** The panel; it refreshes itself while a run is active. */
export function SyncPanel(props: SyncPanelProps) {
  const base = `/data-sources/${props.sourceId}/sync`;
  const active = props.runs.find(isActive);
  const { settings, totals } = props;
  const input = props.scheduleInput ?? {
    schedule: settings.schedule ?? "",
    timezone: settings.timezone,
    mode: settings.mode,
  };
  return (
    <div
      id="sync-panel"
      class="sync-panel"
      aria-live="polite"
      hx-get={active ? base : undefined}
      hx-trigger={active ? "every 2s" : undefined}
      hx-swap={active ? "outerHTML" : undefined}
      hx-target={active ? "this" : undefined}
    >
      <FormError message={props.error} />
      <dl class="facts">
        <dt>Last successful sync</dt>
        <dd>
          <time datetime={isoDate(totals.lastSuccessfulSync)}>
            {formatDate(totals.lastSuccessfulSync)}
          </time>
        </dd>
        <dt>Records in the app database</dt>
        <dd>{formatCount(totals.totalRecords)}</dd>
        <dt>Runs</dt>
        <dd>
          {formatCount(totals.totalSyncs)}
          {totals.failedSyncs > 0 && ` (${formatCount(totals.failedSyncs)} failed)`}
        </dd>
        <dt>Schedule</dt>
        <dd>
          {settings.schedule
            ? (
              <>
                <span class="mono">{settings.schedule}</span> ({settings.timezone}) · next run{" "}
                <time datetime={isoDate(settings.nextRunAt)}>{formatDate(settings.nextRunAt)}</time>
              </>
            )
            : "By hand only"}
        </dd>
      </dl>

      <form
        method="post"
        action={base}
        hx-post={base}
        hx-target="#sync-panel"
        hx-swap="outerHTML"
        class="inline-form"
      >
        <label class="field">
          <span class="label-text">Mode</span>
          <select name="mode">
            <option value="full_refresh" selected={settings.mode === "full_refresh"}>
              Full refresh
            </option>
            <option value="incremental" selected={settings.mode === "incremental"}>
              Incremental
            </option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={Boolean(active)} hx-disabled-elt="this">
          Sync now
        </button>
        {active && (
          <span class="muted">
            {active.status === "QUEUED"
              ? "Waiting for a worker…"
              : `Syncing… ${formatCount(active.recordsSync)} records so far`}
          </span>
        )}
      </form>

      <form
        method="post"
        action={`${base}/schedule`}
        hx-post={`${base}/schedule`}
        hx-target="#sync-panel"
        hx-swap="outerHTML"
        class="inline-form"
      >
        <label class="field">
          <span class="label-text">Schedule (cron)</span>
          <input
            name="schedule"
            value={input.schedule}
            placeholder="0 3 * * *"
            class="mono"
            aria-describedby="schedule-help"
          />
        </label>
        <label class="field">
          <span class="label-text">Time zone</span>
          <input name="timezone" value={input.timezone} placeholder="UTC" />
        </label>
        <label class="field">
          <span class="label-text">Scheduled mode</span>
          <select name="mode">
            <option value="full_refresh" selected={input.mode === "full_refresh"}>
              Full refresh
            </option>
            <option value="incremental" selected={input.mode === "incremental"}>Incremental</option>
          </select>
        </label>
        <button type="submit">Save schedule</button>
        <p id="schedule-help" class="help small">
          Minute hour day month weekday, or @hourly / @daily. Leave empty to sync by hand only.
        </p>
      </form>

      <h3>History</h3>
      <div class="table-scroll">
        <table class="grid">
          <thead>
            <tr>
              <th>Status</th>
              <th>Started</th>
              <th>Trigger</th>
              <th>Mode</th>
              <th class="num">Records</th>
              <th class="num">Duration</th>
              <th>Details</th>
            </tr>
          </thead>
          <tbody>
            {props.runs.length === 0
              ? (
                <tr>
                  <td colspan={7} class="empty">No sync yet.</td>
                </tr>
              )
              : props.runs.map((run) => (
                <RunRow
                  key={run.id}
                  run={run}
                  sourceId={props.sourceId}
                />
              ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/** The panel on a page of its own (no JavaScript, or a direct link). */
export function SyncPage(props: SyncPanelProps & { user: SessionUser }) {
  return (
    <Layout title={`Sync · ${props.sourceName}`} user={props.user} active="sources">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/data-sources">Data sources</a> /{" "}
        <a href={`/data-sources/${props.sourceId}`}>{props.sourceName}</a> / Sync
      </nav>
      <PageHead title={`Sync · ${props.sourceName}`} />
      <section class="card">
        <SyncPanel {...props} />
      </section>
    </Layout>
  );
}

/**
 * Where the detail page shows the panel: htmx loads it in place; without JavaScript the
 * link leads to the panel's own page.
 */
export function SyncPanelSlot(props: { sourceId: string }) {
  const href = `/data-sources/${props.sourceId}/sync`;
  return (
    <div id="sync-panel" hx-get={href} hx-trigger="load" hx-swap="outerHTML">
      <a href={href}>Sync now, schedule and history</a>
    </div>
  );
}
