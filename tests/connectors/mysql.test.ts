/**
 * The MySQL connector against the real MariaDB at 127.0.0.1:3306: the conformance suite,
 * every connection error from a real failure (users come from .ci/fixtures.sh), discovery
 * of awkward identifiers and keys across databases, preview, reads and pools.
 */
import mysql2 from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { poolSummary } from "../../connectors/_pools.ts";
import { mysql } from "../../connectors/mysql.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import type { ConnectorContext, Stream } from "../../connectors/types.ts";
import { runConformance } from "./conformance.ts";

/** Users and passwords of .ci/fixtures.sh; dafel_t_pw may read every dafel_t_ database. */
const READER = { username: "dafel_t_pw", password: "dafel-mysql-fixture" };
const TLS_ONLY = { username: "dafel_t_tlsonly", password: "dafel-mysql-tls-fixture" };
const NO_GRANTS = { username: "dafel_t_nogrant", password: "dafel-mysql-nogrant-fixture" };
const FIXTURE_CA = "/etc/dafel-test-tls/server.crt";

const ctx: ConnectorContext = {
  network: { allowedHosts: [], allowPrivateNetworks: false },
  pool: { min: 1, max: 4, idleTimeoutMs: 30_000, connectionTimeoutMs: 1_500 },
  filesDir: "/nonexistent",
};

const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
const database = `dafel_t_my_${suffix}`;
const refDatabase = `dafel_t_myref_${suffix}`;
let admin: mysql2.Connection;
let silent: Deno.Listener;
const silentConnections: Deno.Conn[] = [];

const FIXTURE_SQL = `
create table \`${refDatabase}\`.parents (id int primary key, code varchar(20) not null unique);
insert into \`${refDatabase}\`.parents values (1, 'p1');
create table customers (id int primary key, email varchar(100) not null unique, name varchar(100));
create table \`Order \`\`Lines\`\` 2024\` (
  \`Order Id\` int not null,
  \`Line №\` int not null,
  customerId int not null,
  \`Ünïcode 列\` varchar(20) default 'n/a',
  primary key (\`Order Id\`, \`Line №\`),
  constraint lines_customer foreign key (customerId) references customers (id)
);
create table shipments (
  id int auto_increment primary key,
  \`Order Id\` int,
  \`Line №\` int,
  carrier varchar(20),
  tracking varchar(20),
  parent_id int,
  constraint shipments_tracking unique (carrier, tracking),
  constraint shipments_line foreign key (\`Order Id\`, \`Line №\`)
    references \`Order \`\`Lines\`\` 2024\` (\`Order Id\`, \`Line №\`),
  constraint shipments_parent foreign key (parent_id) references \`${refDatabase}\`.parents (id)
);
create table \`dotted.name\` (id int primary key, \`a.b\` varchar(10));
create table MixedCase (CamelColumn int, unique key mixed_case_camel (CamelColumn));
create view customer_emails as select id, email from customers;
create table events (
  id int auto_increment primary key,
  occurred_at datetime(6) not null,
  day date,
  amount decimal(10, 2),
  big bigint,
  payload json,
  data varbinary(16),
  flag tinyint(1)
);
insert into customers values (1, 'ana@example.com', 'Ana'), (2, 'luis@example.com', 'Luis'),
  (3, 'marta@example.com', null);
insert into \`Order \`\`Lines\`\` 2024\` values (10, 1, 1, 'ü'), (10, 2, 2, '表');
insert into shipments (\`Order Id\`, \`Line №\`, carrier, tracking, parent_id)
  values (10, 1, 'DHL', 'X1', 1);
insert into \`dotted.name\` values (1, 'one'), (2, 'two');
insert into events (occurred_at, day, amount, big, payload, data, flag)
select timestamp '2025-01-01 00:00:00.123456' + interval seq hour, date '2025-01-01' + interval seq day,
  seq * 1.25, 9007199254740993 + seq, json_object('n', seq), unhex('DEADBEEF'), seq % 2
from seq_1_to_25;
create table big (id int primary key, filler varchar(250));
insert into big select seq, repeat('x', 200) from seq_1_to_100000;
analyze table big;
`;

function settings(config: Record<string, unknown> = {}, user = READER) {
  return {
    config: {
      host: "127.0.0.1",
      port: 3306,
      database,
      username: user.username,
      ssl: false,
      ...config,
    },
    secrets: { password: user.password },
  };
}

