import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { takeLoadSnapshot } from '../workload/load-snapshot.js';
import { fitWeights, mape, maxShareError, predictShares, shares, wape, type ModelWeights, type ShardFeatures, type TrainingRow } from '../workload/load-model.js';
import { ewmaSeries } from '../workload/smoothing.js';
import { recentShares } from '../workload/load-history.js';
import { rebalance } from '../rebalance/rebalance.js';
import { priorShares } from '../workload/prior.js';
import { observeNodes, type NodeObservation } from '../workload/node-observation.js';
import { assess, gatherShardFacts, overloadingShards, type Advice, type Hotspot, type ShardOutlook } from '../rebalance/advice.js';
import { actOnHotShards, planHotShards } from '../rebalance/hot-shards.js';
import { checkActionOutcomes } from '../rebalance/action-check.js';
import { enableTenantTracking } from '../rebalance/tenant-tracking.js';
import type { TenantSource } from '../rebalance/hot-tenant.js';
import {
  DEFAULT_REBALANCE_THRESHOLD, HISTORY_WINDOWS, MAPE_MIN_ACTUAL_SHARE, MIN_WINDOW_CALLS, MIN_WINDOW_LOAD_MS, SHARE_SMOOTHING,
} from '../rebalance/policy.js';
import { recordWindow } from '../store/window-store.js';
import { requireCitus } from '../catalog/catalog.js';
import { InvalidConfigurationError } from '../errors.js';

export type { Advice, Hotspot } from '../rebalance/advice.js';

export interface NodeComparison {
  readonly node: string;
  /** Shares of the load attributed to shards (what moving shards changes). */
  readonly predictedShare: number | null;
  /** Null when the window is incomplete (a node did not answer): no actual shares for it. */
  readonly actualShare: number | null;
  /** Live metrics of the window; absent when the node could not be read. */
  readonly live?: NodeObservation;
}

export interface ShardComparison {
  readonly shardId: string;
  readonly table: string;
  readonly node: string;
  readonly predictedShare: number | null;
  readonly actualShare: number | null;
  readonly nextPredictedShare: number;
}

