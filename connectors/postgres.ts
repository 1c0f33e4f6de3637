/** PostgreSQL, through postgres.js. */
import { z } from "zod";
import {
  databaseField,
  hostField,
  passwordField,
  portField,
  sslField,
  timeoutField,
  usernameField,
} from "./_fields.ts";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  host: hostField(),
  port: portField(5432),
  database: databaseField(),
  username: usernameField(),
  ssl: sslField(),
  connectionTimeoutMillis: timeoutField("Connection timeout"),
  idleTimeoutMillis: z.coerce.number().int().min(1000).max(3_600_000).optional().meta({
    title: "Idle timeout",
    description: "Milliseconds before an idle pooled connection is closed",
  }),
  poolConfig: z.strictObject({
    min: z.coerce.number().int().min(0).max(100).optional(),
    max: z.coerce.number().int().min(1).max(100).optional(),
  }).optional().meta({ title: "Pool size", description: "Connections kept for this source" }),
});

const secretsSchema = z.strictObject({ password: passwordField() });

export const postgres = {
  type: "POSTGRESQL",
  label: "PostgreSQL",
  description: "PostgreSQL 11 or newer, including hosted services",
  configSchema,
  secretsSchema,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
