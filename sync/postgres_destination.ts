/**
 * Loading into PostgreSQL with COPY. A full refresh runs in one transaction: create the
 * staging table (with its key), COPY every batch into it, swap it for the table and
 * save the stream's state; a failed or killed run rolls all of it back, so the old table and
 * state stay as they were and no staging table is left behind. An incremental batch is
 * COPYed into a temporary table of a reserved session and upserted by primary key in its
 * own transaction, together with the cursor it reached.
 *
 * Rows a source sends as COPY text already (`copy`) take the same ways without becoming
 * rows: into the staging table in the one transaction of a full refresh, or into the
 * temporary table and upserted in one transaction with the cursor the source read with them.
 */
import type postgres from "postgres";
import { maxCursor } from "./cursor.ts";
import { copyText, type CopyWriter, openCopy } from "./copy_writer.ts";
import { pumpCopy } from "./copy_transfer.ts";
import {
  type CopyLoadOptions,
  type Destination,
  type LoadResult,
  SAVE_STATE_SQL,
  saveStateParams,
  STAGING_TABLES_SQL,
  stagingLogId,
  type StreamState,
} from "./destination.ts";
import {
  type ColumnChange,
  columnDefinitions,
  cursorOf,
  followBatch,
  qualified,
  quoteIdent,
  type TablePlan,
} from "./table_plan.ts";

type Session = postgres.TransactionSql | postgres.ReservedSql;

/** Applies column changes to a table (staging, target or the incoming temp table). */
async function applyChanges(sql: Session, target: string, changes: ColumnChange[]) {
  for (const change of changes) {
    const column = quoteIdent(change.column.name);
    if (change.kind === "add") {
      await sql.unsafe(
        `alter table ${target} add column if not exists ${column} ${change.column.type.sql}`,
      );
    } else {
      await sql.unsafe(
        `alter table ${target} alter column ${column} type ${change.column.type.sql} using ${column}::${change.column.type.sql}`,
      );
    }
  }
}

function keyList(plan: TablePlan): string {
  return plan.primaryKey.map(quoteIdent).join(", ");
}

/** Columns the table has now (to add those the source gained since). */
async function existingColumns(sql: Session, schema: string, table: string): Promise<Set<string>> {
  const rows = await sql.unsafe<{ name: string }[]>(
    `select a.attname as name from pg_attribute a
      where a.attrelid = ($1 || '.' || $2)::regclass and a.attnum > 0 and not a.attisdropped`,
    [quoteIdent(schema), quoteIdent(table)],
  );
  return new Set(rows.map((row) => row.name));
}

/** The primary key columns of an existing table, in key order; empty without one. */
async function existingKey(sql: Session, schema: string, table: string): Promise<string[]> {
  const rows = await sql.unsafe<{ name: string }[]>(
    `select a.attname as name
       from pg_index i
       join lateral unnest(i.indkey) with ordinality as k(attnum, position) on true
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = ($1 || '.' || $2)::regclass and i.indisprimary
      order by k.position`,
    [quoteIdent(schema), quoteIdent(table)],
  );
  return rows.map((row) => row.name);
}

/** Makes the target exist with the plan's columns; returns the key usable for upserts. */
async function prepareTarget(sql: Session, plan: TablePlan): Promise<string[]> {
  const target = qualified(plan.schema, plan.table);
  const key = plan.primaryKey.length ? `, primary key (${keyList(plan)})` : "";
  await sql.unsafe(
    `create table if not exists ${target} (${columnDefinitions(plan.columns)}${key})`,
  );
  const present = await existingColumns(sql, plan.schema, plan.table);
  const missing = plan.columns.filter((column) => !present.has(column.name));
  await applyChanges(sql, target, missing.map((column) => ({ kind: "add", column })));
  const tableKey = await existingKey(sql, plan.schema, plan.table);
  const planned = new Set(plan.columns.map((column) => column.name));
  // Upsert on the table's own key, as long as every row carries it.
  return tableKey.length && tableKey.every((name) => planned.has(name)) ? tableKey : [];
}

/** The upsert from the incoming temp table: the last row of each key wins. */
function upsertSql(plan: TablePlan, incoming: string, key: string[]): string {
  const target = qualified(plan.schema, plan.table);
  const names = plan.columns.map((column) => quoteIdent(column.name));
  const list = names.join(", ");
  if (key.length === 0) return `insert into ${target} (${list}) select ${list} from ${incoming}`;
  const keys = key.map(quoteIdent).join(", ");
  const updates = plan.columns.filter((column) => !key.includes(column.name))
    .map((column) => `${quoteIdent(column.name)} = excluded.${quoteIdent(column.name)}`);
  return `insert into ${target} (${list})
    select distinct on (${keys}) ${list} from ${incoming} order by ${keys}, "_dafel_seq" desc
    on conflict (${keys}) do ${updates.length ? `update set ${updates.join(", ")}` : "nothing"}`;
}

