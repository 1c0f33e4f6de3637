/** `/tokens`: create an API token (shown once), list and revoke your tokens. */
import { Hono } from "hono";
import { TokensPage } from "../views/tokens.tsx";
import { audit } from "./_audit.ts";
import { currentUser } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { notFound } from "./_errors.ts";
import { field, formBody, fromHtmx, pageBodyLimit, seeOther } from "./_pages.ts";
import {
  createApiToken,
  createTokenSchema,
  DEFAULT_TOKEN_DAYS,
  listApiTokens,
  revokeApiToken,
} from "./tokens.ts";

export function tokenPages(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("/tokens", pageBodyLimit);
  app.use("/tokens/*", pageBodyLimit);

  app.get("/tokens", async (c) => {
    const user = currentUser(c);
    return c.html(<TokensPage user={user} tokens={await listApiTokens(deps, user.id)} />);
  });

  app.post("/tokens", async (c) => {
    const user = currentUser(c);
    const body = await formBody(c);
    const name = field(body, "name") ?? "";
    const expires = field(body, "expires") ?? String(DEFAULT_TOKEN_DAYS);
    const parsed = createTokenSchema.safeParse({
      name,
      expiresInDays: expires === "never" ? null : Number(expires),
    });
    if (!parsed.success) {
      c.header("HX-Push-Url", "false");
      return c.html(
        <TokensPage
          user={user}
          tokens={await listApiTokens(deps, user.id)}
          name={name}
          expires={expires}
          error={parsed.error.issues[0].message}
        />,
        400,
      );
    }
    const created = await createApiToken(deps, user.id, parsed.data);
    await audit(c, deps, {
      action: "TOKEN_CREATE",
      entityType: "ApiToken",
      entityId: created.id,
      outcome: "success",
      details: { name: created.name, expiresAt: created.expiresAt?.toISOString() ?? null },
    });
    // The one response that carries the token: keep it out of every cache.
    c.header("Cache-Control", "no-store");
    c.header("HX-Push-Url", "/tokens");
    return c.html(
      <TokensPage
        user={user}
        tokens={await listApiTokens(deps, user.id)}
        created={{ name: created.name, token: created.token }}
      />,
    );
  });

  app.post("/tokens/:id/revoke", async (c) => {
    const user = currentUser(c);
    const id = c.req.param("id");
    if (!await revokeApiToken(deps, user.id, id)) throw notFound("Token");
    await audit(c, deps, {
      action: "TOKEN_DELETE",
      entityType: "ApiToken",
      entityId: id,
      outcome: "success",
    });
    // htmx replaces the row with nothing; a plain form goes back to the list.
    if (fromHtmx(c) && c.req.header("hx-target") === `token-${id}`) return c.html("");
    return seeOther(c, "/tokens");
  });

  return app;
}
