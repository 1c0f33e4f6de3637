// deno-lint-ignore-file no-explicit-any
/**
 * Sources without a declared schema synced into PostgreSQL (COPY): MongoDB through the
 * wire-protocol stand-in of its connector tests, a REST API and a GraphQL API on loopback
 * servers. Nested documents and arrays land in jsonb; fields first seen after discovery's
 * sample become columns; incremental runs bring only what changed past the cursor.
 */
import { createSchema, createYoga } from "graphql-yoga";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, startHttpServer, type TestServer } from "../helpers/http_fixtures.ts";
import { type MongoStandin, ObjectId, startMongoStandin } from "../helpers/mongo_standin.ts";
import { createSource, startSyncApp, syncedRows, syncNow } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;

beforeAll(async () => {
  app = await startSyncApp({ env: { ALLOW_PRIVATE_NETWORKS: "true" } });
});
afterAll(() => app?.close());

describe("MongoDB source", () => {
  let mongo: MongoStandin;
  let sourceId: string;
  const people = Array.from({ length: 1200 }, (_, i) => ({
    _id: ObjectId.createFromTime(1_700_000_000 + i),
    seq: i + 1,
    name: `Person ${i + 1}`,
    address: { city: `City ${i % 10}`, geo: [i, -i] },
    tags: ["a", `t${i}`],
    updatedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)),
  }));

  beforeAll(async () => {
    mongo = await startMongoStandin({
      databases: { crm: { people } },
      users: [{ name: "reader", password: "reader-pass-1234", read: ["crm"] }],
    });
    sourceId = await createSource(app.t, app.cookie, {
      name: "CRM",
      type: "MONGODB",
      host: mongo.host,
      port: mongo.port,
      database: "crm",
      username: "reader",
      password: "reader-pass-1234",
      configuration: { authSource: "admin" },
    });
  });
  afterAll(() => mongo?.close());

  it("loads a collection with nested documents and arrays as jsonb", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.streams).toEqual({ people: 1200 });
    const [first] = await syncedRows<any>(app.t, {
      sourceId,
      table: "people",
      columns: `"_id", seq, name, address, tags, "updatedAt"`,
      orderBy: "seq limit 1",
    });
    expect(first).toMatchObject({
      _id: people[0]._id.toHexString(),
      name: "Person 1",
      address: { city: "City 0", geo: [0, 0] },
      tags: ["a", "t0"],
    });
    expect(Number(first.seq)).toBe(1);
    expect(new Date(first.updatedAt).toISOString()).toBe("2025-01-01T00:00:00.000Z");
  });

  it("brings new and changed documents incrementally, and a field it never saw", async () => {
    const collection = mongo.databases.get("crm")!.get("people")!;
    const fifth = collection.find((doc) => doc.seq === 5)!;
    fifth.name = "Renamed";
    fifth.updatedAt = new Date(Date.UTC(2030, 0, 1));
    collection.push({
      _id: ObjectId.createFromTime(1_800_000_000),
      seq: 9999,
      name: "Newcomer",
      nickname: "nc",
      updatedAt: new Date(Date.UTC(2030, 0, 2)),
    });
    const log = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId,
      body: { mode: "incremental" },
    });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(2);
    expect(log.streamResults[0]).toMatchObject({ mode: "incremental", cursorColumn: "updatedAt" });
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table: "people",
      columns: "seq::int as seq, name, nickname",
      orderBy: "seq",
    });
    expect(rows.length).toBe(1201);
    expect(rows.find((row) => row.seq === 5)?.name).toBe("Renamed");
    expect(rows.at(-1)).toEqual({ seq: 9999, name: "Newcomer", nickname: "nc" });
  });
});