/** Creates a full refresh's staging table, its key there from the start. */
async function createStaging(tx: Session, options: { plan: TablePlan; staging: string }) {
  const { plan, staging } = options;
  // The key is there from the start: PostgreSQL maintains it while COPY streams (on its
  // own core, while this process reads the next batch) instead of building it after.
  const key = plan.primaryKey.length
    ? `, constraint ${quoteIdent(`${staging}_pkey`)} primary key (${keyList(plan)})`
    : "";
  await tx.unsafe(
    `create table ${qualified(plan.schema, staging)} (${columnDefinitions(plan.columns)}${key})`,
  );
}

/** Puts a loaded staging table in the place of the table, its key renamed with it. */
async function swapIn(tx: Session, options: { plan: TablePlan; staging: string }) {
  const { plan, staging } = options;
  await tx.unsafe(`drop table if exists ${qualified(plan.schema, plan.table)}`);
  await tx.unsafe(
    `alter table ${qualified(plan.schema, staging)} rename to ${quoteIdent(plan.table)}`,
  );
  if (plan.primaryKey.length) {
    await tx.unsafe(
      `alter index ${qualified(plan.schema, `${staging}_pkey`)} rename to ${
        quoteIdent(`${plan.table}_pkey`)
      }`,
    );
  }
}

/** A fresh name for an incremental load's temporary table. */
function incomingName(): string {
  return `pg_temp.${quoteIdent(`_dafel_incoming_${crypto.randomUUID().slice(0, 8)}`)}`;
}

/** A temporary table like the target, numbering rows as they come (the last one wins). */
async function createIncoming(session: Session, tables: { incoming: string; target: string }) {
  const { incoming, target } = tables;
  await session.unsafe(`create temp table ${incoming} (like ${target})`);
  await session.unsafe(
    `alter table ${incoming} add column "_dafel_seq" bigint generated always as identity`,
  );
}

