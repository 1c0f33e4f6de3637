/**
 * REST APIs that answer JSON, through the guarded HTTP path (connectors/_http.ts).
 *
 * A source is one endpoint and one stream (named after the endpoint's last path segment).
 * Records are the array at `recordsPath` (the body itself when empty). Pagination follows a
 * page number, an offset, a cursor taken from the response, or the Link header's rel=next,
 * up to `maxPages` pages; every page is a request of its own, checked by the guard like the
 * first. Incremental reads keep the records whose cursor field is past the saved value: an
 * API has no generic filter to ask for them, so every page is still read.
 */
import { z } from "zod";
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  describeBody,
  describeUrl,
  type HttpCall,
  type HttpReply,
  httpRequest,
  redactSecrets,
  secretValues,
  statusError,
} from "./_http.ts";
import { headersField, httpUrlField, secretHeadersField, timeoutField } from "./_fields.ts";
import { ColumnSampler } from "./_infer.ts";
import { isPastCursor, type TabularRecord } from "./_tabular.ts";
import type {
  Column,
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
  Stream,
  StreamRef,
  TestResult,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";

/** How the API is authenticated; the key, token or password itself is a secret. */
export const httpAuthSchema = z.strictObject({
  type: z.enum(["none", "apiKey", "bearer", "basic"]).default("none").meta({
    title: "Authentication",
    description: "none; apiKey: a key in a header or query parameter; bearer: " +
      "Authorization: Bearer <token>; basic: a username and password",
  }),
  headerName: z.string().trim().max(200).optional().meta({
    title: "API key header",
    description: "Header that carries the API key (X-API-Key when empty)",
    placeholder: "X-API-Key",
  }),
  queryParam: z.string().trim().max(200).optional().meta({
    title: "API key query parameter",
    description: "Send the API key as this query parameter instead of a header",
    placeholder: "api_key",
  }),
  username: z.string().trim().max(255).optional().meta({
    title: "Basic auth username",
    placeholder: "reader",
  }),
}).default({ type: "none" }).meta({ title: "Authentication" });

const paginationSchema = z.strictObject({
  type: z.enum(["none", "page", "offset", "cursor", "link"]).default("none").meta({
    title: "Pagination",
    description: "page: ?page=N; offset: ?offset=N&limit=M; cursor: a field of the response; " +
      "link: the Link header's rel=next",
  }),
  pageParam: z.string().trim().max(100).optional().meta({
    title: "Page parameter",
    description: "Query parameter with the page number (page when empty)",
    placeholder: "page",
  }),
  firstPage: z.coerce.number().int().min(0).max(1_000_000).optional().meta({
    title: "First page number",
    description: "1 for most APIs, 0 for some",
    placeholder: "1",
  }),
  offsetParam: z.string().trim().max(100).optional().meta({
    title: "Offset parameter",
    description: "Query parameter with the number of records to skip (offset when empty)",
    placeholder: "offset",
  }),
  sizeParam: z.string().trim().max(100).optional().meta({
    title: "Page size parameter",
    description: "Query parameter with the page size (per_page for page, limit for offset)",
    placeholder: "limit",
  }),
  pageSize: z.coerce.number().int().min(1).max(10_000).optional().meta({
    title: "Page size",
    description: "Records to ask for per page; the API's default when empty",
    placeholder: "100",
  }),
  cursorPath: z.string().trim().max(500).optional().meta({
    title: "Next cursor path",
    description: "Dot path to the next cursor in the response, such as meta.next_cursor",
    placeholder: "meta.next_cursor",
  }),
  cursorParam: z.string().trim().max(100).optional().meta({
    title: "Cursor parameter",
    description: "Query parameter that sends the cursor back (cursor when empty)",
    placeholder: "cursor",
  }),
  maxPages: z.coerce.number().int().min(1).max(100_000).default(100).meta({
    title: "Page limit",
    description: "Stop after this many pages",
    placeholder: "100",
  }),
}).default({ type: "none", maxPages: 100 }).meta({ title: "Pagination" });

const configSchema = z.strictObject({
  endpoint: httpUrlField("Endpoint", "https://api.example.com/v1/items"),
  method: z.enum(["GET", "POST"]).default("GET").meta({
    title: "Method",
    description: "GET for most APIs; POST sends the request body below",
  }),
  body: z.string().max(100_000).optional().meta({
    title: "Request body (JSON, for POST)",
    placeholder: '{"status": "active"}',
  }),
  auth: httpAuthSchema,
  headers: headersField(),
  recordsPath: z.string().trim().max(500).optional().meta({
    title: "Records path",
    description: "Dot path to the array of records, such as data.items; empty for the root",
    placeholder: "data.items",
  }),
  pagination: paginationSchema,
  timeoutMs: timeoutField("Timeout"),
  maxResponseBytes: z.coerce.number().int().min(1024).max(1_073_741_824).optional().meta({
    title: "Response size limit",
    description: "Bytes per response; 10 MiB by default",
    placeholder: "10485760",
  }),
});

const secretsSchema = z.strictObject({
  apiKey: z.string().max(8192).optional().meta({
    title: "API key or token",
    description: "For API key and bearer authentication",
  }),
  password: z.string().max(1024).optional().meta({ title: "Basic auth password" }),
  headers: secretHeadersField(),
});

type Config = z.infer<typeof configSchema>;
type Secrets = z.infer<typeof secretsSchema>;
type Settings = SourceSettings<Config, Secrets>;
export type HttpAuth = z.infer<typeof httpAuthSchema>;

export function checkHttpAuth(
  config: { auth: z.infer<typeof httpAuthSchema> },
  secrets: { apiKey?: string; password?: string },
): { path: string; message: string }[] {
  const type = config.auth.type;
  if ((type === "apiKey" || type === "bearer") && !secrets.apiKey) {
    return [{ path: "apiKey", message: "An API key or token is required for this authentication" }];
  }
  if (type === "basic" && (!config.auth.username || secrets.password === undefined)) {
    return [{
      path: "auth.username",
      message: "Basic authentication needs a username and password",
    }];
  }
  return [];
}

/**
 * Headers and query parameters that carry the configuration's headers and credentials.
 * Credentials go only to the endpoint's own origin (a Link header may point elsewhere).
 */
export function authorize(
  url: URL,
  options: {
    endpoint: string;
    auth: HttpAuth;
    headers: Config["headers"];
    secrets: Pick<Secrets, "apiKey" | "password" | "headers">;
  },
): { url: URL; headers: Record<string, string>; sensitive: string[] } {
  const { auth, secrets } = options;
  const headers: Record<string, string> = {};
  const sensitive: string[] = [];
  const ownOrigin = url.origin === new URL(options.endpoint).origin;
  for (const header of options.headers) {
    if (header.secret) {
      sensitive.push(header.name);
      const value = secrets.headers?.[header.name];
      if (value !== undefined && ownOrigin) headers[header.name] = value;
    } else if (header.value !== undefined) headers[header.name] = header.value;
  }
  const signed = new URL(url);
  if (!ownOrigin) return { url: signed, headers, sensitive };
  if (auth.type === "apiKey" && secrets.apiKey) {
    if (auth.queryParam) signed.searchParams.set(auth.queryParam, secrets.apiKey);
    else {
      const name = auth.headerName || "X-API-Key";
      headers[name] = secrets.apiKey;
      sensitive.push(name);
    }
  } else if (auth.type === "bearer" && secrets.apiKey) {
    headers.authorization = `Bearer ${secrets.apiKey}`;
  } else if (auth.type === "basic" && auth.username) {
    const pair = new TextEncoder().encode(`${auth.username}:${secrets.password ?? ""}`);
    headers.authorization = `Basic ${btoa(String.fromCharCode(...pair))}`;
  }
  return { url: signed, headers, sensitive };
}

/** The value at a dot path (`data.items`, `results.0.rows`); the root for an empty path. */
export function valueAt(value: unknown, path: string | undefined): unknown {
  if (!path) return value;
  let current = value;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object") {
    const keys = Object.keys(value as object);
    const shown = keys.slice(0, 8).join(", ");
    return keys.length
      ? `an object with keys ${shown}${keys.length > 8 ? ", ..." : ""}`
      : "an empty object";
  }
  return `a ${typeof value}`;
}

