/**
 * What page routes share: signed-in users only (others go to /login and come back), telling
 * an htmx fragment request from a page load, and redirects that work with and without htmx.
 */
import type { Context, Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./_env.ts";
import { ApiError } from "./_errors.ts";

/**
 * Signed-in users only; others go to /login and come back. For htmx requests a page that
 * answers 4xx (a form with its errors, a refusal, a 429 with when to retry) is sent as 200:
 * htmx only swaps successful responses, and the browser logs every failed request as a
 * console error. Full page loads keep the real status.
 */
export async function requirePage(c: Context<AppEnv>, next: Next): Promise<Response | void> {
  if (c.get("user")) {
    await next();
    const status = c.res.status;
    if (
      fromHtmx(c) && status >= 400 && status < 500 &&
      c.res.headers.get("content-type")?.startsWith("text/html")
    ) {
      c.res = new Response(c.res.body, { status: 200, headers: c.res.headers });
    }
    return;
  }
  const url = new URL(c.req.url);
  const byHtmx = c.req.header("hx-request") === "true";
  const back = byHtmx
    ? new URL(c.req.header("hx-current-url") ?? url.href, url).pathname
    : url.pathname + url.search;
  const target = `/login?next=${encodeURIComponent(back)}`;
  if (byHtmx) {
    // htmx follows HX-Redirect with a full page load instead of swapping the login form in
    // (and, like every htmx answer here, as 200: see above).
    c.header("HX-Redirect", target);
    return c.body(null, 200);
  }
  return c.redirect(target, 302);
}

/** True for a request made by htmx (a history restore is a page load: it wants the page). */
export function fromHtmx(c: Context): boolean {
  return c.req.header("hx-request") === "true" &&
    c.req.header("hx-history-restore-request") !== "true";
}

/**
 * True when htmx asks for the fragment that fills the element with this id; a page load,
 * a boosted link or a history restore gets the whole page.
 */
export function wantsFragment(c: Context, targetId: string): boolean {
  return fromHtmx(c) && c.req.header("hx-target") === targetId;
}

/**
 * After a form post: 303 for a browser, an htmx client-side navigation (history pushed)
 * for htmx, which would otherwise swap the next page into the element that asked.
 */
export function seeOther(c: Context, path: string): Response {
  if (fromHtmx(c)) {
    c.header("HX-Location", JSON.stringify({ path, target: "body" }));
    return c.body(null, 200);
  }
  return c.redirect(path, 303);
}

/** Page forms are small: refuse anything over 1 MiB before reading it. */
export const pageBodyLimit = bodyLimit({
  maxSize: 1024 * 1024,
  onError: () => {
    throw new ApiError(413, "PAYLOAD_TOO_LARGE", "The form is larger than 1 MiB");
  },
});

/** A form body, each name once (the last value wins, as for a single input). */
export async function formBody(c: Context): Promise<Record<string, string | File>> {
  return await c.req.parseBody();
}

/** One text value of a form body; undefined when absent or a file. */
export function field(body: Record<string, string | File>, name: string): string | undefined {
  const value = body[name];
  return typeof value === "string" ? value : undefined;
}