/** Moves a source's COPY text into `target` (a COPY FROM STDIN on `sql`); rows counted. */
async function copyInto(
  sql: Session,
  options: CopyLoadOptions & { target: string },
): Promise<{ records: number; cursor: unknown }> {
  const { plan, signal } = options;
  let writer: CopyWriter | undefined;
  try {
    writer = await openCopy(sql, options.target, { columns: plan.columns, signal });
    const moved = await pumpCopy(options.source, {
      writer,
      signal,
      idleMs: options.idleMs,
      batchRows: options.batchRows,
      onBatch: options.onBatch,
    });
    await writer.finish();
    return { records: moved.records, cursor: moved.end.cursor };
  } catch (error) {
    // Leave COPY mode so the transaction can roll back on this connection.
    writer?.abort(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/**
 * An incremental load's frame, the same for rows and COPY text: the target table ready with
 * its key, a reserved session holding a temporary incoming table like it, and, once `load`
 * has upserted its rows, the table's row count saved with the cursor `load` reached. The
 * incoming table is dropped and the session released however the load ends.
 */
async function upsertThroughIncoming(
  client: postgres.Sql,
  options: { plan: TablePlan; state: StreamState },
  load: (incoming: {
    session: postgres.ReservedSql;
    table: string;
    target: string;
    key: string[];
  }) => Promise<{ records: number; cursor: unknown }>,
): Promise<LoadResult> {
  const { plan, state } = options;
  const key = await client.begin((tx) => prepareTarget(tx, plan));
  const target = qualified(plan.schema, plan.table);
  const session = await client.reserve();
  const table = incomingName();
  try {
    await createIncoming(session, { incoming: table, target });
    const { records, cursor } = await load({ session, table, target, key });
    const [{ count }] = await session.unsafe<{ count: string }[]>(
      `select count(*) as count from ${target}`,
    );
    const rowCount = Number(count);
    await session.unsafe(SAVE_STATE_SQL, saveStateParams(state, { rowCount, cursor }));
    return { records, rowCount, cursor };
  } finally {
    await session.unsafe(`drop table if exists ${table}`).catch(() => {});
    session.release();
  }
}

/** The PostgreSQL destination over a postgres.js client. */
export function postgresDestination(client: postgres.Sql): Destination {
  return {
    kind: "postgres",

    async ensureSchema(schema) {
      await client.unsafe(`create schema if not exists ${quoteIdent(schema)}`);
    },

    async tableExists(schema, table) {
      const [row] = await client.unsafe<{ found: boolean }[]>(
        `select to_regclass($1) is not null as found`,
        [qualified(schema, table)],
      );
      return row.found;
    },

    async replace(options) {
      const { plan, staging, state } = options;
      const signal = new AbortController();
      return await client.begin(async (tx): Promise<LoadResult> => {
        const stagingTable = qualified(plan.schema, staging);
        await createStaging(tx, { plan, staging });
        let copy = await openCopy(tx, stagingTable, {
          columns: plan.columns,
          signal: signal.signal,
        });
        let records = 0;
        let cursor: unknown = undefined;
        try {
          for await (const rows of options.batches) {
            const changes = followBatch(plan, rows);
            if (changes.length) {
              await copy.finish();
              await applyChanges(tx, stagingTable, changes);
              copy = await openCopy(tx, stagingTable, {
                columns: plan.columns,
                signal: signal.signal,
              });
            }
            await copy.write(copyText(rows, plan.columns));
            records += rows.length;
            if (options.cursorField) {
              cursor = maxCursor(rows, { current: cursor, ...cursorOf(plan, options.cursorField) });
            }
            await options.onBatch(records);
          }
          await copy.finish();
        } catch (error) {
          // Leave COPY mode so the transaction can roll back on this connection.
          copy.abort(error instanceof Error ? error : new Error(String(error)));
          signal.abort();
          throw error;
        }
        await swapIn(tx, { plan, staging });
        await tx.unsafe(SAVE_STATE_SQL, saveStateParams(state, { rowCount: records, cursor }));
        return { records, rowCount: records, cursor };
      });
    },

    async upsert(options) {
      const { plan, state } = options;
      return await upsertThroughIncoming(client, { plan, state }, async (incoming) => {
        const { session, target, key } = incoming;
        let records = 0;
        let cursor = options.startCursor;
        for await (const rows of options.batches) {
          await session.unsafe("begin");
          let copy;
          try {
            const changes = followBatch(plan, rows);
            if (changes.length) {
              await applyChanges(session, target, changes);
              await applyChanges(session, incoming.table, changes);
            }
            copy = await openCopy(session, incoming.table, { columns: plan.columns });
            await copy.write(copyText(rows, plan.columns));
            await copy.finish();
            copy = undefined;
            await session.unsafe(upsertSql(plan, incoming.table, key));
            await session.unsafe(`truncate ${incoming.table}`);
            const reached = options.cursorField
              ? maxCursor(rows, { current: cursor, ...cursorOf(plan, options.cursorField) })
              : cursor;
            await session.unsafe(
              SAVE_STATE_SQL,
              saveStateParams(state, { rowCount: null, cursor: reached }),
            );
            await session.unsafe("commit");
            cursor = reached;
          } catch (error) {
            copy?.abort(error instanceof Error ? error : new Error(String(error)));
            await session.unsafe("rollback").catch(() => {});
            throw error;
          }
          records += rows.length;
          await options.onBatch(records);
        }
        return { records, cursor };
      });
    },

    copy: {
      async replace(options) {
        const { plan, staging, state } = options;
        return await client.begin(async (tx): Promise<LoadResult> => {
          await createStaging(tx, { plan, staging });
          const { records, cursor } = await copyInto(tx, {
            ...options,
            target: qualified(plan.schema, staging),
          });
          await swapIn(tx, { plan, staging });
          await tx.unsafe(SAVE_STATE_SQL, saveStateParams(state, { rowCount: records, cursor }));
          return { records, rowCount: records, cursor };
        });
      },

      async upsert(options) {
        const { plan, state } = options;
        return await upsertThroughIncoming(client, { plan, state }, async (incoming) => {
          const { session, key } = incoming;
          await session.unsafe("begin");
          try {
            const loaded = await copyInto(session, { ...options, target: incoming.table });
            await session.unsafe(upsertSql(plan, incoming.table, key));
            // The source's high-water mark of exactly these rows; none past the start: keep it.
            const cursor = loaded.cursor ?? options.startCursor;
            await session.unsafe(
              SAVE_STATE_SQL,
              saveStateParams(state, { rowCount: null, cursor }),
            );
            await session.unsafe("commit");
            return { records: loaded.records, cursor };
          } catch (error) {
            await session.unsafe("rollback").catch(() => {});
            throw error;
          }
        });
      },
    },

    async dropStaleStaging(running) {
      const tables = await client.unsafe<{ schema: string; name: string }[]>(STAGING_TABLES_SQL);
      const dropped: string[] = [];
      if (tables.length === 0) return dropped;
      const isRunning = await running();
      for (const table of tables) {
        if (isRunning(stagingLogId(table.name))) continue;
        await client.unsafe(`drop table if exists ${qualified(table.schema, table.name)}`);
        dropped.push(`${table.schema}.${table.name}`);
      }
      return dropped;
    },
  };
}