export interface MonitorResult {
  readonly windowId: number;
  readonly window: { from: string; to: string };
  readonly nodes: NodeComparison[];
  readonly shards: ShardComparison[];
  /**
   * The headline error of the per-node prediction made at the previous window: WAPE, sum of
   * |predicted - actual| node shares over the sum of actual shares, every node scored (idle ones
   * included); null without a prediction or without a window that carries signal.
   */
  readonly wape: number | null;
  /** Largest absolute error of a node's predicted share (0.04 = 4 points). */
  readonly maxShareError: number | null;
  /** MAPE of the same prediction, over nodes whose actual share is not tiny (policy.ts). */
  readonly mape: number | null;
  /** Per-shard MAPE, over shards whose actual share is not tiny. */
  readonly shardMape: number | null;
  /** False when a node could not be read: nothing stored as actual load, nothing learned, nothing moved. */
  readonly complete: boolean;
  /**
   * The load the window carried and whether it passes the floor (policy.ts MIN_WINDOW_*): below
   * it, the window is noise, nothing is learned and nothing moves; the prediction stays.
   */
  readonly signal: { totalMs: number; calls: number; enough: boolean; baseline: boolean };
  /** Busiest over mean node load: actual in this window (null when incomplete), and predicted for the next. */
  readonly imbalance: { actual: number | null; predicted: number };
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
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * One feedback cycle, in three steps:
 *
 * 1. Read (no transaction open): actual load per shard and node since the last snapshot from the
 *    workers, the stored prediction and recent history, the catalog facts advice needs; score the
 *    prediction made then, refit the model, predict the next window, and decide hotspots, advice
 *    and what to do (advice.ts). The window teaches and moves something only when it has signal:
 *    every node answered (complete) and its load passes the floor (policy.ts); otherwise the
 *    prediction stays as it was and nothing moves.
 * 2. Write the window (counters, actual load, metrics, predictions, model, advice) in one
 *    transaction (store/window-store.ts): the rebalance strategy, reading the predictions
 *    concurrently, sees the previous window or this one, never a half-written one. An
 *    incomplete window keeps every node's counters, so the next complete window measures all
 *    nodes over the same span.
 * 3. With `rebalance` and a window with signal, act: isolate the dominant tenant of a shard that
 *    would overload any node (or split a shard of many tenants; rebalance/hot-shards.ts, whose new
 *    shards inherit their parent's prediction before anything else reads it), turn tenant
 *    statistics on for the next window where they are off, check the last such action against
 *    this window, and move shards by the same plan a dry run shows (rebalance.ts) when the
 *    predicted imbalance passes the threshold. After the commit, because the rebalancer reads the
 *    new predictions and Citus moves shards outside any transaction block; each action is
 *    recorded once done.
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
  const complete = snapshot.unreachable.length === 0;
  const totalMs = sum(shardList.map((s) => s.totalMs));
  const calls = sum(shardList.map((s) => s.calls));
  const signal = complete && !snapshot.baseline && totalMs >= MIN_WINDOW_LOAD_MS && calls >= MIN_WINDOW_CALLS;
  const actual = shares(shardList.map((s) => s.totalMs));
  const priorShare = shares(shardList.map((s) => prior.get(s.shardId)?.share ?? 0));

  const nodes = [...new Set(shardList.map((s) => s.node))].sort();
  const nodeActual = nodes.map((n) => shardList.reduce((a, s, i) => a + (s.node === n ? actual[i]! : 0), 0));
  const scored = previous.size > 0 && signal;
  const nodePredicted = nodes.map((n) => shardList.reduce((a, s) => a + (s.node === n ? previous.get(s.shardId) ?? 0 : 0), 0));
  const nodePairs = nodes.map((_, i) => ({ predicted: nodePredicted[i]!, actual: nodeActual[i]! }));
  const nodeWape = scored ? wape(nodePairs) ?? null : null;
  const nodeMaxError = scored ? maxShareError(nodePairs) ?? null : null;
  const nodeMape = scored ? mape(nodePairs, MAPE_MIN_ACTUAL_SHARE) ?? null : null;
  const shardMape = scored ? mape(shardList.map((s, i) => ({ predicted: previous.get(s.shardId) ?? 0, actual: actual[i]! })), MAPE_MIN_ACTUAL_SHARE) ?? null : null;

  // The model learns from recent windows with signal (this one last, as it will be stored).
  const history = (await recentShares(db, HISTORY_WINDOWS)).map((w) => w.shares);
  if (signal) history.push(new Map(shardList.map((s, i) => [s.shardId, actual[i]!])));
  const smoothed = ewmaSeries(history, SHARE_SMOOTHING);
  const priorById = new Map(shardList.map((s, i) => [s.shardId, priorShare[i]!]));
  const weights = fitWeights(trainingRows(history, smoothed, priorById));
  let next: Map<string, number>;
  if (signal) {
    const latest = smoothed[smoothed.length - 1]!;
    const features: ShardFeatures[] = shardList.map((s, i) => ({
      shardId: s.shardId, priorShare: priorShare[i]!, smoothedShare: latest.get(s.shardId) ?? actual[i]!, currentShare: actual[i]!,
    }));
    next = predictShares(features, weights);
  } else {
    // Noise or a partial picture teaches nothing: the prediction stays (the prior for shards without one).
    const kept = shardList.map((s, i) => previous.get(s.shardId) ?? (previous.size ? 0 : priorShare[i]!));
    const k = shares(kept);
    next = new Map(shardList.map((s, i) => [s.shardId, k[i]!]));
  }
  const outlook: ShardOutlook[] = shardList.map((s) => ({ shardId: s.shardId, table: s.table, node: s.node, predictedShare: next.get(s.shardId) ?? 0 }));

  // What the monitor will do itself is decided before the window is stored, so its advice leaves
  // out what it acts on (the action is recorded instead). Only a window with signal acts.
  const acting = options.rebalance === true && signal;
  const overloading = overloadingShards(outlook, nodes.length);
  const facts = await gatherShardFacts(db, overloading, conn, options.tenantSources ? { sources: options.tenantSources } : {});
  const hotPlans = acting ? planHotShards(overloading, facts) : [];
  const nodeNext = nodes.map((n) => outlook.reduce((a, s) => a + (s.node === n ? s.predictedShare : 0), 0));
  const predictedImbalance = busiestOverMean(nodeNext);
  const rebalancing = acting && (predictedImbalance > (options.threshold ?? DEFAULT_REBALANCE_THRESHOLD) || hotPlans.length > 0);
  const { hotspots, advice } = assess({ nodes, shards: outlook, live, facts, acting: { isolating: new Set(hotPlans.map((p) => p.shard.shardId)), rebalancing } });

  const windowId = await recordWindow(db, {
    from: snapshot.from,
    to: snapshot.to,
    mape: nodeMape,
    wape: nodeWape,
    maxShareError: nodeMaxError,
    complete,
    nodes: complete ? nodes.map((n, i) => ({ node: n, predictedShare: previous.size > 0 ? nodePredicted[i]! : null, actualShare: nodeActual[i]! })) : [],
    unreachable: snapshot.unreachable.map((u) => u.node),
    // An incomplete window moves no node's counters on: the next complete one spans the same time on every node.
    statCounters: complete ? snapshot.statCounters : [],
    shardLoad: signal ? shardList : [],
    predictionHistory: scored ? shardList.map((s, i) => ({ shardId: s.shardId, predictedShare: previous.get(s.shardId) ?? 0, actualShare: actual[i]! })) : [],
    predictions: outlook,
    model: { weights, mape: nodeMape },
    nodeMetrics: observed.nodeMetrics,
    // Capacity is learned only from a window every node answered, with enough load to mean something.
    nodeObserved: complete && !snapshot.baseline && totalMs + sum([...snapshot.backgroundMs.values()]) >= MIN_WINDOW_LOAD_MS ? observed.nodeObserved : [],
    nodeCounters: observed.nodeCounters,
    advice,
  });

  // Did the last isolation or split lower the imbalance? Measured in this window, recorded as a check.
  const actions: { kind: string; detail: string }[] = signal ? await checkActionOutcomes(db, windowId, busiestOverMean(nodeActual)) : [];
  if (acting && overloading.length > 0 && !overloading.every((s) => facts.get(s.shardId)?.trackingOn)) {
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
      const why = result.moves.find((p) => m.shards.some((x) => x.shardId === p.shardId))?.reason;
      actions.push({ kind: 'move', detail: `moved shard ${m.shardId} of ${m.table}${m.shards.length > 1 ? ` (and ${m.shards.length - 1} colocated)` : ''} from ${m.from} to ${m.to} `
        + `(predicted busiest/mean ${predictedImbalance.toFixed(2)}${why ? `; ${why}` : ''})` });
    }
    if (result.moved.length === 0) {
      actions.push({ kind: 'none', detail: result.held ?? (result.skipped?.length
        ? `no planned move is worth its copy (${result.skipped.length} planned; first: ${result.skipped[0]!.reason})`
        : 'the rebalancer found no move that improves the predicted balance') });
    }
  }
  return {
    windowId,
    window: { from: snapshot.from.toISOString(), to: snapshot.to.toISOString() },
    nodes: nodes.map((n, i) => ({ node: n, predictedShare: previous.size > 0 ? nodePredicted[i]! : null, actualShare: complete ? nodeActual[i]! : null,
      ...(live.has(n) ? { live: live.get(n)! } : {}) })),
    shards: shardList.map((s, i) => ({ shardId: s.shardId, table: s.table, node: s.node, predictedShare: previous.size > 0 ? previous.get(s.shardId) ?? 0 : null,
      actualShare: complete ? actual[i]! : null, nextPredictedShare: next.get(s.shardId) ?? 0 })),
    wape: nodeWape,
    maxShareError: nodeMaxError,
    mape: nodeMape,
    shardMape,
    complete,
    signal: { totalMs, calls, enough: signal, baseline: snapshot.baseline },
    imbalance: { actual: complete ? busiestOverMean(nodeActual) : null, predicted: predictedImbalance },
    hotspots,
    model: weights,
    actions,
    advice,
    unreachable: snapshot.unreachable,
  };
}

/**
 * (features, next share) pairs over consecutive recorded windows: the features of window k (its
 * prior, its smoothed share through k, its share in k) against its share in window k + 1.
 */
function trainingRows(history: readonly Map<string, number>[], smoothed: readonly Map<string, number>[], priorShare: ReadonlyMap<string, number>): TrainingRow[] {
  const rows: TrainingRow[] = [];
  for (let k = 0; k + 1 < history.length; k++) {
    const cur = history[k]!;
    const next = history[k + 1]!;
    for (const [id, share] of cur) {
      const target = next.get(id);
      if (target === undefined || !priorShare.has(id)) continue;
      rows.push({ features: { shardId: id, priorShare: priorShare.get(id)!, smoothedShare: smoothed[k]!.get(id) ?? share, currentShare: share }, nextShare: target });
    }
  }
  return rows;
}
