/**
 * Secrets never leave the vault: after exercising every route with sources holding known
 * secret strings, none of them appears in a response body, a log line, or any database
 * column in plaintext.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../db/mod.ts";
import { logLines, startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
const responses: string[] = [];

const SECRETS = {
  pg: "leak-pg-Password-0001",
  mysql: "leak-mysql-Password-0002",
  mongo: "leak-mongo-Password-0003",
  mongoUri: "mongodb://u:leak-mongo-uri-0004@mongo.example.com/db",
  restKey: "leak-rest-ApiKey-0005",
  restHeader: "leak-rest-Header-0006",
  gqlKey: "leak-gql-ApiKey-0007",
  s3: "leak-s3-SecretKey-0008",
  sheets: "leak-sheets-PrivateKey-0009",
  updated: "leak-updated-Password-0010",
};

async function call(method: string, path: string, options: Parameters<TestApp["call"]>[2] = {}) {
  const reply = await t.call(method, path, options);
  responses.push(reply.text, JSON.stringify([...reply.headers]));
  return reply;
}

beforeAll(async () => {
  t = await startTestApp();
  await t.user("admin@example.com", "admin-password", "ADMIN");
});
afterAll(() => t.close());

describe("secret leaks", () => {
  it("finds no secret in responses, logs or database columns after every route", async () => {
    const cookie = await t.login("admin@example.com", "admin-password");
    const { token } = await t.token(cookie);
    const bodies = [
      {
        name: "pg",
        type: "POSTGRESQL",
        host: "h",
        database: "d",
        username: "u",
        password: SECRETS.pg,
      },
      {
        name: "my",
        type: "MYSQL",
        host: "h",
        database: "d",
        username: "u",
        password: SECRETS.mysql,
      },
      {
        name: "mongo",
        type: "MONGODB",
        host: "h",
        database: "d",
        username: "u",
        password: SECRETS.mongo,
      },
      {
        name: "mongo-uri",
        type: "MONGODB",
        database: "d",
        configuration: { uri: SECRETS.mongoUri },
      },
      {
        name: "rest",
        type: "REST_API",
        apiKey: SECRETS.restKey,
        configuration: {
          endpoint: "https://api.example.com/x",
          auth: { type: "apiKey", headerName: "X-Key" },
          headers: [{ name: "X-Sig", value: SECRETS.restHeader, secret: true }],
        },
      },
      {
        name: "gql",
        type: "GRAPHQL",
        apiKey: SECRETS.gqlKey,
        configuration: { endpoint: "https://api.example.com/graphql", auth: { type: "bearer" } },
      },
      {
        name: "s3",
        type: "S3",
        configuration: {
          bucketName: "bucket-1",
          region: "eu-west-1",
          accessKey: "AKIA1",
          secretKey: SECRETS.s3,
        },
      },
      {
        name: "sheets",
        type: "GOOGLE_SHEETS",
        configuration: {
          spreadsheetId: "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms",
          credentials: JSON.stringify({ client_email: "svc@x.iam", private_key: SECRETS.sheets }),
        },
      },
    ];
    const ids: string[] = [];
    for (const json of bodies) {
      const reply = await call("POST", "/api/data-sources", { cookie, json });
      expect(reply.status, reply.text).toBe(201);
      ids.push(reply.body.id);
    }
    // A rejected request that carries a secret must not echo it either.
    await call("POST", "/api/data-sources", {
      cookie,
      json: { name: "bad", type: "POSTGRESQL", host: "h", port: "nope", password: SECRETS.pg },
    });
    await call("GET", "/api/data-sources", { cookie });
    await call("GET", "/api/data-sources?search=pg", { token });
    for (const id of ids) {
      await call("GET", `/api/data-sources/${id}`, { token });
      await call("PUT", `/api/data-sources/${id}`, { cookie, json: { description: "touched" } });
    }
    await call("PUT", `/api/data-sources/${ids[0]}`, {
      cookie,
      json: { password: SECRETS.updated },
    });
    await call("PUT", `/api/data-sources/${ids[0]}`, {
      cookie,
      json: { port: "bad", password: SECRETS.updated },
    });
    await call("GET", "/api/audit-logs?limit=1000", { cookie });
    await call("GET", "/api/openapi.json", { cookie });
    await call("GET", "/api/health");
    await call("GET", "/metrics");
    await call("GET", "/data-sources", { cookie });
    await call("GET", "/data-sources?search=s3", {
      cookie,
      headers: { "hx-request": "true", "hx-target": "source-rows" },
    });
    await call("DELETE", `/api/data-sources/${ids[1]}`, { cookie });

    const tables = await queryRows<{ table_name: string }>(
      t.deps.db,
      sql`select table_name from information_schema.tables where table_schema = 'public'`,
    );
    const dump: string[] = [];
    for (const { table_name } of tables) {
      const rows = await queryRows(t.deps.db, sql.raw(`select * from "${table_name}"`));
      dump.push(JSON.stringify(rows));
    }
    expect(dump.join("").length).toBeGreaterThan(1000);
    expect(logLines.length).toBeGreaterThan(20);
    expect(responses.length).toBeGreaterThan(40);

    const secretStrings = [...Object.values(SECRETS), "leak-mongo-uri-0004"];
    const places = {
      responses: responses.join("\n"),
      logs: logLines.join("\n"),
      database: dump.join("\n"),
    };
    for (const secret of secretStrings) {
      for (const [where, text] of Object.entries(places)) {
        expect(text.includes(secret), `${secret} found in ${where}`).toBe(false);
      }
    }
  });
});
