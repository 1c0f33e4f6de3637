/**
 * The CSV file connector against files this test writes into its own FILES_DIR: the
 * conformance suite, encodings and dialects, a million rows, malformed files with their line
 * numbers, and every way a path could lead outside the files directory.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvFile } from "../../connectors/csv_file.ts";
import { fingerprintOf } from "../../connectors/operations.ts";
import type { ConnectorContext, RecordBatch } from "../../connectors/types.ts";
import { ConnectorFailure } from "../../connectors/types.ts";
import { runConformance } from "./conformance.ts";

const filesDir = await Deno.makeTempDir({ prefix: "dafel-csv-files-" });
const outsideDir = await Deno.makeTempDir({ prefix: "dafel-csv-outside-" });

const ctx: ConnectorContext = {
  network: { allowedHosts: [], allowPrivateNetworks: false },
  pool: { min: 0, max: 1, idleTimeoutMs: 1000, connectionTimeoutMs: 2000 },
  filesDir,
};

const PEOPLE = [
  "id,name,score,active,joined",
  "1,Ada,91.5,true,2024-01-05",
  "2,Grace,88,false,2024-02-11",
  '3,"Hopper, Grace",77.25,true,2024-03-30',
  "4,Linus,,true,2024-04-01",
  '5,"Quote ""me""",60,false,2024-05-17',
  "6,Ken,70,true,2024-06-02",
].join("\n") + "\n";

let counter = 0;
function settings(config: Record<string, unknown>) {
  const full = { config: csvFile.configSchema.parse(config), secrets: {} };
  counter++;
  return { id: `csv-${counter}`, fingerprint: fingerprintOf(full), ...full };
}

async function write(path: string, content: string | Uint8Array) {
  const full = `${filesDir}/${path}`;
  await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
  if (typeof content === "string") await Deno.writeTextFile(full, content);
  else await Deno.writeFile(full, content);
}

async function readAll(config: Record<string, unknown>, stream: string, batchSize = 1000) {
  const batches: RecordBatch[] = [];
  for await (
    const batch of csvFile.read(settings(config), { stream: { name: stream }, batchSize }, ctx)
  ) {
    batches.push(batch);
  }
  return batches;
}

beforeAll(async () => {
  await write("people.csv", PEOPLE);
  await write("exports/semicolons.txt", "code;label\n'A;1';first\n'B';second\n");
  await write("no_header.csv", "10,x\n20,y\n30,z\n");
  // "Café", "Zürich", "Ñandú" written as ISO-8859-1 bytes.
  const latin1 = Uint8Array.from(
    "city,name\nZürich,Café\nSevilla,Ñandú\n",
    (char) => char.charCodeAt(0),
  );
  await write("latin1.csv", latin1);
  await write("ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n");
  await write("ragged_first.csv", "a,b\n1,2,3\n");
  await write("unclosed.csv", 'a,b\n1,"open\n2,3\n4,5\n');
  await write("header_only.csv", "a,b,c\n");
  await Deno.writeTextFile(`${outsideDir}/secret.csv`, "token\nsecret-value\n");
  await Deno.symlink(`${outsideDir}/secret.csv`, `${filesDir}/linked_out.csv`);
  await Deno.symlink(outsideDir, `${filesDir}/linked_dir`);
  await Deno.symlink(`${filesDir}/people.csv`, `${filesDir}/linked_in.csv`);
});

afterAll(async () => {
  await Deno.remove(filesDir, { recursive: true });
  await Deno.remove(outsideDir, { recursive: true });
});

runConformance({
  name: "CSV file",
  connector: csvFile,
  ctx,
  settings: () => ({ config: { filePath: "people.csv" }, secrets: {} }),
  stream: { name: "people", columns: ["id", "name", "score", "active", "joined"], rows: 6 },
  cursorColumn: "id",
  failures: [
    {
      name: "a missing file",
      settings: () => ({ config: { filePath: "missing.csv" }, secrets: {} }),
      code: "RESOURCE_NOT_FOUND",
    },
    {
      name: "a symlink that leads outside the files directory",
      settings: () => ({ config: { filePath: "linked_out.csv" }, secrets: {} }),
      code: "INVALID_CONFIG",
    },
    {
      name: "a row longer than the header",
      settings: () => ({ config: { filePath: "ragged_first.csv" }, secrets: {} }),
      code: "INVALID_RESPONSE",
    },
  ],
});

describe("CSV file connector", () => {
  it("infers integer, number, boolean, date and text columns, with nulls for empty cells", async () => {
    const result = await csvFile.discover(settings({ filePath: "people.csv" }), ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    const [stream] = result.value.streams;
    expect(stream.rowCount).toBe(6);
    expect(stream.rowCountExact).toBe(true);
    expect(stream.columns.map((c) => [c.name, c.type])).toEqual([
      ["id", "integer"],
      ["name", "text"],
      ["score", "number"],
      ["active", "boolean"],
      ["joined", "date"],
    ]);
    expect(stream.columns.find((c) => c.name === "score")?.nullable).toBe(true);
    const rows = (await readAll({ filePath: "people.csv" }, "people")).flatMap((b) => b.rows);
    expect(rows[2]).toEqual({
      id: "3",
      name: "Hopper, Grace",
      score: "77.25",
      active: "true",
      joined: "2024-03-30",
    });
    expect(rows[3].score).toBeNull();
    expect(rows[4].name).toBe('Quote "me"');
  });

  it("reads latin1 files as latin1", async () => {
    const rows = (await readAll({ filePath: "latin1.csv", encoding: "latin1" }, "latin1"))
      .flatMap((b) => b.rows);
    expect(rows).toEqual([{ city: "Zürich", name: "Café" }, { city: "Sevilla", name: "Ñandú" }]);
  });

  it("honours another delimiter and quote character", async () => {
    const config = { filePath: "exports/semicolons.txt", delimiter: ";", quote: "'" };
    const rows = (await readAll(config, "semicolons")).flatMap((b) => b.rows);
    expect(rows).toEqual([{ code: "A;1", label: "first" }, { code: "B", label: "second" }]);
  });

  it("names columns column_1, column_2 when the file has no header row", async () => {
    const config = { filePath: "no_header.csv", headers: false };
    const discovered = await csvFile.discover(settings(config), ctx);
    if (!discovered.ok) throw new Error(JSON.stringify(discovered.error));
    expect(discovered.value.streams[0].rowCount).toBe(3);
    expect(discovered.value.streams[0].columns.map((c) => c.name)).toEqual([
      "column_1",
      "column_2",
    ]);
    const rows = (await readAll(config, "no_header")).flatMap((b) => b.rows);
    expect(rows[0]).toEqual({ column_1: "10", column_2: "x" });
  });

  it("lists the header's columns for a file without data rows", async () => {
    const result = await csvFile.preview(
      settings({ filePath: "header_only.csv" }),
      { stream: { name: "header_only" }, limit: 10 },
      ctx,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value.rows).toEqual([]);
    expect(result.value.columns.map((c) => c.name)).toEqual(["a", "b", "c"]);
  });

  it("reports a ragged row as INVALID_RESPONSE with its line number", async () => {
    const result = await csvFile.discover(settings({ filePath: "ragged.csv" }), ctx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("INVALID_RESPONSE");
    expect(result.error.message).toContain("Line 3");
    expect(result.error.field).toBe("configuration.filePath");
  });

  it("reports an unclosed quote as INVALID_RESPONSE with a line number", async () => {
    const result = await csvFile.discover(settings({ filePath: "unclosed.csv" }), ctx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("INVALID_RESPONSE");
    expect(result.error.message).toMatch(/Line \d+: a quoted field is never closed/);
  });

  it("fails a read of a malformed file with a classified error, not a crash", async () => {
    const failure = await readAll({ filePath: "ragged.csv" }, "ragged", 1).then(
      () => null,
      (error) => error,
    );
    expect(failure).toBeInstanceOf(ConnectorFailure);
    expect((failure as ConnectorFailure).error.code).toBe("INVALID_RESPONSE");
  });

  it("refuses paths that escape the files directory, checking the real path", async () => {
    const escapes = [
      "/etc/passwd",
      `${outsideDir}/secret.csv`,
      "../secret.csv",
      "exports/../../secret.csv",
      "linked_out.csv",
      "linked_dir/secret.csv",
    ];
    for (const filePath of escapes) {
      // The API's schema refuses the first ones already; the connector must too.
      const raw = {
        config: { filePath, delimiter: ",", quote: '"', encoding: "utf8", headers: true },
        secrets: {},
      };
      const result = await csvFile.test(
        { id: "escape", fingerprint: fingerprintOf(raw), ...raw } as never,
        ctx,
      );
      expect(result.success, filePath).toBe(false);
      expect(result.error?.code, filePath).toBe("INVALID_CONFIG");
      expect(JSON.stringify(result), filePath).not.toContain("secret-value");
      const reading = csvFile.read(
        { id: "escape", fingerprint: fingerprintOf(raw), ...raw } as never,
        { stream: { name: "secret" }, batchSize: 10 },
        ctx,
      );
      const read = await Array.fromAsync(reading).then(() => null, (error) => error);
      expect((read as ConnectorFailure)?.error?.code, filePath).toBe("INVALID_CONFIG");
    }
  });

  it("follows a symlink that stays inside the files directory", async () => {
    const result = await csvFile.test(settings({ filePath: "linked_in.csv" }), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
  });

  it("says RESOURCE_NOT_FOUND for a file that is not there", async () => {
    const result = await csvFile.discover(settings({ filePath: "exports/nope.csv" }), ctx);
    expect(!result.ok && result.error.code).toBe("RESOURCE_NOT_FOUND");
  });

  it("refuses a stream other than the file's own", async () => {
    const result = await csvFile.preview(
      settings({ filePath: "people.csv" }),
      { stream: { name: "other" }, limit: 1 },
      ctx,
    );
    expect(!result.ok && result.error.code).toBe("RESOURCE_NOT_FOUND");
  });

  it("counts and reads a 1,000,000-row file exactly, in batches", async () => {
    const rows = 1_000_000;
    const file = await Deno.open(`${filesDir}/million.csv`, { write: true, create: true });
    const writer = file.writable.getWriter();
    const encoder = new TextEncoder();
    await writer.write(encoder.encode("id,name,amount,created\n"));
    const chunk: string[] = [];
    for (let i = 1; i <= rows; i++) {
      chunk.push(
        `${i},name ${i},${(i % 1000) / 10},2024-01-${String((i % 28) + 1).padStart(2, "0")}`,
      );
      if (chunk.length === 10_000) {
        await writer.write(encoder.encode(chunk.join("\n") + "\n"));
        chunk.length = 0;
      }
    }
    await writer.close();

    const discovered = await csvFile.discover(settings({ filePath: "million.csv" }), ctx);
    if (!discovered.ok) throw new Error(JSON.stringify(discovered.error));
    expect(discovered.value.streams[0].rowCount).toBe(rows);
    expect(discovered.value.streams[0].columns.map((c) => c.type)).toEqual([
      "integer",
      "text",
      "number",
      "date",
    ]);

    let total = 0;
    let batches = 0;
    let last: unknown;
    for await (
      const batch of csvFile.read(
        settings({ filePath: "million.csv" }),
        { stream: { name: "million" }, batchSize: 50_000 },
        ctx,
      )
    ) {
      expect(batch.rows.length).toBeLessThanOrEqual(50_000);
      total += batch.rows.length;
      batches++;
      last = batch.rows.at(-1)?.id;
    }
    expect(total).toBe(rows);
    expect(batches).toBe(20);
    expect(last).toBe(String(rows));
  });
});
