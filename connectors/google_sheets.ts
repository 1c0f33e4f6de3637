/**
 * Google Sheets, through @googleapis/sheets with a service-account JWT.
 *
 * Each sheet is a stream (only `sheetName` when set); its first row (of `range`, when set)
 * names the columns, the rows below are records. Values are read in bounded ranges of
 * ROWS_PER_REQUEST rows, never a whole sheet at once: discovery walks them to count the
 * non-empty rows exactly and samples the first ones for types (integer, number, boolean,
 * date, timestamp, text); preview reads one range; read yields a batch per range.
 *
 * Network: every request (the OAuth token call included) goes through the app's guarded
 * fetch (connectors/_http.ts), so each host is checked by the outbound-address guard and the
 * connection goes to the checked address, with a deadline. By default that is Google:
 * sheets.googleapis.com and the token URI of the service-account JSON (Google's). The two
 * explicit overrides, for Private Service Connect endpoints or a compatible proxy, are the
 * `apiEndpoint` setting and the credentials' own `token_uri` field; the tests point them
 * at a local stand-in.
 */
import { createPrivateKey } from "node:crypto";
import { auth, sheets, type sheets_v4 } from "@googleapis/sheets";
import { z } from "zod";
import { httpUrlField } from "./_fields.ts";
import { checkHost } from "./_guard.ts";
import { type FetchTrace, guardedFetch } from "./_http.ts";
import { ColumnSampler, jsonType, textType } from "./_infer.ts";
import {
  firstRecords,
  inBatches,
  type TabularRecord,
  transportError,
  uniqueColumnNames,
} from "./_tabular.ts";
import type {
  Connector,
  ConnectorContext,
  ConnectorError,
  Discovery,
  Preview,
  ReadRequest,
  RecordBatch,
  Result,
  SourceSettings,
  Stage,
  StageName,
  Stream,
  StreamRef,
  TestResult,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";

const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
const GOOGLE_API_ROOT = "https://sheets.googleapis.com/";
const SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly";
/** Rows per values request: bounded responses whatever the sheet's size. */
export const ROWS_PER_REQUEST = 1000;
/** Rows sampled for column types. */
const SAMPLE_ROWS = 1000;
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/** A1 notation: `A1:F500`, `A:F`, `B2:F`, optionally after `Sheet!`. */
const A1_RANGE = /^([A-Z]{1,3})?(\d{1,7})?(?::([A-Z]{1,3})?(\d{1,7})?)?$/i;

const configSchema = z.strictObject({
  spreadsheetId: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{10,200}$/, "Not a spreadsheet id (the part of the URL after /d/)")
    .meta({
      title: "Spreadsheet ID",
      description: "The part of the spreadsheet's URL between /d/ and /edit",
      placeholder: "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms",
    }),
  sheetName: z.string().trim().max(200).optional().meta({
    title: "Sheet",
    description: "Only this sheet (tab); all sheets when empty",
    placeholder: "Sheet1",
  }),
  range: z.string().trim().max(200).optional().meta({
    title: "Range",
    description: "A1 notation such as A1:F500; its first row is the header. The whole " +
      "sheet when empty",
    placeholder: "A1:F500",
  }),
  apiEndpoint: httpUrlField("API endpoint", "https://sheets-example.p.googleapis.com/")
    .optional()
    .meta({
      title: "API endpoint",
      description: "Advanced: a Private Service Connect endpoint or compatible proxy for the " +
        "Sheets API; https://sheets.googleapis.com when empty",
      placeholder: "https://sheets.googleapis.com/",
    }),
});

const serviceAccountKeys = ["client_email", "private_key"] as const;

/** The service-account JSON as downloaded from the cloud console. */
const credentialsField = z
  .string()
  .min(2, "Credentials are required")
  .max(64 * 1024)
  .superRefine((text, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: "custom", message: "Credentials must be the service-account JSON" });
      return;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      ctx.addIssue({ code: "custom", message: "Credentials must be a JSON object" });
      return;
    }
    for (const key of serviceAccountKeys) {
      if (typeof (parsed as Record<string, unknown>)[key] !== "string") {
        ctx.addIssue({ code: "custom", message: `Credentials JSON is missing "${key}"` });
      }
    }
  })
  .meta({
    title: "Service account JSON",
    description: "The key file of a service account (IAM → Service accounts → Keys → JSON). " +
      "Share the spreadsheet with its client_email",
    placeholder: '{"type": "service_account", "client_email": "...", "private_key": "..."}',
  });

