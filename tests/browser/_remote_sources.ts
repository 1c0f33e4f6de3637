/**
 * The remote ends of the browser walk's non-SQL sources, all real servers on loopback: the
 * MongoDB wire-protocol stand-in, a JSON API that wants a bearer token and a tenant header
 * and pages its records, a GraphQL server (graphql-yoga) behind a bearer token, s3rver with
 * a bucket of CSV exports, and the Google Sheets stand-in that verifies the service
 * account's JWT. The walk types what is here into the wizard, as a user would.
 */
import { createSchema, createYoga } from "graphql-yoga";
import { json, startHttpServer, type TestServer } from "../helpers/http_fixtures.ts";
import { startMongoStandin } from "../helpers/mongo_standin.ts";
import { startS3rver } from "../helpers/s3rver.ts";
import {
  createServiceAccountKey,
  credentialsJson,
  startSheetsStandIn,
} from "../helpers/sheets_standin.ts";

/** The records every remote serves, in its own format. */
export const CUSTOMERS = [
  { id: 1, name: "Ada Lovelace", email: "ada@example.com", city: "London" },
  { id: 2, name: "Grace Hopper", email: "grace@example.com", city: "New York" },
  { id: 3, name: "Edsger Dijkstra", email: "edsger@example.com", city: "Eindhoven" },
  { id: 4, name: "Barbara Liskov", email: "barbara@example.com", city: "Boston" },
  { id: 5, name: "Ken Thompson", email: "ken@example.com", city: "Berkeley" },
];

/** The same records as CSV text, header first. */
export function customersCsv(): string {
  const lines = CUSTOMERS.map((row) => [row.id, row.name, row.email, row.city].join(","));
  return ["id,name,email,city", ...lines, ""].join("\n");
}

/** Where each remote listens and what a user types to reach it. */
export type RemoteSources = {
  mongo: { host: string; port: number; database: string; username: string; password: string };
  rest: { endpoint: string; token: string; tenant: string };
  graphql: { endpoint: string; token: string };
  s3: { endpoint: string; bucket: string; accessKey: string; secretKey: string };
  sheets: { spreadsheetId: string; apiEndpoint: string; credentials: string };
  close(): Promise<void>;
};

const REST_TOKEN = "walk-rest-token-5c1e";
const GRAPHQL_TOKEN = "walk-graphql-token-81aa";
const MONGO_PASSWORD = "walk-mongo-pass-3d07";
const S3_BUCKET = "walk-exports";
const S3_KEY = "S3RVER";
const SPREADSHEET = "1WalkTeamSpreadsheet001";

/** A JSON API: bearer token, tenant header, records under data.items, `?page=&per_page=`. */
function startRestApi(): TestServer {
  return startHttpServer((request, url) => {
    if (request.headers.get("authorization") !== `Bearer ${REST_TOKEN}`) {
      return json({ error: "invalid token" }, { status: 401 });
    }
    if (request.headers.get("x-tenant") !== "acme") {
      return json({ error: "unknown tenant" }, { status: 403 });
    }
    const page = Number(url.searchParams.get("page") ?? "1");
    const size = Number(url.searchParams.get("per_page") ?? "100");
    const items = CUSTOMERS.slice((page - 1) * size, page * size);
    return json({ data: { items }, meta: { page, total: CUSTOMERS.length } });
  });
}

/** A GraphQL server whose customers list is only for holders of the token. */
function startGraphql(): TestServer {
  const yoga = createYoga({
    logging: false,
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Customer { id: ID!, name: String!, email: String, city: String }
        type Query { customers: [Customer!]! }
      `,
      resolvers: { Query: { customers: () => CUSTOMERS } },
    }),
  });
  return startHttpServer(async (request, url) => {
    if (request.headers.get("authorization") !== `Bearer ${GRAPHQL_TOKEN}`) {
      return json({ errors: [{ message: "Unauthorized" }] }, { status: 401 });
    }
    return await yoga.fetch(new Request(new URL("/graphql", url), request));
  });
}

async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  await Promise.allSettled(closers.map((close) => close()));
}

/** Starts every remote; `close` stops them all. */
export async function startRemoteSources(): Promise<RemoteSources> {
  const closers: (() => Promise<void>)[] = [];
  try {
    const mongo = await startMongoStandin({
      databases: {
        crm: {
          customers: CUSTOMERS.map((row) => ({
            ...row,
            address: { city: row.city, country: row.id % 2 ? "UK" : "US" },
          })),
        },
      },
      users: [{ name: "reader", password: MONGO_PASSWORD, read: ["crm"] }],
    });
    closers.push(() => mongo.close());

    const s3 = await startS3rver([S3_BUCKET]);
    closers.push(() => s3.close());
    await s3.put(S3_BUCKET, "customers/part-1.csv", customersCsv());

    const account = await createServiceAccountKey("walk@dafel-test.iam.gserviceaccount.com");
    const sheets = startSheetsStandIn({
      accounts: [account],
      spreadsheets: [{
        id: SPREADSHEET,
        title: "Team data",
        sharedWith: [account.clientEmail],
        sheets: [{
          title: "Customers",
          rows: [
            ["id", "name", "email", "city"],
            ...CUSTOMERS.map((row) => [row.id, row.name, row.email, row.city]),
          ],
        }],
      }],
    });
    closers.push(() => sheets.close());

    const rest = startRestApi();
    closers.push(() => rest.close());
    const graphql = startGraphql();
    closers.push(() => graphql.close());

    return {
      mongo: {
        host: mongo.host,
        port: mongo.port,
        database: "crm",
        username: "reader",
        password: MONGO_PASSWORD,
      },
      rest: { endpoint: `${rest.origin}/v1/customers`, token: REST_TOKEN, tenant: "acme" },
      graphql: { endpoint: `${graphql.origin}/graphql`, token: GRAPHQL_TOKEN },
      s3: { endpoint: s3.endpoint, bucket: S3_BUCKET, accessKey: S3_KEY, secretKey: S3_KEY },
      sheets: {
        spreadsheetId: SPREADSHEET,
        apiEndpoint: sheets.apiRoot,
        credentials: credentialsJson(account, sheets.tokenUri),
      },
      close: () => closeAll(closers),
    };
  } catch (error) {
    await closeAll(closers);
    throw error;
  }
}
