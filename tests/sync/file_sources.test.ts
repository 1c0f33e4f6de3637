// deno-lint-ignore-file no-explicit-any
/**
 * File sources synced into PostgreSQL (COPY): a CSV file under FILES_DIR, loaded in full,
 * then rewritten with changed and added rows and loaded incrementally past its updated_at;
 * S3 datasets (several CSV objects as one stream, JSON Lines with nested values) from the
 * s3rver of the S3 connector's tests; and Google Sheets tabs from the Sheets stand-in of
 * its connector tests (service-account JWT verified). Cells are typed by what discovery
 * sampled; a later cell that does not fit widens its column to text instead of failing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3RVER_KEY, startS3rver, type TestS3 } from "../helpers/s3rver.ts";
import {
  type Cell,
  createServiceAccountKey,
  credentialsJson,
  type SheetsStandIn,
  startSheetsStandIn,
} from "../helpers/sheets_standin.ts";
import { createSource, startSyncApp, syncedRows, syncNow } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;
let filesDir: string;

beforeAll(async () => {
  filesDir = await Deno.makeTempDir({ prefix: "dafel-sync-files-" });
  // s3rver listens on loopback: allowed by name, as an operator would allow a host.
  app = await startSyncApp({ env: { FILES_DIR: filesDir, ALLOWED_HOSTS: "127.0.0.1" } });
});
afterAll(async () => {
  await app?.close();
  await Deno.remove(filesDir, { recursive: true }).catch(() => {});
});

function csv(rows: (string | number)[][]): string {
  return rows.map((row) => row.join(",")).join("\n") + "\n";
}

describe("CSV file source", () => {
  let sourceId: string;
  const header = ["id", "name", "amount", "joined", "updated_at"];
  const rows: (string | number)[][] = Array.from({ length: 3000 }, (_, i) => [
    i + 1,
    `"Name, ${i + 1}"`,
    (i * 1.25).toFixed(2),
    `2024-02-${String((i % 28) + 1).padStart(2, "0")}`,
    new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
  ]);

  beforeAll(async () => {
    await Deno.mkdir(`${filesDir}/exports`, { recursive: true });
    await Deno.writeTextFile(`${filesDir}/exports/Customers 2024.csv`, csv([header, ...rows]));
    sourceId = await createSource(app.t, app.cookie, {
      name: "Customers file",
      type: "CSV_FILE",
      configuration: { filePath: "exports/Customers 2024.csv" },
    });
  });

  it("loads the file with the types its cells have", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(3000);
    expect(log.streamResults[0].table).toMatch(/\.customers_2024$/);
    const types = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "pg_typeof(id)::text as id, pg_typeof(amount)::text as amount, " +
        "pg_typeof(joined)::text as joined, pg_typeof(updated_at)::text as updated_at",
      orderBy: "1 limit 1",
    });
    expect(types[0]).toEqual({
      id: "bigint",
      amount: "double precision",
      joined: "date",
      updated_at: "timestamp with time zone",
    });
    const [second] = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "id::int as id, name, amount, joined::text as joined",
      orderBy: "id offset 1 limit 1",
    });
    expect(second).toEqual({ id: 2, name: "Name, 2", amount: 1.25, joined: "2024-02-02" });
  });

  it("loads changed and added rows past the cursor, widening a column a new cell does not fit", async () => {
    rows[4][1] = '"Changed"';
    rows[4][4] = "2030-01-01T00:00:00.000Z";
    rows.push([3001, '"Late"', "n/a", "2024-03-01", "2030-01-02T00:00:00.000Z"]);
    await Deno.writeTextFile(`${filesDir}/exports/Customers 2024.csv`, csv([header, ...rows]));
    const settings = await app.t.call("PUT", `/api/data-sources/${sourceId}/sync-settings`, {
      cookie: app.cookie,
      json: { mode: "incremental", cursorColumns: { "Customers 2024": "updated_at" } },
    });
    expect(settings.status, settings.text).toBe(200);
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.mode).toBe("incremental");
    expect(log.recordsSync).toBe(2);
    const changed = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "id::int as id, name, amount::text as amount",
      orderBy: "id",
    });
    // Without a key in the file, incremental rows are appended: 3000 + 2.
    expect(changed.length).toBe(3002);
    expect(changed.filter((row) => row.name === "Changed").length).toBe(1);
    expect(changed.find((row) => row.id === 3001)).toEqual({
      id: 3001,
      name: "Late",
      amount: "n/a",
    });
  });
});

describe("S3 source", () => {
  const bucket = "dafel-sync";
  let s3: TestS3;
  let sourceId: string;

  beforeAll(async () => {
    s3 = await startS3rver([bucket]);
    const part = (from: number) =>
      "sku,qty,updated_at\n" +
      Array.from({ length: 400 }, (_, i) => {
        const n = from + i;
        return `s${n},${n % 9},2025-03-01T00:00:${String(n % 60).padStart(2, "0")}Z`;
      }).join("\n") + "\n";
    await s3.put(bucket, "exports/stock/part-1.csv", part(1));
    await s3.put(bucket, "exports/stock/part-2.csv", part(401));
    await s3.put(
      bucket,
      "exports/clicks/day=1/part-0.jsonl",
      '{"user":1,"page":"/a","meta":{"ref":"x"},"tags":["t1"]}\n{"user":2,"page":"/b","meta":null,"tags":[]}\n',
    );
    sourceId = await createSource(app.t, app.cookie, {
      name: "Lake",
      type: "S3",
      configuration: {
        bucketName: bucket,
        region: "us-east-1",
        accessKey: S3RVER_KEY,
        prefix: "exports/",
        endpoint: s3.endpoint,
        forcePathStyle: true,
        secretKey: S3RVER_KEY,
      },
    });
  });
  afterAll(() => s3?.close());

  it("loads each dataset, its objects together, nested JSON as jsonb", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.streams).toEqual({ clicks: 2, stock: 800 });
    const stock = await syncedRows<any>(app.t, {
      sourceId,
      table: "stock",
      columns: "sku, qty::int as qty",
      orderBy: "sku",
    });
    expect(stock.length).toBe(800);
    expect(stock.slice(0, 2)).toEqual([{ sku: "s1", qty: 1 }, { sku: "s10", qty: 1 }]);
    const clicks = await syncedRows<any>(app.t, {
      sourceId,
      table: "clicks",
      columns: "page, meta, tags",
      orderBy: "page",
    });
    expect(clicks).toEqual([
      { page: "/a", meta: { ref: "x" }, tags: ["t1"] },
      { page: "/b", meta: null, tags: [] },
    ]);
  });
});

describe("Google Sheets source", () => {
  let standIn: SheetsStandIn;
  let sourceId: string;
  const people: Cell[][] = [
    ["id", "name", "score", "joined"],
    ...Array.from({ length: 1500 }, (_, i): Cell[] => [
      i + 1,
      `Person ${i + 1}`,
      i % 4 === 0 ? null : i * 0.5,
      `2024-0${(i % 9) + 1}-15`,
    ]),
  ];

  beforeAll(async () => {
    const key = await createServiceAccountKey("syncer@dafel-test.iam.gserviceaccount.com");
    standIn = startSheetsStandIn({
      accounts: [key],
      spreadsheets: [{
        id: "1SyncSpreadsheet0001",
        title: "Team",
        sharedWith: [key.clientEmail],
        sheets: [
          { title: "People", rows: people },
          { title: "Q1 'totals'", rows: [["region", "total"], ["north", 10], ["south", 12]] },
        ],
      }],
    });
    sourceId = await createSource(app.t, app.cookie, {
      name: "Team sheet",
      type: "GOOGLE_SHEETS",
      configuration: {
        spreadsheetId: "1SyncSpreadsheet0001",
        apiEndpoint: standIn.apiRoot,
        credentials: credentialsJson(key, standIn.tokenUri),
      },
    });
  });
  afterAll(() => standIn?.close());

  it("loads every tab, cells typed", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.streams).toEqual({ "People": 1500, "Q1 'totals'": 2 });
    const rows = await syncedRows<any>(app.t, {
      sourceId,
      table: "people",
      columns: "id::int as id, name, score, joined::text as joined",
      orderBy: "id limit 2",
    });
    expect(rows).toEqual([
      { id: 1, name: "Person 1", score: null, joined: "2024-01-15" },
      { id: 2, name: "Person 2", score: 0.5, joined: "2024-02-15" },
    ]);
    const totals = await syncedRows<any>(app.t, {
      sourceId,
      table: "q1_totals",
      columns: "region, total::int as total",
      orderBy: "region",
    });
    expect(totals).toEqual([{ region: "north", total: 10 }, { region: "south", total: 12 }]);
  });
});
