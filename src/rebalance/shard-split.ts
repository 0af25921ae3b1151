import type { ShardTenants } from './hot-tenant.js';

/**
 * Where to split a hot shard that holds many tenants, none dominant: at the hash where the
 * shard's load (tenant weights, plus the weight of tenants not listed spread evenly over the
 * range) is nearest to half on each side. Pure; the monitor splits with
 * citus_split_shard_by_split_points and places the halves by predicted load (hot-shards.ts).
 */

/** Share of the shard's weight whose hash lies in [lo, hi] (unlisted weight counted by range width). */
export function weightShare(t: ShardTenants, lo: number, hi: number): number {
  if (hi < lo) return 0;
  const listed = t.tenants.reduce((a, x) => a + x.weight, 0);
  const residual = Math.max(0, t.total - listed);
  const inside = t.tenants.reduce((a, x) => a + (x.hash !== undefined && x.hash >= lo && x.hash <= hi ? x.weight : 0), 0);
  return (inside + residual * ((hi - lo + 1) / (t.max - t.min + 1))) / t.total;
}

/**
 * The split point (upper bound of the lower half, min <= point < max) that divides the weight
 * most evenly, and the lower half's share; undefined when no point separates two tenants.
 */
export function loadWeightedSplitPoint(t: ShardTenants): { point: number; lowerShare: number } | undefined {
  if (t.max <= t.min) return undefined;
  const hashes = [...new Set(t.tenants.flatMap((x) => (x.hash !== undefined && x.hash >= t.min && x.hash < t.max ? [x.hash] : [])))].sort((a, b) => a - b);
  let best: { point: number; lowerShare: number } | undefined;
  for (const point of hashes) {
    const lowerShare = weightShare(t, t.min, point);
    if (!best || Math.abs(lowerShare - 0.5) < Math.abs(best.lowerShare - 0.5)) best = { point, lowerShare };
  }
  return best;
}
