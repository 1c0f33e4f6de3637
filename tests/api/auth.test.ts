// deno-lint-ignore-file no-explicit-any
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await t.user("admin@example.com", "admin-password", "ADMIN");
  await t.user("user@example.com", "user-password", "USER");
});
afterAll(() => t.close());

describe("login", () => {
  it("returns the user and an HttpOnly SameSite session cookie", async () => {
    const reply = await t.call("POST", "/api/auth/login", {
      json: { email: "Admin@Example.com", password: "admin-password" },
    });
    expect(reply.status).toBe(200);
    expect(reply.body.user).toMatchObject({ email: "admin@example.com", role: "ADMIN" });
    const cookie = reply.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^dafel_session=[a-z2-7]{32};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
  });

  it("stores only a hash of the session token", async () => {
    const cookie = await t.login("user@example.com", "user-password");
    const token = cookie.split("=")[1];
    const rows = await t.deps.database.db.query.sessions.findMany();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((row) => row.id === token)).toBe(false);
    expect(rows.every((row) => /^[0-9a-f]{64}$/.test(row.id))).toBe(true);
  });

  it("answers 401 with the error shape for a wrong password or unknown email", async () => {
    for (
      const json of [
        { email: "user@example.com", password: "wrong-password" },
        { email: "nobody@example.com", password: "whatever1" },
      ]
    ) {
      const reply = await t.call("POST", "/api/auth/login", { json });
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({
        error: "Invalid email or password",
        code: "INVALID_CREDENTIALS",
      });
    }
  });

  it("answers 400 naming the missing field", async () => {
    const reply = await t.call("POST", "/api/auth/login", { json: { email: "a@b.c" } });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe("VALIDATION_ERROR");
    expect(reply.body.details).toContainEqual(expect.objectContaining({ path: "password" }));
  });

  it("answers 400 INVALID_JSON for a body that is not JSON", async () => {
    const reply = await t.call("POST", "/api/auth/login", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe("INVALID_JSON");
  });

  it("limits attempts to 10 a minute per address and email, with Retry-After", async () => {
    const json = { email: "limited@example.com", password: "nope-nope" };
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await t.call("POST", "/api/auth/login", { json })).status);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    const limited = await t.call("POST", "/api/auth/login", { json });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another email from the same address is not affected.
    const other = await t.call("POST", "/api/auth/login", {
      json: { email: "user@example.com", password: "user-password" },
    });
    expect(other.status).toBe(200);
  });
});

describe("sessions", () => {
  it("me answers the signed-in user, and 401 without a session", async () => {
    const cookie = await t.login("user@example.com", "user-password");
    const me = await t.call("GET", "/api/auth/me", { cookie });
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe("user@example.com");
    const anonymous = await t.call("GET", "/api/auth/me");
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({ error: "Unauthorized", code: "UNAUTHORIZED" });
  });

  it("logout ends the session: the same cookie is refused afterwards", async () => {
    const cookie = await t.login("user@example.com", "user-password");
    const out = await t.call("POST", "/api/auth/logout", { cookie });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toMatch(/dafel_session=;/);
    expect((await t.call("GET", "/api/auth/me", { cookie })).status).toBe(401);
  });

  it("a new login replaces the session the browser brought (no fixation)", async () => {
    const first = await t.login("user@example.com", "user-password");
    const reply = await t.call("POST", "/api/auth/login", {
      cookie: first,
      json: { email: "user@example.com", password: "user-password" },
    });
    const second = reply.headers.get("set-cookie")!.split(";")[0];
    expect(second).not.toBe(first);
    expect((await t.call("GET", "/api/auth/me", { cookie: first })).status).toBe(401);
    expect((await t.call("GET", "/api/auth/me", { cookie: second })).status).toBe(200);
  });

  it("an expired session is refused and deleted", async () => {
    const cookie = await t.login("user@example.com", "user-password");
    const { sessions } = await import("../../db/schema.ts");
    await t.deps.db.update(sessions).set({ expiresAt: new Date(Date.now() - 1000) });
    expect((await t.call("GET", "/api/auth/me", { cookie })).status).toBe(401);
  });
});

describe("audit of sign-in", () => {
  it("records successful and failed logins and logouts", async () => {
    const cookie = await t.login("admin@example.com", "admin-password");
    const reply = await t.call("GET", "/api/audit-logs?action=AUTH_LOGIN", { cookie });
    expect(reply.status).toBe(200);
    const outcomes = new Set(reply.body.map((row: any) => row.metadata.outcome));
    expect(outcomes).toEqual(new Set(["success", "failure", "denied"]));
    const logouts = await t.call("GET", "/api/audit-logs?action=AUTH_LOGOUT", { cookie });
    expect(logouts.body.length).toBeGreaterThan(0);
    expect(logouts.body[0].metadata).toMatchObject({ outcome: "success" });
    expect(logouts.body[0].metadata.timestamp).toBeTruthy();
  });
});
