import type { Queryable } from '../connect/queryable.js';
import { readDistribution, readTable, requireCitus, type DistributionKind } from '../catalog/catalog.js';
import { parseNodeLabel } from '../connect/config.js';
import { recentShares } from '../workload/load-history.js';
import {
  HISTORY_WINDOWS, REBALANCER_IMPROVEMENT_THRESHOLD, REBALANCER_MINIMUM_THRESHOLD, REBALANCER_THRESHOLD, SHARE_SMOOTHING,
} from './policy.js';
import { judgeMoves, type ClusterLoad } from './move-gain.js';
import { recordingMoves, type ActionOrigin, type ShardGroupMove } from './placement-diff.js';

export const STRATEGY = 'adaptive_load';

export interface PlannedMove {
  readonly table: string;
  readonly shardId: string;
  readonly from: string;
  readonly to: string;
  /** Load above the nodes' fair shares the move removes (share of all load), and why it is (not) made. */
  readonly gainShare?: number;
  readonly reason?: string;
}

export interface RebalanceResult {
  readonly moves: PlannedMove[];
  readonly applied: boolean;
  /**
   * What really moved (read from the placements before and after, every colocated shard
   * included), each recorded in adaptive_load.actions with its undo. Empty on a dry run.
   */
  readonly moved: ShardGroupMove[];
  /**
   * Set when the table asked for is not hash-distributed (reference, Citus local, plain): why
   * there is nothing to rebalance. Not a failure: nothing is out of balance.
   */
  readonly notRebalanced?: string;
  /** Set when nothing may move now (a node did not answer in the latest window): why. */
  readonly held?: string;
  /** Moves Citus planned that are not worth their copy (policy.ts), each with why. */
  readonly skipped?: PlannedMove[];
}

const NOT_HASH: Record<Exclude<DistributionKind, 'hash'>, string> = {
  reference: 'a reference table (a copy on every node)',
  'citus-local': 'a Citus local table (on the coordinator only)',
  local: 'a plain PostgreSQL table (not in Citus\'s metadata)',
  other: 'distributed by range or append (Citus\'s rebalancer moves hash-distributed shards only)',
};

/** Why `table` has nothing to rebalance, or undefined when it is hash-distributed. */
async function notRebalanced(db: Queryable, table: string): Promise<string | undefined> {
  const kind = (await readDistribution(db, await readTable(db, table), true)).kind;
  return kind === 'hash' ? undefined : `${table} is ${NOT_HASH[kind]}, not hash-distributed: nothing to rebalance`;
}

/**
 * Registers the rebalance strategy whose shard cost and node capacity functions (installed by the
 * migrations) read the model's current predictions and the node capacities.
 */
export async function ensureStrategy(db: Queryable): Promise<void> {
  const r = await db.query('SELECT 1 FROM pg_dist_rebalance_strategy WHERE name = $1', [STRATEGY]);
  if (r.rowCount) return;
  await db.query(
    `SELECT citus_add_rebalance_strategy($1, 'adaptive_load.shard_cost', 'adaptive_load.node_capacity',
            'adaptive_load.shard_allowed_on_node', $2, $3, $4)`,
    [STRATEGY, REBALANCER_THRESHOLD, REBALANCER_MINIMUM_THRESHOLD, REBALANCER_IMPROVEMENT_THRESHOLD]);
}

/** One table per colocation group of hash-distributed tables: the rebalancer works per group. */
async function colocationGroups(db: Queryable, table?: string): Promise<string[]> {
  const r = await db.query<{ t: string }>(
    `SELECT DISTINCT ON (colocationid) logicalrelid::regclass::text AS t FROM pg_dist_partition
      WHERE partmethod = 'h' AND ($1::regclass IS NULL OR colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass))
      ORDER BY colocationid, logicalrelid::regclass::text`, [table ?? null]);
  return r.rows.map((x) => x.t);
}

