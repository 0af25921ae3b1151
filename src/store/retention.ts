import type { Queryable } from '../connect/queryable.js';
import { InvalidConfigurationError } from '../errors.js';

/**
 * Pruning of the monitor's history older than a horizon, in bounded batches:
 *
 * - Every table that grows by a cycle is covered: the windows themselves and what hangs off each
 *   (shard_load, prediction_history, node_metrics, advice), and model_state (one row per cycle).
 *   stat_snapshots, node_counters, node_observed and shard_predictions are replaced each cycle
 *   and do not grow; actions and requests are the DBA's audit trail and are kept.
 * - A window goes when it ended before the horizon, except the latest one (the current advice
 *   and the next cycle's deltas start from it). Its child rows go first, at most `batchRows` per
 *   statement, each statement its own transaction (short locks, small WAL bursts); the window
 *   rows go last, so a run cut short leaves whole windows with fewer rows, never rows without a
 *   window.
 * - At most `maxBatches` statements per run: a cycle's pruning work is bounded; what is left
 *   goes on the next run (`more` says so).
 */
export interface RetentionOptions {
  /** Rows ending before this time go. */
  readonly olderThan: Date;
  readonly batchRows: number;
  readonly maxBatches: number;
}

export interface RetentionResult {
  /** Rows deleted per table. */
  readonly deleted: Record<string, number>;
  /** True when the batch limit stopped it before everything older than the horizon was gone. */
  readonly more: boolean;
}

/** Per-window child tables, each keyed (window_id, ...) so a prefix of its primary key finds a window's rows. */
const WINDOW_CHILDREN = ['shard_load', 'prediction_history', 'node_metrics', 'advice'] as const;

export async function pruneHistory(db: Queryable, options: RetentionOptions): Promise<RetentionResult> {
  if (!(options.batchRows >= 1 && options.maxBatches >= 1)) throw new InvalidConfigurationError('retention batches must be positive');
  const deleted: Record<string, number> = {};
  let batches = 0;
  const step = async (table: string, sql: string, values: unknown[]): Promise<boolean> => {
    while (batches < options.maxBatches) {
      batches++;
      const n = (await db.query(sql, values)).rowCount ?? 0;
      deleted[table] = (deleted[table] ?? 0) + n;
      if (n < options.batchRows) return true;
    }
    return false;
  };
  // The last window that ended before the horizon, never the latest window.
  const cut = await db.query<{ id: string | null }>(
    `SELECT (SELECT window_id FROM adaptive_load.windows WHERE to_at < $1 ORDER BY to_at DESC LIMIT 1)::text AS id`, [options.olderThan]);
  const latest = await db.query<{ id: string | null }>('SELECT max(window_id)::text AS id FROM adaptive_load.windows');
  let upTo = cut.rows[0]?.id ?? null;
  if (upTo !== null && latest.rows[0]?.id === upTo) upTo = (BigInt(upTo) - 1n).toString();
  let done = true;
  if (upTo !== null) {
    for (const t of WINDOW_CHILDREN) {
      done = await step(t, `DELETE FROM adaptive_load.${t} WHERE ctid = ANY(ARRAY(
          SELECT ctid FROM adaptive_load.${t} WHERE window_id <= $1::bigint ORDER BY window_id LIMIT $2))`, [upTo, options.batchRows]);
      if (!done) break;
    }
    if (done) {
      done = await step('windows', `DELETE FROM adaptive_load.windows WHERE window_id = ANY(ARRAY(
          SELECT window_id FROM adaptive_load.windows WHERE window_id <= $1::bigint ORDER BY window_id LIMIT $2))`, [upTo, options.batchRows]);
    }
  }
  if (done) {
    // Every model state before the horizon but the newest (the report shows the current model).
    done = await step('model_state', `DELETE FROM adaptive_load.model_state WHERE model_id = ANY(ARRAY(
        SELECT model_id FROM adaptive_load.model_state WHERE fitted_at < $1
           AND model_id < (SELECT max(model_id) FROM adaptive_load.model_state) ORDER BY fitted_at LIMIT $2))`, [options.olderThan, options.batchRows]);
  }
  return { deleted, more: !done };
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A retention horizon as a person writes it: "30d", "12h", "90m", "2w" (milliseconds), or "off"
 * (keep everything).
 */
export function parseRetention(text: string): number | 'off' {
  const t = text.trim().toLowerCase();
  if (t === 'off') return 'off';
  const m = /^(\d+(?:\.\d+)?)\s*([mhdw])$/.exec(t);
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new InvalidConfigurationError(`--retain ${JSON.stringify(text)}: give a positive duration such as 30d, 12h, 90m or 2w, or "off"`);
  }
  return ms;
}
