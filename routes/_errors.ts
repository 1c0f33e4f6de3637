/** The one HTTP error type of the app, and the JSON shape every error response has. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorDetail = { path: string; message: string };

export type ErrorBody = { error: string; code: string; details?: ErrorDetail[] };

/** Thrown by handlers and middleware; `onError` turns it into `{ error, code, details? }`. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function badRequest(message: string, details?: ErrorDetail[]): ApiError {
  return new ApiError(400, "VALIDATION_ERROR", message, details);
}

export function unauthorized(): ApiError {
  return new ApiError(401, "UNAUTHORIZED", "Unauthorized");
}

export function forbidden(message = "Forbidden"): ApiError {
  return new ApiError(403, "FORBIDDEN", message);
}

export function notFound(what: string): ApiError {
  return new ApiError(404, "NOT_FOUND", `${what} not found`);
}

export function conflict(message: string): ApiError {
  return new ApiError(409, "CONFLICT", message);
}

export function tooManyRequests(retryAfterSeconds: number): ApiError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new ApiError(
    429,
    "RATE_LIMITED",
    `Too many requests: try again in ${seconds} s`,
    undefined,
    { "Retry-After": String(seconds) },
  );
}

export function errorJson(c: Context, error: ApiError): Response {
  const body: ErrorBody = { error: error.message, code: error.code };
  if (error.details?.length) body.details = error.details;
  for (const [name, value] of Object.entries(error.headers ?? {})) c.header(name, value);
  return c.json(body, error.status);
}

/** zod issues as `details`: the path joined with dots, and the message. */
export function issuesToDetails(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  prefix?: string,
): ErrorDetail[] {
  return issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter((part) => part !== undefined && part !== "")
      .join("."),
    message: issue.message,
  }));
}
