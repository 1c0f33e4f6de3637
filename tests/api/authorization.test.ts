/**
 * The authorization matrix: every route, API and pages, × {anonymous, the USER who owns
 * the resource, another USER (with a bearer token), an ADMIN, a revoked token, an expired
 * session}, with the status each must answer. Plus CSRF, session fixation and reuse after
 * logout.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessions } from "../../db/schema.ts";
import { hashToken } from "../../vault/tokens.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";

type Actor = "anonymous" | "owner" | "other" | "admin" | "revoked" | "expired";
const actors: Actor[] = ["anonymous", "owner", "other", "admin", "revoked", "expired"];

let t: TestApp;
const credentials = {} as Record<Actor, { cookie?: string; token?: string }>;
let ownerCookie: string;

/** A CSV source: every operation answers quickly without a server (its file is missing). */
const sourceBody = { name: "Matrix", type: "CSV_FILE", configuration: { filePath: "matrix.csv" } };

beforeAll(async () => {
  t = await startTestApp({ env: { CONNECTION_TESTS_PER_MINUTE: "1000" } });
  await t.user("owner@example.com", "owner-password");
  await t.user("other@example.com", "other-password");
  await t.user("admin@example.com", "admin-password", "ADMIN");
  ownerCookie = await t.login("owner@example.com", "owner-password");
  credentials.anonymous = {};
  credentials.owner = { cookie: ownerCookie };
  credentials.other = {
    token: (await t.token(await t.login("other@example.com", "other-password"))).token,
  };
  credentials.admin = { cookie: await t.login("admin@example.com", "admin-password") };
  const revoked = await t.token(ownerCookie, "to revoke");
  expect((await t.call("DELETE", `/api/tokens/${revoked.id}`, { cookie: ownerCookie })).status)
    .toBe(204);
  credentials.revoked = { token: revoked.token };
  const expired = await t.login("owner@example.com", "owner-password");
  await t.deps.db.update(sessions).set({ expiresAt: new Date(Date.now() - 60_000) })
    .where(eq(sessions.id, hashToken(expired.split("=")[1])));
  credentials.expired = { cookie: expired };
});
afterAll(() => t.close());

async function ownersSource(): Promise<Record<string, string>> {
  const reply = await t.call("POST", "/api/data-sources", {
    cookie: ownerCookie,
    json: sourceBody,
  });
  return { id: reply.body.id };
}

async function ownersSync(): Promise<Record<string, string>> {
  const { id } = await ownersSource();
  const reply = await t.call("POST", `/api/data-sources/${id}/sync`, {
    cookie: ownerCookie,
    json: {},
  });
  expect(reply.status, reply.text).toBe(202);
  return { id, logId: reply.body.syncLogId };
}

async function ownersToken(): Promise<Record<string, string>> {
  return { id: (await t.token(ownerCookie, "matrix")).id };
}

async function spareUser(): Promise<Record<string, string>> {
  return { id: (await t.user(`spare-${crypto.randomUUID()}@example.com`, "spare-password")).id };
}

type Row = {
  method: string;
  path: string;
  /** Tells apart rows of the same route. */
  label?: string;
  prepare?: () => Promise<Record<string, string>>;
  json?: (actor: Actor) => unknown;
  form?: Record<string, string> | ((actor: Actor) => Record<string, string>);
  /** anonymous, owner, other, admin, revoked, expired */
  expect: [number, number, number, number, number, number];
};

/** Each actor's own password, kept as it is: later rows still sign in with it. */
function samePassword(actor: Actor) {
  return { currentPassword: `${actor}-password`, newPassword: `${actor}-password` };
}

const sourceForm = { name: "Form", type: "CSV_FILE", "configuration.filePath": "form.csv" };
const api = { read: [401, 200, 200, 200, 401, 401] as Row["expect"] };

