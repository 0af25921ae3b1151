import type pg from 'pg';
import type { Queryable } from '../connect/queryable.js';
import { inTransaction } from './transaction.js';
import {
  insertNodeMetrics, replaceStatCounters, upsertNodeCounters, upsertNodeObserved,
  type NodeCountersRow, type NodeMetricsRow, type NodeObservedRow, type NodeStatCounters,
} from './metrics-store.js';

/**
 * One monitoring window as the monitor writes it: what happened (actual load, live metrics),
 * how the last prediction fared, the model and its new prediction, and the advice drawn from it.
 * The rebalance strategy (adaptive_load.shard_cost, node_capacity) and the report read these
 * tables while the monitor writes them, so a window is written in one transaction: a reader sees
 * the previous window whole or this one whole, never an empty or half-replaced prediction table.
 */
export interface WindowRecord {
  readonly from: Date;
  readonly to: Date;
  /** MAPE of the per-node prediction made at the previous window, null without one. */
  readonly mape: number | null;
  /** WAPE of the same prediction (every node scored), null without one. */
  readonly wape: number | null;
  /** Largest absolute node share error of the same prediction, null without one. */
  readonly maxShareError: number | null;
  /** False when a node could not be read: then shardLoad and predictionHistory are empty. */
  readonly complete: boolean;
  /** Per node; actualShare null in an incomplete window (no actual shares are stored for it). */
  readonly nodes: readonly { node: string; predictedShare: number | null; actualShare: number | null }[];
  readonly unreachable: readonly string[];
  /** Counters read from each reachable node; an unreachable node keeps its old ones. */
  readonly statCounters: readonly NodeStatCounters[];
  /** Per shard, the window's actual load; empty when nothing ran (such windows train nothing). */
  readonly shardLoad: readonly { shardId: string; table: string; node: string; calls: number; totalMs: number }[];
  /** Per shard, the share predicted at the previous window beside the one that happened. */
  readonly predictionHistory: readonly { shardId: string; predictedShare: number; actualShare: number }[];
  /** The prediction for the next window: replaces the current one. */
  readonly predictions: readonly { shardId: string; table: string; predictedShare: number }[];
  readonly model: { readonly weights: unknown; readonly mape: number | null };
  readonly nodeMetrics: readonly NodeMetricsRow[];
  readonly nodeObserved: readonly NodeObservedRow[];
  readonly nodeCounters: readonly NodeCountersRow[];
  readonly advice: readonly AdviceRow[];
}

/** One piece of advice for a DBA, in the order given. */
export interface AdviceRow {
  readonly kind: string;
  /** The distributed table it is about, or undefined for a node or the cluster. */
  readonly table?: string | undefined;
  readonly detail: string;
  /** SQL a DBA can run to act on it. */
  readonly sql?: string | undefined;
}

/** Writes the whole window in one transaction; returns its id. */
export async function recordWindow(db: pg.ClientBase, w: WindowRecord): Promise<number> {
  return inTransaction(db, async (tx) => {
    const windowId = await insertWindow(tx, w);
    for (const c of w.statCounters) await replaceStatCounters(tx, c, w.to);
    await insertNodeMetrics(tx, windowId, w.nodeMetrics);
    await upsertNodeObserved(tx, windowId, w.nodeObserved);
    await upsertNodeCounters(tx, w.nodeCounters);
    await insertShardLoad(tx, windowId, w.shardLoad);
    await insertPredictionHistory(tx, windowId, w.predictionHistory);
    await replacePredictions(tx, windowId, w.predictions);
    await tx.query('INSERT INTO adaptive_load.model_state (weights, mape) VALUES ($1, $2)', [JSON.stringify(w.model.weights), w.model.mape]);
    await insertAdvice(tx, windowId, w.advice);
    return windowId;
  });
}

async function insertWindow(db: Queryable, w: WindowRecord): Promise<number> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO adaptive_load.windows (from_at, to_at, mape, wape, max_share_error, complete, nodes, unreachable)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING window_id::text AS id`,
    [w.from, w.to, w.mape, w.wape, w.maxShareError, w.complete, JSON.stringify(w.nodes), w.unreachable]);
  return Number(r.rows[0]!.id);
}

async function insertShardLoad(db: Queryable, windowId: number, rows: WindowRecord['shardLoad']): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO adaptive_load.shard_load (window_id, shard_id, table_name, node, calls, total_ms)
     SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::float8[])`,
    [windowId, rows.map((s) => s.shardId), rows.map((s) => s.table), rows.map((s) => s.node),
      rows.map((s) => Math.round(s.calls)), rows.map((s) => s.totalMs)]);
}

async function insertPredictionHistory(db: Queryable, windowId: number, rows: WindowRecord['predictionHistory']): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO adaptive_load.prediction_history (window_id, shard_id, predicted_share, actual_share)
     SELECT $1, * FROM unnest($2::bigint[], $3::float8[], $4::float8[])`,
    [windowId, rows.map((s) => s.shardId), rows.map((s) => s.predictedShare), rows.map((s) => s.actualShare)]);
}

/** Replaces the prediction the strategy reads: only ever inside recordWindow's transaction. */
async function replacePredictions(db: Queryable, windowId: number, rows: WindowRecord['predictions']): Promise<void> {
  await db.query('DELETE FROM adaptive_load.shard_predictions');
  await db.query(
    `INSERT INTO adaptive_load.shard_predictions (shard_id, table_name, predicted_share, window_id)
     SELECT s, t, p, $1 FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS u(s, t, p)`,
    [windowId, rows.map((s) => s.shardId), rows.map((s) => s.table), rows.map((s) => s.predictedShare)]);
}

async function insertAdvice(db: Queryable, windowId: number, rows: readonly AdviceRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO adaptive_load.advice (window_id, position, kind, table_name, detail, sql_text)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[])`,
    [windowId, rows.map((_, i) => i), rows.map((a) => a.kind), rows.map((a) => a.table ?? null), rows.map((a) => a.detail), rows.map((a) => a.sql ?? null)]);
}

/** Advice the monitor stored with the latest window (for one table: its own and the cluster's). */
export async function latestAdvice(db: Queryable, table?: string): Promise<{ kind: string; table: string | null; detail: string; sql: string | null }[]> {
  const r = await db.query<{ kind: string; table_name: string | null; detail: string; sql_text: string | null }>(
    `SELECT kind, table_name, detail, sql_text FROM adaptive_load.current_advice
      WHERE $1::text IS NULL OR table_name IS NULL OR to_regclass(table_name) = to_regclass($1)
      ORDER BY position`, [table ?? null]);
  return r.rows.map((a) => ({ kind: a.kind, table: a.table_name, detail: a.detail, sql: a.sql_text }));
}
