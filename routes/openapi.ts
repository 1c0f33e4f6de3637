/** `GET /api/openapi.json`: the API described from the same zod schemas that validate it. */
import { z } from "zod";
import { connectors } from "../connectors/mod.ts";
import { newUserSchema } from "../db/users.ts";
import { auditQuerySchema } from "./audit_logs.ts";
import { changePasswordSchema, loginSchema } from "./auth.ts";
import { createSourceSchema, listQuerySchema, updateSourceSchema } from "./data_sources.ts";
import { createTokenSchema } from "./tokens.ts";
import { updateUserSchema } from "./users.ts";
import { previewQuerySchema } from "./source_connections.ts";
import { syncLogsQuerySchema, syncRequestSchema } from "./sync.ts";
import { syncSettingsInput } from "../sync/settings.ts";

type JsonSchema = Record<string, unknown>;

function schemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  return rest;
}

function queryParameters(schema: z.ZodObject) {
  const json = schemaOf(schema) as { properties?: Record<string, JsonSchema> };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: false,
    schema: property,
  }));
}

const errorResponse = { $ref: "#/components/responses/Error" };

function body(ref: string) {
  return {
    required: true,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
  };
}

function ok(description: string) {
  return { description, content: { "application/json": { schema: {} } } };
}

const idParameter = { name: "id", in: "path", required: true, schema: { type: "string" } };

let cached: JsonSchema | undefined;

