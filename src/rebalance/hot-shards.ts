import type pg from 'pg';
import { parseNodeLabel } from '../connect/config.js';
import { quoteLiteral } from '../connect/sql.js';
import { nodeIdOf } from '../catalog/catalog.js';
import { recordAction } from '../store/action-store.js';
import { replaceShardPredictions } from '../store/prediction-store.js';
import type { ShardFacts, ShardOutlook } from './advice.js';
import { hottestOf, type HotTenant, type ShardTenants } from './hot-tenant.js';
import { loadWeightedSplitPoint, weightShare } from './shard-split.js';
import { TENANT_ISOLATION_MIN_SHARE } from './policy.js';

/**
 * What the monitor does (with --rebalance) about a shard predicted hotter than a node's fair
 * share, once hot-tenant.ts has found who its load comes from:
 *
 * - one tenant draws at least TENANT_ISOLATION_MIN_SHARE of it: isolate the tenant
 *   (isolate_tenant_to_new_shard, CASCADE: every table of the colocation group is cut at the same
 *   hashes) and move the tenant's new shard group to the node with the least predicted load
 *   (Citus leaves it on the source node);
 * - many tenants, none dominant: split it at the load-weighted point
 *   (citus_split_shard_by_split_points) and place each half, heaviest first, on the node with
 *   the least predicted load.
 *
 * The new shards inherit the old shards' predictions in proportion to their tenants' weight, so
 * the rebalancer that runs next sees them at their load. Each action is recorded with the busiest/mean
 * before it (action-check.ts compares it with the next window) and the SQL that undoes what can be
 * undone: Citus cannot merge shards, so an undo moves the pieces back to the source node.
 */

export type HotShardPlan =
  | { readonly kind: 'isolate'; readonly shard: ShardOutlook; readonly tenant: HotTenant; readonly tenants: ShardTenants }
  | { readonly kind: 'split'; readonly shard: ShardOutlook; readonly point: number; readonly lowerShare: number; readonly tenants: ShardTenants };

/** Isolate where one tenant dominates, split where several share the load; nothing for a single-tenant shard or no evidence. */
export function planHotShards(overloading: readonly ShardOutlook[], facts: ReadonlyMap<string, ShardFacts>): HotShardPlan[] {
  return overloading.flatMap((shard): HotShardPlan[] => {
    const f = facts.get(shard.shardId);
    if (!f || f.singleTenant || !f.tenants) return [];
    const top = hottestOf(f.tenants);
    if (top && top.share >= TENANT_ISOLATION_MIN_SHARE) return [{ kind: 'isolate', shard, tenant: top, tenants: f.tenants }];
    const split = loadWeightedSplitPoint(f.tenants);
    return split ? [{ kind: 'split', shard, ...split, tenants: f.tenants }] : [];
  });
}

interface GroupShard { readonly shardId: string; readonly table: string; readonly min: number; readonly max: number; readonly node: string }

/** The shards of `table`'s colocation group whose range lies in [min, max], every table. */
async function groupShards(db: pg.ClientBase, table: string, min: number, max: number): Promise<GroupShard[]> {
  const r = await db.query<{ shardid: string; tbl: string; lo: number; hi: number; node: string }>(
    `SELECT s.shardid::text, s.logicalrelid::regclass::text AS tbl, s.shardminvalue::int AS lo, s.shardmaxvalue::int AS hi,
            n.nodename || ':' || n.nodeport AS node
       FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)
       JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
      WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass)
        AND n.noderole = 'primary' AND s.shardminvalue::int >= $2 AND s.shardmaxvalue::int <= $3
      ORDER BY s.shardminvalue::int, s.shardid`, [table, min, max]);
  return r.rows.map((x) => ({ shardId: x.shardid, table: x.tbl, min: x.lo, max: x.hi, node: x.node }));
}

export interface HotShardContext {
  readonly nodes: readonly string[];
  readonly outlook: readonly ShardOutlook[];
  readonly windowId: number;
  /** Busiest over mean node load measured in this window (the check in the next window compares). */
  readonly imbalanceBefore: number;
  /** Each node's capacity (1 = a standard node; advice.ts): the least loaded node is least loaded for its capacity. */
  readonly capacity?: ReadonlyMap<string, number>;
}

const busiestOverMean = (loads: number[]) => Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length || 1);