let sourceCounter = 0;
function source(raw = settings()) {
  sourceCounter++;
  const parsed = {
    config: mysql.configSchema.parse(raw.config),
    secrets: mysql.secretsSchema.parse(raw.secrets),
  };
  return { id: `my-test-${sourceCounter}`, fingerprint: fingerprintOf(parsed), ...parsed };
}

beforeAll(async () => {
  admin = await mysql2.createConnection({
    host: "127.0.0.1",
    user: "root",
    multipleStatements: true,
    charset: "UTF8MB4_UNICODE_CI",
  });
  await admin.query(`create database \`${database}\` character set utf8mb4;
    create database \`${refDatabase}\` character set utf8mb4; use \`${database}\``);
  await admin.query(FIXTURE_SQL);
  silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of silent) silentConnections.push(conn);
  })().catch(() => {});
});

afterAll(async () => {
  silent?.close();
  for (const conn of silentConnections) conn.close();
  await admin?.query(`drop database if exists \`${database}\`;
    drop database if exists \`${refDatabase}\``);
  await admin?.end();
});

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

runConformance({
  name: "MySQL (MariaDB)",
  connector: mysql,
  ctx,
  settings: () => settings(),
  stream: {
    name: "events",
    schema: database,
    columns: ["id", "occurred_at", "day", "amount", "big", "payload", "data"],
    rows: 25,
  },
  cursorColumn: "id",
  failures: [
    {
      name: "a name that does not resolve",
      code: "HOST_NOT_FOUND",
      settings: () => settings({ host: "no-such-host.invalid" }),
    },
    {
      name: "a closed loopback port",
      code: "CONNECTION_REFUSED",
      settings: () => settings({ port: closedPort() }),
    },
    {
      name: "a listener that never sends the greeting",
      code: "TIMEOUT",
      settings: () =>
        settings({ port: (silent.addr as Deno.NetAddr).port, connectionTimeoutMillis: 500 }),
    },
    {
      name: "a wrong password",
      code: "AUTH_FAILED",
      settings: () => settings({}, { ...READER, password: "definitely-the-wrong-password" }),
    },
    {
      name: "a database that does not exist",
      code: "DATABASE_NOT_FOUND",
      settings: () => settings({ database: `dafel_t_missing_${suffix}` }),
    },
    {
      name: "a REQUIRE SSL user over a plain connection",
      code: "SSL_REQUIRED",
      settings: () => settings({}, TLS_ONLY),
    },
    {
      name: "a user without grants on the database",
      code: "PERMISSION_DENIED",
      settings: () => settings({}, NO_GRANTS),
    },
    {
      name: "verify-full against the self-signed certificate without its CA",
      code: "TLS_ERROR",
      settings: () => settings({ host: "localhost", ssl: true, sslMode: "verify-full" }),
    },
    {
      name: "a cloud metadata address",
      code: "BLOCKED_ADDRESS",
      settings: () => settings({ host: "169.254.169.254" }),
    },
  ],
});

/**
 * A loopback proxy in front of the real server that counts connections and the queries
 * clients send (COM_QUERY packets, which start a command with sequence number 0).
 */
function countingProxy() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const counter = { queries: 0, connections: 0 };
  (async () => {
    for await (const client of listener) {
      counter.connections++;
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: 3306 });
      conns.push(client, upstream);
      let pending = new Uint8Array(0);
      const tally = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          controller.enqueue(chunk);
          const joined = new Uint8Array(pending.length + chunk.length);
          joined.set(pending);
          joined.set(chunk, pending.length);
          let at = 0;
          while (joined.length - at >= 4) {
            const length = joined[at] | (joined[at + 1] << 8) | (joined[at + 2] << 16);
            if (joined.length - at < 4 + length) break;
            if (joined[at + 3] === 0 && joined[at + 4] === 0x03) counter.queries++;
            at += 4 + length;
          }
          pending = joined.slice(at);
        },
      });
      client.readable.pipeThrough(tally).pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(client.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    counter,
    close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    },
  };
}

