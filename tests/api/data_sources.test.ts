// deno-lint-ignore-file no-explicit-any
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataSources } from "../../db/schema.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let admin: string;
let alice: string;
let bob: string;

const pg = (overrides: Record<string, unknown> = {}) => ({
  name: "Orders DB",
  description: "Main PostgreSQL database",
  type: "POSTGRESQL",
  host: "db.example.com",
  port: 5432,
  database: "orders",
  username: "reporter",
  password: "pg-pass-123",
  ssl: true,
  configuration: { poolConfig: { min: 1, max: 4 } },
  ...overrides,
});

beforeAll(async () => {
  t = await startTestApp();
  await t.user("admin@example.com", "admin-password", "ADMIN");
  await t.user("alice@example.com", "alice-password");
  await t.user("bob@example.com", "bob-password-1");
  admin = await t.login("admin@example.com", "admin-password");
  alice = await t.login("alice@example.com", "alice-password");
  bob = await t.login("bob@example.com", "bob-password-1");
});
afterAll(() => t.close());

describe("create", () => {
  it("answers 201 with the seed's shape and status CONFIGURING", async () => {
    const reply = await t.call("POST", "/api/data-sources", { cookie: alice, json: pg() });
    expect(reply.status).toBe(201);
    expect(Object.keys(reply.body).sort()).toEqual(["createdAt", "id", "name", "status", "type"]);
    expect(reply.body).toMatchObject({
      name: "Orders DB",
      type: "POSTGRESQL",
      status: "CONFIGURING",
    });
  });

  it("applies the type's defaults (port 5432, ssl off)", async () => {
    const { port: _port, ssl: _ssl, ...withoutDefaults } = pg({ name: "Defaults" });
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: withoutDefaults,
    });
    const reply = await t.call("GET", `/api/data-sources/${created.body.id}`, { cookie: alice });
    expect(reply.body).toMatchObject({ port: 5432, ssl: false });
  });

  it("stores secrets encrypted in the seed's envelope, never in plaintext", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Sealed" }),
    });
    const [row] = await t.deps.db.select().from(dataSources).where(
      eq(dataSources.id, created.body.id),
    );
    expect(row.password).not.toContain("pg-pass-123");
    expect(Object.keys(JSON.parse(row.password!)).sort()).toEqual(
      ["authTag", "encrypted", "iv", "salt", "version"],
    );
  });

  it("answers 400 naming every missing required field of the type", async () => {
    const reply = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: { name: "Incomplete", type: "POSTGRESQL", host: "db" },
    });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe("VALIDATION_ERROR");
    const paths = reply.body.details.map((detail: any) => detail.path);
    expect(paths).toEqual(expect.arrayContaining(["database", "username", "password"]));
  });

  it("answers 400 for an unknown type, a bad port, and a setting of another type", async () => {
    const cases = [
      [{ ...pg(), type: "ORACLE" }, "type"],
      [pg({ port: 70000 }), "port"],
      [pg({ port: "abc" }), "port"],
      [pg({ configuration: { bucketName: "x" } }), "configuration.bucketName"],
      [pg({ apiKey: "k" }), "apiKey"],
      [{ ...pg(), name: "" }, "name"],
      [{ ...pg(), extra: 1 }, ""],
    ] as const;
    for (const [json, path] of cases) {
      const reply = await t.call("POST", "/api/data-sources", { cookie: alice, json });
      expect(reply.status, JSON.stringify(json)).toBe(400);
      expect(reply.body.code).toBe("VALIDATION_ERROR");
      if (path) expect(reply.body.details.map((d: any) => d.path)).toContain(path);
    }
  });

  it("validates every type's own required fields", async () => {
    const required: Record<string, string[]> = {
      MYSQL: ["host", "database", "username", "password"],
      MONGODB: ["database"],
      REST_API: ["configuration.endpoint"],
      GRAPHQL: ["configuration.endpoint"],
      S3: [
        "configuration.bucketName",
        "configuration.region",
        "configuration.accessKey",
        "configuration.secretKey",
      ],
      GOOGLE_SHEETS: ["configuration.spreadsheetId", "configuration.credentials"],
      CSV_FILE: ["configuration.filePath"],
    };
    for (const [type, paths] of Object.entries(required)) {
      const reply = await t.call("POST", "/api/data-sources", {
        cookie: alice,
        json: { name: "x", type },
      });
      expect(reply.status, type).toBe(400);
      const got = reply.body.details.map((d: any) => d.path);
      for (const path of paths) expect(got, `${type} ${path}`).toContain(path);
    }
  });

  it("accepts one valid source of every type", async () => {
    const credentials = JSON.stringify({
      client_email: "svc@example.iam",
      private_key: "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-0001\n-----END PRIVATE KEY-----\n",
    });
    const bodies = [
      pg({ name: "pg" }),
      { name: "my", type: "MYSQL", host: "h", database: "d", username: "u", password: "p" },
      { name: "mongo", type: "MONGODB", host: "h", database: "d", username: "u", password: "p" },
      {
        name: "rest",
        type: "REST_API",
        apiKey: "rest-key",
        configuration: { endpoint: "https://api.example.com/items", auth: { type: "bearer" } },
      },
      {
        name: "gql",
        type: "GRAPHQL",
        configuration: { endpoint: "https://api.example.com/graphql" },
      },
      {
        name: "s3",
        type: "S3",
        configuration: {
          bucketName: "my-bucket",
          region: "us-east-1",
          accessKey: "AK",
          secretKey: "SK",
        },
      },
      {
        name: "sheets",
        type: "GOOGLE_SHEETS",
        configuration: {
          spreadsheetId: "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms",
          credentials,
        },
      },
      { name: "csv", type: "CSV_FILE", configuration: { filePath: "exports/customers.csv" } },
    ];
    for (const json of bodies) {
      const reply = await t.call("POST", "/api/data-sources", { cookie: admin, json });
      expect(reply.status, `${json.type}: ${reply.text}`).toBe(201);
    }
  });

  it("refuses a CSV path that escapes the files directory", async () => {
    for (const filePath of ["/etc/passwd", "../secrets.csv", "a/../../b.csv"]) {
      const reply = await t.call("POST", "/api/data-sources", {
        cookie: alice,
        json: { name: "csv", type: "CSV_FILE", configuration: { filePath } },
      });
      expect(reply.status, filePath).toBe(400);
      expect(reply.body.details[0].path).toBe("configuration.filePath");
    }
  });

  it("answers 413 for a body over 1 MiB", async () => {
    const reply = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ description: "x".repeat(1024 * 1024 + 10) }),
    });
    expect(reply.status).toBe(413);
    expect(reply.body.code).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("read and list", () => {
  it("returns a sanitized source with secretsSet and no secret, not even encrypted", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Readable" }),
    });
    const reply = await t.call("GET", `/api/data-sources/${created.body.id}`, { cookie: alice });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      name: "Readable",
      host: "db.example.com",
      database: "orders",
      username: "reporter",
      ssl: true,
      configuration: { poolConfig: { min: 1, max: 4 } },
      secretsSet: ["password"],
      totalRecords: 0,
      totalSyncs: 0,
      failedSyncs: 0,
    });
    expect(reply.body).not.toHaveProperty("password");
    expect(reply.body).not.toHaveProperty("apiKey");
    expect(reply.body).not.toHaveProperty("secrets");
    expect(reply.text).not.toContain("pg-pass-123");
    expect(reply.text).not.toContain("authTag");
  });

  it("filters by search, type and status, pages with limit/offset and X-Total-Count", async () => {
    const cookie = await t.login("bob@example.com", "bob-password-1");
    for (let i = 0; i < 5; i++) {
      await t.call("POST", "/api/data-sources", {
        cookie,
        json: pg({ name: `Warehouse ${i}`, description: i === 3 ? "has 50% off" : null }),
      });
    }
    await t.call("POST", "/api/data-sources", {
      cookie,
      json: { name: "Files", type: "CSV_FILE", configuration: { filePath: "a.csv" } },
    });
    const all = await t.call("GET", "/api/data-sources", { cookie });
    expect(all.body).toHaveLength(6);
    expect(all.headers.get("x-total-count")).toBe("6");
    const search = await t.call("GET", "/api/data-sources?search=warehouse", { cookie });
    expect(search.body).toHaveLength(5);
    const percent = await t.call("GET", "/api/data-sources?search=50%25", { cookie });
    expect(percent.body.map((s: any) => s.name)).toEqual(["Warehouse 3"]);
    const byType = await t.call("GET", "/api/data-sources?type=CSV_FILE", { cookie });
    expect(byType.body.map((s: any) => s.name)).toEqual(["Files"]);
    const byStatus = await t.call("GET", "/api/data-sources?status=CONNECTED", { cookie });
    expect(byStatus.body).toEqual([]);
    const page = await t.call("GET", "/api/data-sources?limit=2&offset=2", { cookie });
    expect(page.body).toHaveLength(2);
    expect(page.headers.get("x-total-count")).toBe("6");
    const bad = await t.call("GET", "/api/data-sources?type=NOPE&limit=0", { cookie });
    expect(bad.status).toBe(400);
  });

  it("a USER sees its own sources, an ADMIN sees all", async () => {
    const mine = await t.call("GET", "/api/data-sources", { cookie: alice });
    const everything = await t.call("GET", "/api/data-sources", { cookie: admin });
    expect(mine.body.length).toBeGreaterThan(0);
    expect(mine.body.every((s: any) => s.createdById === mine.body[0].createdById)).toBe(true);
    expect(everything.body.length).toBeGreaterThan(mine.body.length);
  });

  it("answers 404 for an unknown id and 403 for another user's source", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Private" }),
    });
    expect((await t.call("GET", "/api/data-sources/nope", { cookie: alice })).status).toBe(404);
    const other = await t.call("GET", `/api/data-sources/${created.body.id}`, { cookie: bob });
    expect(other.status).toBe(403);
    expect(other.body).toEqual({ error: "Forbidden", code: "FORBIDDEN" });
    for (const method of ["PUT", "DELETE"]) {
      const reply = await t.call(method, `/api/data-sources/${created.body.id}`, {
        cookie: bob,
        json: method === "PUT" ? { name: "stolen" } : undefined,
      });
      expect(reply.status, method).toBe(403);
    }
    const byAdmin = await t.call("GET", `/api/data-sources/${created.body.id}`, { cookie: admin });
    expect(byAdmin.status).toBe(200);
  });
});

