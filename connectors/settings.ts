/**
 * A data source's settings between the API, the database and a connector.
 *
 * Requests carry the seed's top-level fields (host, port, database, username, password, ssl,
 * apiKey) and type-specific ones in `configuration`. Both are matched against the type's
 * two schemas: the config schema (stored in columns and the `configuration` JSON) and the
 * secrets schema (stored encrypted). Header values marked secret move to the secrets.
 */
import type { z } from "zod";
import type { DataSource } from "../db/schema.ts";
import type { ConnectorSpec } from "./types.ts";

export const TOP_LEVEL_FIELDS = [
  "host",
  "port",
  "database",
  "username",
  "password",
  "ssl",
  "apiKey",
] as const;
export type TopLevelField = (typeof TOP_LEVEL_FIELDS)[number];

/** Config fields kept in their own columns (the seed's model); the rest goes to `configuration`. */
const COLUMN_FIELDS = ["host", "port", "database", "username", "ssl"] as const;

export type SettingsIssue = { path: string; message: string };

export type Settings = { config: Record<string, unknown>; secrets: Record<string, unknown> };

export type SettingsInput = {
  configuration?: Record<string, unknown>;
  topLevel: Partial<Record<TopLevelField, unknown>>;
};

type Header = { name: string; value?: string; secret?: boolean };

function keysOf(schema: z.ZodObject): Set<string> {
  return new Set(Object.keys(schema.shape));
}

/**
 * Validates new settings, or changes on top of stored ones (`previous`): a field left out
 * keeps its value, `null` clears it. Returns the parsed settings or issues naming each field
 * as the request spelled it.
 */
export function resolveSettings(
  spec: ConnectorSpec,
  input: SettingsInput,
  previous?: Settings,
): { ok: true; settings: Settings } | { ok: false; issues: SettingsIssue[] } {
  const configKeys = keysOf(spec.configSchema);
  const secretKeys = keysOf(spec.secretsSchema);
  const issues: SettingsIssue[] = [];
  const fromTopLevel = new Set<string>();
  const config: Record<string, unknown> = { ...previous?.config };
  const secrets: Record<string, unknown> = { ...previous?.secrets };

  function assign(key: string, value: unknown, path: string) {
    if (configKeys.has(key)) {
      if (value === null) delete config[key];
      else config[key] = value;
    } else if (secretKeys.has(key) && key !== "headers") {
      if (value === null) delete secrets[key];
      else secrets[key] = value;
    } else if (value !== null) {
      issues.push({ path, message: `Not a setting of ${spec.label} sources` });
    }
  }

  for (const [key, value] of Object.entries(input.configuration ?? {})) {
    if (value !== undefined) assign(key, value, `configuration.${key}`);
  }
  for (const [key, value] of Object.entries(input.topLevel)) {
    if (value === undefined) continue;
    fromTopLevel.add(key);
    assign(key, value, key);
  }

  if ("headers" in (input.configuration ?? {}) && secretKeys.has("headers")) {
    const moved = moveSecretHeaders(
      config.headers,
      (previous?.secrets.headers ?? {}) as Record<string, string>,
    );
    issues.push(...moved.issues);
    config.headers = moved.headers;
    if (Object.keys(moved.secretValues).length) secrets.headers = moved.secretValues;
    else delete secrets.headers;
  }
  if (issues.length) return { ok: false, issues };

  const pathFor = (key: string) =>
    fromTopLevel.has(key) || (TOP_LEVEL_FIELDS as readonly string[]).includes(key)
      ? key
      : `configuration.${key}`;
  const prefixed = (list: readonly { path: readonly PropertyKey[]; message: string }[]) =>
    list.map((issue) => {
      const [head, ...rest] = issue.path.map(String);
      const path = head === undefined ? "configuration" : [pathFor(head), ...rest].join(".");
      return { path, message: issue.message };
    });

  const parsedConfig = spec.configSchema.safeParse(config);
  const parsedSecrets = spec.secretsSchema.safeParse(secrets);
  if (!parsedConfig.success) issues.push(...prefixed(parsedConfig.error.issues));
  if (!parsedSecrets.success) issues.push(...prefixed(parsedSecrets.error.issues));
  if (!parsedConfig.success || !parsedSecrets.success) return { ok: false, issues };

  const checked = spec.check?.(parsedConfig.data, parsedSecrets.data) ?? [];
  if (checked.length) {
    return {
      ok: false,
      issues: checked.map((issue) => {
        const [head, ...rest] = issue.path.split(".");
        return { path: [pathFor(head), ...rest].join("."), message: issue.message };
      }),
    };
  }
  return { ok: true, settings: { config: parsedConfig.data, secrets: parsedSecrets.data } };
}

/**
 * Header values marked secret leave the config for the secrets. A secret header sent
 * without a value keeps the value stored under its name.
 */
function moveSecretHeaders(
  value: unknown,
  stored: Record<string, string>,
): { headers: unknown; secretValues: Record<string, string>; issues: SettingsIssue[] } {
  if (!Array.isArray(value)) return { headers: value, secretValues: {}, issues: [] };
  const secretValues: Record<string, string> = {};
  const issues: SettingsIssue[] = [];
  const headers = value.map((entry: unknown, index) => {
    if (typeof entry !== "object" || entry === null) return entry;
    const header = entry as Header;
    if (header.secret !== true || typeof header.name !== "string") return entry;
    const { value: secretValue, ...rest } = header;
    if (typeof secretValue === "string" && secretValue !== "") {
      secretValues[header.name] = secretValue;
    } else if (stored[header.name] !== undefined) {
      secretValues[header.name] = stored[header.name];
    } else {
      issues.push({
        path: `configuration.headers.${index}.value`,
        message: "A secret header needs a value",
      });
    }
    return rest;
  });
  return { headers, secretValues, issues };
}

/** Splits parsed config into the seed's columns and the `configuration` JSON. */
export function configToColumns(config: Record<string, unknown>) {
  const configuration: Record<string, unknown> = { ...config };
  for (const field of COLUMN_FIELDS) delete configuration[field];
  return {
    host: typeof config.host === "string" ? config.host : null,
    port: typeof config.port === "number" ? config.port : null,
    database: typeof config.database === "string" ? config.database : null,
    username: typeof config.username === "string" ? config.username : null,
    ssl: config.ssl === true,
    configuration,
  };
}

/** The config a connector gets back from a stored row (columns folded into it). */
export function rowToConfig(
  spec: ConnectorSpec,
  row: Pick<DataSource, "configuration" | (typeof COLUMN_FIELDS)[number]>,
): Record<string, unknown> {
  const keys = keysOf(spec.configSchema);
  const config: Record<string, unknown> = { ...row.configuration };
  for (const field of COLUMN_FIELDS) {
    const value = row[field];
    if (keys.has(field) && value !== null && value !== undefined) config[field] = value;
  }
  return config;
}

/** True when two settings would connect differently (a changed setting or secret). */
export function settingsDiffer(a: Settings, b: Settings): boolean {
  return JSON.stringify(sorted(a)) !== JSON.stringify(sorted(b));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y))
        .map(([key, inner]) => [key, sorted(inner)]),
    );
  }
  return value;
}
