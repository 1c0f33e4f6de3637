// deno-lint-ignore-file no-explicit-any
/**
 * Talking to stored sources through the API, end to end: connection tests (shape, status,
 * history, audit, rate limit), schema, schema changes, preview, the demo database, pools,
 * the breaker and the metrics. The sources are the real PostgreSQL and MariaDB.
 */
import { eq } from "drizzle-orm";
import mysql2 from "mysql2/promise";
import postgresJs from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasPool } from "../../connectors/_pools.ts";
import { breakerState, testSource } from "../../connectors/operations.ts";
import { dataSources } from "../../db/schema.ts";
import { createScratchDatabase, startTestApp, type TestApp } from "../helpers/app.ts";
import { startTcpProxy } from "../helpers/tcp_proxy.ts";

let t: TestApp;
let admin: string;
let alice: string;
let scratch: { url: string; drop(): Promise<void> };
let database = "";
let remote: postgresJs.Sql;
let silent: Deno.Listener;
const silentConnections: Deno.Conn[] = [];
const mysqlDatabase = `dafel_t_api_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
let mysqlRoot: mysql2.Connection;

const SOURCE_SQL = `
create table customers (id int primary key, email text not null unique, name text);
create table orders (
  id int primary key,
  customer_id int not null references customers (id),
  total numeric(10, 2) not null
);
create view order_totals as select customer_id, sum(total) as amount from orders group by 1;
insert into customers values (1, 'ana@example.com', 'Ana'), (2, 'luis@example.com', 'Luis');
insert into orders values (1, 1, 10.50), (2, 1, 3.25), (3, 2, 99.00);
`;

function pgSource(overrides: Record<string, unknown> = {}) {
  return {
    name: `PG ${crypto.randomUUID().slice(0, 8)}`,
    type: "POSTGRESQL",
    host: "127.0.0.1",
    port: 5432,
    database,
    username: "postgres",
    password: "ignored-under-trust",
    ...overrides,
  };
}

async function create(cookie: string, body: Record<string, unknown>): Promise<string> {
  const reply = await t.call("POST", "/api/data-sources", { cookie, json: body });
  expect(reply.status, reply.text).toBe(201);
  return reply.body.id;
}

async function row(id: string) {
  const [found] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
  return found;
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

beforeAll(async () => {
  t = await startTestApp({ demo: true });
  await t.user("admin@example.com", "admin-password", "ADMIN");
  await t.user("alice@example.com", "alice-password");
  admin = await t.login("admin@example.com", "admin-password");
  alice = await t.login("alice@example.com", "alice-password");
  scratch = await createScratchDatabase();
  database = new URL(scratch.url).pathname.slice(1);
  remote = postgresJs(scratch.url, { max: 1, onnotice: () => {} });
  await remote.unsafe(SOURCE_SQL);
  mysqlRoot = await mysql2.createConnection({ host: "127.0.0.1", user: "root" });
  await mysqlRoot.query(`create database \`${mysqlDatabase}\``);
  await mysqlRoot.query(
    `create table \`${mysqlDatabase}\`.items (id int primary key, label varchar(20) unique)`,
  );
  await mysqlRoot.query(`insert into \`${mysqlDatabase}\`.items values (1, 'one'), (2, 'two')`);
  silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of silent) silentConnections.push(conn);
  })().catch(() => {});
});

afterAll(async () => {
  await t?.close();
  silent?.close();
  for (const conn of silentConnections) conn.close();
  await remote?.end();
  await scratch?.drop();
  await mysqlRoot?.query(`drop database if exists \`${mysqlDatabase}\``);
  await mysqlRoot?.end();
});

