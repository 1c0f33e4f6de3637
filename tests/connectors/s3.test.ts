/**
 * The S3 connector with the real AWS SDK against s3rver on loopback: the conformance suite,
 * datasets grouped from folders and partitions, CSV / JSON Lines / JSON arrays (gzipped too),
 * classified failures, the address guard, and a large object read with bounded memory.
 */
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprintOf } from "../../connectors/operations.ts";
import { datasetOf, s3, type S3Stream } from "../../connectors/s3.ts";
import type { ConnectorContext, RecordBatch } from "../../connectors/types.ts";
import { ConnectorFailure } from "../../connectors/types.ts";
import {
  closedPort,
  S3RVER_KEY,
  startS3ErrorServer,
  startS3rver,
  startSilentServer,
  type TestS3,
} from "../helpers/s3rver.ts";
import { runConformance } from "./conformance.ts";

const BUCKET = "dafel-data";
const ctx: ConnectorContext = {
  // s3rver listens on loopback: allowed by name here, as an operator would allow a host.
  network: { allowedHosts: ["127.0.0.1"], allowPrivateNetworks: false },
  pool: { min: 0, max: 1, idleTimeoutMs: 1000, connectionTimeoutMs: 1500 },
  filesDir: "/nonexistent",
};

let server: TestS3;
const refusing: { endpoint: string; close(): Promise<void> }[] = [];
let signatureStandIn: { endpoint: string; close(): Promise<void> };
let deniedStandIn: { endpoint: string; close(): Promise<void> };
let silent: { endpoint: string; close(): void };

beforeAll(async () => {
  server = await startS3rver([BUCKET]);
  signatureStandIn = startS3ErrorServer("SignatureDoesNotMatch", 403);
  deniedStandIn = startS3ErrorServer("AccessDenied", 403);
  refusing.push(signatureStandIn, deniedStandIn);
  silent = startSilentServer();

  await server.put(
    BUCKET,
    "data/people/part-1.csv",
    "id,name,score,updated_at\n1,Ada,9.5,2024-01-01\n2,Grace,8,2024-01-02\n3,Linus,,2024-01-03\n",
  );
  await server.put(
    BUCKET,
    "data/people/part-2.csv",
    "id,name,score,updated_at\n4,Ken,7.25,2024-01-04\n5,Barbara,6,2024-01-05\n6,Edsger,5,2024-01-06\n",
  );
  await server.put(
    BUCKET,
    "data/events/year=2024/month=01/part-0.jsonl",
    '{"event":"signup","at":"2024-01-05T10:00:00Z","user":1}\n\n{"event":"login","at":"2024-01-06T11:00:00Z","user":2}\n',
  );
  await server.put(
    BUCKET,
    "data/events/year=2024/month=02/part-0.jsonl.gz",
    gzipSync('{"event":"logout","at":"2024-02-01T09:30:00Z","user":1,"extra":{"a":1}}\n'),
  );
  await server.put(
    BUCKET,
    "data/catalog.json",
    ' [{"sku":"A-1","price":10.5,"tags":["x"]},\n{"sku":"B-2","price":3,"active":true}]\n',
  );
  await server.put(BUCKET, "data/readme.txt", "not a dataset");
  await server.put(BUCKET, "data/broken/rows.csv", "a,b\n1,2\n3,4,5\n");
  await server.put(BUCKET, "elsewhere/outside.csv", "x\n1\n");
});

afterAll(async () => {
  await server.close();
  for (const standIn of refusing) await standIn.close();
  silent.close();
});

function config(overrides: Record<string, unknown> = {}) {
  return {
    bucketName: BUCKET,
    region: "us-east-1",
    accessKey: S3RVER_KEY,
    prefix: "data/",
    endpoint: server.endpoint,
    forcePathStyle: true,
    ...overrides,
  };
}

let counter = 0;
function settings(overrides: Record<string, unknown> = {}, secretKey = S3RVER_KEY) {
  const raw = {
    config: s3.configSchema.parse(config(overrides)),
    secrets: { secretKey },
  };
  counter++;
  return { id: `s3-${counter}`, fingerprint: fingerprintOf(raw), ...raw };
}

async function readAll(stream: string, batchSize = 100, overrides = {}) {
  const batches: RecordBatch[] = [];
  for await (
    const batch of s3.read(settings(overrides), { stream: { name: stream }, batchSize }, ctx)
  ) {
    batches.push(batch);
  }
  return batches.flatMap((batch) => batch.rows);
}

