/**
 * The Google Sheets connector with the real @googleapis/sheets client and google-auth-library
 * JWT flow against a local stand-in of the OAuth token endpoint and the Sheets v4 API, which
 * verifies each assertion's RS256 signature with keys this test makes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { googleSheets, parseServiceAccount } from "../../connectors/google_sheets.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import type { ConnectorContext, RecordBatch } from "../../connectors/types.ts";
import { closedPort } from "../helpers/s3rver.ts";
import {
  type Cell,
  createServiceAccountKey,
  credentialsJson,
  type ServiceAccountKey,
  type SheetsStandIn,
  startSheetsStandIn,
} from "../helpers/sheets_standin.ts";
import { runConformance } from "./conformance.ts";

const SPREADSHEET = "1TeamDataSpreadsheet0001";
const ctx: ConnectorContext = {
  network: { allowedHosts: ["127.0.0.1"], allowPrivateNetworks: false },
  pool: { min: 0, max: 1, idleTimeoutMs: 1000, connectionTimeoutMs: 2000 },
  filesDir: "/nonexistent",
};

const PEOPLE: Cell[][] = [
  ["id", "name", "score", "active", "joined"],
  [1, "Ada", 9.5, true, "2024-01-05"],
  [2, "Grace", 8, false, "2024-02-11"],
  [3, "Linus", null, true, "2024-03-30"],
  [null, null, null, null, null],
  [4, "Ken", 7.25, false, "2024-04-01"],
  [5, "Barbara", 6, true, "2024-05-17"],
  [6, "Edsger", 5, true, "2024-06-02"],
];
const BIG_ROWS = 2500;

let standIn: SheetsStandIn;
let shared: ServiceAccountKey;
let notShared: ServiceAccountKey;
let disabled: ServiceAccountKey;
/** Same email as `shared`, but a key Google does not know (a deleted or rotated key). */
let rotated: ServiceAccountKey;

beforeAll(async () => {
  shared = await createServiceAccountKey("reader@dafel-test.iam.gserviceaccount.com");
  notShared = await createServiceAccountKey("stranger@dafel-test.iam.gserviceaccount.com");
  disabled = await createServiceAccountKey("disabled@dafel-test.iam.gserviceaccount.com");
  rotated = {
    ...(await createServiceAccountKey(shared.clientEmail)),
    publicKey: shared.publicKey,
  };
  standIn = startSheetsStandIn({
    accounts: [shared, notShared, disabled],
    spreadsheets: [{
      id: SPREADSHEET,
      title: "Team data",
      sharedWith: [shared.clientEmail, disabled.clientEmail],
      sheets: [
        { title: "People", rows: PEOPLE },
        { title: "Q1 'totals'", rows: [["region", "total"], ["north", 10], ["south", 12]] },
        {
          title: "Big",
          rows: [
            ["n", "label"],
            ...Array.from({ length: BIG_ROWS }, (_, i): Cell[] => [i + 1, `row ${i + 1}`]),
          ],
        },
      ],
    }],
  });
  standIn.disableApiAccess(disabled.clientEmail);
});

afterAll(async () => {
  await standIn.close();
});

function config(overrides: Record<string, unknown> = {}) {
  return { spreadsheetId: SPREADSHEET, apiEndpoint: standIn.apiRoot, ...overrides };
}

function secrets(key: ServiceAccountKey = shared) {
  return { credentials: credentialsJson(key, standIn.tokenUri) };
}

let counter = 0;
function settings(overrides: Record<string, unknown> = {}, key: ServiceAccountKey = shared) {
  const raw = {
    config: googleSheets.configSchema.parse(config(overrides)),
    secrets: googleSheets.secretsSchema.parse(secrets(key)),
  };
  counter++;
  return { id: `sheets-${counter}`, fingerprint: fingerprintOf(raw), ...raw };
}

async function readAll(stream: string, batchSize = 100, overrides = {}) {
  const batches: RecordBatch[] = [];
  for await (
    const batch of googleSheets.read(
      settings(overrides),
      { stream: { name: stream }, batchSize },
      ctx,
    )
  ) {
    batches.push(batch);
  }
  return batches;
}

runConformance({
  name: "Google Sheets",
  connector: googleSheets,
  ctx,
  settings: () => ({ config: config(), secrets: secrets() }),
  stream: { name: "People", columns: ["id", "name", "score", "active", "joined"], rows: 6 },
  cursorColumn: "id",
  failures: [
    {
      name: "a spreadsheet not shared with the service account",
      settings: () => ({ config: config(), secrets: secrets(notShared) }),
      code: "PERMISSION_DENIED",
    },
    {
      name: "a spreadsheet that does not exist",
      settings: () => ({
        config: config({ spreadsheetId: "1NoSuchSpreadsheet000" }),
        secrets: secrets(),
      }),
      code: "RESOURCE_NOT_FOUND",
    },
    {
      name: "a key Google does not know (bad JWT signature)",
      settings: () => ({ config: config(), secrets: secrets(rotated) }),
      code: "AUTH_FAILED",
    },
    {
      name: "an account whose tokens the API refuses (401)",
      settings: () => ({ config: config(), secrets: secrets(disabled) }),
      code: "AUTH_FAILED",
    },
    {
      name: "credentials without a private key",
      settings: () => ({
        config: config(),
        secrets: { credentials: JSON.stringify({ client_email: shared.clientEmail }) },
      }),
      code: "INVALID_CONFIG",
    },
    {
      name: "an API endpoint nothing listens on",
      settings: () => ({
        config: config({ apiEndpoint: `http://127.0.0.1:${closedPort()}/` }),
        secrets: secrets(),
      }),
      code: "CONNECTION_REFUSED",
    },
    {
      name: "an API endpoint at a cloud metadata address",
      settings: () => ({
        config: config({ apiEndpoint: "http://169.254.169.254/" }),
        secrets: secrets(),
      }),
      code: "BLOCKED_ADDRESS",
    },
  ],
});

