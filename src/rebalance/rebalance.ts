import type { Queryable } from '../connect/queryable.js';
import { readDistribution, readTable, requireCitus, type DistributionKind } from '../catalog/catalog.js';
import { REBALANCER_IMPROVEMENT_THRESHOLD, REBALANCER_MINIMUM_THRESHOLD, REBALANCER_THRESHOLD } from './policy.js';
import { recordingMoves, type ActionOrigin, type ShardGroupMove } from './placement-diff.js';

export const STRATEGY = 'adaptive_load';

export interface PlannedMove {
  readonly table: string;
  readonly shardId: string;
  readonly from: string;
  readonly to: string;
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
 * Plans with get_rebalance_table_shards_plan under the strategy and, unless dryRun, acts with
 * rebalance_table_shards (blocking writes to the moved shards while each moves).
 */
export async function rebalance(db: Queryable, options: { dryRun: boolean; table?: string; threshold?: number; origin?: ActionOrigin }): Promise<RebalanceResult> {
  await requireCitus(db, 'rebalance');
  if (options.table !== undefined) {
    const why = await notRebalanced(db, options.table);
    if (why) return { moves: [], applied: false, moved: [], notRebalanced: why };
  }
  await ensureStrategy(db);
  const moves: PlannedMove[] = [];
  const moved: ShardGroupMove[] = [];
  for (const table of await colocationGroups(db, options.table)) {
    const plan = await db.query<{ table_name: string; shardid: string; sourcename: string; sourceport: number; targetname: string; targetport: number }>(
      `SELECT table_name::text, shardid::text, sourcename, sourceport, targetname, targetport
         FROM get_rebalance_table_shards_plan($1::regclass, threshold => $2, rebalance_strategy => $3)`,
      [table, options.threshold ?? REBALANCER_THRESHOLD, STRATEGY]);
    const groupMoves = plan.rows.filter((m) => m.table_name === table || plan.rows.every((x) => x.table_name !== table))
      .map((m) => ({ table: m.table_name, shardId: m.shardid, from: `${m.sourcename}:${m.sourceport}`, to: `${m.targetname}:${m.targetport}` }));
    moves.push(...groupMoves);
    if (!options.dryRun && groupMoves.length > 0) {
      moved.push(...await recordingMoves(db, options.origin ?? { startedBy: 'library' }, () => db.query(
        `SELECT rebalance_table_shards($1::regclass, threshold => $2, rebalance_strategy => $3, shard_transfer_mode => 'block_writes')`,
        [table, options.threshold ?? REBALANCER_THRESHOLD, STRATEGY])));
    }
  }
  return { moves, applied: !options.dryRun && moves.length > 0, moved };
}
