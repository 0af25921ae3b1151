import { MIN_MOVE_GAIN_SHARE, MOVE_COPY_BYTES_PER_MS, MOVE_COST_MARGIN, MOVE_PAYBACK_WINDOWS } from './policy.js';

/**
 * Whether a planned shard move is worth its copy: Citus's plan balances each colocation group by
 * the strategy's costs; this keeps, in plan order, only the moves whose gain on the whole
 * cluster's predicted load beats the bytes they copy (policy.ts). Pure: the numbers are read
 * beforehand (rebalance.ts), so a dry run and a real run decide alike.
 *
 * Gain of a move: how much load above the nodes' fair shares (by capacity) it removes, on node
 * loads that already include the moves kept before it; the dropped ones are not simulated, so a
 * move that only made sense after a dropped one is dropped too. Before any window with load was
 * recorded, the shares are the prior's and only the least gain applies (no load to weigh a copy by).
 */
export interface MoveCandidate {
  readonly shardId: string;
  readonly from: string;
  readonly to: string;
}

export interface ClusterLoad {
  /** Predicted share of all load of each planned shard's whole shard group (its colocated shards). */
  readonly groupShare: ReadonlyMap<string, number>;
  /** Bytes of each planned shard's whole shard group. */
  readonly groupBytes: ReadonlyMap<string, number>;
  /** Predicted share of all load per node, before any move. */
  readonly nodeShare: ReadonlyMap<string, number>;
  /** Relative capacity per node (0: takes no shards). */
  readonly capacity: ReadonlyMap<string, number>;
  /** Execution time per window of all shard statements, recently (ms); 0 without a window with load. */
  readonly windowMs: number;
}

export interface MoveVerdict<M extends MoveCandidate> {
  readonly move: M;
  readonly keep: boolean;
  /** Load above fair shares removed, as a share of all load (negative: the move adds some). */
  readonly gainShare: number;
  readonly gainMs: number;
  readonly costMs: number;
  readonly reason: string;
}

/** Load above the nodes' fair shares, as a share of all load. */
export function excessLoad(nodeShare: ReadonlyMap<string, number>, capacity: ReadonlyMap<string, number>): number {
  const total = [...nodeShare.values()].reduce((a, b) => a + b, 0);
  const capTotal = [...capacity.values()].reduce((a, b) => a + b, 0);
  if (!(capTotal > 0)) return 0;
  let excess = 0;
  for (const node of new Set([...nodeShare.keys(), ...capacity.keys()])) {
    excess += Math.max(0, (nodeShare.get(node) ?? 0) - total * (capacity.get(node) ?? 0) / capTotal);
  }
  return excess;
}

export function judgeMoves<M extends MoveCandidate>(moves: readonly M[], load: ClusterLoad): MoveVerdict<M>[] {
  const nodes = new Map(load.nodeShare);
  const out: MoveVerdict<M>[] = [];
  for (const move of moves) {
    const share = load.groupShare.get(move.shardId) ?? 0;
    const before = excessLoad(nodes, load.capacity);
    const after = new Map(nodes);
    after.set(move.from, (after.get(move.from) ?? 0) - share);
    after.set(move.to, (after.get(move.to) ?? 0) + share);
    const gainShare = before - excessLoad(after, load.capacity);
    const gainMs = gainShare * load.windowMs * MOVE_PAYBACK_WINDOWS;
    const costMs = (load.groupBytes.get(move.shardId) ?? 0) / MOVE_COPY_BYTES_PER_MS;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    let reason: string;
    let keep = false;
    if (gainShare < MIN_MOVE_GAIN_SHARE) reason = `it would remove ${pct(gainShare)} of the load above fair shares, less than ${pct(MIN_MOVE_GAIN_SHARE)}`;
    else if (!(load.windowMs > 0)) {
      // No load measured yet (a new cluster, or only noise so far): the prediction is the prior
      // (profile or sizes), and balancing it is what a DBA asking for a rebalance wants, as
      // Citus's by_disk_size would; there is no load yet to weigh a copy against.
      keep = true;
      reason = `no load measured yet: removes ${pct(gainShare)} of the prior's load above fair shares`;
    } else if (gainMs < MOVE_COST_MARGIN * costMs) {
      reason = `its gain (${gainMs.toFixed(0)} ms over ${MOVE_PAYBACK_WINDOWS} windows) does not beat ${MOVE_COST_MARGIN}x its copy (${costMs.toFixed(0)} ms)`;
    } else {
      keep = true;
      reason = `removes ${pct(gainShare)} of the load above fair shares (${gainMs.toFixed(0)} ms over ${MOVE_PAYBACK_WINDOWS} windows) for a copy of about ${costMs.toFixed(0)} ms`;
    }
    if (keep) for (const [node, v] of after) nodes.set(node, v);
    out.push({ move, keep, gainShare, gainMs, costMs, reason });
  }
  return out;
}
