/**
 * The outbound-address guard, used by every connector that opens a network connection.
 *
 * A host is resolved once, every address it resolves to is checked, and the connector then
 * connects to a checked address (never resolving the name again, so a rebinding DNS answer
 * cannot slip a different address in). Always refused: link-local and cloud metadata
 * addresses, however they are written (decimal, hex, IPv4-mapped IPv6). HTTP connectors
 * also refuse loopback and private ranges unless ALLOW_PRIVATE_NETWORKS=true or the host
 * is in ALLOWED_HOSTS (a name, an address or a CIDR range).
 */
import { lookup } from "node:dns/promises";
import type { LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";
import type { ConnectorContext, ConnectorError, Result } from "./types.ts";

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Databases usually live on private networks; HTTP endpoints usually do not. */
export type Purpose = "database" | "http";

export type CheckedHost = {
  /** The name as configured (for TLS server name and Host headers). */
  host: string;
  /** Every address the name resolved to, all checked; connect to the first. */
  addresses: { address: string; family: 4 | 6 }[];
};

const METADATA_V4 = ["169.254.0.0/16", "100.100.100.200/32"].map((cidr) => ipaddr.parseCIDR(cidr));
const METADATA_V6 = ["fe80::/10", "fd00:ec2::254/128"].map((cidr) => ipaddr.parseCIDR(cidr));
/** Ranges an HTTP connector may reach only when private networks are allowed. */
const PRIVATE_RANGES = new Set([
  "unspecified",
  "broadcast",
  "multicast",
  "loopback",
  "private",
  "carrierGradeNat",
  "reserved",
  "uniqueLocal",
  "deprecatedSiteLocal",
  "discard",
  "benchmarking",
]);

/**
 * Parses an address written in any form a resolver or a URL parser would accept:
 * dotted, decimal (2852039166), hex (0xA9FEA9FE), octal, bracketed IPv6.
 */
export function parseAddress(text: string): Address | null {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  try {
    if (ipaddr.IPv6.isValid(bare)) return ipaddr.IPv6.parse(bare.replace(/%.*$/, ""));
    if (ipaddr.IPv4.isValid(bare)) return ipaddr.IPv4.parse(bare);
  } catch {
    return null;
  }
  return null;
}

/**
 * The IPv4 address hidden in an IPv6 one (mapped, translated, NAT64, 6to4, the deprecated
 * IPv4-compatible form), if any: each can carry traffic to that IPv4 address.
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  if (address.isIPv4MappedAddress()) return address.toIPv4Address();
  const range = address.range();
  const bytes = address.toByteArray();
  if (range === "rfc6052" || range === "rfc6145") return new ipaddr.IPv4(bytes.slice(12, 16));
  if (range === "6to4") return new ipaddr.IPv4(bytes.slice(2, 6));
  const compatible = bytes.slice(0, 12).every((byte) => byte === 0) &&
    range !== "unspecified" && range !== "loopback";
  if (compatible) return new ipaddr.IPv4(bytes.slice(12, 16));
  return null;
}

export type AddressVerdict =
  | { allowed: true }
  | { allowed: false; reason: "metadata" | "private"; range: string };

/** Decides whether an address may be reached for a purpose under the network policy. */
export function judgeAddress(
  address: Address,
  purpose: Purpose,
  options: { allowPrivate: boolean },
): AddressVerdict {
  let ip: Address = address;
  if (ip.kind() === "ipv6") {
    const inner = embeddedIPv4(ip as ipaddr.IPv6);
    if (inner) ip = inner;
  }
  const metadata = ip.kind() === "ipv4"
    ? METADATA_V4.some((range) => (ip as ipaddr.IPv4).match(range as [ipaddr.IPv4, number]))
    : METADATA_V6.some((range) => (ip as ipaddr.IPv6).match(range as [ipaddr.IPv6, number]));
  if (metadata) return { allowed: false, reason: "metadata", range: "link-local / cloud metadata" };
  if (purpose === "database" || options.allowPrivate) return { allowed: true };
  const range = ip.range();
  if (PRIVATE_RANGES.has(range)) return { allowed: false, reason: "private", range };
  return { allowed: true };
}

/**
 * True when ALLOWED_HOSTS names this host (`api.internal`, or `*.internal` for any name
 * under it), or lists an address or CIDR range that holds the resolved address.
 */
export function isAllowListed(
  host: string,
  address: Address | null,
  allowedHosts: string[],
): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  for (const raw of allowedHosts) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === name) return true;
    if (entry.startsWith("*.") && name.endsWith(entry.slice(1))) return true;
    if (!address) continue;
    if (entry.includes("/")) {
      try {
        const range = ipaddr.parseCIDR(entry);
        if (range[0].kind() === address.kind() && address.match(range)) return true;
      } catch {
        // Not a CIDR range: a name, compared above.
      }
    } else {
      const listed = parseAddress(entry);
      if (listed && listed.kind() === address.kind() && listed.toString() === address.toString()) {
        return true;
      }
    }
  }
  return false;
}

