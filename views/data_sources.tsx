/** The data-source list: the full page, or only its rows when htmx asks for them. */
import type { SanitizedSource } from "../db/data_sources.ts";
import { connectors } from "../connectors/mod.ts";
import type { SessionUser } from "../routes/_env.ts";
import { Layout } from "./layout.tsx";

export function StatusBadge(props: { status: string }) {
  return <span class={`badge status-${props.status.toLowerCase()}`}>{props.status}</span>;
}

function formatDate(value: Date | string | null): string {
  if (!value) return "—";
  const date = typeof value === "string" ? new Date(value) : value;
  return date.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function SourceRows(props: { sources: SanitizedSource[] }) {
  if (props.sources.length === 0) {
    return (
      <tr>
        <td colspan={7} class="empty">No data sources match.</td>
      </tr>
    );
  }
  return (
    <>
      {props.sources.map((source) => (
        <tr>
          <td>
            <a href={`/data-sources/${source.id}`}>{source.name}</a>
          </td>
          <td>{connectors[source.type].label}</td>
          <td>
            <StatusBadge status={source.status} />
          </td>
          <td>{formatDate(source.lastConnectionTest)}</td>
          <td class="num">
            {source.avgResponseTime === null ? "—" : `${Math.round(source.avgResponseTime)} ms`}
          </td>
          <td class="num">{source.totalRecords.toLocaleString("en-US")}</td>
          <td>{formatDate(source.lastSuccessfulSync)}</td>
        </tr>
      ))}
    </>
  );
}

export function SourceListPage(
  props: { user: SessionUser; sources: SanitizedSource[]; total: number; search?: string },
) {
  return (
    <Layout title="Data sources" user={props.user} active="sources">
      <div class="page-head">
        <h1>Data sources</h1>
      </div>
      <form method="get" action="/data-sources" class="filters" role="search">
        <input
          type="search"
          name="search"
          value={props.search ?? ""}
          placeholder="Search by name or description"
          aria-label="Search"
          hx-get="/data-sources"
          hx-trigger="input changed delay:250ms, search"
          hx-target="#source-rows"
          hx-push-url="true"
        />
      </form>
      <table class="grid">
        <thead>
          <tr>
            <th>Name</th>
            <th>Type</th>
            <th>Status</th>
            <th>Last test</th>
            <th class="num">Avg response</th>
            <th class="num">Records</th>
            <th>Last sync</th>
          </tr>
        </thead>
        <tbody id="source-rows">
          <SourceRows sources={props.sources} />
        </tbody>
      </table>
      <p class="muted">{props.total} data source(s)</p>
    </Layout>
  );
}