const secretsSchema = z.strictObject({ credentials: credentialsField });

type SheetsConfig = z.infer<typeof configSchema>;
type Settings = SourceSettings<SheetsConfig, z.infer<typeof secretsSchema>>;

type ServiceAccount = { clientEmail: string; privateKey: string; tokenUri: string };

/** Rows and columns of a sheet region, 1-based and inclusive. */
type Region = { startRow: number; endRow: number; startCol: number; endCol: number };

type SheetInfo = { title: string; rowCount: number; columnCount: number };

function invalidCredentials(message: string): ConnectorError {
  return {
    code: "INVALID_CONFIG",
    message,
    hint: "Paste the whole service-account key file (JSON) as downloaded from the cloud console",
    field: "credentials",
  };
}

/** The service account from the credentials JSON, or what is wrong with it. */
export function parseServiceAccount(text: string): Result<ServiceAccount> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, error: invalidCredentials("The credentials are not valid JSON") };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { ok: false, error: invalidCredentials("The credentials are not a JSON object") };
  }
  const json = parsed as Record<string, unknown>;
  for (const key of serviceAccountKeys) {
    if (typeof json[key] !== "string" || json[key] === "") {
      return {
        ok: false,
        error: invalidCredentials(`The credentials JSON is missing "${key}"`),
      };
    }
  }
  if (json.type !== undefined && json.type !== "service_account") {
    return {
      ok: false,
      error: invalidCredentials(
        `The credentials are of type "${String(json.type)}", not "service_account"`,
      ),
    };
  }
  try {
    createPrivateKey(String(json.private_key));
  } catch {
    return {
      ok: false,
      error: invalidCredentials('"private_key" in the credentials JSON is not a PEM private key'),
    };
  }
  const tokenUri = typeof json.token_uri === "string" ? json.token_uri : GOOGLE_TOKEN_URL;
  if (!/^https?:\/\//.test(tokenUri)) {
    return { ok: false, error: invalidCredentials('"token_uri" is not an http(s) URL') };
  }
  return {
    ok: true,
    value: {
      clientEmail: String(json.client_email),
      privateKey: String(json.private_key),
      tokenUri,
    },
  };
}

// --- A1 notation ------------------------------------------------------------------------

function columnIndex(letters: string): number {
  let index = 0;
  for (const char of letters.toUpperCase()) index = index * 26 + (char.charCodeAt(0) - 64);
  return index;
}

/** A 1-based column index as letters (1 → A, 27 → AA). */
export function columnLetters(index: number): string {
  let letters = "";
  for (let n = index; n > 0; n = Math.floor((n - 1) / 26)) {
    letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  }
  return letters;
}

/** `'Sheet name'!A1:F10`, quoting the name as A1 notation requires. */
function a1(sheet: string, region: Region): string {
  const quoted = `'${sheet.replaceAll("'", "''")}'`;
  return `${quoted}!${columnLetters(region.startCol)}${region.startRow}:` +
    `${columnLetters(region.endCol)}${region.endRow}`;
}

/** The configured range split into an optional sheet name and its cells, or null if bad. */
function parseConfiguredRange(
  range: string | undefined,
): { sheet?: string; cells?: RegExpExecArray } | null {
  if (!range) return {};
  const bang = range.lastIndexOf("!");
  const sheetPart = bang >= 0 ? range.slice(0, bang) : undefined;
  const cellPart = bang >= 0 ? range.slice(bang + 1) : range;
  const sheet = sheetPart?.startsWith("'")
    ? sheetPart.slice(1, -1).replaceAll("''", "'")
    : sheetPart;
  if (cellPart === "") return { sheet };
  const cells = A1_RANGE.exec(cellPart);
  return cells ? { sheet, cells } : null;
}

function regionOf(sheet: SheetInfo, cells: RegExpExecArray | undefined): Region {
  const grid: Region = {
    startRow: 1,
    endRow: sheet.rowCount,
    startCol: 1,
    endCol: Math.max(1, sheet.columnCount),
  };
  if (!cells) return grid;
  const [, startCol, startRow, endCol, endRow] = cells;
  return {
    startCol: startCol ? columnIndex(startCol) : grid.startCol,
    startRow: startRow ? Number(startRow) : grid.startRow,
    endCol: endCol
      ? columnIndex(endCol)
      : startCol && !cells[0].includes(":")
      ? columnIndex(startCol)
      : grid.endCol,
    endRow: endRow ? Math.min(Number(endRow), grid.endRow) : grid.endRow,
  };
}