/** Paths to arrays of objects inside a value, to suggest as a records path. */
function arrayPaths(value: unknown, prefix = "", depth = 0): string[] {
  if (depth > 3 || value === null || typeof value !== "object" || Array.isArray(value)) return [];
  const found: string[] = [];
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(inner)) found.push(path);
    else found.push(...arrayPaths(inner, path, depth + 1));
  }
  return found;
}

/**
 * The records at `path` of a parsed body, each a plain object (a scalar record becomes
 * `{ value }`); or an INVALID_RESPONSE that says what is there instead.
 */
export function recordsAt(
  body: unknown,
  path: string | undefined,
  field = "configuration.recordsPath",
): Result<TabularRecord[]> {
  const found = valueAt(body, path);
  if (!Array.isArray(found)) {
    const suggestions = arrayPaths(
      found === undefined ? body : found,
      found === undefined ? "" : path,
    );
    const where = path ? `recordsPath "${path}"` : "The response";
    const what = found === undefined
      ? `does not exist in the response (the response is ${kindOf(body)})`
      : `holds ${kindOf(found)}, not an array of records`;
    return {
      ok: false,
      error: {
        code: "INVALID_RESPONSE",
        message: path ? `${where} ${what}` : `The response is ${kindOf(found)}, not an array`,
        hint: suggestions.length
          ? `Set the records path to where the records are: ${suggestions.slice(0, 3).join(", ")}`
          : "Set the records path to the array of records in the response",
        field,
      },
    };
  }
  return {
    ok: true,
    value: found.map((item) =>
      item !== null && typeof item === "object" && !Array.isArray(item)
        ? item as TabularRecord
        : { value: item }
    ),
  };
}

