/** `/users` (administrators): create users, change roles, set passwords, remove users. */
import { Hono } from "hono";
import { z } from "zod";
import { ROLES } from "../db/schema.ts";
import { createUser, newUserSchema } from "../db/users.ts";
import { UserItem, UsersPage } from "../views/users.tsx";
import { audit } from "./_audit.ts";
import { currentUser, requireAdmin } from "./_auth.ts";
import type { AppDeps, AppEnv, SessionUser } from "./_env.ts";
import { ApiError } from "./_errors.ts";
import { field, formBody, fromHtmx, pageBodyLimit, seeOther } from "./_pages.ts";
import { changeRole, listUsers, ownSessionId, removeUser, resetPassword } from "./users.ts";

const roleSchema = z.enum(ROLES);

/** A refusal the user can act on (last administrator, owns sources): shown, not thrown. */
function refusal(error: unknown): ApiError | null {
  return error instanceof ApiError && (error.status === 409 || error.status === 404) ? error : null;
}

export function userPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/users", requireAdmin);
  app.use("/users/*", requireAdmin);
  app.use("/users", pageBodyLimit);
  app.use("/users/*", pageBodyLimit);

  async function page(user: SessionUser, extra: Partial<Parameters<typeof UsersPage>[0]> = {}) {
    return <UsersPage user={user} users={await listUsers(deps.db)} {...extra} />;
  }

  app.get("/users", async (c) => c.html(await page(currentUser(c))));

  app.post("/users", async (c) => {
    const user = currentUser(c);
    const body = await formBody(c);
    const email = field(body, "email") ?? "";
    const role = field(body, "role") ?? "USER";
    const parsed = newUserSchema.safeParse({ email, password: field(body, "password"), role });
    const errors: Record<string, string> = {};
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        errors[String(issue.path[0] ?? "form")] ??= issue.message;
      }
    } else {
      const created = await createUser(deps.db, parsed.data);
      if (created) {
        await audit(c, deps, {
          action: "USER_CREATE",
          entityType: "User",
          entityId: created.id,
          outcome: "success",
          details: { email: created.email, role: created.role },
        });
        c.header("HX-Push-Url", "/users");
        return c.html(await page(user, { notice: `Created ${created.email} (${created.role}).` }));
      }
      errors.email = "A user with this email already exists";
    }
    c.header("HX-Push-Url", "false");
    return c.html(await page(user, { form: { email, role, errors } }), 400);
  });

  app.post("/users/:id/role", async (c) => {
    const user = currentUser(c);
    const id = c.req.param("id");
    const role = roleSchema.safeParse(field(await formBody(c), "role"));
    let message: string | undefined;
    if (!role.success) {
      message = "Choose ADMIN or USER";
    } else {
      try {
        const updated = await changeRole(deps.db, user.id, id, role.data);
        await audit(c, deps, {
          action: "USER_UPDATE",
          entityType: "User",
          entityId: updated.id,
          outcome: "success",
          details: { role: role.data },
        });
      } catch (error) {
        const refused = refusal(error);
        if (!refused) throw error;
        message = refused.message;
      }
    }
    const status = message ? 409 : 200;
    if (fromHtmx(c) && c.req.header("hx-target") === `user-${id}`) {
      const row = (await listUsers(deps.db)).find((entry) => entry.id === id);
      return row ? c.html(<UserItem row={row} me={user} error={message} />, status) : c.html("");
    }
    if (!message) return seeOther(c, "/users");
    return c.html(await page(user, { rowError: { id, message } }), status);
  });

  app.post("/users/:id/password", async (c) => {
    const user = currentUser(c);
    const id = c.req.param("id");
    const parsed = newUserSchema.shape.password.safeParse(
      field(await formBody(c), "password") ?? "",
    );
    let message: string | undefined;
    let status: 200 | 400 | 404 = 200;
    let email: string | undefined;
    if (!parsed.success) {
      message = parsed.error.issues[0].message;
      status = 400;
    } else {
      try {
        const reset = await resetPassword(deps.db, {
          userId: id,
          password: parsed.data,
          keepSessionId: ownSessionId(c, id),
        });
        email = reset.user.email;
        await audit(c, deps, {
          action: "USER_UPDATE",
          entityType: "User",
          entityId: reset.user.id,
          outcome: "success",
          details: { passwordChanged: true, sessionsEnded: reset.sessionsEnded },
        });
      } catch (error) {
        const refused = refusal(error);
        if (!refused) throw error;
        message = refused.message;
        status = 404;
      }
    }
    const notice = message ? undefined : "Password set; their sessions were signed out.";
    if (fromHtmx(c) && c.req.header("hx-target") === `user-${id}`) {
      const row = (await listUsers(deps.db)).find((entry) => entry.id === id);
      return row
        ? c.html(
          <UserItem row={row} me={user} error={message} notice={notice} passwordOpen={!!message} />,
          status,
        )
        : c.html("");
    }
    if (message) {
      return c.html(await page(user, { rowError: { id, message, passwordOpen: true } }), status);
    }
    return c.html(
      await page(user, { notice: `Password set for ${email}; their sessions were signed out.` }),
    );
  });

  app.post("/users/:id/delete", async (c) => {
    const user = currentUser(c);
    const id = c.req.param("id");
    let message: string | undefined;
    try {
      const removed = await removeUser(deps.db, user.id, id);
      await audit(c, deps, {
        action: "USER_DELETE",
        entityType: "User",
        entityId: removed.id,
        outcome: "success",
        details: { email: removed.email },
      });
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      message = refused.message;
    }
    const inRow = fromHtmx(c) && c.req.header("hx-target") === `user-${id}`;
    if (!message) return inRow ? c.html("") : seeOther(c, "/users");
    if (inRow) {
      const row = (await listUsers(deps.db)).find((entry) => entry.id === id);
      return row ? c.html(<UserItem row={row} me={user} error={message} />, 409) : c.html("");
    }
    return c.html(await page(user, { rowError: { id, message } }), 409);
  });

  return app;
}
