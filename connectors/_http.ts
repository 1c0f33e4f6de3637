/**
 * The one way HTTP connectors (REST, GraphQL) reach a server.
 *
 * Deno's fetch resolves host names by itself, so it cannot be told to connect to the address
 * the guard checked. node:http and node:https can: their `lookup` option is answered with
 * the checked address (`pinnedLookup`), and `servername` keeps TLS verifying the configured
 * name. Redirects are followed by hand, each new location checked by the guard first; the
 * whole exchange has a deadline, and a response body has a size limit (counted after
 * decompression, so a small compressed bomb cannot get past it).
 */
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { Readable } from "node:stream";
import zlib from "node:zlib";
import { type CheckedHost, checkHost, pinnedLookup } from "./_guard.ts";
import type { ConnectorContext, ConnectorError, Stage, StageName } from "./types.ts";
import { ConnectorFailure } from "./types.ts";

/** Response size limit when a source sets none. */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
/** Redirects followed before giving up. */
export const MAX_REDIRECTS = 5;

export type HttpCall = {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
};

export type HttpOptions = {
  network: ConnectorContext["network"];
  /** Deadline for the whole exchange, redirects included. */
  timeoutMs: number;
  maxBytes?: number;
  /**
   * Headers that carry credentials besides Authorization and Cookie (an API key header,
   * secret headers): dropped when a redirect leads to another origin.
   */
  sensitiveHeaders?: string[];
  /** Extra trusted certificate authorities (PEM), for servers with a private CA. */
  ca?: string;
  signal?: AbortSignal;
};

export type HttpReply = {
  status: number;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
  /** Where the answer came from, after redirects. */
  url: string;
  stages: Stage[];
};

export type HttpOutcome =
  | { ok: true; reply: HttpReply }
  | { ok: false; error: ConnectorError; stages: Stage[] };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const STAGE_ORDER: StageName[] = ["resolve", "connect", "tls", "query"];

/** Adds the stages of one hop to those of earlier hops (a stage fails if it failed once). */
function mergeStages(into: Stage[], more: Stage[]): Stage[] {
  const byName = new Map(into.map((stage) => [stage.name, { ...stage }]));
  for (const stage of more) {
    const known = byName.get(stage.name);
    if (known) {
      known.ms += stage.ms;
      known.ok = known.ok && stage.ok;
    } else byName.set(stage.name, { ...stage });
  }
  return STAGE_ORDER.flatMap((name) => {
    const stage = byName.get(name);
    return stage ? [{ ...stage, ms: Math.round(stage.ms) }] : [];
  });
}

/** Origin and path only: a query string may hold an API key. */
export function describeUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

/** Replaces every secret value (4 characters or more) that appears in a text. */
export function redactSecrets(text: string, secrets: readonly unknown[]): string {
  let out = text;
  for (const secret of secrets) {
    if (typeof secret !== "string" || secret.length < 4) continue;
    out = out.split(secret).join("[redacted]");
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join("[redacted]");
  }
  return out;
}

/** The secret strings of a connector's secrets (header values included), for redaction. */
export function secretValues(secrets: Record<string, unknown>): string[] {
  const values: string[] = [];
  for (const value of Object.values(secrets)) {
    if (typeof value === "string") values.push(value);
    else if (value && typeof value === "object") {
      for (const inner of Object.values(value)) if (typeof inner === "string") values.push(inner);
    }
  }
  return values;
}

/** A short description of a body for "expected X, found Y" messages. */
export function describeBody(reply: Pick<HttpReply, "headers" | "body">): string {
  const type = reply.headers.get("content-type")?.split(";")[0].trim() || "no content type";
  if (reply.body.length === 0) return `an empty body (${type})`;
  const text = new TextDecoder().decode(reply.body.subarray(0, 400)).replace(/\s+/g, " ").trim();
  const excerpt = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return `${type}: "${excerpt}"`;
}