function blocked(host: string, address: string, verdict: AddressVerdict & { allowed: false }) {
  const error: ConnectorError = verdict.reason === "metadata"
    ? {
      code: "BLOCKED_ADDRESS",
      message: `Refused to connect to ${address}${host === address ? "" : ` (${host})`}: ` +
        "link-local and cloud metadata addresses are never reachable",
      hint: "Check the host: it points at an address reserved for cloud instance metadata",
      field: "host",
    }
    : {
      code: "BLOCKED_ADDRESS",
      message: `Refused to connect to ${address}${host === address ? "" : ` (${host})`}: ` +
        `${verdict.range} addresses are not reachable by API connectors`,
      hint: "To reach an internal service, add its host to ALLOWED_HOSTS (or set " +
        "ALLOW_PRIVATE_NETWORKS=true) on the server",
      field: "endpoint",
    };
  return { ok: false as const, error };
}

/** A resolver that does not answer within this is as good as none. */
const RESOLVE_TIMEOUT_MS = 10_000;

function resolveWithin(host: string, ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error("DNS timeout"), { code: "ETIMEOUT" })),
      ms,
    );
  });
  return Promise.race([lookup(host, { all: true, verbatim: true }), timeout]).finally(() =>
    clearTimeout(timer)
  );
}

const DNS_CODES: Record<string, ConnectorError["code"]> = {
  ENOTFOUND: "HOST_NOT_FOUND",
  EAI_NONAME: "HOST_NOT_FOUND",
  EAI_NODATA: "HOST_NOT_FOUND",
  EAI_AGAIN: "HOST_NOT_FOUND",
  ETIMEOUT: "TIMEOUT",
};

/**
 * Resolves `host` and checks every address. The result lists the checked addresses to
 * connect to; a refused address makes the whole host refused.
 */
export async function checkHost(
  host: string,
  purpose: Purpose,
  network: ConnectorContext["network"],
): Promise<Result<CheckedHost>> {
  const field = purpose === "http" ? "endpoint" : "host";
  const literal = parseAddress(host);
  let resolved: { address: string; family: 4 | 6 }[];
  if (literal) {
    resolved = [{ address: literal.toString(), family: literal.kind() === "ipv4" ? 4 : 6 }];
  } else {
    try {
      const answers = await resolveWithin(host, RESOLVE_TIMEOUT_MS);
      resolved = answers.map((answer) => ({
        address: answer.address,
        family: answer.family === 6 ? 6 : 4,
      }));
    } catch (error) {
      const code = (error as { code?: string }).code ?? "";
      return {
        ok: false,
        error: {
          code: DNS_CODES[code] ?? "HOST_NOT_FOUND",
          message: code === "ETIMEOUT"
            ? `Resolving host "${host}" took longer than ${RESOLVE_TIMEOUT_MS / 1000} s`
            : `Cannot resolve host "${host}"${code ? ` (${code})` : ""}`,
          hint: `Check the ${field}: the name does not resolve from the server`,
          field,
        },
      };
    }
    if (resolved.length === 0) {
      return {
        ok: false,
        error: {
          code: "HOST_NOT_FOUND",
          message: `Host "${host}" has no addresses`,
          hint: `Check the ${field}`,
          field,
        },
      };
    }
  }
  for (const { address } of resolved) {
    const refusal = refusalFor(host, address, { purpose, network });
    if (refusal) return { ok: false, error: { ...refusal, field } };
  }
  return { ok: true, value: { host, addresses: resolved } };
}

function refusalFor(
  host: string,
  address: string,
  options: { purpose: Purpose; network: ConnectorContext["network"] },
): ConnectorError | null {
  const parsed = parseAddress(address);
  if (!parsed) return null;
  const allowPrivate = options.network.allowPrivateNetworks ||
    isAllowListed(host, parsed, options.network.allowedHosts);
  const verdict = judgeAddress(parsed, options.purpose, { allowPrivate });
  return verdict.allowed ? null : blocked(host, address, verdict).error;
}