/** The OpenAPI 3.1 document; built once. */
export function openApiDocument(): JsonSchema {
  if (cached) return cached;
  const settings = Object.fromEntries(
    Object.entries(connectors).map(([type, spec]) => [
      `${type}SourceSettings`,
      {
        description: `${spec.label}: top-level fields or \`configuration\`; secret fields ` +
          `(${Object.keys(spec.secretsSchema.shape).join(", ") || "none"}) are stored encrypted`,
        ...schemaOf(spec.configSchema.extend(spec.secretsSchema.shape)),
      },
    ]),
  );
  cached = {
    openapi: "3.1.0",
    info: {
      title: "Dafel Data Sources API",
      version: "1.0.0",
      description: "Authenticate with a session cookie or `Authorization: Bearer <token>`.",
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        session: { type: "apiKey", in: "cookie", name: "dafel_session" },
      },
      responses: {
        Error: {
          description: "An error",
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["error", "code"],
                properties: {
                  error: { type: "string" },
                  code: { type: "string" },
                  details: {
                    type: "array",
                    items: {
                      type: "object",
                      properties: { path: { type: "string" }, message: { type: "string" } },
                    },
                  },
                },
              },
            },
          },
        },
      },
      schemas: {
        Login: schemaOf(loginSchema),
        ChangePassword: schemaOf(changePasswordSchema),
        CreateToken: schemaOf(createTokenSchema),
        CreateUser: schemaOf(newUserSchema),
        UpdateUser: schemaOf(updateUserSchema),
        CreateDataSource: schemaOf(createSourceSchema),
        UpdateDataSource: schemaOf(updateSourceSchema),
        SyncRequest: schemaOf(syncRequestSchema),
        SyncSettings: schemaOf(syncSettingsInput),
        ...settings,
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths: {
      "/api/auth/login": {
        post: {
          summary: "Sign in; sets the session cookie",
          security: [],
          requestBody: body("Login"),
          responses: { 200: ok("The user"), 401: errorResponse, 429: errorResponse },
        },
      },
      "/api/auth/logout": { post: { summary: "Sign out", responses: { 200: ok("Signed out") } } },
      "/api/auth/me": {
        get: { summary: "The signed-in user", responses: { 200: ok("The user") } },
      },
      "/api/auth/password": {
        post: {
          summary: "Change your own password: ends your other sessions (this one and API " +
            "tokens keep working); a wrong current password is 400 INVALID_CREDENTIALS; " +
            "attempts count against the login limit",
          requestBody: body("ChangePassword"),
          responses: {
            200: ok("{success: true}"),
            400: errorResponse,
            401: errorResponse,
            429: errorResponse,
          },
        },
      },
      "/api/tokens": {
        get: {
          summary: "Your API tokens",
          responses: { 200: ok("Tokens (id, name, createdAt, lastUsedAt, expiresAt), no values") },
        },
        post: {
          summary: "Create an API token (its value is shown once); it expires after " +
            "`expiresInDays` (90 by default, null for never)",
          requestBody: body("CreateToken"),
          responses: { 201: ok("The token with its value"), 400: errorResponse },
        },
      },
      "/api/tokens/{id}": {
        delete: {
          summary: "Revoke a token",
          parameters: [idParameter],
          responses: { 204: { description: "Revoked" }, 404: errorResponse },
        },
      },
      "/api/users": {
        get: { summary: "Users (ADMIN)", responses: { 200: ok("Users"), 403: errorResponse } },
        post: {
          summary: "Create a user (ADMIN)",
          requestBody: body("CreateUser"),
          responses: { 201: ok("The user"), 400: errorResponse, 409: errorResponse },
        },
      },
      "/api/users/{id}": {
        patch: {
          summary: "Change a user's role, password or both (ADMIN); a new password ends " +
            "that user's sessions",
          parameters: [idParameter],
          requestBody: body("UpdateUser"),
          responses: {
            200: ok("The user"),
            400: errorResponse,
            403: errorResponse,
            404: errorResponse,
            409: errorResponse,
          },
        },
        delete: {
          summary: "Remove a user (ADMIN)",
          parameters: [idParameter],
          responses: { 204: { description: "Removed" }, 409: errorResponse },
        },
      },
      "/api/data-sources": {
        get: {
          summary: "Data sources you can see; X-Total-Count has the total",
          parameters: queryParameters(listQuerySchema),
          responses: { 200: ok("Sanitized data sources") },
        },
        post: {
          summary: "Register a data source (settings per type: see the *SourceSettings schemas)",
          requestBody: body("CreateDataSource"),
          responses: { 201: ok("{id, name, type, status, createdAt}"), 400: errorResponse },
        },
      },
      "/api/data-sources/{id}": {
        get: {
          summary: "One data source",
          parameters: [idParameter],
          responses: { 200: ok("Sanitized"), 403: errorResponse, 404: errorResponse },
        },
        put: {
          summary: "Change a data source; a secret left out keeps its value, null clears it",
          parameters: [idParameter],
          requestBody: body("UpdateDataSource"),
          responses: { 200: ok("Sanitized"), 400: errorResponse, 404: errorResponse },
        },
        delete: {
          summary: "Delete a data source",
          parameters: [idParameter],
          responses: { 204: { description: "Deleted" }, 404: errorResponse },
        },
      },
      "/api/data-sources/{id}/test": {
        post: {
          summary: "Test the connection: {success, message, responseTime, serverInfo, schema, " +
            "stages, error?}; a failed connection is still 200 with success false",
          parameters: [idParameter],
          responses: { 200: ok("The staged result"), 404: errorResponse, 429: errorResponse },
        },
      },
      "/api/data-sources/{id}/schema": {
        get: {
          summary: "Discover the schema (tables, columns, keys, row counts); keeps a snapshot",
          parameters: [idParameter],
          responses: { 200: ok("{success, schema: {tables, totalTables, totalRows}}") },
        },
      },
      "/api/data-sources/{id}/schema/changes": {
        get: {
          summary: "What changed between the two newest discoveries",
          parameters: [idParameter],
          responses: { 200: ok("{success, from, to, changes}") },
        },
      },
      "/api/data-sources/{id}/preview": {
        get: {
          summary: "Rows of a table that discovery returned",
          parameters: [idParameter, ...queryParameters(previewQuerySchema)],
          responses: { 200: ok("{success, columns, rows}"), 404: errorResponse },
        },
      },
      "/api/data-sources/{id}/sync": {
        post: {
          summary: "Start a sync into schema ds_<id> of the app database",
          parameters: [idParameter],
          requestBody: body("SyncRequest"),
          responses: { 202: ok("{syncLogId}"), 400: errorResponse, 409: errorResponse },
        },
      },
      "/api/data-sources/{id}/sync-logs": {
        get: {
          summary: "Sync runs, newest first",
          parameters: [idParameter, ...queryParameters(syncLogsQuerySchema)],
          responses: { 200: ok("Sync logs") },
        },
      },
      "/api/data-sources/{id}/sync-logs/{logId}": {
        get: {
          summary: "One sync run",
          parameters: [idParameter, { ...idParameter, name: "logId" }],
          responses: { 200: ok("The sync log"), 404: errorResponse },
        },
      },
      "/api/data-sources/{id}/sync-logs/{logId}/cancel": {
        post: {
          summary: "Cancel a queued or running sync",
          parameters: [idParameter, { ...idParameter, name: "logId" }],
          responses: { 202: ok("Cancelling"), 404: errorResponse, 409: errorResponse },
        },
      },
      "/api/data-sources/{id}/sync-settings": {
        get: {
          summary: "Schedule (cron), time zone, streams and mode",
          parameters: [idParameter],
          responses: { 200: ok("Sync settings with the next run") },
        },
        put: {
          summary: "Change the schedule, streams or mode",
          parameters: [idParameter],
          requestBody: body("SyncSettings"),
          responses: { 200: ok("Sync settings"), 400: errorResponse },
        },
      },
      "/api/test-demo": {
        post: {
          summary: "Test the demo database: {success, message, connectionTime, serverInfo}",
          responses: { 200: ok("The result"), 409: errorResponse, 429: errorResponse },
        },
      },
      "/api/files": {
        get: { summary: "Files in FILES_DIR (for CSV sources)", responses: { 200: ok("Files") } },
        post: {
          summary: "Upload a CSV file (multipart field `file`): {path, ...}",
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  properties: { file: { type: "string", format: "binary" } },
                },
              },
            },
          },
          responses: { 201: ok("The stored file"), 400: errorResponse, 413: errorResponse },
        },
      },
      "/api/audit-logs": {
        get: {
          summary: "Audit trail (ADMIN)",
          parameters: queryParameters(auditQuerySchema),
          responses: { 200: ok("Audit rows, newest first") },
        },
      },
      "/api/openapi.json": {
        get: { summary: "This document", responses: { 200: ok("OpenAPI 3.1") } },
      },
      "/api/health": {
        get: {
          summary: "Liveness and app database status",
          security: [],
          responses: { 200: ok("Healthy"), 503: ok("App database unavailable") },
        },
      },
    },
  };
  return cached;
}
