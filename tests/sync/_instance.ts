/**
 * An app instance for the sync tests that need real processes: it opens the PostgreSQL at
 * argv[0] with the key in DAFEL_TEST_MASTER_KEY, settles interrupted work as main.ts does,
 * and runs the sync engine with short leases (so a killed instance's jobs come back
 * quickly). Prints one JSON line with its instance id once it runs; stops on SIGTERM.
 *
 *   deno run -A tests/sync/_instance.ts <database url> [--tick-ms N] [--health-ms N]
 */
import { configureLogging } from "../../telemetry.ts";
import { recoverInterruptedWork, startSyncEngine } from "../../sync/mod.ts";
import { openAppDeps } from "../helpers/sync.ts";

const [url, ...rest] = Deno.args;
function flag(name: string, fallback: number): number {
  const index = rest.indexOf(name);
  return index >= 0 ? Number(rest[index + 1]) : fallback;
}

await configureLogging({ level: "warning", write: (line) => console.error(line.trimEnd()) });
const deps = await openAppDeps(url, Deno.env.get("DAFEL_TEST_MASTER_KEY")!);
await recoverInterruptedWork(deps.database);
const tickMs = flag("--tick-ms", 0);
const engine = startSyncEngine(deps, {
  leaseMs: flag("--lease-ms", 1_500),
  heartbeatMs: 300,
  pollMs: 100,
  tickMs,
  healthIntervalMs: flag("--health-ms", 30_000),
  tuning: { batchSize: 2_000, progressMs: 0 },
});
console.log(JSON.stringify({ instanceId: engine.runner.instanceId, pid: Deno.pid }));

Deno.addSignalListener("SIGTERM", async () => {
  await engine.stop();
  await deps.database.close();
  Deno.exit(0);
});
