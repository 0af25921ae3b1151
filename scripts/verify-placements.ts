import pg from 'pg';
import { withClient } from './local-cluster.js';

export interface PlacementCheck {
  rows: number;
  misplaced: { shardId: string; value: string; expectedShard: string }[];
}

/**
 * Reads every shard placement straight from its worker (shards are hidden unless
 * citus.override_table_visibility is off) and asks the coordinator's
 * get_shard_id_for_distribution_column which shard each row's value belongs to.
 */
export async function checkPlacements(coordinatorUrl: string, table: string): Promise<PlacementCheck> {
  return withClient(coordinatorUrl, async (coord) => {
    const col = (await coord.query<{ c: string }>(
      "SELECT column_to_column_name(logicalrelid, partkey) AS c FROM pg_dist_partition WHERE logicalrelid = $1::regclass", [table])).rows[0]!.c;
    const placements = await coord.query<{ shardid: string; name: string; nodename: string; nodeport: number }>(
      `SELECT s.shardid::text, shard_name(s.logicalrelid, s.shardid) AS name, n.nodename, n.nodeport
         FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
        WHERE s.logicalrelid = $1::regclass ORDER BY s.shardid`, [table]);
    const result: PlacementCheck = { rows: 0, misplaced: [] };
    for (const pl of placements.rows) {
      const worker = new pg.Client({ host: pl.nodename, port: pl.nodeport, user: 'postgres', database: 'postgres' });
      await worker.connect();
      let values: string[];
      try {
        await worker.query('SET citus.override_table_visibility TO off');
        values = (await worker.query<{ v: string }>(`SELECT ${pg.escapeIdentifier(col)}::text AS v FROM ${pl.name}`)).rows.map((r) => r.v);
      } finally {
        await worker.end();
      }
      result.rows += values.length;
      const expected = await coord.query<{ v: string; shard: string }>(
        `SELECT v, get_shard_id_for_distribution_column($1::regclass, v)::text AS shard FROM unnest($2::text[]) AS v`, [table, values]);
      for (const e of expected.rows) {
        if (e.shard !== pl.shardid) result.misplaced.push({ shardId: pl.shardid, value: e.v, expectedShard: e.shard });
      }
    }
    return result;
  });
}
