/** Page routes need a signed-in user: others go to /login and come back afterwards. */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./_env.ts";

export const requirePage: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("user")) return next();
  const url = new URL(c.req.url);
  const back = c.req.header("hx-request") === "true"
    ? new URL(c.req.header("hx-current-url") ?? url.href, url).pathname
    : url.pathname + url.search;
  const target = `/login?next=${encodeURIComponent(back)}`;
  if (c.req.header("hx-request") === "true") {
    // htmx follows HX-Redirect with a full page load instead of swapping the login form in.
    c.header("HX-Redirect", target);
    return c.body(null, 401);
  }
  return c.redirect(target, 302);
};
