/**
 * Where a colocated table's shards will be, as the tool can actually make it: a table that joins
 * an existing colocation group gets the group's shard ranges and placements (pg_dist_placement),
 * which the tool does not move, except that each tenant it isolates (isolate_tenant_to_new_shard
 * with CASCADE, which leaves the new shard group on the source node) is moved to the node with the
 * least predicted load, and then shard groups leave that node while that lowers the busiest
 * node's load (at most `maxMoves` of them). The prediction the reasons quote is this placement's,
 * never a fresh one the cluster will not get.
 */
import type { PlannedShard } from './sharding-profile.js';
import type { GroupShard } from './relationships.js';

export interface GroupPlacement {
  readonly shards: PlannedShard[];
  /** Shard groups the tool moves, by planned shard index: isolated tenants first. */
  readonly moves: { shardIndex: number; from: string; to: string; tenant?: string }[];
}

/** The group's node for a planned range: the group shard that contains it (isolation keeps the node). */
function nodeOf(group: readonly GroupShard[], min: number, max: number): string | undefined {
  return group.find((g) => g.min <= min && max <= g.max)?.node;
}

export function nodeLoads(shards: readonly PlannedShard[], nodes: readonly string[]): Map<string, number> {
  const loads = new Map(nodes.map((n) => [n, 0]));
  for (const s of shards) if (s.node !== null) loads.set(s.node, (loads.get(s.node) ?? 0) + s.load);
  return loads;
}

/** Busiest node's predicted load over the mean node's (1 = balanced). */
export function busiestOverMean(shards: readonly PlannedShard[], nodes: readonly string[]): number {
  const loads = [...nodeLoads(shards, nodes).values()];
  const total = loads.reduce((a, b) => a + b, 0);
  return total > 0 ? Math.max(...loads) / (total / loads.length) : 1;
}

const byLoad = (loads: Map<string, number>) => [...loads].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));

export function placeInGroup(planned: readonly PlannedShard[], group: readonly GroupShard[], nodes: readonly string[], maxMoves: number): GroupPlacement {
  const all = [...new Set([...nodes, ...group.map((g) => g.node)])];
  let shards = planned.map((s) => ({ ...s, node: nodeOf(group, s.hashMin, s.hashMax) ?? null }));
  const moves: GroupPlacement['moves'] = [];
  const move = (index: number, to: string, tenant?: string) => {
    const from = shards[index]!.node!;
    shards = shards.map((s, i) => (i === index ? { ...s, node: to } : s));
    moves.push({ shardIndex: shards[index]!.shardIndex, from, to, ...(tenant !== undefined ? { tenant } : {}) });
  };
  // Each isolated tenant goes to the node with the least load counting it where it is now: off
  // the node it makes busiest.
  const tenants = shards.map((s, i) => ({ s, i })).filter((x) => x.s.tenant !== undefined && x.s.node !== null)
    .sort((a, b) => b.s.load - a.s.load);
  if (tenants.length === 0) return { shards, moves };
  for (const { i } of tenants) {
    const to = byLoad(nodeLoads(shards, all))[0]![0];
    if (to !== shards[i]!.node) move(i, to, shards[i]!.tenant);
  }
  // Then shard groups leave the busiest node while a move lowers the busiest load.
  while (moves.length < maxMoves) {
    const order = byLoad(nodeLoads(shards, all));
    const [least, leastLoad] = order[0]!;
    const [busiest, busiestLoad] = order[order.length - 1]!;
    const gap = busiestLoad - leastLoad;
    // The largest shard whose move narrows the gap: it must weigh less than the gap itself.
    const candidate = shards.map((s, i) => ({ s, i }))
      .filter((x) => x.s.node === busiest && x.s.tenant === undefined && x.s.load > 0 && x.s.load < gap)
      .sort((a, b) => b.s.load - a.s.load)[0];
    if (!candidate) break;
    move(candidate.i, least);
  }
  return { shards, moves };
}
