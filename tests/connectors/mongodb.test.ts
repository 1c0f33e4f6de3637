/**
 * The MongoDB connector driven through the real driver: against the wire-protocol stand-in
 * (tests/helpers/mongo_standin.ts), or against a real server when MONGODB_URL is set (a URL
 * whose user may create databases and users; the test's database and users are dropped at
 * the end). Connection stages, SCRAM authentication failures, permissions, discovery of
 * nested fields, preview, batched and incremental reads, secrets, and the conformance suite.
 */
import { Binary, Decimal128, MongoClient, ObjectId } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mongodb, withoutRefusedMembers } from "../../connectors/mongodb.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import type { ErrorCode, ReadRequest, SourceSettings } from "../../connectors/types.ts";
import {
  closedPort,
  loopbackContext,
  startHttpServer,
  startSilentServer,
  UNRESOLVABLE_HOST,
} from "../helpers/http_fixtures.ts";
import { startMongoStandin } from "../helpers/mongo_standin.ts";
import { runConformance } from "./conformance.ts";

const REAL_URL = Deno.env.get("MONGODB_URL");
const READER_PASSWORD = "reader-pass-81c2";
const NOBODY_PASSWORD = "nobody-pass-77d0";

const CUSTOMERS = Array.from({ length: 12 }, (_, index) => {
  const seq = index + 1;
  const customer: Record<string, unknown> = {
    _id: ObjectId.createFromTime(1_770_000_000 + seq),
    seq,
    name: `Customer ${seq}`,
    age: seq % 5 === 0 ? null : 20 + seq,
    balance: Decimal128.fromString(`${seq}.50`),
    createdAt: new Date(Date.UTC(2026, 0, seq, 9, 30)),
    tags: [`t${seq}`, "all"],
    avatar: new Binary(new Uint8Array([seq, 1, 2, 3])),
  };
  if (seq % 3 !== 0) customer.email = `c${seq}@example.com`;
  if (seq % 4 !== 0) {
    customer.address = seq % 2 === 0
      ? { city: `City ${seq}`, zip: `10${seq}` }
      : { city: `City ${seq}` };
  }
  return customer;
});
const ORDERS = Array.from({ length: 7 }, (_, index) => ({
  _id: new ObjectId(),
  number: index + 1,
  customer: CUSTOMERS[index]._id,
}));

type Fixture = {
  host: string;
  port: number;
  database: string;
  /** A user that may read the database (null when the server has no access control). */
  reader: { username: string; password: string; authSource: string } | null;
  /** A user without read rights. */
  nobody: { username: string; password: string; authSource: string } | null;
  standin: boolean;
  /** Commands the stand-in received (empty against a real server). */
  commands: string[];
  close(): Promise<void>;
};

async function standinFixture(): Promise<Fixture> {
  const standin = await startMongoStandin({
    databases: { shop: { customers: CUSTOMERS, orders: ORDERS, empty: [] } },
    users: [
      { name: "reader", password: READER_PASSWORD, read: ["shop"] },
      { name: "nobody", password: NOBODY_PASSWORD, read: [] },
    ],
  });
  return {
    host: standin.host,
    port: standin.port,
    database: "shop",
    reader: { username: "reader", password: READER_PASSWORD, authSource: "admin" },
    nobody: { username: "nobody", password: NOBODY_PASSWORD, authSource: "admin" },
    standin: true,
    commands: standin.commands,
    close: () => standin.close(),
  };
}

async function realFixture(url: string): Promise<Fixture> {
  const admin = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  await admin.connect();
  const database = `dafel_test_${crypto.randomUUID().slice(0, 8)}`;
  const db = admin.db(database);
  await db.collection("customers").insertMany(CUSTOMERS);
  await db.collection("orders").insertMany(ORDERS);
  await db.createCollection("empty");
  let users = true;
  try {
    await db.command({
      createUser: "reader",
      pwd: READER_PASSWORD,
      roles: [{ role: "read", db: database }],
    });
    await db.command({ createUser: "nobody", pwd: NOBODY_PASSWORD, roles: [] });
  } catch {
    users = false;
  }
  const parsed = new URL(url.replace(/^mongodb:/, "http:"));
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 27017),
    database,
    reader: users ? { username: "reader", password: READER_PASSWORD, authSource: database } : null,
    nobody: users ? { username: "nobody", password: NOBODY_PASSWORD, authSource: database } : null,
    standin: false,
    commands: [],
    async close() {
      await db.dropDatabase().catch(() => {});
      await admin.close();
    },
  };
}

