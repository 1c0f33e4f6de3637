/**
 * A protocol-level stand-in for Google's OAuth token endpoint and the Sheets v4 API, on
 * loopback, for the real @googleapis/sheets client to talk to.
 *
 * The token endpoint does what Google's does for a service account: it takes the JWT
 * bearer grant, verifies the assertion's RS256 signature with the public key registered for
 * its issuer, checks audience, scope and expiry, and hands out an access token. The API
 * answers spreadsheets.get and spreadsheets.values.get for spreadsheets shared with that
 * account, with Google's error bodies (`{error: {code, message, status}}`) otherwise, and
 * trims trailing empty rows and cells the way the API does.
 */
import { decodeBase64urlIgnorePadding } from "@oslojs/encoding";

export const GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token";
const SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly";

export type Cell = string | number | boolean | null;

export type StandInSheet = {
  title: string;
  rows: Cell[][];
  rowCount?: number;
  columnCount?: number;
};

export type StandInSpreadsheet = {
  id: string;
  title: string;
  /** client_email values it is shared with. */
  sharedWith: string[];
  sheets: StandInSheet[];
};

export type ServiceAccountKey = {
  clientEmail: string;
  /** PKCS#8 PEM, for the credentials JSON. */
  privateKeyPem: string;
  publicKey: CryptoKey;
};

