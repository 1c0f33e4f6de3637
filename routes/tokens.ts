/** Bearer API tokens for scripts: created (shown once), listed, revoked. */
import { and, desc, eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { isId, newId } from "../db/ids.ts";
import { apiTokens } from "../db/schema.ts";
import { audit } from "./_audit.ts";
import { currentUser, newApiToken, requireUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { notFound } from "./_errors.ts";
import { validate } from "./_validate.ts";

/** A token lives this long unless its creator chooses otherwise. */
export const DEFAULT_TOKEN_DAYS = 90;
/** The longest lifetime a token can be given, short of never expiring. */
export const MAX_TOKEN_DAYS = 3650;

export const createTokenSchema = z.object({
  name: z.string().trim().min(1, "Name is required").max(100),
  expiresInDays: z.number().int("Must be a whole number of days")
    .min(1, "At least 1 day").max(MAX_TOKEN_DAYS, `At most ${MAX_TOKEN_DAYS} days`)
    .nullable().optional()
    .describe(`Days until the token stops working (default ${DEFAULT_TOKEN_DAYS}); null: never`),
});

const DAY_MS = 24 * 60 * 60 * 1000;

/** When a token made now with `expiresInDays` expires; null for never. */
export function tokenExpiry(expiresInDays: number | null | undefined, now = Date.now()) {
  if (expiresInDays === null) return null;
  return new Date(now + (expiresInDays ?? DEFAULT_TOKEN_DAYS) * DAY_MS);
}

/** Creates a token for a user; returns the only copy of its value. */
export async function createApiToken(
  deps: AppDeps,
  userId: string,
  input: z.infer<typeof createTokenSchema>,
) {
  const { token, tokenHash } = newApiToken();
  const [row] = await deps.db.insert(apiTokens).values({
    id: newId(),
    userId,
    name: input.name,
    tokenHash,
    expiresAt: tokenExpiry(input.expiresInDays),
  }).returning({
    id: apiTokens.id,
    name: apiTokens.name,
    createdAt: apiTokens.createdAt,
    expiresAt: apiTokens.expiresAt,
  });
  return { ...row, token };
}

export function listApiTokens(deps: AppDeps, userId: string) {
  return deps.db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      createdAt: apiTokens.createdAt,
      lastUsedAt: apiTokens.lastUsedAt,
      expiresAt: apiTokens.expiresAt,
    })
    .from(apiTokens)
    .where(eq(apiTokens.userId, userId))
    .orderBy(desc(apiTokens.createdAt));
}

/** Deletes one of the user's tokens; false when it has no such token. */
export async function revokeApiToken(deps: AppDeps, userId: string, id: string) {
  if (!isId(id)) return false;
  const deleted = await deps.db.delete(apiTokens)
    .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId)))
    .returning({ id: apiTokens.id });
  return deleted.length > 0;
}

export function tokensApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use(requireUser);

  app.post("/", validate("json", createTokenSchema), async (c) => {
    const user = currentUser(c);
    const created = await createApiToken(deps, user.id, c.req.valid("json"));
    await audit(c, deps, {
      action: "TOKEN_CREATE",
      entityType: "ApiToken",
      entityId: created.id,
      outcome: "success",
      details: { name: created.name, expiresAt: created.expiresAt?.toISOString() ?? null },
    });
    return c.json(created, 201);
  });

  app.get("/", async (c) => c.json(await listApiTokens(deps, currentUser(c).id)));

  app.delete("/:id", async (c) => {
    const id = c.req.param("id");
    if (!await revokeApiToken(deps, currentUser(c).id, id)) throw notFound("Token");
    await audit(c, deps, {
      action: "TOKEN_DELETE",
      entityType: "ApiToken",
      entityId: id,
      outcome: "success",
    });
    return c.body(null, 204);
  });

  return app;
}
