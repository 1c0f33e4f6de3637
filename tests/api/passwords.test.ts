// deno-lint-ignore-file no-explicit-any
/**
 * Changing passwords: your own with `POST /api/auth/password` (the current one first), and
 * another user's as an ADMIN with `PATCH /api/users/:id`. Sessions end, the new password
 * signs in, the old one does not, and no password reaches a response or an audit row.
 */
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLogs, sessions, users } from "../../db/schema.ts";
import { type Reply, startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let admin: string;
/** Every password these tests send, to look for in responses and audit rows. */
const used = new Set<string>();
const replies: Reply[] = [];

beforeAll(async () => {
  t = await startTestApp();
  await t.user("admin@example.com", "admin-password", "ADMIN");
  admin = await t.login("admin@example.com", "admin-password");
});
afterAll(() => t.close());

/** A fresh USER, signed in twice (two browsers). */
async function person(name: string) {
  const password = `${name}-old-password`;
  used.add(password);
  const { id } = await t.user(`${name}@example.com`, password);
  const first = await t.login(`${name}@example.com`, password);
  const second = await t.login(`${name}@example.com`, password);
  return { id, email: `${name}@example.com`, password, first, second };
}

async function call(method: string, path: string, options: Parameters<TestApp["call"]>[2]) {
  const reply = await t.call(method, path, options);
  replies.push(reply);
  return reply;
}

function changeOwn(cookie: string, currentPassword: string, newPassword: string) {
  used.add(currentPassword);
  used.add(newPassword);
  return call("POST", "/api/auth/password", { cookie, json: { currentPassword, newPassword } });
}

async function loginStatus(email: string, password: string): Promise<number> {
  return (await call("POST", "/api/auth/login", { json: { email, password } })).status;
}

async function sessionCount(userId: string): Promise<number> {
  return (await t.deps.db.select().from(sessions).where(eq(sessions.userId, userId))).length;
}

describe("changing your own password", () => {
  it("replaces the hash, keeps this session, ends the others, and audits the change", async () => {
    const ana = await person("ana");
    const [before] = await t.deps.db.select().from(users).where(eq(users.id, ana.id));
    const reply = await changeOwn(ana.first, ana.password, "ana-new-password");
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toEqual({ success: true });
    const [after] = await t.deps.db.select().from(users).where(eq(users.id, ana.id));
    expect(after.passwordHash).not.toBe(before.passwordHash);
    expect(after.passwordHash).toMatch(/^\$argon2id\$/);

    expect((await call("GET", "/api/auth/me", { cookie: ana.first })).status).toBe(200);
    expect((await call("GET", "/api/auth/me", { cookie: ana.second })).status).toBe(401);
    expect(await sessionCount(ana.id)).toBe(1);

    const audit = await call("GET", `/api/audit-logs?action=PASSWORD_CHANGE&entityId=${ana.id}`, {
      cookie: admin,
    });
    expect(audit.body).toHaveLength(1);
    expect(audit.body[0]).toMatchObject({
      userId: ana.id,
      entityType: "User",
      metadata: { outcome: "success", sessionsEnded: 1 },
    });
  });

  it("signs in with the new password and no longer with the old one", async () => {
    const ben = await person("ben");
    expect((await changeOwn(ben.first, ben.password, "ben-new-password")).status).toBe(200);
    expect(await loginStatus(ben.email, ben.password)).toBe(401);
    expect(await loginStatus(ben.email, "ben-new-password")).toBe(200);
  });

  it("refuses a wrong current password with 400 INVALID_CREDENTIALS and changes nothing", async () => {
    const cy = await person("cy");
    const reply = await changeOwn(cy.first, "not-the-password", "cy-new-password");
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({
      error: "Current password is incorrect",
      code: "INVALID_CREDENTIALS",
      details: [{ path: "currentPassword", message: "Current password is incorrect" }],
    });
    expect((await call("GET", "/api/auth/me", { cookie: cy.second })).status).toBe(200);
    expect(await loginStatus(cy.email, cy.password)).toBe(200);
    expect(await loginStatus(cy.email, "cy-new-password")).toBe(401);
    const audit = await call("GET", `/api/audit-logs?action=PASSWORD_CHANGE&entityId=${cy.id}`, {
      cookie: admin,
    });
    expect(audit.body[0].metadata).toMatchObject({
      outcome: "failure",
      reason: "wrong_current_password",
    });
  });

  it("answers 400 VALIDATION_ERROR naming a new password shorter than 8 characters", async () => {
    const di = await person("di");
    const reply = await changeOwn(di.first, di.password, "short");
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe("VALIDATION_ERROR");
    expect(reply.body.details).toEqual([
      { path: "newPassword", message: "Password must be at least 8 characters" },
    ]);
    const missing = await call("POST", "/api/auth/password", { cookie: di.first, json: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.details.map((detail: any) => detail.path).sort()).toEqual([
      "currentPassword",
      "newPassword",
    ]);
    expect(await loginStatus(di.email, di.password)).toBe(200);
  });

  it("limits attempts like logins: 10 a minute per user, then 429 with Retry-After", async () => {
    const ed = await person("ed");
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await changeOwn(ed.first, `guess-number-${i}`, "ed-new-password")).status);
    }
    expect(statuses).toEqual(Array(10).fill(400));
    // Even the right password is refused until the minute is over.
    const limited = await changeOwn(ed.first, ed.password, "ed-new-password");
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe("RATE_LIMITED");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another session of the same user shares the counter.
    expect((await changeOwn(ed.second, ed.password, "ed-new-password")).status).toBe(429);
    expect(await loginStatus(ed.email, ed.password)).toBe(200);
  });

  it("with an API token, ends every session of the user and keeps the token", async () => {
    const fay = await person("fay");
    const { token } = await t.token(fay.first);
    used.add("fay-new-password");
    const reply = await call("POST", "/api/auth/password", {
      token,
      json: { currentPassword: fay.password, newPassword: "fay-new-password" },
    });
    expect(reply.status).toBe(200);
    expect(await sessionCount(fay.id)).toBe(0);
    expect((await call("GET", "/api/auth/me", { token })).status).toBe(200);
  });

  it("needs a signed-in user", async () => {
    const reply = await call("POST", "/api/auth/password", {
      json: { currentPassword: "admin-password", newPassword: "anything-long" },
    });
    expect(reply.status).toBe(401);
    expect(reply.body.code).toBe("UNAUTHORIZED");
  });
});