describe("POST /api/data-sources/:id/test", () => {
  it("answers the design's shape and records CONNECTED, the test time and the moving average", async () => {
    const id = await create(alice, pgSource());
    const first = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      success: true,
      message: expect.stringContaining("PostgreSQL"),
      responseTime: expect.any(Number),
      serverInfo: {
        version: expect.any(String),
        database,
        user: "postgres",
        host: "127.0.0.1",
        port: 5432,
        timezone: expect.any(String),
        encoding: "UTF8",
      },
    });
    expect(first.body.error).toBeUndefined();
    expect(first.body.stages.map((stage: any) => stage.name)).toEqual([
      "resolve",
      "connect",
      "authenticate",
      "query",
    ]);
    for (const stage of first.body.stages) {
      expect(stage).toMatchObject({ ok: true, ms: expect.any(Number) });
    }
    // The schema summary comes from a discovery run for the first successful test.
    expect(first.body.schema).toEqual(expect.arrayContaining([
      { tableName: "customers", columns: 3, rowCount: 2 },
      { tableName: "orders", columns: 3, rowCount: 3 },
    ]));
    const afterFirst = await row(id);
    expect(afterFirst.status).toBe("CONNECTED");
    expect(afterFirst.lastConnectionTest).toBeInstanceOf(Date);
    expect(afterFirst.connectionError).toBeNull();
    expect(afterFirst.avgResponseTime).toBeCloseTo(first.body.responseTime, 5);

    const second = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(second.body.success).toBe(true);
    expect(
      second.body.stages.filter((stage: any) => stage.name !== "query").every((
        stage: any,
      ) => stage.reused),
    ).toBe(true);
    const afterSecond = await row(id);
    expect(afterSecond.avgResponseTime).toBeCloseTo(
      first.body.responseTime * 0.8 + second.body.responseTime * 0.2,
      5,
    );
    expect(afterSecond.lastConnectionTest!.getTime()).toBeGreaterThanOrEqual(
      afterFirst.lastConnectionTest!.getTime(),
    );
    const api = await t.call("GET", `/api/data-sources/${id}`, { cookie: alice });
    expect(api.body).toMatchObject({ status: "CONNECTED", connectionError: null });
  });

  it("is still HTTP 200 when the connection fails, with the classified error, status ERROR and the audit row", async () => {
    const id = await create(alice, pgSource({ port: closedPort() }));
    const reply = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      success: false,
      error: {
        code: "CONNECTION_REFUSED",
        message: expect.any(String),
        hint: expect.any(String),
      },
      schema: [],
    });
    expect(reply.body.stages.at(-1)).toMatchObject({ name: "connect", ok: false });
    const stored = await row(id);
    expect(stored.status).toBe("ERROR");
    expect(stored.connectionError).toBe(reply.body.error.message);
    expect(stored.avgResponseTime).toBeNull();
    const audit = await t.call(
      "GET",
      `/api/audit-logs?action=DATA_SOURCE_CONNECTION_TEST&entityId=${id}`,
      { cookie: admin },
    );
    expect(audit.status).toBe(200);
    const entries = audit.body.rows ?? audit.body;
    expect(entries).toHaveLength(1);
    expect(entries[0].metadata).toMatchObject({
      outcome: "failure",
      errorCode: "CONNECTION_REFUSED",
    });
  });

  it("shows TESTING while the test runs, then ERROR for a server that never answers", async () => {
    const id = await create(
      alice,
      pgSource({
        port: (silent.addr as Deno.NetAddr).port,
        configuration: { connectionTimeoutMillis: 1000 },
      }),
    );
    const pending = t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    let seen = "";
    for (let tries = 0; tries < 200 && seen !== "TESTING"; tries++) {
      seen = (await row(id)).status;
      if (seen !== "TESTING") await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(seen).toBe("TESTING");
    const reply = await pending;
    expect(reply.body.error.code).toBe("TIMEOUT");
    expect((await row(id)).status).toBe("ERROR");
  });

  it("allows ten tests a minute per user, then answers 429 with Retry-After", async () => {
    await t.user("carol@example.com", "carol-password");
    const carol = await t.login("carol@example.com", "carol-password");
    const id = await create(carol, pgSource({ port: closedPort() }));
    for (let n = 0; n < 10; n++) {
      const reply = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: carol });
      expect(reply.status).toBe(200);
    }
    const limited = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: carol });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another user's budget is untouched.
    const other = await create(alice, pgSource());
    const reply = await t.call("POST", `/api/data-sources/${other}/test`, { cookie: alice });
    expect(reply.status).toBe(200);
  });

  it("tests a MySQL source the same way", async () => {
    const id = await create(alice, {
      name: "Items",
      type: "MYSQL",
      host: "127.0.0.1",
      port: 3306,
      database: mysqlDatabase,
      username: "dafel_t_pw",
      password: "dafel-mysql-fixture",
    });
    const reply = await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(reply.body).toMatchObject({
      success: true,
      serverInfo: { product: "MariaDB", database: mysqlDatabase, port: 3306 },
      schema: [{ tableName: "items", columns: 2, rowCount: 2 }],
    });
    expect((await row(id)).status).toBe("CONNECTED");
  });
});

