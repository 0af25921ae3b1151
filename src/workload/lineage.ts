/**
 * Predictions for shards that did not exist when the model predicted: the pieces of a shard split
 * by a tenant isolation (or any split) inherit their parent's predicted share, so a rebalance in
 * the same cycle sees the whale's new shard as heavy as the tenant is, not as an empty shard (and
 * does not fill its node), and the next window has a prediction to score them by.
 *
 * A piece's share of its parent: the isolated tenant's piece (a one-value range) takes the
 * tenant's share of the parent's load; the other pieces split the rest by the width of their hash
 * range. A shard that kept its id keeps its prediction.
 */
export interface ShardRange {
  readonly shardId: string;
  readonly table: string;
  readonly min: number;
  readonly max: number;
}

export interface Isolated {
  /** The tenant's hash value: the one-value range its shard now covers. */
  readonly hash: number;
  /** The tenant's share of its old shard's load (from citus_stat_tenants). */
  readonly share: number;
}

const width = (lo: number, hi: number) => Math.max(0, hi - lo + 1);

export function inheritPredictions(before: readonly ShardRange[], after: readonly ShardRange[], predicted: ReadonlyMap<string, number>,
  isolated: readonly Isolated[] = []): Map<string, number> {
  const out = new Map<string, number>();
  const existing = new Set(before.map((s) => s.shardId));
  for (const s of after) {
    if (existing.has(s.shardId)) {
      out.set(s.shardId, predicted.get(s.shardId) ?? 0);
      continue;
    }
    let share = 0;
    for (const parent of before) {
      if (parent.table !== s.table || parent.max < s.min || parent.min > s.max) continue;
      const p = predicted.get(parent.shardId) ?? 0;
      const tenant = isolated.find((t) => t.hash >= parent.min && t.hash <= parent.max);
      if (tenant && s.min === tenant.hash && s.max === tenant.hash) {
        share += p * tenant.share;
      } else {
        const overlap = width(Math.max(parent.min, s.min), Math.min(parent.max, s.max));
        const rest = width(parent.min, parent.max) - (tenant ? 1 : 0);
        share += rest > 0 ? p * (tenant ? 1 - tenant.share : 1) * overlap / rest : 0;
      }
    }
    out.set(s.shardId, share);
  }
  return out;
}
