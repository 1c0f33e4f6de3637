// deno-lint-ignore-file no-explicit-any
/**
 * The app's own PostgreSQL stops while the app runs (DATABASE_URL mode, as in production),
 * then starts again. The database is a cluster this file owns; the app is a child process
 * started as an operator starts it, job runner on.
 *
 * While it is down: API routes answer 503 with `{error, code: "DATABASE_UNAVAILABLE"}`,
 * /api/health answers 503 saying so, pages answer a 503 page, and the job runner keeps
 * running without spinning (its failed ticks are paced by its poll interval) or crashing.
 * Once it is back, all of it works again without restarting the app: sessions, tokens,
 * pages, and a sync run by the job runner. Twice: a fast shutdown, then a crash. And the
 * app's database client, after many failed connections, neither waits before failing nor
 * before reconnecting (postgres.js's default backoff grows to 20 s).
 * (tests/app_database_down.test.ts cuts the connections with a proxy instead.)
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isDatabaseUnavailable, openDatabase, pingDatabase } from "../../db/mod.ts";
import { generateKeyHex } from "../../vault/mod.ts";
import { createPgCluster, type PgCluster, type StopMode } from "../helpers/pg_cluster.ts";
import { recordDatabase } from "../helpers/secret_scan.ts";
import { waitFor } from "../helpers/sync.ts";
import {
  type AppProcess,
  type CallOptions,
  logged,
  logIn,
  startAppProcess,
} from "./_app_process.ts";

const ADMIN = { email: "operator@example.com", password: "operator-password-1" };
const UNAVAILABLE = {
  error: "The app database is unavailable; try again shortly",
  code: "DATABASE_UNAVAILABLE",
};
/**
 * The app's pool connect timeout (db/mod.ts): no call may wait longer for its answer while
 * the database is down (the server is stopped, so connecting is refused at once).
 */
const CONNECT_TIMEOUT_MS = 10_000;
/** The job runner's default poll interval: a failed tick waits this long before the next. */
const JOB_POLL_MS = 1_000;
const LOOP_FAILED = /^The job loop could not reach the app database/;

let cluster: PgCluster;
let dataDir: string;
let app: AppProcess;
let cookie: string;
let token: string;
let sourceId: string;
let syncsSoFar = 0;