describe("an ADMIN setting another user's password", () => {
  it("sets it, ends all of that user's sessions, and audits it without the password", async () => {
    const gil = await person("gil");
    used.add("gil-reset-password");
    const reply = await call("PATCH", `/api/users/${gil.id}`, {
      cookie: admin,
      json: { password: "gil-reset-password" },
    });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ id: gil.id, email: gil.email, role: "USER" });
    expect(reply.body).not.toHaveProperty("passwordHash");
    expect(await sessionCount(gil.id)).toBe(0);
    expect((await call("GET", "/api/auth/me", { cookie: gil.first })).status).toBe(401);
    expect((await call("GET", "/api/auth/me", { cookie: gil.second })).status).toBe(401);
    expect(await loginStatus(gil.email, gil.password)).toBe(401);
    expect(await loginStatus(gil.email, "gil-reset-password")).toBe(200);
    // The admin's own session is untouched.
    expect((await call("GET", "/api/auth/me", { cookie: admin })).status).toBe(200);

    const audit = await call("GET", `/api/audit-logs?action=USER_UPDATE&entityId=${gil.id}`, {
      cookie: admin,
    });
    expect(audit.body).toHaveLength(1);
    expect(audit.body[0].metadata).toMatchObject({
      outcome: "success",
      passwordChanged: true,
      sessionsEnded: 2,
    });
  });

  it("changes role and password together, and still the role alone", async () => {
    const hal = await person("hal");
    used.add("hal-reset-password");
    const both = await call("PATCH", `/api/users/${hal.id}`, {
      cookie: admin,
      json: { role: "ADMIN", password: "hal-reset-password" },
    });
    expect(both.status).toBe(200);
    expect(both.body.role).toBe("ADMIN");
    expect(await sessionCount(hal.id)).toBe(0);
    const roleOnly = await call("PATCH", `/api/users/${hal.id}`, {
      cookie: admin,
      json: { role: "USER" },
    });
    expect(roleOnly.status).toBe(200);
    expect(roleOnly.body.role).toBe("USER");
    expect(await loginStatus(hal.email, "hal-reset-password")).toBe(200);
  });

  it("answers 400 for a short password or an empty body, and 404 for an unknown user", async () => {
    const ivy = await person("ivy");
    const short = await call("PATCH", `/api/users/${ivy.id}`, {
      cookie: admin,
      json: { password: "short" },
    });
    expect(short.status).toBe(400);
    expect(short.body.code).toBe("VALIDATION_ERROR");
    expect(short.body.details).toEqual([
      { path: "password", message: "Password must be at least 8 characters" },
    ]);
    const empty = await call("PATCH", `/api/users/${ivy.id}`, { cookie: admin, json: {} });
    expect(empty.status).toBe(400);
    expect(empty.body.code).toBe("VALIDATION_ERROR");
    used.add("nobody-password");
    const unknown = await call("PATCH", "/api/users/aaaaaaaaaaaaaaaaaaaaaaaa", {
      cookie: admin,
      json: { password: "nobody-password" },
    });
    expect(unknown.status).toBe(404);
    expect(await sessionCount(ivy.id)).toBe(2);
  });

  it("keeps the admin's own session when admins set their own password", async () => {
    const boss = await t.user("boss@example.com", "boss-old-password", "ADMIN");
    used.add("boss-old-password");
    const mine = await t.login("boss@example.com", "boss-old-password");
    const elsewhere = await t.login("boss@example.com", "boss-old-password");
    used.add("boss-new-password");
    const reply = await call("PATCH", `/api/users/${boss.id}`, {
      cookie: mine,
      json: { password: "boss-new-password" },
    });
    expect(reply.status).toBe(200);
    expect((await call("GET", "/api/auth/me", { cookie: mine })).status).toBe(200);
    expect((await call("GET", "/api/auth/me", { cookie: elsewhere })).status).toBe(401);
  });

  it("refuses a USER setting another user's password (403), and changes nothing", async () => {
    const jo = await person("jo");
    const kim = await person("kim");
    used.add("taken-over-password");
    for (const credential of [{ cookie: jo.first }, { token: (await t.token(jo.first)).token }]) {
      const reply = await call("PATCH", `/api/users/${kim.id}`, {
        ...credential,
        json: { password: "taken-over-password" },
      });
      expect(reply.status).toBe(403);
      expect(reply.body.code).toBe("FORBIDDEN");
    }
    const own = await call("PATCH", `/api/users/${jo.id}`, {
      cookie: jo.first,
      json: { password: "taken-over-password" },
    });
    expect(own.status).toBe(403);
    expect(await sessionCount(kim.id)).toBe(2);
    expect(await loginStatus(kim.email, kim.password)).toBe(200);
    expect(await loginStatus(kim.email, "taken-over-password")).toBe(401);
  });
});

describe("password secrecy", () => {
  it("puts no password in any response or audit row", async () => {
    expect(used.size).toBeGreaterThan(10);
    const rows = await t.deps.db.select().from(auditLogs);
    expect(rows.some((row) => row.action === "PASSWORD_CHANGE")).toBe(true);
    const audited = JSON.stringify(rows);
    const answered = replies.map((reply) => `${[...reply.headers]}\n${reply.text}`).join("\n");
    for (const password of used) {
      expect(audited, "audit rows").not.toContain(password);
      expect(answered, "responses").not.toContain(password);
    }
    const hashes = (await t.deps.db.select().from(users)).map((user) => user.passwordHash);
    expect(hashes.every((hash) => hash.startsWith("$argon2id$"))).toBe(true);
  });
});
