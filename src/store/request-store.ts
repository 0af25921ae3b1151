import type { Queryable } from '../connect/queryable.js';

/**
 * Writes to adaptive_load.requests, the queue of loads and rebalances asked for from SQL. The
 * daemon's request runner decides when (inside its own transactions and advisory locks); these
 * statements are the only way a request's status changes.
 */

export interface RequestRow {
  request_id: string;
  kind: 'load' | 'rebalance';
  table_name: string | null;
  source: string | null;
  options: unknown;
  requested_by: string;
  started_at: Date;
}

/** Marks a pending request running, claimed by this daemon's session; returns the request. */
export async function markClaimed(db: Queryable, requestId: string, claimer: string): Promise<RequestRow | undefined> {
  const r = await db.query<RequestRow>(
    `UPDATE adaptive_load.requests SET status = 'running', started_at = now(), claimed_by = $2, claimed_backend_pid = pg_backend_pid()
      WHERE request_id = $1
      RETURNING request_id::text, kind, table_name, source, options, requested_by::text, started_at`, [requestId, claimer]);
  return r.rows[0];
}

/** A running request whose claiming daemon is gone ends failed, naming that daemon. */
export async function markAbandoned(db: Queryable, requestId: string): Promise<void> {
  await db.query(
    `UPDATE adaptive_load.requests SET status = 'failed', finished_at = now(),
            error = 'daemon ended while running (claimed by ' || coalesce(claimed_by, 'an earlier daemon') || ')'
      WHERE request_id = $1`, [requestId]);
}

/**
 * Records a request's end. Only a row still running changes: one failed meanwhile (time limit,
 * reclaim) stays failed. Returns whether it changed.
 */
export async function finishRequest(db: Queryable, requestId: string, status: 'done' | 'failed',
  detail: { outcome?: unknown; error?: string }): Promise<boolean> {
  const u = await db.query(
    `UPDATE adaptive_load.requests SET status = $2, finished_at = now(), outcome = $3, error = $4
      WHERE request_id = $1 AND status = 'running'`,
    [requestId, status, detail.outcome === undefined ? null : JSON.stringify(detail.outcome), detail.error ?? null]);
  return (u.rowCount ?? 0) > 0;
}