describe("schema, changes and preview", () => {
  it("GET /schema answers the seed's shape with keys and counts", async () => {
    const id = await create(alice, pgSource());
    const reply = await t.call("GET", `/api/data-sources/${id}/schema`, { cookie: alice });
    expect(reply.status).toBe(200);
    expect(reply.body.success).toBe(true);
    const { tables, totalTables, totalRows } = reply.body.schema;
    expect(totalTables).toBe(3);
    expect(totalRows).toBe(5);
    const orders = tables.find((table: any) => table.name === "orders");
    expect(orders).toMatchObject({
      schema: "public",
      kind: "table",
      rowCount: 3,
      rowCountExact: true,
      constraints: {
        primaryKeys: ["id"],
        foreignKeys: [{
          columns: ["customer_id"],
          referencedSchema: "public",
          referencedTable: "customers",
          referencedColumns: ["id"],
        }],
        uniqueKeys: [],
      },
    });
    expect(orders.columns[0]).toMatchObject({
      name: "id",
      type: "integer",
      nullable: false,
      primaryKey: true,
      unique: true,
    });
    const view = tables.find((table: any) => table.name === "order_totals");
    expect(view).toMatchObject({ kind: "view", rowCount: null });
    const customers = tables.find((table: any) => table.name === "customers");
    expect(customers.constraints.uniqueKeys).toEqual(["email"]);
  });

  it("GET /schema/changes lists tables and columns added and removed, type, nullability and key changes", async () => {
    await remote.unsafe(`create table drift_a (id int primary key, label text not null,
      amount int, gone text);
      create table drift_b (id int primary key)`);
    try {
      const id = await create(alice, pgSource());
      const none = await t.call("GET", `/api/data-sources/${id}/schema/changes`, { cookie: alice });
      expect(none.body).toMatchObject({ success: true, changes: null });
      expect((await t.call("GET", `/api/data-sources/${id}/schema`, { cookie: alice })).status)
        .toBe(200);
      // Row counts alone are no schema change.
      await remote.unsafe("insert into drift_b values (1), (2)");
      await t.call("GET", `/api/data-sources/${id}/schema`, { cookie: alice });
      const still = await t.call("GET", `/api/data-sources/${id}/schema/changes`, {
        cookie: alice,
      });
      expect(still.body.changes).toBeNull();

      await remote.unsafe(`drop table drift_b;
        create table drift_c (id int primary key);
        alter table drift_a add column added_at timestamptz;
        alter table drift_a drop column gone;
        alter table drift_a alter column amount type bigint;
        alter table drift_a alter column label drop not null;
        alter table drift_a add constraint drift_a_label unique (label);
        alter table drift_a add column customer_id int references customers (id)`);
      await t.call("GET", `/api/data-sources/${id}/schema`, { cookie: alice });
      const reply = await t.call("GET", `/api/data-sources/${id}/schema/changes`, {
        cookie: alice,
      });
      expect(reply.status).toBe(200);
      const changes = reply.body.changes;
      expect(changes.unchanged).toBe(false);
      expect(changes.tablesAdded).toEqual([{ schema: "public", name: "drift_c" }]);
      expect(changes.tablesRemoved).toEqual([{ schema: "public", name: "drift_b" }]);
      expect(changes.columnsAdded).toEqual(expect.arrayContaining([
        { schema: "public", name: "drift_a", column: "added_at", type: "timestamp with time zone" },
        { schema: "public", name: "drift_a", column: "customer_id", type: "integer" },
      ]));
      expect(changes.columnsRemoved).toEqual([
        { schema: "public", name: "drift_a", column: "gone", type: "text" },
      ]);
      expect(changes.typesChanged).toEqual([
        { schema: "public", name: "drift_a", column: "amount", from: "integer", to: "bigint" },
      ]);
      expect(changes.nullabilityChanged).toEqual([
        { schema: "public", name: "drift_a", column: "label", from: false, to: true },
      ]);
      expect(changes.keysChanged.map((change: any) => change.kind).sort()).toEqual([
        "foreignKeys",
        "uniqueKeys",
      ]);
      expect(new Date(reply.body.to).getTime()).toBeGreaterThan(
        new Date(reply.body.from).getTime(),
      );
    } finally {
      await remote.unsafe("drop table if exists drift_a, drift_b, drift_c");
    }
  });

  it("GET /preview returns rows of a discovered table, checks the limit and refuses anything else", async () => {
    const id = await create(alice, pgSource());
    const reply = await t.call(
      "GET",
      `/api/data-sources/${id}/preview?schema=public&table=orders&limit=2`,
      { cookie: alice },
    );
    expect(reply.status).toBe(200);
    expect(reply.body.columns).toEqual([
      { name: "id", type: "integer" },
      { name: "customer_id", type: "integer" },
      { name: "total", type: "numeric(10,2)" },
    ]);
    expect(reply.body.rows).toHaveLength(2);
    expect(reply.body.rows[0]).toEqual({ id: 1, customer_id: 1, total: "10.50" });
    for (const limit of ["0", "1001", "many"]) {
      const bad = await t.call(
        "GET",
        `/api/data-sources/${id}/preview?table=orders&limit=${limit}`,
        {
          cookie: alice,
        },
      );
      expect(bad.status).toBe(400);
    }
    for (const table of ["pg_authid", "orders; drop table orders", "information_schema.tables"]) {
      const missing = await t.call(
        "GET",
        `/api/data-sources/${id}/preview?table=${encodeURIComponent(table)}`,
        { cookie: alice },
      );
      expect(missing.status).toBe(404);
    }
    const otherSchema = await t.call(
      "GET",
      `/api/data-sources/${id}/preview?schema=pg_catalog&table=pg_class`,
      { cookie: alice },
    );
    expect(otherSchema.status).toBe(404);
    // A table created after the last discovery is found by looking again.
    await remote.unsafe("create table late (id int primary key); insert into late values (7)");
    try {
      const late = await t.call("GET", `/api/data-sources/${id}/preview?table=late`, {
        cookie: alice,
      });
      expect(late.status).toBe(200);
      expect(late.body.rows).toEqual([{ id: 7 }]);
    } finally {
      await remote.unsafe("drop table late");
    }
  });
});

