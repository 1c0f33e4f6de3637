// deno-lint-ignore-file no-explicit-any
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiTokens } from "../../db/schema.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let admin: string;
let adminId: string;
let user: string;

beforeAll(async () => {
  t = await startTestApp();
  adminId = (await t.user("admin@example.com", "admin-password", "ADMIN")).id;
  await t.user("user@example.com", "user-password");
  admin = await t.login("admin@example.com", "admin-password");
  user = await t.login("user@example.com", "user-password");
});
afterAll(() => t.close());

describe("API tokens", () => {
  it("shows a token once, stores only its hash, and lists it without the value", async () => {
    const created = await t.call("POST", "/api/tokens", {
      cookie: user,
      json: { name: "ci script" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "ci script" });
    expect(created.body.token).toMatch(/^dds_[a-z2-7]{39}$/);
    const rows = await t.deps.db.select().from(apiTokens);
    expect(JSON.stringify(rows)).not.toContain(created.body.token);
    const list = await t.call("GET", "/api/tokens", { cookie: user });
    expect(list.body).toEqual([
      expect.objectContaining({ id: created.body.id, name: "ci script", lastUsedAt: null }),
    ]);
    expect(list.text).not.toContain(created.body.token);
  });

  it("authenticates a bearer token, records its last use, and refuses it once revoked", async () => {
    const { id, token } = await t.token(user, "short-lived");
    const me = await t.call("GET", "/api/auth/me", { token });
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe("user@example.com");
    const list = await t.call("GET", "/api/tokens", { token });
    expect(list.body.find((row: any) => row.id === id).lastUsedAt).not.toBeNull();
    expect((await t.call("DELETE", `/api/tokens/${id}`, { token })).status).toBe(204);
    expect((await t.call("GET", "/api/auth/me", { token })).status).toBe(401);
    expect((await t.call("DELETE", `/api/tokens/${id}`, { cookie: user })).status).toBe(404);
  });

  it("expires after 90 days unless told otherwise, and an expired token no longer works", async () => {
    const before = Date.now();
    const standard = await t.call("POST", "/api/tokens", { cookie: user, json: { name: "std" } });
    expect(standard.status).toBe(201);
    const expiresAt = Date.parse(standard.body.expiresAt);
    const day = 24 * 60 * 60 * 1000;
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90 * day);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 90 * day);

    const week = await t.call("POST", "/api/tokens", {
      cookie: user,
      json: { name: "week", expiresInDays: 7 },
    });
    expect(Date.parse(week.body.expiresAt)).toBeLessThanOrEqual(Date.now() + 7 * day);
    const forever = await t.call("POST", "/api/tokens", {
      cookie: user,
      json: { name: "forever", expiresInDays: null },
    });
    expect(forever.body.expiresAt).toBeNull();

    for (const expiresInDays of [0, -1, 1.5, 3651, "30"]) {
      const bad = await t.call("POST", "/api/tokens", {
        cookie: user,
        json: { name: "bad", expiresInDays },
      });
      expect(bad.status, String(expiresInDays)).toBe(400);
      expect(bad.body.details[0].path).toBe("expiresInDays");
    }

    // The week is over: the token is refused, and the list says so.
    expect((await t.call("GET", "/api/auth/me", { token: week.body.token })).status).toBe(200);
    await t.deps.db.update(apiTokens).set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(apiTokens.id, week.body.id));
    expect((await t.call("GET", "/api/auth/me", { token: week.body.token })).status).toBe(401);
    expect((await t.call("GET", "/api/auth/me", { token: forever.body.token })).status).toBe(200);
    const list = await t.call("GET", "/api/tokens", { cookie: user });
    expect(list.body.find((row: any) => row.id === week.body.id).expiresAt).not.toBeNull();
    const page = await t.call("GET", "/tokens", { cookie: user });
    const row = page.text.slice(page.text.indexOf(`id="token-${week.body.id}"`));
    expect(row.slice(0, row.indexOf("</tr>"))).toContain("Expired");
    for (const id of [standard.body.id, week.body.id, forever.body.id]) {
      await t.call("DELETE", `/api/tokens/${id}`, { cookie: user });
    }
  });

  it("refuses a malformed or unknown bearer token even with a valid cookie", async () => {
    for (const authorization of ["Bearer nope", "Basic abc", "Bearer dds_aaaaaaaaaaaaaaaaaaaa"]) {
      const reply = await t.call("GET", "/api/auth/me", {
        cookie: user,
        headers: { authorization },
      });
      expect(reply.status, authorization).toBe(401);
    }
  });

  it("validates the name and audits create and delete", async () => {
    expect((await t.call("POST", "/api/tokens", { cookie: user, json: { name: "" } })).status).toBe(
      400,
    );
    expect((await t.call("POST", "/api/tokens", { cookie: user, json: {} })).status).toBe(400);
    const { id } = await t.token(user, "audited");
    await t.call("DELETE", `/api/tokens/${id}`, { cookie: user });
    const audit = await t.call("GET", `/api/audit-logs?entityId=${id}`, { cookie: admin });
    expect(audit.body.map((row: any) => row.action).sort()).toEqual([
      "TOKEN_CREATE",
      "TOKEN_DELETE",
    ]);
  });
});

