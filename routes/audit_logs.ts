/** The audit trail, for administrators: `GET /api/audit-logs` with filters. */
import { and, count, desc, eq, gte, lte, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Db } from "../db/mod.ts";
import { auditLogs, users } from "../db/schema.ts";
import { requireAdmin } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { validate } from "./_validate.ts";

export const auditQuerySchema = z.object({
  userId: z.string().trim().max(100).optional(),
  action: z.string().trim().max(100).optional(),
  entityType: z.string().trim().max(100).optional(),
  entityId: z.string().trim().max(100).optional(),
  from: z.coerce.date().optional(),
  to: z.coerce.date().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
});

export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** Audit rows matching the filters, newest first, with the acting user's email. */
export async function listAuditLogs(db: Db, query: AuditQuery) {
  const conditions: SQL[] = [];
  if (query.userId) conditions.push(eq(auditLogs.userId, query.userId));
  if (query.action) conditions.push(eq(auditLogs.action, query.action));
  if (query.entityType) conditions.push(eq(auditLogs.entityType, query.entityType));
  if (query.entityId) conditions.push(eq(auditLogs.entityId, query.entityId));
  if (query.from) conditions.push(gte(auditLogs.createdAt, query.from));
  if (query.to) conditions.push(lte(auditLogs.createdAt, query.to));
  const where = conditions.length ? and(...conditions) : undefined;
  const [rows, [{ total }]] = await Promise.all([
    db.select({
      id: auditLogs.id,
      userId: auditLogs.userId,
      userEmail: users.email,
      action: auditLogs.action,
      entityType: auditLogs.entityType,
      entityId: auditLogs.entityId,
      metadata: auditLogs.metadata,
      createdAt: auditLogs.createdAt,
    })
      .from(auditLogs)
      .leftJoin(users, eq(users.id, auditLogs.userId))
      .where(where)
      .orderBy(desc(auditLogs.createdAt), desc(auditLogs.id))
      .limit(query.limit)
      .offset(query.offset),
    db.select({ total: count() }).from(auditLogs).where(where),
  ]);
  return { rows, total: Number(total) };
}

export function auditLogsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireAdmin);
  app.get("/", validate("query", auditQuerySchema), async (c) => {
    const { rows, total } = await listAuditLogs(deps.db, c.req.valid("query"));
    c.header("X-Total-Count", String(total));
    return c.json(rows);
  });
  return app;
}
