// deno-lint-ignore-file no-explicit-any
/**
 * PostgreSQL → PostgreSQL moves rows as COPY text (the connector's copyOut into COPY FROM
 * STDIN), not as rows: the run says so in its log line and metric label. On awkward values
 * (NULLs, tabs, line breaks, backslashes, unicode, bytea, numeric, timestamptz, jsonb,
 * arrays) it gives exactly the tables, counts and saved cursors the row path gives for the
 * same data, in a full refresh and in an incremental run; a source failing mid-COPY leaves
 * the previous table whole.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgres as postgresConnector } from "../../connectors/postgres.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { metrics } from "../../telemetry.ts";
import { createScratchDatabase, logLines } from "../helpers/app.ts";
import { createSource, rawRows, startSyncApp, syncNow, waitFor } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;
let scratch: { url: string; drop(): Promise<void> };
let source: postgres.Sql;
/** Two sources on the same database: one synced as COPY text, one through `read`. */
let viaCopy: string;
let viaRows: string;

const STREAMS = ["public.awkward", "public.events"];

const AWKWARD = `
  create table awkward (
    id integer primary key,
    label text,
    raw bytea,
    amount numeric(30,10),
    free numeric,
    ratio double precision,
    at timestamptz,
    local_at timestamp,
    day date,
    span interval,
    flag boolean,
    uid uuid,
    doc jsonb,
    plain json,
    ints integer[],
    words text[],
    bigs bigint[],
    nums numeric[],
    grid integer[][],
    stamps timestamptz[],
    modified_at timestamptz not null
  );
  create table events (id bigint primary key, kind text, payload jsonb);
  insert into awkward (id, modified_at) values (1, '2024-01-01 00:00:00+00');
  insert into awkward values (
    2,
    E'tab\\there\\nnew line\\r\\nCRLF \\\\ backslash \\\\N not null',
    '\\x00ff0a095c0d'::bytea,
    12345678901234567890.1234567890,
    'NaN',
    0.30000000000000004,
    '2024-03-10 01:59:59.123456+00',
    '2024-03-10 01:59:59.654321',
    '2024-02-29',
    '1 year 2 mons 3 days 04:05:06.789',
    true,
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{"tab": "a\\tb", "list": [1, 2.5, null, true], "nested": {"ünï": "cödé \\"q\\" \\\\ /"}, "small": 1e-7}',
    '{"kept": "as text", "n": 10}',
    '{1,NULL,3}',
    ARRAY['a,b', 'c"d', E'e\\\\f', NULL, 'g h', '{x}', E'line\\nbreak', 'ünï'],
    '{9007199254740993,-1}',
    '{1.50,NaN,-0.001}',
    '{{1,2},{3,4}}',
    ARRAY['2024-01-01 10:00:00.5+00'::timestamptz, NULL],
    '2024-01-02 00:00:00+00'
  );
  insert into awkward (id, label, raw, ratio, at, flag, doc, words, modified_at) values
    (3, '', '\\x'::bytea, 'Infinity', 'infinity', false, '[]', '{}', '2024-01-03 00:00:00+00'),
    (4, E'emoji 🙂 日本語 \\x01 control', '\\xdeadbeef'::bytea, '-Infinity', '1999-12-31 23:59:59+05:30', null,
     '{"emoji": "🙂", "escaped": "\\u00e9"}', '{""}', '2024-01-04 00:00:00+00');
  insert into awkward (id, label, modified_at)
    select g, 'bulk ' || g || E'\\t' || repeat('x', g % 50), '2024-01-05 00:00:00+00'::timestamptz + g * interval '1 second'
      from generate_series(5, 5000) g;
  insert into events select g, 'kind ' || (g % 7), jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g))
    from generate_series(1, 3000) g;
`;

/** Streams of PostgreSQL sources this process moved as COPY text (the metric's label). */
async function copyTransfers(): Promise<number> {
  const { values } = await metrics.queryDuration.get();
  return values.filter((value) =>
    value.metricName === "datasource_query_duration_seconds_count" &&
    value.labels.type === "POSTGRESQL" && value.labels.operation === "copy"
  ).reduce((sum, value) => sum + value.value, 0);
}

/** The transfer each stream of a run went by, from the run's "Stream loaded" log lines. */
function transfersOf(syncLogId: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of logLines) {
    if (!line.includes(syncLogId) || !line.includes("Stream loaded")) continue;
    const entry = JSON.parse(line);
    const properties = entry.properties ?? entry;
    found[properties.stream] = properties.transfer;
  }
  return found;
}

