/**
 * Loading into the embedded PGlite with batched multi-row inserts. PGlite runs one query at
 * a time for the whole app, so a load never holds a transaction across batches: a full
 * refresh fills a committed staging table batch by batch (pages keep answering in between)
 * and swaps it in with one short transaction; a staging table left by a killed run is
 * dropped by the next cleanup. Incremental batches are upserted by primary key, each in a
 * transaction with the cursor it reached.
 */
import type { PGlite, Transaction } from "@electric-sql/pglite";
import { maxCursor } from "./cursor.ts";
import {
  type Destination,
  type LoadResult,
  type Row,
  SAVE_STATE_SQL,
  saveStateParams,
  STAGING_TABLES_SQL,
  stagingLogId,
} from "./destination.ts";
import {
  type ColumnChange,
  columnDefinitions,
  cursorOf,
  followBatch,
  type PlannedColumn,
  qualified,
  quoteIdent,
  type TablePlan,
} from "./table_plan.ts";
import { valueText } from "./values.ts";

type Queryable = PGlite | Transaction;

/** PostgreSQL's limit on parameters of one statement. */
const MAX_PARAMETERS = 65_535;
/** Rows per INSERT statement at most; larger statements only cost parse time. */
const MAX_ROWS_PER_INSERT = 1_000;

/** Parameters go over as text (valueText); bytea's own serializer would want bytes. */
const TEXT_SERIALIZERS = { serializers: { 17: (value: unknown) => String(value) } };

async function applyChanges(db: Queryable, target: string, changes: ColumnChange[]) {
  for (const change of changes) {
    const column = quoteIdent(change.column.name);
    const type = change.column.type.sql;
    await db.exec(
      change.kind === "add"
        ? `alter table ${target} add column if not exists ${column} ${type}`
        : `alter table ${target} alter column ${column} type ${type} using ${column}::${type}`,
    );
  }
}

/** INSERT statements for `rows`, each within the parameter limit. */
function insertStatements(
  target: string,
  columns: PlannedColumn[],
  rows: Row[],
  conflict: string,
): { sql: string; params: (string | null)[] }[] {
  const names = columns.map((column) => quoteIdent(column.name)).join(", ");
  const perStatement = Math.max(
    1,
    Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length))),
  );
  const statements: { sql: string; params: (string | null)[] }[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: (string | null)[] = [];
    const tuples: string[] = [];
    for (const row of chunk) {
      const placeholders: string[] = [];
      for (const column of columns) {
        params.push(valueText(row[column.field], column.type.kind));
        placeholders.push(`$${params.length}`);
      }
      tuples.push(`(${placeholders.join(", ")})`);
    }
    statements.push({
      sql: `insert into ${target} (${names}) values ${tuples.join(", ")}${conflict}`,
      params,
    });
  }
  return statements;
}

async function insertRows(
  db: Queryable,
  target: string,
  plan: TablePlan,
  options: { rows: Row[]; conflict?: string },
) {
  for (
    const statement of insertStatements(target, plan.columns, options.rows, options.conflict ?? "")
  ) {
    await db.query(statement.sql, statement.params, TEXT_SERIALIZERS);
  }
}

async function existingColumns(db: Queryable, schema: string, table: string) {
  const result = await db.query<{ name: string }>(
    `select a.attname as name from pg_attribute a
      where a.attrelid = ($1 || '.' || $2)::regclass and a.attnum > 0 and not a.attisdropped`,
    [quoteIdent(schema), quoteIdent(table)],
  );
  return new Set(result.rows.map((row) => row.name));
}

async function existingKey(db: Queryable, schema: string, table: string): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    `select a.attname as name
       from pg_index i
       join lateral unnest(i.indkey) with ordinality as k(attnum, position) on true
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = ($1 || '.' || $2)::regclass and i.indisprimary
      order by k.position`,
    [quoteIdent(schema), quoteIdent(table)],
  );
  return result.rows.map((row) => row.name);
}

/** The last row of each key: one INSERT ... ON CONFLICT cannot touch a row twice. */
function lastRowPerKey(rows: Row[], plan: TablePlan, key: string[]): Row[] {
  const fields = key.map((name) => plan.columns.find((column) => column.name === name)!);
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const id = JSON.stringify(
      fields.map((column) => valueText(row[column.field], column.type.kind)),
    );
    byKey.delete(id);
    byKey.set(id, row);
  }
  return [...byKey.values()];
}

