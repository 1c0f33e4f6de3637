/**
 * The pure parts of a sync: destination types from discovered ones, table and column names
 * PostgreSQL can hold, the suggested cursor column, the largest cursor value, and COPY's
 * text format.
 */
import { describe, expect, it } from "vitest";
import type { Stream } from "../../connectors/types.ts";
import { destinationType } from "../../sync/column_types.ts";
import { copyText } from "../../sync/copy_writer.ts";
import { cursorFor, maxCursor, reviveCursor, storeCursor } from "../../sync/cursor.ts";
import { chooseTableNames, foldName, stagingTableName } from "../../sync/naming.ts";
import { columnNameFor, planTable } from "../../sync/table_plan.ts";

function stream(name: string, columns: [string, string][], extra: Partial<Stream> = {}): Stream {
  return {
    name,
    kind: "table",
    rowCount: null,
    rowCountExact: false,
    columns: columns.map(([column, type]) => ({ name: column, type, nullable: true })),
    constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [] },
    ...extra,
  };
}

describe("destination types", () => {
  it("maps the app's vocabulary, sampled types checked", () => {
    expect(destinationType("integer")).toEqual({ sql: "bigint", kind: "integer", inferred: true });
    expect(destinationType("number").sql).toBe("double precision");
    expect(destinationType("timestamp").sql).toBe("timestamptz");
    expect(destinationType("object").sql).toBe("jsonb");
    expect(destinationType("array").sql).toBe("jsonb");
    expect(destinationType("text")).toMatchObject({ sql: "text", inferred: false });
  });

  it("keeps a declared integer an integer, unchecked", () => {
    expect(destinationType("integer", { declared: true })).toEqual({
      sql: "integer",
      kind: "integer",
      inferred: false,
    });
  });

  it("maps PostgreSQL's and MySQL's native names without losing values", () => {
    const cases: [string, string][] = [
      ["character varying(255)", "text"],
      ["numeric(12,2)", "numeric(12,2)"],
      ["numeric", "numeric"],
      ["timestamp with time zone", "timestamptz"],
      ["timestamp(3) without time zone", "timestamp"],
      ["integer[]", "jsonb"],
      ["_int4", "jsonb"],
      ["uuid", "uuid"],
      ["bytea", "bytea"],
      ["int(10) unsigned", "bigint"],
      ["bigint(20) unsigned", "numeric(20,0)"],
      ["tinyint(1)", "smallint"],
      ["decimal(10,2)", "numeric(10,2)"],
      ["datetime(6)", "timestamp"],
      ["time", "text"],
      ["longblob", "bytea"],
      ["enum('a','b')", "text"],
      ["json", "jsonb"],
      ["geometry", "text"],
      ["USER-DEFINED", "text"],
    ];
    for (const [source, sql] of cases) expect(destinationType(source).sql, source).toBe(sql);
  });
});

describe("names", () => {
  it("folds stream names into plain table names", () => {
    expect(foldName("Order Items")).toBe("order_items");
    expect(foldName("/v1/users")).toBe("v1_users");
    expect(foldName("2024 exports")).toBe("t_2024_exports");
    expect(foldName("Ünïcode 列")).toBe("unicode");
    expect(foldName("***")).toBe("stream");
  });

  it("prefixes the schema only where two schemas share a name, and keeps names once chosen", () => {
    const discovered = [
      stream("orders", [], { schema: "public" }),
      stream("orders", [], { schema: "archive" }),
      stream("customers", [], { schema: "public" }),
    ];
    const names = chooseTableNames(discovered, {
      discovered,
      kept: new Map([["public.customers", "clients"]]),
    });
    expect(Object.fromEntries(names)).toEqual({
      "public.orders": "public_orders",
      "archive.orders": "archive_orders",
      "public.customers": "clients",
    });
  });

  it("keeps staging names within PostgreSQL's identifier length", () => {
    expect(stagingTableName("abcdefghijklmnopqrstuvwx", 12).length).toBeLessThanOrEqual(63);
  });

  it("keeps column names as they are unless PostgreSQL cannot hold them", () => {
    const taken = new Set<string>();
    expect(columnNameFor("Order Id", { position: 0, taken })).toBe("Order Id");
    expect(columnNameFor("", { position: 1, taken })).toBe("column_2");
    const long = "x".repeat(70);
    const name = columnNameFor(long, { position: 2, taken });
    expect(new TextEncoder().encode(name).length).toBeLessThanOrEqual(63);
    expect(columnNameFor(long, { position: 3, taken })).not.toBe(name);
  });
});

describe("cursors", () => {
  it("suggests an updated_at-like timestamp, else an integer key, else none", () => {
    expect(cursorFor(stream("a", [["id", "integer"], ["UpdatedAt", "timestamp with time zone"]])))
      .toEqual({ column: "UpdatedAt", source: "suggested" });
    const keyed = stream("b", [["id", "bigint"], ["name", "text"]], {
      constraints: { primaryKeys: ["id"], foreignKeys: [], uniqueKeys: [] },
    });
    expect(cursorFor(keyed)).toEqual({ column: "id", source: "suggested" });
    expect(cursorFor(stream("c", [["name", "text"]])).column).toBeNull();
    expect(cursorFor(keyed, "name")).toEqual({ column: "name", source: "chosen" });
    expect(cursorFor(keyed, "missing").column).toBeNull();
  });

  it("finds the largest value by the column's kind", () => {
    const rows = [{ n: "9" }, { n: "10" }, { n: "12345678901234567891" }, { n: null }];
    expect(maxCursor(rows, { current: undefined, field: "n", kind: "numeric" })).toBe(
      "12345678901234567891",
    );
    // 01:30+02:00 is 23:30 UTC the day before: earlier than 00:30+00:00.
    const times = [{ t: "2025-03-30T00:30:00+00:00" }, { t: "2025-03-30T01:30:00+02:00" }];
    expect(maxCursor(times, { current: undefined, field: "t", kind: "timestamptz" }))
      .toBe("2025-03-30T00:30:00+00:00");
    expect(maxCursor([{ d: "2024-01-01" }], { current: "2024-01-02", field: "d", kind: "date" }))
      .toBe("2024-01-02");
  });

  it("keeps a cursor's type through storage", () => {
    for (const value of [new Date("2025-01-01T00:00:00Z"), 12n, 3.5, "abc"]) {
      expect(reviveCursor(JSON.parse(JSON.stringify(storeCursor(value))))).toEqual(value);
    }
  });
});

describe("COPY text", () => {
  it("escapes what COPY's text format needs and writes NULL as \\N", () => {
    const plan = planTable(
      stream("t", [["a", "text"], ["b", "jsonb"], ["c", "boolean"], ["d", "bytea"]]),
      { schema: "s", table: "t" },
    );
    const text = copyText([
      { a: "tab\there\\ and\nline\r", b: { x: "y\tz" }, c: true, d: new Uint8Array([1, 255]) },
      { a: null, b: null, c: null, d: null },
    ], plan.columns);
    expect(text).toBe(
      'tab\\there\\\\ and\\nline\\r\t{"x":"y\\\\tz"}\tt\t\\\\x01ff\n\\N\t\\N\t\\N\t\\N\n',
    );
  });
});
