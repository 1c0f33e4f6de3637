/**
 * A throwaway PostgreSQL cluster a test owns, so it can stop, kill and restart a real server
 * without touching the shared one on 5432: initdb into a temporary directory, its own
 * loopback port, trust authentication, no fsync (the data is thrown away anyway). Started
 * and stopped with pg_ctl, as the postgres user when the tests run as root (PostgreSQL
 * refuses to run as root).
 *
 * A cluster is destroyed by `destroy()` (call it in afterAll: it runs when tests fail). A
 * worker that died before its afterAll leaves its cluster running; the next cluster created
 * on this machine stops and removes every cluster whose owning process is gone.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";
const PREFIX = "dafel-pg-cluster-";
const OWNER_FILE = "owner.pid";

/**
 * A source view that yields `knobs.rows` rows, sleeping `knobs.delay` seconds on each: a
 * sync of `feed` is still running when a test stops a server or kills a process.
 */
export const SLOW_FEED_SQL = `
create table knobs (rows int not null, delay float8 not null);
insert into knobs values (1000, 0);
create view feed as
  select g as id, 'feed ' || g as label
  from knobs k cross join generate_series(1, k.rows) g
  where k.delay = 0 or pg_sleep(k.delay) is not null;
`;

export type StopMode = "fast" | "immediate";

export type PgCluster = {
  readonly port: number;
  /** The cluster's directory (data, log, socket). */
  readonly dir: string;
  /** A connection URL for `database` (default "postgres") as the superuser postgres. */
  url(database?: string): string;
  /** Starts the server on its port and waits until it accepts connections. */
  start(): Promise<void>;
  /**
   * Stops the server: "fast" ends sessions cleanly (clients get admin_shutdown), "immediate"
   * kills every server process at once, like a crash (the next start recovers from WAL).
   */
  stop(mode?: StopMode): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops the server if it runs and removes the directory; safe to call twice. */
  destroy(): Promise<void>;
};

type Command = { args: string[]; allowFailure?: boolean };

let postgresIds: { uid: number; gid: number } | null | undefined;

/** The postgres user's ids when we are root (binaries must run as postgres), else null. */
async function runAsIds(): Promise<{ uid: number; gid: number } | null> {
  if (postgresIds !== undefined) return postgresIds;
  if (Deno.uid() !== 0) return postgresIds = null;
  const ids = async (flag: string) => {
    const out = await new Deno.Command("id", { args: [flag, "postgres"], stdout: "piped" })
      .output();
    if (!out.success) throw new Error("Running as root needs a postgres user for PostgreSQL");
    return Number(new TextDecoder().decode(out.stdout).trim());
  };
  return postgresIds = { uid: await ids("-u"), gid: await ids("-g") };
}

async function run(binary: string, command: Command): Promise<string> {
  const ids = await runAsIds();
  const program = `${BIN}/${binary}`;
  const out = await new Deno.Command(ids ? "runuser" : program, {
    args: ids ? ["-u", "postgres", "--", program, ...command.args] : command.args,
    stdout: "piped",
    stderr: "piped",
    // The server inherits this environment; no PG* variable of ours should reach it.
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success && !command.allowFailure) {
    throw new Error(`${binary} ${command.args.join(" ")} failed:\n${text}`);
  }
  return text;
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Stops and removes clusters whose owning test process is gone (it died before cleanup). */
async function sweepOrphans(): Promise<void> {
  for (const entry of Deno.readDirSync(tmpdir())) {
    if (!entry.isDirectory || !entry.name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), entry.name);
    let owner: number;
    try {
      owner = Number(Deno.readTextFileSync(join(dir, OWNER_FILE)));
    } catch {
      continue; // Being created right now, or not ours.
    }
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) continue;
    await run("pg_ctl", {
      args: ["-D", join(dir, "data"), "-m", "immediate", "-w", "stop"],
      allowFailure: true,
    });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Creates a cluster and starts it. */
export async function createPgCluster(
  options: { settings?: Record<string, string | number> } = {},
): Promise<PgCluster> {
  await sweepOrphans();
  const dir = await Deno.makeTempDir({ prefix: PREFIX });
  await Deno.writeTextFile(join(dir, OWNER_FILE), String(Deno.pid));
  const ids = await runAsIds();
  if (ids) await Deno.chown(dir, ids.uid, ids.gid);
  const data = join(dir, "data");
  const logFile = join(dir, "server.log");
  let running = false;
  let destroyed = false;
  let port = 0;

  async function start() {
    await run("pg_ctl", { args: ["-D", data, "-l", logFile, "-w", "-t", "60", "start"] });
    running = true;
  }

  const cluster: PgCluster = {
    get port() {
      return port;
    },
    dir,
    url(database = "postgres") {
      return `postgres://postgres@127.0.0.1:${port}/${database}`;
    },
    start,
    async stop(mode: StopMode = "fast") {
      await run("pg_ctl", { args: ["-D", data, "-m", mode, "-w", "-t", "60", "stop"] });
      running = false;
    },
    async log() {
      return await Deno.readTextFile(logFile).catch(() => "");
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (running) {
        await run("pg_ctl", {
          args: ["-D", data, "-m", "immediate", "-w", "stop"],
          allowFailure: true,
        });
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };

  try {
    await run("initdb", {
      args: ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
    });
    // Without fsync the files are not forced to disk, which only an OS crash would notice:
    // a stopped or killed server loses nothing the OS was given. synchronous_commit stays
    // on, because an acknowledged commit may sit in the server's memory without it, and an
    // immediate stop would lose it (a fault test would blame the app for that).
    const settings: Record<string, string | number> = {
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${dir}'`,
      fsync: "off",
      full_page_writes: "off",
      shared_buffers: "'32MB'",
      max_connections: 40,
      log_min_messages: "warning",
      ...options.settings,
    };
    // Another process may take a port between our check and the server's bind: try again.
    for (let tries = 0;; tries++) {
      port = freePort();
      const lines = Object.entries({ ...settings, port })
        .map(([name, value]) => `${name} = ${value}`);
      await Deno.writeTextFile(
        join(data, "postgresql.auto.conf"),
        `# Written by tests/helpers/pg_cluster.ts\n${lines.join("\n")}\n`,
      );
      try {
        await start();
        break;
      } catch (error) {
        if (tries >= 2 || !(await cluster.log()).includes("could not bind")) throw error;
      }
    }
  } catch (error) {
    await cluster.destroy();
    throw error;
  }
  return cluster;
}
