// deno-lint-ignore-file no-explicit-any
/**
 * Hostile input, generated: random and adversarial bodies, headers, query strings and path
 * ids against every JSON route never produce a 5xx or a stack trace, and every error has
 * the error shape. Injection strings in names, search and ids change nothing.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let cookie: string;
let token: string;
let sourceId: string;

const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE data_sources; --",
  '"; DROP TABLE users; --',
  "1; SELECT pg_sleep(5)",
  '{"$gt": ""}',
  "{ $where: 'sleep(1000)' }",
  "../../../../etc/passwd",
  "%00",
  "\u0000",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "\\",
  "%",
  "_",
  "🔥".repeat(50),
  "a".repeat(5000),
];

/** Any JSON-ish value, biased towards the shapes our schemas expect but wrong. */
const anyValue = fc.oneof(
  fc.constantFrom(...INJECTIONS),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string(), { maxKeys: 3 }),
);

const sourceLike = fc.record({
  name: anyValue,
  type: fc.oneof(
    fc.constantFrom(
      "POSTGRESQL",
      "MYSQL",
      "MONGODB",
      "REST_API",
      "GRAPHQL",
      "S3",
      "GOOGLE_SHEETS",
      "CSV_FILE",
    ),
    anyValue,
  ),
  host: anyValue,
  port: anyValue,
  database: anyValue,
  username: anyValue,
  password: anyValue,
  ssl: anyValue,
  apiKey: anyValue,
  configuration: fc.oneof(
    anyValue,
    fc.dictionary(fc.string({ maxLength: 12 }), anyValue, { maxKeys: 5 }),
  ),
}, { requiredKeys: [] });

/** Password changes: your own, or a user's (with a role) for an ADMIN. */
const passwordLike = fc.record({
  currentPassword: anyValue,
  newPassword: anyValue,
  password: anyValue,
  role: fc.oneof(fc.constantFrom("ADMIN", "USER"), anyValue),
}, { requiredKeys: [] });

const bodies = fc.oneof(
  sourceLike.map((value) => JSON.stringify(value)),
  passwordLike.map((value) => JSON.stringify(value)),
  anyValue.map((value) => JSON.stringify(value)),
  fc.string(), // not JSON at all
  fc.constantFrom("{", "[", "null", '{"name":', "\u0000", '{"__proto__": {"admin": true}}'),
);

type Route = { method: string; path: (id: string) => string };

const routes: Route[] = [
  { method: "POST", path: () => "/api/auth/login" },
  { method: "GET", path: () => "/api/auth/me" },
  { method: "POST", path: () => "/api/auth/password" },
  { method: "POST", path: () => "/api/tokens" },
  { method: "DELETE", path: (id) => `/api/tokens/${id}` },
  { method: "POST", path: () => "/api/users" },
  { method: "PATCH", path: (id) => `/api/users/${id}` },
  { method: "GET", path: () => "/api/data-sources" },
  { method: "POST", path: () => "/api/data-sources" },
  { method: "GET", path: (id) => `/api/data-sources/${id}` },
  { method: "PUT", path: (id) => `/api/data-sources/${id}` },
  { method: "GET", path: (id) => `/api/data-sources/${id}/schema/changes` },
  { method: "GET", path: (id) => `/api/data-sources/${id}/preview` },
  { method: "GET", path: () => "/api/audit-logs" },
];

const pathIds = fc.oneof(
  fc.constantFrom(...INJECTIONS.map(encodeURIComponent)),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.constant("0"),
);

const queryStrings = fc.dictionary(
  fc.constantFrom(
    "search",
    "type",
    "status",
    "limit",
    "offset",
    "table",
    "schema",
    "from",
    "to",
    "action",
    "userId",
  ),
  fc.oneof(fc.constantFrom(...INJECTIONS), fc.string(), fc.integer().map(String)),
  { maxKeys: 4 },
).map((params) => new URLSearchParams(params).toString());

