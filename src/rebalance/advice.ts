import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';
import { isSingleTenantShard, nodeIdOf } from '../catalog/catalog.js';
import type { NodeObservation } from '../workload/node-observation.js';
import {
  CACHE_ADVICE_MIN_TUPLES_PER_SECOND, CACHE_HIT_LOW, CONNECTIONS_USED, CORE_UTILIZATION, CPU_BUSY, DISK_BUSY, HOT_FACTOR,
  MAX_SUGGESTED_CAPACITY, SHARD_HOTSPOT_FRACTION, TARGET_UTILIZATION, TENANT_ISOLATION_MIN_SHARE,
} from './policy.js';
import { STRATEGY } from './rebalance.js';
import type { ConnectionConfig } from '../connect/config.js';
import { findShardTenants, hottestOf, tenantTrackingOn, type FindTenantsOptions, type ShardTenants } from './hot-tenant.js';
import { loadWeightedSplitPoint } from './shard-split.js';

/**
 * The one place that decides what is hot and what a DBA is advised to do about it. The monitor
 * calls `assess` once per window and stores the advice with the window; the report shows what
 * was stored. The rules are pure functions of the window's numbers (testable without a
 * database); `gatherShardFacts` reads the few catalog facts they need beforehand.
 */

export interface Hotspot {
  readonly kind: 'shard' | 'node';
  readonly id: string;
  readonly predictedShare: number;
  readonly reason: string;
}

export interface Advice {
  readonly kind: 'isolate-tenant' | 'split-shard' | 'tenant-tracking' | 'node-capacity' | 'scale-up' | 'add-node' | 'connections' | 'memory' | 'rebalance';
  /** The distributed table it is about, when it is about one. */
  readonly table?: string;
  readonly detail: string;
  /** SQL a DBA can run to act on it. */
  readonly sql?: string;
}

/** A shard and its predicted share of the next window's load. */
export interface ShardOutlook {
  readonly shardId: string;
  readonly table: string;
  readonly node: string;
  readonly predictedShare: number;
}

/** Catalog facts about a shard predicted to overload its node. */
export interface ShardFacts {
  readonly nodeId: number | undefined;
  /** It holds one tenant already: isolation cannot split it further. */
  readonly singleTenant: boolean;
  /** The tenant drawing most of its queries (or rows), from the best evidence found (hot-tenant.ts). */
  readonly hottestTenant: { tenant: string; share: number } | undefined;
  /** Its tenants and their weights, where any source knew them. */
  readonly tenants?: ShardTenants;
  /** citus.stat_tenants_track is 'all' already (never advise turning it on then). */
  readonly trackingOn?: boolean;
}

export interface AdviceInput {
  /** Nodes holding shards, sorted. */
  readonly nodes: readonly string[];
  readonly shards: readonly ShardOutlook[];
  /** Live metrics per node (absent for a node not read this window). */
  readonly live: ReadonlyMap<string, NodeObservation>;
  /** Facts for the overloading shards (see overloadingShards). */
  readonly facts: ReadonlyMap<string, ShardFacts>;
  /** What the monitor itself does this cycle: that is recorded as an action, not advised. */
  readonly acting?: { readonly isolating: ReadonlySet<string>; readonly rebalancing: boolean };
}

