import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { takeLoadSnapshot } from '../workload/load-snapshot.js';
import { fitWeights, mape, predictShares, shares, type ModelWeights, type ShardFeatures, type TrainingRow } from '../workload/load-model.js';
import { rebalance } from '../rebalance/rebalance.js';
import { priorShares } from '../workload/prior.js';
import { observeNodes, type NodeObservation } from '../workload/node-observation.js';
import { assess, gatherShardFacts, overloadingShards, type Advice, type Hotspot, type ShardOutlook } from '../rebalance/advice.js';
import { actOnHotShards, planHotShards } from '../rebalance/hot-shards.js';
import { checkActionOutcomes } from '../rebalance/action-check.js';
import { enableTenantTracking } from '../rebalance/tenant-tracking.js';
import type { TenantSource } from '../rebalance/hot-tenant.js';
import { DEFAULT_REBALANCE_THRESHOLD, HISTORY_WINDOWS } from '../rebalance/policy.js';
import { readRecentShardLoad } from '../store/history-store.js';
import { recordWindow } from '../store/window-store.js';
import { requireCitus } from '../catalog/catalog.js';
import { InvalidConfigurationError } from '../errors.js';

export type { Advice, Hotspot } from '../rebalance/advice.js';

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
  /** Default policy.ts DEFAULT_REBALANCE_THRESHOLD. */
  threshold?: number;
  /** Where to look for a hot shard's tenants, in order (hot-tenant.ts); default all. */
  tenantSources?: TenantSource[];
}

const busiestOverMean = (loads: number[]) => (loads.length ? Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length || 1) : 1);

/**
 * One feedback cycle, in three steps:
 *
 * 1. Read (no transaction open): actual load per shard and node since the last snapshot from the
 *    workers, the stored prediction and history, the catalog facts advice needs; compare with
 *    the prediction made then, refit the model on all recorded windows, predict the next window,
 *    and decide hotspots, advice and what to do (advice.ts).
 * 2. Write the window (counters, actual load, metrics, predictions, model, advice) in one
 *    transaction (store/window-store.ts): the rebalance strategy, reading the predictions
 *    concurrently, sees the previous window or this one, never a half-written one.
 * 3. With `rebalance`, act: isolate the dominant tenant of a shard that would overload any node (or
 *    split a shard of many tenants; rebalance/hot-shards.ts), turn tenant statistics on for the
 *    next window where they are off, check the last such action against this window, and move shards
 *    when the predicted imbalance passes the threshold. After the commit, because the rebalancer
 *    reads the new predictions and Citus moves shards outside any transaction block; each action
 *    is recorded once done.
 */
