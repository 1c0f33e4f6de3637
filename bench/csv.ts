/**
 * `deno task bench:csv`: reads a 1,000,000-row, 10-column CSV file through the CSV
 * connector's read() and through a bare csv-parse stream loop over the same file (same
 * parser options, records as objects), in the same run. Target: the connector within 1.25
 * times the bare loop's time, with a peak memory under 150 MB.
 *
 * Each side runs in its own child process, so one side's garbage and JIT state cannot tilt
 * the other, and the child reports its own peak resident set size (VmHWM from
 * /proc/self/status) at the end. Sides alternate over a few rounds; the best time of each
 * side is compared. The connector reads in batches of 1,000 rows (what a sync asks for);
 * batches of 10,000 are measured too and printed for information: a batch is held whole
 * until its consumer lets go, so bigger batches cost memory, not time.
 */
import { createReadStream } from "node:fs";
import { parse } from "csv-parse";
import { csvFile } from "../connectors/csv_file.ts";
import type { ConnectorContext } from "../connectors/types.ts";

const ROWS = Number(Deno.env.get("BENCH_ROWS") ?? 1_000_000);
const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
/** The batch size a sync reads with; a larger one is measured too, for information. */
const BATCH_SIZE = 1_000;
const LARGE_BATCH_SIZE = 10_000;
const TARGET_RATIO = 1.25;
const MEMORY_LIMIT_MB = 150;
const FILE_NAME = "bench.csv";

type Side = "bare" | "connector" | "connector-10k";
type Measurement = { side: Side; ms: number; rows: number; peakMb: number };

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
  const rows = side === "bare"
    ? await runBare(filesDir)
    : await runConnector(filesDir, side === "connector" ? BATCH_SIZE : LARGE_BATCH_SIZE);
  const ms = performance.now() - started;
  const measurement: Measurement = { side, ms, rows, peakMb: await peakRssMb() };
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
    for (let round = 1; round <= ROUNDS; round++) {
      for (const side of ["bare", "connector", "connector-10k"] as const) {
        const result = await measure(side, filesDir);
        if (result.rows !== ROWS) throw new Error(`${side} read ${result.rows} rows`);
        results.push(result);
        console.log(
          `round ${round} ${side.padEnd(13)} ${result.ms.toFixed(0).padStart(6)} ms  ` +
            `${(ROWS / (result.ms / 1000)).toFixed(0).padStart(8)} rows/s  ` +
            `peak ${result.peakMb.toFixed(0)} MB`,
        );
      }
    }
    const best = (side: Side) =>
      Math.min(...results.filter((r) => r.side === side).map((r) => r.ms));
    const peak = (side: Side) =>
      Math.max(...results.filter((r) => r.side === side).map((r) => r.peakMb));
    const ratio = best("connector") / best("bare");
    const pass = ratio <= TARGET_RATIO && peak("connector") < MEMORY_LIMIT_MB;
    const line = (label: string, side: Side) =>
      console.log(
        `${label.padEnd(34)} ${best(side).toFixed(0).padStart(6)} ms  peak ${
          peak(side).toFixed(0)
        } MB`,
      );
    console.log("");
    line("bare csv-parse loop", "bare");
    line(`connector read(), batches of ${BATCH_SIZE}`, "connector");
    line(`connector read(), batches of ${LARGE_BATCH_SIZE}`, "connector-10k");
    console.log(
      `(with ${LARGE_BATCH_SIZE}-row batches: ratio ${
        (best("connector-10k") / best("bare")).toFixed(3)
      }; each batch held whole costs memory)`,
    );
    console.log(
      `ratio ${ratio.toFixed(3)} (target <= ${TARGET_RATIO}), peak memory ${
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