/**
 * Nodes the latest monitoring window could not read: while any is down, nothing moves (a move
 * onto or off it would fail or act on load nobody measured), until a window reads every node.
 */
async function unansweredNodes(db: Queryable): Promise<string[]> {
  const r = await db.query<{ complete: boolean; unreachable: string[] }>(
    'SELECT complete, unreachable FROM adaptive_load.windows ORDER BY window_id DESC LIMIT 1');
  const w = r.rows[0];
  return w && !w.complete ? w.unreachable : [];
}

/**
 * Workers the coordinator cannot reach right now (Citus's own connectivity check, bounded by
 * citus.node_connection_timeout): the latest window may be older than a node's failure.
 */
async function unreachableNow(db: Queryable): Promise<string[]> {
  const r = await db.query<{ node: string }>(
    `SELECT nodename || ':' || nodeport AS node FROM pg_dist_node
      WHERE noderole = 'primary' AND isactive AND groupid <> 0 AND NOT citus_check_connection_to_node(nodename, nodeport)`);
  return r.rows.map((x) => x.node);
}

/**
 * What judging moves needs (move-gain.ts): per shard, the predicted share and bytes of its whole
 * shard group (every table of its colocation group, the same hash range); per node, the predicted
 * share and the strategy's capacity; and the load of recent windows.
 */
async function clusterLoad(db: Queryable): Promise<ClusterLoad> {
  // Each shard group's cost is the strategy's own shard_cost (the same input Citus planned with),
  // asked once per group; shares are of the sum over groups.
  const shards = (await db.query<{ shard: string; grp: string; node: string; cost: number; bytes: string }>(
    `WITH sizes AS MATERIALIZED (SELECT shardid, sum(shard_size) AS bytes FROM citus_shards GROUP BY shardid),
     placed AS (
       SELECT s.shardid, CASE WHEN p.colocationid = 0 THEN 's' || s.shardid ELSE p.colocationid || '/' || s.shardminvalue END AS grp,
              n.nodename || ':' || n.nodeport AS node
         FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)
         JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
        WHERE p.partmethod = 'h' AND n.noderole = 'primary'),
     grouped AS (SELECT grp, adaptive_load.shard_cost(min(shardid)) AS cost FROM placed GROUP BY grp)
     SELECT x.shardid::text AS shard, x.grp, x.node, g.cost,
            coalesce((SELECT z.bytes FROM sizes z WHERE z.shardid = x.shardid), 0)::text AS bytes
       FROM placed x JOIN grouped g USING (grp)`)).rows;
  const groupCost = new Map<string, number>();
  const groupBytes = new Map<string, number>();
  const groupNode = new Map<string, string>();
  for (const s of shards) {
    groupCost.set(s.grp, s.cost);
    groupNode.set(s.grp, s.node);
    groupBytes.set(s.grp, (groupBytes.get(s.grp) ?? 0) + Number(s.bytes));
  }
  const total = [...groupCost.values()].reduce((a, b) => a + b, 0) || 1;
  const nodeShare = new Map<string, number>();
  for (const [grp, cost] of groupCost) nodeShare.set(groupNode.get(grp)!, (nodeShare.get(groupNode.get(grp)!) ?? 0) + cost / total);
  const nodes = await db.query<{ node: string; capacity: number }>(
    `SELECT nodename || ':' || nodeport AS node, CASE WHEN shouldhaveshards THEN adaptive_load.node_capacity(nodeid) ELSE 0 END AS capacity
       FROM pg_dist_node WHERE noderole = 'primary' AND isactive`);
  const recent = await recentShares(db, HISTORY_WINDOWS);
  let windowMs = 0;
  recent.forEach((w, i) => { windowMs = i === 0 ? w.totalMs : SHARE_SMOOTHING * w.totalMs + (1 - SHARE_SMOOTHING) * windowMs; });
  const largestGroup = new Map<string, number>();
  for (const [grp, cost] of groupCost) {
    const node = groupNode.get(grp)!;
    largestGroup.set(node, Math.max(largestGroup.get(node) ?? 0, cost / total));
  }
  return {
    largestGroup,
    groupShare: new Map(shards.map((s) => [s.shard, groupCost.get(s.grp)! / total])),
    groupBytes: new Map(shards.map((s) => [s.shard, groupBytes.get(s.grp)!])),
    nodeShare,
    capacity: new Map(nodes.rows.map((n) => [n.node, n.capacity])),
    windowMs,
  };
}

