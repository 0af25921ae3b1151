import type { Queryable } from '../connect/queryable.js';
import { recordAction } from '../store/action-store.js';

/**
 * Did the last isolation or split help? Each such action records the busiest/mean node load of
 * the window it acted in; the first active window after it records a 'check' action with the
 * busiest/mean it measured, so the audit trail says whether the imbalance fell.
 */
export async function checkActionOutcomes(db: Queryable, windowId: number, imbalanceNow: number): Promise<{ kind: string; detail: string }[]> {
  const pending = await db.query<{ action_id: string; kind: string; before: number; what: string | null }>(
    `SELECT a.action_id::text AS action_id, a.kind, (a.detail->>'imbalanceBefore')::float8 AS before,
            coalesce(a.detail->>'tenant', a.detail->>'splitPoint') AS what
       FROM adaptive_load.actions a
      WHERE a.kind IN ('isolate', 'split') AND a.detail ? 'imbalanceBefore' AND (a.detail->>'windowId')::bigint < $1
        AND NOT EXISTS (SELECT 1 FROM adaptive_load.actions c WHERE c.kind = 'check' AND c.detail->>'actionId' = a.action_id::text)
      ORDER BY a.action_id`, [windowId]);
  const out: { kind: string; detail: string }[] = [];
  for (const a of pending.rows) {
    const fell = imbalanceNow < a.before;
    const detail = `after ${a.kind === 'isolate' ? `isolating tenant ${a.what}` : `splitting at ${a.what}`}: busiest/mean node load `
      + `${a.before.toFixed(2)} before, ${imbalanceNow.toFixed(2)} in the next window (${fell ? 'fell' : 'did not fall'})`;
    await recordAction(db, { kind: 'check', detail: { actionId: a.action_id, windowId, before: a.before, after: imbalanceNow, fell, text: detail }, outcome: fell ? 'improved' : 'not improved', undoSql: null });
    out.push({ kind: 'check', detail });
  }
  return out;
}
