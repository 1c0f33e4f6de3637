/**
 * Sign in and out, and change your own password: `POST /api/auth/login`,
 * `POST /api/auth/logout`, `GET /api/auth/me`, `POST /api/auth/password`.
 */
import { eq, sql } from "drizzle-orm";
import { Hono } from "hono";
import { getCookie } from "hono/cookie";
import { RateLimiterRes } from "rate-limiter-flexible";
import { z } from "zod";
import { users } from "../db/schema.ts";
import { newUserSchema, setPassword } from "../db/users.ts";
import { hashToken } from "../vault/tokens.ts";
import { verifyAgainstNothing, verifyPassword } from "../vault/password.ts";
import { audit, clientIp } from "./_audit.ts";
import {
  clearSessionCookie,
  createSession,
  currentUser,
  invalidateSession,
  requireUser,
  SESSION_COOKIE,
  setSessionCookie,
} from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError, tooManyRequests } from "./_errors.ts";
import { validate } from "./_validate.ts";

export const loginSchema = z.object({
  email: z.string().trim().min(1, "Email is required").max(320),
  password: z.string().min(1, "Password is required").max(1024),
});

/** The current password as a login takes it; the new one under the rule for new users. */
export const changePasswordSchema = z.object({
  currentPassword: loginSchema.shape.password,
  newPassword: newUserSchema.shape.password,
});

export type LoginOutcome =
  | { ok: true; user: SessionUser }
  | { ok: false; error: ApiError };

/**
 * Checks credentials under the login rate limit (10 a minute per address and email), starts
 * a session with a fresh token (never the one the browser brought) and audits the attempt.
 * Shared by the JSON API and the login form.
 */
export async function logIn(
  c: Parameters<typeof audit>[0],
  deps: AppDeps,
  input: z.infer<typeof loginSchema>,
): Promise<LoginOutcome> {
  const email = input.email.toLowerCase();
  const key = `${clientIp(c, deps) ?? "local"}|${email}`;
  try {
    await deps.limiters.login.consume(key);
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    await audit(c, deps, {
      action: "AUTH_LOGIN",
      entityType: "User",
      outcome: "denied",
      userId: null,
      details: { email, reason: "rate_limited" },
    });
    return { ok: false, error: tooManyRequests(error.msBeforeNext / 1000) };
  }
  const [user] = await deps.db.select().from(users).where(eq(sql`lower(${users.email})`, email));
  const valid = user
    ? await verifyPassword(user.passwordHash, input.password)
    : await verifyAgainstNothing(input.password);
  if (!user || !valid) {
    await audit(c, deps, {
      action: "AUTH_LOGIN",
      entityType: "User",
      entityId: user?.id ?? null,
      outcome: "failure",
      userId: user?.id ?? null,
      details: { email },
    });
    return {
      ok: false,
      error: new ApiError(401, "INVALID_CREDENTIALS", "Invalid email or password"),
    };
  }
  const previous = getCookie(c, SESSION_COOKIE);
  if (previous) await invalidateSession(deps.db, hashToken(previous));
  const session = await createSession(deps.db, user.id, deps.config.sessionTtlHours);
  setSessionCookie(c, deps, session.token, session.expiresAt);
  const sessionUser: SessionUser = { id: user.id, email: user.email, role: user.role };
  await audit(c, deps, {
    action: "AUTH_LOGIN",
    entityType: "User",
    entityId: user.id,
    outcome: "success",
    userId: user.id,
  });
  return { ok: true, user: sessionUser };
}

/** Ends the caller's session (if signed in with one) and clears the cookie. */
export async function logOut(c: Parameters<typeof audit>[0], deps: AppDeps): Promise<void> {
  const credential = c.get("credential");
  const user = c.get("user");
  if (credential?.kind === "session") await invalidateSession(deps.db, credential.sessionId);
  clearSessionCookie(c);
  if (user) {
    await audit(c, deps, {
      action: "AUTH_LOGOUT",
      entityType: "User",
      entityId: user.id,
      outcome: "success",
    });
  }
}

export type PasswordChangeOutcome =
  | { ok: true; sessionsEnded: number }
  | { ok: false; error: ApiError };

/**
 * Changes the signed-in user's own password once the current one checks out, and ends
 * every other session of that user (the caller's own stays valid; API tokens are kept).
 * Attempts count against the login limiter, keyed by user rather than address, so a
 * stolen session cannot guess the current password from many addresses.
 * A wrong current password is 400 `INVALID_CREDENTIALS`: the code a failed login answers,
 * but not its 401, which here means "not signed in" (the caller is, and clients and pages
 * treat 401 as a lost session), nor 403, which here means a role or ownership refusal.
 * Shared by the JSON API and the /account form.
 */
export async function changePassword(
  c: Parameters<typeof audit>[0],
  deps: AppDeps,
  input: z.infer<typeof changePasswordSchema>,
): Promise<PasswordChangeOutcome> {
  const user = currentUser(c);
  const record = (outcome: "success" | "failure" | "denied", details: Record<string, unknown>) =>
    audit(c, deps, {
      action: "PASSWORD_CHANGE",
      entityType: "User",
      entityId: user.id,
      outcome,
      details,
    });
  try {
    await deps.limiters.login.consume(`password|${user.id}`);
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw error;
    await record("denied", { reason: "rate_limited" });
    return { ok: false, error: tooManyRequests(error.msBeforeNext / 1000) };
  }
  const [row] = await deps.db.select({ passwordHash: users.passwordHash }).from(users)
    .where(eq(users.id, user.id));
  if (!row || !await verifyPassword(row.passwordHash, input.currentPassword)) {
    await record("failure", { reason: "wrong_current_password" });
    const message = "Current password is incorrect";
    return {
      ok: false,
      error: new ApiError(400, "INVALID_CREDENTIALS", message, [
        { path: "currentPassword", message },
      ]),
    };
  }
  const credential = c.get("credential");
  const { sessionsEnded } = await setPassword(deps.db, {
    userId: user.id,
    password: input.newPassword,
    keepSessionId: credential?.kind === "session" ? credential.sessionId : undefined,
  });
  await record("success", { sessionsEnded });
  return { ok: true, sessionsEnded };
}

export function authApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.post("/login", validate("json", loginSchema), async (c) => {
    const outcome = await logIn(c, deps, c.req.valid("json"));
    if (!outcome.ok) throw outcome.error;
    return c.json({ user: outcome.user });
  });

  app.post("/logout", requireUser, async (c) => {
    await logOut(c, deps);
    return c.json({ success: true });
  });

  app.get("/me", requireUser, (c) => c.json({ user: currentUser(c) }));

  app.post("/password", requireUser, validate("json", changePasswordSchema), async (c) => {
    const outcome = await changePassword(c, deps, c.req.valid("json"));
    if (!outcome.ok) throw outcome.error;
    return c.json({ success: true });
  });

  return app;
}