const TLS_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "HOSTNAME_MISMATCH",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** Classifies a socket-level failure by its errno-style code and the stage it happened in. */
function networkError(
  error: unknown,
  stage: StageName,
  url: URL,
): ConnectorError {
  const code = String((error as { code?: unknown }).code ?? "");
  const where = url.host;
  if (code === "ECONNREFUSED") {
    return {
      code: "CONNECTION_REFUSED",
      message: `Connection to ${where} refused`,
      hint: "Check the endpoint's host and port: nothing accepts connections there",
      field: "endpoint",
    };
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL") {
    return {
      code: "CONNECTION_REFUSED",
      message: `${where} is unreachable from the server (${code})`,
      hint: "Check the endpoint and the server's network routes",
      field: "endpoint",
    };
  }
  if (code === "ETIMEDOUT") {
    return {
      code: "TIMEOUT",
      message: `Connecting to ${where} timed out`,
      hint: "Check that the endpoint is reachable from the server",
      field: "endpoint",
    };
  }
  if (
    TLS_CODES.has(code) || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") ||
    stage === "tls"
  ) {
    return {
      code: "TLS_ERROR",
      message: `TLS handshake with ${where} failed${code ? ` (${code})` : ""}`,
      hint: code.includes("SELF_SIGNED") || code.startsWith("UNABLE_TO")
        ? "The server's certificate is not signed by a trusted authority"
        : code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? "The certificate does not name this host; check the endpoint's host name"
        : "Check that the endpoint speaks https on this port, or use http://",
      field: "endpoint",
    };
  }
  if (code.startsWith("HPE_")) {
    return {
      code: "INVALID_RESPONSE",
      message: `${where} did not answer with valid HTTP (${code})`,
      hint: "Check the endpoint's scheme and port",
      field: "endpoint",
    };
  }
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    return {
      code: "INVALID_RESPONSE",
      message: `${where} closed the connection before answering (${code})`,
      hint: "Check the endpoint's scheme (http or https) and port",
      field: "endpoint",
    };
  }
  return {
    code: "UNKNOWN",
    message: `Request to ${where} failed${code ? ` (${code})` : ""}`,
    hint: "Check the endpoint",
    field: "endpoint",
  };
}

function timeoutError(stage: StageName, url: URL, timeoutMs: number): ConnectorError {
  return {
    code: "TIMEOUT",
    message: stage === "query"
      ? `${url.host} did not answer within ${timeoutMs} ms`
      : `Connecting to ${url.host} took longer than ${timeoutMs} ms`,
    hint: "Check that the endpoint is reachable and responsive, or raise the timeout",
    field: "timeoutMs",
  };
}

function tooLarge(url: URL, maxBytes: number): ConnectorError {
  return {
    code: "INVALID_RESPONSE",
    message: `The response from ${url.host} is larger than the ${maxBytes}-byte limit`,
    hint: "Raise the response size limit, or ask for smaller pages",
    field: "maxResponseBytes",
  };
}

function decoderFor(
  encoding: string | undefined,
): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return zlib.createGunzip();
    case "deflate":
      return zlib.createInflate();
    case "br":
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

function headersOf(raw: string[]): Headers {
  const headers = new Headers();
  for (let index = 0; index + 1 < raw.length; index += 2) {
    try {
      headers.append(raw[index], raw[index + 1]);
    } catch {
      // A header Headers will not hold (invalid characters): not one we read.
    }
  }
  return headers;
}

type HopOutcome =
  | { ok: true; status: number; headers: Headers; body: Uint8Array<ArrayBuffer>; stages: Stage[] }
  | { ok: false; error: ConnectorError; stages: Stage[] };

/**
 * One request to a host the guard already checked, connecting to the checked address
 * (never resolving the name again). Exported for the tests that prove the pinning.
 */
