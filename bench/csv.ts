/**
 * `deno task bench:csv`: reads a 1,000,000-row, 10-column CSV file through the CSV
 * connector's read() and through a bare csv-parse stream loop over the same file (same
 * parser options, records as objects), in the same run. Target: the connector within 1.25
 * times the bare loop's time, with a peak memory under 150 MB.
 *
 * Each side runs in its own child process, so one side's garbage and JIT state cannot tilt
 * the other, and the child reports its own peak resident set size (VmHWM from
 * /proc/self/status) at the end. Each round runs both sides back to back, in alternating
 * order; the median of the rounds' ratios of CPU time (user + system, every thread, from
 * process.cpuUsage) is compared with the target. CPU time, not wall time, because the
 * machine is shared: another process's load stretches wall time by whatever the scheduler
 * does, while the work a side does stays its own. Wall-time ratios are printed too.
 *
 * The connector reads in batches of 5,000 rows, the sync engine's default; batches of 1,000
 * and 10,000 are measured once more and printed for information. A batch's rows are alive
 * together, and that steady survival makes V8 grow its young generation towards its maximum
 * (some 50 MB more than a loop that drops each record at once, whatever the batch size);
 * `--v8-flags=--max-semi-space-size=4` on the app would bound that.
 */
import { createReadStream } from "node:fs";
import process from "node:process";
import { parse } from "csv-parse";
import { csvFile } from "../connectors/csv_file.ts";
import type { ConnectorContext } from "../connectors/types.ts";

const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 1_000_000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);
/** The batch size measured against the target: the sync engine's default (sync/run.ts). */
const BATCH_SIZE = 5_000;
/** Measured once each, for information. */
const OTHER_BATCH_SIZES = { "connector-1k": 1_000, "connector-10k": 10_000 } as const;
const TARGET_RATIO = 1.25;
const MEMORY_LIMIT_MB = 150;
const FILE_NAME = "bench.csv";

type Side = "bare" | "connector" | keyof typeof OTHER_BATCH_SIZES;
type Measurement = {
  side: Side;
  /** Wall-clock time. */
  ms: number;
  /** CPU time of the process (user + system, all threads). */
  cpuMs: number;
  rows: number;
  peakMb: number;
};

/** Peak resident set size of this process so far, in MB (Linux). */
async function peakRssMb(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

async function writeFixture(path: string) {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const writer = file.writable.getWriter();
  const encoder = new TextEncoder();
  await writer.write(
    encoder.encode("id,name,email,city,country,amount,quantity,active,created,note\n"),
  );
  const lines: string[] = [];
  for (let i = 1; i <= ROWS; i++) {
    lines.push(
      `${i},Customer ${i},customer${i}@example.com,City ${i % 500},` +
        `${["DE", "FR", "US", "BR", "JP"][i % 5]},${(i % 100_000) / 100},${i % 37},` +
        `${i % 2 === 0},2024-${String((i % 12) + 1).padStart(2, "0")}-` +
        `${String((i % 28) + 1).padStart(2, "0")},"note ${i}, with a comma"`,
    );
    if (lines.length === 20_000) {
      await writer.write(encoder.encode(lines.join("\n") + "\n"));
      lines.length = 0;
    }
  }
  if (lines.length) await writer.write(encoder.encode(lines.join("\n") + "\n"));
  await writer.close();
}

async function runConnector(filesDir: string, batchSize: number): Promise<number> {
  const ctx: ConnectorContext = {
    network: { allowedHosts: [], allowPrivateNetworks: false },
    pool: { min: 0, max: 1, idleTimeoutMs: 1000, connectionTimeoutMs: 1000 },
    filesDir,
  };
  const config = csvFile.configSchema.parse({ filePath: FILE_NAME });
  let rows = 0;
  for await (
    const batch of csvFile.read(
      { id: "bench", fingerprint: "bench", config, secrets: {} },
      { stream: { name: "bench" }, batchSize },
      ctx,
    )
  ) {
    rows += batch.rows.length;
  }
  return rows;
}

async function runBare(filesDir: string): Promise<number> {
  const parser = createReadStream(`${filesDir}/${FILE_NAME}`)
    .pipe(parse({ columns: true, bom: true, skip_empty_lines: true }));
  let rows = 0;
  for await (const _record of parser) rows++;
  return rows;
}

/** Child mode: measure one side and print it as JSON. */
async function child(side: Side, filesDir: string) {
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const rows = side === "bare"
    ? await runBare(filesDir)
    : await runConnector(filesDir, side === "connector" ? BATCH_SIZE : OTHER_BATCH_SIZES[side]);
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const measurement: Measurement = { side, ms, cpuMs, rows, peakMb: await peakRssMb() };
  console.log(JSON.stringify(measurement));
}

async function measure(side: Side, filesDir: string): Promise<Measurement> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", side, filesDir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${side} child failed`);
  const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  return JSON.parse(text);
}

