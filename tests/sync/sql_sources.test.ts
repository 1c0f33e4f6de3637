// deno-lint-ignore-file no-explicit-any
/**
 * The SQL sources synced into PostgreSQL (the app database, loaded with COPY) from the real
 * servers: PostgreSQL and MariaDB (MySQL). A full refresh, then rows inserted and updated at
 * the source and an incremental run that brings exactly those, then a full refresh that
 * drops what the source deleted. Types come across as the source declared them.
 */
import mysql2 from "mysql2/promise";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScratchDatabase } from "../helpers/app.ts";
import { createSource, startSyncApp, syncedRows, syncNow } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;

beforeAll(async () => {
  app = await startSyncApp();
});
afterAll(() => app?.close());

describe("PostgreSQL source", () => {
  let scratch: { url: string; drop(): Promise<void> };
  let sql: postgres.Sql;
  let sourceId: string;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    sql = postgres(scratch.url, { max: 1, onnotice: () => {} });
    await sql.unsafe(`
      create schema sales;
      create table sales.invoices (
        id bigint primary key,
        amount numeric(12,2) not null,
        paid boolean,
        issued date,
        modified_at timestamp not null,
        lines jsonb,
        tags text[],
        photo bytea,
        uid uuid
      );
      insert into sales.invoices
        select g, g * 10.5, g % 2 = 0, date '2024-01-01' + g, timestamp '2024-06-01 12:00:00' + g * interval '1 second',
               jsonb_build_array(jsonb_build_object('sku', 'p' || g)), array['x', 'y' || g],
               decode('00ff' || lpad(to_hex(g % 256), 2, '0'), 'hex'), md5(g::text)::uuid
          from generate_series(1, 2000) g;
    `);
    const url = new URL(scratch.url);
    sourceId = await createSource(app.t, app.cookie, {
      name: "Invoices",
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: 5432,
      database: url.pathname.slice(1),
      username: "postgres",
      password: "trust-auth-ignores-it",
    });
  });
  afterAll(async () => {
    await sql?.end();
    await scratch?.drop();
  });

  it("loads the table in full with its declared types", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.streams).toEqual({ "sales.invoices": 2000 });
    const [first] = await syncedRows<any>(app.t, {
      sourceId,
      table: "invoices",
      columns:
        "id::text as id, amount::text as amount, paid, issued::text as issued, modified_at::text as modified_at, lines, tags, encode(photo, 'hex') as photo, uid::text as uid",
      orderBy: "id limit 1",
    });
    expect(first).toEqual({
      id: "1",
      amount: "10.50",
      paid: false,
      issued: "2024-01-02",
      modified_at: "2024-06-01 12:00:01",
      lines: [{ sku: "p1" }],
      tags: ["x", "y1"],
      photo: "00ff01",
      uid: "c4ca4238-a0b9-2382-0dcc-509a6f75849b",
    });
  });

  it("brings only inserted and updated rows incrementally", async () => {
    await sql.unsafe(`
      update sales.invoices set amount = 1, modified_at = '2025-01-01 00:00:00' where id in (10, 20);
      insert into sales.invoices (id, amount, modified_at) values (5000, 7, '2025-01-02 00:00:00');
    `);
    const log = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId,
      body: { mode: "incremental" },
    });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.streams).toEqual({ "sales.invoices": 3 });
    expect(log.streamResults[0]).toMatchObject({
      mode: "incremental",
      cursorColumn: "modified_at",
    });
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table: "invoices",
      columns: "id::int as id, amount::text as amount",
      orderBy: "id",
    });
    expect(rows.length).toBe(2001);
    const byId = new Map(rows.map((row) => [row.id, row.amount]));
    expect([byId.get(10), byId.get(20), byId.get(30), byId.get(5000)])
      .toEqual(["1.00", "1.00", "315.00", "7.00"]);
  });

  it("drops what the source deleted at the next full refresh", async () => {
    await sql.unsafe(`delete from sales.invoices where id > 1000`);
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.recordsSync).toBe(1000);
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table: "invoices",
      columns: "count(*)::int as n",
      orderBy: "1",
    });
    expect(rows[0].n).toBe(1000);
  });
});