/** Columns inferred from sample records, with `id` as the key when it identifies them. */
export function inferColumns(records: TabularRecord[]): {
  columns: Column[];
  primaryKeys: string[];
} {
  const sampler = new ColumnSampler();
  for (const record of records) sampler.add(record);
  const columns: Column[] = sampler.columns().map(({ presence: _, ...column }) => column);
  const key = ["id", "_id", "uuid"].find((name) => {
    const values = records.map((record) => record[name]);
    return values.length > 0 &&
      values.every((value) => typeof value === "string" || typeof value === "number") &&
      new Set(values).size === values.length;
  });
  for (const column of columns) {
    if (column.name === key) Object.assign(column, { primaryKey: true, unique: true });
  }
  return { columns, primaryKeys: key ? [key] : [] };
}

/** One stream per source, named after the endpoint's last path segment. */
export function streamNameOf(endpoint: string): string {
  const url = new URL(endpoint);
  const segment = url.pathname.split("/").filter(Boolean).at(-1) ?? "";
  const name = decodeURIComponent(segment).replace(/\.json$/i, "").replace(/[^\w-]+/g, "_");
  return name.replace(/^_+|_+$/g, "") || "records";
}

/** The rel="next" target of a Link header, resolved against the page's URL. */
export function nextLink(header: string | null, base: string): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match) continue;
    const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(match[2])?.[1] ?? "";
    if (rel.toLowerCase().split(/\s+/).includes("next")) {
      try {
        return new URL(match[1], base).href;
      } catch {
        return null;
      }
    }
  }
  return null;
}

/**
 * Batches of `batchSize` records from chunks of any size (pages), keeping only records past
 * the cursor for an incremental read.
 */
export async function* inBatches(
  chunks: AsyncIterable<TabularRecord[]>,
  request: Pick<ReadRequest, "batchSize" | "cursor" | "signal">,
): AsyncGenerator<RecordBatch> {
  const size = Math.max(1, Math.floor(request.batchSize));
  const cursor = request.cursor;
  let rows: TabularRecord[] = [];
  for await (const chunk of chunks) {
    request.signal?.throwIfAborted();
    for (const record of chunk) {
      if (cursor && !isPastCursor(record[cursor.column], cursor.after)) continue;
      rows.push(record);
      if (rows.length === size) {
        yield { rows };
        rows = [];
      }
    }
  }
  if (rows.length) yield { rows };
}

type Page = { records: TabularRecord[]; reply: HttpReply; body: unknown };

function timeoutOf(config: Config, ctx: ConnectorContext): number {
  return config.timeoutMs ?? ctx.pool.connectionTimeoutMs;
}

/** Sends one page request; a non-2xx status, non-JSON or a missing records path fails it. */
async function fetchPage(
  settings: Settings,
  url: URL,
  ctx: ConnectorContext,
  signal?: AbortSignal,
): Promise<
  { ok: true; page: Page; stages: Stage[] } | { ok: false; error: ConnectorError; stages: Stage[] }
