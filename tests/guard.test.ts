/**
 * The outbound-address guard and the guarded HTTP path: which addresses each purpose may
 * reach, how the allow-list and ALLOW_PRIVATE_NETWORKS change that (never for metadata),
 * that connections go to the checked address, and that redirects are checked the same way.
 */
import { createConnection } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  AddressGuardError,
  checkHost,
  findGuardError,
  guardedLookup,
  isAllowListed,
  parseAddress,
  pinnedLookup,
} from "../connectors/_guard.ts";
import { httpRequest, requestPinned } from "../connectors/_http.ts";
import type { ConnectorContext } from "../connectors/types.ts";
import {
  closedPort,
  json,
  startHttpServer,
  startSilentServer,
  TEST_CERT,
  type TestServer,
  UNRESOLVABLE_HOST,
} from "./helpers/http_fixtures.ts";

type Network = ConnectorContext["network"];
const strict: Network = { allowedHosts: [], allowPrivateNetworks: false };
const open: Network = { allowedHosts: [], allowPrivateNetworks: true };

const METADATA_FORMS = [
  "169.254.169.254",
  "169.254.0.1",
  "2852039166",
  "0xA9FEA9FE",
  "0xa9.0xfe.0xa9.0xfe",
  "0251.0376.0251.0376",
  "::ffff:169.254.169.254",
  "[::ffff:a9fe:a9fe]",
  "::ffff:0:a9fe:a9fe",
  "64:ff9b::a9fe:a9fe",
  "64:ff9b::169.254.169.254",
  "2002:a9fe:a9fe::1",
  "::169.254.169.254",
  "::a9fe:a9fe",
  "fe80::1",
  "fd00:ec2::254",
  "100.100.100.200",
];

const PRIVATE_FORMS = [
  "127.0.0.1",
  "127.1",
  "2130706433",
  "10.1.2.3",
  "172.16.0.1",
  "192.168.1.1",
  "100.64.0.1",
  "0.0.0.0",
  "224.0.0.1",
  "::1",
  "[::1]",
  "fc00::1",
  "fd12:3456::1",
  "::ffff:127.0.0.1",
  "::ffff:10.0.0.1",
  "64:ff9b::a00:1",
];

const PUBLIC_FORMS = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"];

describe("the address table", () => {
  it.each(METADATA_FORMS)(
    "refuses metadata address %s for every purpose and policy",
    async (host) => {
      const lenient: Network = {
        allowPrivateNetworks: true,
        allowedHosts: [host.toLowerCase(), "169.254.0.0/16", "0.0.0.0/0", "::/0"],
      };
      for (const purpose of ["http", "database"] as const) {
        for (const network of [strict, open, lenient]) {
          const result = await checkHost(host, purpose, network);
          expect(result.ok, `${purpose} ${JSON.stringify(network)}`).toBe(false);
          if (!result.ok) {
            expect(result.error.code).toBe("BLOCKED_ADDRESS");
            expect(result.error.message).toMatch(/metadata/);
          }
        }
      }
    },
  );

  it.each(PRIVATE_FORMS)("refuses private or loopback %s for HTTP by default", async (host) => {
    const result = await checkHost(host, "http", strict);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe("BLOCKED_ADDRESS");
      expect(result.error.hint).toMatch(/ALLOWED_HOSTS/);
      expect(result.error.field).toBe("endpoint");
    }
  });

  it.each(PRIVATE_FORMS)("lets databases reach private or loopback %s", async (host) => {
    expect((await checkHost(host, "database", strict)).ok).toBe(true);
  });

  it.each(PRIVATE_FORMS)("lets HTTP reach %s when private networks are allowed", async (host) => {
    expect((await checkHost(host, "http", open)).ok).toBe(true);
  });

  it.each(PUBLIC_FORMS)("lets HTTP reach public address %s", async (host) => {
    const result = await checkHost(host, "http", strict);
    expect(result.ok).toBe(true);
  });

  it("reads numeric URL hosts the way a URL parser does before judging them", async () => {
    for (const url of ["http://2852039166/", "http://0xA9FEA9FE/", "http://[::ffff:a9fe:a9fe]/"]) {
      const result = await checkHost(new URL(url).hostname, "http", open);
      expect(result.ok, url).toBe(false);
    }
  });
});