const rows: Row[] = [
  // Sessions and tokens
  { method: "GET", path: "/api/auth/me", expect: api.read },
  { method: "POST", path: "/api/auth/logout", expect: [401, 200, 200, 200, 401, 401] },
  {
    method: "POST",
    path: "/api/auth/password",
    json: samePassword,
    expect: [401, 200, 200, 200, 401, 401],
  },
  { method: "GET", path: "/api/tokens", expect: api.read },
  {
    method: "POST",
    path: "/api/tokens",
    json: () => ({ name: "m" }),
    expect: [401, 201, 201, 201, 401, 401],
  },
  {
    method: "DELETE",
    path: "/api/tokens/:id",
    prepare: ownersToken,
    expect: [401, 204, 404, 404, 401, 401],
  },
  // Users (ADMIN)
  { method: "GET", path: "/api/users", expect: [401, 403, 403, 200, 401, 401] },
  {
    method: "POST",
    path: "/api/users",
    json: () => ({
      email: `n-${crypto.randomUUID()}@example.com`,
      password: "fresh-user-password",
    }),
    expect: [401, 403, 403, 201, 401, 401],
  },
  {
    method: "PATCH",
    path: "/api/users/:id",
    prepare: spareUser,
    json: () => ({ role: "USER" }),
    expect: [401, 403, 403, 200, 401, 401],
  },
  {
    method: "PATCH",
    path: "/api/users/:id",
    label: "password",
    prepare: spareUser,
    json: () => ({ password: "spare-new-password" }),
    expect: [401, 403, 403, 200, 401, 401],
  },
  {
    method: "DELETE",
    path: "/api/users/:id",
    prepare: spareUser,
    expect: [401, 403, 403, 204, 401, 401],
  },
  // Data sources
  { method: "GET", path: "/api/data-sources", expect: api.read },
  {
    method: "POST",
    path: "/api/data-sources",
    json: () => sourceBody,
    expect: [401, 201, 201, 201, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "PUT",
    path: "/api/data-sources/:id",
    prepare: ownersSource,
    json: () => ({ name: "Renamed" }),
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "DELETE",
    path: "/api/data-sources/:id",
    prepare: ownersSource,
    expect: [401, 204, 403, 204, 401, 401],
  },
  {
    method: "POST",
    path: "/api/data-sources/:id/test",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/schema",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/schema/changes",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/preview?table=x",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  // Sync
  {
    method: "POST",
    path: "/api/data-sources/:id/sync",
    prepare: ownersSource,
    json: () => ({}),
    expect: [401, 202, 403, 202, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/sync-logs",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/sync-logs/:logId",
    prepare: ownersSync,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "POST",
    path: "/api/data-sources/:id/sync-logs/:logId/cancel",
    prepare: ownersSync,
    expect: [401, 202, 403, 202, 401, 401],
  },
  {
    method: "GET",
    path: "/api/data-sources/:id/sync-settings",
    prepare: ownersSource,
    expect: [401, 200, 403, 200, 401, 401],
  },
  {
    method: "PUT",
    path: "/api/data-sources/:id/sync-settings",
    prepare: ownersSource,
    json: () => ({ schedule: null }),
    expect: [401, 200, 403, 200, 401, 401],
  },
  // Others
  { method: "POST", path: "/api/test-demo", expect: [401, 409, 409, 409, 401, 401] },
  { method: "GET", path: "/api/audit-logs", expect: [401, 403, 403, 200, 401, 401] },
  { method: "GET", path: "/api/files", expect: api.read },
  { method: "GET", path: "/api/openapi.json", expect: api.read },
  { method: "GET", path: "/api/health", expect: [200, 200, 200, 200, 200, 200] },
  // Pages: anonymous, revoked and expired go to /login (302); forms redirect (303) on success.
  { method: "GET", path: "/data-sources", expect: [302, 200, 200, 200, 302, 302] },
  { method: "GET", path: "/data-sources/new", expect: [302, 200, 200, 200, 302, 302] },
  {
    method: "POST",
    path: "/data-sources",
    form: sourceForm,
    expect: [302, 303, 303, 303, 302, 302],
  },
  {
    method: "GET",
    path: "/data-sources/:id",
    prepare: ownersSource,
    expect: [302, 200, 403, 200, 302, 302],
  },
  {
    method: "GET",
    path: "/data-sources/:id/edit",
    prepare: ownersSource,
    expect: [302, 200, 403, 200, 302, 302],
  },
  {
    method: "POST",
    path: "/data-sources/:id/edit",
    prepare: ownersSource,
    form: { name: "Edited", "configuration.filePath": "edited.csv" },
    expect: [302, 303, 403, 303, 302, 302],
  },
  {
    method: "POST",
    path: "/data-sources/:id/test",
    prepare: ownersSource,
    expect: [302, 200, 403, 200, 302, 302],
  },
  {
    // Without htmx the schema fragment sends the browser to the detail page's schema section.
    method: "GET",
    path: "/data-sources/:id/schema",
    prepare: ownersSource,
    expect: [302, 302, 403, 302, 302, 302],
  },
  {
    method: "GET",
    path: "/data-sources/:id/delete",
    prepare: ownersSource,
    expect: [302, 200, 403, 200, 302, 302],
  },
  {
    method: "POST",
    path: "/data-sources/:id/delete",
    prepare: ownersSource,
    expect: [302, 303, 403, 303, 302, 302],
  },
  {
    method: "GET",
    path: "/data-sources/:id/sync",
    prepare: ownersSource,
    expect: [302, 200, 403, 200, 302, 302],
  },
  { method: "GET", path: "/tokens", expect: [302, 200, 200, 200, 302, 302] },
  {
    method: "POST",
    path: "/tokens",
    form: { name: "page token" },
    expect: [302, 200, 200, 200, 302, 302],
  },
  { method: "GET", path: "/account", expect: [302, 200, 200, 200, 302, 302] },
  {
    method: "POST",
    path: "/account/password",
    form: (actor) => ({ ...samePassword(actor), confirmPassword: `${actor}-password` }),
    expect: [302, 200, 200, 200, 302, 302],
  },
  { method: "GET", path: "/users", expect: [302, 403, 403, 200, 302, 302] },
  {
    method: "POST",
    path: "/users/:id/password",
    prepare: spareUser,
    form: { password: "spare-new-password" },
    expect: [302, 403, 403, 200, 302, 302],
  },
  { method: "GET", path: "/audit", expect: [302, 403, 403, 200, 302, 302] },
];

function fill(path: string, ids: Record<string, string>): string {
  return path.replace(/:(\w+)/g, (_, name) => ids[name] ?? "");
}

describe("authorization matrix", () => {
  for (const row of rows) {
    it(`${row.method} ${row.path}${row.label ? ` (${row.label})` : ""}: ${actors.map((a, i) => `${a} ${row.expect[i]}`).join(", ")}`, async () => {
      for (const [index, actor] of actors.entries()) {
        const ids = row.prepare ? await row.prepare() : {};
        const path = fill(row.path, ids);
        // Logging out ends the session: give session actors a fresh one for that row.
        const credential =
          row.path === "/api/auth/logout" && (actor === "owner" || actor === "admin")
            ? { cookie: await t.login(`${actor}@example.com`, `${actor}-password`) }
            : credentials[actor];
        const form = typeof row.form === "function" ? row.form(actor) : row.form;
        const reply = await t.call(row.method, path, {
          ...credential,
          json: row.json?.(actor),
          body: form ? new URLSearchParams(form).toString() : undefined,
          // Pages are posted by a browser, which always says where the form came from.
          headers: form
            ? { "content-type": "application/x-www-form-urlencoded", origin: "http://localhost" }
            : path.startsWith("/api/")
            ? undefined
            : { origin: "http://localhost" },
        });
        expect(reply.status, `${actor} ${row.method} ${path}: ${reply.text.slice(0, 200)}`)
          .toBe(row.expect[index]);
        if (reply.status >= 400 && path.startsWith("/api/")) {
          expect(Object.keys(reply.body)).toEqual(expect.arrayContaining(["error", "code"]));
        }
        if (["anonymous", "revoked", "expired"].includes(actor) && reply.status === 302) {
          expect(reply.headers.get("location")).toMatch(/^\/login\?next=/);
        }
      }
    });
  }

  it("every route of the app is in the matrix", () => {
    const covered = new Set(rows.map((row) => `${row.method} ${row.path.split("?")[0]}`));
    const exempt = new Set([
      "POST /api/auth/login",
      "GET /metrics",
      "POST /api/files", // multipart: tests/api/files.test.ts covers its access rules
      "GET /login",
      "POST /login",
      "POST /logout",
      "GET /setup",
      "POST /setup",
      "GET /",
    ]);
    const missing = t.app.routes
      .filter((route) => route.method !== "ALL")
      .map((route) => `${route.method} ${route.path}`)
      .filter((route) => !covered.has(route) && !exempt.has(route));
    // Page routes that only re-render a form fragment follow the same guard as their page.
    const fragments = missing.filter((route) =>
      /\/(form|upload|test|preview|discover|schedule|cancel|revoke|role)$/.test(route) ||
      route.includes("/sync/") || /^POST \/users/.test(route) ||
      route === "POST /data-sources/:id/sync"
    );
    expect(missing.filter((route) => !fragments.includes(route))).toEqual([]);
  });

  it("sends an anonymous page visit to /login and back", async () => {
    const reply = await t.call("GET", "/data-sources?search=x");
    expect(reply.status).toBe(302);
    expect(reply.headers.get("location")).toBe("/login?next=%2Fdata-sources%3Fsearch%3Dx");
  });
});

describe("forgery, fixation and reuse", () => {
  it("refuses a cookie-authenticated form post from another origin (CSRF)", async () => {
    const evil = {
      "content-type": "application/x-www-form-urlencoded",
      origin: "https://evil.example",
    };
    const token = await t.call("POST", "/api/tokens", {
      cookie: ownerCookie,
      body: "name=evil",
      headers: evil,
    });
    expect(token.status).toBe(403);
    const page = await t.call("POST", "/tokens", {
      cookie: ownerCookie,
      body: "name=evil",
      headers: evil,
    });
    expect(page.status).toBe(403);
    const logout = await t.call("POST", "/logout", {
      cookie: ownerCookie,
      body: "",
      headers: evil,
    });
    expect(logout.status).toBe(403);
    expect((await t.call("GET", "/api/auth/me", { cookie: ownerCookie })).status).toBe(200);
  });

  it("refuses a form post with neither Origin nor Sec-Fetch-Site", async () => {
    const reply = await t.call("POST", "/tokens", {
      cookie: ownerCookie,
      body: "name=x",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "" },
    });
    expect(reply.status).toBe(403);
  });

  it("a bearer token is not subject to the origin check", async () => {
    const reply = await t.call("POST", "/api/tokens", {
      token: credentials.other.token,
      json: { name: "from a script" },
      headers: { origin: "https://elsewhere.example" },
    });
    expect(reply.status).toBe(201);
  });

  it("a session token planted before login is never adopted (fixation)", async () => {
    const planted = "dafel_session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const reply = await t.call("POST", "/api/auth/login", {
      cookie: planted,
      json: { email: "owner@example.com", password: "owner-password" },
    });
    const issued = reply.headers.get("set-cookie")!.split(";")[0];
    expect(issued).not.toBe(planted);
    expect((await t.call("GET", "/api/auth/me", { cookie: planted })).status).toBe(401);
  });

  it("a session cookie and a page are refused after logout", async () => {
    const cookie = await t.login("owner@example.com", "owner-password");
    expect((await t.call("POST", "/api/auth/logout", { cookie })).status).toBe(200);
    expect((await t.call("GET", "/api/auth/me", { cookie })).status).toBe(401);
    expect((await t.call("GET", "/data-sources", { cookie })).status).toBe(302);
  });

  it("an API token is refused after it is revoked, on the API and on pages", async () => {
    expect((await t.call("GET", "/api/data-sources", credentials.revoked)).status).toBe(401);
    expect((await t.call("GET", "/tokens", credentials.revoked)).status).toBe(302);
  });
});
