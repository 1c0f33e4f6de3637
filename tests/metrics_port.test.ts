/**
 * METRICS_PORT: `/metrics` served on its own port by a started app, and no longer on the
 * main one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../config.ts";
import { type Running, start } from "../main.ts";
import { freePort } from "./faults/_app_process.ts";

let running: Running;
let dataDir: string;
const ports = { app: freePort(), metrics: freePort() };

beforeAll(async () => {
  dataDir = await Deno.makeTempDir({ prefix: "dafel-metrics-port-" });
  running = await start(parseConfig({
    DATA_DIR: dataDir,
    PORT: String(ports.app),
    METRICS_PORT: String(ports.metrics),
    DEMO_DB: "false",
    JOBS: "false",
  }));
}, 60_000);
afterAll(async () => {
  await running?.close();
  await Deno.remove(dataDir, { recursive: true });
});

describe("METRICS_PORT", () => {
  it("serves Prometheus text on the metrics port, and nothing else there", async () => {
    const metrics = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    expect(await metrics.text()).toContain("# TYPE http_requests_total counter");

    const other = await fetch(`http://127.0.0.1:${ports.metrics}/api/health`);
    expect(other.status).toBe(404);
    await other.body?.cancel();
  });

  it("leaves /metrics off the main port, which still serves the app", async () => {
    // An unknown path on the main port is a page: the signed-out visitor goes to the login.
    const main = await fetch(`http://127.0.0.1:${ports.app}/metrics`, { redirect: "manual" });
    expect(main.status).toBe(302);
    expect(main.headers.get("location")).toMatch(/^\/login/);
    expect(await main.text()).not.toContain("http_requests_total");
    const health = await fetch(`http://127.0.0.1:${ports.app}/api/health`);
    expect(health.status).toBe(200);
    await health.body?.cancel();
  });
});