describe("POST /api/test-demo", () => {
  it("tests the embedded demo database", async () => {
    const reply = await t.call("POST", "/api/test-demo", { cookie: alice });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      success: true,
      message: "Demo database connection successful",
      connectionTime: expect.any(Number),
      serverInfo: {
        product: "PostgreSQL",
        database: "postgres",
        user: "postgres",
        host: "127.0.0.1",
        version: expect.any(String),
      },
    });
    const audit = await t.call(
      "GET",
      "/api/audit-logs?action=DATA_SOURCE_CONNECTION_TEST",
      { cookie: admin },
    );
    const entries = audit.body.rows ?? audit.body;
    const demo = entries.find((entry: any) => entry.metadata?.demo === true);
    expect(demo).toMatchObject({
      metadata: {
        outcome: "success",
        type: "POSTGRESQL",
        demo: true,
        responseTime: expect.any(Number),
      },
    });
  });
});

describe("pools, breaker and metrics", () => {
  it("keeps one pool per source and closes it when the source changes or is deleted", async () => {
    const id = await create(alice, pgSource());
    await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(hasPool(id)).toBe(true);
    const health = await t.call("GET", "/api/health");
    expect(health.body.pools.POSTGRESQL.pools).toBeGreaterThanOrEqual(1);
    expect(health.body.pools.POSTGRESQL.size).toBeGreaterThanOrEqual(1);
    const update = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { configuration: { poolConfig: { max: 3 } } },
    });
    expect(update.status).toBe(200);
    expect(hasPool(id)).toBe(false);
    await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    expect(hasPool(id)).toBe(true);
    const removed = await t.call("DELETE", `/api/data-sources/${id}`, { cookie: alice });
    expect(removed.status).toBe(204);
    expect(hasPool(id)).toBe(false);
  });

  it("opens the breaker after repeated failures and closes it when the server is back", async () => {
    const proxy = startTcpProxy({ hostname: "127.0.0.1", port: 5432 });
    try {
      const id = await create(alice, pgSource({ port: proxy.port }));
      expect((await testSource(t.deps, await row(id))).success).toBe(true);
      await proxy.down();
      for (let n = 0; n < 5; n++) {
        const result = await testSource(t.deps, await row(id));
        expect(result.error?.code).toBe("CONNECTION_REFUSED");
      }
      expect(breakerState(id)).toBe("open");
      const resting = await testSource(t.deps, await row(id));
      expect(resting).toMatchObject({ success: false, stages: [] });
      expect(resting.error?.message).toMatch(/^Circuit open/);
      proxy.up();
      let result = resting;
      for (let tries = 0; tries < 100 && !result.success; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        result = await testSource(t.deps, await row(id));
      }
      expect(result.success).toBe(true);
      expect(breakerState(id)).toBe("closed");
      expect((await row(id)).status).toBe("CONNECTED");
    } finally {
      await proxy.close();
    }
  });

  it("GET /metrics shows connection tests, their duration, query durations and pool gauges", async () => {
    const id = await create(alice, pgSource());
    await t.call("POST", `/api/data-sources/${id}/test`, { cookie: alice });
    await t.call("GET", `/api/data-sources/${id}/preview?table=customers`, { cookie: alice });
    const reply = await t.call("GET", "/metrics");
    expect(reply.status).toBe(200);
    const text = reply.text;
    expect(text).toMatch(/datasource_connection_total\{type="POSTGRESQL",outcome="success"\} \d+/);
    expect(text).toMatch(
      /datasource_connection_total\{type="POSTGRESQL",outcome="CONNECTION_REFUSED"\} \d+/,
    );
    expect(text).toMatch(/datasource_connection_duration_seconds_bucket\{[^}]*type="POSTGRESQL"/);
    expect(text).toMatch(
      /datasource_query_duration_seconds_count\{type="POSTGRESQL",operation="discover"\} \d+/,
    );
    expect(text).toMatch(
      /datasource_query_duration_seconds_count\{type="POSTGRESQL",operation="preview"\} \d+/,
    );
    expect(text).toMatch(/connection_pool_size\{type="POSTGRESQL"\} [1-9]/);
    expect(text).toMatch(/connection_pool_active\{type="POSTGRESQL"\} 0/);
  });
});
