/**
 * Schema discovery on thousands of tables, against the servers' own schema dumps in the
 * same run: 5,000 tables in a scratch PostgreSQL database (timed against
 * `pg_dump --schema-only`) and 2,000 in a scratch MariaDB database (against
 * `mysqldump --no-data`). Each table has 10 columns, a primary key, a foreign key and a
 * unique column, and one row. Prints times and ratios; the scratch databases are dropped.
 *
 * Run: deno task bench:discovery [--pg-tables N] [--mysql-tables N]
 */
import mysql2 from "mysql2/promise";
import postgresJs from "postgres";
import { closeAllPools } from "../connectors/_pools.ts";
import { mysql } from "../connectors/mysql.ts";
import { fingerprintOf } from "../connectors/operations.ts";
import { postgres } from "../connectors/postgres.ts";
import type { Connector, ConnectorContext } from "../connectors/types.ts";

const PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test";
const RUNS = 3;

function option(name: string, fallback: number): number {
  const index = Deno.args.indexOf(name);
  return index >= 0 ? Number(Deno.args[index + 1]) : fallback;
}

const pgTables = option("--pg-tables", 5_000);
const mysqlTables = option("--mysql-tables", 2_000);

const ctx: ConnectorContext = {
  network: { allowedHosts: [], allowPrivateNetworks: false },
  pool: { min: 1, max: 4, idleTimeoutMs: 30_000, connectionTimeoutMs: 10_000 },
  filesDir: "/nonexistent",
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function ms(value: number): string {
  return `${value.toFixed(0).padStart(6)} ms`;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

async function command(name: string, args: string[]): Promise<void> {
  const result = await new Deno.Command(name, { args, stdout: "null", stderr: "piped" }).output();
  if (!result.success) {
    throw new Error(`${name} failed: ${new TextDecoder().decode(result.stderr)}`);
  }
}

let sourceCounter = 0;
async function discoverOnce(
  connector: Connector,
  raw: { config: Record<string, unknown>; secrets: Record<string, unknown> },
  sourceId: string,
): Promise<number> {
  const parsed = {
    config: connector.configSchema.parse(raw.config),
    secrets: connector.secretsSchema.parse(raw.secrets),
  };
  const settings = { id: sourceId, fingerprint: fingerprintOf(parsed), ...parsed };
  let streams = 0;
  const time = await timed(async () => {
    const result = await connector.discover(settings, ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    streams = result.value.streams.length;
  });
  return streams > 0 ? time : NaN;
}

/** Our discovery, cold (a new pool: connections included) and warm, against a dump tool. */
async function compare(
  options: {
    label: string;
    connector: Connector;
    settings: { config: Record<string, unknown>; secrets: Record<string, unknown> };
    tables: number;
    dump: () => Promise<void>;
    dumpLabel: string;
    targetMs: number;
    mustBeatDump: boolean;
  },
) {
  const coldId = `bench-cold-${++sourceCounter}`;
  const cold = await discoverOnce(options.connector, options.settings, coldId);
  const warmRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    warmRuns.push(await discoverOnce(options.connector, options.settings, coldId));
  }
  await options.connector.close?.(coldId);
  const dumpRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) dumpRuns.push(await timed(options.dump));
  const warm = median(warmRuns);
  const dump = median(dumpRuns);
  const met = cold < options.targetMs && (!options.mustBeatDump || cold < dump);
  console.log(`\n${options.label}: ${options.tables} tables (10 columns, PK, FK, unique, 1 row)`);
  console.log(`  our discovery, cold pool          ${ms(cold)}`);
  console.log(`  our discovery, warm (median of ${RUNS})  ${ms(warm)}`);
  console.log(`  ${options.dumpLabel.padEnd(33)}${ms(dump)}  (median of ${RUNS})`);
  console.log(
    `  ${options.dumpLabel} / ours: cold ${(dump / cold).toFixed(2)}x, warm ${
      (dump / warm).toFixed(2)
    }x`,
  );
  console.log(
    `  target: under ${options.targetMs} ms${
      options.mustBeatDump ? ` and faster than ${options.dumpLabel.split(" ")[0]}` : ""
    }, cold: ${met ? "met" : "MISSED"}`,
  );
}

function pgTableDdl(n: number): string {
  const name = `t${String(n).padStart(5, "0")}`;
  const parent = `t${String(Math.max(0, n - 1)).padStart(5, "0")}`;
  return `create table ${name} (id int primary key, parent_id int references ${parent} (id),
    code text unique, c1 int, c2 text, c3 timestamptz, c4 numeric(12, 2), c5 boolean,
    c6 jsonb, c7 text);
  insert into ${name} values (1, 1, 'code', 1, 'two', now(), 3.5, true, '{}', 'seven');`;
}

function mysqlTableDdl(n: number): string {
  const name = `t${String(n).padStart(5, "0")}`;
  const parent = `t${String(Math.max(0, n - 1)).padStart(5, "0")}`;
  return `create table ${name} (id int primary key, parent_id int, code varchar(40) unique,
    c1 int, c2 varchar(40), c3 datetime, c4 decimal(12, 2), c5 tinyint(1), c6 text, c7 text,
    foreign key (parent_id) references ${parent} (id));
  insert into ${name} values (1, 1, 'code', 1, 'two', now(), 3.5, 1, '{}', 'seven');`;
}

async function benchPostgres(suffix: string) {
  const database = `dafel_bench_${suffix}`;
  const admin = postgresJs(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${database}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  const bench = postgresJs(url.href, { max: 1, onnotice: () => {} });
  try {
    const started = performance.now();
    for (let from = 0; from < pgTables; from += 250) {
      const batch = [];
      for (let n = from; n < Math.min(pgTables, from + 250); n++) batch.push(pgTableDdl(n));
      await bench.unsafe(batch.join("\n")).simple();
    }
    await bench.unsafe("analyze");
    console.log(
      `PostgreSQL: created ${pgTables} tables in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    await compare({
      label: "PostgreSQL 15",
      connector: postgres as unknown as Connector,
      settings: {
        config: { host: "127.0.0.1", port: 5432, database, username: "postgres" },
        secrets: { password: "unused-under-trust" },
      },
      tables: pgTables,
      dump: () =>
        command("pg_dump", ["--schema-only", "-h", "127.0.0.1", "-U", "postgres", "-d", database]),
      dumpLabel: "pg_dump --schema-only",
      targetMs: 2_000,
      mustBeatDump: true,
    });
  } finally {
    await bench.end();
    await admin.unsafe(`drop database if exists ${database} with (force)`);
    await admin.end();
  }
}

async function benchMysql(suffix: string) {
  const database = `dafel_bench_${suffix}`;
  const root = await mysql2.createConnection({
    host: "127.0.0.1",
    user: "root",
    multipleStatements: true,
  });
  // A reader of its own for the run (the connector needs a password; root has none here).
  const reader = { user: `dafel_bench_${suffix}`, password: crypto.randomUUID() };
  await root.query(`create database ${database}`);
  try {
    await root.query(
      `create user '${reader.user}'@'%' identified by '${reader.password}';
      grant select, show view on ${database}.* to '${reader.user}'@'%'`,
    );
    await root.query(`use ${database}`);
    const started = performance.now();
    for (let from = 0; from < mysqlTables; from += 100) {
      const batch = [];
      for (let n = from; n < Math.min(mysqlTables, from + 100); n++) batch.push(mysqlTableDdl(n));
      await root.query(batch.join("\n"));
    }
    console.log(
      `MariaDB: created ${mysqlTables} tables in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    await compare({
      label: "MariaDB 10.11",
      connector: mysql as unknown as Connector,
      settings: {
        config: { host: "127.0.0.1", port: 3306, database, username: reader.user },
        secrets: { password: reader.password },
      },
      tables: mysqlTables,
      dump: () => command("mysqldump", ["--no-data", "-h", "127.0.0.1", "-u", "root", database]),
      dumpLabel: "mysqldump --no-data",
      targetMs: 3_000,
      mustBeatDump: false,
    });
  } finally {
    await root.query(
      `drop database if exists ${database}; drop user if exists '${reader.user}'@'%'`,
    );
    await root.end();
  }
}

const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
try {
  await benchPostgres(suffix);
  await benchMysql(suffix);
} finally {
  await closeAllPools();
}
