// deno-lint-ignore-file no-explicit-any
/**
 * The sync API end to end, on both app databases (PGlite: batched inserts; PostgreSQL:
 * COPY): a PostgreSQL source on the real server is synced in full and incrementally into
 * ds_<source id>, runs are listed newest first with totals, metrics and audit rows, a run is
 * cancelled while it streams (a REST source whose second page never comes), validation and
 * ownership are enforced, and the sync settings keep a cron schedule with its next run.
 */
import { eq } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLogs, dataSources } from "../../db/schema.ts";
import { registry } from "../../telemetry.ts";
import { startSyncEngine, type SyncEngine } from "../../sync/mod.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { createScratchDatabase, startTestApp, type TestApp } from "../helpers/app.ts";
import { json, startHttpServer, type TestServer } from "../helpers/http_fixtures.ts";
import { rawRows, waitFor } from "../helpers/sync.ts";

let t: TestApp;
let alice: string;
let bob: string;
let source: { url: string; drop(): Promise<void> };
let sql: postgres.Sql;
let engine: SyncEngine | undefined;
let pgSourceId: string;
let api: TestServer;
let releaseSecondPage: () => void = () => {};

const ROWS = 1_200;

async function finished(sourceId: string, logId: string): Promise<any> {
  return await waitFor(`sync ${logId} to end`, async () => {
    const reply = await t.call("GET", `/api/data-sources/${sourceId}/sync-logs/${logId}`, {
      cookie: alice,
    });
    const status = reply.body?.status;
    return status === "SUCCEEDED" || status === "FAILED" || status === "CANCELLED"
      ? reply.body
      : undefined;
  }, 60_000);
}

function startEngine() {
  engine = startSyncEngine(t.deps, {
    pollMs: 50,
    heartbeatMs: 100,
    tickMs: 0,
    tuning: { batchSize: 500, progressMs: 0 },
  });
}

beforeAll(async () => {
  source = await createScratchDatabase();
  sql = postgres(source.url, { max: 2, onnotice: () => {} });
  await sql.unsafe(`
    create table orders (
      id integer primary key,
      customer text not null,
      qty integer,
      price numeric(10,2),
      updated_at timestamptz not null,
      meta jsonb
    );
    insert into orders
      select g, 'customer ' || g, g % 7, g * 1.25, '2025-01-01T00:00:00Z'::timestamptz + g * interval '1 minute',
             jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g))
        from generate_series(1, ${ROWS}) g;
    create table "Odd Name" ("Key" integer primary key, "Value ""quoted""" text);
    insert into "Odd Name" values (1, 'one'), (2, 'two');
  `);
  api = startHttpServer(async (_request, url) => {
    const page = Number(url.searchParams.get("page") ?? 1);
    // Discovery samples only the first page; the run's read waits here for the second.
    if (page === 2) await new Promise<void>((resolve) => (releaseSecondPage = resolve));
    const items = page > 3 ? [] : Array.from({ length: 600 }, (_, i) => ({
      id: (page - 1) * 600 + i + 1,
      name: `item ${i}`,
    }));
    return json({ items });
  });
  t = await startTestApp({ env: { ALLOW_PRIVATE_NETWORKS: "true" } });
  await t.user("alice@example.com", "alice-password");
  await t.user("bob@example.com", "bob-password-1");
  alice = await t.login("alice@example.com", "alice-password");
  bob = await t.login("bob@example.com", "bob-password-1");
  const url = new URL(source.url);
  const created = await t.call("POST", "/api/data-sources", {
    cookie: alice,
    json: {
      name: "Shop",
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: 5432,
      database: url.pathname.slice(1),
      username: "postgres",
      password: "unused-with-trust-auth",
    },
  });
  expect(created.status).toBe(201);
  pgSourceId = created.body.id;
});

afterAll(async () => {
  releaseSecondPage();
  await engine?.stop();
  await api?.close();
  await t?.close();
  await sql?.end();
  await source?.drop();
});

