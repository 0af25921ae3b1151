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
 *   and the next cycle's deltas start from it). Oldest first, a round of up to 100 windows at a
 *   time: their child rows go first, at most `batchRows` per statement, each statement its own
 *   transaction (short locks, small WAL bursts); then the windows, so a run cut short leaves
 *   windows with fewer rows, never rows without a window.
 * - At most `maxBatches` deleting statements per run (and a probe per table and round of
 *   windows): a cycle's pruning work is bounded; what is left goes on the next run (`more`).
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

/** Old windows taken per round: their child rows go in batches, then the windows themselves. */
const WINDOWS_PER_ROUND = 100;

export async function pruneHistory(db: Queryable, options: RetentionOptions): Promise<RetentionResult> {
  if (!(options.batchRows >= 1 && options.maxBatches >= 1)) throw new InvalidConfigurationError('retention batches must be positive');
  const deleted: Record<string, number> = {};
  let batches = 0;
  const count = (table: string, n: number) => { deleted[table] = (deleted[table] ?? 0) + n; };
  /** Runs a batch statement until it deletes fewer than a batch; false when the batch limit stopped it. */
  const drain = async (table: string, sql: string, values: unknown[]): Promise<boolean> => {
    while (batches < options.maxBatches) {
      const n = (await db.query(sql, values)).rowCount ?? 0;
      // A statement that found nothing left is a cheap index probe: it spends none of the budget
      // (else the probes of tables already emptied would use it up and the run never advance).
      if (n > 0) batches++;
      count(table, n);
      if (n < options.batchRows) return true;
    }
    return false;
  };
  let done = true;
  rounds: while (batches < options.maxBatches) {
    // The oldest windows that ended before the horizon, never the latest window.
    const chunk = (await db.query<{ id: string }>(
      `SELECT window_id::text AS id FROM adaptive_load.windows
        WHERE to_at < $1 AND window_id < (SELECT max(window_id) FROM adaptive_load.windows)
        ORDER BY window_id LIMIT $2`, [options.olderThan, Math.min(WINDOWS_PER_ROUND, options.batchRows)])).rows.map((r) => r.id);
    if (chunk.length === 0) break;
    for (const t of WINDOW_CHILDREN) {
      if (!await drain(t, `DELETE FROM adaptive_load.${t} WHERE ctid = ANY(ARRAY(
          SELECT ctid FROM adaptive_load.${t} WHERE window_id = ANY($1::bigint[]) LIMIT $2))`, [chunk, options.batchRows])) {
        done = false;
        break rounds;
      }
    }
    if (batches >= options.maxBatches) {
      done = false;
      break;
    }
    batches++;
    count('windows', (await db.query('DELETE FROM adaptive_load.windows WHERE window_id = ANY($1::bigint[])', [chunk])).rowCount ?? 0);
  }
  if (batches >= options.maxBatches) done = false;
  if (done) {
    // Every model state before the horizon but the newest (the report shows the current model).
    done = await drain('model_state', `DELETE FROM adaptive_load.model_state WHERE model_id = ANY(ARRAY(
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
