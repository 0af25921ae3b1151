import type pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import { isSingleTenantShard, nodeIdOf } from '../catalog/catalog.js';
import { takeLoadSnapshot } from '../workload/load-snapshot.js';
import { fitWeights, mape, predictShares, shares, type ModelWeights, type ShardFeatures, type TrainingRow } from '../workload/load-model.js';
import { rebalance } from '../rebalance/rebalance.js';
import { quoteLiteral } from '../connect/sql.js';
import { priorShares } from '../workload/prior.js';
import { observeNodes, type NodeObservation } from '../workload/node-observation.js';
import { capacityReason, liveAdvice, liveHotspots } from '../rebalance/live-advice.js';

export interface NodeComparison {
  readonly node: string;
  /** Shares of the load attributed to shards (what moving shards changes). */
  readonly predictedShare: number | null;
  readonly actualShare: number;
  /** Live metrics of the window; absent when the node could not be read. */
  readonly live?: NodeObservation;
}

export interface ShardComparison {
  readonly shardId: string;
  readonly table: string;
  readonly node: string;
  readonly predictedShare: number | null;
  readonly actualShare: number;
  readonly nextPredictedShare: number;
}

export interface Hotspot {
  readonly kind: 'shard' | 'node';
  readonly id: string;
  readonly predictedShare: number;
  readonly reason: string;
}

export interface Advice {
  readonly kind: 'isolate-tenant' | 'node-capacity' | 'scale-up' | 'add-node' | 'connections' | 'memory';
  readonly detail: string;
  /** SQL a DBA can run to act on it. */
  readonly sql?: string;
}

export interface MonitorResult {
  readonly windowId: number;
  readonly window: { from: string; to: string };
  readonly nodes: NodeComparison[];
  readonly shards: ShardComparison[];
  /** MAPE of the per-node prediction made at the previous window (null on the first window). */
  readonly mape: number | null;
  readonly shardMape: number | null;
  /** Busiest over mean node load: actual in this window, and predicted for the next. */
  readonly imbalance: { actual: number; predicted: number };
  readonly hotspots: Hotspot[];
  readonly model: ModelWeights;
  readonly actions: { kind: string; detail: string }[];
  readonly advice: Advice[];
  readonly unreachable: { node: string; error: string }[];
}

export interface MonitorOptions {
  /** Act when the predicted busiest/mean node load passes `threshold`. */
  rebalance?: boolean;
  /** Default 1.1. */
  threshold?: number;
}

const busiestOverMean = (loads: number[]) => (loads.length ? Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length || 1) : 1);

/**
 * One feedback cycle: actual load per shard and node since the last snapshot, compared with the
 * prediction made then; both stored; the model refitted on all recorded windows; new predictions
 * stored (the rebalance strategy reads them); with `rebalance`, shards moved when the predicted
 * imbalance passes the threshold.
 */
