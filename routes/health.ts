/** `GET /api/health` (no auth, no secrets) and `GET /metrics` (Prometheus text). */
import { Hono } from "hono";
import { poolSummary } from "../connectors/_pools.ts";
import { pingDatabase } from "../db/mod.ts";
import { registry } from "../telemetry.ts";
import type { AppDeps, AppEnv } from "./_env.ts";

const PING_TIMEOUT_MS = 3000;

async function databaseHealth(deps: AppDeps) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const latency = await Promise.race([
      pingDatabase(deps.db),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), PING_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, kind: deps.database.kind, latencyMs: Math.round(latency * 100) / 100 };
  } catch (error) {
    const reason = error instanceof Error && error.message === "timed out"
      ? `no answer within ${PING_TIMEOUT_MS} ms`
      : "unreachable";
    return { ok: false, kind: deps.database.kind, error: `App database ${reason}` };
  } finally {
    clearTimeout(timer);
  }
}

export function healthApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const database = await databaseHealth(deps);
    const body = {
      status: database.ok ? "ok" : "unavailable",
      database,
      pools: poolSummary(),
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    };
    return c.json(body, database.ok ? 200 : 503);
  });
  return app;
}

export async function metricsResponse(): Promise<Response> {
  return new Response(await registry.metrics(), {
    headers: { "content-type": registry.contentType },
  });
}
