/**
 * Amazon S3 and S3-compatible object stores, through @aws-sdk/client-s3.
 *
 * Streams are datasets: the objects under the prefix are grouped by the folder they sit in
 * (relative to the prefix) and their format, so `orders/2024-01.csv` and `orders/2024-02.csv`
 * are one stream, `orders`. Hive-style partition folders (`year=2024/`) do not split a
 * dataset: `events/year=2024/month=01/part-0.jsonl` is stream `events`. An object directly
 * under the prefix is a stream of its own, named after the file without its extension. When
 * one folder holds several formats, each stream's name gets the format as a suffix
 * (`orders.csv`, `orders.jsonl`).
 *
 * Formats by extension: .csv (and .tsv, tab-separated), .jsonl / .ndjson (JSON Lines), .json
 * (a JSON array, or JSON Lines when the document starts with `{`), each optionally .gz.
 * Other objects are ignored. Columns are inferred from the first object of a stream (in key
 * order); its row count is unknown without reading every object, so discovery reports the
 * object count and total size instead (`objects`, `totalBytes` on the stream).
 *
 * Every byte is streamed: preview stops after `limit` rows, read parses object bodies as
 * they arrive and pulls no faster than its consumer takes batches.
 *
 * Network: every host the SDK connects to goes through the outbound-address guard, and the
 * connection goes to the address the guard checked (the agents' `lookup` answers with it).
 */
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import {
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  type S3ServiceException,
} from "@aws-sdk/client-s3";
import { z } from "zod";
import { httpUrlField } from "./_fields.ts";
import { type CheckedHost, checkHost } from "./_guard.ts";
import { ColumnSampler, jsonType, textType } from "./_infer.ts";
import {
  chunksOf,
  type CsvOptions,
  DEFAULT_CSV,
  firstRecords,
  inBatches,
  type TabularRecord,
  type TextFormat,
  transportError,
} from "./_tabular.ts";
import type {
  Connector,
  ConnectorContext,
  ConnectorError,
  Discovery,
  Preview,
  ReadRequest,
  RecordBatch,
  Result,
  SourceSettings,
  Stage,
  StageName,
  Stream,
  StreamRef,
  TestResult,
} from "./types.ts";
import { ConnectorFailure } from "./types.ts";

const configSchema = z.strictObject({
  bucketName: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "Not a valid bucket name")
    .meta({
      title: "Bucket",
      description: "The bucket's name (not its URL)",
      placeholder: "my-data-bucket",
    }),
  region: z.string().trim().regex(/^[a-z0-9-]{2,40}$/, "Not a valid region").meta({
    title: "Region",
    description: "Where the bucket lives; S3-compatible stores often accept us-east-1",
    placeholder: "us-east-1",
  }),
  accessKey: z.string().trim().min(1, "Access key is required").max(256).meta({
    title: "Access key ID",
    description: "Of an IAM user or role allowed s3:ListBucket and s3:GetObject",
    placeholder: "AKIAIOSFODNN7EXAMPLE",
  }),
  prefix: z.string().max(1024).optional().meta({
    title: "Prefix",
    description: "Only objects under this key prefix, such as exports/2026/; each folder " +
      "below it becomes a stream",
    placeholder: "exports/",
  }),
  endpoint: httpUrlField("Endpoint", "https://s3.example.com").optional().meta({
    title: "Endpoint",
    description: "For S3-compatible stores (MinIO, Ceph, R2, ...); empty for AWS",
    placeholder: "https://s3.example.com",
  }),
  forcePathStyle: z.coerce.boolean().default(false).meta({
    title: "Path-style URLs",
    description: "Address the bucket as endpoint/bucket instead of bucket.endpoint; needed " +
      "by most S3-compatible stores",
  }),
});

const secretsSchema = z.strictObject({
  secretKey: z.string().min(1, "Secret key is required").max(1024).meta({
    title: "Secret access key",
    description: "Stored encrypted; never shown again",
  }),
});

type S3Config = z.infer<typeof configSchema>;
type S3Secrets = z.infer<typeof secretsSchema>;
type Settings = SourceSettings<S3Config, S3Secrets>;

