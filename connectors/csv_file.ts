/**
 * CSV files under FILES_DIR, through csv-parse.
 *
 * A source is one file and one stream (named after the file, without its extension). The
 * file is parsed as a stream: discovery infers column types from the first rows and counts
 * every row exactly (so a malformed line anywhere is found, with its line number), preview
 * stops after `limit` rows, and read yields batches as the consumer takes them.
 *
 * A malformed file (a row with more or fewer fields than the header, a quote never closed)
 * is INVALID_RESPONSE: the settings are fine, the content is not. The message names the
 * line. Incremental reads keep the rows whose cursor column is past the saved value; the
 * whole file is still parsed, since a file has no index to start from.
 */
import { createReadStream } from "node:fs";
import { basename, extname } from "node:path";
import { z } from "zod";
import { ColumnSampler, textType } from "./_infer.ts";
import { type ResolvedFile, resolveInFilesDir } from "./_files.ts";
import {
  csvChunks,
  type CsvOptions,
  firstRecords,
  inBatches,
  positionalNames,
  recordsError,
  type TabularRecord,
  uniqueColumnNames,
} from "./_tabular.ts";
import type {
  Connector,
  ConnectorError,
  Discovery,
  Preview,
  Result,
  SourceSettings,
  Stage,
  StageName,
  Stream,
  StreamRef,
  TestResult,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";
import { parse as parseCsv } from "csv-parse";

const configSchema = z.strictObject({
  filePath: z
    .string()
    .trim()
    .min(1, "File path is required")
    .max(1024)
    .refine((path) => !path.startsWith("/") && !/^[A-Za-z]:/.test(path), {
      message: "Must be relative to the files directory",
    })
    .refine((path) => !path.split(/[\\/]/).includes(".."), {
      message: "Must not contain ..",
    })
    .meta({
      title: "File",
      description: "Path relative to the files directory, or upload a file (POST /api/files " +
        "returns the path to put here)",
      placeholder: "exports/customers.csv",
      // Names a file in FILES_DIR: forms offer an upload and the files already there.
      upload: true,
    }),
  delimiter: z.string().min(1).max(4).default(",").meta({
    title: "Delimiter",
    description: "What separates fields: a comma, a semicolon, \\t for tabs, ...",
    placeholder: ",",
  }),
  quote: z.string().length(1).default('"').meta({
    title: "Quote character",
    description: "Encloses fields that contain the delimiter or line breaks",
    placeholder: '"',
  }),
  encoding: z.enum(["utf8", "latin1"]).default("utf8").meta({
    title: "Encoding",
    description: "utf8 for most files; latin1 (ISO-8859-1) for older exports from Excel",
    placeholder: "utf8",
  }),
  headers: z.coerce.boolean().default(true).meta({
    title: "First row is a header",
    description: "Otherwise the columns are named column_1, column_2, ...",
  }),
});

const secretsSchema = z.strictObject({});

type CsvConfig = z.infer<typeof configSchema>;
type Settings = SourceSettings<CsvConfig, z.infer<typeof secretsSchema>>;

/** Rows sampled for column types. */
const SAMPLE_ROWS = 1000;
const READ_CHUNK_BYTES = 64 * 1024;

function csvOptions(config: CsvConfig): CsvOptions {
  // A tab is hard to type into a form field; accept its escape.
  const delimiter = config.delimiter === "\\t" ? "\t" : config.delimiter;
  return {
    delimiter,
    quote: config.quote ?? '"',
    encoding: config.encoding ?? "utf8",
    headers: config.headers ?? true,
  };
}

/** The stream name of a file: its name without the extension. */
export function streamNameOf(filePath: string): string {
  const name = basename(filePath);
  return name.slice(0, name.length - extname(name).length) || name;
}

function where(config: CsvConfig) {
  return { field: "configuration.filePath", label: `File "${config.filePath}"` };
}

function recordsOfFile(file: ResolvedFile, config: CsvConfig): AsyncGenerator<TabularRecord[]> {
  const input = createReadStream(file.path, { highWaterMark: READ_CHUNK_BYTES });
  return csvChunks(input, csvOptions(config), where(config));
}

/** The column names: the header row, or column_N for as many fields as the first row has. */
async function columnNames(file: ResolvedFile, config: CsvConfig): Promise<string[]> {
  const options = csvOptions(config);
  const input = createReadStream(file.path, { highWaterMark: 64 * 1024 });
  const parser = parseCsv({
    delimiter: options.delimiter,
    quote: options.quote,
    encoding: options.encoding,
    bom: true,
    skip_empty_lines: true,
    to_line: 1,
  });
  input.on("error", (error) => parser.destroy(error));
  try {
    for await (const row of input.pipe(parser)) {
      const cells = row as string[];
      return options.headers ? uniqueColumnNames(cells) : positionalNames(cells.length);
    }
    return [];
  } catch (error) {
    throw new ConnectorFailure(recordsError(error, where(config)));
  } finally {
    parser.destroy();
    input.destroy();
  }
}

function asFailure(error: unknown, config: CsvConfig): ConnectorError {
  return recordsError(error, where(config));
}

function checkStream(config: CsvConfig, stream: StreamRef): ConnectorError | null {
  if (stream.name === streamNameOf(config.filePath) && stream.schema === undefined) return null;
  return {
    code: "RESOURCE_NOT_FOUND",
    message: `This source has no stream "${stream.name}"`,
    hint: `A CSV source has one stream, "${streamNameOf(config.filePath)}"`,
  };
}

function typedColumns(names: string[], sampler: ColumnSampler) {
  const inferred = new Map(sampler.columns().map((column) => [column.name, column]));
  return names.map((name) => {
    const column = inferred.get(name);
    return { name, type: column?.type ?? "text", nullable: column?.nullable ?? true };
  });
}

async function test(settings: Settings, ctx: { filesDir: string }): Promise<TestResult> {
  const started = performance.now();
  const stages: Stage[] = [];
  let mark = started;
  const stage = (name: StageName, ok: boolean) => {
    const now = performance.now();
    stages.push({ name, ok, ms: Math.round(now - mark) });
    mark = now;
  };
  const failed = (error: ConnectorError): TestResult => ({
    success: false,
    message: error.message,
    responseTime: Math.round(performance.now() - started),
    stages,
    error,
  });
  const config = settings.config;
  const resolved = await resolveInFilesDir(ctx.filesDir, config.filePath);
  stage("resolve", resolved.ok);
  if (!resolved.ok) return failed(resolved.error);
  const file = resolved.value;
  let names: string[];
  let firstRows: TabularRecord[];
  try {
    names = await columnNames(file, config);
    stage("connect", true);
  } catch (error) {
    stage("connect", false);
    return failed(error instanceof ConnectorFailure ? error.error : asFailure(error, config));
  }
  try {
    firstRows = await firstRecords(recordsOfFile(file, config), 1);
    stage("query", true);
  } catch (error) {
    stage("query", false);
    return failed(error instanceof ConnectorFailure ? error.error : asFailure(error, config));
  }
  return {
    success: true,
    message: `Read "${config.filePath}": ${names.length} columns` +
      (firstRows.length ? "" : ", no data rows"),
    responseTime: Math.round(performance.now() - started),
    stages,
    serverInfo: {
      file: config.filePath,
      sizeBytes: file.size,
      modifiedAt: file.modifiedAt?.toISOString() ?? null,
      encoding: config.encoding ?? "utf8",
      columns: names.length,
    },
  };
}

async function discover(
  settings: Settings,
  ctx: { filesDir: string },
): Promise<Result<Discovery>> {
  const config = settings.config;
  const resolved = await resolveInFilesDir(ctx.filesDir, config.filePath);
  if (!resolved.ok) return resolved;
  const sampler = new ColumnSampler(textTypeOf);
  let rows = 0;
  let names: string[];
  try {
    names = await columnNames(resolved.value, config);
    for await (const chunk of recordsOfFile(resolved.value, config)) {
      for (let index = 0; index < chunk.length && rows + index < SAMPLE_ROWS; index++) {
        sampler.add(chunk[index]);
      }
      rows += chunk.length;
    }
  } catch (error) {
    return {
      ok: false,
      error: error instanceof ConnectorFailure ? error.error : asFailure(error, config),
    };
  }
  const stream: Stream = {
    name: streamNameOf(config.filePath),
    kind: "file",
    columns: typedColumns(names, sampler),
    rowCount: rows,
    rowCountExact: true,
    constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [] },
  };
  return { ok: true, value: { streams: [stream] } };
}

