/**
 * A source's discovered schema: tables with their columns, types, keys and row counts, a
 * filter box (server-side, htmx as you type, a GET form without JavaScript), foreign keys
 * that link to the table they reference, and what changed since the previous discovery.
 */
import type { SchemaDiff, TableRef } from "../connectors/schema_diff.ts";
import type { Discovery, Stream } from "../connectors/types.ts";
import { formatCount, formatDate, isoDate } from "./_format.ts";

/** `public.orders`, or `orders` for sources without namespaces. */
export function streamLabel(stream: { name: string; schema?: string }): string {
  return stream.schema ? `${stream.schema}.${stream.name}` : stream.name;
}

/** The anchor id of a table's card. */
export function tableAnchor(stream: { name: string; schema?: string }): string {
  return `table-${streamLabel(stream).replace(/[^A-Za-z0-9_-]+/g, "-")}`;
}

/** Streams whose name or one of whose columns contains the filter text. */
export function filterStreams(streams: Stream[], filter: string | undefined): Stream[] {
  const needle = filter?.trim().toLowerCase();
  if (!needle) return streams;
  return streams.filter((stream) =>
    streamLabel(stream).toLowerCase().includes(needle) ||
    stream.columns.some((column) => column.name.toLowerCase().includes(needle))
  );
}

/** Opening every card is only helpful while there are few. */
const OPEN_UP_TO = 8;

function referencedStream(streams: Stream[], from: Stream, table: string, schema?: string) {
  return streams.find((stream) =>
    stream.name === table && (stream.schema ?? undefined) === (schema ?? from.schema)
  ) ?? streams.find((stream) => stream.name === table);
}