/** CPU time the process has used, in seconds (utime + stime from /proc). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5), counted from the state field (3) here.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

beforeAll(async () => {
  cluster = await createPgCluster();
  const admin = postgres(cluster.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe("create database dafel");
  await admin.end();
  dataDir = await Deno.makeTempDir({ prefix: "dafel-fault-appdb-" });
  await Deno.mkdir(`${dataDir}/files`);
  await Deno.writeTextFile(`${dataDir}/files/people.csv`, "id,name\n1,Ana\n2,Luis\n3,Marta\n");
  const masterKey = generateKeyHex();
  app = await startAppProcess({
    DATABASE_URL: cluster.url("dafel"),
    ENCRYPTION_MASTER_KEY: masterKey,
    DATA_DIR: dataDir,
    DEMO_DB: "false",
    DAFEL_ADMIN_EMAIL: ADMIN.email,
    DAFEL_ADMIN_PASSWORD: ADMIN.password,
  }, { secrets: [masterKey, ADMIN.password] });
  cookie = await logIn(app, ADMIN);
  const created = await app.call("POST", "/api/tokens", { cookie, json: { name: "faults" } });
  expect(created.status, created.text).toBe(201);
  token = created.body.token;
  const source = await app.call("POST", "/api/data-sources", {
    token,
    json: { name: "People", type: "CSV_FILE", configuration: { filePath: "people.csv" } },
  });
  expect(source.status, source.text).toBe(201);
  sourceId = source.body.id;
}, 120_000);

afterAll(async () => {
  if (app && !app.exited()) await app.kill("SIGKILL");
  await cluster?.destroy();
  if (dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
});

describe.each<StopMode>(["fast", "immediate"])("the app's PostgreSQL stopped (%s)", (mode) => {
  it("answers 503 with a clear body while it is down, and keeps running", async () => {
    const failedBefore = logged(app, LOOP_FAILED).length;
    await cluster.stop(mode);
    const downSince = performance.now();
    const cpuBefore = await cpuSeconds(app.pid);
    const call = (method: string, path: string, options: CallOptions = {}) =>
      app.call(method, path, { ...options, withinMs: CONNECT_TIMEOUT_MS });

    const health = await call("GET", "/api/health");
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({
      status: "unavailable",
      database: { ok: false, error: expect.stringMatching(/^App database /) },
    });
    for (const auth of [{ token }, { cookie }]) {
      const list = await call("GET", "/api/data-sources", auth);
      expect(list.status).toBe(503);
      expect(list.body).toEqual(UNAVAILABLE);
    }
    const create = await call("POST", "/api/data-sources", {
      token,
      json: { name: "Not now", type: "CSV_FILE", configuration: { filePath: "people.csv" } },
    });
    expect(create.status).toBe(503);
    expect(create.body).toEqual(UNAVAILABLE);
    const sync = await call("POST", `/api/data-sources/${sourceId}/sync`, { token });
    expect(sync.status).toBe(503);
    expect(sync.body).toEqual(UNAVAILABLE);
    const login = await call("POST", "/api/auth/login", { json: ADMIN });
    expect(login.status).toBe(503);
    expect(login.body).toEqual(UNAVAILABLE);
    for (const path of ["/data-sources", `/data-sources/${sourceId}`]) {
      const page = await call("GET", path, { cookie });
      expect(page.status, path).toBe(503);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(page.text).toContain("The app database is unavailable");
    }
    const loginPage = await call("GET", "/login");
    expect(loginPage.status).toBe(503);
    expect((await call("GET", "/metrics")).status).toBe(200);

    // The job loop keeps trying, once per poll interval, and the process stays up.
    await waitFor(
      "the job loop to fail three more ticks",
      () => Promise.resolve(logged(app, LOOP_FAILED).length >= failedBefore + 3),
    );
    const downMs = performance.now() - downSince;
    const ticks = logged(app, LOOP_FAILED).length - failedBefore;
    expect(ticks, `${ticks} failed ticks in ${Math.round(downMs)} ms`)
      .toBeLessThanOrEqual(Math.ceil(downMs / JOB_POLL_MS) * 2 + 2);
    const cpu = await cpuSeconds(app.pid) - cpuBefore;
    expect(cpu, `${cpu} s of CPU in ${Math.round(downMs)} ms`).toBeLessThan(downMs / 1000 / 2);
    expect(app.exited()).toBe(false);
  }, 60_000);

  it("recovers when it is back, without restarting the app", async () => {
    await cluster.start();
    await waitFor("health to say ok", async () => {
      const health = await app.call("GET", "/api/health");
      return health.status === 200 && health.body.database.ok === true;
    });
    const list = await app.call("GET", "/api/data-sources", { token });
    expect(list.status).toBe(200);
    expect(list.body.map((source: any) => source.id)).toContain(sourceId);
    expect((await app.call("GET", "/api/auth/me", { cookie })).status).toBe(200);
    const page = await app.call("GET", `/data-sources/${sourceId}`, { cookie });
    expect(page.status).toBe(200);
    expect(await logIn(app, ADMIN)).toMatch(/^dafel_session=/);

    // The job runner took up its work again: a sync runs to the end.
    const started = await app.call("POST", `/api/data-sources/${sourceId}/sync`, { token });
    expect(started.status, started.text).toBe(202);
    const run = await waitFor("the sync to end", async () => {
      const log = await app.call(
        "GET",
        `/api/data-sources/${sourceId}/sync-logs/${started.body.syncLogId}`,
        { token },
      );
      return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(log.body?.status) ? log.body : undefined;
    });
    expect(run.status, run.errorMessage).toBe("SUCCEEDED");
    expect(run.recordsSync).toBe(3);
    // Every run ended before an outage is still recorded as it ended.
    const runs = await app.call("GET", `/api/data-sources/${sourceId}/sync-logs`, { token });
    expect(runs.body.map((log: any) => log.status)).toEqual(
      Array(++syncsSoFar).fill("SUCCEEDED"),
    );
    expect(app.exited()).toBe(false);
  }, 60_000);
});

describe("the app after both outages", () => {
  it("stops cleanly on SIGTERM", async () => {
    const status = await app.kill("SIGTERM");
    expect(status.code).toBe(0);
    expect(logged(app, /^Unhandled error|^Cannot start/)).toEqual([]);
  });
});

describe("the app's database client after many failed connections", () => {
  /** Rejects with a message naming `what` when `work` takes longer than `ms`. */
  function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  it(
    "still fails at once while the server is down, and reconnects at once when it is back",
    async () => {
      // One connection, so every failure counts against it: the driver's default backoff
      // would wait 10 to 20 s before the next attempt by now.
      const database = await openDatabase({ url: cluster.url("dafel"), max: 1 });
      try {
        await cluster.stop("immediate");
        for (let attempt = 0; attempt < 12; attempt++) {
          const error = await within(
            `query ${attempt + 1} against the stopped server`,
            5_000,
            pingDatabase(database.db).then(() => null, (error) => error),
          );
          expect(isDatabaseUnavailable(error), String(error)).toBe(true);
        }
        await cluster.start();
        await within("the first query after the restart", 5_000, pingDatabase(database.db));
        await recordDatabase(database.db);
      } finally {
        await database.close();
      }
    },
    120_000,
  );
});
