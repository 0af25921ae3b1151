import type { Queryable } from '../connect/queryable.js';

/**
 * Where every shard of every hash-distributed table is placed now, as Citus's metadata says
 * (pg_dist_placement on the coordinator). Read before and after anything that moves shards, so
 * what is recorded is what moved, not what a plan said would.
 */
export interface PlacementRow {
  readonly shardId: string;
  readonly table: string;
  readonly colocationId: number;
  /** The shard's hash range: colocated shards (which move together) share it. */
  readonly minValue: string;
  readonly maxValue: string;
  readonly host: string;
  readonly port: number;
}

export async function readPlacements(db: Queryable): Promise<PlacementRow[]> {
  // Active placements on primaries only: a secondary mirrors its group and is not where a move goes.
  const r = await db.query<{ shard_id: string; table_name: string; colocationid: number; min: string; max: string; nodename: string; nodeport: number }>(
    `SELECT s.shardid::text AS shard_id, s.logicalrelid::regclass::text AS table_name, p.colocationid,
            s.shardminvalue AS min, s.shardmaxvalue AS max, n.nodename, n.nodeport
       FROM pg_dist_placement pl
       JOIN pg_dist_shard s USING (shardid)
       JOIN pg_dist_partition p USING (logicalrelid)
       JOIN pg_dist_node n ON n.groupid = pl.groupid AND n.noderole = 'primary'
      WHERE p.partmethod = 'h' AND pl.shardstate = 1
      ORDER BY s.shardid, n.nodename, n.nodeport`);
  return r.rows.map((x) => ({ shardId: x.shard_id, table: x.table_name, colocationId: x.colocationid, minValue: x.min, maxValue: x.max,
    host: x.nodename, port: x.nodeport }));
}