/** A fresh RSA key pair for a service account, made with WebCrypto. */
export async function createServiceAccountKey(clientEmail: string): Promise<ServiceAccountKey> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const base64 = btoa(String.fromCharCode(...pkcs8)).replace(/(.{64})/g, "$1\n");
  return {
    clientEmail,
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`,
    publicKey: pair.publicKey,
  };
}

/** The service-account JSON as the cloud console would download it. */
export function credentialsJson(key: ServiceAccountKey, tokenUri: string): string {
  return JSON.stringify({
    type: "service_account",
    project_id: "dafel-test",
    private_key_id: "test-key",
    private_key: key.privateKeyPem,
    client_email: key.clientEmail,
    client_id: "1234567890",
    token_uri: tokenUri,
  });
}

export type SheetsStandIn = {
  /** Root URL for the API (the connector's apiEndpoint). */
  apiRoot: string;
  /** The token endpoint (the credentials' token_uri). */
  tokenUri: string;
  /** Every values.get range asked for, in order. */
  valueRequests: string[];
  /** The API stops accepting this account's access tokens (401), as for a disabled account. */
  disableApiAccess(clientEmail: string): void;
  close(): Promise<void>;
};

function googleError(code: number, status: string, message: string): Response {
  return Response.json({ error: { code, message, status } }, { status: code });
}

function decodeJson(part: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(decodeBase64urlIgnorePadding(part)));
}

/** A1 column letters to a 1-based index. */
function columnIndex(letters: string): number {
  let index = 0;
  for (const char of letters.toUpperCase()) index = index * 26 + (char.charCodeAt(0) - 64);
  return index;
}

/** Parses `'Sheet name'!A1:C10` (or `Sheet!A:C`, or just a sheet name). */
function parseRange(range: string) {
  const bang = range.lastIndexOf("!");
  const rawSheet = bang >= 0 ? range.slice(0, bang) : range;
  const cells = bang >= 0 ? range.slice(bang + 1) : "";
  const sheet = rawSheet.startsWith("'") ? rawSheet.slice(1, -1).replaceAll("''", "'") : rawSheet;
  const match = /^([A-Z]*)(\d*)(?::([A-Z]*)(\d*))?$/i.exec(cells);
  if (!match) return null;
  return {
    sheet,
    startCol: match[1] ? columnIndex(match[1]) : 1,
    startRow: match[2] ? Number(match[2]) : 1,
    endCol: match[3] ? columnIndex(match[3]) : Infinity,
    endRow: match[4] ? Number(match[4]) : Infinity,
  };
}

export function startSheetsStandIn(options: {
  accounts: ServiceAccountKey[];
  spreadsheets: StandInSpreadsheet[];
}): SheetsStandIn {
  const tokens = new Map<string, string>();
  const disabled = new Set<string>();
  const valueRequests: string[] = [];
  const keys = new Map(options.accounts.map((account) => [account.clientEmail, account]));

  async function issueToken(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const invalid = (description: string) =>
      Response.json({ error: "invalid_grant", error_description: description }, { status: 400 });
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return Response.json({ error: "unsupported_grant_type" }, { status: 400 });
    }
    const parts = (form.get("assertion") ?? "").split(".");
    if (parts.length !== 3) return invalid("Invalid JWT.");
    const header = decodeJson(parts[0]);
    const claims = decodeJson(parts[1]);
    if (header.alg !== "RS256") return invalid("Invalid JWT algorithm.");
    const account = keys.get(String(claims.iss));
    if (!account) return invalid("Invalid grant: account not found");
    const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    const valid = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      account.publicKey,
      new Uint8Array(decodeBase64urlIgnorePadding(parts[2])),
      signed,
    );
    if (!valid) return invalid("Invalid JWT Signature.");
    const now = Date.now() / 1000;
    if (claims.aud !== GOOGLE_TOKEN_AUDIENCE) return invalid("Invalid JWT audience.");
    if (typeof claims.exp !== "number" || claims.exp < now) return invalid("Token has expired.");
    if (typeof claims.iat !== "number" || claims.iat > now + 60) {
      return invalid("Invalid JWT: Token must be a short-lived token");
    }
    if (!String(claims.scope ?? "").split(" ").includes(SCOPE)) {
      return Response.json({ error: "invalid_scope" }, { status: 400 });
    }
    const accessToken = `ya29.${crypto.randomUUID()}`;
    tokens.set(accessToken, account.clientEmail);
    return Response.json({ access_token: accessToken, expires_in: 3599, token_type: "Bearer" });
  }

  function answerApi(request: Request, url: URL): Response {
    const bearer = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
    const email = bearer ? tokens.get(bearer) : undefined;
    if (!email || disabled.has(email)) {
      return googleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    const match = /^\/v4\/spreadsheets\/([^/]+)(?:\/values\/(.+))?$/.exec(url.pathname);
    if (!match) return googleError(404, "NOT_FOUND", "Not found");
    const spreadsheet = options.spreadsheets.find((item) => item.id === match[1]);
    if (!spreadsheet) return googleError(404, "NOT_FOUND", "Requested entity was not found.");
    if (!spreadsheet.sharedWith.includes(email)) {
      return googleError(403, "PERMISSION_DENIED", "The caller does not have permission");
    }
    if (match[2] === undefined) {
      return Response.json({
        spreadsheetId: spreadsheet.id,
        properties: { title: spreadsheet.title, locale: "en_US", timeZone: "Etc/GMT" },
        sheets: spreadsheet.sheets.map((sheet, index) => ({
          properties: {
            sheetId: index * 1000,
            title: sheet.title,
            index,
            sheetType: "GRID",
            gridProperties: {
              rowCount: sheet.rowCount ?? Math.max(1000, sheet.rows.length),
              columnCount: sheet.columnCount ??
                Math.max(26, ...sheet.rows.map((row) => row.length)),
            },
          },
        })),
      });
    }
    const range = decodeURIComponent(match[2]);
    valueRequests.push(range);
    const parsed = parseRange(range);
    const sheet = parsed && spreadsheet.sheets.find((item) => item.title === parsed.sheet);
    if (!parsed || !sheet) {
      return googleError(400, "INVALID_ARGUMENT", `Unable to parse range: ${range}`);
    }
    const formatted = url.searchParams.get("valueRenderOption") !== "UNFORMATTED_VALUE";
    const values = sheet.rows
      .slice(parsed.startRow - 1, parsed.endRow === Infinity ? undefined : parsed.endRow)
      .map((row) => {
        const cells = row.slice(
          parsed.startCol - 1,
          parsed.endCol === Infinity ? undefined : parsed.endCol,
        );
        while (cells.length && (cells.at(-1) === null || cells.at(-1) === "")) cells.pop();
        return cells.map((cell) => (cell === null ? "" : formatted ? String(cell) : cell));
      });
    while (values.length && values.at(-1)!.length === 0) values.pop();
    return Response.json({ range, majorDimension: "ROWS", ...(values.length ? { values } : {}) });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/token" && request.method === "POST") return await issueToken(request);
      if (request.method === "GET") return answerApi(request, url);
      return googleError(405, "INVALID_ARGUMENT", "Method not allowed");
    },
  );
  const root = `http://127.0.0.1:${server.addr.port}`;
  return {
    apiRoot: `${root}/`,
    tokenUri: `${root}/token`,
    valueRequests,
    disableApiAccess: (clientEmail) => disabled.add(clientEmail),
    close: () => server.shutdown(),
  };
}
