/** One JSON log line and the HTTP metrics for every request. */
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { log, metrics, withLogContext } from "../telemetry.ts";
import type { AppEnv } from "./_env.ts";

const logger = log("http");

export function observeRequests(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    try {
      await withLogContext({ requestId: c.get("requestId") }, next);
    } finally {
      const ms = performance.now() - started;
      const status = c.res.status;
      const route = routePath(c, -1) || "unmatched";
      metrics.httpRequests.inc({ method: c.req.method, route, status: String(status) });
      metrics.httpDuration.observe({ method: c.req.method, route }, ms / 1000);
      const fields = {
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status,
        ms: Math.round(ms * 100) / 100,
        userId: c.get("user")?.id ?? null,
      };
      if (status >= 500) logger.error("HTTP request", fields);
      else logger.info("HTTP request", fields);
    }
  };
}
