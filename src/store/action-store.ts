import type { Queryable } from '../connect/queryable.js';

/** What the tool did to the cluster, as adaptive_load.actions records it (the DBA's audit trail). */
export interface ActionRecord {
  /** 'move', 'isolate', 'setting'. */
  readonly kind: string;
  /** Stored as jsonb: the facts of the action, for the report and for a DBA's queries. */
  readonly detail: unknown;
  readonly outcome: string;
  /** SQL that undoes it, or null where nothing can (Citus cannot merge isolated shards back). */
  readonly undoSql: string | null;
}

/**
 * Records one action after it took effect. Actions are not part of a window's transaction:
 * shard moves and ALTER SYSTEM cannot run inside a transaction block, so each is recorded by
 * itself once it has happened.
 */
export async function recordAction(db: Queryable, a: ActionRecord): Promise<void> {
  await db.query('INSERT INTO adaptive_load.actions (kind, detail, outcome, undo_sql) VALUES ($1, $2, $3, $4)',
    [a.kind, JSON.stringify(a.detail), a.outcome, a.undoSql]);
}