/** Cells are text: their type is what they look like. */
function textTypeOf(value: unknown) {
  return typeof value === "string" ? textType(value) : null;
}

async function preview(
  settings: Settings,
  request: { stream: StreamRef; limit: number },
  ctx: { filesDir: string },
): Promise<Result<Preview>> {
  const config = settings.config;
  const resolved = await resolveInFilesDir(ctx.filesDir, config.filePath);
  if (!resolved.ok) return resolved;
  const wrongStream = checkStream(config, request.stream);
  if (wrongStream) return { ok: false, error: wrongStream };
  try {
    const names = await columnNames(resolved.value, config);
    const rows = await firstRecords(recordsOfFile(resolved.value, config), request.limit);
    const sampler = new ColumnSampler(textTypeOf);
    for (const row of rows) sampler.add(row);
    const columns = typedColumns(names, sampler).map(({ name, type }) => ({ name, type }));
    return { ok: true, value: { columns, rows } };
  } catch (error) {
    return {
      ok: false,
      error: error instanceof ConnectorFailure ? error.error : asFailure(error, config),
    };
  }
}

async function* read(
  settings: Settings,
  request: Parameters<Connector["read"]>[1],
  ctx: { filesDir: string },
): AsyncGenerator<{ rows: Record<string, unknown>[] }> {
  const config = settings.config;
  const resolved = await resolveInFilesDir(ctx.filesDir, config.filePath);
  if (!resolved.ok) throw new ConnectorFailure(resolved.error);
  const wrongStream = checkStream(config, request.stream);
  if (wrongStream) throw new ConnectorFailure(wrongStream);
  yield* inBatches(recordsOfFile(resolved.value, config), request);
}

export const csvFile = {
  type: "CSV_FILE",
  label: "CSV file",
  description: "Uploaded or placed in the files directory",
  configSchema,
  secretsSchema,
  capabilities: { pooled: false, incremental: true },
  test,
  discover,
  preview,
  read,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
