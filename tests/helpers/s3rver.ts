/**
 * S3 servers for tests, on loopback only: a real s3rver (npm) with its default credentials
 * S3RVER / S3RVER, plus two small protocol-level stand-ins for answers s3rver cannot give
 * (it does not verify v4 signatures and has no access policies): one that answers every
 * request with a given S3 error document, and one that accepts connections and never
 * answers.
 */
import { Readable } from "node:stream";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

export const S3RVER_KEY = "S3RVER";

export type TestS3 = {
  endpoint: string;
  port: number;
  /** A client with the right credentials, for putting fixtures. */
  client: S3Client;
  put(bucket: string, key: string, body: string | Uint8Array): Promise<void>;
  /** Puts a body generated chunk by chunk, never held whole. */
  putStream(
    bucket: string,
    key: string,
    options: { length: number; chunks: () => AsyncGenerator<Uint8Array> },
  ): Promise<void>;
  close(): Promise<void>;
};

/**
 * s3rver runs under Node in a child process: it makes list continuation tokens with the
 * DES cipher, which Deno's node:crypto lacks (and Node 17+ keeps behind the legacy
 * OpenSSL provider).
 */
const S3RVER_SCRIPT = `
const S3rver = require(process.env.S3RVER_MODULE);
const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory: process.env.S3RVER_DIR,
  // Names such as "localhost" would otherwise be taken for virtual-host buckets.
  vhostBuckets: false,
  configureBuckets: JSON.parse(process.env.S3RVER_BUCKETS).map((name) => ({ name })),
});
server.run().then(({ port }) => console.log(JSON.stringify({ port })));
process.on("SIGTERM", () => server.close().finally(() => process.exit(0)));
`;

export async function startS3rver(buckets: string[]): Promise<TestS3> {
  const directory = await Deno.makeTempDir({ prefix: "dafel-s3rver-" });
  const child = new Deno.Command("node", {
    args: ["--openssl-legacy-provider", "-e", S3RVER_SCRIPT],
    env: {
      S3RVER_MODULE: new URL("../../node_modules/s3rver", import.meta.url).pathname,
      S3RVER_DIR: directory,
      S3RVER_BUCKETS: JSON.stringify(buckets),
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("s3rver exited before listening");
    output += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { port } = JSON.parse(output.split("\n")[0]) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    // s3rver does not understand aws-chunked uploads with checksum trailers.
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  return {
    endpoint,
    port,
    client,
    async put(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async putStream(bucket, key, options) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: Readable.from(options.chunks()),
          ContentLength: options.length,
        }),
      );
    },
    async close() {
      client.destroy();
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(directory, { recursive: true }).catch(() => {});
    },
  };
}

/** Answers every request with an S3 error document (`<Error><Code>...`). */
export function startS3ErrorServer(
  code: string,
  status: number,
): { endpoint: string; close(): Promise<void> } {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
        `<Message>Stand-in refusal</Message><RequestId>standin</RequestId></Error>`;
      const body = request.method === "HEAD" ? null : xml;
      return new Response(body, {
        status,
        headers: { "content-type": "application/xml", "x-amz-request-id": "standin" },
      });
    },
  );
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

/** Accepts TCP connections and never answers: a server that hangs. */
export function startSilentServer(): { endpoint: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // Already closed by the peer.
        }
      }
      listener.close();
    },
  };
}

/** A loopback port with nothing listening on it. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
