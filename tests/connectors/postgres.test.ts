/**
 * The PostgreSQL connector against the real server at 127.0.0.1:5432: the conformance
 * suite, every connection error from a real failure (roles and pg_hba rules come from
 * .ci/fixtures.sh), discovery of awkward identifiers and keys, preview, reads and pools.
 */
import postgresJs from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { poolSummary } from "../../connectors/_pools.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import { postgres } from "../../connectors/postgres.ts";
import type { ConnectorContext, Stream } from "../../connectors/types.ts";
import { createScratchDatabase } from "../helpers/app.ts";
import { runConformance } from "./conformance.ts";

/** Passwords of the fixture roles (.ci/fixtures.sh). */
const SCRAM_PASSWORD = "dafel-scram-fixture";
const TLS_ONLY_PASSWORD = "dafel-tls-fixture";
const FIXTURE_CA = "/etc/dafel-test-tls/server.crt";

const ctx: ConnectorContext = {
  network: { allowedHosts: [], allowPrivateNetworks: false },
  pool: { min: 1, max: 4, idleTimeoutMs: 30_000, connectionTimeoutMs: 1_500 },
  filesDir: "/nonexistent",
};

let scratch: { url: string; drop(): Promise<void> };
let privateDb: { url: string; drop(): Promise<void> };
let database = "";
let admin: postgresJs.Sql;
/** A loopback listener that accepts connections and never answers. */
let silent: Deno.Listener;
const silentConnections: Deno.Conn[] = [];

const FIXTURE_SQL = `
create schema shop;
create schema "Sales Ω";
create table shop.customers (id int primary key, email text not null unique, name text);
create table "Sales Ω"."Order ""Lines"" 2024" (
  "Order Id" int not null,
  "Line №" int not null,
  "customerId" int not null references shop.customers (id),
  "Ünïcode 列" text default 'n/a',
  primary key ("Order Id", "Line №")
);
create table shop.shipments (
  id int generated always as identity primary key,
  "Order Id" int,
  "Line №" int,
  carrier text,
  tracking text,
  constraint shipments_tracking unique (carrier, tracking),
  constraint shipments_line foreign key ("Order Id", "Line №")
    references "Sales Ω"."Order ""Lines"" 2024" ("Order Id", "Line №")
);
create table public."dotted.name" (id int primary key, "a.b" text);
create table public."MixedCase" ("CamelColumn" int);
create unique index mixed_case_camel on public."MixedCase" ("CamelColumn");
create view shop.customer_emails as select id, email from shop.customers;
create table public.events (
  id serial primary key,
  occurred_at timestamptz not null default '2025-01-01T00:00:00Z',
  day date,
  local_time timestamp,
  amount numeric(10, 2),
  big int8,
  payload jsonb,
  data bytea,
  tags text[],
  ratio float8
);
insert into shop.customers values (1, 'ana@example.com', 'Ana'), (2, 'luis@example.com', 'Luis'),
  (3, 'marta@example.com', null);
insert into "Sales Ω"."Order ""Lines"" 2024" values (10, 1, 1, 'ü'), (10, 2, 2, '表');
insert into shop.shipments ("Order Id", "Line №", carrier, tracking) values (10, 1, 'DHL', 'X1');
insert into public."dotted.name" values (1, 'one'), (2, 'two');
insert into public.events (occurred_at, day, local_time, amount, big, payload, data, tags, ratio)
select timestamptz '2025-01-01T00:00:00.123456Z' + (n || ' hours')::interval,
  date '2025-01-01' + n, timestamp '2025-01-01 08:00:00' + (n || ' minutes')::interval,
  n * 1.25, 9007199254740993 + n, jsonb_build_object('n', n, 'even', n % 2 = 0),
  decode('deadbeef', 'hex'), array['a', 'b' || n], case when n = 1 then 'NaN'::float8 else n / 4.0 end
from generate_series(1, 25) as n;
create table public.big as select g as id, repeat('x', 200) as filler from generate_series(1, 100000) g;
analyze public.big;
`;