// --- Client -----------------------------------------------------------------------------

type Client = {
  api: sheets_v4.Sheets;
  jwt: InstanceType<typeof auth.JWT>;
  account: ServiceAccount;
  trace: FetchTrace;
};

/**
 * A fetch for the Google client: the fixed token URL goes to the credentials' token_uri,
 * form bodies become text, and everything else is the guarded fetch.
 */
function googleFetch(
  ctx: ConnectorContext,
  account: ServiceAccount,
  trace: FetchTrace,
): typeof fetch {
  const guarded = guardedFetch(
    {
      network: ctx.network,
      timeoutMs: ctx.pool.connectionTimeoutMs,
      maxBytes: MAX_RESPONSE_BYTES,
    },
    trace,
  );
  return function fetchForGoogle(input, init) {
    let url = input instanceof Request ? input.url : String(input);
    if (url === GOOGLE_TOKEN_URL) url = account.tokenUri;
    const headers = new Headers(init?.headers);
    let body = init?.body;
    if (body instanceof URLSearchParams) {
      body = body.toString();
      if (!headers.has("content-type")) {
        headers.set("content-type", "application/x-www-form-urlencoded");
      }
    }
    return guarded(url, { ...init, headers, body });
  };
}

function clientFor(settings: Settings, ctx: ConnectorContext): Result<Client> {
  const account = parseServiceAccount(settings.secrets.credentials);
  if (!account.ok) return account;
  const trace: FetchTrace = { stages: [] };
  const fetchImplementation = googleFetch(ctx, account.value, trace);
  const jwt = new auth.JWT({
    email: account.value.clientEmail,
    key: account.value.privateKey,
    scopes: [SCOPE],
    transporterOptions: { fetchImplementation, retry: false },
  });
  const api = sheets({
    version: "v4",
    auth: jwt,
    rootUrl: settings.config.apiEndpoint ?? GOOGLE_API_ROOT,
    fetchImplementation,
    retry: false,
  });
  return { ok: true, value: { api, jwt, account: account.value, trace } };
}

// --- Errors -----------------------------------------------------------------------------

function failureIn(error: unknown): ConnectorError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof ConnectorFailure) return current.error;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

type GoogleErrorBody = {
  error?: string | { code?: number; status?: string; message?: string };
  error_description?: string;
};

/** A failure of a Google call, classified by the OAuth error or the API's status. */
export function googleError(error: unknown, config: SheetsConfig, clientEmail: string) {
  const transport = failureIn(error);
  if (transport) return transport;
  const response = (error as { response?: { status?: number; data?: unknown } })?.response;
  if (!response?.status) return transportError(error, "configuration.apiEndpoint");
  const status = response.status;
  const body = (typeof response.data === "object" ? response.data : {}) as GoogleErrorBody;
  if (typeof body.error === "string") {
    // The OAuth token endpoint: invalid_grant (bad signature, unknown or disabled account,
    // deleted key), invalid_client, unauthorized_client.
    return {
      code: "AUTH_FAILED" as const,
      message: `Google refused the service account's sign-in (${body.error})`,
      hint: `Check that the key of ${clientEmail} is current (not deleted or disabled) and ` +
        "that the server's clock is right",
      field: "credentials",
    };
  }
  const apiStatus = body.error?.status;
  if (apiStatus === "UNAUTHENTICATED" || status === 401) {
    return {
      code: "AUTH_FAILED" as const,
      message: "Google did not accept the service account's access token",
      hint: `Check that the key of ${clientEmail} is current and the Sheets API is enabled ` +
        "for its project",
      field: "credentials",
    };
  }
  if (apiStatus === "PERMISSION_DENIED" || status === 403) {
    return {
      code: "PERMISSION_DENIED" as const,
      message: `The service account may not read spreadsheet ${config.spreadsheetId}`,
      hint: `The spreadsheet is not shared with the service account: share it with ` +
        `${clientEmail} (Viewer is enough)`,
      field: "configuration.spreadsheetId",
    };
  }
  if (apiStatus === "NOT_FOUND" || status === 404) {
    return {
      code: "RESOURCE_NOT_FOUND" as const,
      message: `Spreadsheet ${config.spreadsheetId} does not exist`,
      hint: "Check the spreadsheet ID: the part of its URL between /d/ and /edit",
      field: "configuration.spreadsheetId",
    };
  }
  if (apiStatus === "INVALID_ARGUMENT" || status === 400) {
    return {
      code: "INVALID_CONFIG" as const,
      message: "Google could not use the sheet name or range",
      hint: "Check the sheet name and the range (A1 notation such as A1:F500)",
      field: config.range ? "configuration.range" : "configuration.sheetName",
    };
  }
  return {
    code: status === 429 || apiStatus === "RESOURCE_EXHAUSTED"
      ? "UNKNOWN" as const
      : status >= 500
      ? "UNKNOWN" as const
      : "INVALID_RESPONSE" as const,
    message: `Google answered HTTP ${status}${apiStatus ? ` (${apiStatus})` : ""}`,
    hint: status === 429 || apiStatus === "RESOURCE_EXHAUSTED"
      ? "The project's Sheets API quota is used up; try again in a minute"
      : "Try again later",
    field: "configuration.apiEndpoint",
  };
}

