import type { Queryable } from '../connect/queryable.js';

/**
 * Per-node measurements of a monitoring window: the cumulative counters kept to take the next
 * window's deltas (pg_stat_statements per node, pg_stat_database and host per node), the window's
 * live metrics, and what was observed of each node's capacity. Written only inside the window's
 * transaction (see window-store.ts recordWindow).
 */

/** One pg_stat_statements entry of a node, cumulative. */
export interface StatCounterRow {
  readonly dbid: string;
  readonly queryid: string;
  readonly calls: number;
  readonly totalMs: number;
}

/** The counters read from one node at the window's end: they replace the node's previous ones. */
export interface NodeStatCounters {
  readonly node: string;
  readonly rows: readonly StatCounterRow[];
}

/** A node's live metrics in one window (adaptive_load.node_metrics). */
export interface NodeMetricsRow {
  readonly node: string;
  readonly busyMs: number;
  readonly shardMs: number;
  readonly backgroundMs: number;
  readonly xactsPerSecond: number;
  readonly cacheHitRatio: number | null;
  readonly tuplesReadPerSecond: number;
  readonly tuplesWrittenPerSecond: number;
  readonly activeBackends: number;
  readonly waitingBackends: number;
  readonly connectionsUsed: number;
  readonly hostCores: number | null;
  readonly hostCpuBusy: number | null;
  readonly hostMemoryUsed: number | null;
  readonly hostDiskBusy: number | null;
  readonly loadFactor: number;
}

/** What the monitor observed of a node's capacity (adaptive_load.node_observed; node_capacity() reads it). */
export interface NodeObservedRow {
  readonly nodeId: number;
  readonly baseCapacity: number | null;
  readonly loadFactor: number;
  /** The figures behind it, stored as jsonb with the window id. */
  readonly detail: Record<string, unknown>;
}

/** A node's cumulative pg_stat_database/host counters (adaptive_load.node_counters). */
export interface NodeCountersRow {
  readonly node: string;
  readonly counters: unknown;
}

export async function replaceStatCounters(db: Queryable, c: NodeStatCounters, takenAt: Date): Promise<void> {
  await db.query('DELETE FROM adaptive_load.stat_snapshots WHERE node = $1', [c.node]);
  if (c.rows.length === 0) return;
  await db.query(
    `INSERT INTO adaptive_load.stat_snapshots (node, dbid, queryid, calls, total_ms, taken_at)
     SELECT $1, d::oid, q::bigint, c, t, $6 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::float8[]) AS u(d, q, c, t)`,
    [c.node, c.rows.map((r) => r.dbid), c.rows.map((r) => r.queryid), c.rows.map((r) => r.calls), c.rows.map((r) => r.totalMs), takenAt]);
}

export async function insertNodeMetrics(db: Queryable, windowId: number, rows: readonly NodeMetricsRow[]): Promise<void> {
  for (const m of rows) {
    await db.query(
      `INSERT INTO adaptive_load.node_metrics (window_id, node, busy_ms, shard_ms, background_ms, xacts_per_second, cache_hit_ratio,
              tuples_read_per_second, tuples_written_per_second, active_backends, waiting_backends, connections_used,
              host_cores, host_cpu_busy, host_memory_used, host_disk_busy, load_factor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      [windowId, m.node, m.busyMs, m.shardMs, m.backgroundMs, m.xactsPerSecond, m.cacheHitRatio, m.tuplesReadPerSecond,
        m.tuplesWrittenPerSecond, m.activeBackends, m.waitingBackends, m.connectionsUsed, m.hostCores, m.hostCpuBusy,
        m.hostMemoryUsed, m.hostDiskBusy, m.loadFactor]);
  }
}

export async function upsertNodeObserved(db: Queryable, windowId: number, rows: readonly NodeObservedRow[]): Promise<void> {
  for (const o of rows) {
    await db.query(
      `INSERT INTO adaptive_load.node_observed (node_id, base_capacity, load_factor, detail) VALUES ($1, $2, $3, $4)
       ON CONFLICT (node_id) DO UPDATE SET base_capacity = EXCLUDED.base_capacity, load_factor = EXCLUDED.load_factor,
         observed_at = now(), detail = EXCLUDED.detail`,
      [o.nodeId, o.baseCapacity, o.loadFactor, JSON.stringify({ windowId, ...o.detail })]);
  }
}

export async function upsertNodeCounters(db: Queryable, rows: readonly NodeCountersRow[]): Promise<void> {
  for (const c of rows) {
    await db.query(
      `INSERT INTO adaptive_load.node_counters (node, counters, taken_at) VALUES ($1, $2, now())
       ON CONFLICT (node) DO UPDATE SET counters = EXCLUDED.counters, taken_at = EXCLUDED.taken_at`,
      [c.node, JSON.stringify(c.counters)]);
  }
}
