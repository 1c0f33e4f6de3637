/**
 * The authorization matrix: every route × {anonymous, USER owner, other USER, ADMIN,
 * revoked token}, with the status each must answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";

type Actor = "anonymous" | "owner" | "other" | "admin" | "revoked";
const actors: Actor[] = ["anonymous", "owner", "other", "admin", "revoked"];

let t: TestApp;
const credentials: Record<Actor, { cookie?: string; token?: string }> = {
  anonymous: {},
  owner: {},
  other: {},
  admin: {},
  revoked: {},
};
let ownerCookie: string;

const sourceBody = {
  name: "Matrix",
  type: "POSTGRESQL",
  host: "db.example.com",
  database: "d",
  username: "u",
  password: "matrix-password",
};

beforeAll(async () => {
  t = await startTestApp();
  await t.user("owner@example.com", "owner-password");
  await t.user("other@example.com", "other-password");
  await t.user("admin@example.com", "admin-password", "ADMIN");
  ownerCookie = await t.login("owner@example.com", "owner-password");
  credentials.owner = { cookie: ownerCookie };
  credentials.other = {
    token: (await t.token(await t.login("other@example.com", "other-password"))).token,
  };
  credentials.admin = { cookie: await t.login("admin@example.com", "admin-password") };
  const revoked = await t.token(ownerCookie, "to revoke");
  expect((await t.call("DELETE", `/api/tokens/${revoked.id}`, { cookie: ownerCookie })).status)
    .toBe(204);
  credentials.revoked = { token: revoked.token };
});
afterAll(() => t.close());

async function ownersSource(): Promise<string> {
  const reply = await t.call("POST", "/api/data-sources", {
    cookie: ownerCookie,
    json: sourceBody,
  });
  return reply.body.id;
}

async function ownersToken(): Promise<string> {
  return (await t.token(ownerCookie, "matrix")).id;
}

async function spareUser(): Promise<string> {
  const email = `spare-${crypto.randomUUID()}@example.com`;
  return (await t.user(email, "spare-password")).id;
}

type Row = {
  route: string;
  method: string;
  path: (id: string) => string;
  prepare?: () => Promise<string>;
  json?: () => unknown;
  expect: Record<Actor, number>;
};

const rows: Row[] = [
  {
    route: "me",
    method: "GET",
    path: () => "/api/auth/me",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200, revoked: 401 },
  },
  {
    route: "logout",
    method: "POST",
    path: () => "/api/auth/logout",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200, revoked: 401 },
  },
  {
    route: "list tokens",
    method: "GET",
    path: () => "/api/tokens",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200, revoked: 401 },
  },
  {
    route: "create token",
    method: "POST",
    path: () => "/api/tokens",
    json: () => ({ name: "m" }),
    expect: { anonymous: 401, owner: 201, other: 201, admin: 201, revoked: 401 },
  },
  {
    route: "revoke token",
    method: "DELETE",
    path: (id) => `/api/tokens/${id}`,
    prepare: ownersToken,
    expect: { anonymous: 401, owner: 204, other: 404, admin: 404, revoked: 401 },
  },
  {
    route: "list users",
    method: "GET",
    path: () => "/api/users",
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200, revoked: 401 },
  },
  {
    route: "create user",
    method: "POST",
    path: () => "/api/users",
    json: () => ({ email: `n-${crypto.randomUUID()}@example.com`, password: "new-password" }),
    expect: { anonymous: 401, owner: 403, other: 403, admin: 201, revoked: 401 },
  },
  {
    route: "change role",
    method: "PATCH",
    path: (id) => `/api/users/${id}`,
    prepare: spareUser,
    json: () => ({ role: "USER" }),
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200, revoked: 401 },
  },
  {
    route: "remove user",
    method: "DELETE",
    path: (id) => `/api/users/${id}`,
    prepare: spareUser,
    expect: { anonymous: 401, owner: 403, other: 403, admin: 204, revoked: 401 },
  },
  {
    route: "list sources",
    method: "GET",
    path: () => "/api/data-sources",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200, revoked: 401 },
  },
  {
    route: "create source",
    method: "POST",
    path: () => "/api/data-sources",
    json: () => sourceBody,
    expect: { anonymous: 401, owner: 201, other: 201, admin: 201, revoked: 401 },
  },
  {
    route: "get source",
    method: "GET",
    path: (id) => `/api/data-sources/${id}`,
    prepare: ownersSource,
    expect: { anonymous: 401, owner: 200, other: 403, admin: 200, revoked: 401 },
  },
  {
    route: "update source",
    method: "PUT",
    path: (id) => `/api/data-sources/${id}`,
    prepare: ownersSource,
    json: () => ({ name: "Renamed" }),
    expect: { anonymous: 401, owner: 200, other: 403, admin: 200, revoked: 401 },
  },
  {
    route: "delete source",
    method: "DELETE",
    path: (id) => `/api/data-sources/${id}`,
    prepare: ownersSource,
    expect: { anonymous: 401, owner: 204, other: 403, admin: 204, revoked: 401 },
  },
  {
    route: "audit logs",
    method: "GET",
    path: () => "/api/audit-logs",
    expect: { anonymous: 401, owner: 403, other: 403, admin: 200, revoked: 401 },
  },
  {
    route: "openapi",
    method: "GET",
    path: () => "/api/openapi.json",
    expect: { anonymous: 401, owner: 200, other: 200, admin: 200, revoked: 401 },
  },
  {
    route: "health",
    method: "GET",
    path: () => "/api/health",
    expect: { anonymous: 200, owner: 200, other: 200, admin: 200, revoked: 200 },
  },
  {
    route: "sources page",
    method: "GET",
    path: () => "/data-sources",
    expect: { anonymous: 302, owner: 200, other: 200, admin: 200, revoked: 302 },
  },
];

describe("authorization matrix", () => {
  for (const row of rows) {
    it(`${row.route}: ${actors.map((a) => `${a} ${row.expect[a]}`).join(", ")}`, async () => {
      for (const actor of actors) {
        const id = row.prepare ? await row.prepare() : "";
        // Logout ends a session: give session actors a fresh one for that row.
        const credential = row.route === "logout" && credentials[actor].cookie
          ? {
            cookie: await t.login(
              actor === "admin" ? "admin@example.com" : "owner@example.com",
              actor === "admin" ? "admin-password" : "owner-password",
            ),
          }
          : credentials[actor];
        const reply = await t.call(row.method, row.path(id), { ...credential, json: row.json?.() });
        expect(reply.status, `${actor} ${row.method} ${row.path(id)}: ${reply.text.slice(0, 200)}`)
          .toBe(row.expect[actor]);
        if (reply.status >= 400 && row.path(id).startsWith("/api/")) {
          expect(Object.keys(reply.body)).toEqual(expect.arrayContaining(["error", "code"]));
        }
      }
    });
  }

  it("sends an anonymous page visit to /login and back", async () => {
    const reply = await t.call("GET", "/data-sources?search=x");
    expect(reply.status).toBe(302);
    expect(reply.headers.get("location")).toBe("/login?next=%2Fdata-sources%3Fsearch%3Dx");
  });

  it("refuses a cookie-authenticated form post from another origin (CSRF)", async () => {
    const reply = await t.call("POST", "/api/tokens", {
      cookie: ownerCookie,
      body: "name=evil",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: "https://evil.example",
      },
    });
    expect(reply.status).toBe(403);
    const logout = await t.call("POST", "/logout", {
      cookie: ownerCookie,
      body: "",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: "https://evil.example",
      },
    });
    expect(logout.status).toBe(403);
    expect((await t.call("GET", "/api/auth/me", { cookie: ownerCookie })).status).toBe(200);
  });

  it("a bearer token is not subject to the origin check", async () => {
    const reply = await t.call("POST", "/api/tokens", {
      token: credentials.other.token,
      json: { name: "from a script" },
      headers: { origin: "https://elsewhere.example" },
    });
    expect(reply.status).toBe(201);
  });
});