// --- Reading ----------------------------------------------------------------------------

async function sheetInfos(client: Client, config: SheetsConfig): Promise<SheetInfo[]> {
  const { data } = await client.api.spreadsheets.get({
    spreadsheetId: config.spreadsheetId,
    fields: "sheets(properties(title,sheetType,gridProperties(rowCount,columnCount)))",
  });
  return (data.sheets ?? [])
    .filter((sheet) => (sheet.properties?.sheetType ?? "GRID") === "GRID")
    .map((sheet) => ({
      title: sheet.properties?.title ?? "",
      rowCount: sheet.properties?.gridProperties?.rowCount ?? 0,
      columnCount: sheet.properties?.gridProperties?.columnCount ?? 0,
    }));
}

/** The sheets this source reads (one when a sheet name is set), each with its region. */
function selectedSheets(
  sheetsFound: SheetInfo[],
  config: SheetsConfig,
): Result<{ sheet: SheetInfo; region: Region }[]> {
  const range = parseConfiguredRange(config.range);
  if (!range) {
    return {
      ok: false,
      error: {
        code: "INVALID_CONFIG",
        message: `"${config.range}" is not a range in A1 notation`,
        hint: "Write the range like A1:F500 or A:F",
        field: "configuration.range",
      },
    };
  }
  const wanted = config.sheetName || range.sheet;
  const chosen = wanted ? sheetsFound.filter((sheet) => sheet.title === wanted) : sheetsFound;
  if (wanted && chosen.length === 0) {
    return {
      ok: false,
      error: {
        code: "RESOURCE_NOT_FOUND",
        message: `The spreadsheet has no sheet "${wanted}"`,
        hint: `Check the sheet name; it has: ${sheetsFound.map((s) => s.title).join(", ")}`,
        field: "configuration.sheetName",
      },
    };
  }
  return {
    ok: true,
    value: chosen.map((sheet) => ({ sheet, region: regionOf(sheet, range.cells) })),
  };
}

type SheetRows = { header: string[]; chunks: AsyncGenerator<TabularRecord[]> };

/** A cell as a record value: numbers and booleans as they are, empty cells null. */
function cellValue(cell: unknown): unknown {
  return cell === "" || cell === undefined ? null : cell;
}

/**
 * The header and the records of a sheet region, fetched ROWS_PER_REQUEST rows at a time.
 * Fully empty rows are skipped.
 */