/** Runs a sync of `sourceId`; through `read` when `rows`, as the engine would without copyOut. */
async function sync(sourceId: string, options: { mode: string; rows?: boolean }) {
  const capabilities = postgresConnector.capabilities as { copyOut?: boolean };
  if (options.rows) capabilities.copyOut = false;
  try {
    const log = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId,
      body: { mode: options.mode, streams: STREAMS },
    });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    return log;
  } finally {
    capabilities.copyOut = true;
  }
}

/** Every row of a synced table as PostgreSQL's own text of the whole row, in key order. */
async function tableText(sourceId: string, table: string): Promise<string[]> {
  const rows = await rawRows<{ row: string }>(
    app.t.deps.database,
    `select t::text as row from "${destinationSchema(sourceId)}"."${table}" t order by id`,
  );
  return rows.map((row) => row.row);
}

async function columnsOf(sourceId: string, table: string) {
  return await rawRows(
    app.t.deps.database,
    `select column_name, data_type, udt_name, numeric_precision, numeric_scale, ordinal_position
       from information_schema.columns
      where table_schema = '${destinationSchema(sourceId)}' and table_name = '${table}'
      order by ordinal_position`,
  );
}

async function cursorsOf(sourceId: string) {
  return await rawRows(
    app.t.deps.database,
    `select stream, row_count, cursor_column, cursor_value from sync_stream_states
      where data_source_id = '${sourceId}' order by stream`,
  );
}

async function expectSameResults() {
  for (const table of ["awkward", "events"]) {
    expect(await columnsOf(viaCopy, table)).toEqual(await columnsOf(viaRows, table));
    const copied = await tableText(viaCopy, table);
    expect(copied.length).toBeGreaterThan(0);
    expect(copied).toEqual(await tableText(viaRows, table));
  }
  expect(await cursorsOf(viaCopy)).toEqual(await cursorsOf(viaRows));
}

beforeAll(async () => {
  app = await startSyncApp();
  scratch = await createScratchDatabase();
  source = postgres(scratch.url, { max: 1, onnotice: () => {} });
  await source.unsafe(AWKWARD);
  const database = new URL(scratch.url).pathname.slice(1);
  const settings = {
    type: "POSTGRESQL",
    host: "127.0.0.1",
    port: 5432,
    database,
    username: "postgres",
    password: "trust-auth-ignores-it",
  };
  viaCopy = await createSource(app.t, app.cookie, { name: "Via COPY", ...settings });
  viaRows = await createSource(app.t, app.cookie, { name: "Via rows", ...settings });
});

afterAll(async () => {
  await source?.end();
  await app?.close();
  await scratch?.drop();
});

