/**
 * The sync side of `deno task bench:sync`, in its own process so its peak memory is its
 * own: a job-running instance on the app database at argv[0] (key in
 * DAFEL_BENCH_MASTER_KEY) runs one full-refresh sync of source argv[1] through the real
 * path (request, job, runner, connector read, COPY loader) and prints one JSON line:
 * records, the run's duration from its sync log, and this process's peak resident set size
 * (VmHWM). It loads what running jobs needs (the engine, every connector), not the web
 * app's routes and pages.
 */
import { eq } from "drizzle-orm";
import { parseConfig } from "../config.ts";
import { openDatabase } from "../db/mod.ts";
import { dataSourceSyncLogs } from "../db/schema.ts";
import { startSyncEngine } from "../sync/mod.ts";
import { requestSync } from "../sync/requests.ts";
import { verifyKeyring } from "../vault/keys.ts";
import { createVault, parseKeyring } from "../vault/mod.ts";

const [url, sourceId] = Deno.args;
const masterKey = Deno.env.get("DAFEL_BENCH_MASTER_KEY")!;

async function peakRssMb(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

const database = await openDatabase({ url, max: 4 });
const vault = await createVault(parseKeyring(masterKey));
await verifyKeyring(database.db, vault);
const config = parseConfig({
  DATA_DIR: await Deno.makeTempDir({ prefix: "dafel-bench-sync-" }),
  DATABASE_URL: url,
  ENCRYPTION_MASTER_KEY: masterKey,
  DEMO_DB: "false",
});
const deps = {
  db: database.db,
  database,
  vault,
  connectorContext: {
    network: config.network,
    pool: config.pool,
    filesDir: config.filesDir,
  },
};
const engine = startSyncEngine(deps, { concurrency: 1, pollMs: 20, tickMs: 0 });
const requested = await requestSync(deps.db, {
  sourceId,
  mode: "full_refresh",
  trigger: "manual",
});
if (!requested.ok) throw new Error(`Sync not queued: ${requested.reason}`);
engine.runner.wake();
let log;
while (true) {
  [log] = await deps.db.select().from(dataSourceSyncLogs)
    .where(eq(dataSourceSyncLogs.id, requested.syncLogId));
  if (log.status !== "QUEUED" && log.status !== "RUNNING") break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
await engine.stop();
console.log(JSON.stringify({
  status: log.status,
  error: log.errorMessage,
  records: log.recordsSync,
  ms: log.duration,
  peakMb: await peakRssMb(),
}));
await database.close();
Deno.exit(0);