function settings(
  config: Record<string, unknown> = {},
  password = "unused-under-trust",
) {
  return {
    config: {
      host: "127.0.0.1",
      port: 5432,
      database,
      username: "postgres",
      ssl: false,
      ...config,
    },
    secrets: { password },
  };
}

let sourceCounter = 0;
function source(raw = settings()) {
  sourceCounter++;
  const parsed = {
    config: postgres.configSchema.parse(raw.config),
    secrets: postgres.secretsSchema.parse(raw.secrets),
  };
  return { id: `pg-test-${sourceCounter}`, fingerprint: fingerprintOf(parsed), ...parsed };
}

beforeAll(async () => {
  scratch = await createScratchDatabase();
  privateDb = await createScratchDatabase();
  database = new URL(scratch.url).pathname.slice(1);
  admin = postgresJs(scratch.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(FIXTURE_SQL);
  // A database the fixture role dafel_t_noconnect may not connect to.
  const privateName = new URL(privateDb.url).pathname.slice(1);
  await admin.unsafe(`revoke connect on database ${privateName} from public`);
  silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of silent) silentConnections.push(conn);
  })().catch(() => {});
});

afterAll(async () => {
  silent?.close();
  for (const conn of silentConnections) conn.close();
  await admin?.end();
  await scratch?.drop();
  await privateDb?.drop();
});

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

