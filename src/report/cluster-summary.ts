import type { Queryable } from '../connect/queryable.js';
import { maxShareError, wape } from '../workload/load-model.js';

/**
 * The first thing a report shows: the cluster at a glance. Nodes and their load share (actual in
 * the latest window, predicted for the next), busiest over mean, the prediction error (WAPE
 * first: it weighs errors by load, so a tiny node's percentage cannot dominate it), the hottest
 * shards with the tenants known to be in them, and how many actions were taken and how many
 * recommendations wait for a DBA.
 */
export interface ClusterSummary {
  readonly windowEnd: string | null;
  readonly nodes: { node: string; shards: number; actualShare: number | null; predictedShare: number | null }[];
  /** Busiest over mean node load: actual in the latest window, predicted for the next. */
  readonly busiestOverMean: { actual: number | null; predicted: number | null };
  /** Of the latest window's per-node prediction: sum |predicted - actual| / sum actual. */
  readonly wape: number | null;
  /** Of the same prediction: the largest |predicted - actual| node share (0.04 = 4 points). */
  readonly maxShareError: number | null;
  readonly mape: number | null;
  readonly hottestShards: { shardId: string; table: string; node: string; predictedShare: number; tenants: string[] }[];
  readonly actionsTaken: number;
  readonly pending: number;
}

type NodeShares = readonly { predictedShare: number | null; actualShare: number }[];
const paired = (nodes: NodeShares) => nodes.filter((n) => n.predictedShare !== null).map((n) => ({ predicted: n.predictedShare!, actual: n.actualShare }));

/** WAPE of one window's per-node prediction (load-model.ts); null where no node had a prediction or nothing ran. */
export function wapeOf(nodes: NodeShares): number | null {
  return wape(paired(nodes)) ?? null;
}

/** The largest node share error of one window's prediction; null where no node had one. */
export function maxShareErrorOf(nodes: NodeShares): number | null {
  return maxShareError(paired(nodes)) ?? null;
}

const ratio = (xs: number[]) => (xs.length && xs.some((x) => x > 0) ? Math.max(...xs) / (xs.reduce((a, b) => a + b, 0) / xs.length) : null);

export async function collectSummary(db: Queryable, citus: boolean, pending: number): Promise<ClusterSummary> {
  // The stored WAPE where the monitor recorded one (newer monitors do), else computed from the window's node shares.
  const w = (await db.query<{ to_at: Date; mape: number | null; wape: number | null; max_share_error: number | null; nodes: { node: string; predictedShare: number | null; actualShare: number }[] }>(
    `SELECT w.to_at, w.mape, w.wape, w.max_share_error, w.nodes FROM adaptive_load.windows w
      WHERE jsonb_array_length(coalesce(w.nodes, '[]'::jsonb)) > 0 ORDER BY w.window_id DESC LIMIT 1`)).rows[0];
  const actionsTaken = Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM adaptive_load.actions WHERE kind <> 'check'")).rows[0]!.n);
  if (!citus) {
    return { windowEnd: w?.to_at.toISOString() ?? null, nodes: [], busiestOverMean: { actual: null, predicted: null }, wape: w?.wape ?? (w ? wapeOf(w.nodes) : null),
      maxShareError: w?.max_share_error ?? (w ? maxShareErrorOf(w.nodes) : null), mape: w?.mape ?? null, hottestShards: [], actionsTaken, pending };
  }
  const nodes = (await db.query<{ node: string; shards: number; predicted: number | null }>(
    `SELECT n.nodename || ':' || n.nodeport AS node,
            (SELECT count(*)::int FROM pg_dist_placement pl JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_partition p USING (logicalrelid)
              WHERE pl.groupid = n.groupid AND p.partmethod = 'h') AS shards,
            (SELECT sum(sp.predicted_share) FROM adaptive_load.shard_predictions sp JOIN pg_dist_placement pl ON pl.shardid = sp.shard_id
              WHERE pl.groupid = n.groupid) AS predicted
       FROM pg_dist_node n WHERE n.noderole = 'primary' AND n.isactive AND n.shouldhaveshards ORDER BY 1`)).rows;
  const actualBy = new Map((w?.nodes ?? []).map((n) => [n.node, n.actualShare]));
  const hot = (await db.query<{ shard_id: string; tbl: string; node: string; share: number }>(
    `SELECT sp.shard_id::text, s.logicalrelid::regclass::text AS tbl, n.nodename || ':' || n.nodeport AS node, sp.predicted_share AS share
       FROM adaptive_load.shard_predictions sp JOIN pg_dist_shard s ON s.shardid = sp.shard_id
       JOIN pg_dist_placement pl ON pl.shardid = sp.shard_id JOIN pg_dist_node n ON n.groupid = pl.groupid
      WHERE sp.predicted_share > 0 ORDER BY sp.predicted_share DESC LIMIT 5`)).rows;
  const hottestShards = [];
  for (const h of hot) hottestShards.push({ shardId: h.shard_id, table: h.tbl, node: h.node, predictedShare: h.share, tenants: await tenantsIn(db, h.shard_id, h.tbl) });
  return {
    windowEnd: w?.to_at.toISOString() ?? null,
    nodes: nodes.map((n) => ({ node: n.node, shards: n.shards, actualShare: actualBy.get(n.node) ?? null, predictedShare: n.predicted })),
    busiestOverMean: { actual: w ? ratio(w.nodes.map((n) => n.actualShare)) : null, predicted: ratio(nodes.map((n) => n.predicted ?? 0)) },
    wape: w?.wape ?? (w ? wapeOf(w.nodes) : null),
    maxShareError: w?.max_share_error ?? (w ? maxShareErrorOf(w.nodes) : null),
    mape: w?.mape ?? null,
    hottestShards,
    actionsTaken,
    pending,
  };
}

/**
 * Tenants known to be in a shard: the tenant an isolation gave it, the tenants Citus counts there
 * (when it tracks them), and the heavy hitters of stored profiles that hash into it.
 */
async function tenantsIn(db: Queryable, shardId: string, table: string): Promise<string[]> {
  const isolated = await db.query<{ t: string }>(
    `SELECT DISTINCT detail->>'tenant' AS t FROM adaptive_load.actions
      WHERE kind = 'isolate' AND detail->>'tenant' IS NOT NULL AND get_shard_id_for_distribution_column($1::regclass, detail->>'tenant') = $2::bigint`, [table, shardId])
    .catch(() => ({ rows: [] as { t: string }[] }));
  const tracked = await db.query<{ t: string }>(
    `SELECT tenant_attribute AS t FROM citus_stat_tenants
      WHERE current_setting('citus.stat_tenants_track', true) = 'all'
        AND colocation_id = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass)
        AND get_shard_id_for_distribution_column($1::regclass, tenant_attribute) = $2::bigint
      ORDER BY query_count_in_this_period + query_count_in_last_period DESC LIMIT 3`, [table, shardId]).catch(() => ({ rows: [] as { t: string }[] }));
  const profiled = await db.query<{ t: string }>(
    `SELECT DISTINCT v.t FROM adaptive_load.profiles p, jsonb_array_elements_text(p.profile->'isolate') AS v(t)
      WHERE to_regclass(p.table_name) IN (SELECT logicalrelid FROM pg_dist_partition
                                           WHERE colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass))
        AND get_shard_id_for_distribution_column($1::regclass, v.t) = $2::bigint`, [table, shardId]).catch(() => ({ rows: [] as { t: string }[] }));
  return [...new Set([...isolated.rows, ...tracked.rows, ...profiled.rows].map((r) => r.t))];
}
