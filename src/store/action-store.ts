import type { Queryable } from '../connect/queryable.js';

/** What the tool did to the cluster, as adaptive_load.actions records it (the DBA's audit trail). */
export interface ActionRecord {
  /** 'move', 'isolate', 'setting', 'placement'. */
  readonly kind: string;
  /** Stored as jsonb: the facts of the action, for the report and for a DBA's queries. */
  readonly detail: unknown;
  readonly outcome: string;
  /** SQL that undoes it, or null where nothing can (Citus cannot merge isolated shards back). */
  readonly undoSql: string | null;
}

/**
 * Records one action (after it took effect, or before with an outcome saying it is under way,
 * then settled with setActionOutcome). Actions are not part of a window's transaction: shard
 * moves and ALTER SYSTEM cannot run inside a transaction block, so each is recorded by itself.
 * Returns the action's id.
 */
export async function recordAction(db: Queryable, a: ActionRecord): Promise<string> {
  const r = await db.query<{ id: string }>(
    'INSERT INTO adaptive_load.actions (kind, detail, outcome, undo_sql) VALUES ($1, $2, $3, $4) RETURNING action_id::text AS id',
    [a.kind, JSON.stringify(a.detail), a.outcome, a.undoSql]);
  return r.rows[0]!.id;
}

/** Settles the outcome of an action recorded before it was made. */
export async function setActionOutcome(db: Queryable, actionId: string, outcome: string): Promise<void> {
  await db.query('UPDATE adaptive_load.actions SET outcome = $2 WHERE action_id = $1::bigint', [actionId, outcome]);
}
