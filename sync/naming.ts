/**
 * Where synced data lands: schema `ds_<source id>`, one table per stream. Stream names can be
 * anything (`sales.Order Items`, `/v1/users`, `exports/2024/june.csv`), so table names are
 * folded to lowercase letters, digits and underscores; a name is chosen at a stream's first
 * sync and kept in its state, so it never moves under the people querying it.
 */
import type { Stream, StreamRef } from "../connectors/types.ts";

/** How streams are named in settings, requests and logs: `schema.name`, or `name`. */
export function streamKey(stream: StreamRef): string {
  return stream.schema === undefined ? stream.name : `${stream.schema}.${stream.name}`;
}

/** The schema a source's streams are loaded into. */
export function destinationSchema(sourceId: string): string {
  return `ds_${sourceId.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`;
}

/** Room for the staging suffix within PostgreSQL's 63-byte identifiers. */
const MAX_TABLE_LENGTH = 40;

/** Lowercase letters, digits and underscores; never empty, never starting with a digit. */
export function foldName(text: string): string {
  const folded = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, MAX_TABLE_LENGTH)
    .replace(/_+$/, "");
  if (folded === "") return "stream";
  return /^[0-9]/.test(folded) ? `t_${folded}`.slice(0, MAX_TABLE_LENGTH) : folded;
}

/**
 * Table names for streams that have none yet. A stream's schema becomes part of the name
 * only when another discovered stream has the same name in another schema; a name already
 * taken (by a kept name or an earlier stream) gets a number.
 */
export function chooseTableNames(
  streams: Stream[],
  options: { discovered: Stream[]; kept: Map<string, string> },
): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set(options.kept.values());
  const schemasByName = new Map<string, Set<string | undefined>>();
  for (const stream of options.discovered) {
    const schemas = schemasByName.get(stream.name) ?? new Set();
    schemas.add(stream.schema);
    schemasByName.set(stream.name, schemas);
  }
  for (const stream of streams) {
    const key = streamKey(stream);
    const kept = options.kept.get(key);
    if (kept) {
      names.set(key, kept);
      continue;
    }
    const ambiguous = (schemasByName.get(stream.name)?.size ?? 1) > 1;
    const base = foldName(
      ambiguous && stream.schema ? `${stream.schema}_${stream.name}` : stream.name,
    );
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base.slice(0, MAX_TABLE_LENGTH - 4)}_${n}`;
    taken.add(name);
    names.set(key, name);
  }
  return names;
}

/** Prefix of staging tables; anything with it in a `ds_` schema is ours to clean up. */
export const STAGING_PREFIX = "_dafel_staging_";

/** The staging table a full refresh of one stream loads into before the swap. */
export function stagingTableName(syncLogId: string, streamIndex: number): string {
  return `${STAGING_PREFIX}${syncLogId.toLowerCase().replace(/[^a-z0-9]/g, "")}_${streamIndex}`;
}