export async function monitorOnce(db: pg.Client, conn: ConnectionConfig, options: MonitorOptions = {}): Promise<MonitorResult> {
  const snapshot = await takeLoadSnapshot(db, conn);
  const previous = new Map((await db.query<{ shard_id: string; predicted_share: number }>(
    'SELECT shard_id::text, predicted_share FROM adaptive_load.shard_predictions')).rows.map((r) => [r.shard_id, r.predicted_share]));
  const prior = await priorShares(db);

  const shardList = snapshot.shards;
  const actual = shares(shardList.map((s) => s.totalMs));
  const priorShare = shares(shardList.map((s) => prior.get(s.shardId)?.share ?? 0));
  const active = shardList.some((s) => s.totalMs > 0);

  const nodes = [...new Set(shardList.map((s) => s.node))].sort();
  const nodeActual = nodes.map((n) => shardList.reduce((a, s, i) => a + (s.node === n ? actual[i]! : 0), 0));
  const havePrediction = previous.size > 0 && active;
  const nodePredicted = nodes.map((n) => shardList.reduce((a, s) => a + (s.node === n ? previous.get(s.shardId) ?? 0 : 0), 0));
  const nodeMape = havePrediction ? mape(nodes.map((_, i) => ({ predicted: nodePredicted[i]!, actual: nodeActual[i]! }))) ?? null : null;
  const shardMape = havePrediction ? mape(shardList.map((s, i) => ({ predicted: previous.get(s.shardId) ?? 0, actual: actual[i]! }))) ?? null : null;

  const win = await db.query<{ id: string }>(
    `INSERT INTO adaptive_load.windows (from_at, to_at, mape, nodes, unreachable) VALUES ($1, $2, $3, $4, $5) RETURNING window_id::text AS id`,
    [snapshot.from, snapshot.to, nodeMape, JSON.stringify(nodes.map((n, i) => ({ node: n, predictedShare: havePrediction ? nodePredicted[i] : null, actualShare: nodeActual[i] }))),
      snapshot.unreachable.map((u) => u.node)]);
  const windowId = Number(win.rows[0]!.id);
  const live = await observeNodes(db, snapshot, windowId);
  if (active) {
    await db.query(
      `INSERT INTO adaptive_load.shard_load (window_id, shard_id, table_name, node, calls, total_ms)
       SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::float8[])`,
      [windowId, shardList.map((s) => s.shardId), shardList.map((s) => s.table), shardList.map((s) => s.node),
        shardList.map((s) => Math.round(s.calls)), shardList.map((s) => s.totalMs)]);
    if (havePrediction) {
      await db.query(
        `INSERT INTO adaptive_load.prediction_history (window_id, shard_id, predicted_share, actual_share)
         SELECT $1, * FROM unnest($2::bigint[], $3::float8[], $4::float8[])`,
        [windowId, shardList.map((s) => s.shardId), shardList.map((s) => previous.get(s.shardId) ?? 0), actual]);
    }
  }

  // Refit on every recorded pair of consecutive active windows, then predict the next window.
  const history = await loadHistory(db);
  const lastActual = history.length >= 2 ? history[history.length - 2]! : undefined;
  const features: ShardFeatures[] = shardList.map((s, i) => ({
    shardId: s.shardId,
    priorShare: priorShare[i]!,
    previousShare: lastActual?.get(s.shardId) ?? priorShare[i]!,
    currentShare: active ? actual[i]! : previous.get(s.shardId) ?? priorShare[i]!,
  }));
  const weights = fitWeights(trainingRows(history, shardList.map((s) => s.shardId), new Map(shardList.map((s, i) => [s.shardId, priorShare[i]!]))));
  const next = predictShares(features, weights);
  await db.query('DELETE FROM adaptive_load.shard_predictions');
  await db.query(
    `INSERT INTO adaptive_load.shard_predictions (shard_id, table_name, predicted_share, window_id)
     SELECT s, t, p, $1 FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS u(s, t, p)`,
    [windowId, shardList.map((s) => s.shardId), shardList.map((s) => s.table), shardList.map((s) => next.get(s.shardId) ?? 0)]);
  await db.query('INSERT INTO adaptive_load.model_state (weights, mape) VALUES ($1, $2)', [JSON.stringify(weights), nodeMape]);

  const nodeNext = nodes.map((n) => shardList.reduce((a, s) => a + (s.node === n ? next.get(s.shardId) ?? 0 : 0), 0));
  // A node's fair share follows its capacity (a DBA's figure or its host's cores, less the load no shard explains).
  const capacity = nodes.map((n) => live.get(n)?.capacity ?? 1);
  const fairShare = shares(capacity);
  const fair = 1 / Math.max(1, nodes.length);
  const shardFair = Math.min(...fairShare);
  const hotspots: Hotspot[] = [
    ...shardList.filter((s) => (next.get(s.shardId) ?? 0) > shardFair / 2).map((s) => ({
      kind: 'shard' as const, id: s.shardId, predictedShare: next.get(s.shardId)!,
      reason: `shard ${s.shardId} of ${s.table} is predicted to take ${(next.get(s.shardId)! * 100).toFixed(0)}% of the load, `
        + `more than half of a node's fair share (${(shardFair * 100).toFixed(0)}%)`,
    })),
    ...nodes.flatMap((n, i) => (nodeNext[i]! > fairShare[i]! * 1.25 ? [{
      kind: 'node' as const, id: n, predictedShare: nodeNext[i]!,
      reason: `node ${n} is predicted to take ${(nodeNext[i]! * 100).toFixed(0)}% of the load against a fair ${(fairShare[i]! * 100).toFixed(0)}%`
        + (Math.abs(fairShare[i]! - fair) > 0.005 ? ` (its capacity ${capacity[i]!.toFixed(2)}: ${capacityReason(live.get(n))})` : ''),
    }] : [])),
    ...liveHotspots(nodes, live, nodeNext),
  ];

  const actions: { kind: string; detail: string }[] = [];
  const predictedImbalance = busiestOverMean(nodeNext);
  // A shard hotter than a whole node stays hot wherever it goes: first split its hottest tenant off.
  const isolated = options.rebalance ? await isolateOverloadingTenants(db, shardList, next, fair, windowId) : [];
  actions.push(...isolated);
  if (options.rebalance && (predictedImbalance > (options.threshold ?? 1.1) || isolated.length > 0)) {
    const result = await rebalance(db, { dryRun: false });
    for (const m of result.moves) {
      const detail = `moved shard ${m.shardId} of ${m.table} from ${m.from} to ${m.to} (predicted busiest/mean ${predictedImbalance.toFixed(2)})`;
      actions.push({ kind: 'move', detail });
      const to = parseNodeLabel(m.to);
      const from = parseNodeLabel(m.from);
      await db.query('INSERT INTO adaptive_load.actions (kind, detail, outcome, undo_sql) VALUES ($1, $2, $3, $4)',
        ['move', JSON.stringify({ ...m, windowId }), 'done',
          `SELECT citus_move_shard_placement(${Number(m.shardId)}, ${quoteLiteral(to.host)}, ${to.port}, ${quoteLiteral(from.host)}, ${from.port}, 'block_writes')`]);
    }
    if (result.moves.length === 0) actions.push({ kind: 'none', detail: 'the rebalancer found no move that improves the predicted balance' });
  }
  const advice = [...await adviseOn(db, shardList, next, nodes), ...liveAdvice(nodes, live, nodeNext, fairShare)];
  return {
    windowId,
    window: { from: snapshot.from.toISOString(), to: snapshot.to.toISOString() },
    nodes: nodes.map((n, i) => ({ node: n, predictedShare: havePrediction ? nodePredicted[i]! : null, actualShare: nodeActual[i]!,
      ...(live.has(n) ? { live: live.get(n)! } : {}) })),
    shards: shardList.map((s, i) => ({ shardId: s.shardId, table: s.table, node: s.node, predictedShare: havePrediction ? previous.get(s.shardId) ?? 0 : null,
      actualShare: actual[i]!, nextPredictedShare: next.get(s.shardId) ?? 0 })),
    mape: nodeMape,
    shardMape,
    imbalance: { actual: busiestOverMean(nodeActual), predicted: predictedImbalance },
    hotspots,
    model: weights,
    actions,
    advice,
    unreachable: snapshot.unreachable,
  };
}