export function requestPinned(
  checked: CheckedHost,
  options: {
    call: HttpCall;
    /** The limit named in a timeout message. */
    timeoutMs: number;
    /** When to give up (`performance.now()` time); `timeoutMs` from now by default. */
    deadline?: number;
    maxBytes: number;
    ca?: string;
    signal?: AbortSignal;
  },
): Promise<HopOutcome> {
  const { call, timeoutMs, maxBytes } = options;
  const url = new URL(call.url);
  const secure = url.protocol === "https:";
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const body = call.body === undefined ? undefined : new TextEncoder().encode(call.body);
  const headers: Record<string, string> = {
    "accept-encoding": "gzip, deflate, br",
    ...call.headers,
  };
  if (body) headers["content-length"] = String(body.length);

  return new Promise((resolve) => {
    const started = performance.now();
    let stage: StageName = "connect";
    let connectedAt: number | undefined;
    let securedAt: number | undefined;
    let settled = false;

    const stagesUntil = (ok: boolean): Stage[] => {
      const now = performance.now();
      const stages: Stage[] = [];
      const connectEnd = connectedAt ?? now;
      stages.push({
        name: "connect",
        ok: connectedAt !== undefined || ok,
        ms: connectEnd - started,
      });
      if (connectedAt === undefined) return stages;
      if (secure) {
        const tlsEnd = securedAt ?? now;
        stages.push({ name: "tls", ok: securedAt !== undefined || ok, ms: tlsEnd - connectedAt });
        if (securedAt === undefined) return stages;
      }
      stages.push({ name: "query", ok, ms: now - (securedAt ?? connectedAt) });
      return stages;
    };

    const finish = (outcome: HopOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
    };
    const fail = (error: ConnectorError) => {
      finish({ ok: false, error, stages: stagesUntil(false) });
      request.destroy();
    };
    const onAbort = () =>
      fail({
        code: "UNKNOWN",
        message: "The request was cancelled",
        hint: "It was stopped before the server answered",
      });

    const client = secure ? https : http;
    const request = client.request({
      protocol: url.protocol,
      hostname,
      port: url.port ? Number(url.port) : secure ? 443 : 80,
      path: `${url.pathname}${url.search}`,
      method: call.method ?? "GET",
      headers,
      lookup: pinnedLookup(checked),
      // TLS verifies the configured name, not the address connected to.
      servername: secure && isIP(hostname) === 0 ? hostname : undefined,
      ca: options.ca,
      agent: false,
    }, (response) => {
      stage = "query";
      const declared = Number(response.headers["content-length"]);
      if (
        Number.isFinite(declared) && declared > maxBytes && !response.headers["content-encoding"]
      ) {
        fail(tooLarge(url, maxBytes));
        return;
      }
      const decoder = decoderFor(response.headers["content-encoding"]);
      const stream: Readable = decoder ? response.pipe(decoder) : response;
      const chunks: Uint8Array[] = [];
      let size = 0;
      stream.on("data", (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > maxBytes) {
          fail(tooLarge(url, maxBytes));
          stream.destroy();
          return;
        }
        chunks.push(chunk);
      });
      stream.on("error", (error: unknown) => {
        const code = String((error as { code?: unknown }).code ?? "");
        if (code.startsWith("Z_") || code.startsWith("ERR_BROTLI") || code.startsWith("ERR__")) {
          fail({
            code: "INVALID_RESPONSE",
            message: `The ${response.headers["content-encoding"]} body from ${url.host} ` +
              `does not decompress (${code})`,
            hint: "The server's response is corrupt; check the endpoint",
            field: "endpoint",
          });
        } else fail(networkError(error, "query", url));
      });
      response.on("aborted", () => fail(networkError({ code: "ECONNRESET" }, "query", url)));
      stream.on("end", () => {
        const all = new Uint8Array(size);
        let offset = 0;
        for (const chunk of chunks) {
          all.set(chunk, offset);
          offset += chunk.length;
        }
        finish({
          ok: true,
          status: response.statusCode ?? 0,
          headers: headersOf(response.rawHeaders),
          body: all,
          stages: stagesUntil(true),
        });
      });
    });
    request.on("socket", (socket) => {
      socket.once("connect", () => {
        connectedAt = performance.now();
        stage = secure ? "tls" : "query";
      });
      if (secure) {
        socket.once("secureConnect", () => {
          securedAt = performance.now();
          stage = "query";
        });
      }
    });
    request.on("error", (error) => fail(networkError(error, stage, url)));
    const wait = Math.max(1, (options.deadline ?? started + timeoutMs) - performance.now());
    const timer = setTimeout(() => fail(timeoutError(stage, url, timeoutMs)), wait);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort);
    request.end(body);
  });
}

