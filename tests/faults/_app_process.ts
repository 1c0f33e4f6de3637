// deno-lint-ignore-file no-explicit-any
/**
 * The app as an operator runs it, for the fault tests: a child `deno run -A main.ts` with
 * the given environment on a free loopback port, its JSON log lines collected, calls over
 * real HTTP. It can be killed (SIGKILL) and started again on the same environment.
 * Secrets it was given and everything it answered and logged go to the suite's secret scan.
 */
import { recordOutput, recordSecrets, secretsInRequest } from "../helpers/secret_scan.ts";
import { waitFor } from "../helpers/sync.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

export type Reply = { status: number; headers: Headers; text: string; body: any };

export type CallOptions = {
  json?: unknown;
  token?: string;
  cookie?: string;
  /** Fail (with a message naming the call) when no answer has come in this long. */
  withinMs?: number;
};

export type AppProcess = {
  readonly pid: number;
  readonly origin: string;
  /** Every log line written so far (stdout: JSON lines; stderr lines are kept too). */
  readonly lines: string[];
  readonly status: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  exited(): boolean;
  call(method: string, path: string, options?: CallOptions): Promise<Reply>;
  /** Sends a signal and waits for the process to end. */
  kill(signal: Deno.Signal): Promise<Deno.CommandStatus>;
};

/** A loopback port nothing listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function collect(stream: ReadableStream<Uint8Array>, lines: string[]) {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    const chunk = decoder.decode(bytes, { stream: true });
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    lines.push(...parts.filter(Boolean));
  }
  if (rest) lines.push(rest);
}

/**
 * Starts the app with `env` (PORT is chosen here) and waits until it serves
 * /api/health; fails with its output when it exits first.
 */
export async function startAppProcess(
  env: Record<string, string>,
  options: { secrets?: string[] } = {},
): Promise<AppProcess> {
  recordSecrets(options.secrets ?? []);
  const port = freePort();
  const child = new Deno.Command("deno", {
    args: ["run", "-A", MAIN],
    cwd: ROOT,
    env: { LOG_LEVEL: "info", ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const output = Promise.all([collect(child.stdout, lines), collect(child.stderr, lines)]);
  let done = false;
  const status = child.status.then(async (status) => {
    done = true;
    await output.catch(() => {});
    recordOutput("log", lines.join("\n"));
    return status;
  });
  const origin = `http://127.0.0.1:${port}`;

  async function call(method: string, path: string, call: CallOptions = {}): Promise<Reply> {
    const headers = new Headers();
    if (call.json !== undefined) {
      headers.set("content-type", "application/json");
      recordSecrets(secretsInRequest(call.json));
    }
    if (call.token) headers.set("authorization", `Bearer ${call.token}`);
    if (call.cookie) {
      headers.set("cookie", call.cookie);
      headers.set("origin", origin);
    }
    const signal = call.withinMs === undefined ? undefined : AbortSignal.timeout(call.withinMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${origin}${path}`, {
        method,
        headers,
        body: call.json === undefined ? undefined : JSON.stringify(call.json),
        redirect: "manual",
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (!signal?.aborted) throw error;
      throw new Error(`${method} ${path} did not answer within ${call.withinMs} ms`);
    }
    const html = response.headers.get("content-type")?.includes("html");
    recordOutput(html ? "page" : "response", `${response.status}\n${text}`);
    const body = response.headers.get("content-type")?.includes("json") && text
      ? JSON.parse(text)
      : undefined;
    return { status: response.status, headers: response.headers, text, body };
  }

  try {
    await waitFor("the app to serve /api/health", async () => {
      if (done) throw new Error(`The app exited before it served:\n${lines.join("\n")}`);
      try {
        return (await call("GET", "/api/health")).status === 200;
      } catch {
        return false; // Not listening yet.
      }
    }, 60_000);
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    throw error;
  }

  return {
    pid: child.pid,
    origin,
    lines,
    status,
    exited: () => done,
    call,
    async kill(signal) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      return await status;
    },
  };
}

/** Logs in through the API; returns the session cookie. */
export async function logIn(
  app: AppProcess,
  credentials: { email: string; password: string },
): Promise<string> {
  const reply = await app.call("POST", "/api/auth/login", { json: credentials });
  if (reply.status !== 200) throw new Error(`login failed: ${reply.status} ${reply.text}`);
  return (reply.headers.get("set-cookie") ?? "").split(";")[0];
}

/** The parsed JSON log lines whose message matches `pattern`. */
export function logged(app: AppProcess, pattern: RegExp): any[] {
  const found: any[] = [];
  for (const line of app.lines) {
    try {
      const record = JSON.parse(line);
      if (pattern.test(String(record.message))) found.push(record);
    } catch { /* not a JSON line */ }
  }
  return found;
}
