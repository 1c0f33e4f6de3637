import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logLines, startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

function form(fields: Record<string, string>, cookie?: string) {
  return {
    body: new URLSearchParams(fields).toString(),
    cookie,
    headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://localhost" },
  };
}

describe("first run and sign-in pages", () => {
  it("sends /login to /setup while no user exists, and /setup creates the first ADMIN", async () => {
    const login = await t.call("GET", "/login");
    expect(login.status).toBe(302);
    expect(login.headers.get("location")).toBe("/setup");
    const page = await t.call("GET", "/setup");
    expect(page.status).toBe(200);
    expect(page.text).toContain("Create administrator");
    const invalid = await t.call(
      "POST",
      "/setup",
      form({ email: "not-an-email", password: "short" }),
    );
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain("Must be an email address");
    expect(invalid.text).toContain("at least 8 characters");
    expect(invalid.text).toContain('value="not-an-email"');
    const created = await t.call(
      "POST",
      "/setup",
      form({ email: "Boss@Example.com", password: "boss-password" }),
    );
    expect(created.status).toBe(303);
    expect(created.headers.get("location")).toBe("/data-sources");
    const cookie = created.headers.get("set-cookie")!.split(";")[0];
    const me = await t.call("GET", "/api/auth/me", { cookie });
    expect(me.body.user).toMatchObject({ email: "boss@example.com", role: "ADMIN" });
  });

  it("closes /setup once a user exists", async () => {
    expect((await t.call("GET", "/setup")).headers.get("location")).toBe("/login");
    const again = await t.call(
      "POST",
      "/setup",
      form({ email: "second@example.com", password: "second-password" }),
    );
    expect(again.status).toBe(303);
    expect(again.headers.get("location")).toBe("/login");
    const users = await t.deps.db.query.users.findMany();
    expect(users.map((u) => u.email)).toEqual(["boss@example.com"]);
  });

  it("signs in with the form, returns to the page asked for, and refuses open redirects", async () => {
    const wrong = await t.call(
      "POST",
      "/login",
      form({ email: "boss@example.com", password: "nope-nope" }),
    );
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain("Invalid email or password");
    const ok = await t.call(
      "POST",
      "/login",
      form({
        email: "boss@example.com",
        password: "boss-password",
        next: "/data-sources?search=a",
      }),
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/data-sources?search=a");
    for (const next of ["//evil.example/x", "https://evil.example", "/\\evil.example"]) {
      const reply = await t.call(
        "POST",
        "/login",
        form({ email: "boss@example.com", password: "boss-password", next }),
      );
      expect(reply.headers.get("location"), next).toBe("/data-sources");
    }
    const cookie = ok.headers.get("set-cookie")!.split(";")[0];
    const list = await t.call("GET", "/data-sources", { cookie });
    expect(list.status).toBe(200);
    expect(list.text).toContain("Data sources");
    expect(list.text).toContain("boss@example.com");
    const out = await t.call("POST", "/logout", form({}, cookie));
    expect(out.status).toBe(303);
    expect((await t.call("GET", "/data-sources", { cookie })).status).toBe(302);
  });

  it("refuses a login form posted from another origin", async () => {
    const reply = await t.call("POST", "/login", {
      ...form({ email: "boss@example.com", password: "boss-password" }),
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: "https://evil.example",
      },
    });
    expect(reply.status).toBe(403);
  });

  it("renders a 404 page for an unknown page and JSON for an unknown API route", async () => {
    const cookie = await t.login("boss@example.com", "boss-password");
    const page = await t.call("GET", "/nowhere", { cookie });
    expect(page.status).toBe(404);
    expect(page.headers.get("content-type")).toContain("text/html");
    const api = await t.call("GET", "/api/nowhere", { cookie });
    expect(api.status).toBe(404);
    expect(api.body.code).toBe("NOT_FOUND");
  });

  it("serves the vendored htmx and the stylesheet", async () => {
    const htmx = await t.call("GET", "/static/vendor/htmx-2.0.11.min.js");
    expect(htmx.status).toBe(200);
    expect(htmx.text.length).toBeGreaterThan(40_000);
    expect((await t.call("GET", "/static/app.css")).status).toBe(200);
    expect((await t.call("GET", "/static/../main.ts")).status).not.toBe(200);
  });
});

describe("request logs and ids", () => {
  it("writes one JSON line per request with request id, method, path, status, ms and user id", async () => {
    const cookie = await t.login("boss@example.com", "boss-password");
    const reply = await t.call("GET", "/api/auth/me", {
      cookie,
      headers: { "x-request-id": "trace-abc-123" },
    });
    expect(reply.headers.get("x-request-id")).toBe("trace-abc-123");
    const line = logLines.map((l) => JSON.parse(l)).find((entry) =>
      entry.requestId === "trace-abc-123"
    );
    expect(line).toMatchObject({
      method: "GET",
      path: "/api/auth/me",
      status: 200,
      userId: reply.body.user.id,
      logger: "dafel.http",
    });
    expect(typeof line.ms).toBe("number");
  });

  it("generates a request id when none (or a malformed one) is given", async () => {
    const plain = await t.call("GET", "/api/health");
    expect(plain.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const injected = await t.call("GET", "/api/health", { headers: { "x-request-id": 'a"b c' } });
    expect(injected.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers health with database status and uptime, and metrics in Prometheus text", async () => {
    const health = await t.call("GET", "/api/health");
    expect(health.body).toMatchObject({ status: "ok", database: { ok: true } });
    expect(typeof health.body.uptimeSeconds).toBe("number");
    const metrics = await t.call("GET", "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("http_requests_total");
    expect(metrics.text).toContain("datasource_connection_total");
  });

  it("describes the API as OpenAPI generated from the schemas", async () => {
    const cookie = await t.login("boss@example.com", "boss-password");
    const doc = await t.call("GET", "/api/openapi.json", { cookie });
    expect(doc.body.openapi).toBe("3.1.0");
    expect(doc.body.paths["/api/data-sources"].post).toBeTruthy();
    // Every API route of the app is described.
    const described = new Set(
      Object.entries(doc.body.paths).flatMap(([path, methods]) =>
        Object.keys(methods as object).map((m) =>
          `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`
        )
      ),
    );
    const undocumented = t.app.routes
      .filter((r) => r.method !== "ALL" && r.path.startsWith("/api/"))
      .map((r) => `${r.method} ${r.path}`)
      .filter((route) => !described.has(route));
    expect(undocumented).toEqual([]);
    expect(doc.body.components.schemas.POSTGRESQLSourceSettings.required).toEqual(
      expect.arrayContaining(["host", "database", "username", "password"]),
    );
    expect(
      Object.keys(doc.body.components.schemas).filter((k: string) => k.endsWith("SourceSettings")),
    )
      .toHaveLength(8);
  });
});
