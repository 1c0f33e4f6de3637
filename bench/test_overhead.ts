/**
 * What a connection test costs on a warm pool beyond one round trip: the connector's
 * `test` against the driver's own `select 1` on the same pool, interleaved in the same
 * run, for PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306). Prints medians, 90th
 * percentiles and the overhead. Target: under 1 ms of overhead at the median.
 *
 * Run: deno task bench:test [--iterations N]
 */
import type mysql2 from "mysql2/promise";
import type postgresJs from "postgres";
import { closeAllPools, pooled } from "../connectors/_pools.ts";
import { mysql } from "../connectors/mysql.ts";
import { fingerprintOf } from "../connectors/operations.ts";
import { postgres } from "../connectors/postgres.ts";
import type { Connector, ConnectorContext } from "../connectors/types.ts";
import type { DataSourceType } from "../db/schema.ts";

const index = Deno.args.indexOf("--iterations");
const ITERATIONS = index >= 0 ? Number(Deno.args[index + 1]) : 2_000;
const WARM_UP = 200;

const ctx: ConnectorContext = {
  network: { allowedHosts: [], allowPrivateNetworks: false },
  pool: { min: 1, max: 4, idleTimeoutMs: 60_000, connectionTimeoutMs: 10_000 },
  filesDir: "/nonexistent",
};

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function ms(value: number): string {
  return `${value.toFixed(3).padStart(7)} ms`;
}

async function compare(
  options: {
    label: string;
    type: DataSourceType;
    connector: Connector;
    raw: { config: Record<string, unknown>; secrets: Record<string, unknown> };
    /** The driver's own `select 1` on the pool the connector keeps. */
    selectOne: (pool: unknown) => Promise<unknown>;
  },
) {
  const parsed = {
    config: options.connector.configSchema.parse(options.raw.config),
    secrets: options.connector.secretsSchema.parse(options.raw.secrets),
  };
  const settings = { id: `bench-${options.type}`, fingerprint: fingerprintOf(parsed), ...parsed };
  const first = await options.connector.test(settings, ctx);
  if (!first.success) throw new Error(`${options.label}: ${JSON.stringify(first.error)}`);
  // The same pool the test used (created above, so nothing is created here).
  const pool = await pooled(
    { sourceId: settings.id, fingerprint: settings.fingerprint, type: options.type },
    () => Promise.reject(new Error("the connector's pool should exist")),
  );
  const tests: number[] = [];
  const baselines: number[] = [];
  for (let run = 0; run < WARM_UP + ITERATIONS; run++) {
    const started = performance.now();
    const result = await options.connector.test(settings, ctx);
    const tested = performance.now();
    await options.selectOne(pool);
    const done = performance.now();
    if (!result.success) throw new Error(`${options.label}: ${JSON.stringify(result.error)}`);
    if (run >= WARM_UP) {
      tests.push(tested - started);
      baselines.push(done - tested);
    }
  }
  const overhead = percentile(tests, 0.5) - percentile(baselines, 0.5);
  console.log(`\n${options.label}: ${ITERATIONS} warm tests interleaved with select 1`);
  console.log(
    `  connection test   median ${ms(percentile(tests, 0.5))}   p90 ${ms(percentile(tests, 0.9))}`,
  );
  console.log(
    `  driver select 1   median ${ms(percentile(baselines, 0.5))}   p90 ${
      ms(percentile(baselines, 0.9))
    }`,
  );
  console.log(
    `  overhead at the median ${ms(overhead)}  (ratio ${
      (percentile(tests, 0.5) / percentile(baselines, 0.5)).toFixed(2)
    }x); target under 1 ms: ${overhead < 1 ? "met" : "MISSED"}`,
  );
  await options.connector.close?.(settings.id);
}

try {
  await compare({
    label: "PostgreSQL",
    type: "POSTGRESQL",
    connector: postgres as unknown as Connector,
    raw: {
      config: { host: "127.0.0.1", port: 5432, database: "test", username: "postgres" },
      secrets: { password: "unused-under-trust" },
    },
    selectOne: (pool) => (pool as { sql: postgresJs.Sql }).sql`select 1`,
  });
  await compare({
    label: "MariaDB",
    type: "MYSQL",
    connector: mysql as unknown as Connector,
    raw: {
      // The fixture reader of .ci/fixtures.sh; a test needs no database privileges beyond
      // logging in, so it points at a database name it may use.
      config: {
        host: "127.0.0.1",
        port: 3306,
        database: "information_schema",
        username: "dafel_t_pw",
      },
      secrets: { password: "dafel-mysql-fixture" },
    },
    selectOne: (pool) => (pool as { pool: mysql2.Pool }).pool.query("select 1"),
  });
} finally {
  await closeAllPools();
}