runConformance({
  name: "S3",
  connector: s3,
  ctx,
  settings: () => ({ config: config(), secrets: { secretKey: S3RVER_KEY } }),
  stream: { name: "people", columns: ["id", "name", "score", "updated_at"], rows: 6 },
  cursorColumn: "id",
  failures: [
    {
      name: "an access key the store does not know",
      settings: () => ({
        config: config({ accessKey: "AKIAUNKNOWN" }),
        secrets: { secretKey: "wrong-secret-value" },
      }),
      code: "AUTH_FAILED",
    },
    {
      name: "a secret key whose signature does not match",
      settings: () => ({
        config: config({ endpoint: signatureStandIn.endpoint }),
        secrets: { secretKey: "not-the-secret-key" },
      }),
      code: "AUTH_FAILED",
    },
    {
      name: "a key without access to the bucket",
      settings: () => ({
        config: config({ endpoint: deniedStandIn.endpoint }),
        secrets: { secretKey: S3RVER_KEY },
      }),
      code: "PERMISSION_DENIED",
    },
    {
      name: "a bucket that does not exist",
      settings: () => ({
        config: config({ bucketName: "no-such-bucket" }),
        secrets: { secretKey: S3RVER_KEY },
      }),
      code: "RESOURCE_NOT_FOUND",
    },
    {
      name: "a port nothing listens on",
      settings: () => ({
        config: config({ endpoint: `http://127.0.0.1:${closedPort()}` }),
        secrets: { secretKey: S3RVER_KEY },
      }),
      code: "CONNECTION_REFUSED",
    },
    {
      name: "a server that never answers",
      settings: () => ({
        config: config({ endpoint: silent.endpoint }),
        secrets: { secretKey: S3RVER_KEY },
      }),
      code: "TIMEOUT",
    },
    {
      name: "a cloud metadata address",
      settings: () => ({
        config: config({ endpoint: "http://169.254.169.254" }),
        secrets: { secretKey: S3RVER_KEY },
      }),
      code: "BLOCKED_ADDRESS",
    },
  ],
});