/**
 * What a DBA can do that moving shards cannot: a shard predicted to take more than a node's fair
 * share stays hot wherever it goes (isolate its tenant, or weight its node). Advice from the
 * nodes' live metrics (scale-up, connections) is in live-advice.ts.
 */
async function adviseOn(db: pg.Client, shardList: { shardId: string; table: string; node: string }[], next: Map<string, number>,
  nodes: string[]): Promise<Advice[]> {
  const advice: Advice[] = [];
  const fair = 1 / Math.max(1, nodes.length);
  const tenantStats = await db.query<{ v: string }>("SELECT current_setting('citus.stat_tenants_track', true) AS v").catch(() => ({ rows: [{ v: 'none' }] }));
  const tracking = tenantStats.rows[0]?.v === 'all';
  for (const s of shardList) {
    const share = next.get(s.shardId) ?? 0;
    if (share <= fair) continue;
    const nodeId = await nodeIdOf(db, s.node);
    const single = await isSingleTenantShard(db, s.shardId);
    const tenant = !single && tracking ? (await hottestTenant(db, s.table, s.shardId))?.tenant : undefined;
    if (!single) advice.push({
      kind: 'isolate-tenant',
      detail: `shard ${s.shardId} of ${s.table} is predicted to take ${(share * 100).toFixed(0)}% of the load, more than a whole node's fair `
        + `${(fair * 100).toFixed(0)}%: no placement balances it. ${tenant ? `Isolate tenant ${tenant} into its own shard` : "Find its hottest tenant (set citus.stat_tenants_track = 'all') and isolate it"}, `
        + 'or give its node more capacity.',
      ...(tenant ? { sql: `SELECT isolate_tenant_to_new_shard(${quoteLiteral(s.table)}, ${quoteLiteral(tenant)}, 'CASCADE', shard_transfer_mode => 'block_writes')` } : {}),
    });
    if (nodeId !== undefined) {
      const capacity = Math.min(4, Math.max(1.25, share / fair)).toFixed(2);
      advice.push({
        kind: 'node-capacity',
        detail: `if ${s.node} has (or gets) about ${capacity}x the resources of the others, record it so the rebalancer places less beside the hot shard`,
        sql: `INSERT INTO adaptive_load.node_capacity VALUES (${nodeId}, ${capacity}) ON CONFLICT (node_id) DO UPDATE SET capacity = EXCLUDED.capacity`,
      });
    }
  }
  return advice;
}

