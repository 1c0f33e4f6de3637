/** Audit rows: who did what to which entity, from where, and how it ended. */
import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import { newId } from "../db/ids.ts";
import { auditLogs, type AuditMetadata } from "../db/schema.ts";
import type { Requester } from "../sync/records.ts";
import type { AppDeps, AppEnv } from "./_env.ts";

export type AuditEntry = {
  action: string;
  entityType: string;
  entityId?: string | null;
  outcome: AuditMetadata["outcome"];
  /** Defaults to the signed-in user. */
  userId?: string | null;
  /** Extra facts (never secrets): error codes, changed fields, counts. */
  details?: Record<string, unknown>;
};

/** The caller's address: the socket peer, or X-Forwarded-For's first hop behind a trusted proxy. */
export function clientIp(c: Context, deps: AppDeps): string | undefined {
  if (deps.config.trustProxy) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded;
  }
  try {
    return getConnInfo(c).remote.address;
  } catch {
    // In-process requests (tests, app.request) have no socket.
    return undefined;
  }
}

/** Who asked, for an audit row written later (when a run ends, by the run). */
export function requesterOf(c: Context<AppEnv>, deps: AppDeps): Requester {
  return {
    userId: c.get("user")!.id,
    ip: clientIp(c, deps),
    userAgent: c.req.header("user-agent")?.slice(0, 512),
    requestId: c.get("requestId"),
  };
}

export async function audit(c: Context<AppEnv>, deps: AppDeps, entry: AuditEntry) {
  const userAgent = c.req.header("user-agent");
  await deps.db.insert(auditLogs).values({
    id: newId(),
    userId: entry.userId === undefined ? c.get("user")?.id ?? null : entry.userId,
    action: entry.action,
    entityType: entry.entityType,
    entityId: entry.entityId ?? null,
    metadata: {
      ...entry.details,
      ip: clientIp(c, deps),
      userAgent: userAgent?.slice(0, 512),
      timestamp: new Date().toISOString(),
      outcome: entry.outcome,
      requestId: c.get("requestId"),
    },
  });
}
