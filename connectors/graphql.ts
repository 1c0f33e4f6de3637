/** GraphQL APIs. */
import { z } from "zod";
import { headersField, httpUrlField, secretHeadersField, timeoutField } from "./_fields.ts";
import { checkHttpAuth, httpAuthSchema } from "./rest_api.ts";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  endpoint: httpUrlField("Endpoint", "https://api.example.com/graphql"),
  auth: httpAuthSchema,
  headers: headersField(),
  query: z.string().max(100_000).optional().meta({
    title: "Query",
    description: "Leave empty to read the streams found by introspection",
  }),
  recordsPath: z.string().trim().max(500).optional().meta({
    title: "Records path",
    description: "Dot path to the records in the query's data, such as data.users.nodes",
  }),
  timeoutMs: timeoutField("Timeout"),
});

const secretsSchema = z.strictObject({
  apiKey: z.string().max(8192).optional().meta({ title: "API key or token" }),
  password: z.string().max(1024).optional().meta({ title: "Basic auth password" }),
  headers: secretHeadersField(),
});

export const graphql = {
  type: "GRAPHQL",
  label: "GraphQL API",
  description: "Any GraphQL endpoint; streams found by introspection",
  configSchema,
  secretsSchema,
  check: checkHttpAuth,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