function expectErrorShape(status: number, text: string, where: string) {
  expect(status, where).toBeLessThan(500);
  expect(text, where).not.toMatch(/at \S+ \(|\.ts:\d+:\d+|node_modules/);
  if (status >= 400) {
    const body = JSON.parse(text);
    expect(typeof body.error, where).toBe("string");
    expect(typeof body.code, where).toBe("string");
  }
}

beforeAll(async () => {
  t = await startTestApp();
  await t.user("admin@example.com", "admin-password", "ADMIN");
  cookie = await t.login("admin@example.com", "admin-password");
  token = (await t.token(cookie)).token;
  const created = await t.call("POST", "/api/data-sources", {
    cookie,
    json: { name: "Target", type: "CSV_FILE", configuration: { filePath: "a.csv" } },
  });
  sourceId = created.body.id;
});
afterAll(() => t.close());

describe("hostile input", () => {
  it("random bodies on every JSON route never give a 5xx, a stack trace or a shapeless error", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        bodies,
        pathIds,
        queryStrings,
        async (route, body, id, query) => {
          const path = `${route.path(id)}${query ? `?${query}` : ""}`;
          const withBody = route.method !== "GET" && route.method !== "DELETE";
          const reply = await t.call(route.method, path, {
            token,
            body: withBody ? body : undefined,
            headers: withBody ? { "content-type": "application/json" } : {},
          });
          expectErrorShape(
            reply.status,
            reply.text,
            `${route.method} ${path} ${body.slice(0, 80)}`,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("odd headers (content types, authorization, cookies, request ids) are refused cleanly", async () => {
    const headerValues = fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 200 }));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.record({
          "content-type": fc.oneof(
            fc.constantFrom(
              "application/json",
              "text/plain",
              "multipart/form-data",
              "application/x-www-form-urlencoded",
            ),
            headerValues,
          ),
          authorization: fc.oneof(headerValues.map((value) => `Bearer ${value}`), headerValues),
          cookie: headerValues.map((value) => `dafel_session=${value.replace(/[;\r\n]/g, "")}`),
          "x-request-id": headerValues,
        }, { requiredKeys: [] }),
        bodies,
        async (route, headers, body) => {
          const clean = Object.fromEntries(
            Object.entries(headers).filter(([, value]) => /^[\t\x20-\x7e]*$/.test(value as string)),
          ) as Record<string, string>;
          const reply = await t.call(route.method, route.path(sourceId), {
            body: route.method === "GET" ? undefined : body,
            headers: clean,
          });
          expectErrorShape(reply.status, reply.text, `${route.method} ${JSON.stringify(clean)}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("injection strings in names, search and ids are stored and matched as plain text", async () => {
    const before = await t.call("GET", "/api/data-sources", { token });
    for (
      const name of INJECTIONS.filter((value) => value.trim() && !value.includes("\u0000")).slice(
        0,
        10,
      )
    ) {
      const created = await t.call("POST", "/api/data-sources", {
        token,
        json: { name: name.slice(0, 200), type: "CSV_FILE", configuration: { filePath: "a.csv" } },
      });
      expect(created.status, name).toBe(201);
      const read = await t.call("GET", `/api/data-sources/${created.body.id}`, { token });
      expect(read.body.name).toBe(name.slice(0, 200).trim());
      const search = await t.call(
        "GET",
        `/api/data-sources?search=${encodeURIComponent(name.slice(0, 200))}`,
        { token },
      );
      expect(search.status).toBe(200);
      expect(search.body.map((s: any) => s.id)).toContain(created.body.id);
    }
    const wildcard = await t.call("GET", `/api/data-sources?search=${encodeURIComponent("%")}`, {
      token,
    });
    expect(
      wildcard.body.every((s: any) => s.name.includes("%") || (s.description ?? "").includes("%")),
    ).toBe(true);
    const after = await t.call("GET", "/api/data-sources", { token });
    expect(after.body.length).toBe(before.body.length + 10);
    // The tables are all still there.
    expect((await t.call("GET", "/api/users", { token })).status).toBe(200);
  });

  it("a prototype-pollution body does not grant anything", async () => {
    const reply = await t.call("POST", "/api/data-sources", {
      token,
      body:
        '{"name":"p","type":"CSV_FILE","configuration":{"filePath":"a.csv","__proto__":{"admin":true}},"__proto__":{"role":"ADMIN"}}',
      headers: { "content-type": "application/json" },
    });
    expect(reply.status).toBeLessThan(500);
    expect(({} as any).admin).toBeUndefined();
    expect(({} as any).role).toBeUndefined();
  });
});

describe("hostile forms", () => {
  const formRoutes = [
    "/data-sources",
    "/data-sources/new/form",
    "/data-sources/new/test",
    "/data-sources/:id/edit",
    "/data-sources/:id/edit/form",
    "/data-sources/:id/sync/schedule",
    "/tokens",
    "/users",
    "/users/:id/password",
    "/account/password",
    "/login",
  ];
  const fieldNames = fc.oneof(
    fc.constantFrom(
      "name",
      "type",
      "description",
      "host",
      "port",
      "password",
      "currentPassword",
      "newPassword",
      "confirmPassword",
      "configuration.filePath",
      "configuration.endpoint",
      "configuration.headers.0.name",
      "configuration.headers.0.value",
      "configuration.auth.type",
      "configuration.poolConfig.max",
      "email",
      "role",
      "schedule",
      "next",
    ),
    fc.string({ maxLength: 30 }),
  );

  it("random form posts to every page form never give a 5xx or a stack trace", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...formRoutes),
        fc.array(fc.tuple(fieldNames, fc.oneof(fc.constantFrom(...INJECTIONS), fc.string())), {
          maxLength: 8,
        }),
        async (route, fields) => {
          const body = new URLSearchParams(fields).toString();
          const reply = await t.call("POST", route.replace(":id", sourceId), {
            cookie,
            body,
            headers: { "content-type": "application/x-www-form-urlencoded" },
          });
          expect(reply.status, `${route} ${body.slice(0, 120)}`).toBeLessThan(500);
          expect(reply.text).not.toMatch(/at \S+ \(|\.tsx?:\d+:\d+|node_modules/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses a page form over 1 MiB with 413, before reading it", async () => {
    for (const route of ["/data-sources", "/login", "/tokens"]) {
      const reply = await t.call("POST", route, {
        cookie,
        body: `name=${"x".repeat(1024 * 1024 + 100)}`,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect(reply.status, route).toBe(413);
    }
  });
});
