import type { Queryable } from '../connect/queryable.js';
import { shares } from './load-model.js';

/**
 * Actual shares per shard of the latest `limit` recorded windows, oldest first. Only windows with
 * signal have shard_load rows (the monitor stores none for a window that was incomplete or below
 * the load floor), so this is what the model learns from. Bounded: a cycle reads the same amount
 * however long the history grows.
 */
export async function recentShares(db: Queryable, limit: number): Promise<{ windowId: number; shares: Map<string, number>; totalMs: number }[]> {
  const r = await db.query<{ window_id: string; shard_id: string; total_ms: number }>(
    `SELECT l.window_id::text AS window_id, l.shard_id::text AS shard_id, l.total_ms
       FROM adaptive_load.shard_load l
      WHERE l.window_id IN (SELECT w.window_id FROM adaptive_load.windows w
                            WHERE EXISTS (SELECT 1 FROM adaptive_load.shard_load x WHERE x.window_id = w.window_id)
                            ORDER BY w.window_id DESC LIMIT $1)
      ORDER BY l.window_id, l.shard_id`, [limit]);
  const byWindow = new Map<string, { shard: string; ms: number }[]>();
  for (const row of r.rows) {
    let rows = byWindow.get(row.window_id);
    if (!rows) byWindow.set(row.window_id, rows = []);
    rows.push({ shard: row.shard_id, ms: row.total_ms });
  }
  return [...byWindow.entries()].map(([id, rows]) => {
    const s = shares(rows.map((x) => x.ms));
    return { windowId: Number(id), shares: new Map(rows.map((x, i) => [x.shard, s[i]!])), totalMs: rows.reduce((a, x) => a + x.ms, 0) };
  });
}
