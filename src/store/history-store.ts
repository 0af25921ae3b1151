import type { Queryable } from '../connect/queryable.js';

/**
 * The history a monitor cycle refits the model on: the shard load of the latest `windows`
 * windows that had any (idle windows store none). Bounded: it walks the windows' primary key
 * backwards and probes shard_load's (window_id, shard_id) key for each, so it reads about
 * `windows` x shards rows however long the history is (idle windows in between cost one probe
 * each, and retention bounds how many there are).
 */
export interface ShardLoadRow {
  readonly windowId: string;
  readonly shardId: string;
  readonly totalMs: number;
}

/** Oldest first, grouped by window (window_id order). */
export async function readRecentShardLoad(db: Queryable, windows: number): Promise<ShardLoadRow[]> {
  if (!(Number.isInteger(windows) && windows >= 1)) throw new Error(`windows must be a positive integer, got ${windows}`);
  const r = await db.query<{ window_id: string; shard_id: string; total_ms: number }>(RECENT_SHARD_LOAD_SQL, [windows]);
  return r.rows.map((x) => ({ windowId: x.window_id, shardId: x.shard_id, totalMs: x.total_ms }));
}

/**
 * Written so that no plan can read all of shard_load: the per-window test is a scalar subquery
 * with LIMIT 1 (a sub-plan run per window as the windows' key is walked backwards, not a semi
 * join the planner may turn into a scan of shard_load), and the rows of the chosen windows come
 * from a LATERAL subquery kept apart by OFFSET 0 (a parameterised index scan per window, not a
 * hash join over the whole table).
 */
export const RECENT_SHARD_LOAD_SQL = `
  SELECT l.window_id::text AS window_id, l.shard_id::text AS shard_id, l.total_ms
    FROM (SELECT w.window_id FROM adaptive_load.windows w
           WHERE (SELECT true FROM adaptive_load.shard_load x WHERE x.window_id = w.window_id LIMIT 1)
           ORDER BY w.window_id DESC LIMIT $1) recent
   CROSS JOIN LATERAL (SELECT y.window_id, y.shard_id, y.total_ms FROM adaptive_load.shard_load y
                        WHERE y.window_id = recent.window_id OFFSET 0) l
   ORDER BY l.window_id, l.shard_id`;
