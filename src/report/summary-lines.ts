import type { ClusterSummary } from './cluster-summary.js';
import { pct, times } from './format.js';

/**
 * The cluster summary as plain sentences, shared by the text and Markdown renderers (HTML lays
 * the same facts out as a table).
 */
export function summaryHeadline(s: ClusterSummary): string {
  return `${s.nodes.length} worker node${s.nodes.length === 1 ? '' : 's'}; busiest/mean load ${times(s.busiestOverMean.actual)} in the latest window`
    + `, ${times(s.busiestOverMean.predicted)} predicted next; prediction error WAPE ${s.wape === null ? '-' : s.wape.toFixed(3)}`
    + `${s.maxShareError === null ? '' : `, largest node share error ${pointsOf(s.maxShareError)}`}`
    + `${s.mape === null ? '' : ` (MAPE ${s.mape.toFixed(3)})`}; ${s.actionsTaken} action${s.actionsTaken === 1 ? '' : 's'} taken, `
    + `${s.pending} recommendation${s.pending === 1 ? '' : 's'} pending.`;
}

/** A share error in points of share: 0.043 is "4.3 points". */
export function pointsOf(x: number): string {
  return `${(x * 100).toFixed(1)} points`;
}

export function hotShardLine(h: ClusterSummary['hottestShards'][number]): string {
  return `shard ${h.shardId} of ${h.table} on ${h.node}: ${pct(h.predictedShare)} of predicted load`
    + (h.tenants.length ? `; tenants ${h.tenants.join(', ')}` : '; no tenant known');
}
