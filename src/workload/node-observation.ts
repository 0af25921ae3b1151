import type pg from 'pg';
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

/**
 * Turns the snapshot's live counters into per-node metrics for the window, stores them, and
 * updates each node's observed capacity (host cores) and load factor (room left once the user
 * statements that name no shard are counted), which `adaptive_load.node_capacity()` gives the
 * rebalancer.
 */
export async function observeNodes(db: pg.Client, snapshot: LoadSnapshot, windowId: number): Promise<Map<string, NodeObservation>> {
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
  for (const [i, n] of nodes.entries()) {
    const m = metrics[i]!;
    const row = ids.get(n);
    const observed = factors.get(n)!;
    const previousFactor = row?.factor ?? 1;
    const loadFactor = complete[i] ? FACTOR_SMOOTHING * observed.factor + (1 - FACTOR_SMOOTHING) * previousFactor : previousFactor;
    out.set(n, { ...m, backgroundShare: complete[i] ? observed.backgroundShare : null, baseCapacity: base[i]!, loadFactor, capacity: effectiveBase[i]! * loadFactor });
    await db.query(
      `INSERT INTO adaptive_load.node_metrics VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      [windowId, n, m.busyMs, shardMs[i], snapshot.backgroundMs.get(n) ?? 0, m.xactsPerSecond, m.cacheHitRatio, m.tuplesReadPerSecond, m.tuplesWrittenPerSecond,
        m.activeBackends, m.waitingBackends, m.connectionsUsed, m.host?.cores ?? null, m.host?.cpuBusy ?? null,
        m.host && Number.isFinite(m.host.memoryUsed) ? m.host.memoryUsed : null, m.host?.diskBusy ?? null, loadFactor]);
    if (row && complete[i]) {
      await db.query(
        `INSERT INTO adaptive_load.node_observed (node_id, base_capacity, load_factor, detail) VALUES ($1, $2, $3, $4)
         ON CONFLICT (node_id) DO UPDATE SET base_capacity = EXCLUDED.base_capacity, load_factor = EXCLUDED.load_factor,
           observed_at = now(), detail = EXCLUDED.detail`,
        [row.nodeid, base[i], loadFactor, JSON.stringify({ windowId, busyMs: m.busyMs, shardMs: shardMs[i], backgroundMs: snapshot.backgroundMs.get(n) ?? 0, backgroundShare: observed.backgroundShare, cores: cores[i] ?? null })]);
    }
    await db.query(
      `INSERT INTO adaptive_load.node_counters (node, counters, taken_at) VALUES ($1, $2, now())
       ON CONFLICT (node) DO UPDATE SET counters = EXCLUDED.counters, taken_at = EXCLUDED.taken_at`,
      [n, JSON.stringify(snapshot.counters.get(n))]);
  }
  return out;
}