async function discovered(target = source()): Promise<Stream[]> {
  try {
    const result = await mysql.discover(target, ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    return result.value.streams;
  } finally {
    await mysql.close(target.id);
  }
}

describe("MySQL connection test", () => {
  it("reuses the pooled connection when warm: one query, stages marked reused, same thread", async () => {
    const proxy = countingProxy();
    const target = source(settings({ port: proxy.port }));
    try {
      const cold = await mysql.test(target, ctx);
      expect(cold.success, JSON.stringify(cold.error)).toBe(true);
      expect(cold.stages.map((stage) => stage.name)).toEqual([
        "resolve",
        "connect",
        "authenticate",
        "query",
      ]);
      const connections = proxy.counter.connections;
      proxy.counter.queries = 0;
      const warm = await mysql.test(target, ctx);
      expect(warm.success).toBe(true);
      expect(proxy.counter.connections).toBe(connections);
      expect(proxy.counter.queries).toBe(1);
      expect(warm.serverInfo?.connectionId).toBe(cold.serverInfo?.connectionId);
      expect(
        warm.stages.filter((stage) => stage.name !== "query").every((stage) =>
          stage.reused === true && stage.ms === 0
        ),
      ).toBe(true);
      expect(warm.serverInfo).toMatchObject({
        product: "MariaDB",
        database,
        user: "dafel_t_pw@%",
        host: "127.0.0.1",
        address: "127.0.0.1",
        port: proxy.port,
        encoding: "utf8mb4",
        ssl: false,
      });
      expect(typeof warm.serverInfo?.timezone).toBe("string");
    } finally {
      await mysql.close(target.id);
      proxy.close();
    }
  });

  it("logs in over TLS as a REQUIRE SSL user, and verify-full trusts a given CA for the host name", async () => {
    const required = source(settings({ ssl: true }, TLS_ONLY));
    const verified = source(settings({
      host: "localhost",
      ssl: true,
      sslMode: "verify-full",
      sslRootCert: await Deno.readTextFile(FIXTURE_CA),
    }, TLS_ONLY));
    try {
      for (const target of [required, verified]) {
        const result = await mysql.test(target, ctx);
        expect(result.success, JSON.stringify(result.error)).toBe(true);
        expect(result.stages.map((stage) => stage.name)).toEqual([
          "resolve",
          "connect",
          "tls",
          "authenticate",
          "query",
        ]);
        expect(result.serverInfo).toMatchObject({ ssl: true, user: "dafel_t_tlsonly@%" });
      }
    } finally {
      await mysql.close(required.id);
      await mysql.close(verified.id);
    }
  });

  it("names the failing stage and the field to fix", async () => {
    const wrong = source(settings({}, { ...READER, password: "definitely-the-wrong-password" }));
    const denied = source(settings({}, NO_GRANTS));
    const refused = source(settings({ port: closedPort() }));
    try {
      const auth = await mysql.test(wrong, ctx);
      expect(auth.error).toMatchObject({ code: "AUTH_FAILED", field: "password" });
      expect(auth.stages.at(-1)).toMatchObject({ name: "authenticate", ok: false });
      const permission = await mysql.test(denied, ctx);
      expect(permission.error).toMatchObject({ code: "PERMISSION_DENIED", field: "username" });
      const port = await mysql.test(refused, ctx);
      expect(port.error).toMatchObject({ code: "CONNECTION_REFUSED", field: "port" });
      expect(port.stages.map((stage) => [stage.name, stage.ok])).toEqual([
        ["resolve", true],
        ["connect", false],
      ]);
    } finally {
      for (const target of [wrong, denied, refused]) await mysql.close(target.id);
    }
  });
});

describe("MySQL discovery", () => {
  it("returns awkward identifiers exactly as they were created, tables and views marked", async () => {
    const streams = await discovered();
    expect(streams.map((stream) => [stream.schema, stream.name, stream.kind])).toEqual(
      expect.arrayContaining([
        [database, "Order `Lines` 2024", "table"],
        [database, "dotted.name", "table"],
        [database, "MixedCase", "table"],
        [database, "customers", "table"],
        [database, "customer_emails", "view"],
      ]),
    );
    const lines = streams.find((stream) => stream.name === "Order `Lines` 2024")!;
    expect(lines.columns.map((column) => column.name)).toEqual([
      "Order Id",
      "Line №",
      "customerId",
      "Ünïcode 列",
    ]);
    expect(lines.columns[3]).toMatchObject({
      type: "varchar(20)",
      nullable: true,
      default: "'n/a'",
    });
    expect(lines.columns[0]).toMatchObject({ type: "int(11)", nullable: false, primaryKey: true });
    const shipments = streams.find((stream) => stream.name === "shipments")!;
    expect(shipments.columns.find((column) => column.name === "id")).toMatchObject({
      primaryKey: true,
      unique: true,
      default: "auto_increment",
    });
  });

  it("reports composite primary, unique and foreign keys, across databases", async () => {
    const streams = await discovered();
    const lines = streams.find((stream) => stream.name === "Order `Lines` 2024")!;
    expect(lines.constraints.primaryKeys).toEqual(["Order Id", "Line №"]);
    const shipments = streams.find((stream) => stream.name === "shipments")!;
    expect(shipments.constraints.foreignKeys).toEqual([
      {
        name: "shipments_line",
        columns: ["Order Id", "Line №"],
        referencedSchema: database,
        referencedTable: "Order `Lines` 2024",
        referencedColumns: ["Order Id", "Line №"],
      },
      {
        name: "shipments_parent",
        columns: ["parent_id"],
        referencedSchema: refDatabase,
        referencedTable: "parents",
        referencedColumns: ["id"],
      },
    ]);
    expect(shipments.constraints.uniqueConstraints).toEqual([
      { name: "shipments_tracking", columns: ["carrier", "tracking"] },
    ]);
    const customers = streams.find((stream) => stream.name === "customers")!;
    expect(customers.constraints.uniqueKeys).toEqual(["email"]);
    const mixed = streams.find((stream) => stream.name === "MixedCase")!;
    expect(mixed.constraints.uniqueKeys).toEqual(["CamelColumn"]);
  });

  it("counts small tables exactly and takes large ones from the table statistics", async () => {
    const streams = await discovered();
    const byName = new Map(streams.map((stream) => [stream.name, stream]));
    expect(byName.get("events")).toMatchObject({ rowCount: 25, rowCountExact: true });
    expect(byName.get("customers")).toMatchObject({ rowCount: 3, rowCountExact: true });
    expect(byName.get("big")?.rowCountExact).toBe(false);
    expect(byName.get("big")?.rowCount).toBeGreaterThan(10_000);
    expect(byName.get("customer_emails")).toMatchObject({ rowCount: null, rowCountExact: false });
  });

  it("runs the same number of catalog queries for sixty more tables", async () => {
    const proxy = countingProxy();
    const target = source(settings({ port: proxy.port }));
    try {
      expect((await mysql.discover(target, ctx)).ok).toBe(true);
      proxy.counter.queries = 0;
      const first = await mysql.discover(target, ctx);
      const before = proxy.counter.queries;
      const ddl = Array.from(
        { length: 60 },
        (_, n) =>
          `create table bulk_${n} (id int primary key, ref int, code varchar(10) unique,
          foreign key (ref) references customers (id));
        insert into bulk_${n} values (1, 1, 'a');`,
      ).join("\n");
      await admin.query(ddl);
      proxy.counter.queries = 0;
      const second = await mysql.discover(target, ctx);
      expect(first.ok && second.ok).toBe(true);
      if (!first.ok || !second.ok) return;
      expect(second.value.streams.length).toBe(first.value.streams.length + 60);
      expect(before).toBeLessThanOrEqual(4);
      expect(proxy.counter.queries).toBe(before);
      expect(second.value.streams.find((stream) => stream.name === "bulk_7")).toMatchObject({
        rowCount: 1,
        rowCountExact: true,
      });
    } finally {
      await admin.query(
        Array.from({ length: 60 }, (_, n) => `drop table if exists bulk_${n};`).join("\n"),
      );
      await mysql.close(target.id);
      proxy.close();
    }
  });
});

describe("MySQL preview and read", () => {
  it("previews JSON-safe rows: bigint and decimal as text, bytes as base64, ISO dates", async () => {
    const target = source();
    try {
      const result = await mysql.preview(
        target,
        { stream: { schema: database, name: "events" }, limit: 2 },
        ctx,
      );
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.value.columns.slice(0, 3)).toEqual([
        { name: "id", type: "int(11)" },
        { name: "occurred_at", type: "datetime(6)" },
        { name: "day", type: "date" },
      ]);
      expect(result.value.rows[0]).toEqual({
        id: 1,
        occurred_at: "2025-01-01T01:00:00.123456",
        day: "2025-01-02",
        amount: "1.25",
        big: "9007199254740994",
        payload: { n: 1 },
        data: "3q2+7w==",
        flag: 1,
      });
    } finally {
      await mysql.close(target.id);
    }
  });

  it("quotes awkward and dotted names whole, and reports a table that is gone", async () => {
    const target = source();
    try {
      const lines = await mysql.preview(
        target,
        { stream: { schema: database, name: "Order `Lines` 2024" }, limit: 10 },
        ctx,
      );
      expect(lines.ok && lines.value.rows).toEqual([
        { "Order Id": 10, "Line №": 1, customerId: 1, "Ünïcode 列": "ü" },
        { "Order Id": 10, "Line №": 2, customerId: 2, "Ünïcode 列": "表" },
      ]);
      const dotted = await mysql.preview(
        target,
        { stream: { schema: database, name: "dotted.name" }, limit: 1 },
        ctx,
      );
      expect(dotted.ok && dotted.value.rows).toEqual([{ id: 1, "a.b": "one" }]);
      const gone = await mysql.preview(
        target,
        { stream: { schema: database, name: "nope`; drop table events; --" }, limit: 1 },
        ctx,
      );
      expect(!gone.ok && gone.error.code).toBe("RESOURCE_NOT_FOUND");
      const [rows] = await admin.query<mysql2.RowDataPacket[]>(
        `select count(*) as n from \`${database}\`.events`,
      );
      expect(Number(rows[0].n)).toBe(25);
    } finally {
      await mysql.close(target.id);
    }
  });

  it("reads past a datetime cursor in cursor order", async () => {
    const target = source();
    try {
      const rows: Record<string, unknown>[] = [];
      for await (
        const batch of mysql.read(target, {
          stream: { schema: database, name: "events" },
          batchSize: 7,
          cursor: { column: "occurred_at", after: "2025-01-01T20:00:00.123456" },
        }, ctx)
      ) {
        expect(batch.rows.length).toBeLessThanOrEqual(7);
        rows.push(...batch.rows);
      }
      expect(rows.map((row) => row.id)).toEqual([21, 22, 23, 24, 25]);
    } finally {
      await mysql.close(target.id);
    }
  });

  it("stops a read early without leaving the connection mid-result", async () => {
    const target = source(settings({ poolConfig: { max: 1 } }));
    try {
      for await (
        const batch of mysql.read(target, { stream: { name: "big" }, batchSize: 100 }, ctx)
      ) {
        expect(batch.rows).toHaveLength(100);
        break;
      }
      // The one connection is usable again: the pool replaced the dropped one.
      const result = await mysql.test(target, ctx);
      expect(result.success).toBe(true);
    } finally {
      await mysql.close(target.id);
    }
  });
});

