/**
 * The GraphQL connector against a real GraphQL server (graphql-yoga on Deno.serve, loopback):
 * introspection into streams, Relay pagination, configured queries, each error code, and
 * secrets kept out of every result. Then the shared conformance suite.
 */
// Errors built by yoga itself: a GraphQLError from another copy of graphql would be masked.
import { createGraphQLError, createSchema, createYoga } from "graphql-yoga";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphql } from "../../connectors/graphql.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import type { ErrorCode, ReadRequest, SourceSettings } from "../../connectors/types.ts";
import {
  closedPort,
  json,
  loopbackContext,
  startHttpServer,
  startSilentServer,
  type TestServer,
  UNRESOLVABLE_HOST,
} from "../helpers/http_fixtures.ts";
import { runConformance } from "./conformance.ts";

const TOKEN = "gql-token-3f9a1b77";
const READONLY_TOKEN = "gql-readonly-5521";
const HEADER_KEY = "gql-header-key-8080";

const CUSTOMERS = Array.from({ length: 5 }, (_, index) => ({
  id: `c${index + 1}`,
  name: `Customer ${index + 1}`,
  email: index % 2 === 0 ? `c${index + 1}@example.com` : null,
  age: index === 3 ? null : 30 + index,
  score: 1.5 * index,
  active: index % 2 === 0,
  createdAt: `2026-02-0${index + 1}T08:00:00Z`,
  tags: [`tag${index}`],
  address: { city: `City ${index}`, country: "NL" },
}));

const ORDERS = Array.from({ length: 10 }, (_, index) => ({
  id: `o${index + 1}`,
  number: index + 1,
  total: 10 * (index + 1) + 0.25,
  status: ["OPEN", "PAID", "SHIPPED"][index % 3],
  customer: CUSTOMERS[index % CUSTOMERS.length],
}));

const typeDefs = /* GraphQL */ `
  scalar DateTime
  enum Status { OPEN PAID SHIPPED }
  type Address { city: String, country: String! }
  type Customer {
    id: ID!
    name: String!
    email: String
    age: Int
    score: Float
    active: Boolean!
    createdAt: DateTime!
    tags: [String!]!
    address: Address
    orders(status: Status!): [Order!]!
  }
  type Order { id: ID!, number: Int!, total: Float!, status: Status!, customer: Customer! }
  type OrderEdge { cursor: String!, node: Order! }
  type PageInfo { hasNextPage: Boolean!, endCursor: String }
  type OrderConnection { edges: [OrderEdge!]!, pageInfo: PageInfo!, totalCount: Int! }
  type Product { sku: ID!, title: String! }
  type Query {
    customers: [Customer!]!
    orders(first: Int, after: String): OrderConnection!
    products(limit: Int): [Product]
    search(term: String!): [Customer!]!
    me: Customer
    version: String
    restricted: [Customer!]!
  }
`;

/** What the Relay resolver was asked, in order, to check the paging. */
const orderPages: { first?: number | null; after?: string | null }[] = [];

const yoga = createYoga({
  logging: false,
  schema: createSchema({
    typeDefs,
    resolvers: {
      Query: {
        customers: () => CUSTOMERS,
        orders: (_: unknown, args: { first?: number | null; after?: string | null }) => {
          orderPages.push({ first: args.first, after: args.after });
          const start = args.after ? Number(atob(args.after)) + 1 : 0;
          const slice = ORDERS.slice(start, start + (args.first ?? ORDERS.length));
          const end = start + slice.length - 1;
          return {
            edges: slice.map((node, index) => ({ cursor: btoa(String(start + index)), node })),
            pageInfo: {
              hasNextPage: end < ORDERS.length - 1,
              endCursor: slice.length ? btoa(String(end)) : null,
            },
            totalCount: ORDERS.length,
          };
        },
        products: (_: unknown, args: { limit?: number | null }) =>
          Array.from({ length: 6 }, (_, index) => ({ sku: `p${index}`, title: `Product ${index}` }))
            .slice(0, args.limit ?? undefined),
        search: () => [],
        me: () => CUSTOMERS[0],
        version: () => "1.0",
        restricted: () => {
          throw createGraphQLError("You may not list restricted customers", {
            extensions: { code: "FORBIDDEN" },
          });
        },
      },
    },
  }),
});