/** A stream of this connector: a dataset, with what discovery could tell about its objects. */
export type S3Stream = Stream & {
  format: TextFormat;
  objects: number;
  totalBytes: number;
  /** Why the first object could not be sampled whole (a malformed line), if it could not. */
  problem?: string;
};

type ObjectEntry = { key: string; size: number; lastModified?: Date };
type Dataset = { name: string; format: TextFormat; objects: ObjectEntry[] };

/** Objects listed for discovery at most; a bigger prefix is reported as such. */
const MAX_LISTED_OBJECTS = 100_000;
/** Records of the first object used to infer a stream's columns. */
const SAMPLE_RECORDS = 1000;

const FORMATS: [RegExp, TextFormat, CsvOptions][] = [
  [/\.csv(\.gz)?$/i, "csv", DEFAULT_CSV],
  [/\.tsv(\.gz)?$/i, "csv", { ...DEFAULT_CSV, delimiter: "\t" }],
  [/\.(jsonl|ndjson)(\.gz)?$/i, "jsonl", DEFAULT_CSV],
  [/\.json(\.gz)?$/i, "json", DEFAULT_CSV],
];

function formatOf(key: string): { format: TextFormat; csv: CsvOptions } | null {
  for (const [pattern, format, csv] of FORMATS) if (pattern.test(key)) return { format, csv };
  return null;
}

/** A Hive-style partition folder (`year=2024`) belongs to the dataset above it. */
const PARTITION = /^[^=/]+=[^/]*$/;

/** The dataset an object belongs to, by the rules in the module comment. */
export function datasetOf(key: string, prefix: string): string | null {
  if (key.endsWith("/") || !formatOf(key)) return null;
  const relative = key.slice(prefix.length).replace(/^\/+/, "");
  const parts = relative.split("/");
  const file = parts.pop() ?? "";
  const folders = parts.filter((part) => part !== "" && !PARTITION.test(part));
  if (folders.length) return folders.join("/");
  return file.replace(/\.gz$/i, "").replace(/\.[^.]+$/, "") || file;
}

