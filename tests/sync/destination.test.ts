// deno-lint-ignore-file no-explicit-any
/**
 * The loaders against both real app databases: COPY into PostgreSQL, batched inserts into
 * PGlite. Full refresh swaps atomically and leaves the old table on failure; incremental
 * upserts by key and keeps the cursor with the data; types map and values survive intact.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stream } from "../../connectors/types.ts";
import { type Destination, destinationFor, type LoadOptions } from "../../sync/destination.ts";
import { destinationSchema } from "../../sync/naming.ts";
import { planTable } from "../../sync/table_plan.ts";
import { openTestDatabase } from "../helpers/app.ts";
import { batchesOf, rawRows, seedOwner, seedSource } from "../helpers/sync.ts";

function stream(overrides: Partial<Stream> = {}): Stream {
  return {
    name: "orders",
    schema: "public",
    kind: "table",
    rowCount: null,
    rowCountExact: false,
    columns: [
      { name: "id", type: "integer", nullable: false, primaryKey: true },
      { name: "note", type: "text", nullable: true },
      { name: "amount", type: "numeric(10,2)", nullable: true },
      { name: "updated_at", type: "timestamp with time zone", nullable: true },
      { name: "payload", type: "jsonb", nullable: true },
    ],
    constraints: { primaryKeys: ["id"], foreignKeys: [], uniqueKeys: [] },
    ...overrides,
  };
}

const noop = () => Promise.resolve();

for (const kind of ["pglite", "postgres"] as const) {
  describe(`loading into ${kind}`, () => {
    let database: Awaited<ReturnType<typeof openTestDatabase>>;
    let destination: Destination;
    let sourceId: string;
    let schema: string;

    beforeAll(async () => {
      database = await openTestDatabase(kind);
      destination = destinationFor(database);
      const owner = await seedOwner(database);
      sourceId = await seedSource(database, { ownerId: owner });
      schema = destinationSchema(sourceId);
      await destination.ensureSchema(schema);
    });
    afterAll(() => database.dispose());

    function load(
      table: string,
      options:
        & { stream?: Stream; batches: Record<string, unknown>[][]; failAfter?: number }
        & Omit<Partial<LoadOptions>, "batches">,
    ) {
      const plan = planTable(options.stream ?? stream(), { schema, table });
      return {
        plan,
        batches: batchesOf(options.batches, { failAfter: options.failAfter }),
        state: {
          sourceId,
          stream: `public.${table}`,
          table,
          cursorColumn: options.cursorField ?? null,
        },
        cursorField: options.cursorField,
        startCursor: options.startCursor,
        onBatch: options.onBatch ?? noop,
      };
    }

    it("replaces a table in full with every value intact, key included", async () => {
      const when = new Date("2024-03-01T10:20:30.123Z");
      const first = [
        {
          id: 1,
          note: "tab\there\nnew line \\ backslash",
          amount: "12.50",
          updated_at: when,
          payload: { a: [1, { b: "c" }] },
        },
        { id: 2, note: null, amount: null, updated_at: null, payload: null },
      ];
      const second = [{
        id: 3,
        note: "nul\u0000gone",
        amount: "0.01",
        updated_at: when,
        payload: ["x"],
      }];
      const result = await destination.replace({
        ...load("orders", { batches: [first, second], cursorField: "updated_at" }),
        staging: "_dafel_staging_testrun_0",
      });
      expect(result).toMatchObject({ records: 3, rowCount: 3 });
      const rows = await rawRows<any>(
        database,
        `select id, note, amount::text as amount, updated_at, payload from "${schema}"."orders" order by id`,
      );
      expect(rows.map((row) => Number(row.id))).toEqual([1, 2, 3]);
      expect(rows[0].note).toBe("tab\there\nnew line \\ backslash");
      expect(rows[0].amount).toBe("12.50");
      expect(new Date(rows[0].updated_at).toISOString()).toBe(when.toISOString());
      expect(rows[0].payload).toEqual({ a: [1, { b: "c" }] });
      expect(rows[1]).toMatchObject({ note: null, amount: null, updated_at: null, payload: null });
      expect(rows[2].note).toBe("nulgone");
      const types = await rawRows<any>(
        database,
        `select column_name, data_type from information_schema.columns
          where table_schema = '${schema}' and table_name = 'orders' order by ordinal_position`,
      );
      expect(types.map((row) => row.data_type)).toEqual(
        ["integer", "text", "numeric", "timestamp with time zone", "jsonb"],
      );
      const [key] = await rawRows<any>(
        database,
        `select indexname from pg_indexes where schemaname = '${schema}' and tablename = 'orders'`,
      );
      expect(key.indexname).toBe("orders_pkey");
      const [state] = await rawRows<any>(
        database,
        `select row_count, cursor_column, cursor_value from sync_stream_states where stream = 'public.orders'`,
      );
      expect(state).toMatchObject({ row_count: 3, cursor_column: "updated_at" });
      expect(state.cursor_value).toEqual({ type: "date", value: when.toISOString() });
    });

    it("leaves the previous table and no staging table when a full refresh fails", async () => {
      await expect(destination.replace({
        ...load("orders", {
          batches: [[{ id: 10, note: "new" }], [{ id: 11, note: "new" }]],
          failAfter: 1,
        }),
        staging: "_dafel_staging_failedrun_0",
      })).rejects.toThrow("source broke mid-stream");
      const rows = await rawRows<any>(database, `select id from "${schema}"."orders" order by id`);
      expect(rows.map((row) => Number(row.id))).toEqual([1, 2, 3]);
      const staging = await rawRows<any>(
        database,
        `select tablename from pg_tables where schemaname = '${schema}' and tablename like '_dafel%'`,
      );
      expect(staging).toEqual([]);
    });

    it("leaves the previous table when the database refuses a value mid-load", async () => {
      await expect(destination.replace({
        ...load("orders", {
          batches: [[{ id: 20, amount: "1.00" }], [{ id: 21, amount: "not a number" }]],
        }),
        staging: "_dafel_staging_badvalue_0",
      })).rejects.toThrow(/numeric/);
      const rows = await rawRows<any>(database, `select id from "${schema}"."orders" order by id`);
      expect(rows.map((row) => Number(row.id))).toEqual([1, 2, 3]);
    });

    it("upserts incremental batches by key, the last duplicate winning, and keeps the cursor", async () => {
      const result = await destination.upsert(load("orders", {
        batches: [
          [
            { id: 2, note: "updated", updated_at: new Date("2024-04-01T00:00:00Z") },
            { id: 4, note: "first", updated_at: new Date("2024-04-02T00:00:00Z") },
            { id: 4, note: "second", updated_at: new Date("2024-04-03T00:00:00Z") },
          ],
        ],
        cursorField: "updated_at",
        startCursor: new Date("2024-03-01T10:20:30.123Z"),
      }));
      expect(result).toMatchObject({ records: 3, rowCount: 4 });
      expect((result.cursor as Date).toISOString()).toBe("2024-04-03T00:00:00.000Z");
      const rows = await rawRows<any>(
        database,
        `select id, note from "${schema}"."orders" order by id`,
      );
      expect(rows.map((row) => [Number(row.id), row.note])).toEqual([
        [1, "tab\there\nnew line \\ backslash"],
        [2, "updated"],
        [3, "nulgone"],
        [4, "second"],
      ]);
      const [state] = await rawRows<any>(
        database,
        `select row_count, cursor_value from sync_stream_states where stream = 'public.orders'`,
      );
      expect(state.row_count).toBe(4);
      expect(state.cursor_value).toEqual({ type: "date", value: "2024-04-03T00:00:00.000Z" });
    });

    it("commits incremental batches one by one: a failure keeps earlier batches and their cursor", async () => {
      await expect(destination.upsert(load("orders", {
        batches: [
          [{ id: 5, note: "kept", updated_at: new Date("2024-05-01T00:00:00Z") }],
          [{ id: 6, note: "lost", updated_at: new Date("2024-05-02T00:00:00Z") }],
        ],
        failAfter: 1,
        cursorField: "updated_at",
      }))).rejects.toThrow("source broke");
      const rows = await rawRows<any>(
        database,
        `select id from "${schema}"."orders" where id >= 5`,
      );
      expect(rows.map((row) => Number(row.id))).toEqual([5]);
      const [state] = await rawRows<any>(
        database,
        `select cursor_value from sync_stream_states where stream = 'public.orders'`,
      );
      expect(state.cursor_value.value).toBe("2024-05-01T00:00:00.000Z");
    });

    it("appends when the stream has no key", async () => {
      const keyless = stream({ constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [] } });
      await destination.upsert(
        load("events", { stream: keyless, batches: [[{ id: 1 }, { id: 1 }]] }),
      );
      await destination.upsert(load("events", { stream: keyless, batches: [[{ id: 1 }]] }));
      const [row] = await rawRows<any>(
        database,
        `select count(*)::int as n from "${schema}"."events"`,
      );
      expect(row.n).toBe(3);
    });

    it("follows a schemaless stream: new fields become columns, misfits widen to text", async () => {
      const documents: Stream = {
        name: "people",
        kind: "collection",
        rowCount: null,
        rowCountExact: false,
        columns: [
          { name: "_id", type: "text", nullable: false },
          { name: "age", type: "integer", nullable: true },
          { name: "address", type: "object", nullable: true },
        ],
        constraints: { primaryKeys: ["_id"], foreignKeys: [], uniqueKeys: [] },
      };
      await destination.replace({
        ...load("people", {
          stream: documents,
          batches: [
            [{ _id: "a", age: 30, address: { city: "Lima" } }],
            [{ _id: "b", age: "unknown", tags: ["x", "y"], 'odd "name"': true }],
          ],
        }),
        staging: "_dafel_staging_docs_0",
      });
      const rows = await rawRows<any>(
        database,
        `select "_id", age, address, tags, "odd ""name""" as odd from "${schema}"."people" order by "_id"`,
      );
      expect(rows).toEqual([
        { _id: "a", age: "30", address: { city: "Lima" }, tags: null, odd: null },
        { _id: "b", age: "unknown", address: null, tags: ["x", "y"], odd: true },
      ]);
    });

    it("holds bytes, dates, booleans and big integers from SQL sources", async () => {
      const typed: Stream = stream({
        name: "typed",
        columns: [
          { name: "id", type: "bigint unsigned", nullable: false },
          { name: "photo", type: "blob", nullable: true },
          { name: "born", type: "date", nullable: true },
          { name: "active", type: "tinyint(1)", nullable: true },
          { name: "flag", type: "boolean", nullable: true },
          { name: "tags", type: "text[]", nullable: true },
          { name: "at", type: "datetime", nullable: true },
        ],
      });
      await destination.replace({
        ...load("typed", {
          stream: typed,
          batches: [[{
            id: 18446744073709551615n,
            photo: new Uint8Array([0, 255, 10]),
            born: new Date("1990-07-15T00:00:00.000Z"),
            active: 1,
            flag: false,
            tags: ["a", "b"],
            at: new Date(2024, 0, 2, 3, 4, 5, 6),
          }]],
        }),
        staging: "_dafel_staging_typed_0",
      });
      const [row] = await rawRows<any>(
        database,
        `select id::text as id, encode(photo, 'hex') as photo, born::text as born, active, flag, tags,
                at::text as at from "${schema}"."typed"`,
      );
      expect(row).toEqual({
        id: "18446744073709551615",
        photo: "00ff0a",
        born: "1990-07-15",
        active: 1,
        flag: false,
        tags: ["a", "b"],
        at: "2024-01-02 03:04:05.006",
      });
    });

    it("stops a full refresh between batches when told to, leaving the old table", async () => {
      let seen = 0;
      await expect(destination.replace({
        ...load("orders", {
          batches: [[{ id: 100 }], [{ id: 101 }], [{ id: 102 }]],
          onBatch: () => {
            seen++;
            if (seen === 2) return Promise.reject(new Error("Cancelled"));
            return Promise.resolve();
          },
        }),
        staging: "_dafel_staging_cancelled_0",
      })).rejects.toThrow("Cancelled");
      const rows = await rawRows<any>(
        database,
        `select count(*)::int as n from "${schema}"."orders"`,
      );
      expect(rows[0].n).toBe(5);
    });

    it("drops staging tables of runs that are not running, and only those", async () => {
      // A killed PGlite run leaves such tables behind; PostgreSQL rolls them back.
      await rawRows(database, `create table "${schema}"."_dafel_staging_deadrun_0" (id int)`);
      await rawRows(database, `create table "${schema}"."_dafel_staging_liverun_0" (id int)`);
      const dropped = await destination.dropStaleStaging(() =>
        Promise.resolve((id: string) => id === "liverun")
      );
      expect(dropped).toEqual([`${schema}._dafel_staging_deadrun_0`]);
      const left = await rawRows<any>(
        database,
        `select tablename from pg_tables where schemaname = '${schema}' and tablename like '_dafel%'`,
      );
      expect(left.map((row) => row.tablename)).toEqual(["_dafel_staging_liverun_0"]);
    });
  });
}