describe("PostgreSQL into PostgreSQL", () => {
  it("moves COPY text in a full refresh, equal to the row path on awkward values", async () => {
    const before = await copyTransfers();
    const copied = await sync(viaCopy, { mode: "full_refresh" });
    expect(transfersOf(copied.id)).toEqual({ "public.awkward": "copy", "public.events": "copy" });
    expect(await copyTransfers()).toBe(before + 2);

    const read = await sync(viaRows, { mode: "full_refresh", rows: true });
    expect(transfersOf(read.id)).toEqual({ "public.awkward": "read", "public.events": "read" });
    expect(await copyTransfers()).toBe(before + 2);

    expect(copied.streams).toEqual({ "public.awkward": 5000, "public.events": 3000 });
    expect(copied.streams).toEqual(read.streams);
    expect(copied.recordsSync).toBe(8000);
    await expectSameResults();

    // Spot checks that the values are the source's, not merely equal on both paths.
    const [row] = await rawRows<any>(
      app.t.deps.database,
      `select label, encode(raw, 'hex') as raw, amount::text as amount, free::text as free,
              at = '2024-03-10 01:59:59.123456+00' as at_same, doc, ints, words, bigs, nums, grid
         from "${destinationSchema(viaCopy)}"."awkward" where id = 2`,
    );
    expect(row).toEqual({
      label: "tab\there\nnew line\r\nCRLF \\ backslash \\N not null",
      raw: "00ff0a095c0d",
      amount: "12345678901234567890.1234567890",
      free: "NaN",
      at_same: true,
      doc: {
        tab: "a\tb",
        list: [1, 2.5, null, true],
        nested: { "ünï": 'cödé "q" \\ /' },
        small: 1e-7,
      },
      ints: [1, null, 3],
      words: ["a,b", 'c"d', "e\\f", null, "g h", "{x}", "line\nbreak", "ünï"],
      bigs: ["9007199254740993", "-1"],
      nums: ["1.50", "NaN", "-0.001"],
      grid: [[1, 2], [3, 4]],
    });
  });

  it("upserts only what changed past the cursor, equal to the row path", async () => {
    await source.unsafe(`
      update awkward set label = E'changed\\ttab \\\\ and\\nline', raw = '\\x0a'::bytea,
        doc = '{"changed": [1, {"deep": "ü"}]}', words = '{NULL,"x y"}',
        modified_at = '2025-01-01 00:00:00.000001+00' where id in (2, 3);
      insert into awkward (id, label, amount, at, modified_at)
        values (9001, E'new\\\\row', 0.0000000001, '2025-06-01 12:00:00+02', '2025-01-02 00:00:00+00');
      update events set kind = 'changed' where id in (5, 6);
      insert into events values (3001, 'new', '{"n": 3001}'), (3002, E'new\\ttab', null);
    `);
    const copied = await sync(viaCopy, { mode: "incremental" });
    expect(transfersOf(copied.id)).toEqual({ "public.awkward": "copy", "public.events": "copy" });
    const read = await sync(viaRows, { mode: "incremental", rows: true });
    expect(transfersOf(read.id)).toEqual({ "public.awkward": "read", "public.events": "read" });

    // awkward's cursor is modified_at: 2 updated + 1 new; events' is its id: only new ids.
    expect(copied.streams).toEqual({ "public.awkward": 3, "public.events": 2 });
    expect(read.streams).toEqual(copied.streams);
    expect(copied.streamResults.map((result: any) => [result.mode, result.cursorColumn]))
      .toEqual([["incremental", "modified_at"], ["incremental", "id"]]);
    await expectSameResults();
    const [state] = await cursorsOf(viaCopy) as any[];
    expect(state.cursor_value).toEqual({ type: "string", value: "2025-01-02T00:00:00+00:00" });

    // Nothing new: nothing moved, the cursors stay.
    const idle = await sync(viaCopy, { mode: "incremental" });
    expect(idle.streams).toEqual({ "public.awkward": 0, "public.events": 0 });
    const again = await sync(viaRows, { mode: "incremental", rows: true });
    expect(again.streams).toEqual(idle.streams);
    await expectSameResults();
  });

  it("leaves the previous table whole when the source fails in the middle of its COPY", async () => {
    await source.unsafe(`
      create table knob (zero_at integer);
      insert into knob values (0);
      create view fragile as
        select id, label, 100 / (id - (select zero_at from knob)) as share from awkward;
    `);
    // Discovered again, so the run may name the new view.
    const schema = await app.t.call("GET", `/api/data-sources/${viaCopy}/schema`, {
      cookie: app.cookie,
    });
    expect(schema.status).toBe(200);
    const first = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId: viaCopy,
      body: { mode: "full_refresh", streams: ["public.fragile"] },
    });
    expect(first.status, first.errorMessage).toBe("SUCCEEDED");
    expect(transfersOf(first.id)).toEqual({ "public.fragile": "copy" });
    const table = `"${destinationSchema(viaCopy)}"."fragile"`;
    const before = await rawRows<any>(
      app.t.deps.database,
      `select count(*)::int as n, sum(share)::text as total from ${table}`,
    );
    expect(before[0].n).toBe(5001);

    // Division by zero at id 4000: rows before it are already on their way.
    await source.unsafe(`update knob set zero_at = 4000`);
    const failed = await syncNow(app.t, {
      cookie: app.cookie,
      sourceId: viaCopy,
      body: { mode: "full_refresh", streams: ["public.fragile"] },
    });
    expect(failed.status).toBe("FAILED");
    expect(failed.errorMessage).toMatch(/Reading failed: .*division by zero/);
    const after = await rawRows<any>(
      app.t.deps.database,
      `select count(*)::int as n, sum(share)::text as total from ${table}`,
    );
    expect(after).toEqual(before);
    const tables = await rawRows<any>(
      app.t.deps.database,
      `select tablename from pg_tables where schemaname = '${destinationSchema(viaCopy)}'
        order by 1`,
    );
    expect(tables.map((row) => row.tablename)).toEqual(["awkward", "events", "fragile"]);
    // The source's COPY connection is gone, not left in its transaction.
    await waitFor("the COPY session to end", async () => {
      const [open] = await source.unsafe(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()
            and (state like 'idle in transaction%' or query like 'copy (%')`,
      );
      return open.n === 0;
    });
  });
});