describe("Google Sheets connector", () => {
  it("tests by reading the spreadsheet's title and sheets after a real JWT sign-in", async () => {
    const result = await googleSheets.test(settings(), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    expect(result.stages.map((stage) => stage.name)).toEqual(["resolve", "authenticate", "query"]);
    expect(result.serverInfo).toMatchObject({
      title: "Team data",
      sheets: "People, Q1 'totals', Big",
      sheetCount: 3,
      serviceAccount: shared.clientEmail,
    });
  });

  it("names the service account in the hint when the spreadsheet is not shared with it", async () => {
    const result = await googleSheets.test(settings({}, notShared), ctx);
    expect(result.error?.code).toBe("PERMISSION_DENIED");
    expect(result.error?.hint).toContain(notShared.clientEmail);
    expect(result.error?.hint).toContain("not shared");
  });

  it("names the missing key of invalid credentials JSON", () => {
    const missing = parseServiceAccount(JSON.stringify({ private_key: shared.privateKeyPem }));
    expect(!missing.ok && missing.error).toMatchObject({
      code: "INVALID_CONFIG",
      field: "credentials",
    });
    expect(!missing.ok && missing.error.message).toContain('"client_email"');
    const notJson = parseServiceAccount("{not json");
    expect(!notJson.ok && notJson.error.code).toBe("INVALID_CONFIG");
    const badKey = parseServiceAccount(
      JSON.stringify({ client_email: "a@b.c", private_key: "-----BEGIN" }),
    );
    expect(!badKey.ok && badKey.error.message).toContain('"private_key"');
  });

  it("discovers each sheet with header columns, inferred types and exact row counts", async () => {
    const result = await googleSheets.discover(settings(), ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    const byName = Object.fromEntries(result.value.streams.map((s) => [s.name, s]));
    expect(Object.keys(byName)).toEqual(["People", "Q1 'totals'", "Big"]);
    expect(byName.People.columns.map((c) => [c.name, c.type])).toEqual([
      ["id", "integer"],
      ["name", "text"],
      ["score", "number"],
      ["active", "boolean"],
      ["joined", "date"],
    ]);
    expect(byName.People.rowCount).toBe(6);
    expect(byName.People.rowCountExact).toBe(true);
    expect(byName["Q1 'totals'"].rowCount).toBe(2);
    expect(byName.Big.rowCount).toBe(BIG_ROWS);
  });

  it("fetches values in bounded ranges, never a whole sheet", async () => {
    const before = standIn.valueRequests.length;
    const rows = (await readAll("Big", 400)).flatMap((batch) => batch.rows);
    expect(rows).toHaveLength(BIG_ROWS);
    expect(rows.at(-1)).toEqual({ n: BIG_ROWS, label: `row ${BIG_ROWS}` });
    const ranges = standIn.valueRequests.slice(before);
    expect(ranges).toEqual(["'Big'!A1:Z1000", "'Big'!A1001:Z2000", "'Big'!A2001:Z2501"]);
  });

  it("previews with a single range no larger than the preview", async () => {
    const before = standIn.valueRequests.length;
    const result = await googleSheets.preview(
      settings(),
      { stream: { name: "People" }, limit: 2 },
      ctx,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value.rows).toEqual([
      { id: 1, name: "Ada", score: 9.5, active: true, joined: "2024-01-05" },
      { id: 2, name: "Grace", score: 8, active: false, joined: "2024-02-11" },
    ]);
    expect(standIn.valueRequests.slice(before)).toEqual(["'People'!A1:Z3"]);
  });

  it("keeps to one sheet and a range when they are set", async () => {
    const result = await googleSheets.discover(
      settings({ sheetName: "People", range: "B1:C" }),
      ctx,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value.streams.map((s) => s.name)).toEqual(["People"]);
    expect(result.value.streams[0].columns.map((c) => c.name)).toEqual(["name", "score"]);
    const rows = (await readAll("People", 10, { sheetName: "People", range: "B1:C" }))
      .flatMap((batch) => batch.rows);
    expect(rows[0]).toEqual({ name: "Ada", score: 9.5 });
    expect(rows[2]).toEqual({ name: "Linus", score: null });
  });

  it("reads a sheet whose name needs quoting", async () => {
    const rows = (await readAll("Q1 'totals'")).flatMap((batch) => batch.rows);
    expect(rows).toEqual([{ region: "north", total: 10 }, { region: "south", total: 12 }]);
  });

  it("says RESOURCE_NOT_FOUND naming the sheet setting for a sheet that does not exist", async () => {
    const result = await googleSheets.discover(settings({ sheetName: "Nope" }), ctx);
    expect(!result.ok && result.error).toMatchObject({
      code: "RESOURCE_NOT_FOUND",
      field: "configuration.sheetName",
    });
  });

  it("refuses a range that is not A1 notation", async () => {
    const result = await googleSheets.discover(settings({ range: "rows 1 to 5" }), ctx);
    expect(!result.ok && result.error.code).toBe("INVALID_CONFIG");
  });

  it("refuses loopback endpoints unless the network policy allows them", async () => {
    const strict = { ...ctx, network: { allowedHosts: [], allowPrivateNetworks: false } };
    const result = await googleSheets.test(settings(), strict);
    expect(result.error?.code).toBe("BLOCKED_ADDRESS");
  });
});
