/**
 * The one place that reads the environment. Parsed once with zod at start;
 * everything else receives a typed `Config`.
 */
import { z } from "zod";

const booleanFlag = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");

const commaList = z
  .string()
  .transform((value) => value.split(",").map((item) => item.trim()).filter(Boolean));

const emptyToUndefined = (value: unknown) => (value === "" ? undefined : value);

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default("127.0.0.1"),
  DATABASE_URL: z.preprocess(emptyToUndefined, z.string().optional()),
  ENCRYPTION_MASTER_KEY: z.preprocess(emptyToUndefined, z.string().optional()),
  ENCRYPTION_PREVIOUS_KEYS: z.preprocess(emptyToUndefined, z.string().optional()),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warning", "error", "fatal"]).default("info"),
  METRICS_PORT: z.preprocess(
    emptyToUndefined,
    z.coerce.number().int().min(1).max(65535).optional(),
  ),
  MIN_POOL_SIZE: z.coerce.number().int().min(0).default(2),
  MAX_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  CONNECTION_TIMEOUT_MS: z.coerce.number().int().min(100).default(30000),
  IDLE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30000),
  DATA_DIR: z.string().default("./data"),
  DEMO_DB_PORT: z.coerce.number().int().min(0).max(65535).default(5433),
  DEMO_DATABASE_URL: z.preprocess(emptyToUndefined, z.string().optional()),
  DEMO_DB: z.preprocess(emptyToUndefined, booleanFlag.default(true)),
  FILES_DIR: z.preprocess(emptyToUndefined, z.string().optional()),
  ALLOWED_HOSTS: z.preprocess(emptyToUndefined, commaList.default([])),
  ALLOW_PRIVATE_NETWORKS: z.preprocess(emptyToUndefined, booleanFlag.default(false)),
  SESSION_TTL_HOURS: z.coerce.number().positive().default(24 * 7),
  PUBLIC_URL: z.preprocess(emptyToUndefined, z.url().optional()),
  TRUST_PROXY: z.preprocess(emptyToUndefined, booleanFlag.default(false)),
  SECURE_COOKIES: z.preprocess(emptyToUndefined, booleanFlag.optional()),
  DAFEL_ADMIN_EMAIL: z.preprocess(emptyToUndefined, z.email().optional()),
  DAFEL_ADMIN_PASSWORD: z.preprocess(emptyToUndefined, z.string().min(8).optional()),
  JOBS: z.preprocess(emptyToUndefined, booleanFlag.default(true)),
  LOGIN_ATTEMPTS_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  CONNECTION_TESTS_PER_MINUTE: z.coerce.number().int().min(1).default(10),
});

export type Config = {
  port: number;
  host: string;
  /** PostgreSQL URL of the app database; undefined means embedded PGlite under dataDir. */
  databaseUrl?: string;
  masterKey?: string;
  previousKeys?: string;
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  metricsPort?: number;
  pool: { min: number; max: number; idleTimeoutMs: number; connectionTimeoutMs: number };
  dataDir: string;
  /** Where the embedded app database lives (without DATABASE_URL). */
  pgliteDir: string;
  filesDir: string;
  demo: { enabled: boolean; port: number; url?: string; dataDir: string };
  network: { allowedHosts: string[]; allowPrivateNetworks: boolean };
  sessionTtlHours: number;
  /** The URL users reach the app at, when a proxy sits in front (for the CSRF origin check). */
  publicUrl?: string;
  /** Take the client address from X-Forwarded-For (only behind a proxy you control). */
  trustProxy: boolean;
  /** Force the Secure cookie flag on or off; undefined means "when the request came over https". */
  secureCookies?: boolean;
  admin?: { email: string; password: string };
  /** Run the background job loop (health checks, syncs). */
  jobs: boolean;
  /** Per IP+email, and per user: counted in the database, so shared by every instance. */
  rateLimits: { loginPerMinute: number; connectionTestsPerMinute: number };
};

/** Parses an environment map; throws a readable error naming each bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`Invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  const e = parsed.data;
  const dataDir = e.DATA_DIR.replace(/\/+$/, "") || ".";
  if (e.MIN_POOL_SIZE > e.MAX_POOL_SIZE) {
    throw new Error("Invalid configuration: MIN_POOL_SIZE is larger than MAX_POOL_SIZE");
  }
  if ((e.DAFEL_ADMIN_EMAIL === undefined) !== (e.DAFEL_ADMIN_PASSWORD === undefined)) {
    throw new Error(
      "Invalid configuration: set both DAFEL_ADMIN_EMAIL and DAFEL_ADMIN_PASSWORD, or neither",
    );
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    masterKey: e.ENCRYPTION_MASTER_KEY,
    previousKeys: e.ENCRYPTION_PREVIOUS_KEYS,
    logLevel: e.LOG_LEVEL,
    metricsPort: e.METRICS_PORT,
    pool: {
      min: e.MIN_POOL_SIZE,
      max: e.MAX_POOL_SIZE,
      idleTimeoutMs: e.IDLE_TIMEOUT_MS,
      connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS,
    },
    dataDir,
    pgliteDir: `${dataDir}/pgdata`,
    filesDir: e.FILES_DIR ?? `${dataDir}/files`,
    demo: {
      enabled: e.DEMO_DB,
      port: e.DEMO_DB_PORT,
      url: e.DEMO_DATABASE_URL,
      dataDir: `${dataDir}/demo`,
    },
    network: {
      allowedHosts: e.ALLOWED_HOSTS.map((host) => host.toLowerCase()),
      allowPrivateNetworks: e.ALLOW_PRIVATE_NETWORKS,
    },
    sessionTtlHours: e.SESSION_TTL_HOURS,
    publicUrl: e.PUBLIC_URL,
    trustProxy: e.TRUST_PROXY,
    secureCookies: e.SECURE_COOKIES,
    admin: e.DAFEL_ADMIN_EMAIL && e.DAFEL_ADMIN_PASSWORD
      ? { email: e.DAFEL_ADMIN_EMAIL, password: e.DAFEL_ADMIN_PASSWORD }
      : undefined,
    jobs: e.JOBS,
    rateLimits: {
      loginPerMinute: e.LOGIN_ATTEMPTS_PER_MINUTE,
      connectionTestsPerMinute: e.CONNECTION_TESTS_PER_MINUTE,
    },
  };
}

/** Config from the process environment. Call once, at start. */
export function loadConfig(): Config {
  return parseConfig(Deno.env.toObject());
}
