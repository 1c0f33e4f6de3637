/** Data preview: choose a table, see its first rows in a grid (a fragment for htmx). */
import type { ConnectorError, Preview, Stream } from "../connectors/types.ts";
import { formatCell } from "./_format.ts";
import { streamLabel } from "./schema_browser.tsx";

export type PreviewState =
  | { kind: "none" }
  | { kind: "rows"; table: string; preview: Preview }
  | { kind: "failed"; table: string; error: ConnectorError }
  | { kind: "unknown-table"; table: string };

export const PREVIEW_LIMITS = [10, 50, 100, 500] as const;

/** Long values are cut in the grid; the full value is in the cell's title. */
const CELL_CHARS = 120;

/** The grid (or why there is none): what htmx swaps into #preview-grid. */
export function PreviewGrid(props: { state: PreviewState }) {
  const { state } = props;
  if (state.kind === "none") {
    return <p class="muted">Choose a table to see its first rows.</p>;
  }
  if (state.kind === "unknown-table") {
    return (
      <div class="result warn" role="alert">
        There is no table “{state.table}” in the discovered schema. Discover the schema again if it
        is new.
      </div>
    );
  }
  if (state.kind === "failed") {
    return (
      <div class="result error" role="alert">
        <strong>Preview of {state.table} failed</strong>{" "}
        <code class="error-code">{state.error.code}</code>
        <p>{state.error.message}</p>
        <p class="hint">{state.error.hint}</p>
      </div>
    );
  }
  const { preview, table } = state;
  return (
    <>
      <p class="muted small" id="preview-caption">
        {preview.rows.length} row{preview.rows.length === 1 ? "" : "s"} of <code>{table}</code>
      </p>
      <div class="table-scroll preview-scroll">
        <table class="grid compact preview" aria-describedby="preview-caption">
          <thead>
            <tr>
              {preview.columns.map((column) => (
                <th scope="col">
                  <span class="mono">{column.name}</span>
                  <span class="col-type">{column.type}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {preview.rows.length === 0 && (
              <tr>
                <td colspan={Math.max(1, preview.columns.length)} class="empty">
                  The table is empty.
                </td>
              </tr>
            )}
            {preview.rows.map((row) => (
              <tr>
                {preview.columns.map((column) => {
                  const value = row[column.name];
                  const text = formatCell(value);
                  const cut = text.length > CELL_CHARS;
                  return (
                    <td
                      class={value === null || value === undefined ? "null" : undefined}
                      title={cut ? text : undefined}
                    >
                      {value === null || value === undefined
                        ? "null"
                        : cut
                        ? `${text.slice(0, CELL_CHARS)}…`
                        : text}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** The preview section: a GET form choosing table and row count, and the grid. */
export function PreviewSection(
  props: {
    sourceId: string;
    streams: Stream[];
    state: PreviewState;
    limit: number;
    /** Sent out of band when the list of tables changed. */
    oob?: boolean;
  },
) {
  const action = `/data-sources/${props.sourceId}/preview`;
  const chosen = props.state.kind === "none" ? undefined : props.state.table;
  return (
    <section
      id="preview"
      class="card"
      aria-labelledby="preview-title"
      hx-swap-oob={props.oob ? "true" : undefined}
    >
      <h2 id="preview-title">Data preview</h2>
      {props.streams.length === 0
        ? <p class="muted">Discover the schema to preview its tables.</p>
        : (
          <form
            method="get"
            action={action}
            class="filters"
            hx-get={action}
            hx-target="#preview-grid"
            hx-trigger="change, submit"
            hx-push-url="false"
          >
            <label>
              Table
              <select name="table">
                {props.streams.map((stream) => {
                  const label = streamLabel(stream);
                  return (
                    <option key={label} value={label} selected={label === chosen}>{label}</option>
                  );
                })}
              </select>
            </label>
            <label>
              Rows
              <select name="limit">
                {PREVIEW_LIMITS.map((limit) => (
                  <option value={String(limit)} selected={limit === props.limit}>{limit}</option>
                ))}
              </select>
            </label>
            <button type="submit" class="align-end">Show rows</button>
          </form>
        )}
      <div id="preview-grid" aria-live="polite">
        <PreviewGrid state={props.state} />
      </div>
    </section>
  );
}
