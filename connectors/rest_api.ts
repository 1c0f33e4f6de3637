/** REST APIs that answer JSON, through fetch. */
import { z } from "zod";
import { headersField, httpUrlField, secretHeadersField, timeoutField } from "./_fields.ts";
import type { ConnectorSpec } from "./types.ts";

/** How the API is authenticated; the key, token or password itself is a secret. */
export const httpAuthSchema = z.strictObject({
  type: z.enum(["none", "apiKey", "bearer", "basic"]).default("none").meta({
    title: "Authentication",
  }),
  headerName: z.string().trim().max(200).optional().meta({
    title: "API key header",
    description: "Header that carries the API key (X-API-Key when empty)",
  }),
  queryParam: z.string().trim().max(200).optional().meta({
    title: "API key query parameter",
    description: "Send the API key as this query parameter instead of a header",
  }),
  username: z.string().trim().max(255).optional().meta({ title: "Basic auth username" }),
}).default({ type: "none" }).meta({ title: "Authentication" });

const paginationSchema = z.strictObject({
  type: z.enum(["none", "page", "offset", "cursor", "link"]).default("none").meta({
    title: "Pagination",
    description: "page: ?page=N; offset: ?offset=N&limit=M; cursor: a field of the response; " +
      "link: the Link header's rel=next",
  }),
  pageParam: z.string().trim().max(100).optional().meta({ title: "Page parameter" }),
  sizeParam: z.string().trim().max(100).optional().meta({ title: "Page size parameter" }),
  pageSize: z.coerce.number().int().min(1).max(10_000).optional().meta({ title: "Page size" }),
  cursorPath: z.string().trim().max(500).optional().meta({
    title: "Next cursor path",
    description: "Dot path to the next cursor in the response, such as meta.next_cursor",
  }),
  cursorParam: z.string().trim().max(100).optional().meta({ title: "Cursor parameter" }),
  maxPages: z.coerce.number().int().min(1).max(100_000).default(100).meta({
    title: "Page limit",
    description: "Stop after this many pages",
  }),
}).default({ type: "none", maxPages: 100 }).meta({ title: "Pagination" });

const configSchema = z.strictObject({
  endpoint: httpUrlField("Endpoint", "https://api.example.com/v1/items"),
  method: z.enum(["GET", "POST"]).default("GET").meta({ title: "Method" }),
  body: z.string().max(100_000).optional().meta({ title: "Request body (JSON, for POST)" }),
  auth: httpAuthSchema,
  headers: headersField(),
  recordsPath: z.string().trim().max(500).optional().meta({
    title: "Records path",
    description: "Dot path to the array of records, such as data.items; empty for the root",
  }),
  pagination: paginationSchema,
  timeoutMs: timeoutField("Timeout"),
  maxResponseBytes: z.coerce.number().int().min(1024).max(1_073_741_824).optional().meta({
    title: "Response size limit",
    description: "Bytes per response; 10 MiB by default",
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

export const restApi = {
  type: "REST_API",
  label: "REST API",
  description: "JSON over HTTP, with pagination and authentication",
  configSchema,
  secretsSchema,
  check: checkHttpAuth,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