/** Groups listed objects into datasets (key order within each). */
export function groupDatasets(objects: ObjectEntry[], prefix: string): Dataset[] {
  const groups = new Map<string, Dataset>();
  for (const object of objects) {
    const name = datasetOf(object.key, prefix);
    const detected = formatOf(object.key);
    if (name === null || !detected) continue;
    const id = `${name}\u0000${detected.format}`;
    let group = groups.get(id);
    if (!group) groups.set(id, group = { name, format: detected.format, objects: [] });
    group.objects.push(object);
  }
  const datasets = [...groups.values()];
  const formatsByName = new Map<string, number>();
  for (const dataset of datasets) {
    formatsByName.set(dataset.name, (formatsByName.get(dataset.name) ?? 0) + 1);
  }
  for (const dataset of datasets) {
    if ((formatsByName.get(dataset.name) ?? 0) > 1) {
      dataset.name = `${dataset.name}.${dataset.format}`;
    }
    dataset.objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  return datasets.sort((a, b) => a.name.localeCompare(b.name));
}

// --- Connection -------------------------------------------------------------------------

/** The host the SDK will talk to first (the guard checks every other one it meets too). */
function firstHost(config: S3Config): string {
  if (config.endpoint) return new URL(config.endpoint).hostname.replace(/^\[(.*)\]$/, "$1");
  const pathStyle = config.forcePathStyle || config.bucketName.includes(".");
  return pathStyle
    ? `s3.${config.region}.amazonaws.com`
    : `${config.bucketName}.s3.${config.region}.amazonaws.com`;
}

function hostField(config: S3Config): string {
  return config.endpoint ? "configuration.endpoint" : "configuration.region";
}

/** An error a `lookup` hands to node:net, carrying the guard's verdict. */
class BlockedHostError extends Error {
  override name = "BlockedHostError";
  readonly code = "EBLOCKED";
  constructor(readonly error: ConnectorError) {
    super(error.message);
  }
}

/**
 * A `lookup` for the SDK's agents: every name is checked by the guard and answered with
 * the checked address, so the socket connects exactly where the guard looked. The first
 * host's check (done for the "resolve" stage) is reused instead of resolving it again.
 */
function guardedLookup(network: ConnectorContext["network"], known: CheckedHost) {
  const checks = new Map<string, Promise<Result<CheckedHost>>>([
    [known.host, Promise.resolve({ ok: true, value: known })],
  ]);
  return function lookupGuarded(
    hostname: string,
    options: unknown,
    callback?: (...args: unknown[]) => void,
  ) {
    const done = (typeof options === "function" ? options : callback) as (
      ...args: unknown[]
    ) => void;
    const all = typeof options === "object" && options !== null &&
      (options as { all?: boolean }).all;
    let check = checks.get(hostname);
    if (!check) checks.set(hostname, check = checkHost(hostname, "http", network));
    check.then((result) => {
      if (!result.ok) return done(new BlockedHostError(result.error));
      const first = result.value.addresses[0];
      if (all) done(null, result.value.addresses);
      else done(null, first.address, first.family);
    }, (error) => done(error));
  };
}

type Connection = { client: S3Client; close(): void };

function connect(
  settings: Settings,
  checked: CheckedHost,
  ctx: ConnectorContext,
  options: { attempts: number },
): Connection {
  const lookup = guardedLookup(ctx.network, checked);
  const agentOptions = { lookup, keepAlive: true, maxSockets: 4 } as http.AgentOptions;
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  const timeout = ctx.pool.connectionTimeoutMs;
  const client = new S3Client({
    region: settings.config.region,
    endpoint: settings.config.endpoint,
    forcePathStyle: settings.config.forcePathStyle,
    credentials: {
      accessKeyId: settings.config.accessKey,
      secretAccessKey: settings.secrets.secretKey,
    },
    maxAttempts: options.attempts,
    // Without this the SDK may compute checksums over whole bodies it reads.
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: {
      httpAgent,
      httpsAgent,
      connectionTimeout: timeout,
      // An idle socket (a stalled body too) fails after this long.
      requestTimeout: timeout,
      throwOnRequestTimeout: true,
    },
  });
  return {
    client,
    close() {
      client.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

// --- Errors -----------------------------------------------------------------------------

const AUTH_CODES = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
  "InvalidSecurity",
]);
const PERMISSION_CODES = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "AccountProblem",
  "InvalidObjectState",
]);
const REGION_CODES = new Set([
  "PermanentRedirect",
  "AuthorizationHeaderMalformed",
  "IllegalLocationConstraintException",
  "301",
]);

function s3Details(error: unknown): { code: string; status: number; region?: string } | null {
  const candidate = error as Partial<S3ServiceException> & {
    $response?: { headers?: Record<string, string> };
  };
  const status = candidate?.$metadata?.httpStatusCode;
  if (status === undefined || typeof candidate.name !== "string") return null;
  return {
    code: candidate.name,
    status,
    region: candidate.$response?.headers?.["x-amz-bucket-region"],
  };
}

/** True when an S3 answer came without an error code (HEAD responses have no body). */
function isBodiless(error: unknown): boolean {
  const details = s3Details(error);
  return details !== null &&
    ["NotFound", "Forbidden", "BadRequest", "Unknown", "MovedPermanently", "301"].includes(
      details.code,
    );
}

function blockedError(error: unknown): ConnectorError | null {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof BlockedHostError) return current.error;
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