> {
  const { config, secrets } = settings;
  const signed = authorize(url, {
    endpoint: config.endpoint,
    auth: config.auth,
    headers: config.headers,
    secrets,
  });
  const call: HttpCall = {
    url: signed.url.href,
    method: config.method,
    headers: { accept: "application/json", ...signed.headers },
  };
  if (config.method === "POST") {
    call.body = config.body ?? "";
    call.headers = { "content-type": "application/json", ...call.headers };
  }
  const outcome = await httpRequest(call, {
    network: ctx.network,
    timeoutMs: timeoutOf(config, ctx),
    maxBytes: config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    sensitiveHeaders: signed.sensitive,
    signal,
  });
  const secretList = secretValues(secrets);
  const clean = (error: ConnectorError): ConnectorError => ({
    ...error,
    message: redactSecrets(error.message, secretList),
    hint: redactSecrets(error.hint, secretList),
  });
  if (!outcome.ok) return { ok: false, error: clean(outcome.error), stages: outcome.stages };
  const { reply } = outcome;
  const failResponse = (error: ConnectorError) => ({
    ok: false as const,
    error: clean(error),
    stages: reply.stages.map((stage) => stage.name === "query" ? { ...stage, ok: false } : stage),
  });
  const statusProblem = statusError(reply.status, {
    url: reply.url,
    authenticated: config.auth.type !== "none",
  });
  if (statusProblem) return failResponse(statusProblem);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(reply.body));
  } catch {
    return failResponse({
      code: "INVALID_RESPONSE",
      message: `Expected JSON from ${describeUrl(reply.url)}, found ${describeBody(reply)}`,
      hint: "Check the endpoint: it should answer with JSON",
      field: "endpoint",
    });
  }
  const records = recordsAt(body, config.recordsPath);
  if (!records.ok) return failResponse(records.error);
  return { ok: true, page: { records: records.value, reply, body }, stages: reply.stages };
}

/** Where pagination stands: the page number or offset reached so far. */
type Position = { page: number; offset: number };

/** The URL of a numbered or offset page (the endpoint itself for other pagination). */
function pageUrl(config: Config, position: Position, params: Record<string, string> = {}): URL {
  const url = new URL(config.endpoint);
  const pagination = config.pagination;
  const size = (fallback: string): Record<string, string> =>
    pagination.pageSize ? { [pagination.sizeParam || fallback]: String(pagination.pageSize) } : {};
  const added = pagination.type === "page"
    ? { [pagination.pageParam || "page"]: String(position.page), ...size("per_page") }
    : pagination.type === "offset"
    ? { [pagination.offsetParam || "offset"]: String(position.offset), ...size("limit") }
    : {};
  for (const [name, value] of Object.entries({ ...added, ...params })) {
    url.searchParams.set(name, value);
  }
  return url;
}

function firstPosition(config: Config): Position {
  return { page: config.pagination.firstPage ?? 1, offset: 0 };
}

/**
 * The page after `page`, or null at the end. Numbered and offset pages end with an empty
 * page, not a short one: many APIs cap the page size below what was asked for.
 */
function nextPage(config: Config, page: Page, position: Position): URL | null {
  const pagination = config.pagination;
  switch (pagination.type) {
    case "none":
      return null;
    case "page":
      if (page.records.length === 0) return null;
      position.page++;
      return pageUrl(config, position);
    case "offset":
      if (page.records.length === 0) return null;
      position.offset += page.records.length;
      return pageUrl(config, position);
    case "cursor": {
      const cursor = valueAt(page.body, pagination.cursorPath);
      const usable = (typeof cursor === "string" && cursor !== "") || typeof cursor === "number";
      return usable
        ? pageUrl(config, position, { [pagination.cursorParam || "cursor"]: String(cursor) })
        : null;
    }
    case "link": {
      const link = nextLink(page.reply.headers.get("link"), page.reply.url);
      return link ? new URL(link) : null;
    }
  }
}

/**
 * Every page of the endpoint, following the configured pagination up to the page limit.
 * A failed page throws `ConnectorFailure`.
 */
async function* pages(
  settings: Settings,
  ctx: ConnectorContext,
  options: { signal?: AbortSignal; maxPages?: number } = {},
): AsyncGenerator<Page> {
  const { config } = settings;
  const maxPages = Math.min(options.maxPages ?? Infinity, config.pagination.maxPages);
  const position = firstPosition(config);
  const seen = new Set<string>();
  let url: URL | null = pageUrl(config, position);
  for (let count = 0; url && count < maxPages; count++) {
    options.signal?.throwIfAborted();
    seen.add(url.href);
    const fetched = await fetchPage(settings, url, ctx, options.signal);
    if (!fetched.ok) throw new ConnectorFailure(fetched.error);
    yield fetched.page;
    const next = nextPage(config, fetched.page, position);
    // A page that points back at one already read would loop forever.
    url = next && !seen.has(next.href) ? next : null;
  }
}

function failedTest(started: number, stages: Stage[], error: ConnectorError): TestResult {
  return {
    success: false,
    message: error.message,
    responseTime: Math.round(performance.now() - started),
    stages,
    error,
  };
}

