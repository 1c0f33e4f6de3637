/** `/audit` (administrators): the audit trail with filters by user, action and date. */
import { asc } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { auditLogs } from "../db/schema.ts";
import { AUDIT_PAGE_SIZE, type AuditFilters, AuditPage, AuditResults } from "../views/audit.tsx";
import { currentUser, requireAdmin } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { wantsFragment } from "./_pages.ts";
import { listAuditLogs } from "./audit_logs.ts";
import { listUsers } from "./users.ts";

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).refine((text) =>
  !Number.isNaN(Date.parse(`${text}T00:00:00Z`))
);

/** Filters as the form sends them: a bad value is dropped, never an error page. */
const auditPageQuery = z.object({
  userId: z.string().trim().min(1).max(100).optional().catch(undefined),
  action: z.string().trim().min(1).max(100).optional().catch(undefined),
  from: day.optional().catch(undefined),
  to: day.optional().catch(undefined),
  page: z.coerce.number().int().min(1).max(1_000_000).catch(1).default(1),
});

const DAY_MS = 86_400_000;

export function auditPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/audit", requireAdmin);

  app.get("/audit", async (c) => {
    const filters: AuditFilters = auditPageQuery.parse(c.req.query());
    const { rows, total } = await listAuditLogs(deps.db, {
      userId: filters.userId,
      action: filters.action,
      from: filters.from ? new Date(`${filters.from}T00:00:00Z`) : undefined,
      // "To" a day includes that whole day (UTC, as the table shows times).
      to: filters.to ? new Date(Date.parse(`${filters.to}T00:00:00Z`) + DAY_MS - 1) : undefined,
      limit: AUDIT_PAGE_SIZE,
      offset: (filters.page - 1) * AUDIT_PAGE_SIZE,
    });
    if (wantsFragment(c, "audit-results")) {
      return c.html(<AuditResults rows={rows} total={total} filters={filters} />);
    }
    const [users, actions] = await Promise.all([
      listUsers(deps.db),
      deps.db.selectDistinct({ action: auditLogs.action }).from(auditLogs)
        .orderBy(asc(auditLogs.action)),
    ]);
    return c.html(
      <AuditPage
        user={currentUser(c)}
        rows={rows}
        total={total}
        filters={filters}
        users={users}
        actions={actions.map((row) => row.action)}
      />,
    );
  });

  return app;
}