/**
 * The one plan, for a dry run and a real run alike: Citus's get_rebalance_table_shards_plan under
 * the strategy for every colocation group (its shard cost carries the whole shard group, see the
 * migrations), then only the moves worth their copy (move-gain.ts). Unless dryRun, exactly these
 * moves are made, in plan order, with citus_move_shard_placement (which moves the colocated
 * shards with each, blocking writes to them while it copies).
 */
export async function rebalance(db: Queryable, options: { dryRun: boolean; table?: string; threshold?: number; origin?: ActionOrigin }): Promise<RebalanceResult> {
  await requireCitus(db, 'rebalance');
  if (options.table !== undefined) {
    const why = await notRebalanced(db, options.table);
    if (why) return { moves: [], applied: false, moved: [], notRebalanced: why };
  }
  await ensureStrategy(db);
  const down = await unansweredNodes(db);
  if (down.length > 0) {
    return { moves: [], applied: false, moved: [], held: `${down.join(', ')} did not answer in the latest monitoring window: no shard moves until a window reads every node` };
  }
  const gone = await unreachableNow(db);
  if (gone.length > 0) {
    return { moves: [], applied: false, moved: [], held: `${gone.join(', ')} does not answer now: no shard moves until every node answers` };
  }
  const planned: PlannedMove[] = [];
  for (const table of await colocationGroups(db, options.table)) {
    const plan = await db.query<{ table_name: string; shardid: string; sourcename: string; sourceport: number; targetname: string; targetport: number }>(
      `SELECT table_name::text, shardid::text, sourcename, sourceport, targetname, targetport
         FROM get_rebalance_table_shards_plan($1::regclass, threshold => $2, rebalance_strategy => $3)`,
      [table, options.threshold ?? REBALANCER_THRESHOLD, STRATEGY]);
    // The plan lists every colocated shard of a move: one row per shard group is the move.
    planned.push(...plan.rows.filter((m) => m.table_name === table || plan.rows.every((x) => x.table_name !== table))
      .map((m) => ({ table: m.table_name, shardId: m.shardid, from: `${m.sourcename}:${m.sourceport}`, to: `${m.targetname}:${m.targetport}` })));
  }
  const verdicts = planned.length ? judgeMoves(planned, await clusterLoad(db)) : [];
  const moves = verdicts.filter((v) => v.keep).map((v) => ({ ...v.move, gainShare: v.gainShare, reason: v.reason }));
  const skipped = verdicts.filter((v) => !v.keep).map((v) => ({ ...v.move, gainShare: v.gainShare, reason: v.reason }));
  const moved: ShardGroupMove[] = [];
  if (!options.dryRun && moves.length > 0) {
    // What really moved is read from the placements before and after, and recorded with its undo.
    moved.push(...await recordingMoves(db, options.origin ?? { startedBy: 'library' }, async () => {
      for (const m of moves) {
        const from = parseNodeLabel(m.from);
        const to = parseNodeLabel(m.to);
        await db.query("SELECT citus_move_shard_placement($1::bigint, $2, $3, $4, $5, shard_transfer_mode => 'block_writes')",
          [m.shardId, from.host, from.port, to.host, to.port]);
      }
    }));
  }
  return { moves, applied: !options.dryRun && moves.length > 0, moved, ...(skipped.length ? { skipped } : {}) };
}
