/**
 * The app's own PostgreSQL going away: the API answers 503 with the error shape and health
 * says so, and both recover without a restart when it comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../config.ts";
import { openDatabase } from "../db/mod.ts";
import { createDeps } from "../main.ts";
import { createApp } from "../routes/mod.ts";
import { verifyKeyring } from "../vault/keys.ts";
import { createVault, generateKeyHex, parseKeyring } from "../vault/mod.ts";
import { createScratchDatabase } from "./helpers/app.ts";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp_proxy.ts";

let proxy: TcpProxy;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let app: ReturnType<typeof createApp>;
let close: () => Promise<void>;

beforeAll(async () => {
  scratch = await createScratchDatabase();
  const target = new URL(scratch.url);
  proxy = await startTcpProxy({ hostname: target.hostname, port: Number(target.port) });
  target.port = String(proxy.port);
  const database = await openDatabase({ url: target.href, max: 2 });
  const vault = await createVault(parseKeyring(generateKeyHex()));
  await verifyKeyring(database.db, vault);
  const deps = createDeps({ config: parseConfig({ JOBS: "false" }), database, vault });
  app = createApp(deps);
  close = () => database.close();
});
afterAll(async () => {
  await close();
  await proxy.close();
  await scratch.drop();
});

describe("app database unavailable", () => {
  it("answers 503 with a clear body, and recovers when the database returns", async () => {
    expect((await app.request("/api/health")).status).toBe(200);
    await proxy.down();

    const health = await app.request("/api/health");
    expect(health.status).toBe(503);
    const body = await health.json();
    expect(body).toMatchObject({ status: "unavailable", database: { ok: false } });

    const api = await app.request("/api/data-sources", {
      headers: { authorization: "Bearer dds_whatever" },
    });
    expect(api.status).toBe(503);
    expect(await api.json()).toEqual({
      error: "The app database is unavailable; try again shortly",
      code: "DATABASE_UNAVAILABLE",
    });

    proxy.up();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await app.request("/api/health")).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
    const after = await app.request("/api/data-sources", {
      headers: { authorization: "Bearer dds_whatever" },
    });
    expect(after.status).toBe(401);
  });
});