describe("MySQL source (MariaDB)", () => {
  const database = `dafel_t_sync_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  let admin: mysql2.Connection;
  let sourceId: string;

  beforeAll(async () => {
    admin = await mysql2.createConnection({
      host: "127.0.0.1",
      port: 3306,
      user: "root",
      password: "",
      multipleStatements: true,
    });
    await admin.query(`create database \`${database}\``);
    await admin.query(`use \`${database}\``);
    await admin.query(`
      create table products (
        id int unsigned not null auto_increment primary key,
        sku varchar(40) not null unique,
        price decimal(10,2) not null,
        stock bigint unsigned,
        active tinyint(1) not null default 1,
        attributes json,
        thumbnail blob,
        launched date,
        updated_at datetime(3) not null,
        shelf_time time
      );
    `);
    const values = Array.from({ length: 1500 }, (_, i) => {
      const n = i + 1;
      return `('sku-${n}', ${n}.99, ${n === 1 ? "18446744073709551615" : n}, ${n % 2},
        '{"color": "c${n}", "dims": [${n}, 2]}', x'0a0b${(n % 256).toString(16).padStart(2, "0")}',
        '2023-03-${
        String((n % 28) + 1).padStart(2, "0")
      }', '2024-01-01 00:00:00.000' + interval ${n} second,
        '${n % 2 ? "100:00:00" : "08:30:00"}')`;
    });
    await admin.query(
      `insert into products (sku, price, stock, active, attributes, thumbnail, launched, updated_at, shelf_time)
       values ${values.join(",")}`,
    );
    sourceId = await createSource(app.t, app.cookie, {
      name: "Catalog",
      type: "MYSQL",
      host: "127.0.0.1",
      port: 3306,
      database,
      username: "dafel_t_pw",
      password: "dafel-mysql-fixture",
    });
  });
  afterAll(async () => {
    await admin?.query(`drop database if exists \`${database}\``);
    await admin?.end();
  });

  it("loads the table in full, values intact", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(1500);
    const table = log.streamResults[0].table.split(".")[1];
    expect(table).toBe("products");
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table,
      columns:
        "id::int as id, sku, price::text as price, stock::text as stock, active, attributes, encode(thumbnail, 'hex') as thumbnail, launched::text as launched, updated_at::text as updated_at, shelf_time",
      orderBy: "id limit 2",
    });
    // MariaDB's JSON is LONGTEXT with a check: it arrives as the text it is.
    expect(rows.map((row) => JSON.parse(row.attributes))).toEqual([
      { color: "c1", dims: [1, 2] },
      { color: "c2", dims: [2, 2] },
    ]);
    expect(rows.map(({ attributes: _, ...rest }) => rest)).toEqual([
      {
        id: 1,
        sku: "sku-1",
        price: "1.99",
        stock: "18446744073709551615",
        active: 1,
        thumbnail: "0a0b01",
        launched: "2023-03-02",
        updated_at: "2024-01-01 00:00:01",
        shelf_time: "100:00:00",
      },
      {
        id: 2,
        sku: "sku-2",
        price: "2.99",
        stock: "2",
        active: 0,
        thumbnail: "0a0b02",
        launched: "2023-03-03",
        updated_at: "2024-01-01 00:00:02",
        shelf_time: "08:30:00",
      },
    ]);
  });

  it("brings only inserted and updated rows incrementally", async () => {
    await admin.query(
      `update products set price = 0.5, updated_at = '2030-01-01 00:00:00' where id in (3, 4)`,
    );
    await admin.query(
      `insert into products (sku, price, updated_at) values ('sku-new', 42, '2030-01-02 00:00:00')`,
    );
    const log = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId,
      body: { mode: "incremental" },
    });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(3);
    expect(log.streamResults[0].cursorColumn).toBe("updated_at");
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table: "products",
      columns: "id::int as id, sku, price::text as price",
      orderBy: "id",
    });
    expect(rows.length).toBe(1501);
    expect(rows.filter((row) => row.price === "0.50").map((row) => row.id)).toEqual([3, 4]);
    expect(rows.at(-1)).toEqual({ id: 1501, sku: "sku-new", price: "42.00" });
  });
});
