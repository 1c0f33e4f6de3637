// deno-lint-ignore-file no-explicit-any
/**
 * File sources synced into PostgreSQL (COPY): a CSV file under FILES_DIR, loaded in full,
 * then rewritten with changed and added rows and loaded incrementally past its updated_at.
 * Cells are typed by what discovery sampled; a later cell that does not fit widens its
 * column to text instead of failing the run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSource, startSyncApp, syncedRows, syncNow } from "../helpers/sync.ts";

let app: Awaited<ReturnType<typeof startSyncApp>>;
let filesDir: string;

beforeAll(async () => {
  filesDir = await Deno.makeTempDir({ prefix: "dafel-sync-files-" });
  app = await startSyncApp({ env: { FILES_DIR: filesDir } });
});
afterAll(async () => {
  await app?.close();
  await Deno.remove(filesDir, { recursive: true }).catch(() => {});
});

function csv(rows: (string | number)[][]): string {
  return rows.map((row) => row.join(",")).join("\n") + "\n";
}

describe("CSV file source", () => {
  let sourceId: string;
  const header = ["id", "name", "amount", "joined", "updated_at"];
  const rows: (string | number)[][] = Array.from({ length: 3000 }, (_, i) => [
    i + 1,
    `"Name, ${i + 1}"`,
    (i * 1.25).toFixed(2),
    `2024-02-${String((i % 28) + 1).padStart(2, "0")}`,
    new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
  ]);

  beforeAll(async () => {
    await Deno.mkdir(`${filesDir}/exports`, { recursive: true });
    await Deno.writeTextFile(`${filesDir}/exports/Customers 2024.csv`, csv([header, ...rows]));
    sourceId = await createSource(app.t, app.cookie, {
      name: "Customers file",
      type: "CSV_FILE",
      configuration: { filePath: "exports/Customers 2024.csv" },
    });
  });

  it("loads the file with the types its cells have", async () => {
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.recordsSync).toBe(3000);
    expect(log.streamResults[0].table).toMatch(/\.customers_2024$/);
    const types = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "pg_typeof(id)::text as id, pg_typeof(amount)::text as amount, " +
        "pg_typeof(joined)::text as joined, pg_typeof(updated_at)::text as updated_at",
      orderBy: "1 limit 1",
    });
    expect(types[0]).toEqual({
      id: "bigint",
      amount: "double precision",
      joined: "date",
      updated_at: "timestamp with time zone",
    });
    const [second] = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "id::int as id, name, amount, joined::text as joined",
      orderBy: "id offset 1 limit 1",
    });
    expect(second).toEqual({ id: 2, name: "Name, 2", amount: 1.25, joined: "2024-02-02" });
  });

  it("loads changed and added rows past the cursor, widening a column a new cell does not fit", async () => {
    rows[4][1] = '"Changed"';
    rows[4][4] = "2030-01-01T00:00:00.000Z";
    rows.push([3001, '"Late"', "n/a", "2024-03-01", "2030-01-02T00:00:00.000Z"]);
    await Deno.writeTextFile(`${filesDir}/exports/Customers 2024.csv`, csv([header, ...rows]));
    const settings = await app.t.call("PUT", `/api/data-sources/${sourceId}/sync-settings`, {
      cookie: app.cookie,
      json: { mode: "incremental", cursorColumns: { "Customers 2024": "updated_at" } },
    });
    expect(settings.status, settings.text).toBe(200);
    const log = await syncNow(app.t, { cookie: app.cookie, sourceId });
    expect(log.status, log.errorMessage).toBe("SUCCEEDED");
    expect(log.mode).toBe("incremental");
    expect(log.recordsSync).toBe(2);
    const changed = await syncedRows<any>(app.t, {
      sourceId,
      table: "customers_2024",
      columns: "id::int as id, name, amount::text as amount",
      orderBy: "id",
    });
    // Without a key in the file, incremental rows are appended: 3000 + 2.
    expect(changed.length).toBe(3002);
    expect(changed.filter((row) => row.name === "Changed").length).toBe(1);
    expect(changed.find((row) => row.id === 3001)).toEqual({
      id: 3001,
      name: "Late",
      amount: "n/a",
    });
  });
});
