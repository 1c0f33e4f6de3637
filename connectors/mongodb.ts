/** MongoDB, through the official driver. */
import { z } from "zod";
import { databaseField, portField, sslField } from "./_fields.ts";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  host: z.string().trim().min(1).max(255).optional().meta({
    title: "Host",
    description: "Leave empty when you give a connection string",
    placeholder: "mongo.example.com",
  }),
  port: portField(27017),
  database: databaseField(),
  username: z.string().trim().max(255).optional().meta({ title: "Username" }),
  ssl: sslField(),
  replicaSet: z.string().trim().max(255).optional().meta({ title: "Replica set" }),
  authSource: z.string().trim().max(255).optional().meta({
    title: "Authentication database",
    description: "Where the user is defined; admin by default",
  }),
});

const secretsSchema = z.strictObject({
  password: z.string().max(1024).optional().meta({ title: "Password" }),
  uri: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, "Must start with mongodb:// or mongodb+srv://")
    .max(4096)
    .optional()
    .meta({
      title: "Connection string",
      description: "Instead of host and port; stored encrypted because it may hold a password",
      placeholder: "mongodb://user:pass@host:27017/db",
    }),
});

export const mongodb = {
  type: "MONGODB",
  label: "MongoDB",
  description: "MongoDB 4.4 or newer, replica sets and Atlas",
  configSchema,
  secretsSchema,
  check(config, secrets) {
    if (!config.host && !secrets.uri) {
      return [{ path: "host", message: "Give a host or a connection string" }];
    }
    if (config.username && !secrets.password && !secrets.uri) {
      return [{ path: "password", message: "Password is required with a username" }];
    }
    return [];
  },
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
