/**
 * `deno task bench:load`: drives the running app on loopback with wrk — 64 connections for
 * 60 s (LOAD_SECONDS, LOAD_CONNECTIONS to change) over a mix of list, get, a connection
 * test on a warm pool, and a page — then a bare `Deno.serve` hello-world the same way, in
 * the same run. Prints requests/s and p50/p99 latency of both and the error count (target:
 * zero errors). The app runs as it would for an operator: `deno run main.ts` with the start
 * task's V8 flags, on the embedded database and demo database, or on the PostgreSQL in
 * LOAD_DATABASE_URL.
 *
 * Needs wrk (`apt-get install -y wrk`).
 */
import { startTaskV8Flags } from "./_start_flags.ts";

const SECONDS = Number(Deno.env.get("LOAD_SECONDS") ?? 60);
const CONNECTIONS = Number(Deno.env.get("LOAD_CONNECTIONS") ?? 64);
const THREADS = 2;
const root = new URL("..", import.meta.url).pathname;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitFor(url: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

type WrkResult = {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
};

/** Runs wrk with a Lua script and reads its summary (done() prints JSON). */
async function wrk(url: string, script: string): Promise<WrkResult> {
  const scriptFile = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(
    scriptFile,
    script + `
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format('{"requests":%d,"seconds":%f,"p50":%f,"p99":%f,"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.errors.status))
end
`,
  );
  const output = await new Deno.Command("wrk", {
    args: [
      `-t${THREADS}`,
      `-c${CONNECTIONS}`,
      `-d${SECONDS}s`,
      "--timeout",
      "10s",
      "-s",
      scriptFile,
      url,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  await Deno.remove(scriptFile);
  const text = new TextDecoder().decode(output.stdout);
  const line = text.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  if (!line) throw new Error(`wrk printed no summary:\n${text}`);
  const parsed = JSON.parse(line);
  return {
    requests: parsed.requests,
    rps: parsed.requests / parsed.seconds,
    p50: parsed.p50,
    p99: parsed.p99,
    errors: parsed.errors,
    non2xx: parsed.non2xx,
  };
}

if (!(await new Deno.Command("sh", { args: ["-c", "command -v wrk"] }).output()).success) {
  console.error("bench:load needs wrk: apt-get install -y wrk");
  Deno.exit(1);
}

// The app, started the way an operator starts it.
const appPort = freePort();
const dataDir = await Deno.makeTempDir({ prefix: "dafel-load-" });
const email = "load@example.com";
const password = "load-test-password";
const demoPort = freePort();
const v8Flags = await startTaskV8Flags();
const app = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []), "main.ts"],
  cwd: root,
  env: {
    PORT: String(appPort),
    DATA_DIR: dataDir,
    DEMO_DB_PORT: String(demoPort),
    DAFEL_ADMIN_EMAIL: email,
    DAFEL_ADMIN_PASSWORD: password,
    LOG_LEVEL: "warning",
    CONNECTION_TESTS_PER_MINUTE: "100000000",
    JOBS: "false",
    ...(Deno.env.get("LOAD_DATABASE_URL")
      ? {
        DATABASE_URL: Deno.env.get("LOAD_DATABASE_URL")!,
        ENCRYPTION_MASTER_KEY: "1".repeat(64),
      }
      : {}),
  },
  stdout: "null",
  stderr: "inherit",
}).spawn();
const base = `http://127.0.0.1:${appPort}`;

try {
  await waitFor(`${base}/api/health`);
  const login = await fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const cookie = login.headers.get("set-cookie")!.split(";")[0];
  await login.body?.cancel();
  const tokenReply = await fetch(`${base}/api/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie, origin: base },
    body: JSON.stringify({ name: "load" }),
  });
  const { token } = await tokenReply.json();
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  // A source on the embedded demo database, tested once so its pool is warm.
  const demo = await fetch(`${base}/api/test-demo`, { method: "POST", headers: auth });
  const demoInfo = await demo.json();
  if (!demoInfo.success) {
    throw new Error(`demo database not reachable: ${JSON.stringify(demoInfo)}`);
  }
  const created = await fetch(`${base}/api/data-sources`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({
      name: "Load target",
      type: "POSTGRESQL",
      host: "127.0.0.1",
      port: demoPort,
      database: "postgres",
      username: "postgres",
      password: "postgres",
    }),
  });
  const { id } = await created.json();
  for (let i = 0; i < 20; i++) {
    await fetch(`${base}/api/data-sources?limit=5`, { headers: auth }).then((r) =>
      r.body?.cancel()
    );
  }
  const warm =
    await (await fetch(`${base}/api/data-sources/${id}/test`, { method: "POST", headers: auth }))
      .json();
  if (!warm.success) throw new Error(`warm-up test failed: ${JSON.stringify(warm.error)}`);

  const mix = `
local token = "${token}"
local cookie = "${cookie}"
local requests = {
  wrk.format("GET", "/api/data-sources", { ["Authorization"] = "Bearer " .. token }),
  wrk.format("GET", "/api/data-sources/${id}", { ["Authorization"] = "Bearer " .. token }),
  wrk.format("POST", "/api/data-sources/${id}/test", { ["Authorization"] = "Bearer " .. token }),
  wrk.format("GET", "/data-sources", { ["Cookie"] = cookie }),
}
local i = 0
request = function()
  i = i + 1
  return requests[(i % #requests) + 1]
end
`;
  console.log(
    `app: ${CONNECTIONS} connections, ${SECONDS} s, mix of list / get / warm test / page`,
  );
  const appResult = await wrk(base, mix);

  // The baseline: a bare hello-world on the same machine, same load.
  const helloPort = freePort();
  const hello = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `Deno.serve({ hostname: "127.0.0.1", port: ${helloPort}, onListen() {} }, () => new Response("hello"))`,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitFor(`http://127.0.0.1:${helloPort}/`);
  console.log(`hello-world: ${CONNECTIONS} connections, ${SECONDS} s`);
  const helloResult = await wrk(`http://127.0.0.1:${helloPort}/`, "");
  hello.kill("SIGTERM");
  await hello.status;

  const row = (name: string, r: WrkResult) =>
    `${name.padEnd(14)} ${r.rps.toFixed(0).padStart(9)} req/s  p50 ${
      r.p50.toFixed(2).padStart(7)
    } ms  ` +
    `p99 ${r.p99.toFixed(2).padStart(8)} ms  ${r.requests} requests, ${r.errors} socket errors, ` +
    `${r.non2xx} non-2xx`;
  console.log(row("app (mix)", appResult));
  console.log(row("hello-world", helloResult));
  console.log(
    `app throughput is ${(appResult.rps / helloResult.rps * 100).toFixed(1)}% of hello-world`,
  );
  const errors = appResult.errors + appResult.non2xx;
  console.log(`errors: ${errors} (target 0) ${errors === 0 ? "PASS" : "FAIL"}`);
  if (errors !== 0) Deno.exitCode = 1;
} finally {
  app.kill("SIGTERM");
  await app.status;
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