async function handle(request: Request, url: URL): Promise<Response> {
  const toYoga = () => yoga.fetch(new Request(new URL("/graphql", url), request));
  switch (url.pathname) {
    case "/graphql": {
      const auth = request.headers.get("authorization");
      if (auth === `Bearer ${READONLY_TOKEN}`) {
        return json({ errors: [{ message: "no" }] }, { status: 403 });
      }
      if (auth !== `Bearer ${TOKEN}` && request.headers.get("x-api-key") !== HEADER_KEY) {
        return json({ errors: [{ message: "Unauthorized" }] }, { status: 401 });
      }
      return await toYoga();
    }
    case "/open/graphql":
      return await toYoga();
    case "/soft/graphql":
      return json({
        data: null,
        errors: [{ message: "Sign in first", extensions: { code: "UNAUTHENTICATED" } }],
      });
    case "/broken/graphql":
      return json({ data: null, errors: [{ message: "Database connection lost" }] });
    case "/closed/graphql": {
      const body = await request.clone().json();
      if (String(body.query).includes("__schema")) {
        return json({ errors: [{ message: "GraphQL introspection is not allowed" }] });
      }
      return await toYoga();
    }
    case "/html":
      return new Response(
        `<html><body>token ${request.headers.get("authorization")}</body></html>`,
        {
          headers: { "content-type": "text/html" },
        },
      );
    case "/redirect-metadata":
      return new Response(null, {
        status: 307,
        headers: { location: "http://169.254.169.254/graphql" },
      });
    default:
      return new Response("not found", { status: 404 });
  }
}

let server: TestServer;
let silent: ReturnType<typeof startSilentServer>;
const ctx = loopbackContext();

beforeAll(() => {
  server = startHttpServer(handle);
  silent = startSilentServer();
});
afterAll(async () => {
  silent.close();
  await server.close();
});

type Raw = { config: Record<string, unknown>; secrets: Record<string, unknown> };

function parse(raw: Raw) {
  return {
    config: graphql.configSchema.parse(raw.config),
    secrets: graphql.secretsSchema.parse(raw.secrets),
  };
}

let counter = 0;
function source(raw: Raw): SourceSettings<
  ReturnType<typeof graphql.configSchema.parse>,
  ReturnType<typeof graphql.secretsSchema.parse>
> {
  const parsed = parse(raw);
  return { id: `gql-${++counter}`, fingerprint: fingerprintOf(parsed), ...parsed };
}

const secured = (config: Record<string, unknown> = {}): Raw => ({
  config: { endpoint: `${server.origin}/graphql`, auth: { type: "bearer" }, ...config },
  secrets: { apiKey: TOKEN },
});
const open = (config: Record<string, unknown> = {}): Raw => ({
  config: { endpoint: `${server.origin}/open/graphql`, ...config },
  secrets: {},
});

async function readAll(raw: Raw, request: Partial<ReadRequest> & { stream: { name: string } }) {
  const batches = [];
  for await (const batch of graphql.read(source(raw), { batchSize: 1000, ...request }, ctx)) {
    batches.push(batch);
  }
  return batches;
}

