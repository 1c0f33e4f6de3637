/** The diff between two discoveries of a source (what GET .../schema/changes returns). */
import { describe, expect, it } from "vitest";
import { diffSchemas } from "../connectors/schema_diff.ts";
import type { Column, Discovery, Stream } from "../connectors/types.ts";

function column(name: string, type = "integer", nullable = false): Column {
  return { name, type, nullable };
}

function table(name: string, columns: Column[], constraints: Partial<Stream["constraints"]> = {}) {
  return {
    name,
    schema: "public",
    kind: "table",
    columns,
    rowCount: 10,
    rowCountExact: true,
    constraints: { primaryKeys: [], foreignKeys: [], uniqueKeys: [], ...constraints },
  } satisfies Stream;
}

const base: Discovery = {
  streams: [
    table("customers", [column("id"), column("email", "text")], {
      primaryKeys: ["id"],
      uniqueKeys: ["email"],
      uniqueConstraints: [{ name: "customers_email", columns: ["email"] }],
    }),
    table("orders", [column("id"), column("customer_id"), column("note", "text", true)], {
      primaryKeys: ["id"],
      foreignKeys: [{
        name: "orders_customer",
        columns: ["customer_id"],
        referencedSchema: "public",
        referencedTable: "customers",
        referencedColumns: ["id"],
      }],
    }),
    table("legacy", [column("id")]),
  ],
};

describe("diffSchemas", () => {
  it("says unchanged for the same schema, whatever the row counts", () => {
    const counted = structuredClone(base);
    counted.streams[0].rowCount = 99;
    counted.streams[1].rowCountExact = false;
    const diff = diffSchemas(base, counted);
    expect(diff.unchanged).toBe(true);
    expect(diff.tablesAdded).toEqual([]);
    expect(diff.keysChanged).toEqual([]);
  });

  it("lists tables added and removed with their schema", () => {
    const after = structuredClone(base);
    after.streams = after.streams.filter((stream) => stream.name !== "legacy");
    after.streams.push({ ...table("invoices", [column("id")]), schema: "billing" });
    const diff = diffSchemas(base, after);
    expect(diff.tablesAdded).toEqual([{ schema: "billing", name: "invoices" }]);
    expect(diff.tablesRemoved).toEqual([{ schema: "public", name: "legacy" }]);
    expect(diff.unchanged).toBe(false);
  });

  it("tells a table of the same name in another schema apart", () => {
    const after = structuredClone(base);
    after.streams[2].schema = "archive";
    const diff = diffSchemas(base, after);
    expect(diff.tablesAdded).toEqual([{ schema: "archive", name: "legacy" }]);
    expect(diff.tablesRemoved).toEqual([{ schema: "public", name: "legacy" }]);
  });

  it("lists columns added and removed, type and nullability changes", () => {
    const after = structuredClone(base);
    const orders = after.streams[1];
    orders.columns = [
      column("id", "bigint"),
      column("customer_id", "integer", true),
      column("placed_at", "timestamp with time zone"),
    ];
    const diff = diffSchemas(base, after);
    expect(diff.columnsAdded).toEqual([
      { schema: "public", name: "orders", column: "placed_at", type: "timestamp with time zone" },
    ]);
    expect(diff.columnsRemoved).toEqual([
      { schema: "public", name: "orders", column: "note", type: "text" },
    ]);
    expect(diff.typesChanged).toEqual([
      { schema: "public", name: "orders", column: "id", from: "integer", to: "bigint" },
    ]);
    expect(diff.nullabilityChanged).toEqual([
      { schema: "public", name: "orders", column: "customer_id", from: false, to: true },
    ]);
  });

  it("reports primary, foreign and unique key changes", () => {
    const after = structuredClone(base);
    after.streams[0].constraints.primaryKeys = ["id", "email"];
    after.streams[0].constraints.uniqueConstraints = [];
    after.streams[1].constraints.foreignKeys[0].referencedColumns = ["email"];
    const diff = diffSchemas(base, after);
    expect(diff.keysChanged).toEqual([
      {
        schema: "public",
        name: "customers",
        kind: "primaryKey",
        from: ["id"],
        to: ["id", "email"],
      },
      {
        schema: "public",
        name: "customers",
        kind: "uniqueKeys",
        from: [{ name: "customers_email", columns: ["email"] }],
        to: [],
      },
      expect.objectContaining({ name: "orders", kind: "foreignKeys" }),
    ]);
  });

  it("does not count a reordered list of keys as a change, but a reordered primary key is one", () => {
    const before: Discovery = {
      streams: [table("pairs", [column("a"), column("b")], {
        primaryKeys: ["a", "b"],
        uniqueConstraints: [{ name: "u1", columns: ["a"] }, { name: "u2", columns: ["b"] }],
      })],
    };
    const reordered = structuredClone(before);
    reordered.streams[0].constraints.uniqueConstraints!.reverse();
    expect(diffSchemas(before, reordered).unchanged).toBe(true);
    const swapped = structuredClone(before);
    swapped.streams[0].constraints.primaryKeys = ["b", "a"];
    expect(diffSchemas(before, swapped).keysChanged).toEqual([
      { schema: "public", name: "pairs", kind: "primaryKey", from: ["a", "b"], to: ["b", "a"] },
    ]);
  });

  it("names tables without a schema by name alone", () => {
    const before: Discovery = {
      streams: [{ ...table("sheet", [column("a", "text")]), schema: undefined }],
    };
    const after: Discovery = {
      streams: [{ ...table("sheet", [column("a", "number")]), schema: undefined }],
    };
    expect(diffSchemas(before, after).typesChanged).toEqual([
      { name: "sheet", column: "a", from: "text", to: "number" },
    ]);
  });
});