/** A failure of an S3 call, classified by the S3 error code, then by errno. */
export function s3Error(error: unknown, config: S3Config): ConnectorError {
  if (error instanceof ConnectorFailure) return error.error;
  const blocked = blockedError(error);
  if (blocked) return { ...blocked, field: hostField(config) };
  const details = s3Details(error);
  if (!details) return transportError(error, hostField(config));
  const { code, status } = details;
  const bucket = config.bucketName;
  if (AUTH_CODES.has(code)) {
    return {
      code: "AUTH_FAILED",
      message: `S3 refused the credentials (${code})`,
      hint: code === "InvalidAccessKeyId"
        ? "Check the access key ID: the store does not know it"
        : "Check the secret access key (and that the server clock is right)",
      field: code === "InvalidAccessKeyId" ? "configuration.accessKey" : "secretKey",
    };
  }
  if (PERMISSION_CODES.has(code)) {
    return {
      code: "PERMISSION_DENIED",
      message: `Access to bucket "${bucket}" denied (${code})`,
      hint: "Allow the key s3:ListBucket on the bucket and s3:GetObject on its objects",
      field: "configuration.accessKey",
    };
  }
  if (code === "NoSuchBucket" || (code === "NotFound" && status === 404)) {
    return {
      code: "RESOURCE_NOT_FOUND",
      message: `Bucket "${bucket}" does not exist`,
      hint: "Check the bucket name (and the endpoint, for S3-compatible stores)",
      field: "configuration.bucketName",
    };
  }
  if (code === "NoSuchKey") {
    return {
      code: "RESOURCE_NOT_FOUND",
      message: "An object disappeared while it was being read",
      hint: "Objects under the prefix changed; discover the schema again",
      field: "configuration.prefix",
    };
  }
  if (REGION_CODES.has(code) || status === 301) {
    return {
      code: "INVALID_CONFIG",
      message: `Bucket "${bucket}" is not in region ${config.region}` +
        (details.region ? ` (it is in ${details.region})` : ""),
      hint: details.region ? `Set the region to ${details.region}` : "Check the region",
      field: "configuration.region",
    };
  }
  if (code === "InvalidBucketName") {
    return {
      code: "INVALID_CONFIG",
      message: `"${bucket}" is not a valid bucket name for this store`,
      hint: "Check the bucket name",
      field: "configuration.bucketName",
    };
  }
  if (code === "RequestTimeTooSkewed") {
    return {
      code: "AUTH_FAILED",
      message: "S3 refused the request: the server's clock is too far off",
      hint: "Synchronise the server's clock (NTP)",
    };
  }
  return {
    code: status >= 500 ? "UNKNOWN" : "INVALID_RESPONSE",
    message: `S3 answered HTTP ${status} (${code})`,
    hint: status >= 500 ? "The store failed; try again later" : "Check the endpoint",
    field: hostField(config),
  };
}

// --- Listing and reading ----------------------------------------------------------------