describe("GraphQL connection tests", () => {
  it("succeeds with a minimal query, timed stages and the root type", async () => {
    const result = await graphql.test(source(secured()), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    expect(result.stages.map((stage) => stage.name)).toEqual(["resolve", "connect", "query"]);
    expect(result.serverInfo).toEqual({ status: 200, queryType: "Query" });
  });

  it("authenticates with an API key in a named header", async () => {
    const result = await graphql.test(
      source({
        config: {
          endpoint: `${server.origin}/graphql`,
          auth: { type: "apiKey", headerName: "X-Api-Key" },
        },
        secrets: { apiKey: HEADER_KEY },
      }),
      ctx,
    );
    expect(result.success, JSON.stringify(result.error)).toBe(true);
  });

  it.each<[string, Raw | (() => Raw), ErrorCode, RegExp]>([
    [
      "a wrong token (401)",
      () => ({ ...secured(), secrets: { apiKey: "wrong-token-0000" } }),
      "AUTH_FAILED",
      /401/,
    ],
    [
      "a read-only token (403)",
      () => ({ ...secured(), secrets: { apiKey: READONLY_TOKEN } }),
      "PERMISSION_DENIED",
      /403/,
    ],
    [
      "an UNAUTHENTICATED error",
      () => ({ config: { endpoint: `${server.origin}/soft/graphql` }, secrets: {} }),
      "AUTH_FAILED",
      /Sign in first/,
    ],
    [
      "a response with errors",
      () => ({ config: { endpoint: `${server.origin}/broken/graphql` }, secrets: {} }),
      "INVALID_RESPONSE",
      /Database connection lost/,
    ],
    [
      "an HTML page",
      () => ({ config: { endpoint: `${server.origin}/html` }, secrets: {} }),
      "INVALID_RESPONSE",
      /found text\/html/,
    ],
    [
      "a missing endpoint",
      () => ({ config: { endpoint: `${server.origin}/nowhere` }, secrets: {} }),
      "RESOURCE_NOT_FOUND",
      /404/,
    ],
    [
      "a redirect to the metadata address",
      () => ({ config: { endpoint: `${server.origin}/redirect-metadata` }, secrets: {} }),
      "BLOCKED_ADDRESS",
      /169\.254\.169\.254/,
    ],
  ])("classifies %s", async (_, raw, code, message) => {
    const result = await graphql.test(source(typeof raw === "function" ? raw() : raw), ctx);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toMatch(message);
    expect(result.stages.some((stage) => !stage.ok)).toBe(true);
  });
});

describe("GraphQL discovery", () => {
  it("turns list fields and Relay connections into streams with their field types", async () => {
    const result = await graphql.discover(source(secured()), ctx);
    expect(result.ok, JSON.stringify(!result.ok && result.error)).toBe(true);
    if (!result.ok) return;
    const names = result.value.streams.map((stream) => stream.name).sort();
    // search needs an argument, me is one object, version a scalar.
    expect(names).toEqual(["customers", "orders", "products", "restricted"]);
    const customers = result.value.streams.find((stream) => stream.name === "customers")!;
    const byName = Object.fromEntries(customers.columns.map((column) => [column.name, column]));
    expect(byName.id).toMatchObject({ type: "text", nullable: false, primaryKey: true });
    expect(byName.age).toMatchObject({ type: "integer", nullable: true });
    expect(byName.score).toMatchObject({ type: "number" });
    expect(byName.active).toMatchObject({ type: "boolean", nullable: false });
    expect(byName.createdAt).toMatchObject({ type: "timestamp" });
    expect(byName.tags).toMatchObject({ type: "array" });
    expect(byName.address).toMatchObject({ type: "object", nullable: true });
    // A field that needs an argument cannot be read generically.
    expect(byName.orders).toBeUndefined();
    expect(customers.constraints.primaryKeys).toEqual(["id"]);
    const orders = result.value.streams.find((stream) => stream.name === "orders")!;
    expect(orders.columns.map((column) => column.name)).toEqual([
      "id",
      "number",
      "total",
      "status",
      "customer",
    ]);
  });

  it("says introspection is off and suggests a query", async () => {
    const result = await graphql.discover(
      source({ config: { endpoint: `${server.origin}/closed/graphql` }, secrets: {} }),
      ctx,
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("INVALID_RESPONSE");
    expect(result.error.message).toMatch(/introspection is not allowed/);
    expect(result.error.hint).toMatch(/set a query/);
  });

  it("infers the columns of a configured query from its records", async () => {
    const result = await graphql.discover(
      source(open({ query: "{ customers { id name email address { city } } }" })),
      ctx,
    );
    expect(
      result.ok && result.value.streams.map((stream) => [
        stream.name,
        stream.columns.map((c) => c.name),
      ]),
    )
      .toEqual([["customers", ["id", "name", "email", "address"]]]);
  });

  it("refuses a configured query that does not parse", () => {
    const config = graphql.configSchema.parse({
      endpoint: "https://api.example.com/graphql",
      query: "{ customers { id ",
    });
    expect(graphql.check(config, {})).toEqual([
      expect.objectContaining({ path: "query", message: expect.stringMatching(/does not parse/) }),
    ]);
  });
});

describe("GraphQL preview and read", () => {
  it("previews a Relay stream asking for only the rows it shows", async () => {
    orderPages.length = 0;
    const result = await graphql.preview(source(secured()), {
      stream: { name: "orders" },
      limit: 3,
    }, ctx);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.rows.map((row) => row.number)).toEqual([1, 2, 3]);
    // Objects one level down come with their leaf fields.
    expect(result.value.rows[0].customer).toMatchObject({ id: "c1", name: "Customer 1" });
    expect(result.value.rows[0].customer).not.toHaveProperty("address");
    expect(orderPages).toEqual([{ first: 3, after: null }]);
  });

  it("follows first/after through every page of a connection", async () => {
    orderPages.length = 0;
    const batches = await readAll(secured({ pageSize: 4 }), {
      stream: { name: "orders" },
      batchSize: 3,
    });
    expect(batches.map((batch) => batch.rows.length)).toEqual([3, 3, 3, 1]);
    expect(batches.flatMap((batch) => batch.rows.map((row) => row.number))).toEqual(
      ORDERS.map((order) => order.number),
    );
    expect(orderPages.map((page) => page.first)).toEqual([4, 4, 4]);
    expect(orderPages.map((page) => page.after)).toEqual([null, btoa("3"), btoa("7")]);
  });

  it("passes the preview limit to a list field's limit argument", async () => {
    const result = await graphql.preview(
      source(open()),
      { stream: { name: "products" }, limit: 2 },
      ctx,
    );
    expect(result.ok && result.value.rows).toEqual([
      { sku: "p0", title: "Product 0" },
      { sku: "p1", title: "Product 1" },
    ]);
  });

  it("reads a plain list field whole, in batches", async () => {
    const batches = await readAll(open(), { stream: { name: "customers" }, batchSize: 2 });
    expect(batches.map((batch) => batch.rows.length)).toEqual([2, 2, 1]);
  });

  it("pages a configured query that declares $first and $after", async () => {
    orderPages.length = 0;
    const raw = open({
      query: `query Orders($first: Int, $after: String) {
        orders(first: $first, after: $after) { edges { node { id number } } pageInfo { hasNextPage endCursor } }
      }`,
      recordsPath: "data.orders.edges",
      pageSize: 5,
    });
    const rows = (await readAll(raw, { stream: { name: "orders" } })).flatMap((batch) =>
      batch.rows
    );
    expect(rows).toEqual(ORDERS.map(({ id, number }) => ({ id, number })));
    expect(orderPages.length).toBe(2);
  });

  it("reads only rows past the cursor in an incremental read", async () => {
    const rows = (await readAll(secured(), {
      stream: { name: "orders" },
      cursor: { column: "number", after: 7 },
    })).flatMap((batch) => batch.rows);
    expect(rows.map((row) => row.number)).toEqual([8, 9, 10]);
  });

  it("carries the server's error messages when a stream's query fails", async () => {
    const result = await graphql.preview(source(open()), {
      stream: { name: "restricted" },
      limit: 5,
    }, ctx);
    expect(!result.ok && result.error).toMatchObject({
      code: "PERMISSION_DENIED",
      message: expect.stringMatching(/may not list restricted customers/),
    });
    const query = await graphql.preview(
      source(open({ query: "{ customers { id nope } }" })),
      { stream: { name: "customers" }, limit: 5 },
      ctx,
    );
    expect(!query.ok && query.error).toMatchObject({
      code: "INVALID_RESPONSE",
      message: expect.stringMatching(/Cannot query field "nope" on type "Customer"/),
    });
  });

  it("refuses a stream the server does not have", async () => {
    const result = await graphql.preview(
      source(open()),
      { stream: { name: "invoices" }, limit: 5 },
      ctx,
    );
    expect(!result.ok && result.error.code).toBe("RESOURCE_NOT_FOUND");
  });
});

describe("GraphQL secrets", () => {
  it("never repeats a token, password or secret header in any result", async () => {
    const settings: Raw[] = [
      {
        // This page echoes the Authorization header back.
        config: { endpoint: `${server.origin}/html`, auth: { type: "bearer" } },
        secrets: { apiKey: TOKEN },
      },
      {
        config: {
          endpoint: `${server.origin}/broken/graphql`,
          auth: { type: "basic", username: "u" },
        },
        secrets: { password: "basic-secret-pass" },
      },
      {
        config: {
          endpoint: `${server.origin}/redirect-metadata`,
          headers: [{ name: "X-Signature", secret: true }],
        },
        secrets: { headers: { "X-Signature": "header-secret-value-77" } },
      },
    ];
    for (const raw of settings) {
      const outputs = [
        await graphql.test(source(raw), ctx),
        await graphql.discover(source(raw), ctx),
        await graphql.preview(source(raw), { stream: { name: "orders" }, limit: 2 }, ctx),
      ];
      const text = JSON.stringify(outputs);
      for (const secret of [TOKEN, "basic-secret-pass", "header-secret-value-77"]) {
        expect(text.includes(secret), text).toBe(false);
      }
    }
  });
});

const failure = (name: string, code: ErrorCode, config: () => Record<string, unknown>) => ({
  name,
  code,
  settings: () =>
    parse({
      config: { auth: { type: "bearer" }, ...config() },
      secrets: { apiKey: "gql-failure-secret-11" },
    }),
});

runConformance({
  name: "GraphQL",
  connector: graphql,
  ctx,
  settings: () => parse(secured({ pageSize: 3 })),
  stream: { name: "orders", columns: ["id", "number", "total", "status"], rows: ORDERS.length },
  cursorColumn: "number",
  failures: [
    failure("wrong token", "AUTH_FAILED", () => ({ endpoint: `${server.origin}/graphql` })),
    failure("errors in the response", "INVALID_RESPONSE", () => ({
      endpoint: `${server.origin}/broken/graphql`,
    })),
    failure("not GraphQL", "INVALID_RESPONSE", () => ({ endpoint: `${server.origin}/html` })),
    failure(
      "missing endpoint",
      "RESOURCE_NOT_FOUND",
      () => ({ endpoint: `${server.origin}/nope` }),
    ),
    failure("refused port", "CONNECTION_REFUSED", () => ({
      endpoint: `http://127.0.0.1:${closedPort()}/graphql`,
    })),
    failure(
      "metadata address",
      "BLOCKED_ADDRESS",
      () => ({ endpoint: "http://[fd00:ec2::254]/graphql" }),
    ),
    failure("redirect to metadata", "BLOCKED_ADDRESS", () => ({
      endpoint: `${server.origin}/redirect-metadata`,
    })),
    failure(
      "unknown host",
      "HOST_NOT_FOUND",
      () => ({ endpoint: `http://${UNRESOLVABLE_HOST}/graphql` }),
    ),
    failure("silent server", "TIMEOUT", () => ({
      endpoint: `http://127.0.0.1:${silent.port}/graphql`,
      timeoutMs: 300,
    })),
  ],
});