/** The fixture reader's sessions in the scratch database, once closed ones have ended. */
async function readerSessionsOnceSettled(expected: number): Promise<number> {
  let n = -1;
  for (let tries = 0; tries < 50 && n !== expected; tries++) {
    if (tries) await new Promise((resolve) => setTimeout(resolve, 100));
    const [rows] = await admin.query<mysql2.RowDataPacket[]>(
      "select count(*) as n from information_schema.processlist where user = ? and db = ?",
      [READER.username, database],
    );
    n = Number(rows[0].n);
  }
  return n;
}

describe("MySQL pools", () => {
  it("keeps at most poolConfig.max connections and reports them until closed", async () => {
    await admin.query("create or replace view slow as select sleep(0.2) as slept");
    const target = source(settings({ poolConfig: { max: 2 } }));
    try {
      const previews = await Promise.all(
        Array.from(
          { length: 5 },
          () => mysql.preview(target, { stream: { name: "slow" }, limit: 1 }, ctx),
        ),
      );
      expect(previews.every((result) => result.ok)).toBe(true);
      expect(await readerSessionsOnceSettled(2)).toBe(2);
      expect(poolSummary().MYSQL).toMatchObject({ size: 2, active: 0 });
    } finally {
      await mysql.close(target.id);
      await admin.query("drop view slow");
    }
    expect(poolSummary().MYSQL?.size ?? 0).toBe(0);
    expect(await readerSessionsOnceSettled(0)).toBe(0);
  });
});
