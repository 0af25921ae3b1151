import type { ShardInfo } from '../catalog/catalog.js';
import { ClusterStateError } from '../errors.js';

/**
 * Finds the shard whose inclusive [shardminvalue, shardmaxvalue] range holds a hash, by binary
 * search over the real ranges from pg_dist_shard. Ranges are uniform only until a split or a
 * tenant isolation, so nothing here assumes they are.
 */
export class ShardRouter {
  private readonly mins: Int32Array;
  private readonly maxs: Int32Array;

  constructor(readonly shards: readonly ShardInfo[]) {
    const sorted = [...shards].sort((a, b) => a.min! - b.min!);
    this.mins = Int32Array.from(sorted.map((s) => s.min!));
    this.maxs = Int32Array.from(sorted.map((s) => s.max!));
    this.order = sorted.map((s) => shards.indexOf(s));
    checkCoverage(sorted);
  }

  /** Index into `shards` for the sorted position, so callers keep their own order. */
  private readonly order: number[];

  /** Index (into the constructor's `shards`) of the shard holding hash h. */
  shardIndexFor(h: number): number {
    const mins = this.mins;
    let lo = 0;
    let hi = mins.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (mins[mid]! <= h) lo = mid;
      else hi = mid - 1;
    }
    if (h > this.maxs[lo]! || h < mins[lo]!) {
      throw new ClusterStateError(`no shard covers hash value ${h}; pg_dist_shard ranges have a gap`);
    }
    return this.order[lo]!;
  }
}

/** Hash-distributed shards must tile the whole int32 range without gaps or overlaps. */
function checkCoverage(sorted: readonly ShardInfo[]): void {
  if (sorted.length === 0) throw new ClusterStateError('the table has no shards');
  let expected = -2147483648;
  for (const s of sorted) {
    if (s.min === undefined || s.max === undefined) throw new ClusterStateError(`shard ${s.shardId} has no hash range`);
    if (s.min !== expected) {
      throw new ClusterStateError(`shard ranges are not contiguous at shard ${s.shardId} (starts at ${s.min}, expected ${expected})`);
    }
    expected = s.max + 1;
  }
  if (expected !== 2147483648) throw new ClusterStateError(`shard ranges end at ${expected - 1}, not 2147483647`);
}