describe("update", () => {
  it("keeps a secret that is left out, replaces one that is sent, clears one sent as null", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: {
        name: "API",
        type: "REST_API",
        apiKey: "first-key",
        configuration: { endpoint: "https://api.example.com/v1", auth: { type: "apiKey" } },
      },
    });
    const id = created.body.id;
    const rename = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { name: "API v1" },
    });
    expect(rename.status).toBe(200);
    expect(rename.body).toMatchObject({ name: "API v1", secretsSet: ["apiKey"] });
    const settings = async () => {
      const { storedSettings } = await import("../../routes/data_sources.ts");
      const [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
      return storedSettings(t.deps, row);
    };
    expect((await settings()).secrets.apiKey).toBe("first-key");
    await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { apiKey: "second-key" },
    });
    expect((await settings()).secrets.apiKey).toBe("second-key");
    // The auth type needs the key: clearing it alone is refused and changes nothing.
    const refused = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { apiKey: null },
    });
    expect(refused.status).toBe(400);
    expect((await settings()).secrets.apiKey).toBe("second-key");
    const cleared = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { apiKey: null, configuration: { auth: { type: "none" } } },
    });
    expect(cleared.status).toBe(200);
    expect(cleared.body.secretsSet).toEqual([]);
  });

  it("keeps secret header values encrypted, and keeps them when re-sent without a value", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: {
        name: "Headers",
        type: "REST_API",
        configuration: {
          endpoint: "https://api.example.com/v1",
          headers: [
            { name: "X-Tenant", value: "acme" },
            { name: "X-Signature", value: "header-secret-42", secret: true },
          ],
        },
      },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const read = await t.call("GET", `/api/data-sources/${id}`, { cookie: alice });
    expect(read.text).not.toContain("header-secret-42");
    expect(read.body.secretsSet).toEqual(["headers.X-Signature"]);
    expect(read.body.configuration.headers).toEqual([
      { name: "X-Tenant", value: "acme", secret: false },
      { name: "X-Signature", secret: true },
    ]);
    const echoed = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { configuration: read.body.configuration },
    });
    expect(echoed.status).toBe(200);
    expect(echoed.body.secretsSet).toEqual(["headers.X-Signature"]);
    const [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
    expect(JSON.stringify(row)).not.toContain("header-secret-42");
  });

  it("moves the source back to CONFIGURING when connection settings change", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Status" }),
    });
    const id = created.body.id;
    await t.deps.db.update(dataSources).set({ status: "CONNECTED" }).where(eq(dataSources.id, id));
    const renamed = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { name: "Status 2" },
    });
    expect(renamed.body.status).toBe("CONNECTED");
    const moved = await t.call("PUT", `/api/data-sources/${id}`, {
      cookie: alice,
      json: { host: "db2.example.com" },
    });
    expect(moved.body).toMatchObject({ status: "CONFIGURING", host: "db2.example.com" });
  });

  it("refuses a type change and invalid values, and loses nothing", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Stable" }),
    });
    const id = created.body.id;
    const before = await t.call("GET", `/api/data-sources/${id}`, { cookie: alice });
    for (
      const json of [{ type: "MYSQL" }, { port: -1 }, { host: null }, { name: "" }, { nope: true }]
    ) {
      const reply = await t.call("PUT", `/api/data-sources/${id}`, { cookie: alice, json });
      expect(reply.status, JSON.stringify(json)).toBe(400);
    }
    const after = await t.call("GET", `/api/data-sources/${id}`, { cookie: alice });
    expect(after.body).toEqual(before.body);
  });

  it("accepts what a GET returned, sent back unchanged", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Echo" }),
    });
    const read = await t.call("GET", `/api/data-sources/${created.body.id}`, { cookie: alice });
    const reply = await t.call("PUT", `/api/data-sources/${created.body.id}`, {
      cookie: alice,
      json: read.body,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.secretsSet).toEqual(["password"]);
  });
});

describe("delete", () => {
  it("answers 204, then 404, and writes audit rows for create, update and delete", async () => {
    const created = await t.call("POST", "/api/data-sources", {
      cookie: alice,
      json: pg({ name: "Doomed" }),
    });
    const id = created.body.id;
    await t.call("PUT", `/api/data-sources/${id}`, { cookie: alice, json: { name: "Doomed 2" } });
    const deleted = await t.call("DELETE", `/api/data-sources/${id}`, { cookie: alice });
    expect(deleted.status).toBe(204);
    expect((await t.call("GET", `/api/data-sources/${id}`, { cookie: alice })).status).toBe(404);
    const audit = await t.call("GET", `/api/audit-logs?entityId=${id}`, { cookie: admin });
    expect(audit.body.map((row: any) => row.action).sort()).toEqual([
      "DATA_SOURCE_CREATE",
      "DATA_SOURCE_DELETE",
      "DATA_SOURCE_UPDATE",
    ]);
    expect(audit.body.every((row: any) => row.userEmail === "alice@example.com")).toBe(true);
  });
});