/**
 * The guard's verdict on a host written as an address, without resolving anything: the
 * refusal, or null when it is allowed or is a name (names go through `checkHost`). For
 * addresses a library would connect to without a lookup (node skips `lookup` for them).
 */
export function refusedLiteral(
  host: string,
  purpose: Purpose,
  network: ConnectorContext["network"],
): ConnectorError | null {
  const literal = parseAddress(host);
  return literal ? refusalFor(host, literal.toString(), { purpose, network }) : null;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address?: string | LookupAddress[],
  family?: number,
) => void;

function answerLookup(
  addresses: CheckedHost["addresses"],
  options: unknown,
  done: LookupCallback,
) {
  const wanted = typeof options === "object" && options !== null
    ? options as { all?: boolean; family?: number | string }
    : {};
  const family = wanted.family === "IPv6" ? 6 : wanted.family === "IPv4" ? 4 : wanted.family;
  const matching = family === 4 || family === 6
    ? addresses.filter((entry) => entry.family === family)
    : addresses;
  const answers = matching.length ? matching : addresses;
  if (wanted.all) done(null, answers);
  else done(null, answers[0].address, answers[0].family);
}

/**
 * A `lookup` function for node:net/tls/http options that answers with the checked
 * addresses only, so a library cannot resolve the name a second time.
 */
export function pinnedLookup(checked: CheckedHost): LookupFunction {
  return function lookupPinned(hostname, options, callback) {
    const done = (typeof options === "function" ? options : callback) as LookupCallback;
    if (hostname.toLowerCase() !== checked.host.toLowerCase()) {
      // A library asking for another name than the one checked: refuse, never resolve it.
      const error = new AddressGuardError({
        code: "BLOCKED_ADDRESS",
        message: `Refused to resolve "${hostname}": only the checked host may be reached here`,
        hint: "Check the host",
      });
      queueMicrotask(() => done(error));
      return;
    }
    queueMicrotask(() => answerLookup(checked.addresses, options, done));
  };
}

/** A refusal raised inside a driver's socket lookup; drivers wrap it, connectors find it. */
export class AddressGuardError extends Error {
  override name = "AddressGuardError";
  /** errno-style, for drivers that look at `code` on lookup errors. */
  readonly code: string;
  constructor(readonly error: ConnectorError) {
    super(error.message);
    this.code = error.code === "BLOCKED_ADDRESS" ? "EBLOCKED" : "ENOTFOUND";
  }
}

/**
 * A `lookup` function for drivers that discover further hosts by themselves (replica set
 * members, SRV records): every name a driver asks for is resolved once and checked, and
 * the connection goes to the address that was checked. Names checked beforehand (the test's
 * resolve stage) are answered from that check without resolving again.
 */
export function guardedLookup(
  network: ConnectorContext["network"],
  options: { purpose: Purpose; checked?: CheckedHost[]; field?: string },
): LookupFunction {
  const known = new Map(
    (options.checked ?? []).map((entry) => [entry.host.toLowerCase(), entry.addresses]),
  );
  return function lookupGuarded(hostname, lookupOptions, callback) {
    const done = (typeof lookupOptions === "function" ? lookupOptions : callback) as LookupCallback;
    const name = hostname.toLowerCase();
    const cached = known.get(name);
    if (cached) {
      queueMicrotask(() => answerLookup(cached, lookupOptions, done));
      return;
    }
    checkHost(hostname, options.purpose, network).then((result) => {
      if (!result.ok) {
        done(
          new AddressGuardError(
            options.field ? { ...result.error, field: options.field } : result.error,
          ),
        );
        return;
      }
      known.set(name, result.value.addresses);
      answerLookup(result.value.addresses, lookupOptions, done);
    }, (error) => done(error));
  };
}

/** The guard's refusal somewhere in an error's causes (drivers wrap lookup errors). */
export function findGuardError(error: unknown, depth = 0): ConnectorError | null {
  if (depth > 8 || typeof error !== "object" || error === null) return null;
  if (error instanceof AddressGuardError) return error.error;
  const inner = error as { cause?: unknown; errors?: unknown[] };
  if (Array.isArray(inner.errors)) {
    for (const each of inner.errors) {
      const found = findGuardError(each, depth + 1);
      if (found) return found;
    }
  }
  return findGuardError(inner.cause, depth + 1);
}