function failureOf(error: unknown): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  throw error;
}

function unknownStream(settings: Settings, stream: StreamRef): ConnectorError | null {
  const name = streamNameOf(settings.config.endpoint);
  if (stream.name === name && stream.schema === undefined) return null;
  return {
    code: "RESOURCE_NOT_FOUND",
    message: `This source has one stream, "${name}", not "${stream.name}"`,
    hint: "Discover the source again",
  };
}

/** Records for discovery and preview: pages until `limit` records or the page limit. */
async function sample(
  settings: Settings,
  ctx: ConnectorContext,
  options: { limit: number; maxPages: number },
) {
  const records: TabularRecord[] = [];
  let pageCount = 0;
  let more = false;
  for await (const page of pages(settings, ctx, { maxPages: options.maxPages })) {
    pageCount++;
    records.push(...page.records);
    if (records.length >= options.limit) {
      more = true;
      break;
    }
  }
  return { records: records.slice(0, options.limit), pageCount, complete: !more };
}

/** Records read to infer a schema. */
const SAMPLE_RECORDS = 500;
const SAMPLE_PAGES = 5;

export const restApi = {
  type: "REST_API",
  label: "REST API",
  description: "JSON over HTTP, with pagination and authentication",
  configSchema,
  secretsSchema,
  check(config, secrets) {
    const issues = checkHttpAuth(config, secrets);
    if (config.pagination.type === "cursor" && !config.pagination.cursorPath) {
      issues.push({
        path: "pagination.cursorPath",
        message: "Cursor pagination needs the path to the next cursor in the response",
      });
    }
    if (config.body !== undefined && config.method === "POST") {
      try {
        JSON.parse(config.body);
      } catch {
        issues.push({ path: "body", message: "The request body must be JSON" });
      }
    }
    return issues;
  },
  capabilities: { pooled: false, incremental: true },

  async test(settings, ctx) {
    const started = performance.now();
    const first = pageUrl(settings.config, firstPosition(settings.config));
    const fetched = await fetchPage(settings, first, ctx);
    if (!fetched.ok) return failedTest(started, fetched.stages, fetched.error);
    const { reply, records } = fetched.page;
    return {
      success: true,
      message: `Connected: HTTP ${reply.status}, ${records.length} record${
        records.length === 1 ? "" : "s"
      } on the first page`,
      responseTime: Math.round(performance.now() - started),
      stages: fetched.stages,
      serverInfo: {
        status: reply.status,
        contentType: reply.headers.get("content-type"),
        server: reply.headers.get("server"),
        recordsOnFirstPage: records.length,
        pagination: settings.config.pagination.type,
      },
    };
  },

  async discover(settings, ctx): Promise<Result<Discovery>> {
    try {
      const sampled = await sample(settings, ctx, {
        limit: SAMPLE_RECORDS,
        maxPages: SAMPLE_PAGES,
      });
      const { columns, primaryKeys } = inferColumns(sampled.records);
      // The count is exact only when every record was in the sample.
      const exact = sampled.complete &&
        (settings.config.pagination.type === "none" || sampled.pageCount < SAMPLE_PAGES);
      const stream: Stream = {
        name: streamNameOf(settings.config.endpoint),
        kind: "endpoint",
        columns,
        rowCount: exact ? sampled.records.length : null,
        rowCountExact: exact,
        constraints: { primaryKeys, foreignKeys: [], uniqueKeys: primaryKeys },
      };
      return { ok: true, value: { streams: [stream] } };
    } catch (error) {
      return { ok: false, error: failureOf(error) };
    }
  },

  async preview(settings, request, ctx): Promise<Result<Preview>> {
    const unknown = unknownStream(settings, request.stream);
    if (unknown) return { ok: false, error: unknown };
    try {
      const sampled = await sample(settings, ctx, {
        limit: request.limit,
        maxPages: settings.config.pagination.maxPages,
      });
      const { columns } = inferColumns(sampled.records);
      return {
        ok: true,
        value: {
          columns: columns.map(({ name, type }) => ({ name, type })),
          rows: sampled.records,
        },
      };
    } catch (error) {
      return { ok: false, error: failureOf(error) };
    }
  },

  async *read(settings, request, ctx) {
    const unknown = unknownStream(settings, request.stream);
    if (unknown) throw new ConnectorFailure(unknown);
    async function* chunks() {
      for await (const page of pages(settings, ctx, { signal: request.signal })) {
        yield page.records;
      }
    }
    yield* inBatches(chunks(), request);
  },
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
