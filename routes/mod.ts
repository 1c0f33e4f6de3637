/**
 * The Hono app: middleware, every resource mounted in one place, and the one error handler.
 * Tests call it in-process with `app.request()`; main.ts serves it.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie } from "hono/cookie";
import { csrf } from "hono/csrf";
import { serveStatic } from "hono/deno";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { isDatabaseUnavailable } from "../db/mod.ts";
import { log } from "../telemetry.ts";
import { VaultError } from "../vault/mod.ts";
import { ErrorPage } from "../views/errors.tsx";
import { authenticate, requireUser, SESSION_COOKIE } from "./_auth.ts";
import type { AppDeps, AppEnv } from "./_env.ts";
import { ApiError, errorJson } from "./_errors.ts";
import { observeRequests } from "./_observe.ts";
import { pageBodyLimit, requirePage } from "./_pages.ts";
import { accountPages } from "./account_pages.tsx";
import { auditLogsApi } from "./audit_logs.ts";
import { authApi } from "./auth.ts";
import { authPages } from "./auth_pages.tsx";
import { dataSourcesApi } from "./data_sources.ts";
import { filesApi } from "./files.ts";
import { healthApi, metricsResponse } from "./health.ts";
import { openApiDocument } from "./openapi.ts";
import { sourceConnectionsApi, testDemoApi } from "./source_connections.ts";
import { auditPages } from "./audit_pages.tsx";
import { sourceFormPages } from "./source_form_pages.tsx";
import { sourcePages } from "./source_pages.tsx";
import { syncApi } from "./sync.ts";
import { syncPages } from "./sync_pages.tsx";
import { tokenPages } from "./token_pages.tsx";
import { userPages } from "./user_pages.tsx";
import { tokensApi } from "./tokens.ts";
import { usersApi } from "./users.ts";

/** JSON bodies above this are refused with 413 before they are read. */
export const MAX_BODY_BYTES = 1024 * 1024;

const staticRoot = new URL("../static", import.meta.url).pathname;
const logger = log("app");

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const publicOrigin = deps.config.publicUrl ? new URL(deps.config.publicUrl).origin : undefined;

  app.use(requestId({ limitLength: 128 }));
  app.use(observeRequests());
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        objectSrc: ["'none'"],
      },
      referrerPolicy: "same-origin",
    }),
  );
  app.use("/static/*", serveStatic({ root: staticRoot, rewriteRequestPath: (p) => p.slice(7) }));
  const jsonBodyLimit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: (c) =>
      errorJson(c, new ApiError(413, "PAYLOAD_TOO_LARGE", "Request body is larger than 1 MiB")),
  });
  // File uploads carry their own, larger limit (routes/files.ts).
  app.use(
    "/api/*",
    (c, next) =>
      c.req.method === "POST" && c.req.path === "/api/files" ? next() : jsonBodyLimit(c, next),
  );
  const sameOrigin = csrf({
    origin: (origin, c) => origin === new URL(c.req.url).origin || origin === publicOrigin,
  });
  // Forgery needs an ambient credential: API calls with a bearer token or without the
  // session cookie have none. Page forms (login, setup) are always checked.
  app.use((c, next) => {
    const ambient = !c.req.header("authorization") &&
      (getCookie(c, SESSION_COOKIE) !== undefined || !isApi(c.req.path));
    return ambient ? sameOrigin(c, next) : next();
  });
  app.use(authenticate(deps));

  app.route("/api/health", healthApi(deps));
  app.route("/api/auth", authApi(deps));
  app.route("/api/tokens", tokensApi(deps));
  app.route("/api/users", usersApi(deps));
  app.route("/api/data-sources", dataSourcesApi(deps));
  app.route("/api/data-sources", sourceConnectionsApi(deps));
  app.route("/api/data-sources", syncApi(deps));
  app.route("/api/test-demo", testDemoApi(deps));
  app.route("/api/audit-logs", auditLogsApi(deps));
  app.route("/api/files", filesApi(deps));
  app.get("/api/openapi.json", requireUser, (c) => c.json(openApiDocument()));
  if (deps.config.metricsPort === undefined) app.get("/metrics", () => metricsResponse());

  for (const path of ["/login", "/setup", "/logout"]) app.use(path, pageBodyLimit);
  app.route("/", authPages(deps));
  app.use("*", requirePage);
  app.get("/", (c) => c.redirect("/data-sources"));
  // The form pages first: /data-sources/new is not a source id.
  app.route("/", sourceFormPages(deps));
  app.route("/", sourcePages(deps));
  app.route("/", syncPages(deps));
  app.route("/", tokenPages(deps));
  app.route("/", accountPages(deps));
  app.route("/", userPages(deps));
  app.route("/", auditPages(deps));

  app.notFound((c) => {
    if (isApi(c.req.path)) return errorJson(c, new ApiError(404, "NOT_FOUND", "No such route"));
    return c.html(
      ErrorPage({ status: 404, message: "There is no page here.", user: c.get("user") }),
      404,
    );
  });

  app.onError((error, c) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500 && apiError.code === "INTERNAL_ERROR") {
      logger.error("Unhandled error", {
        method: c.req.method,
        path: c.req.path,
        requestId: c.get("requestId"),
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        stack: error instanceof Error ? error.stack : undefined,
      });
    }
    if (isApi(c.req.path) || apiError.status === 413) return errorJson(c, apiError);
    for (const [name, value] of Object.entries(apiError.headers ?? {})) c.header(name, value);
    return c.html(
      ErrorPage({ status: apiError.status, message: apiError.message, user: c.get("user") }),
      apiError.status,
    );
  });

  return app;
}

function isDataException(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function isApi(path: string): boolean {
  return path.startsWith("/api/") || path === "/api";
}

/** Every failure as the API's error: ours as they are, the rest classified, never a stack. */
function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isDatabaseUnavailable(error)) {
    return new ApiError(
      503,
      "DATABASE_UNAVAILABLE",
      "The app database is unavailable; try again shortly",
    );
  }
  if (error instanceof HTTPException) {
    if (error.status === 400 && /json/i.test(error.message)) {
      return new ApiError(400, "INVALID_JSON", "Request body is not valid JSON");
    }
    if (error.status === 403) {
      return new ApiError(403, "FORBIDDEN", "Forbidden: cross-site request refused");
    }
    if (error.status === 413) {
      return new ApiError(413, "PAYLOAD_TOO_LARGE", "Request body is larger than 1 MiB");
    }
    if (error.status < 500) {
      return new ApiError(error.status, "BAD_REQUEST", error.message || "Bad request");
    }
  }
  if (isDataException(error)) {
    // SQLSTATE class 22 (data exception) comes from values a client sent, such as a NUL
    // character in text: bad input, not a server fault.
    return new ApiError(
      400,
      "INVALID_INPUT",
      "A value in the request cannot be stored or compared",
    );
  }
  if (error instanceof VaultError) {
    return new ApiError(500, "VAULT_ERROR", error.message);
  }
  return new ApiError(500, "INTERNAL_ERROR", "Internal server error");
}
