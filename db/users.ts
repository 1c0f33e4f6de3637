/** Creating users, shared by the API, the setup page, the start-up admin and user:create. */
import { and, eq, ne, sql } from "drizzle-orm";
import { z } from "zod";
import { hashPassword } from "../vault/password.ts";
import { newId } from "./ids.ts";
import type { Db } from "./mod.ts";
import { ROLES, sessions, users } from "./schema.ts";

export const newUserSchema = z.object({
  email: z.email("Must be an email address").trim().toLowerCase().max(320),
  password: z.string().min(8, "Password must be at least 8 characters").max(1024),
  role: z.enum(ROLES).default("USER"),
});

export type NewUser = z.input<typeof newUserSchema>;

export type PublicUser = {
  id: string;
  email: string;
  role: (typeof ROLES)[number];
  createdAt: Date;
};

/** Inserts a user; `null` when the email is taken. */
export async function createUser(
  db: Db,
  input: z.output<typeof newUserSchema>,
): Promise<PublicUser | null> {
  const passwordHash = await hashPassword(input.password);
  const rows = await db
    .insert(users)
    .values({ id: newId(), email: input.email, passwordHash, role: input.role })
    .onConflictDoNothing()
    .returning({ id: users.id, email: users.email, role: users.role, createdAt: users.createdAt });
  return rows[0] ?? null;
}

/**
 * Replaces a user's password hash and ends that user's sessions in one transaction, all but
 * `keepSessionId` (the caller's own session when they change their own password). API
 * tokens are left alone: they are credentials the user manages on their own, listed and
 * revoked on /tokens. Returns how many sessions ended.
 */
export async function setPassword(
  db: Db,
  options: { userId: string; password: string; keepSessionId?: string },
): Promise<{ sessionsEnded: number }> {
  const passwordHash = await hashPassword(options.password);
  return await db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash }).where(eq(users.id, options.userId));
    const ended = await tx.delete(sessions).where(
      options.keepSessionId
        ? and(eq(sessions.userId, options.userId), ne(sessions.id, options.keepSessionId))
        : eq(sessions.userId, options.userId),
    ).returning({ id: sessions.id });
    return { sessionsEnded: ended.length };
  });
}

/**
 * Creates the first user as ADMIN only while no user exists, under a lock so two
 * simultaneous first visits cannot both become admin.
 */
export async function createFirstAdmin(
  db: Db,
  input: { email: string; password: string },
): Promise<PublicUser | null> {
  const parsed = newUserSchema.parse({ ...input, role: "ADMIN" });
  const passwordHash = await hashPassword(parsed.password);
  return await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(4242001)`);
    const [{ n }] = await tx.select({ n: sql<number>`count(*)::int` }).from(users);
    if (Number(n) > 0) return null;
    const [row] = await tx
      .insert(users)
      .values({ id: newId(), email: parsed.email, passwordHash, role: "ADMIN" })
      .returning({
        id: users.id,
        email: users.email,
        role: users.role,
        createdAt: users.createdAt,
      });
    return row;
  });
}