export interface Assessment {
  /** Predicted share of the next window's load per node, in `nodes` order. */
  readonly nodeNext: number[];
  /** Each node's fair share of the load, by its capacity (1 where not measured). */
  readonly fairShare: number[];
  readonly hotspots: Hotspot[];
  readonly advice: Advice[];
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/** Shares of non-negative weights (uniform when all are zero). */
function normalize(values: readonly number[]): number[] {
  const total = values.reduce((a, b) => a + b, 0);
  return values.map((v) => (total > 0 ? v / total : 1 / values.length));
}

/**
 * Shards predicted to take more than a node's even share of the load (1 / number of nodes): they
 * stay hot wherever they are placed, so moving shards cannot fix them; isolating their hottest
 * tenant, or a node with more capacity, can.
 */
export function overloadingShards(shards: readonly ShardOutlook[], nodeCount: number): ShardOutlook[] {
  const even = 1 / Math.max(1, nodeCount);
  return shards.filter((s) => s.predictedShare > even);
}

/** Hotspots and advice of one window. */
export function assess(input: AdviceInput): Assessment {
  const { nodes, shards, live } = input;
  const nodeNext = nodes.map((n) => shards.reduce((a, s) => a + (s.node === n ? s.predictedShare : 0), 0));
  // A node's fair share follows its capacity (a DBA's figure or its host's cores, less the load no shard explains).
  const capacity = nodes.map((n) => live.get(n)?.capacity ?? 1);
  const fairShare = normalize(capacity);
  const even = 1 / Math.max(1, nodes.length);
  const shardFair = Math.min(...fairShare);
  const hotspots: Hotspot[] = [
    ...shards.filter((s) => s.predictedShare > shardFair * SHARD_HOTSPOT_FRACTION).map((s) => ({
      kind: 'shard' as const, id: s.shardId, predictedShare: s.predictedShare,
      reason: `shard ${s.shardId} of ${s.table} is predicted to take ${pct(s.predictedShare)} of the load, `
        + `more than ${pct(SHARD_HOTSPOT_FRACTION)} of the smallest fair node share (${pct(shardFair)})`,
    })),
    ...nodes.flatMap((n, i) => (nodeNext[i]! > fairShare[i]! * HOT_FACTOR ? [{
      kind: 'node' as const, id: n, predictedShare: nodeNext[i]!,
      reason: `node ${n} is predicted to take ${pct(nodeNext[i]!)} of the load against a fair ${pct(fairShare[i]!)}`
        + (Math.abs(fairShare[i]! - even) > 0.005 ? ` (its capacity ${capacity[i]!.toFixed(2)}: ${capacityReason(live.get(n))})` : ''),
    }] : [])),
    ...liveHotspots(nodes, live, nodeNext),
  ];
  const advice = [
    ...shardAdvice(overloadingShards(shards, nodes.length), input.facts, even, input.acting?.isolating),
    ...(input.acting?.rebalancing ? [] : rebalanceAdvice(nodes, shards, fairShare)),
    ...liveAdvice(nodes, live, nodeNext, fairShare),
  ];
  return { nodeNext, fairShare, hotspots, advice };
}

/**
 * What a DBA can do about a shard that stays hot wherever it goes: isolate its hottest tenant
 * (unless it holds one tenant, or the monitor isolates it now), and record more capacity for its
 * node so the rebalancer places less beside it.
 */
function shardAdvice(overloading: readonly ShardOutlook[], facts: ReadonlyMap<string, ShardFacts>, even: number,
  isolating: ReadonlySet<string> | undefined): Advice[] {
  const advice: Advice[] = [];
  for (const s of overloading) {
    const f = facts.get(s.shardId);
    const top = f?.hottestTenant;
    const single = f?.singleTenant ?? false;
    const split = f?.tenants && top && top.share < TENANT_ISOLATION_MIN_SHARE ? loadWeightedSplitPoint(f.tenants) : undefined;
    const head = `shard ${s.shardId} of ${s.table} is predicted to take ${pct(s.predictedShare)} of the load, more than a whole node's fair ${pct(even)}: no placement balances it.`;
    if (!single && !isolating?.has(s.shardId)) {
      // Every isolation advice names its tenant; without one, say how to find it (never advise tracking that is on).
      if (top && !split) {
        advice.push({
          kind: 'isolate-tenant',
          table: s.table,
          detail: `${head} Isolate tenant ${top.tenant} into its own shard (${pct(top.share)} of the shard${f?.tenants ? `'s ${f.tenants.source === 'citus_stat_tenants' ? 'queries' : 'rows'}, found by ${f.tenants.source}` : ''}) `
            + 'with every table of its group and move it to the least loaded node, or give its node more capacity.',
          sql: `SELECT isolate_tenant_to_new_shard(${quoteLiteral(s.table)}, ${quoteLiteral(top.tenant)}, 'CASCADE', shard_transfer_mode => 'block_writes')`,
        });
      } else if (split) {
        advice.push({
          kind: 'split-shard',
          table: s.table,
          detail: `${head} Its load is spread over ${f!.tenants!.tenants.length} tenants (the heaviest, ${top!.tenant}, at ${pct(top!.share)}): split it at hash ${split.point} `
            + `(${pct(split.lowerShare)} of its load below), then rebalance by predicted load (citus-adaptive-load rebalance) to place the halves.`,
          ...(f?.nodeId !== undefined ? { sql: `SELECT citus_split_shard_by_split_points(${Number(s.shardId)}, ARRAY[${quoteLiteral(String(split.point))}], `
            + `ARRAY[${f.nodeId}, ${f.nodeId}], shard_transfer_mode => 'block_writes')` } : {}),
        });
      } else if (!f?.trackingOn) {
        advice.push({
          kind: 'tenant-tracking',
          table: s.table,
          detail: `${head} Its tenants could not be told apart (no profile heavy hitter in its range, no sample): turn on Citus's tenant statistics `
            + "so the next window counts queries per tenant (citus-adaptive-load tune --apply does it, with undo).",
          sql: "ALTER SYSTEM SET citus.stat_tenants_track = 'all'; SELECT pg_reload_conf();",
        });
      }
    }
    if (f?.nodeId !== undefined) {
      const capacity = suggestedCapacity(s.predictedShare, even).toFixed(2);
      advice.push({
        kind: 'node-capacity',
        table: s.table,
        detail: (single ? `shard ${s.shardId} of ${s.table} holds a single tenant predicted to take ${pct(s.predictedShare)} of the load: only capacity helps. ` : '')
          + `If ${s.node} has (or gets) about ${capacity}x the resources of the others, record it so the rebalancer places less beside the hot shard`,
        sql: `INSERT INTO adaptive_load.node_capacity VALUES (${f.nodeId}, ${capacity}) ON CONFLICT (node_id) DO UPDATE SET capacity = EXCLUDED.capacity`,
      });
    }
  }
  return advice;
}

/**
 * The capacity to record for the node of a shard predicted at `share` against an even `fair`:
 * its share over fair, at least HOT_FACTOR (less would not make the node count as hot) and at
 * most MAX_SUGGESTED_CAPACITY (beyond it, scaling up or adding nodes is the answer).
 */
export function suggestedCapacity(share: number, fair: number): number {
  return Math.min(MAX_SUGGESTED_CAPACITY, Math.max(HOT_FACTOR, share / fair));
}

/**
 * A table whose predicted load on some node passes that node's fair part of the table's load by
 * HOT_FACTOR: rebalancing it by predicted load (the adaptive_load strategy) evens it out.
 */
function rebalanceAdvice(nodes: readonly string[], shards: readonly ShardOutlook[], fairShare: readonly number[]): Advice[] {
  if (nodes.length < 2) return [];
  const tables = [...new Set(shards.map((s) => s.table))].sort();
  return tables.flatMap((t) => {
    const mine = shards.filter((s) => s.table === t);
    const total = mine.reduce((a, s) => a + s.predictedShare, 0);
    if (total <= 0 || mine.length < 2) return [];
    const skew = Math.max(...nodes.map((n, i) => mine.reduce((a, s) => a + (s.node === n ? s.predictedShare : 0), 0) / (total * fairShare[i]!)));
    if (!(skew > HOT_FACTOR)) return [];
    return [{
      kind: 'rebalance' as const,
      table: t,
      detail: `${t}: the busiest node is predicted to take ${skew.toFixed(2)}x its fair part of the table's load; rebalance by predicted load`,
      sql: `SELECT rebalance_table_shards(${quoteLiteral(t)}, rebalance_strategy => ${quoteLiteral(STRATEGY)}, shard_transfer_mode => 'block_writes')`,
    }];
  });
}

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
export function liveHotspots(nodes: readonly string[], live: ReadonlyMap<string, NodeObservation>, nodeNext: readonly number[]): Hotspot[] {
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
export function liveAdvice(nodes: readonly string[], live: ReadonlyMap<string, NodeObservation>, nodeNext: readonly number[], fairShare: readonly number[]): Advice[] {
  const advice: Advice[] = [];
  nodes.forEach((n, i) => {
    const o = live.get(n);
    const p = nodeNext[i]!;
    const fair = fairShare[i]!;
    if (p > fair * HOT_FACTOR) {
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
    if (o && o.cacheHitRatio !== null && o.cacheHitRatio < CACHE_HIT_LOW && o.tuplesReadPerSecond > CACHE_ADVICE_MIN_TUPLES_PER_SECOND) {
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
    const add = Math.max(1, Math.ceil(nodes.length * mean / TARGET_UTILIZATION - nodes.length));
    advice.push({
      kind: 'add-node',
      detail: `every worker spent more than ${pct(CORE_UTILIZATION)} of its cores executing statements (mean ${pct(mean)}): `
        + `add ${add} worker${add > 1 ? 's' : ''} (citus_add_node) and run citus-adaptive-load rebalance to bring it to about ${pct(mean * nodes.length / (nodes.length + add))}`,
    });
  }
  return advice;
}

/**
 * Reads what the rules need to know about the overloading shards: their node's id, whether they
 * hold a single tenant, and (where citus.stat_tenants_track = 'all') their hottest tenant. Reads
 * only; the monitor runs it before it opens the window's transaction (citus_stat_tenants asks
 * every worker).
 */
export async function gatherShardFacts(db: Queryable, overloading: readonly ShardOutlook[], conn?: ConnectionConfig,
  options: FindTenantsOptions = {}): Promise<Map<string, ShardFacts>> {
  const facts = new Map<string, ShardFacts>();
  if (overloading.length === 0) return facts;
  const trackingOn = await tenantTrackingOn(db).catch(() => false);
  for (const s of overloading) {
    const singleTenant = await isSingleTenantShard(db, s.shardId);
    // Without worker connections only Citus's own statistics can say (the sample reads the worker).
    const tenants = singleTenant ? undefined : await findShardTenants(db, conn, s, options);
    const top = hottestOf(tenants);
    facts.set(s.shardId, {
      nodeId: await nodeIdOf(db, s.node),
      singleTenant,
      hottestTenant: top ? { tenant: top.tenant, share: top.share } : undefined,
      ...(tenants ? { tenants } : {}),
      trackingOn,
    });
  }
  return facts;
}
