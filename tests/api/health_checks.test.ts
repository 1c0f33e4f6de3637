// deno-lint-ignore-file no-explicit-any
/**
 * What the statuses mean over a source's life: a connected source whose server goes away is
 * DISCONNECTED (reachability, not settings), the health checks keep trying it with growing
 * pauses and bring it back to CONNECTED when the server returns; a wrong setting is ERROR.
 * The source is the real PostgreSQL behind a TCP proxy the test takes down and up.
 */
import { desc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forgetBreaker } from "../../connectors/_breaker.ts";
import { connectionTests, dataSources, jobs } from "../../db/schema.ts";
import { enqueueHealthChecks, runHealthCheck } from "../../sync/health.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp_proxy.ts";

let t: TestApp;
let alice: string;
let proxy: TcpProxy;

beforeAll(async () => {
  t = await startTestApp();
  await t.user("alice@example.com", "alice-password");
  alice = await t.login("alice@example.com", "alice-password");
  proxy = startTcpProxy({ hostname: "127.0.0.1", port: 5432 });
});
afterAll(async () => {
  await t?.close();
  await proxy?.down();
});

async function create(body: Record<string, unknown>): Promise<string> {
  const reply = await t.call("POST", "/api/data-sources", { cookie: alice, json: body });
  expect(reply.status, reply.text).toBe(201);
  return reply.body.id;
}

function pgSource(overrides: Record<string, unknown> = {}) {
  return {
    name: `PG ${crypto.randomUUID().slice(0, 8)}`,
    type: "POSTGRESQL",
    host: "127.0.0.1",
    port: proxy.port,
    database: "test",
    username: "postgres",
    password: "ignored-under-trust",
    configuration: { connectionTimeoutMillis: 2_000 },
    ...overrides,
  };
}

async function row(id: string) {
  const [found] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
  return found;
}

async function healthCheck(id: string) {
  const controller = new AbortController();
  return await runHealthCheck(t.deps, {
    job: { dataSourceId: id },
    signal: controller.signal,
  });
}

/** Whether a health check of `id` is queued in the slot of `now`. */
async function queuedAt(id: string, now: number): Promise<boolean> {
  await enqueueHealthChecks(t.deps.db, { now });
  const queued = await t.deps.db.select().from(jobs).where(eq(jobs.dataSourceId, id));
  // Each look leaves the queue as it found it, so the next one asks afresh.
  await t.deps.db.delete(jobs).where(eq(jobs.dataSourceId, id));
  return queued.some((job) => job.kind === "health_check");
}

describe("a connected source whose server goes away", () => {
  it("is DISCONNECTED, retried with growing pauses, and CONNECTED again when it returns", async () => {
    const id = await create(pgSource());
    const first = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(first.body.success, first.text).toBe(true);
    expect((await row(id)).status).toBe("CONNECTED");

    await proxy.down();
    expect(await healthCheck(id)).toMatchObject({ status: "failed", error: "CONNECTION_REFUSED" });
    let source = await row(id);
    expect(source.status).toBe("DISCONNECTED");
    expect(source.connectionError).toMatch(/refused/i);
    const [latest] = await t.deps.db.select().from(connectionTests)
      .where(eq(connectionTests.dataSourceId, id)).orderBy(desc(connectionTests.testedAt)).limit(1);
    expect(latest).toMatchObject({ success: false, trigger: "health" });

    // One failure: the next check is due 30 s later, not before.
    const last = source.lastConnectionTest!.getTime();
    expect(await queuedAt(id, last + 10_000)).toBe(false);
    expect(await queuedAt(id, last + 30_000)).toBe(true);

    // Three failures in a row: the pause has grown to 2 minutes.
    await healthCheck(id);
    await healthCheck(id);
    source = await row(id);
    expect(source.status).toBe("DISCONNECTED");
    const third = source.lastConnectionTest!.getTime();
    expect(await queuedAt(id, third + 60_000)).toBe(false);
    expect(await queuedAt(id, third + 120_000)).toBe(true);

    // A user's own test that fails the same way keeps it DISCONNECTED, and it stays due.
    const manual = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(manual.body).toMatchObject({ success: false, error: { code: "CONNECTION_REFUSED" } });
    source = await row(id);
    expect(source.status).toBe("DISCONNECTED");
    expect(await queuedAt(id, source.lastConnectionTest!.getTime() + 30 * 60_000)).toBe(true);

    // The server is back: the breaker's pause over, the next health check reconnects.
    proxy.up();
    forgetBreaker(id);
    expect(await healthCheck(id)).toEqual({ status: "succeeded" });
    expect(await row(id)).toMatchObject({ status: "CONNECTED", connectionError: null });
  });

  it("stays DISCONNECTED while the breaker holds tests back", async () => {
    const id = await create(pgSource());
    expect((await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice })).body.success)
      .toBe(true);
    await proxy.down();
    try {
      const outcomes: any[] = [];
      for (let i = 0; i < 8; i++) outcomes.push(await healthCheck(id));
      // The breaker opened on the way (a test it holds back is not tried at all)...
      const [latest] = await t.deps.db.select().from(connectionTests)
        .where(eq(connectionTests.dataSourceId, id)).orderBy(desc(connectionTests.testedAt))
        .limit(1);
      expect(latest.errorCode).toBe("UNKNOWN");
      // ...and what it says is not news about the server: the status is still DISCONNECTED.
      expect((await row(id)).status).toBe("DISCONNECTED");
    } finally {
      proxy.up();
      forgetBreaker(id);
    }
  });
});

describe("failures that point at the settings", () => {
  it("are ERROR, and so is an unreachable source that never connected", async () => {
    const wrongDatabase = await create(pgSource({ database: "dafel_no_such_database" }));
    const reply = await t.call("POST", `/api/data-sources/${wrongDatabase}/test`, {
      cookie: alice,
    });
    expect(reply.body).toMatchObject({ success: false, error: { code: "DATABASE_NOT_FOUND" } });
    expect((await row(wrongDatabase)).status).toBe("ERROR");

    await proxy.down();
    try {
      const neverConnected = await create(pgSource());
      const refused = await t.call("POST", `/api/data-sources/${neverConnected}/test`, {
        cookie: alice,
      });
      expect(refused.body).toMatchObject({ success: false, error: { code: "CONNECTION_REFUSED" } });
      // It was never shown to work: the settings are as suspect as the server.
      expect((await row(neverConnected)).status).toBe("ERROR");
      // A user's failed test is the user's to follow up: no health check retries it.
      const last = (await row(neverConnected)).lastConnectionTest!.getTime();
      expect(await queuedAt(neverConnected, last + 30 * 60_000)).toBe(false);
    } finally {
      proxy.up();
    }
  });
});
