/**
 * The whole-suite secret scan. While tests run, every secret value a test sends to the app
 * is recorded, and so is everything the app wrote: response bodies and headers, pages,
 * log lines and the rows of its database. After the suite the summary reporter scans all
 * of it for every secret: the expected number of hits is zero.
 *
 * Files go to DAFEL_SECRET_SCAN_DIR (set once by vitest.config.ts for the whole run); when
 * it is unset (a test run outside vitest) recording is a no-op.
 */
import { appendFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { type Db, queryRows } from "../../db/mod.ts";

export type OutputKind = "response" | "page" | "log" | "database";

/** Secret-bearing keys of request bodies (data-source settings, logins, users, passwords). */
const SECRET_KEYS = new Set([
  "password",
  "currentPassword",
  "newPassword",
  "confirmPassword",
  "apiKey",
  "secretKey",
  "credentials",
  "uri",
  "private_key",
  "privateKey",
  "token",
]);

function scanDir(): string | undefined {
  return Deno.env.get("DAFEL_SECRET_SCAN_DIR");
}

function append(name: string, text: string): void {
  const dir = scanDir();
  if (!dir || !existsSync(dir)) return;
  appendFileSync(`${dir}/${name}-${Deno.pid}.txt`, text + "\n\u0000\n");
}

/** Registers secret values a test used (short values are ignored: they match by chance). */
export function recordSecrets(values: Iterable<string>): void {
  const kept = [...values].filter((value) => value.length >= 8);
  if (kept.length) append("secrets", kept.map((value) => JSON.stringify(value)).join("\n"));
}

/** Records something the app produced. */
export function recordOutput(kind: OutputKind, text: string): void {
  if (text) append(kind, text);
}

/** The secret values inside a request body: settings, passwords, secret headers, key JSON. */
export function secretsInRequest(body: unknown): string[] {
  const found: string[] = [];
  const plain = new Set<string>();
  function walk(value: unknown, key?: string) {
    if (typeof value === "string") {
      if (!key || !SECRET_KEYS.has(key)) plain.add(value);
      if (key && SECRET_KEYS.has(key)) {
        found.push(value);
        if (key === "credentials") {
          try {
            walk(JSON.parse(value));
          } catch { /* not JSON: the whole string is the secret */ }
        }
      }
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
      return;
    }
    if (value && typeof value === "object") {
      const record = value as Record<string, unknown>;
      // A header marked secret: its value is the secret.
      if (record.secret === true && typeof record.value === "string") found.push(record.value);
      for (const [inner, innerValue] of Object.entries(record)) walk(innerValue, inner);
    }
  }
  walk(body);
  // A secret equal to a visible value of the same request (the demo's "postgres" password
  // for the "postgres" user) cannot be told apart from it anywhere: not a leak to look for.
  return found.filter((secret) => !plain.has(secret));
}

export type ScanResult = {
  secrets: number;
  bytes: Record<OutputKind, number>;
  hits: { secret: string; kind: OutputKind; context: string }[];
};

function appSourceText(): string {
  const root = new URL("../../", import.meta.url).pathname;
  const texts: string[] = [];
  function walk(dir: string) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== "vendor") walk(path);
      } else if (/\.(ts|tsx|js|css)$/.test(entry.name)) {
        texts.push(readFileSync(path, "utf8"));
      }
    }
  }
  for (const dir of ["views", "routes", "static", "connectors"]) walk(`${root}${dir}`);
  return texts.join("\n");
}

function mask(secret: string): string {
  return `${secret.slice(0, 3)}…(${secret.length} chars)`;
}

/** Scans everything recorded under `dir` for every recorded secret. */
export function scanForSecrets(dir: string): ScanResult {
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const secrets = new Set<string>();
  for (const file of files.filter((name) => name.startsWith("secrets-"))) {
    for (const line of readFileSync(`${dir}/${file}`, "utf8").split("\n")) {
      if (line.startsWith('"')) secrets.add(JSON.parse(line));
    }
  }
  // A "secret" that is also a word of the app's own markup or code (a test password such
  // as "user-password" next to id="new-user-password") would match where nothing leaked.
  const source = appSourceText();
  for (const secret of secrets) if (source.includes(secret)) secrets.delete(secret);
  const result: ScanResult = {
    secrets: secrets.size,
    bytes: { response: 0, page: 0, log: 0, database: 0 },
    hits: [],
  };
  for (const kind of ["response", "page", "log", "database"] as const) {
    for (const file of files.filter((name) => name.startsWith(`${kind}-`))) {
      const text = readFileSync(`${dir}/${file}`, "utf8");
      result.bytes[kind] += text.length;
      for (const secret of secrets) {
        const at = text.indexOf(secret);
        if (at !== -1) {
          const context = text.slice(Math.max(0, at - 60), at).replace(/\s+/g, " ");
          result.hits.push({ secret: mask(secret), kind, context: `${context}[SECRET]` });
        }
      }
    }
  }
  return result;
}

/** Records every row of the app database's tables (synced tables: their first rows). */
export async function recordDatabase(db: Db): Promise<void> {
  if (!scanDir()) return;
  const tables = await queryRows<{ schema: string; name: string }>(
    db,
    sql`select table_schema as schema, table_name as name from information_schema.tables
        where table_schema not in ('pg_catalog', 'information_schema')
          and table_schema not like 'pg_toast%' and table_type = 'BASE TABLE'`,
  );
  const dump: string[] = [];
  for (const table of tables) {
    const limit = table.schema.startsWith("ds_") ? " limit 1000" : "";
    const quoted = `"${table.schema.replaceAll('"', '""')}"."${table.name.replaceAll('"', '""')}"`;
    const rows = await queryRows(db, sql.raw(`select * from ${quoted}${limit}`));
    dump.push(
      `${quoted}\n${JSON.stringify(rows, (_k, v) => typeof v === "bigint" ? String(v) : v)}`,
    );
  }
  recordOutput("database", dump.join("\n"));
}

/**
 * The secret values in a submitted HTML form (field names are the API's paths, such as
 * `password` or `configuration.secretKey`; a header row's value counts when its row is
 * marked secret).
 */
export function secretsInForm(fields: Iterable<[string, string]>): string[] {
  const map = new Map(fields);
  const found: string[] = [];
  for (const [name, value] of map) {
    const last = name.split(".").pop()!;
    if (SECRET_KEYS.has(last)) found.push(value);
    const header = /^(.*headers\.\d+)\.value$/.exec(name);
    if (header && map.has(`${header[1]}.secret`)) found.push(value);
  }
  const plain = new Set(
    [...map].filter(([name]) => !SECRET_KEYS.has(name.split(".").pop()!)).map(([, v]) => v),
  );
  return found.filter((secret) => !plain.has(secret));
}