async function sheetRows(
  client: Client,
  config: SheetsConfig,
  target: { sheet: SheetInfo; region: Region },
  signal?: AbortSignal,
): Promise<SheetRows> {
  const { sheet, region } = target;
  const fetchRows = async (startRow: number, endRow: number) => {
    const { data } = await client.api.spreadsheets.values.get(
      {
        spreadsheetId: config.spreadsheetId,
        range: a1(sheet.title, { ...region, startRow, endRow }),
        majorDimension: "ROWS",
        valueRenderOption: "UNFORMATTED_VALUE",
        dateTimeRenderOption: "FORMATTED_STRING",
      },
      { signal },
    );
    return (data.values ?? []) as unknown[][];
  };
  const headerEnd = Math.min(region.endRow, region.startRow + ROWS_PER_REQUEST - 1);
  const first = region.startRow <= region.endRow ? await fetchRows(region.startRow, headerEnd) : [];
  const headerCells = first[0] ?? [];
  const width = Math.max(headerCells.length, 0);
  const header = uniqueColumnNames(headerCells.map((cell) => cell ?? ""));
  const toRecords = (rows: unknown[][]) => {
    const records: TabularRecord[] = [];
    for (const row of rows) {
      if (!row.some((cell) => cell !== "" && cell !== null && cell !== undefined)) continue;
      const record: TabularRecord = {};
      for (let index = 0; index < width; index++) record[header[index]] = cellValue(row[index]);
      records.push(record);
    }
    return records;
  };
  async function* chunks(): AsyncGenerator<TabularRecord[]> {
    const firstRecords = toRecords(first.slice(1));
    if (firstRecords.length) yield firstRecords;
    for (let start = headerEnd + 1; start <= region.endRow; start += ROWS_PER_REQUEST) {
      const rows = await fetchRows(start, Math.min(region.endRow, start + ROWS_PER_REQUEST - 1));
      const records = toRecords(rows);
      if (records.length) yield records;
    }
  }
  return { header, chunks: chunks() };
}

/** Sheet cells: JSON numbers and booleans, and text that may look like a date. */
function cellType(value: unknown) {
  return typeof value === "string" ? textType(value) : jsonType(value);
}

function columnsOf(header: string[], sampler: ColumnSampler) {
  const inferred = new Map(sampler.columns().map((column) => [column.name, column]));
  return header.map((name) => ({
    name,
    type: inferred.get(name)?.type ?? "text",
    nullable: inferred.get(name)?.nullable ?? true,
  }));
}

async function withClient<T>(
  settings: Settings,
  ctx: ConnectorContext,
  work: (client: Client) => Promise<T>,
): Promise<Result<T>> {
  const made = clientFor(settings, ctx);
  if (!made.ok) return made;
  try {
    return { ok: true, value: await work(made.value) };
  } catch (error) {
    if (error instanceof ConnectorFailure) return { ok: false, error: error.error };
    return {
      ok: false,
      error: googleError(error, settings.config, made.value.account.clientEmail),
    };
  }
}

function selectedOrThrow(sheetsFound: SheetInfo[], config: SheetsConfig) {
  const selected = selectedSheets(sheetsFound, config);
  if (!selected.ok) throw new ConnectorFailure(selected.error);
  return selected.value;
}

function findSheet(sheetsFound: SheetInfo[], config: SheetsConfig, stream: StreamRef) {
  const target = selectedOrThrow(sheetsFound, config).find((item) =>
    item.sheet.title === stream.name
  );
  if (!target || stream.schema !== undefined) {
    throw new ConnectorFailure({
      code: "RESOURCE_NOT_FOUND",
      message: `This source has no sheet "${stream.name}"`,
      hint: "Discover the schema again: the spreadsheet's sheets changed",
      field: "configuration.sheetName",
    });
  }
  return target;
}

// --- The verbs --------------------------------------------------------------------------

function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
}