describe("S3 connector", () => {
  it("groups objects into datasets by folder, partitions and format", () => {
    expect(datasetOf("data/people/part-1.csv", "data/")).toBe("people");
    expect(datasetOf("data/events/year=2024/month=01/part-0.jsonl", "data/")).toBe("events");
    expect(datasetOf("data/catalog.json", "data/")).toBe("catalog");
    expect(datasetOf("data/logs.jsonl.gz", "data/")).toBe("logs");
    expect(datasetOf("data/readme.txt", "data/")).toBeNull();
    expect(datasetOf("data/folder/", "data/")).toBeNull();
  });

  it("discovers one stream per dataset with columns from its first object, object counts and sizes", async () => {
    const result = await s3.discover(settings(), ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    const streams = result.value.streams as S3Stream[];
    expect(streams.map((s) => s.name)).toEqual(["broken", "catalog", "events", "people"]);
    const people = streams.find((s) => s.name === "people")!;
    expect(people).toMatchObject({ format: "csv", objects: 2, rowCount: null, kind: "file" });
    expect(people.totalBytes).toBeGreaterThan(100);
    expect(people.columns.map((c) => [c.name, c.type])).toEqual([
      ["id", "integer"],
      ["name", "text"],
      ["score", "number"],
      ["updated_at", "date"],
    ]);
    const events = streams.find((s) => s.name === "events")!;
    expect(events).toMatchObject({ format: "jsonl", objects: 2 });
    expect(events.columns.map((c) => [c.name, c.type])).toEqual([
      ["event", "text"],
      ["at", "timestamp"],
      ["user", "integer"],
    ]);
    const broken = streams.find((s) => s.name === "broken")!;
    expect(broken.problem).toContain("Line 3");
    const catalog = streams.find((s) => s.name === "catalog")!;
    expect(catalog.columns.map((c) => [c.name, c.type])).toEqual([
      ["sku", "text"],
      ["price", "number"],
      ["tags", "array"],
      ["active", "boolean"],
    ]);
  });

  it("previews across the objects of a dataset", async () => {
    const result = await s3.preview(settings(), { stream: { name: "people" }, limit: 4 }, ctx);
    if (!result.ok) throw new Error(JSON.stringify(result.error));
    expect(result.value.rows.map((row) => row.id)).toEqual(["1", "2", "3", "4"]);
    expect(result.value.rows[2].score).toBeNull();
  });

  it("reads JSON Lines through gzip and JSON arrays element by element", async () => {
    const events = await readAll("events");
    expect(events.map((row) => row.event)).toEqual(["signup", "login", "logout"]);
    expect(events[2].extra).toEqual({ a: 1 });
    const catalog = await readAll("catalog");
    expect(catalog).toEqual([
      { sku: "A-1", price: 10.5, tags: ["x"] },
      { sku: "B-2", price: 3, active: true },
    ]);
  });

  it("reports a malformed object as INVALID_RESPONSE naming the object and line", async () => {
    const failure = await readAll("broken").then(() => null, (error) => error);
    expect(failure).toBeInstanceOf(ConnectorFailure);
    expect(failure.error.code).toBe("INVALID_RESPONSE");
    expect(failure.error.message).toContain('"data/broken/rows.csv"');
    expect(failure.error.message).toContain("Line 3");
  });

  it("says RESOURCE_NOT_FOUND for a stream that has no objects", async () => {
    const result = await s3.preview(settings(), { stream: { name: "nothing" }, limit: 1 }, ctx);
    expect(!result.ok && result.error.code).toBe("RESOURCE_NOT_FOUND");
  });

  it("refuses loopback endpoints unless the network policy allows them", async () => {
    const strict: ConnectorContext = {
      ...ctx,
      network: { allowedHosts: [], allowPrivateNetworks: false },
    };
    const result = await s3.test(settings(), strict);
    expect(result.success).toBe(false);
    expect(result.error?.code).toBe("BLOCKED_ADDRESS");
    expect(result.error?.field).toBe("configuration.endpoint");
    expect(result.stages).toEqual([expect.objectContaining({ name: "resolve", ok: false })]);
  });

  it("tests by heading the bucket and listing one key, with timed stages", async () => {
    const result = await s3.test(settings(), ctx);
    expect(result.success, JSON.stringify(result.error)).toBe(true);
    expect(result.stages.map((stage) => stage.name)).toEqual(["resolve", "authenticate", "query"]);
    expect(result.serverInfo).toMatchObject({ bucket: BUCKET, address: "127.0.0.1" });
    expect(String(result.serverInfo?.firstKey)).toMatch(/^data\//);
  });

  it("stops reading when the caller aborts", async () => {
    const controller = new AbortController();
    controller.abort();
    const reading = s3.read(
      settings(),
      { stream: { name: "people" }, batchSize: 1, signal: controller.signal },
      ctx,
    );
    await expect(Array.fromAsync(reading)).rejects.toBeDefined();
  });

  it("streams a 1 GB object with memory far below its size", async () => {
    // 1 GB of JSON Lines, generated chunk by chunk into the store.
    const rows = 1_000_000;
    const encoder = new TextEncoder();
    const filler = "x".repeat(1000);
    const line = (id: number) =>
      encoder.encode(`{"id":${1_000_000_000 + id},"payload":"${filler}"}\n`);
    const lineLength = line(0).length;
    const length = rows * lineLength;
    await server.putStream(BUCKET, "big/large.jsonl", {
      length,
      async *chunks() {
        for (let id = 0; id < rows; id += 1000) {
          const block = new Uint8Array(lineLength * 1000);
          for (let i = 0; i < 1000; i++) block.set(line(id + i), i * lineLength);
          yield block;
        }
      },
    });

    const baseline = Deno.memoryUsage().rss;
    let peak = baseline;
    let count = 0;
    let last = -1;
    for await (
      const batch of s3.read(
        settings({ prefix: "big/" }),
        { stream: { name: "large" }, batchSize: 1000 },
        ctx,
      )
    ) {
      count += batch.rows.length;
      last = batch.rows.at(-1)?.id as number;
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }
    expect(count).toBe(rows);
    expect(last).toBe(1_000_000_000 + rows - 1);
    // Holding the object (or its rows) would grow memory by more than its 1 GB; streaming
    // keeps the growth to a batch, a few socket buffers and the garbage between collections
    // (this process also runs the S3 server, and V8's defaults let garbage pile up to a few
    // hundred MB on a large machine: the bound is half the object, far below holding it).
    const growth = peak - baseline;
    expect(growth, `grew by ${Math.round(growth / 1024 / 1024)} MB`).toBeLessThan(length / 2);
  }, 180_000);
});
