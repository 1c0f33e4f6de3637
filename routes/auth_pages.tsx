/** `/login`, `/logout` and the first-run `/setup`: forms posting back to themselves. */
import { Hono } from "hono";
import { createFirstAdmin, newUserSchema } from "../db/users.ts";
import { LoginPage, SetupPage } from "../views/auth.tsx";
import { audit } from "./_audit.ts";
import { createSession, setSessionCookie, userCount } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { pageBodyLimit } from "./_pages.ts";
import { logIn, loginSchema, logOut } from "./auth.ts";

/** Only same-site paths: an open redirect through ?next= is refused. */
export function safeNext(next: unknown): string {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//")) {
    return "/data-sources";
  }
  if (next.startsWith("/\\") || next.startsWith("/login") || next.startsWith("/setup")) {
    return "/data-sources";
  }
  return next;
}

export function authPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/login", pageBodyLimit);
  app.use("/setup", pageBodyLimit);

  app.get("/login", async (c) => {
    if (await userCount(deps.db) === 0) return c.redirect("/setup");
    if (c.get("user")) return c.redirect(safeNext(c.req.query("next")));
    return c.html(<LoginPage next={c.req.query("next")} />);
  });

  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(form.next);
    const parsed = loginSchema.safeParse({ email: form.email, password: form.password });
    const email = typeof form.email === "string" ? form.email : "";
    if (!parsed.success) {
      return c.html(
        <LoginPage email={email} next={next} error="Enter your email and password" />,
        400,
      );
    }
    const outcome = await logIn(c, deps, parsed.data);
    if (!outcome.ok) {
      if (outcome.error.headers) {
        for (const [name, value] of Object.entries(outcome.error.headers)) c.header(name, value);
      }
      return c.html(
        <LoginPage email={email} next={next} error={outcome.error.message} />,
        outcome.error.status,
      );
    }
    return c.redirect(next, 303);
  });

  app.post("/logout", async (c) => {
    await logOut(c, deps);
    return c.redirect("/login", 303);
  });

  app.get("/setup", async (c) => {
    if (await userCount(deps.db) > 0) return c.redirect("/login");
    return c.html(<SetupPage />);
  });

  app.post("/setup", async (c) => {
    if (await userCount(deps.db) > 0) return c.redirect("/login", 303);
    const form = await c.req.parseBody();
    const email = typeof form.email === "string" ? form.email : "";
    const parsed = newUserSchema.safeParse({ email, password: form.password, role: "ADMIN" });
    if (!parsed.success) {
      const errors: Record<string, string> = {};
      for (const issue of parsed.error.issues) errors[String(issue.path[0])] ??= issue.message;
      return c.html(<SetupPage email={email} errors={errors} />, 400);
    }
    const admin = await createFirstAdmin(deps.db, parsed.data);
    if (!admin) return c.redirect("/login", 303);
    await audit(c, deps, {
      action: "USER_CREATE",
      entityType: "User",
      entityId: admin.id,
      outcome: "success",
      userId: admin.id,
      details: { email: admin.email, role: admin.role, via: "setup" },
    });
    const session = await createSession(deps.db, admin.id, deps.config.sessionTtlHours);
    setSessionCookie(c, deps, session.token, session.expiresAt);
    return c.redirect("/data-sources", 303);
  });

  return app;
}
