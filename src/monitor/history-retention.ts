import type { Queryable } from '../connect/queryable.js';
import { DEFAULT_RETAIN_DAYS, RETENTION_BATCH_ROWS, RETENTION_MAX_BATCHES } from '../rebalance/policy.js';
import { pruneHistory, type RetentionResult } from '../store/retention.js';

/** Retention in milliseconds, or 'off'. Default policy.ts DEFAULT_RETAIN_DAYS. */
export type Retain = number | 'off';

export const DEFAULT_RETAIN_MS = DEFAULT_RETAIN_DAYS * 86_400_000;

/** One cycle's pruning of the monitor's history, bounded by policy.ts (store/retention.ts). */
export async function applyRetention(db: Queryable, retain: Retain = DEFAULT_RETAIN_MS, now = new Date()): Promise<RetentionResult | undefined> {
  if (retain === 'off') return undefined;
  return pruneHistory(db, { olderThan: new Date(now.getTime() - retain), batchRows: RETENTION_BATCH_ROWS, maxBatches: RETENTION_MAX_BATCHES });
}
