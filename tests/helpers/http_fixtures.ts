/**
 * Real servers for the HTTP connectors' tests, all on loopback: an HTTP(S) server with a
 * handler the test writes, a port that accepts connections and never answers (for
 * timeouts), and a port nothing listens on (for refused connections).
 */
import type { ConnectorContext } from "../../connectors/types.ts";

/**
 * A self-signed certificate for `pinned.test`, `localhost` and 127.0.0.1, valid until 2126.
 * Test-only key material: it protects nothing.
 */
export const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBrTCCAVKgAwIBAgIURQeowelkOB7dZzNHI7pSuFp2npowCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcGlubmVkLnRlc3QwIBcNMjYxMTI4MDY1MDUzWhgPMjEyNjEx
MDQwNjUwNTNaMBYxFDASBgNVBAMMC3Bpbm5lZC50ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEa202IYn1LhTisIXw74EJkezK/j/jP/G+KR2M0szOr5imQTH9
j2YO0tTddadfsas0pkYr3LBhCwzRrOYkDMHTx6N8MHowHQYDVR0OBBYEFIGkYFlu
Oa7LYgQi5keRXhAbNHPkMB8GA1UdIwQYMBaAFIGkYFluOa7LYgQi5keRXhAbNHPk
MA8GA1UdEwEB/wQFMAMBAf8wJwYDVR0RBCAwHoILcGlubmVkLnRlc3SCCWxvY2Fs
aG9zdIcEfwAAATAKBggqhkjOPQQDAgNJADBGAiEA9DJil6q0Jepyyn3/UXWPuf03
1WhPwNIaDPvgdBlvKK0CIQCWdQL+ZvpVWMkdZCoPBqb3iTHsA/AwngEKaDhWXktO
8g==
-----END CERTIFICATE-----
`;
export const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrTe58shMX9AHUOMS
/jsA8RFeDfxT1THGakBBEW1f/GWhRANCAARrbTYhifUuFOKwhfDvgQmR7Mr+P+M/
8b4pHYzSzM6vmKZBMf2PZg7S1N11p1+xqzSmRivcsGELDNGs5iQMwdPH
-----END PRIVATE KEY-----
`;

/**
 * A name that fails to resolve without any DNS traffic: a label over 63 characters is
 * refused by the resolver library before a query is built. (An ordinary unknown name would
 * send a query to the machine's resolver, which is not on loopback.)
 */
export const UNRESOLVABLE_HOST = `${"x".repeat(64)}.invalid`;

/** The policy the connectors' tests run under: the loopback test servers are allow-listed. */
export function loopbackContext(
  network: Partial<ConnectorContext["network"]> = {},
): ConnectorContext {
  return {
    network: { allowedHosts: ["127.0.0.1"], allowPrivateNetworks: false, ...network },
    pool: { min: 0, max: 4, idleTimeoutMs: 5_000, connectionTimeoutMs: 2_000 },
    filesDir: "/nonexistent",
  };
}

export type SeenRequest = {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
  /** The address the connection came from. */
  remote: string;
};

export type TestServer = {
  /** `http://127.0.0.1:<port>` (or https). */
  origin: string;
  port: number;
  /** Every request the server received, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
};

/** An HTTP server on 127.0.0.1 running `handler`; with `tls`, an HTTPS one. */
export function startHttpServer(
  handler: (request: Request, url: URL) => Response | Promise<Response>,
  options: { tls?: boolean } = {},
): TestServer {
  const seen: SeenRequest[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...(options.tls ? { cert: TEST_CERT, key: TEST_KEY } : {}),
  }, async (request, info) => {
    const url = new URL(request.url);
    const body = await request.clone().text();
    seen.push({
      method: request.method,
      url,
      headers: request.headers,
      body,
      remote: (info.remoteAddr as Deno.NetAddr).hostname,
    });
    return await handler(request, url);
  });
  const port = server.addr.port;
  return {
    origin: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    seen,
    close: () => server.shutdown(),
  };
}

/** A loopback port that accepts connections and never says a word (for timeouts). */
export function startSilentServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) open.push(conn);
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      listener.close();
    },
  };
}

/** A loopback port nothing listens on (connections are refused). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export function json(value: unknown, init: ResponseInit = {}): Response {
  return new Response(JSON.stringify(value), {
    ...init,
    headers: { "content-type": "application/json", ...init.headers },
  });
}
