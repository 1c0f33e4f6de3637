// deno-lint-ignore-file no-explicit-any
/**
 * A real app for a test file: a fresh database (in-memory PGlite, or a throwaway database
 * on the PostgreSQL at 127.0.0.1:5432 when TEST_DATABASE=postgres), a vault with a random
 * key, every log line captured, and helpers to call it in-process.
 */
import postgres from "postgres";
import { parseConfig } from "../../config.ts";
import { type AppDatabase, openDatabase } from "../../db/mod.ts";
import { closeAllPools } from "../../connectors/_pools.ts";
import { startDemoDatabase } from "../../db/demo.ts";
import { createUser } from "../../db/users.ts";
import { createDeps } from "../../main.ts";
import type { AppDeps } from "../../routes/_env.ts";
import { createApp } from "../../routes/mod.ts";
import { configureLogging } from "../../telemetry.ts";
import { recordDatabase, recordOutput, recordSecrets, secretsInRequest } from "./secret_scan.ts";
import { verifyKeyring } from "../../vault/keys.ts";
import { createVault, generateKeyHex, parseKeyring } from "../../vault/mod.ts";

export const POSTGRES_ADMIN_URL = Deno.env.get("TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

export type Backend = "pglite" | "postgres";

export function backend(): Backend {
  return Deno.env.get("TEST_DATABASE") === "postgres" ? "postgres" : "pglite";
}

/** Every log line written while tests run in this file. */
export const logLines: string[] = [];
/** Log lines already handed to the secret scan. */
let recordedLogLines = 0;
await configureLogging({ level: "debug", write: (line) => logLines.push(line) });

/** A throwaway PostgreSQL database; dropped by the returned function. */
export async function createScratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `dafel_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export async function openTestDatabase(
  kind: Backend = backend(),
): Promise<AppDatabase & { dispose(): Promise<void> }> {
  if (kind === "postgres") {
    const scratch = await createScratchDatabase();
    const database = await openDatabase({ url: scratch.url, max: 5 });
    return {
      ...database,
      async dispose() {
        await database.close();
        await scratch.drop();
      },
    };
  }
  const database = await openDatabase({ dataDir: "memory://" });
  return { ...database, dispose: () => database.close() };
}

export type Call = {
  json?: unknown;
  body?: BodyInit;
  token?: string;
  cookie?: string;
  headers?: Record<string, string>;
};

export type Reply = { status: number; headers: Headers; text: string; body: any };

export type TestApp = {
  deps: AppDeps;
  app: ReturnType<typeof createApp>;
  masterKey: string;
  call(method: string, path: string, options?: Call): Promise<Reply>;
  /** Creates a user directly in the database. */
  user(email: string, password: string, role?: "ADMIN" | "USER"): Promise<{ id: string }>;
  /** Logs in through the API; returns the cookie header value. */
  login(email: string, password: string): Promise<string>;
  /** Creates an API token through the API for a logged-in cookie. */
  token(cookie: string, name?: string): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
};

export async function startTestApp(
  options: {
    env?: Record<string, string>;
    masterKey?: string;
    /** Also run the embedded demo database (in memory, on a free loopback port). */
    demo?: boolean;
  } = {},
): Promise<TestApp> {
  const database = await openTestDatabase();
  const masterKey = options.masterKey ?? generateKeyHex();
  const vault = await createVault(parseKeyring(masterKey));
  await verifyKeyring(database.db, vault);
  const dataDir = await Deno.makeTempDir({ prefix: "dafel-test-" });
  const config = parseConfig({ DATA_DIR: dataDir, JOBS: "false", ...options.env });
  const demo = options.demo
    ? await startDemoDatabase({ dataDir: "memory://", port: 0 })
    : undefined;
  const deps = createDeps({ config, database, vault, demo: demo?.settings });
  const app = createApp(deps);

  async function call(method: string, path: string, call: Call = {}): Promise<Reply> {
    const headers = new Headers(call.headers);
    let body = call.body;
    if (call.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(call.json);
    }
    if (call.token) headers.set("authorization", `Bearer ${call.token}`);
    if (call.cookie) {
      headers.set("cookie", call.cookie);
      // What a browser sends with a same-origin request.
      if (!headers.has("origin")) headers.set("origin", "http://localhost");
    }
    if (call.json !== undefined) recordSecrets(secretsInRequest(call.json));
    const response = await app.request(`http://localhost${path}`, { method, headers, body });
    const text = await response.text();
    recordOutput(
      response.headers.get("content-type")?.includes("html") ? "page" : "response",
      `${response.status} ${
        [...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n")
      }\n${text}`,
    );
    let parsed: unknown = undefined;
    if (response.headers.get("content-type")?.includes("json") && text) parsed = JSON.parse(text);
    return { status: response.status, headers: response.headers, text, body: parsed };
  }

  return {
    deps,
    app,
    masterKey,
    call,
    async user(email, password, role = "USER") {
      const created = await createUser(database.db, { email, password, role });
      if (!created) throw new Error(`user ${email} exists`);
      return { id: created.id };
    },
    async login(email, password) {
      const reply = await call("POST", "/api/auth/login", { json: { email, password } });
      if (reply.status !== 200) throw new Error(`login failed: ${reply.status} ${reply.text}`);
      const cookie = reply.headers.get("set-cookie") ?? "";
      return cookie.split(";")[0];
    },
    async token(cookie, name = "test") {
      const reply = await call("POST", "/api/tokens", { cookie, json: { name } });
      if (reply.status !== 201) throw new Error(`token failed: ${reply.status} ${reply.text}`);
      return reply.body;
    },
    async close() {
      await recordDatabase(database.db);
      recordOutput("log", logLines.slice(recordedLogLines).join("\n"));
      recordedLogLines = logLines.length;
      // Pools the tests opened to data sources, so no socket outlives the file.
      await closeAllPools();
      await demo?.close();
      await database.dispose();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}
