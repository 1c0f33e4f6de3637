/**
 * One connection pool per source, shared by test, discovery, preview and read. A pool is
 * reused while the source's settings are unchanged (same fingerprint) and replaced when
 * they change; update and delete close it.
 */
import type { DataSourceType } from "../db/schema.ts";
import { setPoolStatsProvider } from "../telemetry.ts";

export type PoolStats = { size: number; active: number };

type Entry = {
  type: DataSourceType;
  fingerprint: string;
  pool: Promise<unknown>;
  stats: () => PoolStats;
  close: () => Promise<void>;
};

const pools = new Map<string, Entry>();

/**
 * The pool for a source, created by `create` the first time (or after the settings
 * changed). Concurrent callers share one creation.
 */
export async function pooled<T>(
  options: { sourceId: string; fingerprint: string; type: DataSourceType },
  create: () => Promise<{ pool: T; stats: () => PoolStats; close: () => Promise<void> }>,
): Promise<T> {
  const existing = pools.get(options.sourceId);
  if (existing && existing.fingerprint === options.fingerprint) return await existing.pool as T;
  if (existing) {
    pools.delete(options.sourceId);
    await existing.close().catch(() => {});
  }
  let resolveClose: () => Promise<void> = () => Promise.resolve();
  let stats: () => PoolStats = () => ({ size: 0, active: 0 });
  const pool = create().then((made) => {
    resolveClose = made.close;
    stats = made.stats;
    return made.pool;
  });
  const entry: Entry = {
    type: options.type,
    fingerprint: options.fingerprint,
    pool,
    stats: () => stats(),
    close: async () => {
      await pool.catch(() => {});
      await resolveClose();
    },
  };
  pools.set(options.sourceId, entry);
  try {
    return await pool;
  } catch (error) {
    if (pools.get(options.sourceId) === entry) pools.delete(options.sourceId);
    throw error;
  }
}

/** Closes a source's pool, if it has one. */
export async function closePool(sourceId: string): Promise<void> {
  const entry = pools.get(sourceId);
  if (!entry) return;
  pools.delete(sourceId);
  await entry.close().catch(() => {});
}

export async function closeAllPools(): Promise<void> {
  await Promise.all([...pools.keys()].map(closePool));
}

/** Pools of this instance by type: how many, connections open, connections busy. */
export function poolSummary(): Record<string, { pools: number; size: number; active: number }> {
  const summary: Record<string, { pools: number; size: number; active: number }> = {};
  for (const entry of pools.values()) {
    const item = summary[entry.type] ??= { pools: 0, size: 0, active: 0 };
    const stats = entry.stats();
    item.pools++;
    item.size += stats.size;
    item.active += stats.active;
  }
  return summary;
}

export function hasPool(sourceId: string): boolean {
  return pools.has(sourceId);
}

setPoolStatsProvider(poolSummary);
