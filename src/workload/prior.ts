import type { Queryable } from '../connect/queryable.js';
import { relationsOf } from './load-snapshot.js';
import { shares } from './load-model.js';
import { parseQualifiedName } from '../connect/qualified-name.js';

/**
 * What each shard's share of the cluster's load should be before (or besides) any history of its
 * own: the model's `priorShare` feature, and the prediction for shards nobody has measured yet
 * (a new table, shards just split off by a tenant isolation).
 *
 * - Across tables: the coordinator's pg_stat_statements (the queries users send, whatever the
 *   workers' counters say since their last reset), execution time per distributed table, blended
 *   with a tenth of each table's size share so a table nobody queried yet is not zero. Without
 *   that history, size alone.
 * - Within a table: the sharding profile the table was laid out by (its planned shards' predicted
 *   load: rows plus the queries aimed at their tenants), spread over today's shards by how their
 *   hash ranges overlap the planned ones, so splits and isolations since keep the tenants' load
 *   where the tenants went. Without a profile, shard size.
 */
export interface PriorShare {
  readonly share: number;
  readonly source: 'profile' | 'size';
}

interface ShardRange {
  shardid: string;
  tbl: string;
  min: string;
  max: string;
  size: string;
}

export async function priorShares(db: Queryable): Promise<Map<string, PriorShare>> {
  const shards = (await db.query<ShardRange>(
    // Sizes once for all shards (citus_shards asks every worker), not once per shard.
    `WITH sizes AS MATERIALIZED (SELECT shardid, sum(shard_size) AS bytes FROM citus_shards GROUP BY shardid)
     SELECT s.shardid::text, s.logicalrelid::regclass::text AS tbl, s.shardminvalue AS min, s.shardmaxvalue AS max,
            coalesce((SELECT z.bytes FROM sizes z WHERE z.shardid = s.shardid), 0)::text AS size
       FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid) WHERE p.partmethod = 'h'`)).rows;
  const tables = [...new Set(shards.map((s) => s.tbl))].sort();
  const profiles = new Map((await db.query<{ tbl: string; shards: { hashMin: number; hashMax: number; load: number }[] }>(
    `SELECT DISTINCT ON (p.logicalrelid) p.logicalrelid::regclass::text AS tbl, f.profile->'shards' AS shards
       FROM adaptive_load.profiles f JOIN pg_dist_partition p ON p.logicalrelid = to_regclass(f.table_name)
      WHERE f.profile->>'kind' = 'distributed' ORDER BY p.logicalrelid, f.created_at DESC`)).rows.map((r) => [r.tbl, r.shards]));
  const tableSize = tables.map((t) => shards.filter((s) => s.tbl === t).reduce((a, s) => a + Number(s.size), 0));
  const sizeWeight = shares(tableSize);
  const queried = await coordinatorTimeByTable(db, tables);
  const queryWeight = queried ? shares(tables.map((t) => queried.get(t) ?? 0)) : undefined;
  const out = new Map<string, PriorShare>();
  tables.forEach((t, ti) => {
    const weight = queryWeight ? 0.9 * queryWeight[ti]! + 0.1 * sizeWeight[ti]! : sizeWeight[ti]!;
    const mine = shards.filter((s) => s.tbl === t);
    const planned = profiles.get(t);
    const within = planned?.length ? shares(mine.map((s) => overlapLoad(Number(s.min), Number(s.max), planned)))
      : shares(mine.map((s) => Number(s.size)));
    mine.forEach((s, i) => out.set(s.shardid, { share: weight * within[i]!, source: planned?.length ? 'profile' : 'size' }));
  });
  return out;
}

/** Planned load falling in [min, max], each planned shard's load spread evenly over its hash range. */
function overlapLoad(min: number, max: number, planned: readonly { hashMin: number; hashMax: number; load: number }[]): number {
  let load = 0;
  for (const p of planned) {
    const lo = Math.max(min, p.hashMin);
    const hi = Math.min(max, p.hashMax);
    if (lo <= hi) load += p.load * (hi - lo + 1) / (p.hashMax - p.hashMin + 1);
  }
  return load;
}

/**
 * Execution time of the coordinator's statements per distributed table (a statement naming
 * several splits its time among them), or undefined where pg_stat_statements is not installed on
 * the coordinator or recorded nothing about these tables.
 */
async function coordinatorTimeByTable(db: Queryable, tables: readonly string[]): Promise<Map<string, number> | undefined> {
  const installed = await db.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'");
  if (!installed.rowCount) return undefined;
  let rows: { query: string; total: number }[];
  try {
    rows = (await db.query<{ query: string; total: number }>(
      `SELECT query, total_exec_time AS total FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query IS NOT NULL AND calls > 0`)).rows;
  } catch {
    return undefined; // not in shared_preload_libraries
  }
  // Statements name tables without their schema as often as with it.
  const byName = new Map<string, string>();
  for (const t of tables) byName.set(parseQualifiedName(t).name, t);
  const parsed = new Map<string, string[]>();
  const time = new Map<string, number>();
  for (const r of rows) {
    const named = [...new Set((await relationsOf(r.query, parsed)).map((n) => byName.get(n)).filter((t): t is string => t !== undefined))];
    for (const t of named) time.set(t, (time.get(t) ?? 0) + r.total / named.length);
  }
  return [...time.values()].some((v) => v > 0) ? time : undefined;
}