describe("names and the allow-list", () => {
  it("refuses a DNS name that resolves to a loopback address for HTTP", async () => {
    const result = await checkHost("localhost", "http", strict);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe("BLOCKED_ADDRESS");
      expect(result.error.message).toContain("localhost");
    }
  });

  it("lets a database reach a name that resolves to loopback", async () => {
    const result = await checkHost("localhost", "database", strict);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.value.addresses.map((a) => a.address)).toContain("127.0.0.1");
  });

  it.each([
    ["its name", ["localhost"]],
    ["its name in capitals", ["LOCALHOST"]],
    ["its address", ["127.0.0.1"]],
    ["a CIDR range holding its address", ["127.0.0.0/8"]],
    ["a range among other entries", ["api.example.com", "10.0.0.0/8", "127.0.0.0/24"]],
  ])("allows an HTTP host listed in ALLOWED_HOSTS by %s", async (_, allowedHosts) => {
    const result = await checkHost("localhost", "http", {
      allowedHosts,
      allowPrivateNetworks: false,
    });
    expect(result.ok).toBe(true);
  });

  it.each([
    ["another name", ["api.internal"]],
    ["another range", ["10.0.0.0/8"]],
    ["another address", ["127.0.0.2"]],
  ])("keeps refusing a host the allow-list does not cover (%s)", async (_, allowedHosts) => {
    const result = await checkHost("localhost", "http", {
      allowedHosts,
      allowPrivateNetworks: false,
    });
    expect(result.ok).toBe(false);
  });

  it("allows names under a wildcard entry and nothing else", () => {
    const address = parseAddress("10.0.0.5");
    const listed = (host: string) => isAllowListed(host, address, ["*.internal.test"]);
    expect(listed("api.internal.test")).toBe(true);
    expect(listed("a.b.internal.test")).toBe(true);
    expect(listed("internal.test")).toBe(false);
    expect(listed("evilinternal.test")).toBe(false);
    expect(listed("10.0.0.5")).toBe(false);
  });

  it("says a name that does not resolve is not found", async () => {
    const result = await checkHost(UNRESOLVABLE_HOST, "http", strict);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe("HOST_NOT_FOUND");
  });
});

describe("lookups handed to drivers", () => {
  it("answers a pinned lookup with the checked address and refuses any other name", async () => {
    const lookup = pinnedLookup({
      host: "pinned.test",
      addresses: [{ address: "127.0.0.1", family: 4 }],
    });
    const answer = await new Promise<unknown[]>((resolve) =>
      lookup("pinned.test", { all: true }, (...args: unknown[]) => resolve(args))
    );
    expect(answer).toEqual([null, [{ address: "127.0.0.1", family: 4 }]]);
    const other = await new Promise<unknown[]>((resolve) =>
      lookup("elsewhere.test", {}, (...args: unknown[]) => resolve(args))
    );
    expect(other[0]).toBeInstanceOf(AddressGuardError);
  });

  it("checks every name a driver resolves and connects only to allowed addresses", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const accepted = (async () => {
      const conn = await listener.accept();
      conn.close();
      return true;
    })();
    const connect = (network: Network) =>
      new Promise<unknown>((resolve) => {
        const socket = createConnection({
          host: "localhost",
          port,
          lookup: guardedLookup(network, { purpose: "http" }),
        });
        socket.once("connect", () => {
          socket.destroy();
          resolve("connected");
        });
        socket.once("error", (error) => resolve(error));
      });
    const refused = await connect(strict);
    expect(findGuardError(refused)?.code).toBe("BLOCKED_ADDRESS");
    expect(await connect({ allowedHosts: ["localhost"], allowPrivateNetworks: false })).toBe(
      "connected",
    );
    expect(await accepted).toBe(true);
    listener.close();
  });
});

