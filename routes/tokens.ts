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

export const createTokenSchema = z.object({
  name: z.string().trim().min(1, "Name is required").max(100),
});

/** Creates a token for a user; returns the only copy of its value. */
export async function createApiToken(deps: AppDeps, userId: string, name: string) {
  const { token, tokenHash } = newApiToken();
  const [row] = await deps.db.insert(apiTokens).values({ id: newId(), userId, name, tokenHash })
    .returning({ id: apiTokens.id, name: apiTokens.name, createdAt: apiTokens.createdAt });
  return { ...row, token };
}

export function listApiTokens(deps: AppDeps, userId: string) {
  return deps.db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      createdAt: apiTokens.createdAt,
      lastUsedAt: apiTokens.lastUsedAt,
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
    const created = await createApiToken(deps, user.id, c.req.valid("json").name);
    await audit(c, deps, {
      action: "TOKEN_CREATE",
      entityType: "ApiToken",
      entityId: created.id,
      outcome: "success",
      details: { name: created.name },
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