describe("users", () => {
  it("an admin creates, lists, re-roles and removes users", async () => {
    const created = await t.call("POST", "/api/users", {
      cookie: admin,
      json: { email: "New.Person@Example.com", password: "fresh-user-password", role: "USER" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: "new.person@example.com", role: "USER" });
    expect(created.body).not.toHaveProperty("passwordHash");
    const list = await t.call("GET", "/api/users", { cookie: admin });
    expect(list.body.map((u: any) => u.email)).toContain("new.person@example.com");
    expect(list.text).not.toContain("argon2");
    const promoted = await t.call("PATCH", `/api/users/${created.body.id}`, {
      cookie: admin,
      json: { role: "ADMIN" },
    });
    expect(promoted.body.role).toBe("ADMIN");
    expect((await t.call("DELETE", `/api/users/${created.body.id}`, { cookie: admin })).status)
      .toBe(204);
    const audit = await t.call("GET", `/api/audit-logs?entityId=${created.body.id}`, {
      cookie: admin,
    });
    expect(audit.body.map((row: any) => row.action).sort()).toEqual([
      "USER_CREATE",
      "USER_DELETE",
      "USER_UPDATE",
    ]);
  });

  it("answers 409 for a taken email (any case) and 400 for a short password", async () => {
    const taken = await t.call("POST", "/api/users", {
      cookie: admin,
      json: { email: "USER@example.com", password: "whatever-1" },
    });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("CONFLICT");
    const short = await t.call("POST", "/api/users", {
      cookie: admin,
      json: { email: "x@example.com", password: "short" },
    });
    expect(short.status).toBe(400);
    expect(short.body.details[0].path).toBe("password");
  });

  it("never leaves the app without an administrator, nor removes a user who owns sources", async () => {
    expect((await t.call("DELETE", `/api/users/${adminId}`, { cookie: admin })).status).toBe(409);
    expect(
      (await t.call("PATCH", `/api/users/${adminId}`, { cookie: admin, json: { role: "USER" } }))
        .status,
    ).toBe(409);
    const owner = await t.user("owner@example.com", "owner-password");
    const ownerCookie = await t.login("owner@example.com", "owner-password");
    await t.call("POST", "/api/data-sources", {
      cookie: ownerCookie,
      json: { name: "kept", type: "CSV_FILE", configuration: { filePath: "a.csv" } },
    });
    const refused = await t.call("DELETE", `/api/users/${owner.id}`, { cookie: admin });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/owns 1 data source/);
    expect((await t.call("GET", "/api/data-sources", { cookie: ownerCookie })).body).toHaveLength(
      1,
    );
  });

  it("ends a removed user's sessions and tokens", async () => {
    const gone = await t.user("gone@example.com", "gone-password");
    const cookie = await t.login("gone@example.com", "gone-password");
    const { token } = await t.token(cookie);
    expect((await t.call("DELETE", `/api/users/${gone.id}`, { cookie: admin })).status).toBe(204);
    expect((await t.call("GET", "/api/auth/me", { cookie })).status).toBe(401);
    expect((await t.call("GET", "/api/auth/me", { token })).status).toBe(401);
  });
});