/** Carries out the plans; returns what was done, in words. */
export async function actOnHotShards(db: pg.ClientBase, plans: readonly HotShardPlan[], ctx: HotShardContext): Promise<{ kind: string; detail: string }[]> {
  const predicted = new Map(ctx.outlook.map((s) => [s.shardId, s.predictedShare]));
  // Predicted load per node, kept current as shards are cut and moved.
  const load = new Map(ctx.nodes.map((n) => [n, ctx.outlook.reduce((a, s) => a + (s.node === n ? s.predictedShare : 0), 0)]));
  const done = new Set<string>();
  const actions: { kind: string; detail: string }[] = [];
  const perCapacity = (node: string, l: number) => l / (ctx.capacity?.get(node) ?? 1);
  // Ties go to a node other than `avoid` (the source): Citus left the new shard there, moving it is the point.
  const leastLoaded = (avoid: string) => [...load.entries()]
    .sort((a, b) => perCapacity(a[0], a[1]) - perCapacity(b[0], b[1]) || (a[0] === avoid ? 1 : 0) - (b[0] === avoid ? 1 : 0))[0]![0];
  for (const plan of plans) {
    const t = plan.tenants;
    if (done.has(plan.shard.shardId)) continue;
    const old = await groupShards(db, plan.shard.table, t.min, t.max);
    if (!old.some((s) => s.shardId === plan.shard.shardId && s.min === t.min && s.max === t.max)) continue; // reshaped since it was read
    old.forEach((s) => done.add(s.shardId));
    const source = plan.shard.node;
    const oldShare = new Map(old.map((s) => [s.table, predicted.get(s.shardId) ?? 0]));
    const groupShare = [...oldShare.values()].reduce((a, b) => a + b, 0);
    load.set(source, (load.get(source) ?? 0) - groupShare);
    const share = (piece: { table: string; min: number; max: number }) => (oldShare.get(piece.table) ?? 0) * weightShare(t, piece.min, piece.max);

    if (plan.kind === 'isolate') {
      const r = await db.query<{ id: string }>(
        "SELECT isolate_tenant_to_new_shard($1::regclass, $2::text, 'CASCADE', shard_transfer_mode => 'block_writes')::text AS id", [plan.shard.table, plan.tenant.tenant]);
      const isolated = r.rows[0]!.id;
      const pieces = await groupShards(db, plan.shard.table, t.min, t.max);
      const tenantPiece = pieces.find((p) => p.shardId === isolated)!;
      const tenantGroup = pieces.filter((p) => p.min === tenantPiece.min && p.max === tenantPiece.max);
      for (const p of pieces) if (!tenantGroup.includes(p)) load.set(p.node, (load.get(p.node) ?? 0) + share(p));
      const tenantLoad = tenantGroup.reduce((a, p) => a + share(p), 0);
      const wanted = leastLoaded(source);
      let moveError: string | undefined;
      if (wanted !== source) {
        const from = parseNodeLabel(source);
        const to = parseNodeLabel(wanted);
        try {
          await db.query('SELECT citus_move_shard_placement($1::bigint, $2, $3, $4, $5, shard_transfer_mode => \'block_writes\')', [isolated, from.host, from.port, to.host, to.port]);
        } catch (err) {
          // The isolation stands whatever the move did: it is recorded below as it is, with the reason.
          moveError = err instanceof Error ? err.message : String(err);
        }
      }
      // Where the tenant's shard group is now, read from Citus's placements, not from the plan.
      const target = (await groupShards(db, plan.shard.table, tenantPiece.min, tenantPiece.max)).find((p) => p.shardId === isolated)?.node ?? source;
      load.set(target, (load.get(target) ?? 0) + tenantLoad);
      await replaceShardPredictions(db, old.map((s) => s.shardId), pieces.map((p) => ({ shardId: p.shardId, table: p.table, predictedShare: share(p) })), ctx.windowId);
      const after = busiestOverMean([...load.values()]);
      const undo = target === source ? null : `-- Citus cannot merge the isolated shard back: this moves tenant ${plan.tenant.tenant}'s shard group back to ${source}\n`
        + `SELECT citus_move_shard_placement(${Number(isolated)}, ${quoteLiteral(parseNodeLabel(target).host)}, ${parseNodeLabel(target).port}, `
        + `${quoteLiteral(parseNodeLabel(source).host)}, ${parseNodeLabel(source).port}, shard_transfer_mode => 'block_writes');`;
      const detail = `isolated tenant ${plan.tenant.tenant} of ${plan.shard.table} (${(plan.tenant.share * 100).toFixed(0)}% of shard ${plan.shard.shardId}'s `
        + `${plan.tenant.source === 'citus_stat_tenants' ? 'queries' : 'rows'}, found by ${plan.tenant.source}; the shard was predicted at ${(plan.shard.predictedShare * 100).toFixed(0)}% of all load) `
        + `into shard ${isolated} with every table of its group, ${target !== source ? `moved from ${source} to ${target}`
          : moveError ? `left on ${source}: the move to ${wanted} failed (${moveError})` : `kept on ${source} (the least loaded node)`}; `
        + `predicted busiest/mean ${after.toFixed(2)}`;
      await recordAction(db, { kind: 'isolate', outcome: 'done', undoSql: undo, detail: {
        table: plan.shard.table, tenant: plan.tenant.tenant, source: plan.tenant.source, share: plan.tenant.share, shardId: plan.shard.shardId, isolatedShardId: isolated,
        from: source, to: target, ...(moveError ? { moveError } : {}), windowId: ctx.windowId, imbalanceBefore: ctx.imbalanceBefore, predictedAfter: after, text: detail } });
      actions.push({ kind: 'isolate', detail });
    } else {
      // Heaviest half first onto the least loaded node, then the other half likewise.
      const halves = [{ min: t.min, max: plan.point, w: plan.lowerShare }, { min: plan.point + 1, max: t.max, w: 1 - plan.lowerShare }];
      const placed = new Map<number, string>();
      for (const h of [...halves].sort((a, b) => b.w - a.w)) {
        const node = leastLoaded(source);
        placed.set(h.min, node);
        load.set(node, (load.get(node) ?? 0) + groupShare * h.w);
      }
      const nodeIds = await Promise.all(halves.map((h) => nodeIdOf(db, placed.get(h.min)!)));
      if (nodeIds.some((id) => id === undefined)) continue;
      await db.query("SELECT citus_split_shard_by_split_points($1::bigint, ARRAY[$2::text], $3::int[], shard_transfer_mode => 'block_writes')",
        [plan.shard.shardId, String(plan.point), nodeIds]);
      const pieces = await groupShards(db, plan.shard.table, t.min, t.max);
      await replaceShardPredictions(db, old.map((s) => s.shardId), pieces.map((p) => ({ shardId: p.shardId, table: p.table, predictedShare: share(p) })), ctx.windowId);
      const after = busiestOverMean([...load.values()]);
      const moved = pieces.filter((p) => p.node !== source && p.table === plan.shard.table);
      const undo = moved.length === 0 ? null : `-- Citus cannot merge the halves back: this moves them back to ${source}\n`
        + moved.map((p) => `SELECT citus_move_shard_placement(${Number(p.shardId)}, ${quoteLiteral(parseNodeLabel(p.node).host)}, ${parseNodeLabel(p.node).port}, `
          + `${quoteLiteral(parseNodeLabel(source).host)}, ${parseNodeLabel(source).port}, shard_transfer_mode => 'block_writes');`).join('\n');
      const detail = `split shard ${plan.shard.shardId} of ${plan.shard.table} (predicted at ${(plan.shard.predictedShare * 100).toFixed(0)}% of all load, `
        + `${t.tenants.length} tenants found by ${t.source}, the heaviest at ${((hottestOf(t)?.share ?? 0) * 100).toFixed(0)}%) at hash ${plan.point} `
        + `into halves of ${(plan.lowerShare * 100).toFixed(0)}% and ${((1 - plan.lowerShare) * 100).toFixed(0)}% of its load, placed on `
        + `${halves.map((h) => placed.get(h.min)).join(' and ')}; predicted busiest/mean ${after.toFixed(2)}`;
      await recordAction(db, { kind: 'split', outcome: 'done', undoSql: undo, detail: {
        table: plan.shard.table, shardId: plan.shard.shardId, splitPoint: plan.point, lowerShare: plan.lowerShare, source: t.source,
        nodes: halves.map((h) => placed.get(h.min)), windowId: ctx.windowId, imbalanceBefore: ctx.imbalanceBefore, predictedAfter: after, text: detail } });
      actions.push({ kind: 'split', detail });
    }
  }
  return actions;
}
