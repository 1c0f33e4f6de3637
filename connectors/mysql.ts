/** MySQL and MariaDB, through mysql2. */
import { z } from "zod";
import {
  databaseField,
  hostField,
  passwordField,
  portField,
  sslField,
  usernameField,
} from "./_fields.ts";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  host: hostField(),
  port: portField(3306),
  database: databaseField(),
  username: usernameField(),
  ssl: sslField(),
});

const secretsSchema = z.strictObject({ password: passwordField() });

export const mysql = {
  type: "MYSQL",
  label: "MySQL",
  description: "MySQL 5.7+ or MariaDB 10.3+",
  configSchema,
  secretsSchema,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
