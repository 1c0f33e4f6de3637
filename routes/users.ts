/** User management for administrators: list, create, change role, set password, remove. */
import { and, count, eq, ne } from "drizzle-orm";
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { Db } from "../db/mod.ts";
import { dataSources, type Role, ROLES, users } from "../db/schema.ts";
import { isId } from "../db/ids.ts";
import { createUser, newUserSchema, setPassword } from "../db/users.ts";
import { audit } from "./_audit.ts";
import { currentUser, requireAdmin } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { conflict, notFound } from "./_errors.ts";
import { validate } from "./_validate.ts";

/** A new role, a new password (the rule for new users), or both. */
export const updateUserSchema = newUserSchema.pick({ password: true }).extend({
  role: z.enum(ROLES),
}).partial().refine((input) => input.role !== undefined || input.password !== undefined, {
  message: "Give a role, a password or both",
});

const publicColumns = {
  id: users.id,
  email: users.email,
  role: users.role,
  createdAt: users.createdAt,
};

export function listUsers(db: Db) {
  return db.select(publicColumns).from(users).orderBy(users.createdAt);
}

async function otherAdmins(db: Db, userId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(users)
    .where(and(eq(users.role, "ADMIN"), ne(users.id, userId)));
  return Number(row.n);
}

/** Changes a user's role; refuses to leave the app without an administrator. */
export async function changeRole(db: Db, actorId: string, userId: string, role: Role) {
  if (!isId(userId)) throw notFound("User");
  const [target] = await db.select(publicColumns).from(users).where(eq(users.id, userId));
  if (!target) throw notFound("User");
  if (target.role === "ADMIN" && role !== "ADMIN" && await otherAdmins(db, userId) === 0) {
    throw conflict("This is the last administrator: make someone else ADMIN first");
  }
  if (userId === actorId && role !== "ADMIN") {
    throw conflict("You cannot remove your own administrator role");
  }
  const [row] = await db.update(users).set({ role }).where(eq(users.id, userId))
    .returning(publicColumns);
  return row;
}

/**
 * Sets a user's password for an administrator and ends that user's sessions: all of them,
 * or all but the caller's own when administrators set their own password.
 */
export async function resetPassword(
  db: Db,
  options: { userId: string; password: string; keepSessionId?: string },
) {
  if (!isId(options.userId)) throw notFound("User");
  const [target] = await db.select(publicColumns).from(users).where(eq(users.id, options.userId));
  if (!target) throw notFound("User");
  const { sessionsEnded } = await setPassword(db, options);
  return { user: target, sessionsEnded };
}

/** The caller's session id when it is `userId`'s own session: the one to keep. */
export function ownSessionId(c: Context<AppEnv>, userId: string): string | undefined {
  const credential = c.get("credential");
  return credential?.kind === "session" && currentUser(c).id === userId
    ? credential.sessionId
    : undefined;
}

/** Removes a user and its sessions and tokens; refuses when it still owns data sources. */
export async function removeUser(db: Db, actorId: string, userId: string) {
  if (userId === actorId) throw conflict("You cannot remove yourself");
  if (!isId(userId)) throw notFound("User");
  const [target] = await db.select(publicColumns).from(users).where(eq(users.id, userId));
  if (!target) throw notFound("User");
  const [owned] = await db.select({ n: count() }).from(dataSources)
    .where(eq(dataSources.createdById, userId));
  if (Number(owned.n) > 0) {
    throw conflict(
      `${target.email} owns ${owned.n} data source(s): delete them or ask the user to, first`,
    );
  }
  await db.delete(users).where(eq(users.id, userId));
  return target;
}

export function usersApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireAdmin);

  app.get("/", async (c) => c.json(await listUsers(deps.db)));

  app.post("/", validate("json", newUserSchema), async (c) => {
    const created = await createUser(deps.db, c.req.valid("json"));
    if (!created) throw conflict("A user with this email already exists");
    await audit(c, deps, {
      action: "USER_CREATE",
      entityType: "User",
      entityId: created.id,
      outcome: "success",
      details: { email: created.email, role: created.role },
    });
    return c.json(created, 201);
  });

  app.patch("/:id", validate("json", updateUserSchema), async (c) => {
    const { role, password } = c.req.valid("json");
    const id = c.req.param("id");
    // The role first: its refusals (last administrator) leave the password unchanged too.
    let updated = role ? await changeRole(deps.db, currentUser(c).id, id, role) : undefined;
    let sessionsEnded: number | undefined;
    if (password !== undefined) {
      const reset = await resetPassword(deps.db, {
        userId: id,
        password,
        keepSessionId: ownSessionId(c, id),
      });
      updated ??= reset.user;
      sessionsEnded = reset.sessionsEnded;
    }
    await audit(c, deps, {
      action: "USER_UPDATE",
      entityType: "User",
      entityId: updated!.id,
      outcome: "success",
      details: password === undefined ? { role } : { role, passwordChanged: true, sessionsEnded },
    });
    return c.json(updated);
  });

  app.delete("/:id", async (c) => {
    const removed = await removeUser(deps.db, currentUser(c).id, c.req.param("id"));
    await audit(c, deps, {
      action: "USER_DELETE",
      entityType: "User",
      entityId: removed.id,
      outcome: "success",
      details: { email: removed.email },
    });
    return c.body(null, 204);
  });

  return app;
}
