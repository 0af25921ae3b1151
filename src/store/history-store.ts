import type { Queryable } from '../connect/queryable.js';

/**
 * The history a monitor cycle refits the model on: the shard load of the latest `windows`
 * windows that had any (idle windows store none). Bounded: it walks the windows' primary key
 * backwards and probes shard_load's (window_id, shard_id) key for each, so it reads about
 * `windows` x shards rows however long the history is.
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

/** Exported for the test that checks its plan stays bounded. */
export const RECENT_SHARD_LOAD_SQL = `
  SELECT l.window_id::text AS window_id, l.shard_id::text AS shard_id, l.total_ms
    FROM (SELECT w.window_id FROM adaptive_load.windows w
           WHERE EXISTS (SELECT 1 FROM adaptive_load.shard_load x WHERE x.window_id = w.window_id)
           ORDER BY w.window_id DESC LIMIT $1) recent
    JOIN adaptive_load.shard_load l ON l.window_id = recent.window_id
   ORDER BY l.window_id, l.shard_id`;