let fixture: Fixture;
const ctx = loopbackContext();

beforeAll(async () => {
  fixture = REAL_URL ? await realFixture(REAL_URL) : await standinFixture();
});
afterAll(async () => {
  await fixture?.close();
});

type Raw = { config: Record<string, unknown>; secrets: Record<string, unknown> };

function parse(raw: Raw) {
  return {
    config: mongodb.configSchema.parse(raw.config),
    secrets: mongodb.secretsSchema.parse(raw.secrets),
  };
}

let counter = 0;
function source(raw: Raw): SourceSettings<
  ReturnType<typeof mongodb.configSchema.parse>,
  ReturnType<typeof mongodb.secretsSchema.parse>
> {
  const parsed = parse(raw);
  return { id: `mongo-${++counter}`, fingerprint: fingerprintOf(parsed), ...parsed };
}

/** Settings as the reader (or without credentials on a server without access control). */
function asReader(overrides: Record<string, unknown> = {}): Raw {
  const user = fixture.reader;
  return {
    config: {
      host: fixture.host,
      port: fixture.port,
      database: fixture.database,
      ...(user ? { username: user.username, authSource: user.authSource } : {}),
      ...overrides,
    },
    secrets: user ? { password: user.password } : {},
  };
}

function asUser(user: NonNullable<Fixture["reader"]>, password = user.password): Raw {
  return {
    config: {
      host: fixture.host,
      port: fixture.port,
      database: fixture.database,
      username: user.username,
      authSource: user.authSource,
    },
    secrets: { password },
  };
}

async function withSource<T>(raw: Raw, work: (settings: ReturnType<typeof source>) => Promise<T>) {
  const settings = source(raw);
  try {
    return await work(settings);
  } finally {
    await mongodb.close(settings.id);
  }
}

async function readAll(raw: Raw, request: Partial<ReadRequest> = {}) {
  return await withSource(raw, async (settings) => {
    const batches = [];
    for await (
      const batch of mongodb.read(settings, {
        stream: { name: "customers" },
        batchSize: 1000,
        ...request,
      }, ctx)
    ) batches.push(batch);
    return batches;
  });
}

const authSkip = () => (fixture.reader ? false : "the MONGODB_URL server has no access control");