async function listObjects(
  client: S3Client,
  config: S3Config,
  options: { max: number; keep?: (key: string) => boolean; signal?: AbortSignal },
): Promise<{ objects: ObjectEntry[]; truncated: boolean }> {
  const objects: ObjectEntry[] = [];
  let token: string | undefined;
  do {
    const page: ListObjectsV2CommandOutput = await client.send(
      new ListObjectsV2Command({
        Bucket: config.bucketName,
        Prefix: config.prefix || undefined,
        ContinuationToken: token,
        MaxKeys: 1000,
      }),
      { abortSignal: options.signal },
    );
    for (const item of page.Contents ?? []) {
      if (item.Key === undefined || (options.keep && !options.keep(item.Key))) continue;
      objects.push({ key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && objects.length < options.max);
  return { objects, truncated: token !== undefined };
}

/** Records of one object's body, decompressed when its key ends in .gz. */
async function* objectChunks(
  client: S3Client,
  config: S3Config,
  key: string,
  signal?: AbortSignal,
): AsyncGenerator<TabularRecord[]> {
  const detected = formatOf(key);
  if (!detected) return;
  let body: Readable;
  try {
    const object = await client.send(
      new GetObjectCommand({ Bucket: config.bucketName, Key: key }),
      { abortSignal: signal },
    );
    body = object.Body as Readable;
  } catch (error) {
    throw new ConnectorFailure(s3Error(error, config));
  }
  const input = key.toLowerCase().endsWith(".gz") ? body.pipe(createGunzip()) : body;
  if (input !== body) body.on("error", (error) => input.destroy(error));
  try {
    yield* chunksOf(input, detected.format, {
      csv: detected.csv,
      field: "configuration.prefix",
      label: `Object "${key}"`,
    });
  } finally {
    body.destroy();
  }
}

/** Records of every object of a dataset, object after object. */
async function* datasetChunks(
  client: S3Client,
  config: S3Config,
  dataset: Dataset,
  signal?: AbortSignal,
): AsyncGenerator<TabularRecord[]> {
  for (const object of dataset.objects) yield* objectChunks(client, config, object.key, signal);
}

function typeFunction(format: TextFormat) {
  // CSV cells are text that looks like a type; JSON values are typed already.
  return format === "csv"
    ? (value: unknown) => (typeof value === "string" ? textType(value) : jsonType(value))
    : jsonType;
}

/**
 * Columns from the first records of a dataset's first object. A malformed object does not
 * hide the rest of the bucket: its stream keeps the columns seen before the fault and says
 * what is wrong in `problem` (reading it fails with that error).
 */
async function sampleColumns(
  client: S3Client,
  config: S3Config,
  dataset: Dataset,
): Promise<{ columns: Stream["columns"]; problem?: string }> {
  const sampler = new ColumnSampler(typeFunction(dataset.format));
  let problem: string | undefined;
  try {
    for await (const chunk of objectChunks(client, config, dataset.objects[0].key)) {
      for (const record of chunk) {
        if (sampler.size >= SAMPLE_RECORDS) break;
        sampler.add(record);
      }
      if (sampler.size >= SAMPLE_RECORDS) break;
    }
  } catch (error) {
    if (!(error instanceof ConnectorFailure) || error.error.code !== "INVALID_RESPONSE") {
      throw error;
    }
    problem = error.error.message;
  }
  const columns = sampler.columns().map(({ name, type, nullable }) => ({ name, type, nullable }));
  return problem === undefined ? { columns } : { columns, problem };
}

/** Runs `work` with a client for the source, the first host checked first. */
async function withClient<T>(
  settings: Settings,
  ctx: ConnectorContext,
  work: (client: S3Client) => Promise<T>,
): Promise<Result<T>> {
  const checked = await checkHost(firstHost(settings.config), "http", ctx.network);
  if (!checked.ok) {
    return { ok: false, error: { ...checked.error, field: hostField(settings.config) } };
  }
  const connection = connect(settings, checked.value, ctx, { attempts: 3 });
  try {
    return { ok: true, value: await work(connection.client) };
  } catch (error) {
    return { ok: false, error: s3Error(error, settings.config) };
  } finally {
    connection.close();
  }
}

async function findDataset(
  client: S3Client,
  config: S3Config,
  stream: StreamRef,
  signal?: AbortSignal,
): Promise<Dataset> {
  const prefix = config.prefix ?? "";
  // Only this stream's objects are kept, so a huge prefix does not fill memory with keys.
  const keep = (key: string) => {
    const name = datasetOf(key, prefix);
    return name === stream.name || `${name}.${formatOf(key)?.format}` === stream.name;
  };
  const listed = await listObjects(client, config, {
    max: Number.MAX_SAFE_INTEGER,
    keep,
    signal,
  });
  const dataset = groupDatasets(listed.objects, prefix).find((candidate) =>
    candidate.name === stream.name
  );
  if (!dataset || stream.schema !== undefined) {
    throw new ConnectorFailure({
      code: "RESOURCE_NOT_FOUND",
      message: `No objects of stream "${stream.name}" under the prefix`,
      hint: "Discover the schema again: the objects under the prefix changed",
      field: "configuration.prefix",
    });
  }
  return dataset;
}

// --- The verbs --------------------------------------------------------------------------

async function test(settings: Settings, ctx: ConnectorContext): Promise<TestResult> {
  const config = settings.config;
  const started = performance.now();
  const stages: Stage[] = [];
  let mark = started;
  const stage = (name: StageName, ok: boolean, detail?: string) => {
    const now = performance.now();
    stages.push({ name, ok, ms: Math.round(now - mark), ...(detail ? { detail } : {}) });
    mark = now;
  };
  const failed = (error: ConnectorError): TestResult => ({
    success: false,
    message: error.message,
    responseTime: Math.round(performance.now() - started),
    stages,
    error,
  });

  const host = firstHost(config);
  const checked = await checkHost(host, "http", ctx.network);
  stage("resolve", checked.ok);
  if (!checked.ok) return failed({ ...checked.error, field: hostField(config) });

  const connection = connect(settings, checked.value, ctx, { attempts: 1 });
  try {
    try {
      await connection.client.send(new HeadBucketCommand({ Bucket: config.bucketName }));
      stage("authenticate", true, "HeadBucket: connect, sign-in and bucket check");
    } catch (error) {
      stage("authenticate", false, "HeadBucket: connect, sign-in and bucket check");
      if (!isBodiless(error)) return failed(s3Error(error, config));
      // A HEAD answer has no body, so no error code: ask again with a GET to learn it.
      try {
        await connection.client.send(
          new ListObjectsV2Command({ Bucket: config.bucketName, MaxKeys: 1 }),
        );
      } catch (detailed) {
        return failed(s3Error(detailed, config));
      }
      return failed(s3Error(error, config));
    }
    let listed: ListObjectsV2CommandOutput;
    try {
      listed = await connection.client.send(
        new ListObjectsV2Command({
          Bucket: config.bucketName,
          Prefix: config.prefix || undefined,
          MaxKeys: 1,
        }),
      );
      stage("query", true, "ListObjectsV2, one key");
    } catch (error) {
      stage("query", false, "ListObjectsV2, one key");
      return failed(s3Error(error, config));
    }
    const firstKey = listed.Contents?.[0]?.Key ?? null;
    return {
      success: true,
      message: firstKey === null
        ? `Bucket "${config.bucketName}" is reachable; no objects under the prefix`
        : `Bucket "${config.bucketName}" is reachable`,
      responseTime: Math.round(performance.now() - started),
      stages,
      serverInfo: {
        bucket: config.bucketName,
        region: config.region,
        endpoint: config.endpoint ? new URL(config.endpoint).host : host,
        address: checked.value.addresses[0].address,
        pathStyle: config.forcePathStyle,
        prefix: config.prefix ?? "",
        firstKey,
      },
    };
  } finally {
    connection.close();
  }
}

async function discover(settings: Settings, ctx: ConnectorContext): Promise<Result<Discovery>> {
  const config = settings.config;
  return await withClient(settings, ctx, async (client) => {
    const listed = await listObjects(client, config, { max: MAX_LISTED_OBJECTS });
    const streams: S3Stream[] = [];
    for (const dataset of groupDatasets(listed.objects, config.prefix ?? "")) {
      const sampled = await sampleColumns(client, config, dataset);
      streams.push({
        name: dataset.name,
        kind: "file",
        format: dataset.format,
        ...sampled,
        rowCount: null,
        rowCountExact: false,
        objects: dataset.objects.length,
        totalBytes: dataset.objects.reduce((sum, object) => sum + object.size, 0),
        constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [] },
      });
    }
    return { streams };
  });
}

async function preview(
  settings: Settings,
  request: { stream: StreamRef; limit: number },
  ctx: ConnectorContext,
): Promise<Result<Preview>> {
  const config = settings.config;
  return await withClient(settings, ctx, async (client) => {
    const dataset = await findDataset(client, config, request.stream);
    const rows = await firstRecords(datasetChunks(client, config, dataset), request.limit);
    const sampler = new ColumnSampler(typeFunction(dataset.format));
    for (const row of rows) sampler.add(row);
    return { columns: sampler.columns().map(({ name, type }) => ({ name, type })), rows };
  });
}

async function* read(
  settings: Settings,
  request: ReadRequest,
  ctx: ConnectorContext,
): AsyncGenerator<RecordBatch> {
  const config = settings.config;
  const checked = await checkHost(firstHost(config), "http", ctx.network);
  if (!checked.ok) throw new ConnectorFailure({ ...checked.error, field: hostField(config) });
  const connection = connect(settings, checked.value, ctx, { attempts: 3 });
  try {
    let dataset: Dataset;
    try {
      dataset = await findDataset(connection.client, config, request.stream, request.signal);
    } catch (error) {
      throw new ConnectorFailure(s3Error(error, config));
    }
    yield* inBatches(
      datasetChunks(connection.client, config, dataset, request.signal),
      request,
    );
  } finally {
    connection.close();
  }
}

export const s3 = {
  type: "S3",
  label: "Amazon S3",
  description: "CSV, JSON Lines and JSON files in a bucket",
  configSchema,
  secretsSchema,
  capabilities: { pooled: false, incremental: true },
  test,
  discover,
  preview,
  read,
} satisfies Connector<typeof configSchema, typeof secretsSchema>;