function TableCard(
  props: { stream: Stream; streams: Stream[]; open: boolean; sourceId: string },
) {
  const { stream, streams } = props;
  const label = streamLabel(stream);
  const foreign = new Map<string, { href: string; text: string }>();
  for (const key of stream.constraints.foreignKeys) {
    const target = referencedStream(streams, stream, key.referencedTable, key.referencedSchema);
    key.columns.forEach((column, index) => {
      foreign.set(column, {
        href: `#${tableAnchor(target ?? { name: key.referencedTable })}`,
        text: `${key.referencedTable}.${key.referencedColumns[index] ?? "?"}`,
      });
    });
  }
  const primary = new Set(stream.constraints.primaryKeys);
  const unique = new Set(stream.constraints.uniqueKeys);
  const previewHref = `/data-sources/${props.sourceId}/preview?table=${encodeURIComponent(label)}`;
  return (
    <details class="table-card" id={tableAnchor(stream)} open={props.open}>
      <summary>
        <span class="table-name mono">{label}</span>
        <span class="badge">{stream.kind}</span>
        <span class="muted small">
          {stream.columns.length} column{stream.columns.length === 1 ? "" : "s"} ·{" "}
          {stream.rowCount === null
            ? "rows unknown"
            : `${stream.rowCountExact ? "" : "≈ "}${formatCount(stream.rowCount)} rows`}
        </span>
      </summary>
      <div class="table-scroll">
        <table class="grid compact">
          <caption class="visually-hidden">Columns of {label}</caption>
          <thead>
            <tr>
              <th scope="col">Column</th>
              <th scope="col">Type</th>
              <th scope="col">Null</th>
              <th scope="col">Keys</th>
            </tr>
          </thead>
          <tbody>
            {stream.columns.map((column) => {
              const reference = foreign.get(column.name);
              return (
                <tr>
                  <td class="mono">{column.name}</td>
                  <td class="mono muted">{column.type}</td>
                  <td>{column.nullable ? "yes" : "no"}</td>
                  <td class="keys">
                    {(primary.has(column.name) || column.primaryKey) && (
                      <span class="key pk" title="Primary key">PK</span>
                    )}
                    {(unique.has(column.name) || column.unique) && !primary.has(column.name) && (
                      <span class="key uq" title="Unique">UNIQUE</span>
                    )}
                    {reference && (
                      <a class="key fk" href={reference.href} title="Foreign key">
                        FK → {reference.text}
                      </a>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p class="table-actions">
        <a
          href={previewHref}
          hx-get={previewHref}
          hx-target="#preview-grid"
          hx-push-url="false"
          class="button small"
        >
          Preview rows
        </a>
      </p>
    </details>
  );
}

/** The list of tables that the filter box replaces. */
export function SchemaTables(
  props: { sourceId: string; discovery: Discovery; filter?: string },
) {
  const all = props.discovery.streams;
  const shown = filterStreams(all, props.filter);
  return (
    <div id="schema-tables" aria-live="polite">
      <p class="muted small" id="schema-count">
        {props.filter
          ? `${shown.length} of ${all.length} tables match “${props.filter}”`
          : `${all.length} table${all.length === 1 ? "" : "s"}`}
      </p>
      {shown.map((stream) => (
        <TableCard
          stream={stream}
          streams={all}
          open={shown.length <= OPEN_UP_TO}
          sourceId={props.sourceId}
        />
      ))}
    </div>
  );
}

export type SchemaState =
  | { kind: "none" }
  | { kind: "discovered"; discovery: Discovery; discoveredAt: Date }
  | { kind: "failed"; code: string; message: string; hint: string };

/** The schema section: discovery time, "Discover again", the filter and the tables. */
export function SchemaSection(
  props: {
    sourceId: string;
    state: SchemaState;
    filter?: string;
    /** A failure of the last "Discover again", shown above the stored schema. */
    error?: { code: string; message: string; hint: string };
    /** Sent out of band (after a test that discovered the schema for the first time). */
    oob?: boolean;
  },
) {
  const { state, sourceId } = props;
  const action = `/data-sources/${sourceId}/discover`;
  return (
    <section
      id="schema"
      class="card"
      aria-labelledby="schema-title"
      hx-swap-oob={props.oob ? "true" : undefined}
    >
      <div class="section-head">
        <h2 id="schema-title">Schema</h2>
        <form
          method="post"
          action={action}
          hx-post={action}
          hx-target="#schema"
          hx-swap="outerHTML"
          hx-disabled-elt="find button"
        >
          <button type="submit" class="small">
            {state.kind === "discovered" ? "Discover again" : "Discover schema"}
          </button>
        </form>
      </div>
      {props.error && (
        <div class="result error" role="alert">
          <strong>Discovery failed</strong> <code class="error-code">{props.error.code}</code>
          <p>{props.error.message}</p>
          <p class="hint">{props.error.hint}</p>
        </div>
      )}
      {state.kind === "none" && (
        <p class="muted">
          Not discovered yet. A successful connection test discovers the schema, or use “Discover
          schema”.
        </p>
      )}
      {state.kind === "discovered" && (
        <>
          <p class="muted small">
            Discovered{" "}
            <time datetime={isoDate(state.discoveredAt)}>{formatDate(state.discoveredAt)}</time>
          </p>
          <form
            method="get"
            action={`/data-sources/${sourceId}`}
            class="filters"
            role="search"
            hx-get={`/data-sources/${sourceId}/schema`}
            hx-target="#schema-tables"
            hx-trigger="input changed delay:250ms from:find input, submit"
            hx-push-url="false"
          >
            <label class="grow">
              <span class="visually-hidden">Filter tables and columns</span>
              <input
                type="search"
                name="filter"
                value={props.filter ?? ""}
                placeholder="Filter tables and columns"
                autocomplete="off"
              />
            </label>
            <noscript>
              <button type="submit">Filter</button>
            </noscript>
          </form>
          <SchemaTables sourceId={sourceId} discovery={state.discovery} filter={props.filter} />
        </>
      )}
    </section>
  );
}

function Ref(props: { table: TableRef }) {
  return <code>{streamLabel(props.table)}</code>;
}

/** What changed between the two newest discoveries. */
export function SchemaChanges(
  props: { changes: { from: Date; to: Date; changes: SchemaDiff } | null },
) {
  if (!props.changes) {
    return (
      <p class="muted">
        Changes appear here once the schema has been discovered twice.
      </p>
    );
  }
  const { from, to, changes } = props.changes;
  const period = (
    <p class="muted small">
      Between {formatDate(from)} and {formatDate(to)}
    </p>
  );
  if (changes.unchanged) {
    return (
      <>
        {period}
        <p>No changes.</p>
      </>
    );
  }
  return (
    <>
      {period}
      <ul class="changes">
        {changes.tablesAdded.map((table) => (
          <li class="added">
            Table added: <Ref table={table} />
          </li>
        ))}
        {changes.tablesRemoved.map((table) => (
          <li class="removed">
            Table removed: <Ref table={table} />
          </li>
        ))}
        {changes.columnsAdded.map((change) => (
          <li class="added">
            Column added: <Ref table={change} />.<code>{change.column}</code> ({change.type})
          </li>
        ))}
        {changes.columnsRemoved.map((change) => (
          <li class="removed">
            Column removed: <Ref table={change} />.<code>{change.column}</code> ({change.type})
          </li>
        ))}
        {changes.typesChanged.map((change) => (
          <li class="changed">
            Type changed: <Ref table={change} />.<code>{change.column}</code> {change.from} →{" "}
            {change.to}
          </li>
        ))}
        {changes.nullabilityChanged.map((change) => (
          <li class="changed">
            <Ref table={change} />.<code>{change.column}</code>{" "}
            {change.to ? "now accepts null" : "no longer accepts null"}
          </li>
        ))}
        {changes.keysChanged.map((change) => (
          <li class="changed">
            Keys changed on <Ref table={change} />: {change.kind}
          </li>
        ))}
      </ul>
    </>
  );
}