describe("MongoDB connection tests", () => {
  it("succeeds with resolve, connect, authenticate and query stages and server info", async () => {
    const result = await mongodb.test(source(asReader()), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    const expected = fixture.reader
      ? ["resolve", "connect", "authenticate", "query"]
      : ["resolve", "connect", "query"];
    expect(result.stages.map((stage) => stage.name)).toEqual(expected);
    expect(result.stages.every((stage) => stage.ok)).toBe(true);
    expect(result.serverInfo).toMatchObject({
      version: expect.any(String),
      topology: expect.any(String),
      database: fixture.database,
      collections: 3,
    });
    if (fixture.standin) {
      expect(result.serverInfo).toMatchObject({ version: "7.0.14", topology: "standalone" });
    }
  });

  it("connects with a connection string holding the credentials", async () => {
    const user = fixture.reader;
    const credentials = user ? `${user.username}:${encodeURIComponent(user.password)}@` : "";
    const query = user ? `?authSource=${user.authSource}` : "";
    const result = await mongodb.test(
      source({
        config: { database: fixture.database },
        secrets: { uri: `mongodb://${credentials}${fixture.host}:${fixture.port}/${query}` },
      }),
      ctx,
    );
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    if (user) expect(result.stages.map((stage) => stage.name)).toContain("authenticate");
  });

  it("fails a wrong password at the authenticate stage (SCRAM code 18)", async (test) => {
    if (!fixture.reader) return test.skip(authSkip() as string);
    const result = await mongodb.test(source(asUser(fixture.reader, "not-the-password")), ctx);
    expect(result.error).toMatchObject({ code: "AUTH_FAILED", field: "password" });
    expect(result.stages.map((stage) => [stage.name, stage.ok])).toEqual([
      ["resolve", true],
      ["connect", true],
      ["authenticate", false],
    ]);
  });

  it("fails a wrong password in a connection string without repeating it", async (test) => {
    if (!fixture.reader) return test.skip(authSkip() as string);
    const uri =
      `mongodb://reader:WrongUriPass%40123@${fixture.host}:${fixture.port}/?authSource=${fixture.reader.authSource}`;
    const result = await mongodb.test(
      source({ config: { database: fixture.database }, secrets: { uri } }),
      ctx,
    );
    expect(result.error).toMatchObject({ code: "AUTH_FAILED", field: "uri" });
    const text = JSON.stringify(result);
    for (const secret of [uri, "WrongUriPass", "WrongUriPass@123"]) {
      expect(text).not.toContain(secret);
    }
  });

  it("says a user without read rights is not permitted (code 13)", async (test) => {
    if (!fixture.nobody) return test.skip(authSkip() as string);
    const result = await mongodb.test(source(asUser(fixture.nobody)), ctx);
    expect(result.error).toMatchObject({ code: "PERMISSION_DENIED" });
    expect(result.stages.map((stage) => [stage.name, stage.ok])).toEqual([
      ["resolve", true],
      ["connect", true],
      ["authenticate", true],
      ["query", false],
    ]);
  });

  it("says the server needs credentials when none are given", async (test) => {
    if (!fixture.reader) return test.skip(authSkip() as string);
    const result = await mongodb.test(
      source({
        config: { host: fixture.host, port: fixture.port, database: fixture.database },
        secrets: {},
      }),
      ctx,
    );
    expect(result.error).toMatchObject({
      code: "AUTH_FAILED",
      message: expect.stringMatching(/requires authentication/),
    });
  });

  it.each<[string, () => Raw, ErrorCode, string]>([
    [
      "a closed port",
      () => ({ config: { host: "127.0.0.1", port: closedPort(), database: "shop" }, secrets: {} }),
      "CONNECTION_REFUSED",
      "connect",
    ],
    [
      "a host that does not resolve",
      () => ({ config: { host: UNRESOLVABLE_HOST, database: "shop" }, secrets: {} }),
      "HOST_NOT_FOUND",
      "resolve",
    ],
    [
      "the metadata address",
      () => ({ config: { host: "169.254.169.254", database: "shop" }, secrets: {} }),
      "BLOCKED_ADDRESS",
      "resolve",
    ],
    [
      "a connection string with a metadata host among the seeds",
      () => ({
        config: { database: "shop" },
        secrets: { uri: `mongodb://127.0.0.1:${closedPort()},[::ffff:169.254.169.254]:27017/` },
      }),
      "BLOCKED_ADDRESS",
      "resolve",
    ],
  ])("classifies %s", async (_, raw, code, failedStage) => {
    const result = await mongodb.test(source(raw()), ctx);
    expect(result.success).toBe(false);
    expect(result.error?.code, JSON.stringify(result.error)).toBe(code);
    expect(result.stages.at(-1)).toMatchObject({ name: failedStage, ok: false });
  });

  it("times out on a port that accepts connections and never answers", async () => {
    const silent = startSilentServer();
    try {
      const result = await mongodb.test(
        source({ config: { host: "127.0.0.1", port: silent.port, database: "shop" }, secrets: {} }),
        { ...ctx, pool: { ...ctx.pool, connectionTimeoutMs: 500 } },
      );
      expect(result.error?.code).toBe("TIMEOUT");
      expect(result.stages.at(-1)).toMatchObject({ name: "connect", ok: false });
    } finally {
      silent.close();
    }
  });

  it("does not take an HTTP server for MongoDB", async () => {
    const http = startHttpServer(() => new Response("hello"));
    try {
      const result = await mongodb.test(
        source({ config: { host: "127.0.0.1", port: http.port, database: "shop" }, secrets: {} }),
        { ...ctx, pool: { ...ctx.pool, connectionTimeoutMs: 1_000 } },
      );
      expect(result.error).toMatchObject({ code: "INVALID_RESPONSE", field: "host" });
      expect(result.stages.at(-1)).toMatchObject({ name: "connect", ok: false });
    } finally {
      await http.close();
    }
  });

  it("refuses a connection string the driver cannot parse", async () => {
    const result = await mongodb.test(
      source({
        config: { database: "shop" },
        secrets: { uri: "mongodb://user:pw@host:notaport/" },
      }),
      ctx,
    );
    expect(result.error).toMatchObject({ code: "INVALID_CONFIG", field: "uri" });
  });
});

describe("MongoDB topology", () => {
  it("reports a replica set it was told to join", async (test) => {
    if (!fixture.standin) return test.skip("needs the stand-in acting as a replica set");
    const replica = await startMongoStandin({
      databases: { shop: { customers: CUSTOMERS } },
      setName: "rs0",
    });
    try {
      const raw = {
        config: { host: "127.0.0.1", port: replica.port, database: "shop", replicaSet: "rs0" },
        secrets: {},
      };
      const result = await mongodb.test(source(raw), ctx);
      expect(result.success, JSON.stringify(result.error)).toBe(true);
      expect(result.serverInfo).toMatchObject({ topology: "replica set rs0" });
      const rows = await withSource(
        raw,
        (settings) => mongodb.preview(settings, { stream: { name: "customers" }, limit: 2 }, ctx),
      );
      expect(rows.ok && rows.value.rows.length).toBe(2);
    } finally {
      await replica.close();
    }
  });

  it("drops members a server announces at refused addresses before the driver sees them", () => {
    const reply = {
      setName: "rs0",
      hosts: ["db1.example.com:27017", "169.254.169.254:27017", "10.0.0.5:27017"],
      passives: ["[fd00:ec2::254]:27017", "[::ffff:a9fe:a9fe]:80"],
      arbiters: ["100.100.100.200:27017"],
      primary: "169.254.169.254:27017",
      me: "db1.example.com:27017",
    };
    const removed = withoutRefusedMembers(reply, ctx.network);
    expect(reply).toEqual({
      setName: "rs0",
      hosts: ["db1.example.com:27017", "10.0.0.5:27017"],
      passives: [],
      arbiters: [],
      me: "db1.example.com:27017",
    });
    expect(removed).toHaveLength(5);
  });
});

describe("MongoDB discovery", () => {
  it.each<[string, Raw, ErrorCode]>([
    [
      "a metadata host",
      { config: { host: "169.254.169.254", database: "shop" }, secrets: {} },
      "BLOCKED_ADDRESS",
    ],
    [
      "a host that does not resolve",
      { config: { host: UNRESOLVABLE_HOST, database: "shop" }, secrets: {} },
      "HOST_NOT_FOUND",
    ],
  ])("checks %s before a pooled client connects", async (_, raw, code) => {
    // No test ran first: discovery opens the pooled client, which checks its seeds itself.
    const result = await withSource(raw, (settings) => mongodb.discover(settings, ctx));
    expect(!result.ok && result.error.code).toBe(code);
  });

  it("lists collections with nested field paths, types, presence and estimated counts", async () => {
    const result = await withSource(asReader(), (settings) => mongodb.discover(settings, ctx));
    expect(result.ok, JSON.stringify(!result.ok && result.error)).toBe(true);
    if (!result.ok) return;
    expect(result.value.streams.map((stream) => stream.name).sort()).toEqual([
      "customers",
      "empty",
      "orders",
    ]);
    const customers = result.value.streams.find((stream) => stream.name === "customers")!;
    expect(customers).toMatchObject({
      kind: "collection",
      rowCount: 12,
      rowCountExact: false,
      constraints: { primaryKeys: ["_id"] },
    });
    const byName = Object.fromEntries(
      customers.columns.map((
        column,
      ) => [column.name, column as typeof column & { presence: number }]),
    );
    expect(byName._id).toMatchObject({
      type: "text",
      nullable: false,
      primaryKey: true,
      presence: 1,
    });
    expect(byName.seq).toMatchObject({ type: "integer", nullable: false });
    expect(byName.age).toMatchObject({ type: "integer", nullable: true, presence: 1 });
    expect(byName.balance).toMatchObject({ type: "number" });
    expect(byName.createdAt).toMatchObject({ type: "timestamp" });
    expect(byName.tags).toMatchObject({ type: "array" });
    expect(byName.avatar).toMatchObject({ type: "text" });
    expect(byName.email).toMatchObject({ type: "text", nullable: true, presence: 8 / 12 });
    expect(byName.address).toMatchObject({ type: "object", nullable: true, presence: 9 / 12 });
    expect(byName["address.city"]).toMatchObject({ type: "text", presence: 9 / 12 });
    expect(byName["address.zip"]).toMatchObject({ type: "text", nullable: true, presence: 3 / 12 });
    const empty = result.value.streams.find((stream) => stream.name === "empty")!;
    expect(empty.columns.map((column) => column.name)).toEqual(["_id"]);
  });

  it("keeps one pool per source across calls and closes it", async () => {
    const settings = source(asReader());
    const first = await mongodb.discover(settings, ctx);
    const second = await mongodb.preview(settings, { stream: { name: "orders" }, limit: 2 }, ctx);
    expect(first.ok && second.ok).toBe(true);
    const { hasPool } = await import("../../connectors/_pools.ts");
    expect(hasPool(settings.id)).toBe(true);
    await mongodb.close(settings.id);
    expect(hasPool(settings.id)).toBe(false);
  });
});

describe("MongoDB preview and read", () => {
  it("previews documents as plain JSON", async () => {
    const result = await withSource(
      asReader(),
      (settings) => mongodb.preview(settings, { stream: { name: "customers" }, limit: 3 }, ctx),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.rows).toHaveLength(3);
    const [row] = result.value.rows;
    expect(row._id).toBe((CUSTOMERS[0]._id as ObjectId).toHexString());
    expect(row.createdAt).toBe("2026-01-01T09:30:00.000Z");
    expect(row.balance).toBe("1.50");
    expect(row.avatar).toBe(btoa(String.fromCharCode(1, 1, 2, 3)));
    expect(row.address).toEqual({ city: "City 1" });
    expect(JSON.parse(JSON.stringify(result.value.rows))).toEqual(result.value.rows);
    expect(result.value.columns.map((column) => column.name)).toEqual(
      expect.arrayContaining(["_id", "name", "address", "createdAt"]),
    );
  });

  it("reads in batches through the server's cursor", async () => {
    const before = fixture.commands.length;
    const batches = await readAll(asReader(), { batchSize: 5 });
    if (fixture.standin) {
      expect(fixture.commands.slice(before)).toEqual(expect.arrayContaining(["find", "getMore"]));
    }
    expect(batches.map((batch) => batch.rows.length)).toEqual([5, 5, 2]);
    expect(batches.flatMap((batch) => batch.rows.map((row) => row.seq))).toEqual(
      CUSTOMERS.map((customer) => customer.seq),
    );
  });

  it.each([
    ["a number", "seq", 9, [10, 11, 12]],
    ["a date saved as text", "createdAt", "2026-01-10T09:30:00.000Z", [11, 12]],
    ["an ObjectId saved as hex", "_id", (CUSTOMERS[8]._id as ObjectId).toHexString(), [10, 11, 12]],
  ])("reads only documents past a cursor that is %s", async (_, column, after, expected) => {
    const batches = await readAll(asReader(), { cursor: { column, after } });
    expect(batches.flatMap((batch) => batch.rows.map((row) => row.seq))).toEqual(expected);
  });

  it("orders a first incremental read by the cursor field", async () => {
    const batches = await readAll(asReader(), { cursor: { column: "createdAt" }, batchSize: 4 });
    expect(batches.flatMap((batch) => batch.rows.map((row) => row.seq))).toEqual(
      CUSTOMERS.map((customer) => customer.seq),
    );
  });

  it("says a collection that is not there is not found", async () => {
    const error = await readAll(asReader(), { stream: { name: "invoices" } }).catch((e) => e);
    expect(error.error).toMatchObject({ code: "RESOURCE_NOT_FOUND" });
    const preview = await withSource(
      asReader(),
      (settings) => mongodb.preview(settings, { stream: { name: "invoices" }, limit: 3 }, ctx),
    );
    expect(!preview.ok && preview.error.code).toBe("RESOURCE_NOT_FOUND");
  });

  it("fails a read by a user without read rights with a value, not a crash", async (test) => {
    if (!fixture.nobody) return test.skip(authSkip() as string);
    const error = await readAll(asUser(fixture.nobody)).catch((e) => e);
    expect(error.error).toMatchObject({ code: "PERMISSION_DENIED" });
  });
});

describe("MongoDB secrets", () => {
  it("never repeats a password or connection string in any result", async () => {
    const uri = `mongodb://reader:UriSecret-4412@127.0.0.1:${closedPort()}/shop`;
    const cases: Raw[] = [
      {
        config: { host: "127.0.0.1", port: closedPort(), database: "shop", username: "x" },
        secrets: { password: "refused-pass-9931" },
      },
      { config: { database: "shop" }, secrets: { uri } },
      {
        config: { database: "shop" },
        secrets: { uri: "mongodb://reader:UriSecret-4412@h:badport/" },
      },
    ];
    if (fixture.reader) cases.push(asUser(fixture.reader, "wrong-pass-5550"));
    for (const raw of cases) {
      const outputs = await withSource(raw, async (settings) => [
        await mongodb.test(settings, ctx),
        await mongodb.discover(settings, ctx),
        await mongodb.preview(settings, { stream: { name: "customers" }, limit: 1 }, ctx),
      ]);
      const text = JSON.stringify(outputs);
      for (const secret of [uri, "UriSecret-4412", "refused-pass-9931", "wrong-pass-5550"]) {
        expect(text.includes(secret), text).toBe(false);
      }
    }
  });
});

describe("MongoDB conformance", () => {
  // The fixture exists only once beforeAll ran; the suite reads it lazily.
  runConformance({
    name: "MongoDB",
    connector: mongodb,
    ctx,
    settings: () => parse(asReader()),
    stream: {
      name: "customers",
      columns: ["_id", "name", "createdAt", "seq"],
      rows: CUSTOMERS.length,
    },
    cursorColumn: "seq",
    failures: [
      {
        name: "closed port",
        code: "CONNECTION_REFUSED",
        settings: () =>
          parse({
            config: { host: "127.0.0.1", port: closedPort(), database: "shop" },
            secrets: {},
          }),
      },
      {
        name: "unknown host",
        code: "HOST_NOT_FOUND",
        settings: () =>
          parse({ config: { host: UNRESOLVABLE_HOST, database: "shop" }, secrets: {} }),
      },
      {
        name: "metadata address",
        code: "BLOCKED_ADDRESS",
        settings: () =>
          parse({
            config: { database: "shop" },
            secrets: { uri: "mongodb://admin:MetaPass-1@169.254.169.254/" },
          }),
      },
      ...(REAL_URL ? [] : [
        {
          name: "wrong password",
          code: "AUTH_FAILED" as const,
          settings: () => parse(asUser(fixture.reader!, "wrong-password-1234")),
        },
        {
          name: "no read rights",
          code: "PERMISSION_DENIED" as const,
          settings: () => parse(asUser(fixture.nobody!)),
        },
      ]),
    ],
  });
});
