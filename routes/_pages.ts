/** Page routes need a signed-in user: others go to /login and come back afterwards. */
import type { Context, Next } from "hono";
import type { AppEnv } from "./_env.ts";

export async function requirePage(c: Context<AppEnv>, next: Next): Promise<Response | void> {
  if (c.get("user")) {
    await next();
    return;
  }
  const url = new URL(c.req.url);
  const fromHtmx = c.req.header("hx-request") === "true";
  const back = fromHtmx
    ? new URL(c.req.header("hx-current-url") ?? url.href, url).pathname
    : url.pathname + url.search;
  const target = `/login?next=${encodeURIComponent(back)}`;
  if (fromHtmx) {
    // htmx follows HX-Redirect with a full page load instead of swapping the login form in.
    c.header("HX-Redirect", target);
    return c.body(null, 401);
  }
  return c.redirect(target, 302);
}
