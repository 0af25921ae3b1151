import type { Queryable } from '../connect/queryable.js';
import { readRecentShardLoad } from '../store/history-store.js';
import { shares } from './load-model.js';

/**
 * Actual shares per shard of the latest `limit` recorded windows, oldest first, with each
 * window's total shard time. Only windows with signal have shard_load rows (the monitor stores
 * none for a window that was incomplete or below the load floor), so this is what the model
 * learns from. Bounded (store/history-store.ts): a cycle reads the same amount however long the
 * history grows.
 */
export async function recentShares(db: Queryable, limit: number): Promise<{ windowId: number; shares: Map<string, number>; totalMs: number }[]> {
  const byWindow = new Map<string, { shard: string; ms: number }[]>();
  for (const row of await readRecentShardLoad(db, limit)) {
    let rows = byWindow.get(row.windowId);
    if (!rows) byWindow.set(row.windowId, rows = []);
    rows.push({ shard: row.shardId, ms: row.totalMs });
  }
  return [...byWindow.entries()].map(([id, rows]) => {
    const s = shares(rows.map((x) => x.ms));
    return { windowId: Number(id), shares: new Map(rows.map((x, i) => [x.shard, s[i]!])), totalMs: rows.reduce((a, x) => a + x.ms, 0) };
  });
}
