/** What every route receives: the app's dependencies, and per-request variables. */
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import type { Config } from "../config.ts";
import type { ConnectorContext } from "../connectors/types.ts";
import type { DemoSettings } from "../db/demo.ts";
import type { AppDatabase, Db } from "../db/mod.ts";
import type { Role } from "../db/schema.ts";
import type { Vault } from "../vault/mod.ts";

export type AppDeps = {
  config: Config;
  database: AppDatabase;
  db: Db;
  vault: Vault;
  connectorContext: ConnectorContext;
  limiters: { login: RateLimiterAbstract; connectionTest: RateLimiterAbstract };
  /** Where "Use Demo Database" points; undefined when the demo is off. */
  demo?: DemoSettings;
  startedAt: number;
};

export type SessionUser = { id: string; email: string; role: Role };

export type Credential =
  | { kind: "session"; sessionId: string }
  | { kind: "token"; tokenId: string };

export type AppEnv = {
  Variables: {
    requestId: string;
    user: SessionUser | null;
    credential: Credential | null;
  };
};
