/** Creating users, shared by the API, the setup page, the start-up admin and user:create. */
import { sql } from "drizzle-orm";
import { z } from "zod";
import { hashPassword } from "../vault/password.ts";
import { newId } from "./ids.ts";
import type { Db } from "./mod.ts";
import { ROLES, users } from "./schema.ts";

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
