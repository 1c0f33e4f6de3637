/** The audit trail for administrators: filter by user, action and date; paged. */
import type { SessionUser } from "../routes/_env.ts";
import { formatDate, isoDate } from "./_format.ts";
import { Layout, PageHead } from "./layout.tsx";

export type AuditRow = {
  id: string;
  userEmail: string | null;
  action: string;
  entityType: string;
  entityId: string | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
};

export type AuditFilters = {
  userId?: string;
  action?: string;
  from?: string;
  to?: string;
  page: number;
};

export const AUDIT_PAGE_SIZE = 50;

/** The page's URL for these filters. */
export function auditUrl(filters: AuditFilters, page = filters.page): string {
  const params = new URLSearchParams();
  for (const key of ["userId", "action", "from", "to"] as const) {
    if (filters[key]) params.set(key, filters[key]!);
  }
  if (page > 1) params.set("page", String(page));
  const query = params.toString();
  return query ? `/audit?${query}` : "/audit";
}

/** Facts worth a glance in the table; the rest stays in the database. */
function details(metadata: Record<string, unknown>): string {
  const skip = new Set(["ip", "userAgent", "timestamp", "outcome", "requestId"]);
  return Object.entries(metadata).filter(([key]) => !skip.has(key))
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}

export function AuditResults(props: { rows: AuditRow[]; total: number; filters: AuditFilters }) {
  const { rows, total, filters } = props;
  const pages = Math.max(1, Math.ceil(total / AUDIT_PAGE_SIZE));
  return (
    <div id="audit-results" aria-live="polite">
      <div class="table-scroll">
        <table class="grid compact audit">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">User</th>
              <th scope="col">Action</th>
              <th scope="col">Entity</th>
              <th scope="col">Outcome</th>
              <th scope="col">Address</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && (
              <tr>
                <td colspan={7} class="empty">No audit entries match.</td>
              </tr>
            )}
            {rows.map((row) => {
              const outcome = String(row.metadata.outcome ?? "");
              return (
                <tr>
                  <td>
                    <time datetime={isoDate(row.createdAt)}>{formatDate(row.createdAt)}</time>
                  </td>
                  <td>{row.userEmail ?? <span class="muted">—</span>}</td>
                  <td class="mono">{row.action}</td>
                  <td>
                    {row.entityType}
                    {row.entityId && <span class="muted mono entity-id">{row.entityId}</span>}
                  </td>
                  <td>
                    <span class={`badge outcome-${outcome}`}>{outcome}</span>
                  </td>
                  <td class="mono small">{String(row.metadata.ip ?? "—")}</td>
                  <td class="small clip" title={details(row.metadata)}>{details(row.metadata)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div class="list-foot">
        <p class="muted">{total} entr{total === 1 ? "y" : "ies"}</p>
        {pages > 1 && (
          <nav class="pager" aria-label="Pages" hx-target="#audit-results" hx-push-url="true">
            {filters.page > 1
              ? <a href={auditUrl(filters, filters.page - 1)} rel="prev">← Newer</a>
              : <span class="disabled">← Newer</span>}
            <span>Page {Math.min(filters.page, pages)} of {pages}</span>
            {filters.page < pages
              ? <a href={auditUrl(filters, filters.page + 1)} rel="next">Older →</a>
              : <span class="disabled">Older →</span>}
          </nav>
        )}
      </div>
    </div>
  );
}

export function AuditPage(
  props: {
    user: SessionUser;
    rows: AuditRow[];
    total: number;
    filters: AuditFilters;
    users: { id: string; email: string }[];
    actions: string[];
  },
) {
  const { filters } = props;
  return (
    <Layout title="Audit log" user={props.user} active="audit">
      <PageHead title="Audit log">
        <p class="muted">Who did what, from where, and how it ended.</p>
      </PageHead>
      <form
        method="get"
        action="/audit"
        class="filters"
        hx-get="/audit"
        hx-target="#audit-results"
        hx-trigger="change, submit"
        hx-push-url="true"
      >
        <label>
          User
          <select name="userId">
            <option value="">Anyone</option>
            {props.users.map((user) => (
              <option value={user.id} selected={filters.userId === user.id}>{user.email}</option>
            ))}
          </select>
        </label>
        <label>
          Action
          <select name="action">
            <option value="">Any action</option>
            {props.actions.map((action) => (
              <option value={action} selected={filters.action === action}>{action}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" name="from" value={filters.from ?? ""} />
        </label>
        <label>
          To
          <input type="date" name="to" value={filters.to ?? ""} />
        </label>
        <button type="submit" class="align-end">Filter</button>
      </form>
      <AuditResults rows={props.rows} total={props.total} filters={filters} />
    </Layout>
  );
}