function blockedRedirect(from: URL, to: URL, error: ConnectorError): ConnectorError {
  return {
    ...error,
    message: `Redirect from ${describeUrl(from)} to ${describeUrl(to)} refused: ${error.message}`,
  };
}

/**
 * Sends a request through the guard: each host (the endpoint's, then every redirect's) is
 * resolved once, checked, and connected to at the checked address. Remote failures come back
 * as values with the stages reached.
 */
export async function httpRequest(call: HttpCall, options: HttpOptions): Promise<HttpOutcome> {
  const deadline = performance.now() + options.timeoutMs;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const sensitive = new Set(
    ["authorization", "cookie", "proxy-authorization", ...(options.sensitiveHeaders ?? [])]
      .map((name) => name.toLowerCase()),
  );
  let stages: Stage[] = [];
  let current: HttpCall = { ...call, method: call.method ?? "GET" };
  let previous: URL | undefined;

  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let url: URL;
    try {
      url = new URL(current.url);
    } catch {
      return {
        ok: false,
        error: {
          code: "INVALID_CONFIG",
          message: "The endpoint is not a valid URL",
          hint: "Check the endpoint",
          field: "endpoint",
        },
        stages,
      };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return {
        ok: false,
        error: {
          code: previous ? "INVALID_RESPONSE" : "INVALID_CONFIG",
          message: previous
            ? `Redirect from ${describeUrl(previous)} to a ${url.protocol} URL refused`
            : `Only http and https endpoints can be reached, not ${url.protocol}`,
          hint: "Check the endpoint",
          field: "endpoint",
        },
        stages,
      };
    }

    const resolveStarted = performance.now();
    const checked = await checkHost(url.hostname, "http", options.network);
    const resolveStage = {
      name: "resolve" as const,
      ok: checked.ok,
      ms: performance.now() - resolveStarted,
    };
    stages = mergeStages(stages, [resolveStage]);
    if (!checked.ok) {
      const error = { ...checked.error, field: "endpoint" };
      return { ok: false, error: previous ? blockedRedirect(previous, url, error) : error, stages };
    }

    const answer = await requestPinned(checked.value, {
      call: current,
      timeoutMs: options.timeoutMs,
      deadline,
      maxBytes,
      ca: options.ca,
      signal: options.signal,
    });
    stages = mergeStages(stages, answer.stages);
    if (!answer.ok) return { ok: false, error: answer.error, stages };

    const location = answer.headers.get("location");
    if (!REDIRECTS.has(answer.status) || !location) {
      return {
        ok: true,
        reply: {
          status: answer.status,
          headers: answer.headers,
          body: answer.body,
          url: url.href,
          stages,
        },
      };
    }
    if (hop === MAX_REDIRECTS) break;

    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      return {
        ok: false,
        error: {
          code: "INVALID_RESPONSE",
          message: `${url.host} redirected to an invalid location`,
          hint: "Check the endpoint",
          field: "endpoint",
        },
        stages,
      };
    }
    const headers = { ...current.headers };
    if (next.origin !== url.origin) {
      // Credentials are for the configured server, not for wherever it sends us.
      for (const name of Object.keys(headers)) {
        if (sensitive.has(name.toLowerCase())) delete headers[name];
      }
    }
    const becomesGet = answer.status === 303 ||
      ((answer.status === 301 || answer.status === 302) && current.method === "POST");
    if (becomesGet) {
      for (const name of Object.keys(headers)) {
        if (/^content-(type|length)$/i.test(name)) delete headers[name];
      }
    }
    current = {
      url: next.href,
      method: becomesGet ? "GET" : current.method,
      headers,
      body: becomesGet ? undefined : current.body,
    };
    previous = url;
  }
  return {
    ok: false,
    error: {
      code: "INVALID_RESPONSE",
      message: `More than ${MAX_REDIRECTS} redirects from ${describeUrl(call.url)}`,
      hint: "Check the endpoint: it redirects in a loop or too many times",
      field: "endpoint",
    },
    stages,
  };
}

/**
 * Classifies an HTTP status that means the request did not work, or returns null for a
 * success. `authenticated` says whether credentials were sent (a 401 then means wrong ones).
 */