export async function monitorOnce(db: pg.Client, conn: ConnectionConfig, options: MonitorOptions = {}): Promise<MonitorResult> {
  if (options.threshold !== undefined && !(options.threshold >= 1 && Number.isFinite(options.threshold))) {
    // NaN passes no comparison (the monitor would never act), and busiest/mean is at least 1.
    throw new InvalidConfigurationError(`threshold must be a number of at least 1 (busiest over mean node load), got ${options.threshold}`);
  }
  await requireCitus(db, 'monitor');
  const snapshot = await takeLoadSnapshot(db, conn);
  const previous = new Map((await db.query<{ shard_id: string; predicted_share: number }>(
    'SELECT shard_id::text, predicted_share FROM adaptive_load.shard_predictions')).rows.map((r) => [r.shard_id, r.predicted_share]));
  const prior = await priorShares(db);
  const observed = await observeNodes(db, snapshot);
  const live = observed.observations;

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

  // Refit on every recorded pair of consecutive active windows (this one last, as it will be
  // stored), then predict the next window.
  const history = await loadHistory(db);
  if (active) history.push(new Map(shardList.map((s, i) => [s.shardId, actual[i]!])));
  const lastActual = history.length >= 2 ? history[history.length - 2]! : undefined;
  const features: ShardFeatures[] = shardList.map((s, i) => ({
    shardId: s.shardId,
    priorShare: priorShare[i]!,
    previousShare: lastActual?.get(s.shardId) ?? priorShare[i]!,
    currentShare: active ? actual[i]! : previous.get(s.shardId) ?? priorShare[i]!,
  }));
  const weights = fitWeights(trainingRows(history, shardList.map((s) => s.shardId), new Map(shardList.map((s, i) => [s.shardId, priorShare[i]!]))));
  const next = predictShares(features, weights);
  const outlook: ShardOutlook[] = shardList.map((s) => ({ shardId: s.shardId, table: s.table, node: s.node, predictedShare: next.get(s.shardId) ?? 0 }));

  // What the monitor will do itself is decided before the window is stored, so its advice leaves
  // out what it acts on (the action is recorded instead).
  const overloading = overloadingShards(outlook, nodes.length);
  const facts = await gatherShardFacts(db, overloading, conn, options.tenantSources ? { sources: options.tenantSources } : {});
  const hotPlans = options.rebalance ? planHotShards(overloading, facts) : [];
  const nodeNext = nodes.map((n) => outlook.reduce((a, s) => a + (s.node === n ? s.predictedShare : 0), 0));
  const predictedImbalance = busiestOverMean(nodeNext);
  const rebalancing = options.rebalance === true && (predictedImbalance > (options.threshold ?? DEFAULT_REBALANCE_THRESHOLD) || hotPlans.length > 0);
  const { hotspots, advice } = assess({ nodes, shards: outlook, live, facts, acting: { isolating: new Set(hotPlans.map((p) => p.shard.shardId)), rebalancing } });

  const windowId = await recordWindow(db, {
    from: snapshot.from,
    to: snapshot.to,
    mape: nodeMape,
    nodes: nodes.map((n, i) => ({ node: n, predictedShare: havePrediction ? nodePredicted[i]! : null, actualShare: nodeActual[i]! })),
    unreachable: snapshot.unreachable.map((u) => u.node),
    statCounters: snapshot.statCounters,
    shardLoad: active ? shardList : [],
    predictionHistory: active && havePrediction
      ? shardList.map((s, i) => ({ shardId: s.shardId, predictedShare: previous.get(s.shardId) ?? 0, actualShare: actual[i]! })) : [],
    predictions: outlook,
    model: { weights, mape: nodeMape },
    nodeMetrics: observed.nodeMetrics,
    nodeObserved: observed.nodeObserved,
    nodeCounters: observed.nodeCounters,
    advice,
  });

  // Did the last isolation or split lower the imbalance? Measured in this window, recorded as a check.
  const actions: { kind: string; detail: string }[] = active ? await checkActionOutcomes(db, windowId, busiestOverMean(nodeActual)) : [];
  if (options.rebalance && overloading.length > 0 && !overloading.every((s) => facts.get(s.shardId)?.trackingOn)) {
    // Query counts per tenant in the next window beat rows as evidence: turn Citus's tenant statistics on (recorded, with undo).
    const changes = await enableTenantTracking(db, conn, true, `shard${overloading.length > 1 ? 's' : ''} ${overloading.map((s) => s.shardId).join(', ')} `
      + 'predicted hotter than a node\'s fair share: count queries per tenant');
    for (const c of changes) actions.push({ kind: 'setting', detail: `${c.name} on ${c.node}: ${c.from} -> ${c.to} (${c.reason})` });
  }
  // A shard hotter than a whole node stays hot wherever it goes: isolate its dominant tenant, or split it.
  actions.push(...await actOnHotShards(db, hotPlans, { nodes, outlook, windowId, imbalanceBefore: busiestOverMean(nodeActual),
    capacity: new Map(nodes.map((n) => [n, live.get(n)?.capacity ?? 1])) }));
  if (rebalancing) {
    // rebalance() records each move that really happened (placements before and after) with its undo.
    const result = await rebalance(db, { dryRun: false, origin: { startedBy: 'monitor', windowId } });
    for (const m of result.moved) {
      actions.push({ kind: 'move', detail: `moved shard ${m.shardId} of ${m.table}${m.shards.length > 1 ? ` (and ${m.shards.length - 1} colocated)` : ''} from ${m.from} to ${m.to} (predicted busiest/mean ${predictedImbalance.toFixed(2)})` });
    }
    if (result.moved.length === 0) actions.push({ kind: 'none', detail: 'the rebalancer found no move that improves the predicted balance' });
  }
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

/** Actual shares per shard for the latest HISTORY_WINDOWS windows with activity, oldest first (a bounded read). */
async function loadHistory(db: pg.Client): Promise<Map<string, number>[]> {
  const rows = await readRecentShardLoad(db, HISTORY_WINDOWS);
  const byWindow = new Map<string, { shard: string; ms: number }[]>();
  for (const row of rows) {
    const list = byWindow.get(row.windowId) ?? [];
    list.push({ shard: row.shardId, ms: row.totalMs });
    byWindow.set(row.windowId, list);
  }
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