async function main() {
  const filesDir = await Deno.makeTempDir({ prefix: "dafel-bench-csv-" });
  try {
    console.log(`Writing ${ROWS.toLocaleString("en")} rows x 10 columns...`);
    await writeFixture(`${filesDir}/${FILE_NAME}`);
    const sizeMb = (await Deno.stat(`${filesDir}/${FILE_NAME}`)).size / 1024 / 1024;
    console.log(`File: ${sizeMb.toFixed(1)} MB`);
    const results: Measurement[] = [];
    const ratios: number[] = [];
    const wallRatios: number[] = [];
    const report = (round: number | string, result: Measurement) =>
      console.log(
        `round ${round} ${result.side.padEnd(13)} cpu ${result.cpuMs.toFixed(0).padStart(6)} ms  ` +
          `wall ${result.ms.toFixed(0).padStart(6)} ms  ` +
          `${(ROWS / (result.cpuMs / 1000)).toFixed(0).padStart(8)} rows/cpu-s  ` +
          `peak ${result.peakMb.toFixed(0)} MB`,
      );
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round measures both sides back to back, in alternating order, so a change in
      // the machine's load hits the pair alike; the ratio of each pair is kept.
      const order: Side[] = round % 2 === 1 ? ["bare", "connector"] : ["connector", "bare"];
      const pair: Partial<Record<Side, Measurement>> = {};
      for (const side of order) {
        const result = await measure(side, filesDir);
        if (result.rows !== ROWS) throw new Error(`${side} read ${result.rows} rows`);
        results.push(result);
        pair[side] = result;
        report(round, result);
      }
      ratios.push(pair.connector!.cpuMs / pair.bare!.cpuMs);
      wallRatios.push(pair.connector!.ms / pair.bare!.ms);
    }
    const others: Measurement[] = [];
    for (const side of Object.keys(OTHER_BATCH_SIZES) as (keyof typeof OTHER_BATCH_SIZES)[]) {
      const result = await measure(side, filesDir);
      others.push(result);
      report("-", result);
    }

    const best = (side: Side) =>
      Math.min(...results.filter((r) => r.side === side).map((r) => r.cpuMs));
    const peak = (side: Side) =>
      Math.max(...results.filter((r) => r.side === side).map((r) => r.peakMb));
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const ratio = median(ratios);
    const pass = ratio <= TARGET_RATIO && peak("connector") < MEMORY_LIMIT_MB;
    console.log("");
    console.log(
      `bare csv-parse loop: best ${best("bare").toFixed(0)} cpu-ms, peak ${
        peak("bare").toFixed(0)
      } MB`,
    );
    console.log(
      `connector read(), batches of ${BATCH_SIZE}: best ${best("connector").toFixed(0)} cpu-ms, ` +
        `peak ${peak("connector").toFixed(0)} MB`,
    );
    for (const result of others) {
      const size = OTHER_BATCH_SIZES[result.side as keyof typeof OTHER_BATCH_SIZES];
      console.log(
        `(batches of ${size}, for information: ${result.cpuMs.toFixed(0)} cpu-ms, peak ` +
          `${result.peakMb.toFixed(0)} MB)`,
      );
    }
    console.log(`per-round CPU-time ratios:  ${ratios.map((r) => r.toFixed(3)).join(", ")}`);
    console.log(
      `per-round wall-time ratios: ${wallRatios.map((r) => r.toFixed(3)).join(", ")} ` +
        `(median ${median(wallRatios).toFixed(3)})`,
    );
    console.log(
      `ratio ${ratio.toFixed(3)} (median CPU time; target <= ${TARGET_RATIO}), peak memory ${
        peak("connector").toFixed(0)
      } MB (target < ${MEMORY_LIMIT_MB} MB): ${pass ? "PASS" : "FAIL"}`,
    );
    if (!pass) Deno.exitCode = 1;
  } finally {
    await Deno.remove(filesDir, { recursive: true });
  }
}

const childIndex = Deno.args.indexOf("--child");
if (childIndex >= 0) {
  await child(Deno.args[childIndex + 1] as Side, Deno.args[childIndex + 2]);
} else {
  await main();
}