describe("requests", () => {
  it("queues a run: 202 with its log id, QUEUED until a worker takes it", async () => {
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, { cookie: alice });
    expect(reply.status).toBe(202);
    expect(Object.keys(reply.body)).toEqual(["syncLogId"]);
    const logs = await t.call("GET", `/api/data-sources/${pgSourceId}/sync-logs`, {
      cookie: alice,
    });
    expect(logs.body[0]).toMatchObject({
      id: reply.body.syncLogId,
      status: "QUEUED",
      mode: "full_refresh",
      trigger: "manual",
      success: false,
    });
  });

  it("answers 409 while a run of the source is queued", async () => {
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      json: {},
    });
    expect(reply.status).toBe(409);
    expect(reply.body.code).toBe("SYNC_IN_PROGRESS");
  });

  it("cancels a queued run at once", async () => {
    const [queued] = (await t.call("GET", `/api/data-sources/${pgSourceId}/sync-logs`, {
      cookie: alice,
    })).body;
    const reply = await t.call(
      "POST",
      `/api/data-sources/${pgSourceId}/sync-logs/${queued.id}/cancel`,
      { cookie: alice },
    );
    expect(reply.status).toBe(202);
    expect(reply.body.status).toBe("cancelled");
    const after = await t.call("GET", `/api/data-sources/${pgSourceId}/sync-logs/${queued.id}`, {
      cookie: alice,
    });
    expect(after.body).toMatchObject({ status: "CANCELLED", success: false });
    const again = await t.call(
      "POST",
      `/api/data-sources/${pgSourceId}/sync-logs/${queued.id}/cancel`,
      { cookie: alice },
    );
    expect(again.status).toBe(409);
  });

  it("refuses a bad mode, unknown fields and a body that is not JSON with 400", async () => {
    for (const body of [{ mode: "sideways" }, { streams: [] }, { extra: true }]) {
      const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
        cookie: alice,
        json: body,
      });
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body.code).toBe("VALIDATION_ERROR");
      expect(reply.body.details.length).toBeGreaterThan(0);
    }
    const broken = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(broken.status).toBe(400);
  });

  it("keeps other users out (403) and says 404 for a missing source", async () => {
    for (
      const [method, path] of [
        ["POST", `/api/data-sources/${pgSourceId}/sync`],
        ["GET", `/api/data-sources/${pgSourceId}/sync-logs`],
        ["GET", `/api/data-sources/${pgSourceId}/sync-settings`],
      ]
    ) {
      const reply = await t.call(method, path, { cookie: bob });
      expect(reply.status, path).toBe(403);
    }
    const missing = await t.call("POST", "/api/data-sources/nosuchsource00000000000/sync", {
      cookie: alice,
    });
    expect(missing.status).toBe(404);
    const anonymous = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`);
    expect(anonymous.status).toBe(401);
  });
});

describe("runs", () => {
  let firstLogId: string;

  it("loads every stream of a PostgreSQL source in full", async () => {
    startEngine();
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, { cookie: alice });
    expect(reply.status).toBe(202);
    firstLogId = reply.body.syncLogId;
    const log = await finished(pgSourceId, firstLogId);
    expect(log, log.errorMessage).toMatchObject({
      status: "SUCCEEDED",
      success: true,
      recordsSync: ROWS + 2,
      mode: "full_refresh",
      streams: { "public.orders": ROWS, "public.Odd Name": 2 },
    });
    expect(log.duration).toBeGreaterThanOrEqual(0);
    expect(log.completedAt).not.toBeNull();
    const schema = destinationSchema(pgSourceId);
    const rows = await rawRows<any>(
      t.deps.database,
      `select id, customer, qty, price::text as price, updated_at, meta from "${schema}"."orders"
        order by id limit 2`,
    );
    expect(rows[0]).toMatchObject({ customer: "customer 1", qty: 1, price: "1.25" });
    expect(Number(rows[0].id)).toBe(1);
    expect(new Date(rows[0].updated_at).toISOString()).toBe("2025-01-01T00:01:00.000Z");
    expect(rows[0].meta).toEqual({ n: 1, tags: ["a", 1] });
    const [count] = await rawRows<any>(
      t.deps.database,
      `select count(*)::int as n from "${schema}"."orders"`,
    );
    expect(count.n).toBe(ROWS);
    const odd = await rawRows<any>(
      t.deps.database,
      `select "Key" as key, "Value ""quoted""" as value from "${schema}"."odd_name" order by 1`,
    );
    expect(odd).toEqual([{ key: 1, value: "one" }, { key: 2, value: "two" }]);
    const results = Object.fromEntries(log.streamResults.map((r: any) => [r.stream, r]));
    expect(results["public.orders"]).toMatchObject({
      table: `${schema}.orders`,
      status: "SUCCEEDED",
      cursorColumn: "updated_at",
    });
  });

  it("keeps totals on the source, an audit row and metrics", async () => {
    const reply = await t.call("GET", `/api/data-sources/${pgSourceId}`, { cookie: alice });
    expect(reply.body).toMatchObject({ totalRecords: ROWS + 2, totalSyncs: 2, failedSyncs: 0 });
    expect(reply.body.lastSuccessfulSync).not.toBeNull();
    const audits = await t.deps.db.select().from(auditLogs)
      .where(eq(auditLogs.action, "DATA_SOURCE_SYNC"));
    const ours = audits.find((row) => row.metadata.syncLogId === firstLogId);
    expect(ours?.metadata).toMatchObject({ outcome: "success", status: "SUCCEEDED" });
    expect(ours?.userId).not.toBeNull();
    const text = await registry.metrics();
    expect(text).toMatch(/sync_records_total\{type="POSTGRESQL"\} \d+/);
    expect(text).toMatch(/sync_runs_total\{type="POSTGRESQL",status="SUCCEEDED"\} \d+/);
    expect(text).toMatch(/sync_run_duration_seconds_count\{type="POSTGRESQL",status="SUCCEEDED"\}/);
  });

  it("loads only rows past the cursor incrementally, updates included", async () => {
    await sql.unsafe(`
      update orders set customer = 'changed', updated_at = '2030-01-01T00:00:00Z' where id in (5, 6);
      insert into orders values (${ROWS + 1}, 'new one', 1, 9.99, '2030-01-02T00:00:00Z', null);
    `);
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      json: { mode: "incremental", streams: ["public.orders"] },
    });
    expect(reply.status).toBe(202);
    const log = await finished(pgSourceId, reply.body.syncLogId);
    expect(log, log.errorMessage).toMatchObject({
      status: "SUCCEEDED",
      mode: "incremental",
      recordsSync: 3,
      streams: { "public.orders": 3 },
    });
    const schema = destinationSchema(pgSourceId);
    const rows = await rawRows<any>(
      t.deps.database,
      `select id, customer from "${schema}"."orders" where id in (4, 5, 6, ${
        ROWS + 1
      }) order by id`,
    );
    expect(rows.map((row) => [Number(row.id), row.customer])).toEqual([
      [4, "customer 4"],
      [5, "changed"],
      [6, "changed"],
      [ROWS + 1, "new one"],
    ]);
    const [count] = await rawRows<any>(
      t.deps.database,
      `select count(*)::int as n from "${schema}"."orders"`,
    );
    expect(count.n).toBe(ROWS + 1);
    // Nothing changed since: an incremental run reads nothing.
    const again = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      json: { mode: "incremental", streams: ["orders"] },
    });
    const quiet = await finished(pgSourceId, again.body.syncLogId);
    expect(quiet).toMatchObject({ status: "SUCCEEDED", recordsSync: 0 });
  });

  it("reflects deleted source rows after a full refresh", async () => {
    await sql.unsafe(`delete from orders where id > 1000`);
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      json: { streams: ["public.orders"] },
    });
    const log = await finished(pgSourceId, reply.body.syncLogId);
    expect(log.status).toBe("SUCCEEDED");
    const [count] = await rawRows<any>(
      t.deps.database,
      `select count(*)::int as n from "${destinationSchema(pgSourceId)}"."orders"`,
    );
    expect(count.n).toBe(1000);
    const source = await t.call("GET", `/api/data-sources/${pgSourceId}`, { cookie: alice });
    expect(source.body.totalRecords).toBe(1002);
  });

  it("refuses streams the source does not have, now that it was discovered", async () => {
    const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
      cookie: alice,
      json: { streams: ["public.orders", "public.nope"] },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.details).toEqual([
      { path: "streams.1", message: 'No stream "public.nope" in the source\'s schema' },
    ]);
  });

  it("lists runs newest first", async () => {
    const reply = await t.call("GET", `/api/data-sources/${pgSourceId}/sync-logs?limit=3`, {
      cookie: alice,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(3);
    const created = reply.body.map((log: any) => Date.parse(log.createdAt));
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    const bad = await t.call("GET", `/api/data-sources/${pgSourceId}/sync-logs?limit=0`, {
      cookie: alice,
    });
    expect(bad.status).toBe(400);
  });

  it("records a failed run with the source's reason and counts it", async () => {
    await sql.unsafe(`alter table orders rename to orders_gone`);
    try {
      const reply = await t.call("POST", `/api/data-sources/${pgSourceId}/sync`, {
        cookie: alice,
        json: { streams: ["orders"] },
      });
      // Validated against the newest discovery, which still has it; the run finds it gone.
      expect(reply.status).toBe(202);
      const log = await finished(pgSourceId, reply.body.syncLogId);
      expect(log.status).toBe("FAILED");
      expect(log.errorMessage).toMatch(/orders/);
      // The table loaded before stays as it was.
      const [count] = await rawRows<any>(
        t.deps.database,
        `select count(*)::int as n from "${destinationSchema(pgSourceId)}"."orders"`,
      );
      expect(count.n).toBe(1000);
      const sourceRow = await t.call("GET", `/api/data-sources/${pgSourceId}`, { cookie: alice });
      expect(sourceRow.body.failedSyncs).toBe(1);
    } finally {
      await sql.unsafe(`alter table orders_gone rename to orders`);
      // Discovered again, so the settings below may name it.
      await t.call("GET", `/api/data-sources/${pgSourceId}/schema`, { cookie: alice });
    }
  });

  it("records a run whose stored secret no longer decrypts as failed, naming why", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: {
        name: "Tampered",
        type: "POSTGRESQL",
        host: "127.0.0.1",
        database: new URL(source.url).pathname.slice(1),
        username: "postgres",
        password: "secret-1",
      },
    });
    const id = created.body.id;
    // The envelope of another source's password: bound to that row, it must not decrypt.
    const [other] = await t.deps.db.select().from(dataSources).where(
      eq(dataSources.id, pgSourceId),
    );
    await t.deps.db.update(dataSources).set({ password: other.password })
      .where(eq(dataSources.id, id));
    const reply = await t.call("POST", `/api/data-sources/${id}/sync`, { cookie: alice });
    const log = await finished(id, reply.body.syncLogId);
    expect(log.status).toBe("FAILED");
    expect(log.errorMessage).toMatch(/decrypt/i);
    expect(log.errorMessage).not.toContain("unused-with-trust-auth");
  });

  it("cancels a run while it streams, leaving no table behind", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: {
        name: "Items API",
        type: "REST_API",
        configuration: {
          endpoint: `${api.origin}/items`,
          recordsPath: "items",
          pagination: { type: "page", maxPages: 10 },
        },
      },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id;
    const reply = await t.call("POST", `/api/data-sources/${id}/sync`, { cookie: alice });
    expect(reply.status).toBe(202);
    const logId = reply.body.syncLogId;
    // The first page is loaded; the second never comes.
    await waitFor("the run to stream its first batch", async () => {
      const log = await t.call("GET", `/api/data-sources/${id}/sync-logs/${logId}`, {
        cookie: alice,
      });
      return log.body.status === "RUNNING" && log.body.recordsSync >= 500;
    });
    const cancel = await t.call("POST", `/api/data-sources/${id}/sync-logs/${logId}/cancel`, {
      cookie: alice,
    });
    expect(cancel.status).toBe(202);
    expect(cancel.body.status).toBe("requested");
    const log = await finished(id, logId);
    expect(log).toMatchObject({ status: "CANCELLED", success: false });
    const tables = await rawRows<any>(
      t.deps.database,
      `select tablename from pg_tables where schemaname = '${destinationSchema(id)}'`,
    );
    expect(tables).toEqual([]);
    const audits = await t.deps.db.select().from(auditLogs)
      .where(eq(auditLogs.action, "DATA_SOURCE_SYNC_CANCEL"));
    expect(audits.some((row) => row.metadata.syncLogId === logId)).toBe(true);
    releaseSecondPage();
  });
});

describe("settings", () => {
  it("keeps a schedule with its next run, the streams and the mode", async () => {
    const reply = await t.call("PUT", `/api/data-sources/${pgSourceId}/sync-settings`, {
      cookie: alice,
      json: {
        schedule: "30 2 * * *",
        timezone: "UTC",
        mode: "incremental",
        streams: ["public.orders"],
        cursorColumns: { "public.orders": "updated_at" },
      },
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      schedule: "30 2 * * *",
      mode: "incremental",
      streams: ["public.orders"],
    });
    const next = new Date(reply.body.nextRunAt);
    expect(next.getUTCHours()).toBe(2);
    expect(next.getUTCMinutes()).toBe(30);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    const read = await t.call("GET", `/api/data-sources/${pgSourceId}/sync-settings`, {
      cookie: alice,
    });
    expect(read.body).toEqual(reply.body);
  });

  it("refuses a schedule that is not cron, runs too often, or a time zone that does not exist", async () => {
    for (
      const body of [
        { schedule: "every day" },
        { schedule: "* * * * * *" },
        { schedule: "0 3 * * *", timezone: "Mars/Olympus" },
        { streams: ["public.nope"] },
      ]
    ) {
      const reply = await t.call("PUT", `/api/data-sources/${pgSourceId}/sync-settings`, {
        cookie: alice,
        json: body,
      });
      expect(reply.status, JSON.stringify(body)).toBe(400);
    }
  });

  it("clears the schedule with null", async () => {
    const reply = await t.call("PUT", `/api/data-sources/${pgSourceId}/sync-settings`, {
      cookie: alice,
      json: { schedule: null },
    });
    expect(reply.body).toMatchObject({ schedule: null, nextRunAt: null, mode: "incremental" });
  });
});
