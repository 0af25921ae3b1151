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
 *
 * Fair shares are what a placement can reach: a shard group predicted above a node's fair share
 * (a whale tenant isolated as far as Citus can) cannot be split further, so its node's fair share
 * is that group alone, and the rest of the load is shared by the other nodes by capacity
 * (water-filling). Every other group on such a node is load above its fair share: its tenants'
 * queries queue behind the whale's. Moving one off is worth its copy however small its share (the
 * least gain does not apply; the copy must still pay), as long as it does not push its destination
 * past that destination's fair share.
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
  /** The largest shard group's predicted share on each node, before any move (none given: no group is indivisible). */
  readonly largestGroup?: ReadonlyMap<string, number>;
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

/**
 * Each node's fair share of the load: by capacity, except a node whose largest group alone is
 * above that, whose fair share is the group (it can do no better); the rest of the load is then
 * shared by the remaining nodes, by capacity, and so on until no such node is left.
 */
export function fairShares(nodeShare: ReadonlyMap<string, number>, capacity: ReadonlyMap<string, number>,
  largestGroup: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const nodes = [...new Set([...nodeShare.keys(), ...capacity.keys()])];
  let load = [...nodeShare.values()].reduce((a, b) => a + b, 0);
  const fair = new Map<string, number>();
  let open = nodes.filter((n) => (capacity.get(n) ?? 0) > 0);
  for (const n of nodes) if (!open.includes(n)) fair.set(n, 0);
  for (;;) {
    const capTotal = open.reduce((a, n) => a + capacity.get(n)!, 0);
    const whale = open.find((n) => (largestGroup.get(n) ?? 0) > load * capacity.get(n)! / capTotal);
    if (!whale || open.length === 1) {
      for (const n of open) fair.set(n, capTotal > 0 ? load * capacity.get(n)! / capTotal : 0);
      return fair;
    }
    fair.set(whale, largestGroup.get(whale)!);
    load -= largestGroup.get(whale)!;
    open = open.filter((n) => n !== whale);
  }
}

/** Load above the nodes' fair shares (fairShares), as a share of all load. */
export function excessLoad(nodeShare: ReadonlyMap<string, number>, capacity: ReadonlyMap<string, number>,
  largestGroup?: ReadonlyMap<string, number>): number {
  const capTotal = [...capacity.values()].reduce((a, b) => a + b, 0);
  if (!(capTotal > 0)) return 0;
  return excessOver(nodeShare, fairShares(nodeShare, capacity, largestGroup));
}

function excessOver(nodeShare: ReadonlyMap<string, number>, fair: ReadonlyMap<string, number>): number {
  let excess = 0;
  for (const [node, f] of fair) excess += Math.max(0, (nodeShare.get(node) ?? 0) - f);
  return excess;
}

export function judgeMoves<M extends MoveCandidate>(moves: readonly M[], load: ClusterLoad): MoveVerdict<M>[] {
  const nodes = new Map(load.nodeShare);
  const largest = new Map(load.largestGroup ?? []);
  const out: MoveVerdict<M>[] = [];
  for (const move of moves) {
    const share = load.groupShare.get(move.shardId) ?? 0;
    const fairBefore = fairShares(nodes, load.capacity, largest);
    const before = excessOver(nodes, fairBefore);
    const after = new Map(nodes);
    after.set(move.from, (after.get(move.from) ?? 0) - share);
    after.set(move.to, (after.get(move.to) ?? 0) + share);
    // The moved group leaves its node's largest behind only if it was not the largest (else: unknown, taken as none).
    const largestAfter = new Map(largest);
    if (share >= (largest.get(move.from) ?? 0)) largestAfter.delete(move.from);
    largestAfter.set(move.to, Math.max(largest.get(move.to) ?? 0, share));
    const gainShare = before - excessLoad(after, load.capacity, largestAfter);
    // Off a node an indivisible group saturates (its fair share is that group's), onto one that stays within its fair share.
    const fromLargest = largest.get(move.from) ?? 0;
    const dedicated = fromLargest > 0 && Math.abs((fairBefore.get(move.from) ?? -1) - fromLargest) < 1e-12;
    const offWhaleNode = dedicated && share < fromLargest && (after.get(move.to) ?? 0) <= (fairBefore.get(move.to) ?? 0) + 1e-9;
    const gainMs = gainShare * load.windowMs * MOVE_PAYBACK_WINDOWS;
    const costMs = (load.groupBytes.get(move.shardId) ?? 0) / MOVE_COPY_BYTES_PER_MS;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    let reason: string;
    let keep = false;
    if (gainShare <= 0 || (gainShare < MIN_MOVE_GAIN_SHARE && !offWhaleNode)) {
      reason = `it would remove ${pct(gainShare)} of the load above fair shares, less than ${pct(MIN_MOVE_GAIN_SHARE)}`;
    } else if (!(load.windowMs > 0)) {
      // No load measured yet (a new cluster, or only noise so far): the prediction is the prior
      // (profile or sizes), and balancing it is what a DBA asking for a rebalance wants, as
      // Citus's by_disk_size would; there is no load yet to weigh a copy against.
      keep = true;
      reason = `no load measured yet: removes ${pct(gainShare)} of the prior's load above fair shares`;
    } else if (gainMs < MOVE_COST_MARGIN * costMs) {
      reason = `its gain (${gainMs.toFixed(0)} ms over ${MOVE_PAYBACK_WINDOWS} windows) does not beat ${MOVE_COST_MARGIN}x its copy (${costMs.toFixed(0)} ms)`;
    } else {
      keep = true;
      reason = offWhaleNode
        ? `takes it off ${move.from}, where one shard group alone is predicted at ${pct(fromLargest)} of all load, above the node's `
          + `fair share: its tenants' queries no longer queue behind that group's (${pct(gainShare)} of the load, ${gainMs.toFixed(0)} ms over `
          + `${MOVE_PAYBACK_WINDOWS} windows, for a copy of about ${costMs.toFixed(0)} ms)`
        : `removes ${pct(gainShare)} of the load above fair shares (${gainMs.toFixed(0)} ms over ${MOVE_PAYBACK_WINDOWS} windows) for a copy of about ${costMs.toFixed(0)} ms`;
    }
    if (keep) {
      for (const [node, v] of after) nodes.set(node, v);
      largest.clear();
      for (const [node, v] of largestAfter) largest.set(node, v);
    }
    out.push({ move, keep, gainShare, gainMs, costMs, reason });
  }
  return out;
}