runConformance({
  name: "PostgreSQL",
  connector: postgres,
  ctx,
  settings: () => settings(),
  stream: {
    name: "events",
    schema: "public",
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
      name: "a listener that never answers",
      code: "TIMEOUT",
      settings: () =>
        settings({
          port: (silent.addr as Deno.NetAddr).port,
          connectionTimeoutMillis: 500,
        }),
    },
    {
      name: "a wrong password for a role that needs one (scram-sha-256)",
      code: "AUTH_FAILED",
      settings: () => settings({ username: "dafel_t_scram" }, "definitely-the-wrong-password"),
    },
    {
      name: "a database that does not exist",
      code: "DATABASE_NOT_FOUND",
      settings: () => settings({ database: "dafel_t_does_not_exist" }),
    },
    {
      name: "a hostssl-only role over a plain connection",
      code: "SSL_REQUIRED",
      settings: () => settings({ username: "dafel_t_tlsonly" }, TLS_ONLY_PASSWORD),
    },
    {
      name: "a role without CONNECT on the database",
      code: "PERMISSION_DENIED",
      settings: () =>
        settings({
          username: "dafel_t_noconnect",
          database: new URL(privateDb.url).pathname.slice(1),
        }),
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
 * A loopback proxy in front of the real server that counts the queries clients execute
 * (Bind and Query messages of the frontend protocol).
 */
function countingProxy() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const counter = { queries: 0, connections: 0 };
  (async () => {
    for await (const client of listener) {
      counter.connections++;
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: 5432 });
      conns.push(client, upstream);
      let pending = new Uint8Array(0);
      let started = false;
      const tally = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          controller.enqueue(chunk);
          const joined = new Uint8Array(pending.length + chunk.length);
          joined.set(pending);
          joined.set(chunk, pending.length);
          let at = 0;
          const view = new DataView(joined.buffer);
          while (true) {
            const header = started ? 5 : 4;
            if (joined.length - at < header) break;
            const length = started ? view.getInt32(at + 1) + 1 : view.getInt32(at);
            if (joined.length - at < length) break;
            if (started && (joined[at] === 0x42 || joined[at] === 0x51)) counter.queries++;
            at += length;
            started = true;
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
    const result = await postgres.discover(target, ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    return result.value.streams;
  } finally {
    await postgres.close(target.id);
  }
}

describe("PostgreSQL connection test", () => {
  it("reuses the pooled connection when warm: one query, stages marked reused, same backend", async () => {
    const proxy = countingProxy();
    const target = source(settings({ port: proxy.port }));
    try {
      const cold = await postgres.test(target, ctx);
      expect(cold.success, JSON.stringify(cold.error)).toBe(true);
      expect(cold.stages.map((stage) => stage.name)).toEqual([
        "resolve",
        "connect",
        "authenticate",
        "query",
      ]);
      expect(cold.stages.some((stage) => stage.reused)).toBe(false);
      const connectionsBefore = proxy.counter.connections;
      proxy.counter.queries = 0;
      const warm = await postgres.test(target, ctx);
      expect(warm.success).toBe(true);
      expect(proxy.counter.connections).toBe(connectionsBefore);
      expect(proxy.counter.queries).toBe(1);
      expect(warm.serverInfo?.connectionId).toBe(cold.serverInfo?.connectionId);
      expect(
        warm.stages.filter((stage) => stage.name !== "query").every((stage) =>
          stage.reused === true && stage.ms === 0
        ),
      ).toBe(true);
      expect(warm.serverInfo).toMatchObject({
        product: "PostgreSQL",
        database,
        user: "postgres",
        host: "127.0.0.1",
        address: "127.0.0.1",
        port: proxy.port,
        encoding: "UTF8",
        ssl: false,
      });
      expect(typeof warm.serverInfo?.version).toBe("string");
      expect(typeof warm.serverInfo?.timezone).toBe("string");
    } finally {
      await postgres.close(target.id);
      proxy.close();
    }
  });

  it("negotiates TLS as its own stage, and verify-full trusts a given CA for the host name", async () => {
    const required = source(settings({ ssl: true }));
    const verified = source(settings({
      host: "localhost",
      ssl: true,
      sslMode: "verify-full",
      sslRootCert: await Deno.readTextFile(FIXTURE_CA),
    }));
    try {
      for (const target of [required, verified]) {
        const result = await postgres.test(target, ctx);
        expect(result.success, JSON.stringify(result.error)).toBe(true);
        expect(result.stages.map((stage) => stage.name)).toEqual([
          "resolve",
          "connect",
          "tls",
          "authenticate",
          "query",
        ]);
        expect(result.serverInfo?.ssl).toBe(true);
        const [row] = await admin`select count(*)::int as n from pg_stat_ssl s
          join pg_stat_activity a using (pid)
          where a.pid = ${result.serverInfo!.connectionId as number} and s.ssl`;
        expect(row.n).toBe(1);
      }
    } finally {
      await postgres.close(required.id);
      await postgres.close(verified.id);
    }
  });

  it("logs in with the right password where the server really checks it", async () => {
    const target = source(settings({ username: "dafel_t_scram" }, SCRAM_PASSWORD));
    try {
      const result = await postgres.test(target, ctx);
      expect(result.success, JSON.stringify(result.error)).toBe(true);
      expect(result.serverInfo?.user).toBe("dafel_t_scram");
    } finally {
      await postgres.close(target.id);
    }
  });

  it("names the failing stage and the field to fix", async () => {
    const wrong = source(settings({ username: "dafel_t_scram" }, "definitely-the-wrong-password"));
    const tlsOnly = source(settings({ username: "dafel_t_tlsonly" }, TLS_ONLY_PASSWORD));
    const refused = source(settings({ port: closedPort() }));
    try {
      const auth = await postgres.test(wrong, ctx);
      expect(auth.error).toMatchObject({ code: "AUTH_FAILED", field: "password" });
      expect(auth.stages.at(-1)).toMatchObject({ name: "authenticate", ok: false });
      expect(auth.stages.slice(0, -1).every((stage) => stage.ok)).toBe(true);
      const ssl = await postgres.test(tlsOnly, ctx);
      expect(ssl.error).toMatchObject({ code: "SSL_REQUIRED", field: "ssl" });
      const port = await postgres.test(refused, ctx);
      expect(port.error).toMatchObject({ code: "CONNECTION_REFUSED", field: "port" });
      expect(port.stages.map((stage) => [stage.name, stage.ok])).toEqual([
        ["resolve", true],
        ["connect", false],
      ]);
    } finally {
      for (const target of [wrong, tlsOnly, refused]) await postgres.close(target.id);
    }
  });
});

describe("PostgreSQL discovery", () => {
  it("returns awkward identifiers exactly as they were created, tables and views marked", async () => {
    const streams = await discovered();
    const names = streams.map((stream) => [stream.schema, stream.name, stream.kind]);
    expect(names).toEqual(expect.arrayContaining([
      ["Sales Ω", 'Order "Lines" 2024', "table"],
      ["public", "dotted.name", "table"],
      ["public", "MixedCase", "table"],
      ["shop", "customers", "table"],
      ["shop", "shipments", "table"],
      ["shop", "customer_emails", "view"],
    ]));
    const lines = streams.find((stream) => stream.name === 'Order "Lines" 2024')!;
    expect(lines.columns.map((column) => column.name)).toEqual([
      "Order Id",
      "Line №",
      "customerId",
      "Ünïcode 列",
    ]);
    expect(lines.columns[3]).toMatchObject({
      type: "text",
      nullable: true,
      primaryKey: false,
      default: "'n/a'::text",
    });
    expect(lines.columns[0]).toMatchObject({ type: "integer", nullable: false, primaryKey: true });
    const dotted = streams.find((stream) => stream.name === "dotted.name")!;
    expect(dotted.columns.map((column) => column.name)).toEqual(["id", "a.b"]);
    // No system schemas.
    expect(streams.some((stream) => /^(pg_|information_schema)/.test(stream.schema!))).toBe(
      false,
    );
  });

  it("reports composite primary, unique and foreign keys, across schemas", async () => {
    const streams = await discovered();
    const lines = streams.find((stream) => stream.name === 'Order "Lines" 2024')!;
    expect(lines.constraints.primaryKeys).toEqual(["Order Id", "Line №"]);
    expect(lines.constraints.foreignKeys).toEqual([
      expect.objectContaining({
        columns: ["customerId"],
        referencedSchema: "shop",
        referencedTable: "customers",
        referencedColumns: ["id"],
      }),
    ]);
    const shipments = streams.find((stream) => stream.name === "shipments")!;
    expect(shipments.constraints.foreignKeys).toEqual([{
      name: "shipments_line",
      columns: ["Order Id", "Line №"],
      referencedSchema: "Sales Ω",
      referencedTable: 'Order "Lines" 2024',
      referencedColumns: ["Order Id", "Line №"],
    }]);
    expect(shipments.constraints.uniqueConstraints).toEqual([
      { name: "shipments_tracking", columns: ["carrier", "tracking"] },
    ]);
    expect(shipments.constraints.uniqueKeys).toEqual([]);
    expect(shipments.columns.find((column) => column.name === "id")).toMatchObject({
      primaryKey: true,
      default: "generated always as identity",
    });
    const customers = streams.find((stream) => stream.name === "customers")!;
    expect(customers.constraints.uniqueKeys).toEqual(["email"]);
    expect(customers.columns.find((column) => column.name === "email")).toMatchObject({
      unique: true,
      primaryKey: false,
      nullable: false,
    });
    // A unique index without a constraint still makes the column unique.
    const mixed = streams.find((stream) => stream.name === "MixedCase")!;
    expect(mixed.constraints.uniqueKeys).toEqual(["CamelColumn"]);
  });

  it("counts small tables exactly and takes large ones from the catalog statistics", async () => {
    const streams = await discovered();
    const byName = new Map(streams.map((stream) => [stream.name, stream]));
    expect(byName.get("events")).toMatchObject({ rowCount: 25, rowCountExact: true });
    expect(byName.get("customers")).toMatchObject({ rowCount: 3, rowCountExact: true });
    expect(byName.get("MixedCase")).toMatchObject({ rowCount: 0, rowCountExact: true });
    expect(byName.get("big")).toMatchObject({ rowCount: 100000, rowCountExact: false });
    expect(byName.get("customer_emails")).toMatchObject({ rowCount: null, rowCountExact: false });
  });

  it("runs the same number of catalog queries for sixty more tables", async () => {
    const proxy = countingProxy();
    const target = source(settings({ port: proxy.port }));
    try {
      // A first discovery opens the pool's connections (each new one makes postgres.js
      // look up array types once); the counted ones run on open connections.
      expect((await postgres.discover(target, ctx)).ok).toBe(true);
      proxy.counter.queries = 0;
      const first = await postgres.discover(target, ctx);
      const before = proxy.counter.queries;
      await admin.unsafe(`create schema bulk; do $$ begin for n in 1..60 loop
        execute format('create table bulk.t%s (id int primary key,
          ref int references shop.customers (id), code text unique)', n);
        execute format('insert into bulk.t%s values (1, 1, %L)', n, 'a');
      end loop; end $$`);
      proxy.counter.queries = 0;
      const second = await postgres.discover(target, ctx);
      expect(first.ok && second.ok).toBe(true);
      if (!first.ok || !second.ok) return;
      expect(second.value.streams.length).toBe(first.value.streams.length + 60);
      expect(before).toBeLessThanOrEqual(3);
      expect(proxy.counter.queries).toBe(before);
      const t7 = second.value.streams.find((stream) => stream.name === "t7")!;
      expect(t7).toMatchObject({ schema: "bulk", rowCount: 1, rowCountExact: true });
    } finally {
      await admin.unsafe("drop schema if exists bulk cascade");
      await postgres.close(target.id);
      proxy.close();
    }
  });
});

describe("PostgreSQL preview and read", () => {
  it("previews JSON-safe rows: int8 and numeric as text, bytes as base64, ISO dates", async () => {
    const target = source();
    try {
      const result = await postgres.preview(
        target,
        { stream: { schema: "public", name: "events" }, limit: 2 },
        ctx,
      );
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.value.columns.slice(0, 4)).toEqual([
        { name: "id", type: "integer" },
        { name: "occurred_at", type: "timestamp with time zone" },
        { name: "day", type: "date" },
        { name: "local_time", type: "timestamp without time zone" },
      ]);
      expect(result.value.rows).toHaveLength(2);
      const [first] = result.value.rows;
      expect(first).toEqual({
        id: 1,
        occurred_at: "2025-01-01T01:00:00.123456+00:00",
        day: "2025-01-02",
        local_time: "2025-01-01T08:01:00",
        amount: "1.25",
        big: "9007199254740994",
        payload: { n: 1, even: false },
        data: "3q2+7w==",
        tags: ["a", "b1"],
        ratio: "NaN",
      });
    } finally {
      await postgres.close(target.id);
    }
  });

  it("quotes awkward and dotted names whole, and reports a table that is gone", async () => {
    const target = source();
    try {
      const lines = await postgres.preview(
        target,
        { stream: { schema: "Sales Ω", name: 'Order "Lines" 2024' }, limit: 10 },
        ctx,
      );
      expect(lines.ok && lines.value.rows).toEqual([
        { "Order Id": 10, "Line №": 1, customerId: 1, "Ünïcode 列": "ü" },
        { "Order Id": 10, "Line №": 2, customerId: 2, "Ünïcode 列": "表" },
      ]);
      const dotted = await postgres.preview(
        target,
        { stream: { schema: "public", name: "dotted.name" }, limit: 1 },
        ctx,
      );
      expect(dotted.ok && dotted.value.rows).toEqual([{ id: 1, "a.b": "one" }]);
      const gone = await postgres.preview(
        target,
        { stream: { schema: "public", name: 'nope"; drop table events; --' }, limit: 1 },
        ctx,
      );
      expect(!gone.ok && gone.error.code).toBe("RESOURCE_NOT_FOUND");
      const [{ n }] = await admin`select count(*)::int as n from public.events`;
      expect(n).toBe(25);
    } finally {
      await postgres.close(target.id);
    }
  });

  it("reads past a timestamp cursor in cursor order", async () => {
    const target = source();
    try {
      const rows: Record<string, unknown>[] = [];
      for await (
        const batch of postgres.read(target, {
          stream: { schema: "public", name: "events" },
          batchSize: 7,
          cursor: { column: "occurred_at", after: "2025-01-01T20:00:00.123456+00:00" },
        }, ctx)
      ) {
        expect(batch.rows.length).toBeLessThanOrEqual(7);
        rows.push(...batch.rows);
      }
      expect(rows.map((row) => row.id)).toEqual([21, 22, 23, 24, 25]);
    } finally {
      await postgres.close(target.id);
    }
  });
});

describe("PostgreSQL reads abandoned midway", () => {
  /**
   * Errors that reached no handler: postgres.js destroys a COPY stream with an error when the
   * connection it ends still holds it, and an 'error' event nobody listens to ends the process.
   */
  function collectEscapes() {
    const escaped: unknown[] = [];
    const onError = (event: ErrorEvent) => {
      event.preventDefault();
      escaped.push(event.error);
    };
    const onRejection = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      escaped.push(event.reason);
    };
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onRejection);
    return {
      escaped,
      stop() {
        globalThis.removeEventListener("error", onError);
        globalThis.removeEventListener("unhandledrejection", onRejection);
      },
    };
  }

  beforeAll(async () => {
    await admin.unsafe(`create table public.copy_many (id int primary key, label text);
      insert into public.copy_many select g, repeat('x', 100) from generate_series(1, 100000) g`);
  });
  afterAll(async () => {
    await admin.unsafe("drop table if exists public.copy_many");
  });

  for (const way of ["abort, then return", "return only"] as const) {
    it(`ends a COPY read left between two chunks (${way}) with nothing escaping`, async () => {
      const target = source();
      const escapes = collectEscapes();
      try {
        const controller = new AbortController();
        const reader = postgres.copyOut(target, {
          stream: { schema: "public", name: "copy_many" },
          columns: [{ name: "id" }, { name: "label" }],
          signal: controller.signal,
        }, ctx);
        const first = await reader.next();
        expect(first.done).toBe(false);
        // The reader is suspended where it handed out a chunk, with more on the way: a
        // cancelled sync leaves it exactly there.
        if (way === "abort, then return") controller.abort(new Error("cancelled"));
        await reader.return(undefined as never);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(escapes.escaped).toEqual([]);
        expect(await dafelSessionsOnceSettled(0)).toBe(0);
      } finally {
        escapes.stop();
        await postgres.close(target.id);
      }
    });
  }
});

/** Sessions of the app in the scratch database, after waiting for closed ones to end. */
async function dafelSessionsOnceSettled(expected: number): Promise<number> {
  let n = -1;
  for (let tries = 0; tries < 50 && n !== expected; tries++) {
    if (tries) await new Promise((resolve) => setTimeout(resolve, 100));
    [{ n }] = await admin`select count(*)::int as n from pg_stat_activity
      where datname = ${database} and application_name = 'dafel'`;
  }
  return n;
}

describe("PostgreSQL pools", () => {
  it("keeps at most poolConfig.max connections and reports them until closed", async () => {
    await admin.unsafe("create or replace view public.slow as select 1 as one from pg_sleep(0.2)");
    const target = source(settings({ poolConfig: { max: 2 } }));
    try {
      const previews = await Promise.all(
        Array.from(
          { length: 5 },
          () =>
            postgres.preview(target, { stream: { schema: "public", name: "slow" }, limit: 1 }, ctx),
        ),
      );
      expect(previews.every((result) => result.ok)).toBe(true);
      expect(await dafelSessionsOnceSettled(2)).toBe(2);
      expect(poolSummary().POSTGRESQL).toMatchObject({ size: 2, active: 0 });
    } finally {
      await postgres.close(target.id);
      await admin.unsafe("drop view public.slow");
    }
    expect(poolSummary().POSTGRESQL?.size ?? 0).toBe(0);
    expect(await dafelSessionsOnceSettled(0)).toBe(0);
  });
});