/** The PGlite destination. */
export function pgliteDestination(pglite: PGlite): Destination {
  return {
    kind: "pglite",

    async ensureSchema(schema) {
      await pglite.exec(`create schema if not exists ${quoteIdent(schema)}`);
    },

    async tableExists(schema, table) {
      const result = await pglite.query<{ found: boolean }>(
        `select to_regclass($1) is not null as found`,
        [qualified(schema, table)],
      );
      return result.rows[0].found;
    },

    async replace(options) {
      const { plan, staging, state } = options;
      const stagingTable = qualified(plan.schema, staging);
      await pglite.exec(`create table ${stagingTable} (${columnDefinitions(plan.columns)})`);
      let records = 0;
      let cursor: unknown = undefined;
      try {
        for await (const rows of options.batches) {
          await pglite.transaction(async (tx) => {
            const changes = followBatch(plan, rows);
            await applyChanges(tx, stagingTable, changes);
            await insertRows(tx, stagingTable, plan, { rows });
          });
          records += rows.length;
          if (options.cursorField) {
            cursor = maxCursor(rows, { current: cursor, ...cursorOf(plan, options.cursorField) });
          }
          await options.onBatch(records);
        }
        return await pglite.transaction(async (tx): Promise<LoadResult> => {
          const target = qualified(plan.schema, plan.table);
          if (plan.primaryKey.length) {
            await tx.exec(
              `alter table ${stagingTable} add constraint ${
                quoteIdent(`${staging}_pkey`)
              } primary key (${plan.primaryKey.map(quoteIdent).join(", ")})`,
            );
          }
          await tx.exec(`drop table if exists ${target}`);
          await tx.exec(`alter table ${stagingTable} rename to ${quoteIdent(plan.table)}`);
          if (plan.primaryKey.length) {
            await tx.exec(
              `alter index ${qualified(plan.schema, `${staging}_pkey`)} rename to ${
                quoteIdent(`${plan.table}_pkey`)
              }`,
            );
          }
          await tx.query(SAVE_STATE_SQL, saveStateParams(state, { rowCount: records, cursor }));
          return { records, rowCount: records, cursor };
        });
      } catch (error) {
        await pglite.exec(`drop table if exists ${stagingTable}`).catch(() => {});
        throw error;
      }
    },

    async upsert(options) {
      const { plan, state } = options;
      const target = qualified(plan.schema, plan.table);
      const key = await pglite.transaction(async (tx) => {
        const primaryKey = plan.primaryKey.length
          ? `, primary key (${plan.primaryKey.map(quoteIdent).join(", ")})`
          : "";
        await tx.exec(
          `create table if not exists ${target} (${columnDefinitions(plan.columns)}${primaryKey})`,
        );
        const present = await existingColumns(tx, plan.schema, plan.table);
        await applyChanges(
          tx,
          target,
          plan.columns.filter((column) => !present.has(column.name))
            .map((column) => ({ kind: "add" as const, column })),
        );
        const tableKey = await existingKey(tx, plan.schema, plan.table);
        const planned = new Set(plan.columns.map((column) => column.name));
        return tableKey.length && tableKey.every((name) => planned.has(name)) ? tableKey : [];
      });
      let records = 0;
      let cursor = options.startCursor;
      for await (const rows of options.batches) {
        const reached = options.cursorField
          ? maxCursor(rows, { current: cursor, ...cursorOf(plan, options.cursorField) })
          : cursor;
        await pglite.transaction(async (tx) => {
          await applyChanges(tx, target, followBatch(plan, rows));
          if (key.length === 0) {
            await insertRows(tx, target, plan, { rows });
          } else {
            const keys = key.map(quoteIdent).join(", ");
            const updates = plan.columns.filter((column) => !key.includes(column.name))
              .map((column) => `${quoteIdent(column.name)} = excluded.${quoteIdent(column.name)}`);
            await insertRows(tx, target, plan, {
              rows: lastRowPerKey(rows, plan, key),
              conflict: ` on conflict (${keys}) do ${
                updates.length ? `update set ${updates.join(", ")}` : "nothing"
              }`,
            });
          }
          await tx.query(
            SAVE_STATE_SQL,
            saveStateParams(state, { rowCount: null, cursor: reached }),
          );
        });
        cursor = reached;
        records += rows.length;
        await options.onBatch(records);
      }
      const result = await pglite.query<{ count: number }>(
        `select count(*)::integer as count from ${target}`,
      );
      const rowCount = result.rows[0].count;
      await pglite.query(SAVE_STATE_SQL, saveStateParams(state, { rowCount, cursor }));
      return { records, rowCount, cursor };
    },

    async dropStaleStaging(running) {
      const result = await pglite.query<{ schema: string; name: string }>(STAGING_TABLES_SQL);
      const dropped: string[] = [];
      if (result.rows.length === 0) return dropped;
      const isRunning = await running();
      for (const table of result.rows) {
        if (isRunning(stagingLogId(table.name))) continue;
        await pglite.exec(`drop table if exists ${qualified(table.schema, table.name)}`);
        dropped.push(`${table.schema}.${table.name}`);
      }
      return dropped;
    },
  };
}
