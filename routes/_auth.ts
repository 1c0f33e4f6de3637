/**
 * Sessions the way the Lucia guide prescribes: a random token in an HttpOnly cookie, only
 * its SHA-256 in the database, sliding expiry. Scripts use bearer API tokens, stored hashed.
 */
import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Context, MiddlewareHandler, Next } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Db } from "../db/mod.ts";
import { apiTokens, sessions, users } from "../db/schema.ts";
import { hashToken, randomToken } from "../vault/tokens.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { forbidden, unauthorized } from "./_errors.ts";

export const SESSION_COOKIE = "dafel_session";
export const API_TOKEN_PREFIX = "dds_";
const HOUR_MS = 3_600_000;
/** lastUsedAt of a token is written at most this often, so reads stay reads. */
const TOKEN_TOUCH_MS = 60_000;

export async function createSession(
  db: Db,
  userId: string,
  ttlHours: number,
): Promise<{ token: string; expiresAt: Date }> {
  const token = randomToken(20);
  const expiresAt = new Date(Date.now() + ttlHours * HOUR_MS);
  await db.insert(sessions).values({ id: hashToken(token), userId, expiresAt });
  return { token, expiresAt };
}

/** The session's user, or null; renews a session past half of its lifetime. */
export async function validateSessionToken(
  db: Db,
  token: string,
  ttlHours: number,
): Promise<{ user: SessionUser; sessionId: string; expiresAt: Date; renewed: boolean } | null> {
  const sessionId = hashToken(token);
  const [row] = await db
    .select({
      expiresAt: sessions.expiresAt,
      id: users.id,
      email: users.email,
      role: users.role,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.id, sessionId));
  if (!row) return null;
  const now = Date.now();
  if (row.expiresAt.getTime() <= now) {
    await db.delete(sessions).where(eq(sessions.id, sessionId));
    return null;
  }
  let expiresAt = row.expiresAt;
  let renewed = false;
  if (expiresAt.getTime() - now < (ttlHours * HOUR_MS) / 2) {
    expiresAt = new Date(now + ttlHours * HOUR_MS);
    await db.update(sessions).set({ expiresAt }).where(eq(sessions.id, sessionId));
    renewed = true;
  }
  return {
    user: { id: row.id, email: row.email, role: row.role },
    sessionId,
    expiresAt,
    renewed,
  };
}

export async function invalidateSession(db: Db, sessionId: string): Promise<void> {
  await db.delete(sessions).where(eq(sessions.id, sessionId));
}

export async function deleteExpiredSessions(db: Db): Promise<void> {
  await db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
}

/** A new API token: the value to show once, and the hash to store. */
export function newApiToken(): { token: string; tokenHash: string } {
  const token = API_TOKEN_PREFIX + randomToken(24);
  return { token, tokenHash: hashToken(token) };
}

async function validateApiToken(
  db: Db,
  token: string,
): Promise<{ user: SessionUser; tokenId: string } | null> {
  if (!token.startsWith(API_TOKEN_PREFIX)) return null;
  const [row] = await db
    .select({
      tokenId: apiTokens.id,
      lastUsedAt: apiTokens.lastUsedAt,
      expiresAt: apiTokens.expiresAt,
      id: users.id,
      email: users.email,
      role: users.role,
    })
    .from(apiTokens)
    .innerJoin(users, eq(users.id, apiTokens.userId))
    .where(eq(apiTokens.tokenHash, hashToken(token)));
  if (!row) return null;
  const now = new Date();
  if (row.expiresAt && row.expiresAt.getTime() <= now.getTime()) return null;
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > TOKEN_TOUCH_MS) {
    await db.update(apiTokens).set({ lastUsedAt: now }).where(
      and(
        eq(apiTokens.id, row.tokenId),
        or(
          isNull(apiTokens.lastUsedAt),
          lt(apiTokens.lastUsedAt, new Date(now.getTime() - TOKEN_TOUCH_MS)),
        ),
      ),
    );
  }
  return { user: { id: row.id, email: row.email, role: row.role }, tokenId: row.tokenId };
}

function isHttps(c: Context, deps: AppDeps): boolean {
  if (deps.config.secureCookies !== undefined) return deps.config.secureCookies;
  if (new URL(c.req.url).protocol === "https:") return true;
  return deps.config.trustProxy && c.req.header("x-forwarded-proto") === "https";
}

export function setSessionCookie(c: Context, deps: AppDeps, token: string, expiresAt: Date) {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: isHttps(c, deps),
    expires: expiresAt,
  });
}

export function clearSessionCookie(c: Context) {
  deleteCookie(c, SESSION_COOKIE, { path: "/" });
}

/**
 * Resolves the caller from `Authorization: Bearer` or the session cookie. A bearer header
 * that is present but wrong is not silently replaced by the cookie.
 */
export function authenticate(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("user", null);
    c.set("credential", null);
    const header = c.req.header("authorization");
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const found = match ? await validateApiToken(deps.db, match[1]) : null;
      if (found) {
        c.set("user", found.user);
        c.set("credential", { kind: "token", tokenId: found.tokenId });
      }
      return next();
    }
    const token = getCookie(c, SESSION_COOKIE);
    if (token) {
      const found = await validateSessionToken(deps.db, token, deps.config.sessionTtlHours);
      if (found) {
        c.set("user", found.user);
        c.set("credential", { kind: "session", sessionId: found.sessionId });
        if (found.renewed) setSessionCookie(c, deps, token, found.expiresAt);
      } else {
        clearSessionCookie(c);
      }
    }
    return next();
  };
}

/** 401 for the API when nobody is signed in. */
export async function requireUser(c: Context<AppEnv>, next: Next): Promise<void> {
  if (!c.get("user")) throw unauthorized();
  await next();
}

/** 403 unless the caller is an ADMIN. */
export async function requireAdmin(c: Context<AppEnv>, next: Next): Promise<void> {
  const user = c.get("user");
  if (!user) throw unauthorized();
  if (user.role !== "ADMIN") throw forbidden("Only administrators can do this");
  await next();
}

/** The signed-in user; only call behind requireUser. */
export function currentUser(c: Context<AppEnv>): SessionUser {
  const user = c.get("user");
  if (!user) throw unauthorized();
  return user;
}

/** Users that exist, for the first-run check. */
export async function userCount(db: Db): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(users);
  return Number(row?.n ?? 0);
}
