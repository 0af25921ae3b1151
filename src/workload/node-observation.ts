import type { Queryable } from '../connect/queryable.js';
import type { NodeCountersRow, NodeMetricsRow, NodeObservedRow } from '../store/metrics-store.js';
import { loadFactors, nodeMetrics, type NodeCounters, type NodeMetrics } from './node-metrics.js';
import type { LoadSnapshot } from './load-snapshot.js';

/** A node's live metrics in a window and what the allocator takes from them. */
export interface NodeObservation extends NodeMetrics {
  /** Its user statements that named no shard, as a share of all load; null before the first full window. */
  readonly backgroundShare: number | null;
  /** Capacity relative to the mean of the nodes' hosts (cores), when every host is readable. */
  readonly baseCapacity: number | null;
  /** Factor of the node's capacity left for shard load (stored; the rebalance strategy reads it). */
  readonly loadFactor: number;
  /** What the rebalancer uses: base (a DBA's figure first) times the load factor. */
  readonly capacity: number;
}

/** Weight of the newest window in the stored load factor: background load changes slowly. */
const FACTOR_SMOOTHING = 0.5;

/** What observeNodes found, and the rows the monitor stores with the window for it. */
export interface NodesObserved {
  readonly observations: Map<string, NodeObservation>;
  readonly nodeMetrics: NodeMetricsRow[];
  /** Only nodes with a complete window (counters at both ends): the others keep what they had. */
  readonly nodeObserved: NodeObservedRow[];
  readonly nodeCounters: NodeCountersRow[];
}

/**
 * Turns the snapshot's live counters into per-node metrics for the window, and each node's
 * observed capacity (host cores) and load factor (room left once the user statements that name
 * no shard are counted), which `adaptive_load.node_capacity()` gives the rebalancer once the
 * monitor stores them. Reads only.
 */
export async function observeNodes(db: Queryable, snapshot: LoadSnapshot): Promise<NodesObserved> {
  const stored = new Map((await db.query<{ node: string; counters: NodeCounters }>('SELECT node, counters FROM adaptive_load.node_counters'))
    .rows.map((r) => [r.node, r.counters]));
  const ids = new Map((await db.query<{ node: string; nodeid: number; dba: number | null; factor: number | null }>(
    `SELECT n.nodename || ':' || n.nodeport AS node, n.nodeid, c.capacity AS dba, o.load_factor AS factor
       FROM pg_dist_node n LEFT JOIN adaptive_load.node_capacity c ON c.node_id = n.nodeid
       LEFT JOIN adaptive_load.node_observed o ON o.node_id = n.nodeid`)).rows.map((r) => [r.node, r]));

  const nodes = [...snapshot.counters.keys()].sort();
  const metrics = nodes.map((n) => nodeMetrics(n, stored.get(n), snapshot.counters.get(n)!));
  const shardMs = nodes.map((n) => snapshot.shards.reduce((a, s) => a + (s.node === n ? s.totalMs : 0), 0));
  const cores = metrics.map((m) => m.host?.cores);
  const meanCores = cores.every((c) => c !== undefined) && cores.length ? cores.reduce((a, c) => a + c!, 0) / cores.length : undefined;
  const base = nodes.map((_, i) => (meanCores ? cores[i]! / meanCores : null));
  const effectiveBase = nodes.map((n, i) => ids.get(n)?.dba ?? base[i] ?? 1);
  const complete = metrics.map((m, i) => stored.has(nodes[i]!) && m.seconds > 0);
  const factors = loadFactors(nodes.map((n, i) => ({ node: n, base: effectiveBase[i]!, shardMs: shardMs[i]!, backgroundMs: complete[i] ? snapshot.backgroundMs.get(nodes[i]!) ?? 0 : null })));

  const out = new Map<string, NodeObservation>();
  const metricRows: NodeMetricsRow[] = [];
  const nodeObserved: NodeObservedRow[] = [];
  const nodeCounters: NodeCountersRow[] = [];
  for (const [i, n] of nodes.entries()) {
    const m = metrics[i]!;
    const row = ids.get(n);
    const observed = factors.get(n)!;
    const previousFactor = row?.factor ?? 1;
    const loadFactor = complete[i] ? FACTOR_SMOOTHING * observed.factor + (1 - FACTOR_SMOOTHING) * previousFactor : previousFactor;
    out.set(n, { ...m, backgroundShare: complete[i] ? observed.backgroundShare : null, baseCapacity: base[i]!, loadFactor, capacity: effectiveBase[i]! * loadFactor });
    metricRows.push({
      node: n, busyMs: m.busyMs, shardMs: shardMs[i]!, backgroundMs: snapshot.backgroundMs.get(n) ?? 0, xactsPerSecond: m.xactsPerSecond,
      cacheHitRatio: m.cacheHitRatio, tuplesReadPerSecond: m.tuplesReadPerSecond, tuplesWrittenPerSecond: m.tuplesWrittenPerSecond,
      activeBackends: m.activeBackends, waitingBackends: m.waitingBackends, connectionsUsed: m.connectionsUsed,
      hostCores: m.host?.cores ?? null, hostCpuBusy: m.host?.cpuBusy ?? null,
      hostMemoryUsed: m.host && Number.isFinite(m.host.memoryUsed) ? m.host.memoryUsed : null, hostDiskBusy: m.host?.diskBusy ?? null, loadFactor,
    });
    if (row && complete[i]) {
      nodeObserved.push({
        nodeId: row.nodeid, baseCapacity: base[i] ?? null, loadFactor,
        detail: { busyMs: m.busyMs, shardMs: shardMs[i], backgroundMs: snapshot.backgroundMs.get(n) ?? 0, backgroundShare: observed.backgroundShare, cores: cores[i] ?? null },
      });
    }
    nodeCounters.push({ node: n, counters: snapshot.counters.get(n) });
  }
  return { observations: out, nodeMetrics: metricRows, nodeObserved, nodeCounters };
}