async function test(settings: Settings, ctx: ConnectorContext): Promise<TestResult> {
  const config = settings.config;
  const started = performance.now();
  const stages: Stage[] = [];
  let mark = started;
  const stage = (name: StageName, ok: boolean, detail?: string) => {
    const now = performance.now();
    stages.push({ name, ok, ms: Math.round(now - mark), ...(detail ? { detail } : {}) });
    mark = now;
  };
  const failed = (error: ConnectorError): TestResult => ({
    success: false,
    message: error.message,
    responseTime: Math.round(performance.now() - started),
    stages,
    error,
  });

  const made = clientFor(settings, ctx);
  if (!made.ok) {
    stage("authenticate", false, "Reading the service-account key");
    return failed(made.error);
  }
  const client = made.value;
  const apiRoot = config.apiEndpoint ?? GOOGLE_API_ROOT;
  for (
    const [url, field] of [
      [client.account.tokenUri, "credentials"],
      [apiRoot, "configuration.apiEndpoint"],
    ] as const
  ) {
    const checked = await checkHost(hostOf(url), "http", ctx.network);
    if (!checked.ok) {
      stage("resolve", false);
      return failed({ ...checked.error, field });
    }
  }
  stage("resolve", true, "Token and API hosts checked by the address guard");
  try {
    await client.jwt.authorize();
    stage("authenticate", true, "Service-account JWT exchanged for an access token");
  } catch (error) {
    stage("authenticate", false, "Service-account JWT exchanged for an access token");
    return failed(googleError(error, config, client.account.clientEmail));
  }
  let metadata: sheets_v4.Schema$Spreadsheet;
  try {
    metadata = (await client.api.spreadsheets.get({
      spreadsheetId: config.spreadsheetId,
      fields: "properties(title,locale,timeZone),sheets(properties(title,gridProperties))",
    })).data;
    stage("query", true, "Spreadsheet metadata");
  } catch (error) {
    stage("query", false, "Spreadsheet metadata");
    return failed(googleError(error, config, client.account.clientEmail));
  }
  const titles = (metadata.sheets ?? []).map((sheet) => sheet.properties?.title ?? "");
  if (config.sheetName && !titles.includes(config.sheetName)) {
    return failed({
      code: "RESOURCE_NOT_FOUND",
      message: `The spreadsheet has no sheet "${config.sheetName}"`,
      hint: `Check the sheet name; it has: ${titles.join(", ")}`,
      field: "configuration.sheetName",
    });
  }
  return {
    success: true,
    message: `Read spreadsheet "${metadata.properties?.title ?? config.spreadsheetId}"`,
    responseTime: Math.round(performance.now() - started),
    stages,
    serverInfo: {
      title: metadata.properties?.title ?? null,
      sheets: titles.join(", "),
      sheetCount: titles.length,
      locale: metadata.properties?.locale ?? null,
      timeZone: metadata.properties?.timeZone ?? null,
      serviceAccount: client.account.clientEmail,
    },
  };
}

async function discover(settings: Settings, ctx: ConnectorContext): Promise<Result<Discovery>> {
  const config = settings.config;
  return await withClient(settings, ctx, async (client) => {
    const streams: Stream[] = [];
    for (const target of selectedOrThrow(await sheetInfos(client, config), config)) {
      const { header, chunks } = await sheetRows(client, config, target);
      const sampler = new ColumnSampler(cellType);
      let rows = 0;
      for await (const chunk of chunks) {
        for (let index = 0; index < chunk.length && rows + index < SAMPLE_ROWS; index++) {
          sampler.add(chunk[index]);
        }
        rows += chunk.length;
      }
      streams.push({
        name: target.sheet.title,
        kind: "sheet",
        columns: columnsOf(header, sampler),
        rowCount: rows,
        rowCountExact: true,
        constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [] },
      });
    }
    return { streams };
  });
}

async function preview(
  settings: Settings,
  request: { stream: StreamRef; limit: number },
  ctx: ConnectorContext,
): Promise<Result<Preview>> {
  const config = settings.config;
  return await withClient(settings, ctx, async (client) => {
    const target = findSheet(await sheetInfos(client, config), config, request.stream);
    // A preview needs one range: no more rows than it shows, plus the header.
    const limited = {
      sheet: target.sheet,
      region: {
        ...target.region,
        endRow: Math.min(target.region.endRow, target.region.startRow + request.limit),
      },
    };
    const { header, chunks } = await sheetRows(client, config, limited);
    const rows = await firstRecords(chunks, request.limit);
    const sampler = new ColumnSampler(cellType);
    for (const row of rows) sampler.add(row);
    return { columns: columnsOf(header, sampler).map(({ name, type }) => ({ name, type })), rows };
  });
}

async function* read(
  settings: Settings,
  request: ReadRequest,
  ctx: ConnectorContext,
): AsyncGenerator<RecordBatch> {
  const config = settings.config;
  const made = clientFor(settings, ctx);
  if (!made.ok) throw new ConnectorFailure(made.error);
  const client = made.value;
  const classify = (error: unknown) =>
    error instanceof ConnectorFailure
      ? error
      : new ConnectorFailure(googleError(error, config, client.account.clientEmail));
  let rows: SheetRows;
  try {
    const target = findSheet(await sheetInfos(client, config), config, request.stream);
    rows = await sheetRows(client, config, target, request.signal);
  } catch (error) {
    throw classify(error);
  }
  try {
    yield* inBatches(rows.chunks, request);
  } catch (error) {
    throw classify(error);
  }
}

export const googleSheets = {
  type: "GOOGLE_SHEETS",
  label: "Google Sheets",
  description: "Spreadsheets shared with a service account",
  configSchema,
  secretsSchema,
  capabilities: { pooled: false, incremental: true },
  test,
  discover,
  preview,
  read,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