/**
 * The tenant drawing the most queries of a shard, and its share of the shard's queries, from
 * citus_stat_tenants (needs citus.stat_tenants_track = 'all').
 */
async function hottestTenant(db: pg.Client, table: string, shardId: string): Promise<{ tenant: string; share: number } | undefined> {
  const tenants = await db.query<{ tenant: string; q: number }>(
    `SELECT tenant_attribute AS tenant, (query_count_in_this_period + query_count_in_last_period)::float8 AS q
       FROM citus_stat_tenants
      WHERE colocation_id = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass)
        AND get_shard_id_for_distribution_column($1::regclass, tenant_attribute) = $2
      ORDER BY q DESC`, [table, shardId]);
  const total = tenants.rows.reduce((a, t) => a + t.q, 0);
  const top = tenants.rows[0];
  return top && total > 0 ? { tenant: top.tenant, share: top.q / total } : undefined;
}

/**
 * Isolates the tenant that draws most of the queries of a shard predicted to take more than a
 * node's fair share, when Citus tracks tenants (citus.stat_tenants_track = 'all'). The shard is
 * split so that tenant gets a shard of its own, which the rebalancer can then place alone.
 * Citus cannot merge shards back, so there is no undo.
 */
async function isolateOverloadingTenants(db: pg.Client, shardList: { shardId: string; table: string; node: string }[],
  next: Map<string, number>, fair: number, windowId: number): Promise<{ kind: string; detail: string }[]> {
  const tracking = await db.query<{ v: string | null }>("SELECT current_setting('citus.stat_tenants_track', true) AS v");
  if (tracking.rows[0]?.v !== 'all') return [];
  const done: { kind: string; detail: string }[] = [];
  for (const s of shardList) {
    const share = next.get(s.shardId) ?? 0;
    if (share <= fair) continue;
    if (await isSingleTenantShard(db, s.shardId)) continue;
    const top = await hottestTenant(db, s.table, s.shardId);
    // Isolation helps only if one tenant is most of the shard's load.
    if (!top || top.share < 0.5) continue;
    await db.query("SELECT isolate_tenant_to_new_shard($1::regclass, $2::text, 'CASCADE', shard_transfer_mode => 'block_writes')", [s.table, top.tenant]);
    const detail = `isolated tenant ${top.tenant} of ${s.table} (${(top.share * 100).toFixed(0)}% of the queries of shard ${s.shardId}, `
      + `predicted at ${(share * 100).toFixed(0)}% of all load, more than a node's fair ${(fair * 100).toFixed(0)}%)`;
    await db.query('INSERT INTO adaptive_load.actions (kind, detail, outcome, undo_sql) VALUES ($1, $2, $3, NULL)',
      ['isolate', JSON.stringify({ table: s.table, tenant: top.tenant, shardId: s.shardId, windowId }), 'done']);
    done.push({ kind: 'isolate', detail });
  }
  return done;
}

/** Actual shares per shard for every recorded window with activity, oldest first. */
async function loadHistory(db: pg.Client): Promise<Map<string, number>[]> {
  const r = await db.query<{ window_id: string; shard_id: string; total_ms: number }>(
    'SELECT window_id::text, shard_id::text, total_ms FROM adaptive_load.shard_load ORDER BY window_id');
  const byWindow = new Map<string, { shard: string; ms: number }[]>();
  for (const row of r.rows) byWindow.set(row.window_id, [...(byWindow.get(row.window_id) ?? []), { shard: row.shard_id, ms: row.total_ms }]);
  return [...byWindow.values()].map((rows) => {
    const s = shares(rows.map((x) => x.ms));
    return new Map(rows.map((x, i) => [x.shard, s[i]!]));
  });
}

function trainingRows(history: Map<string, number>[], shardIds: string[], priorShare: Map<string, number>): TrainingRow[] {
  const rows: TrainingRow[] = [];
  for (let k = 1; k + 1 < history.length + 1 && k < history.length; k++) {
    const prev = k >= 2 ? history[k - 2] : undefined;
    const cur = history[k - 1]!;
    const next = history[k]!;
    for (const id of shardIds) {
      if (!cur.has(id) || !next.has(id)) continue;
      rows.push({
        features: { shardId: id, priorShare: priorShare.get(id) ?? 0, previousShare: prev?.get(id) ?? priorShare.get(id) ?? 0, currentShare: cur.get(id)! },
        nextShare: next.get(id)!,
      });
    }
  }
  return rows;
}
