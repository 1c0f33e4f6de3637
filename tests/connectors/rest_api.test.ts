/**
 * The REST API connector against a real HTTP server on loopback: authentication modes,
 * every pagination mode, each error code, redirects to blocked addresses, and secrets kept
 * out of every result. Then the shared conformance suite.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restApi } from "../../connectors/rest_api.ts";
import type { ErrorCode, ReadRequest, SourceSettings } from "../../connectors/types.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import {
  closedPort,
  json,
  loopbackContext,
  startHttpServer,
  startSilentServer,
  type TestServer,
  UNRESOLVABLE_HOST,
} from "../helpers/http_fixtures.ts";
import { runConformance } from "./conformance.ts";

const ITEMS = Array.from({ length: 10 }, (_, index) => {
  const id = index + 1;
  const item: Record<string, unknown> = {
    id,
    name: `Item ${id}`,
    price: id % 2 === 0 ? id * 10 : id * 10 + 0.5,
    tags: [`t${id}`],
    updatedAt: `2026-01-${String(id).padStart(2, "0")}T10:00:00Z`,
    note: id % 3 === 0 ? null : `note ${id}`,
  };
  if (id % 4 !== 0) item.color = "blue";
  return item;
});

const BEARER = "sk-live-bearer-7f3a9c";
const API_KEY = "ak-header-5521-zeta";
const QUERY_KEY = "qk-query-9031-omega";
const BASIC_PASSWORD = "basic-pass-w0rd!";
const SIGNATURE = "sig-secret-header-8844";
const READONLY_KEY = "readonly-key-1234";

function page<T>(list: T[], from: number, size: number): T[] {
  return list.slice(from, from + size);
}

async function handle(request: Request, url: URL): Promise<Response> {
  const params = url.searchParams;
  const auth = request.headers.get("authorization");
  switch (url.pathname) {
    case "/paged/items": {
      if (auth !== `Bearer ${BEARER}`) {
        return auth === `Bearer ${READONLY_KEY}`
          ? json({ error: "forbidden" }, { status: 403 })
          : json({ error: "unauthorized" }, { status: 401 });
      }
      const number = Number(params.get("page") ?? 1);
      const size = Number(params.get("per_page") ?? 4);
      return json({ data: { items: page(ITEMS, (number - 1) * size, size) }, page: number });
    }
    case "/zero/items": {
      const number = Number(params.get("p") ?? 0);
      const size = Number(params.get("size") ?? 4);
      return json({ items: page(ITEMS, number * size, size) });
    }
    case "/offset/items": {
      const offset = Number(params.get("offset") ?? 0);
      // The server caps pages at 4 whatever the client asks: the offset must follow what came.
      const limit = Math.min(4, Number(params.get("limit") ?? 4));
      return json({ results: page(ITEMS, offset, limit), total: ITEMS.length });
    }
    case "/cursor/items": {
      const start = params.get("after") ? Number(atob(params.get("after")!)) : 0;
      const items = page(ITEMS, start, 3);
      const end = start + items.length;
      return json({
        items,
        meta: { next: end < ITEMS.length ? btoa(String(end)) : null },
      });
    }
    case "/link/items": {
      const number = Number(params.get("page") ?? 1);
      const items = page(ITEMS, (number - 1) * 4, 4);
      const headers: Record<string, string> = {};
      if (number * 4 < ITEMS.length) {
        headers.link = `</link/items?page=1>; rel="first", </link/items?page=${
          number + 1
        }>; rel="next"`;
      }
      return json(items, { headers });
    }
    case "/endless/items": {
      const number = Number(params.get("page") ?? 1);
      return json([{ id: number }]);
    }
    case "/all/items":
      return json(ITEMS);
    case "/search": {
      if (request.method !== "POST") return json({ error: "method" }, { status: 405 });
      const body = await request.json();
      return json({ hits: ITEMS.filter((item) => item.color === body.color) });
    }
    case "/auth/header":
      return request.headers.get("x-api-key") === API_KEY
        ? json([{ mode: "apiKey header" }])
        : json({}, { status: 401 });
    case "/auth/custom-header":
      return request.headers.get("x-token") === API_KEY
        ? json([{ mode: "apiKey custom header" }])
        : json({}, { status: 401 });
    case "/auth/query":
      return params.get("api_key") === QUERY_KEY
        ? json([{ mode: "apiKey query" }])
        : json({}, { status: 401 });
    case "/auth/basic":
      return auth === `Basic ${btoa(`reader:${BASIC_PASSWORD}`)}`
        ? json([{ mode: "basic" }])
        : json({}, { status: 401, headers: { "www-authenticate": "Basic" } });
    case "/auth/signed":
      return request.headers.get("x-signature") === SIGNATURE &&
          request.headers.get("x-tenant") === "acme"
        ? json([{ mode: "secret header" }])
        : json({}, { status: 401 });
    case "/html":
      // Echoes what it was sent, as careless error pages do.
      return new Response(
        `<html><body>Bad key ${request.headers.get("authorization")}</body></html>`,
        { headers: { "content-type": "text/html" } },
      );
    case "/wrong-shape":
      return json({ data: { rows: ITEMS } });
    case "/object":
      return json({ results: ITEMS, count: ITEMS.length });
    case "/redirect-metadata":
      return new Response(null, {
        status: 302,
        headers: { location: "http://169.254.169.254/latest/meta-data/iam/" },
      });
    case "/redirect-private":
      return new Response(null, { status: 301, headers: { location: "http://10.1.2.3/admin" } });
    case "/server-error":
      return json({ error: "boom" }, { status: 503 });
    default:
      return json({ error: "not found" }, { status: 404 });
  }
}

let server: TestServer;
let silent: ReturnType<typeof startSilentServer>;
const ctx = loopbackContext();

beforeAll(() => {
  server = startHttpServer(handle);
  silent = startSilentServer();
});
afterAll(async () => {
  silent.close();
  await server.close();
});

type Raw = { config: Record<string, unknown>; secrets: Record<string, unknown> };

function parse(raw: Raw) {
  return {
    config: restApi.configSchema.parse(raw.config),
    secrets: restApi.secretsSchema.parse(raw.secrets),
  };
}

let counter = 0;
function source(raw: Raw): SourceSettings<
  ReturnType<typeof restApi.configSchema.parse>,
  ReturnType<typeof restApi.secretsSchema.parse>
> {
  const parsed = parse(raw);
  return { id: `rest-${++counter}`, fingerprint: fingerprintOf(parsed), ...parsed };
}

async function readAll(raw: Raw, request: Partial<ReadRequest> = {}) {
  const batches = [];
  for await (
    const batch of restApi.read(
      source(raw),
      { stream: { name: "items" }, batchSize: 1000, ...request },
      ctx,
    )
  ) batches.push(batch);
  return batches;
}

const paged = (): Raw => ({
  config: {
    endpoint: `${server.origin}/paged/items`,
    auth: { type: "bearer" },
    recordsPath: "data.items",
    pagination: { type: "page", sizeParam: "per_page", pageSize: 3 },
  },
  secrets: { apiKey: BEARER },
});

describe("REST API connection tests", () => {
  it("succeeds with resolve, connect and query stages and the status", async () => {
    const result = await restApi.test(source(paged()), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    expect(result.stages.map((stage) => stage.name)).toEqual(["resolve", "connect", "query"]);
    expect(result.serverInfo).toMatchObject({ status: 200, recordsOnFirstPage: 3 });
  });

  it.each([
    ["an API key in the default header", "/auth/header", { type: "apiKey" }, { apiKey: API_KEY }],
    [
      "an API key in a named header",
      "/auth/custom-header",
      { type: "apiKey", headerName: "X-Token" },
      { apiKey: API_KEY },
    ],
    [
      "an API key in a query parameter",
      "/auth/query",
      { type: "apiKey", queryParam: "api_key" },
      { apiKey: QUERY_KEY },
    ],
    [
      "basic authentication",
      "/auth/basic",
      { type: "basic", username: "reader" },
      { password: BASIC_PASSWORD },
    ],
  ])("authenticates with %s", async (_, path, auth, secrets) => {
    const raw = { config: { endpoint: `${server.origin}${path}`, auth }, secrets };
    const ok = await restApi.test(source(raw), ctx);
    expect(ok.success, JSON.stringify(ok.error)).toBe(true);
    const wrongSecrets = Object.fromEntries(
      Object.keys(secrets).map((key) => [key, "wrong-secret-value"]),
    );
    const wrong = await restApi.test(source({ ...raw, secrets: wrongSecrets }), ctx);
    expect(wrong.error?.code).toBe("AUTH_FAILED");
  });

  it("sends secret headers from the secrets and plain headers from the config", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/auth/signed`,
        headers: [{ name: "X-Tenant", value: "acme" }, { name: "X-Signature", secret: true }],
      },
      secrets: { headers: { "X-Signature": SIGNATURE } },
    };
    expect((await restApi.test(source(raw), ctx)).success).toBe(true);
    const missing = await restApi.test(source({ ...raw, secrets: {} }), ctx);
    expect(missing.error?.code).toBe("AUTH_FAILED");
    expect(missing.error?.message).toMatch(/requires authentication/);
  });

  it.each<[string, string, Record<string, unknown>, ErrorCode, RegExp]>([
    ["401", "/paged/items", { auth: { type: "bearer" } }, "AUTH_FAILED", /401/],
    ["403", "/paged/items", { auth: { type: "bearer" } }, "PERMISSION_DENIED", /403/],
    ["404", "/missing", {}, "RESOURCE_NOT_FOUND", /404/],
    ["503", "/server-error", {}, "UNKNOWN", /503/],
    ["HTML", "/html", {}, "INVALID_RESPONSE", /Expected JSON .* found text\/html: "<html>/],
    [
      "a records path that is not there",
      "/wrong-shape",
      { recordsPath: "data.items" },
      "INVALID_RESPONSE",
      /recordsPath "data.items" does not exist .* keys data/,
    ],
    [
      "an object where records were expected",
      "/object",
      {},
      "INVALID_RESPONSE",
      /object with keys results, count/,
    ],
  ])("classifies %s", async (label, path, config, code, message) => {
    const key = label === "403" ? READONLY_KEY : "not-the-right-key";
    const result = await restApi.test(
      source({
        config: { endpoint: `${server.origin}${path}`, ...config },
        secrets: { apiKey: key },
      }),
      ctx,
    );
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe(code);
    expect(result.error?.message).toMatch(message);
    expect(result.stages.find((stage) => stage.name === "query")?.ok).toBe(false);
  });

  it("suggests where the records are when the path is wrong", async () => {
    const result = await restApi.test(
      source({ config: { endpoint: `${server.origin}/object` }, secrets: {} }),
      ctx,
    );
    expect(result.error?.hint).toMatch(/results/);
    expect(result.error?.field).toBe("configuration.recordsPath");
  });

  it.each([
    ["/redirect-metadata", /169\.254\.169\.254/],
    ["/redirect-private", /10\.1\.2\.3/],
  ])("refuses to follow %s", async (path, target) => {
    const result = await restApi.test(
      source({ config: { endpoint: `${server.origin}${path}` }, secrets: {} }),
      ctx,
    );
    expect(result.error?.code).toBe("BLOCKED_ADDRESS");
    expect(result.error?.message).toMatch(target);
  });

  it("refuses a loopback endpoint that the policy does not allow", async () => {
    const result = await restApi.test(
      source({ config: { endpoint: `${server.origin}/all/items` }, secrets: {} }),
      loopbackContext({ allowedHosts: [] }),
    );
    expect(result.error?.code).toBe("BLOCKED_ADDRESS");
    expect(result.stages).toEqual([{ name: "resolve", ok: false, ms: expect.any(Number) }]);
  });

  it("fails TLS at the tls stage for a certificate nobody vouches for", async () => {
    const secure = startHttpServer(() => json([]), { tls: true });
    try {
      const result = await restApi.test(
        source({ config: { endpoint: `https://localhost:${secure.port}/items` }, secrets: {} }),
        loopbackContext({ allowedHosts: ["localhost"] }),
      );
      expect(result.error).toMatchObject({ code: "TLS_ERROR", field: "endpoint" });
      expect(result.stages.map((stage) => [stage.name, stage.ok])).toEqual([
        ["resolve", true],
        ["connect", true],
        ["tls", false],
      ]);
    } finally {
      await secure.close();
    }
  });

  it("times out on an endpoint that never answers", async () => {
    const result = await restApi.test(
      source({
        config: { endpoint: `http://127.0.0.1:${silent.port}/items`, timeoutMs: 300 },
        secrets: {},
      }),
      ctx,
    );
    expect(result.error?.code).toBe("TIMEOUT");
  });

  it("refuses a response over the size limit", async () => {
    const result = await restApi.test(
      source({
        config: { endpoint: `${server.origin}/all/items`, maxResponseBytes: 1024 },
        secrets: {},
      }),
      ctx,
    );
    expect(result.error).toMatchObject({ code: "INVALID_RESPONSE", field: "maxResponseBytes" });
  });

  it("posts the configured body", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/search`,
        method: "POST",
        body: JSON.stringify({ color: "blue" }),
        recordsPath: "hits",
      },
      secrets: {},
    };
    const rows = (await readAll(raw, { stream: { name: "search" } })).flatMap((batch) =>
      batch.rows
    );
    expect(rows.map((row) => row.id)).toEqual(
      ITEMS.filter((item) => item.color === "blue").map((item) => item.id),
    );
  });
});

describe("REST API pagination", () => {
  const ids = (batches: { rows: Record<string, unknown>[] }[]) =>
    batches.flatMap((batch) => batch.rows.map((row) => row.id));
  const all = ITEMS.map((item) => item.id);

  it("follows page numbers until an empty page", async () => {
    const before = server.seen.length;
    expect(ids(await readAll(paged()))).toEqual(all);
    const pages = server.seen.slice(before).map((seen) => seen.url.searchParams.get("page"));
    expect(pages).toEqual(["1", "2", "3", "4", "5"]);
  });

  it("starts at page zero with custom parameter names", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/zero/items`,
        recordsPath: "items",
        pagination: { type: "page", pageParam: "p", firstPage: 0, sizeParam: "size", pageSize: 4 },
      },
      secrets: {},
    };
    expect(ids(await readAll(raw))).toEqual(all);
  });

  it("follows offsets by the records actually returned", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/offset/items`,
        recordsPath: "results",
        pagination: { type: "offset", pageSize: 100 },
      },
      secrets: {},
    };
    expect(ids(await readAll(raw))).toEqual(all);
  });

  it("follows a cursor taken from the response", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/cursor/items`,
        recordsPath: "items",
        pagination: { type: "cursor", cursorPath: "meta.next", cursorParam: "after" },
      },
      secrets: {},
    };
    expect(ids(await readAll(raw))).toEqual(all);
  });

  it("follows the Link header's next relation", async () => {
    const raw = {
      config: { endpoint: `${server.origin}/link/items`, pagination: { type: "link" } },
      secrets: {},
    };
    expect(ids(await readAll(raw))).toEqual(all);
  });

  it("stops at the page limit", async () => {
    const raw = {
      config: {
        endpoint: `${server.origin}/endless/items`,
        pagination: { type: "page", maxPages: 3 },
      },
      secrets: {},
    };
    expect(ids(await readAll(raw))).toEqual([1, 2, 3]);
  });

  it("yields batches no larger than asked, across page boundaries", async () => {
    const batches = await readAll(paged(), { batchSize: 4 });
    expect(batches.map((batch) => batch.rows.length)).toEqual([4, 4, 2]);
  });

  it("reads only records past the cursor in an incremental read", async () => {
    const batches = await readAll(paged(), {
      cursor: { column: "updatedAt", after: "2026-01-07T10:00:00Z" },
    });
    expect(ids(batches)).toEqual([8, 9, 10]);
  });

  it("requires a cursor path for cursor pagination", () => {
    const config = restApi.configSchema.parse({
      endpoint: "https://api.example.com/items",
      pagination: { type: "cursor" },
    });
    expect(restApi.check(config, {})).toEqual([
      expect.objectContaining({ path: "pagination.cursorPath" }),
    ]);
  });
});

describe("REST API discovery and preview", () => {
  it("infers fields, types and nullability from the records", async () => {
    const result = await restApi.discover(
      source({ config: { endpoint: `${server.origin}/all/items` }, secrets: {} }),
      ctx,
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const [stream] = result.value.streams;
    expect(stream).toMatchObject({
      name: "items",
      kind: "endpoint",
      rowCount: 10,
      rowCountExact: true,
      constraints: { primaryKeys: ["id"] },
    });
    const byName = Object.fromEntries(stream.columns.map((column) => [column.name, column]));
    expect(byName.id).toMatchObject({ type: "integer", nullable: false, primaryKey: true });
    expect(byName.price).toMatchObject({ type: "number", nullable: false });
    expect(byName.tags).toMatchObject({ type: "array" });
    expect(byName.updatedAt).toMatchObject({ type: "timestamp" });
    expect(byName.note).toMatchObject({ type: "text", nullable: true });
    expect(byName.color).toMatchObject({ type: "text", nullable: true });
  });

  it("does not claim an exact count for a paginated endpoint it only sampled", async () => {
    const result = await restApi.discover(
      source({
        config: { endpoint: `${server.origin}/endless/items`, pagination: { type: "page" } },
        secrets: {},
      }),
      ctx,
    );
    expect(result.ok && result.value.streams[0]).toMatchObject({
      rowCount: null,
      rowCountExact: false,
    });
  });

  it("previews across pages up to the limit", async () => {
    const result = await restApi.preview(
      source(paged()),
      { stream: { name: "items" }, limit: 5 },
      ctx,
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.rows.map((row) => row.id)).toEqual([1, 2, 3, 4, 5]);
    expect(result.value.columns.map((column) => column.name)).toContain("updatedAt");
  });

  it("refuses a stream the source does not have", async () => {
    const result = await restApi.preview(
      source(paged()),
      { stream: { name: "orders" }, limit: 5 },
      ctx,
    );
    expect(!result.ok && result.error.code).toBe("RESOURCE_NOT_FOUND");
  });
});

describe("REST API secrets", () => {
  it("never repeats a key, password or secret header in any result", async () => {
    const settings: Raw[] = [
      {
        // This page echoes the Authorization header back.
        config: { endpoint: `${server.origin}/html`, auth: { type: "bearer" } },
        secrets: { apiKey: BEARER },
      },
      {
        config: {
          endpoint: `${server.origin}/auth/query`,
          auth: { type: "apiKey", queryParam: "api_key" },
        },
        secrets: { apiKey: "query-key-never-shown" },
      },
      {
        config: {
          endpoint: `${server.origin}/redirect-metadata`,
          auth: { type: "basic", username: "u" },
        },
        secrets: { password: BASIC_PASSWORD },
      },
      {
        config: {
          endpoint: `${server.origin}/wrong-shape`,
          recordsPath: "data.items",
          headers: [{ name: "X-Signature", secret: true }],
        },
        secrets: { headers: { "X-Signature": SIGNATURE } },
      },
    ];
    for (const raw of settings) {
      const outputs = [
        await restApi.test(source(raw), ctx),
        await restApi.discover(source(raw), ctx),
        await restApi.preview(source(raw), { stream: { name: "items" }, limit: 5 }, ctx),
      ];
      const text = JSON.stringify(outputs);
      for (const secret of [BEARER, "query-key-never-shown", BASIC_PASSWORD, SIGNATURE]) {
        expect(text.includes(secret), `${raw.config.endpoint}: ${text}`).toBe(false);
      }
      expect(outputs[0]).toMatchObject({ success: false });
    }
  });
});

const failure = (name: string, code: ErrorCode, config: () => Record<string, unknown>) => ({
  name,
  code,
  settings: () => parse({ config: config(), secrets: { apiKey: "sk-failure-secret-0099" } }),
});

runConformance({
  name: "REST API",
  connector: restApi,
  ctx,
  settings: () => parse(paged()),
  stream: { name: "items", columns: ["id", "name", "price", "updatedAt"], rows: ITEMS.length },
  cursorColumn: "id",
  failures: [
    failure("wrong token", "AUTH_FAILED", () => ({
      endpoint: `${server.origin}/paged/items`,
      auth: { type: "bearer" },
    })),
    failure(
      "missing endpoint",
      "RESOURCE_NOT_FOUND",
      () => ({ endpoint: `${server.origin}/nope` }),
    ),
    failure("HTML instead of JSON", "INVALID_RESPONSE", () => ({
      endpoint: `${server.origin}/html`,
      auth: { type: "bearer" },
    })),
    failure("refused port", "CONNECTION_REFUSED", () => ({
      endpoint: `http://127.0.0.1:${closedPort()}/items`,
    })),
    failure("metadata address", "BLOCKED_ADDRESS", () => ({
      endpoint: "http://169.254.169.254/latest/meta-data/",
    })),
    failure("redirect to metadata", "BLOCKED_ADDRESS", () => ({
      endpoint: `${server.origin}/redirect-metadata`,
      auth: { type: "apiKey" },
    })),
    failure("unknown host", "HOST_NOT_FOUND", () => ({
      endpoint: `http://${UNRESOLVABLE_HOST}/items`,
    })),
    failure("silent server", "TIMEOUT", () => ({
      endpoint: `http://127.0.0.1:${silent.port}/items`,
      timeoutMs: 300,
    })),
  ],
});
