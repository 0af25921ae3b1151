import type { Advice, Hotspot } from '../monitor/monitor.js';
import type { NodeObservation } from '../workload/node-observation.js';

/** Thresholds a DBA would call busy; conservative so that advice is rare and worth reading. */
const CPU_BUSY = 0.85;
const DISK_BUSY = 0.8;
const CONNECTIONS_USED = 0.8;
const CACHE_HIT_LOW = 0.9;
/** Statement time per core above which a node counts as busy for add-a-node advice. */
const CORE_UTILIZATION = 0.7;

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/** Why a node's capacity differs from the others', in words. */
export function capacityReason(o: NodeObservation | undefined): string {
  if (!o) return 'not measured';
  const parts: string[] = [];
  if (o.baseCapacity !== null && Math.abs(o.baseCapacity - 1) > 0.01) parts.push(`${o.host?.cores} cores, ${o.baseCapacity.toFixed(2)}x the mean`);
  if (o.backgroundShare !== null && Math.abs(o.loadFactor - 1) > 0.01) {
    parts.push(`${pct(o.backgroundShare)} of all load is its user statements on no shard (other tables or databases), leaving ${o.loadFactor.toFixed(2)} of it for shards`);
  }
  return parts.join('; ') || 'a DBA-set capacity';
}

/** Statement time per core in the window (1 = every core busy executing statements). */
function utilization(o: NodeObservation): number | null {
  return o.seconds > 0 && o.host ? o.busyMs / (o.seconds * 1000 * o.host.cores) : null;
}

/** Nodes whose live metrics say they are hot now, whatever the shard prediction says. */
export function liveHotspots(nodes: readonly string[], live: Map<string, NodeObservation>, nodeNext: readonly number[]): Hotspot[] {
  const out: Hotspot[] = [];
  nodes.forEach((n, i) => {
    const o = live.get(n);
    if (!o) return;
    const reasons: string[] = [];
    if (o.host?.cpuBusy != null && o.host.cpuBusy > CPU_BUSY) reasons.push(`its host's CPU was ${pct(o.host.cpuBusy)} busy over the window (${o.host.cores} cores)`);
    if (o.host?.diskBusy != null && o.host.diskBusy > DISK_BUSY) reasons.push(`its busiest disk was ${pct(o.host.diskBusy)} busy`);
    if (o.waitingBackends >= 2 && o.waitingBackends * 2 >= o.activeBackends) reasons.push(`${o.waitingBackends} of ${o.activeBackends} active backends were waiting on locks or I/O`);
    if (o.connectionsUsed > CONNECTIONS_USED) reasons.push(`${pct(o.connectionsUsed)} of max_connections in use`);
    if (reasons.length) out.push({ kind: 'node', id: n, predictedShare: nodeNext[i]!, reason: `node ${n}: ${reasons.join('; ')}` });
  });
  return out;
}

/**
 * Advice from the prediction and the live metrics together: which node to scale up and by how
 * much, when to add a node, connection and memory pressure, each with the numbers behind it.
 */
export function liveAdvice(nodes: readonly string[], live: Map<string, NodeObservation>, nodeNext: readonly number[], fairShare: readonly number[]): Advice[] {
  const advice: Advice[] = [];
  nodes.forEach((n, i) => {
    const o = live.get(n);
    const p = nodeNext[i]!;
    const fair = fairShare[i]!;
    if (p > fair * 1.25) {
      const factor = p / fair;
      const cores = o?.host?.cores;
      const now = [
        o?.host?.cpuBusy != null ? `host CPU ${pct(o.host.cpuBusy)} busy` : undefined,
        o?.host && Number.isFinite(o.host.memoryUsed) ? `memory ${pct(o.host.memoryUsed)} used` : undefined,
      ].filter(Boolean).join(', ');
      advice.push({
        kind: 'scale-up',
        detail: `${n} is predicted to take ${pct(p)} of the load against a fair ${pct(fair)}: scale it up to about ${factor.toFixed(1)}x its CPU`
          + (cores ? ` (${cores} → ${Math.ceil(cores * factor)} cores)` : '') + (now ? `; now ${now}` : '')
          + ', or add a worker (citus_add_node) and run citus-adaptive-load rebalance',
      });
    }
    if (o && o.connectionsUsed > CONNECTIONS_USED) {
      advice.push({
        kind: 'connections',
        detail: `${n} has ${pct(o.connectionsUsed)} of max_connections in use: put a pooler (PgBouncer) in front of the coordinator, `
          + 'lower citus.max_adaptive_executor_pool_size on the coordinator, or raise max_connections on the worker',
      });
    }
    if (o && o.cacheHitRatio !== null && o.cacheHitRatio < CACHE_HIT_LOW && o.tuplesReadPerSecond > 1000) {
      advice.push({
        kind: 'memory',
        detail: `${n} served only ${pct(o.cacheHitRatio)} of block reads from shared buffers: its working set does not fit; `
          + `give it more memory (and shared_buffers)${o.host && Number.isFinite(o.host.memoryUsed) ? `, host memory is ${pct(o.host.memoryUsed)} used` : ''}`,
      });
    }
  });
  const used = nodes.map((n) => live.get(n)).map((o) => (o ? utilization(o) : null));
  if (used.length > 0 && used.every((u): u is number => u !== null && u > CORE_UTILIZATION)) {
    const mean = (used as number[]).reduce((a, u) => a + u, 0) / used.length;
    const add = Math.max(1, Math.ceil(nodes.length * mean / 0.6 - nodes.length));
    advice.push({
      kind: 'add-node',
      detail: `every worker spent more than ${pct(CORE_UTILIZATION)} of its cores executing statements (mean ${pct(mean)}): `
        + `add ${add} worker${add > 1 ? 's' : ''} (citus_add_node) and run citus-adaptive-load rebalance to bring it to about ${pct(mean * nodes.length / (nodes.length + add))}`,
    });
  }
  return advice;
}