export function statusError(
  status: number,
  context: { url: string; authenticated: boolean },
): ConnectorError | null {
  if (status >= 200 && status < 300) return null;
  const where = describeUrl(context.url);
  if (status === 401) {
    return {
      code: "AUTH_FAILED",
      message: context.authenticated
        ? `${where} refused the credentials (HTTP 401)`
        : `${where} requires authentication (HTTP 401)`,
      hint: context.authenticated
        ? "Check the authentication type and the API key, token or password"
        : "Choose an authentication type and give the API key, token or password",
      field: "auth",
    };
  }
  if (status === 403) {
    return {
      code: "PERMISSION_DENIED",
      message: `${where} answered 403 Forbidden`,
      hint: "The credentials were accepted but may not read this endpoint; check their scopes",
      field: "auth",
    };
  }
  if (status === 404 || status === 410) {
    return {
      code: "RESOURCE_NOT_FOUND",
      message: `${where} does not exist (HTTP ${status})`,
      hint: "Check the endpoint's path",
      field: "endpoint",
    };
  }
  if (status === 405) {
    return {
      code: "INVALID_CONFIG",
      message: `${where} does not accept this method (HTTP 405)`,
      hint: "Check the method",
      field: "method",
    };
  }
  if (status === 400 || status === 422) {
    return {
      code: "INVALID_CONFIG",
      message: `${where} rejected the request (HTTP ${status})`,
      hint: "Check the query parameters, headers and body",
      field: "endpoint",
    };
  }
  if (status === 408 || status === 504) {
    return {
      code: "TIMEOUT",
      message: `${where} timed out answering (HTTP ${status})`,
      hint: "The server or a gateway in front of it gave up; try again later",
      field: "endpoint",
    };
  }
  if (status === 429) {
    return {
      code: "UNKNOWN",
      message: `${where} is rate limiting requests (HTTP 429)`,
      hint: "Wait before trying again, or lower the page limit",
      field: "endpoint",
    };
  }
  if (status >= 300 && status < 400) {
    return {
      code: "INVALID_RESPONSE",
      message: `${where} answered ${status} without a usable redirect`,
      hint: "Check the endpoint",
      field: "endpoint",
    };
  }
  return {
    code: "UNKNOWN",
    message: `${where} answered HTTP ${status}`,
    hint: status >= 500 ? "The server failed; try again later" : "Check the endpoint",
    field: "endpoint",
  };
}

/** What a `fetch` made by `guardedFetch` saw last, for stages and error messages. */
export type FetchTrace = { stages: Stage[]; last?: HttpReply };

/**
 * A fetch-compatible function for client libraries (graphql-request) that sends every
 * request through `httpRequest`. A failure throws `ConnectorFailure` with the classified
 * error; the trace keeps the stages and the last response.
 */
export function guardedFetch(options: HttpOptions, trace: FetchTrace): typeof fetch {
  return async function fetchGuarded(input, init) {
    const request = input instanceof Request ? input : undefined;
    const url = request ? request.url : String(input);
    const headers: Record<string, string> = {};
    new Headers(init?.headers ?? request?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const rawBody = init?.body ?? (request ? await request.text() : undefined);
    if (rawBody !== undefined && rawBody !== null && typeof rawBody !== "string") {
      throw new TypeError("guardedFetch sends text bodies only");
    }
    const outcome = await httpRequest(
      {
        url,
        method: init?.method ?? request?.method ?? "GET",
        headers,
        body: rawBody ?? undefined,
      },
      { ...options, signal: init?.signal ?? options.signal },
    );
    trace.stages = outcome.ok ? outcome.reply.stages : outcome.stages;
    if (!outcome.ok) throw new ConnectorFailure(outcome.error);
    trace.last = outcome.reply;
    const responseHeaders = new Headers(outcome.reply.headers);
    // The body is already decompressed.
    responseHeaders.delete("content-encoding");
    responseHeaders.delete("content-length");
    const empty = [101, 204, 205, 304].includes(outcome.reply.status);
    return new Response(empty ? null : outcome.reply.body, {
      status: outcome.reply.status,
      headers: responseHeaders,
    });
  };
}