describe("guarded HTTP requests", () => {
  const servers: TestServer[] = [];
  const serve = (...args: Parameters<typeof startHttpServer>) => {
    const server = startHttpServer(...args);
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });
  const loopback: Network = { allowedHosts: ["127.0.0.1"], allowPrivateNetworks: false };

  it("connects to the checked address without resolving the name again", async () => {
    const server = serve((request) => new Response(`host=${request.headers.get("host")}`));
    // pinned.test resolves nowhere: the request can only arrive through the pinned address.
    const outcome = await requestPinned(
      { host: "pinned.test", addresses: [{ address: "127.0.0.1", family: 4 }] },
      {
        call: { url: `http://pinned.test:${server.port}/hello` },
        timeoutMs: 5_000,
        maxBytes: 1024,
      },
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(new TextDecoder().decode(outcome.body)).toBe(`host=pinned.test:${server.port}`);
    expect(server.seen.at(-1)?.remote).toBe("127.0.0.1");
    expect(outcome.stages.map((stage) => stage.name)).toEqual(["connect", "query"]);
  });

  it("verifies TLS against the configured name while connecting to the pinned address", async () => {
    const server = serve(() => new Response("secure"), { tls: true });
    const checked = {
      host: "pinned.test",
      addresses: [{ address: "127.0.0.1", family: 4 as const }],
    };
    const call = { url: `https://pinned.test:${server.port}/` };
    const trusted = await requestPinned(checked, {
      call,
      timeoutMs: 5_000,
      maxBytes: 1024,
      ca: TEST_CERT,
    });
    expect(trusted.ok, JSON.stringify(!trusted.ok && trusted.error)).toBe(true);
    if (trusted.ok) {
      expect(trusted.stages.map((stage) => [stage.name, stage.ok])).toEqual([
        ["connect", true],
        ["tls", true],
        ["query", true],
      ]);
    }
    const untrusted = await requestPinned(checked, { call, timeoutMs: 5_000, maxBytes: 1024 });
    expect(untrusted.ok).toBe(false);
    if (!untrusted.ok) {
      expect(untrusted.error.code).toBe("TLS_ERROR");
      expect(untrusted.stages.find((stage) => stage.name === "tls")?.ok).toBe(false);
    }
  });

  it("reaches a loopback name only when ALLOWED_HOSTS lists it", async () => {
    const server = serve(() => json({ ok: true }));
    const url = `http://localhost:${server.port}/`;
    const before = server.seen.length;
    const refused = await httpRequest({ url }, { network: strict, timeoutMs: 5_000 });
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.error.code).toBe("BLOCKED_ADDRESS");
      expect(refused.stages).toEqual([{ name: "resolve", ok: false, ms: expect.any(Number) }]);
    }
    expect(server.seen.length).toBe(before);
    const allowed = await httpRequest({ url }, {
      network: { allowedHosts: ["localhost"], allowPrivateNetworks: false },
      timeoutMs: 5_000,
    });
    expect(allowed.ok).toBe(true);
    if (allowed.ok) expect(allowed.reply.status).toBe(200);
  });

  it.each([
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://10.0.0.1/admin",
    "http://[::1]/",
  ])("refuses a redirect to %s", async (target) => {
    const server = serve(() => new Response(null, { status: 302, headers: { location: target } }));
    const outcome = await httpRequest(
      { url: `${server.origin}/start` },
      { network: loopback, timeoutMs: 5_000 },
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.error.code).toBe("BLOCKED_ADDRESS");
      expect(outcome.error.message).toMatch(/^Redirect from/);
    }
  });

  it("follows allowed redirects and keeps credentials on the same origin only", async () => {
    const other = serve((request) =>
      json({
        authorization: request.headers.get("authorization"),
        key: request.headers.get("x-key"),
      })
    );
    const first = serve((_, url) => {
      if (url.pathname === "/start") {
        return new Response(null, { status: 301, headers: { location: "/moved" } });
      }
      if (url.pathname === "/moved") {
        return new Response(null, { status: 307, headers: { location: `${other.origin}/final` } });
      }
      return new Response("no", { status: 404 });
    });
    const outcome = await httpRequest(
      {
        url: `${first.origin}/start`,
        headers: { authorization: "Bearer s3cret-token", "x-key": "k3y-value", accept: "*/*" },
      },
      { network: loopback, timeoutMs: 5_000, sensitiveHeaders: ["X-Key"] },
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.reply.url).toBe(`${other.origin}/final`);
    expect(JSON.parse(new TextDecoder().decode(outcome.reply.body))).toEqual({
      authorization: null,
      key: null,
    });
    expect(first.seen.at(-1)?.headers.get("authorization")).toBe("Bearer s3cret-token");
  });

  it("turns a POST into a GET after 303 See Other", async () => {
    const server = serve((request, url) =>
      url.pathname === "/submit"
        ? new Response(null, { status: 303, headers: { location: "/result" } })
        : json({ method: request.method })
    );
    const outcome = await httpRequest(
      { url: `${server.origin}/submit`, method: "POST", body: "{}" },
      { network: loopback, timeoutMs: 5_000 },
    );
    expect(outcome.ok && JSON.parse(new TextDecoder().decode(outcome.reply.body))).toEqual({
      method: "GET",
    });
  });

  it("gives up after too many redirects", async () => {
    const server = serve(() =>
      new Response(null, { status: 302, headers: { location: "/again" } })
    );
    const outcome = await httpRequest({ url: server.origin }, {
      network: loopback,
      timeoutMs: 5_000,
    });
    expect(!outcome.ok && outcome.error.code).toBe("INVALID_RESPONSE");
  });

  it("refuses a body over the size limit, counted after decompression", async () => {
    const big = "x".repeat(64 * 1024);
    const server = serve((_, url) =>
      url.pathname === "/bomb"
        ? new Response(gzipSync(new TextEncoder().encode(big)), {
          headers: { "content-encoding": "gzip", "content-type": "text/plain" },
        })
        : new Response(big)
    );
    for (const path of ["/plain", "/bomb"]) {
      const outcome = await httpRequest(
        { url: `${server.origin}${path}` },
        { network: loopback, timeoutMs: 5_000, maxBytes: 4096 },
      );
      expect(outcome.ok, path).toBe(false);
      if (!outcome.ok) {
        expect(outcome.error.code).toBe("INVALID_RESPONSE");
        expect(outcome.error.field).toBe("maxResponseBytes");
      }
    }
    const fits = await httpRequest(
      { url: `${server.origin}/bomb` },
      { network: loopback, timeoutMs: 5_000, maxBytes: 128 * 1024 },
    );
    expect(fits.ok && new TextDecoder().decode(fits.reply.body)).toBe(big);
  });

  it("times out on a server that accepts the connection and never answers", async () => {
    const silent = startSilentServer();
    try {
      const outcome = await httpRequest(
        { url: `http://127.0.0.1:${silent.port}/` },
        { network: loopback, timeoutMs: 300 },
      );
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) {
        expect(outcome.error.code).toBe("TIMEOUT");
        expect(outcome.stages.find((stage) => stage.name === "query")?.ok).toBe(false);
      }
    } finally {
      silent.close();
    }
  });

  it("classifies a refused connection at the connect stage", async () => {
    const outcome = await httpRequest(
      { url: `http://127.0.0.1:${closedPort()}/` },
      { network: loopback, timeoutMs: 5_000 },
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.error.code).toBe("CONNECTION_REFUSED");
      expect(outcome.stages.map((stage) => [stage.name, stage.ok])).toEqual([
        ["resolve", true],
        ["connect", false],
      ]);
    }
  });

  it("reports a TLS failure when https meets a plain HTTP port", async () => {
    const server = serve(() => new Response("plain"));
    const outcome = await httpRequest(
      { url: `https://127.0.0.1:${server.port}/` },
      { network: loopback, timeoutMs: 5_000 },
    );
    expect(!outcome.ok && outcome.error.code).toBe("TLS_ERROR");
  });

  it("says a server that does not speak HTTP gave an invalid response", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const conn of listener) {
        await conn.write(new TextEncoder().encode("SSH-2.0-OpenSSH_9.2\r\n"));
        conn.close();
      }
    })().catch(() => {});
    try {
      const outcome = await httpRequest(
        { url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/` },
        { network: loopback, timeoutMs: 5_000 },
      );
      expect(!outcome.ok && outcome.error.code).toBe("INVALID_RESPONSE");
    } finally {
      listener.close();
    }
  });
});