describe("REST API source", () => {
  let server: TestServer;
  let sourceId: string;
  const items = Array.from({ length: 950 }, (_, i) => ({
    id: i + 1,
    title: `Item ${i + 1}`,
    price: i % 3 === 0 ? i : i + 0.5,
    meta: { shelf: i % 7 },
    updatedAt: new Date(Date.UTC(2025, 5, 1, 0, i)).toISOString(),
  }));

  beforeAll(async () => {
    server = startHttpServer((_request, url) => {
      const offset = Number(url.searchParams.get("offset") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 100);
      return json({ data: items.slice(offset, offset + limit), total: items.length });
    });
    sourceId = await createSource(app.t, app.cookie, {
      name: "Items",
      type: "REST_API",
      configuration: {
        endpoint: `${server.origin}/v1/items`,
        recordsPath: "data",
        pagination: { type: "offset", pageSize: 200, maxPages: 100 },
      },
    });
  });
  afterAll(() => server?.close());

  it("loads every page of the endpoint", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(950);
    const table = log.streamResults[0].table.split(".")[1];
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table,
      columns: "id::int as id, title, price::float8 as price, meta",
      orderBy: "id limit 2",
    });
    expect(rows).toEqual([
      { id: 1, title: "Item 1", price: 0, meta: { shelf: 0 } },
      { id: 2, title: "Item 2", price: 1.5, meta: { shelf: 1 } },
    ]);
  });

  it("upserts what changed past the cursor", async () => {
    items[9].title = "Changed";
    items[9].updatedAt = "2031-01-01T00:00:00.000Z";
    items.push({
      id: 951,
      title: "Appended",
      price: 1,
      meta: { shelf: 1 },
      updatedAt: "2031-01-02T00:00:00.000Z",
    });
    const log = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId,
      body: { mode: "incremental" },
    });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(2);
    const table = log.streamResults[0].table.split(".")[1];
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table,
      columns: "id::int as id, title",
      orderBy: "id",
    });
    expect(rows.length).toBe(951);
    expect(rows[9]).toEqual({ id: 10, title: "Changed" });
    expect(rows.at(-1)).toEqual({ id: 951, title: "Appended" });
  });
});

describe("GraphQL source", () => {
  let server: TestServer;
  let sourceId: string;
  const customers = Array.from({ length: 30 }, (_, i) => ({
    id: `c${i + 1}`,
    name: `Customer ${i + 1}`,
    score: i * 1.5,
    active: i % 2 === 0,
    address: { city: `City ${i}`, country: "NL" },
    tags: [`tag${i}`],
  }));
  const yoga = createYoga({
    logging: false,
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Address { city: String, country: String! }
        type Customer {
          id: ID!, name: String!, score: Float, active: Boolean!, address: Address, tags: [String!]!
        }
        type Query { customers: [Customer!]! }
      `,
      resolvers: { Query: { customers: () => customers } },
    }),
  });

  beforeAll(async () => {
    server = startHttpServer((request, url) =>
      yoga.fetch(new Request(new URL("/graphql", url), request))
    );
    sourceId = await createSource(app.t, app.cookie, {
      name: "Customers API",
      type: "GRAPHQL",
      configuration: { endpoint: `${server.origin}/graphql` },
    });
  });
  afterAll(() => server?.close());

  it("loads a stream found by introspection, nested objects as jsonb", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(30);
    const table = log.streamResults[0].table.split(".")[1];
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table,
      columns: "id, name, active, address, tags",
      orderBy: "name limit 1",
    });
    expect(rows[0]).toEqual({
      id: "c1",
      name: "Customer 1",
      active: true,
      address: { city: "City 0", country: "NL" },
      tags: ["tag0"],
    });
  });

  it("loads again in full after the data changed", async () => {
    customers[0].name = "Renamed customer";
    customers.pop();
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.recordsSync).toBe(29);
    const table = log.streamResults[0].table.split(".")[1];
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table,
      columns: "id, name",
      orderBy: "id",
    });
    expect(rows.length).toBe(29);
    expect(rows.find((row) => row.id === "c1")?.name).toBe("Renamed customer");
  });
});
