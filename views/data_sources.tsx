/**
 * The data-source list. `SourceResults` (rows, count and pager) is both part of the page and
 * the fragment htmx asks for while the user types or filters; the filter form is a plain GET
 * form, so the list works the same without JavaScript.
 */
import { connectors } from "../connectors/mod.ts";
import type { SanitizedSource } from "../db/data_sources.ts";
import {
  DATA_SOURCE_STATUSES,
  DATA_SOURCE_TYPES,
  type DataSourceStatus,
  type DataSourceType,
} from "../db/schema.ts";
import type { SessionUser } from "../routes/_env.ts";
import { formatCount, formatDate, formatMs, isoDate } from "./_format.ts";
import { StatusBadge, TypeIcon, TypeLabel } from "./icons.tsx";
import { Layout, PageHead } from "./layout.tsx";

export type SourceFilters = {
  search?: string;
  type?: DataSourceType;
  status?: DataSourceStatus;
  page: number;
  limit: number;
};

export type SourceListProps = {
  user: SessionUser;
  sources: SanitizedSource[];
  total: number;
  filters: SourceFilters;
  /** Whether the user has any source at all (the empty state shows only then). */
  hasAny: boolean;
};

/** The list's URL for these filters (what the address bar shows and the pager links to). */
export function listUrl(filters: SourceFilters, page = filters.page): string {
  const params = new URLSearchParams();
  if (filters.search) params.set("search", filters.search);
  if (filters.type) params.set("type", filters.type);
  if (filters.status) params.set("status", filters.status);
  if (filters.limit !== DEFAULT_PAGE_SIZE) params.set("limit", String(filters.limit));
  if (page > 1) params.set("page", String(page));
  const query = params.toString();
  return query ? `/data-sources?${query}` : "/data-sources";
}

export const DEFAULT_PAGE_SIZE = 50;

function SourceRow(props: { source: SanitizedSource }) {
  const source = props.source;
  return (
    <tr>
      <td>
        <a href={`/data-sources/${source.id}`} class="row-link">{source.name}</a>
        {source.description && <div class="muted small clip">{source.description}</div>}
      </td>
      <td>
        <TypeLabel type={source.type} />
      </td>
      <td>
        <StatusBadge status={source.status} />
      </td>
      <td>
        <time datetime={isoDate(source.lastConnectionTest)}>
          {formatDate(source.lastConnectionTest)}
        </time>
      </td>
      <td class="num">{formatMs(source.avgResponseTime)}</td>
      <td class="num">{formatCount(source.totalRecords)}</td>
      <td>
        <time datetime={isoDate(source.lastSuccessfulSync)}>
          {formatDate(source.lastSuccessfulSync)}
        </time>
      </td>
    </tr>
  );
}

function Pager(props: { filters: SourceFilters; total: number }) {
  const { filters, total } = props;
  const pages = Math.max(1, Math.ceil(total / filters.limit));
  if (pages <= 1) return null;
  const page = Math.min(filters.page, pages);
  return (
    <nav class="pager" aria-label="Pages" hx-target="#source-results" hx-push-url="true">
      {page > 1
        ? <a href={listUrl(filters, page - 1)} rel="prev">← Previous</a>
        : <span class="disabled">← Previous</span>}
      <span>Page {page} of {pages}</span>
      {page < pages
        ? <a href={listUrl(filters, page + 1)} rel="next">Next →</a>
        : <span class="disabled">Next →</span>}
    </nav>
  );
}

/** Rows, count and pager: the part that changes as the filters change. */
export function SourceResults(props: Omit<SourceListProps, "user">) {
  const { sources, total, filters } = props;
  const first = (filters.page - 1) * filters.limit + 1;
  return (
    <div id="source-results" aria-live="polite">
      <div class="table-scroll">
        <table class="grid sources">
          <caption class="visually-hidden">Data sources</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Last test</th>
              <th scope="col" class="num">Avg response</th>
              <th scope="col" class="num">Records</th>
              <th scope="col">Last sync</th>
            </tr>
          </thead>
          <tbody id="source-rows">
            {sources.length === 0
              ? (
                <tr>
                  <td colspan={7} class="empty">
                    No data sources match. <a href="/data-sources">Clear the filters</a>
                  </td>
                </tr>
              )
              : sources.map((source) => <SourceRow key={source.id} source={source} />)}
          </tbody>
        </table>
      </div>
      <div class="list-foot">
        <p class="muted" id="source-count">
          {total === 0
            ? "No data sources"
            : `${formatCount(first)}–${formatCount(first + sources.length - 1)} of ${
              formatCount(total)
            } data source${total === 1 ? "" : "s"}`}
        </p>
        <Pager filters={filters} total={total} />
      </div>
    </div>
  );
}

function EmptyState() {
  return (
    <section class="card empty-state">
      <div class="type-strip" aria-hidden="true">
        {DATA_SOURCE_TYPES.map((type) => <TypeIcon key={type} type={type} size={28} />)}
      </div>
      <h2>Connect your first data source</h2>
      <p class="muted">
        PostgreSQL, MySQL, MongoDB, REST and GraphQL APIs, Amazon S3, Google Sheets or a CSV file:
        register it once, prove the connection works, then browse its schema and data.
      </p>
      <a class="button primary" href="/data-sources/new">Add a data source</a>
    </section>
  );
}

function Filters(props: { filters: SourceFilters }) {
  const { filters } = props;
  return (
    <form
      method="get"
      action="/data-sources"
      class="filters"
      role="search"
      hx-target="#source-results"
      hx-push-url="true"
      hx-include="closest form"
    >
      <label class="grow">
        <span class="visually-hidden">Search</span>
        <input
          type="search"
          name="search"
          value={filters.search ?? ""}
          placeholder="Search by name or description"
          autocomplete="off"
          hx-get="/data-sources"
          hx-trigger="input changed delay:300ms, search"
        />
      </label>
      <label>
        <span class="visually-hidden">Type</span>
        <select name="type" hx-get="/data-sources">
          <option value="">All types</option>
          {DATA_SOURCE_TYPES.map((type) => (
            <option value={type} selected={filters.type === type}>{connectors[type].label}</option>
          ))}
        </select>
      </label>
      <label>
        <span class="visually-hidden">Status</span>
        <select name="status" hx-get="/data-sources">
          <option value="">Any status</option>
          {DATA_SOURCE_STATUSES.map((status) => (
            <option value={status} selected={filters.status === status}>{status}</option>
          ))}
        </select>
      </label>
      {filters.limit !== DEFAULT_PAGE_SIZE && (
        <input type="hidden" name="limit" value={String(filters.limit)} />
      )}
      <noscript>
        <button type="submit">Filter</button>
      </noscript>
      <span class="htmx-indicator muted" aria-hidden="true">Searching…</span>
    </form>
  );
}

export function SourceListPage(props: SourceListProps) {
  return (
    <Layout title="Data sources" user={props.user} active="sources">
      <PageHead
        title="Data sources"
        actions={<a class="button primary" href="/data-sources/new">Add data source</a>}
      />
      {props.hasAny
        ? (
          <>
            <Filters filters={props.filters} />
            <SourceResults
              sources={props.sources}
              total={props.total}
              filters={props.filters}
              hasAny
            />
          </>
        )
        : <EmptyState />}
    </Layout>
  );
}
