import type pg from 'pg';
import { inTransaction } from './transaction.js';

/**
 * Replaces the predictions of shards that an isolation or split turned into new shards: the old
 * ids are gone from Citus, and the rebalancer (which reads adaptive_load.shard_cost) must see the
 * new ones at their share of the old load, not at the floor cost of a shard with no history.
 * One transaction, so the strategy never reads the group half replaced.
 */
export async function replaceShardPredictions(db: pg.ClientBase, removed: readonly string[],
  added: readonly { shardId: string; table: string; predictedShare: number }[], windowId: number): Promise<void> {
  await inTransaction(db, async (tx) => {
    await tx.query('DELETE FROM adaptive_load.shard_predictions WHERE shard_id = ANY($1::bigint[])', [removed]);
    for (const a of added) {
      await tx.query(
        `INSERT INTO adaptive_load.shard_predictions (shard_id, table_name, predicted_share, window_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (shard_id) DO UPDATE SET predicted_share = EXCLUDED.predicted_share, table_name = EXCLUDED.table_name, window_id = EXCLUDED.window_id`,
        [a.shardId, a.table, Math.max(0, a.predictedShare), windowId]);
    }
  });
}
