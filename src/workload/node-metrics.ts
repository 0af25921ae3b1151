import type { Queryable } from '../connect/queryable.js';

/**
 * Live metrics of a node, read on the node itself:
 *
 * - `pg_stat_database` (all databases of the instance, since they share its CPU): cumulative
 *   time spent executing statements (`active_time`, PostgreSQL 14+), transactions, blocks read
 *   and hit, tuples read and written. Deltas between windows give the node's real busy time,
 *   including work pg_stat_statements cannot attribute to a shard (COPY, maintenance, other
 *   databases, statements evicted from its table).
 * - `pg_stat_activity`: client backends now active, waiting on locks or I/O, and connections in
 *   use against `max_connections`.
 * - The host, where the monitoring role may read server files (superuser or
 *   `pg_read_server_files`): CPU from `/proc/stat`, memory from `/proc/meminfo`, disk busy time
 *   from `/proc/diskstats`. Without that right (or off Linux) these stay unknown and nothing
 *   that depends on them is guessed.
 */
export interface NodeCounters {
  readonly takenAt: number;
  readonly activeMs: number;
  readonly xacts: number;
  readonly blocksRead: number;
  readonly blocksHit: number;
  readonly tuplesRead: number;
  readonly tuplesWritten: number;
  readonly activeBackends: number;
  readonly waitingBackends: number;
  readonly connections: number;
  readonly maxConnections: number;
  readonly host?: HostCounters;
}

export interface HostCounters {
  readonly cores: number;
  /** Cumulative jiffies, all CPUs. */
  readonly cpuBusy: number;
  readonly cpuTotal: number;
  readonly memTotalBytes: number;
  readonly memAvailableBytes: number;
  /** Cumulative milliseconds each whole disk spent doing I/O, by device name. */
  readonly diskBusyMs: Record<string, number>;
}

/** What a node did in a window (deltas) and how it stands at its end. */
export interface NodeMetrics {
  readonly node: string;
  readonly seconds: number;
  /** Statement execution time on the node in the window (pg_stat_database.active_time). */
  readonly busyMs: number;
  readonly xactsPerSecond: number;
  /** Share of block reads served from shared buffers (null when nothing was read). */
  readonly cacheHitRatio: number | null;
  readonly tuplesReadPerSecond: number;
  readonly tuplesWrittenPerSecond: number;
  readonly activeBackends: number;
  readonly waitingBackends: number;
  /** Connections in use over max_connections. */
  readonly connectionsUsed: number;
  readonly host: { cores: number; cpuBusy: number | null; memoryUsed: number; diskBusy: number | null } | null;
}

export async function readNodeCounters(db: Queryable): Promise<NodeCounters> {
  const stats = await db.query<{ active: number | null; xacts: string; br: string; bh: string; tr: string; tw: string }>(
    `SELECT sum(active_time) AS active, sum(xact_commit + xact_rollback)::text AS xacts, sum(blks_read)::text AS br,
            sum(blks_hit)::text AS bh, sum(tup_returned + tup_fetched)::text AS tr,
            sum(tup_inserted + tup_updated + tup_deleted)::text AS tw
       FROM pg_stat_database WHERE datname IS NOT NULL`);
  const activity = await db.query<{ active: number; waiting: number; total: number; max: number }>(
    `SELECT count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid())::int AS active,
            count(*) FILTER (WHERE state = 'active' AND wait_event_type IN ('Lock', 'LWLock', 'IO', 'BufferPin'))::int AS waiting,
            count(*)::int AS total, current_setting('max_connections')::int AS max
       FROM pg_stat_activity WHERE backend_type = 'client backend'`);
  const s = stats.rows[0]!;
  const a = activity.rows[0]!;
  return {
    takenAt: Date.now(),
    activeMs: Number(s.active ?? 0),
    xacts: Number(s.xacts ?? 0),
    blocksRead: Number(s.br ?? 0),
    blocksHit: Number(s.bh ?? 0),
    tuplesRead: Number(s.tr ?? 0),
    tuplesWritten: Number(s.tw ?? 0),
    activeBackends: a.active,
    waitingBackends: a.waiting,
    connections: a.total,
    maxConnections: a.max,
    ...(await readHostCounters(db).then((host) => (host ? { host } : {}))),
  };
}

/** Host counters from /proc through pg_read_file, or undefined where the role may not read them. */
export async function readHostCounters(db: Queryable): Promise<HostCounters | undefined> {
  const allowed = await db.query<{ ok: boolean }>(
    "SELECT pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS ok");
  if (!allowed.rows[0]?.ok) return undefined;
  try {
    const files = await db.query<{ stat: string; mem: string; disk: string }>(
      "SELECT pg_read_file('/proc/stat') AS stat, pg_read_file('/proc/meminfo') AS mem, pg_read_file('/proc/diskstats', 0, 1048576, true) AS disk");
    const f = files.rows[0]!;
    return parseProc(f.stat, f.mem, f.disk ?? '');
  } catch {
    return undefined; // not Linux, or /proc not mounted
  }
}

/** Parses /proc/stat, /proc/meminfo and /proc/diskstats (exported for the unit tests). */
export function parseProc(stat: string, meminfo: string, diskstats: string): HostCounters | undefined {
  const cpu = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!cpu) return undefined;
  const ticks = cpu.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const total = ticks.slice(0, 8).reduce((x, y) => x + (y || 0), 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const cores = stat.split('\n').filter((l) => /^cpu\d+ /.test(l)).length || 1;
  const mem = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? NaN) * 1024;
  const diskBusyMs: Record<string, number> = {};
  for (const line of diskstats.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Whole devices only: partitions, loop and ram devices would double count or mislead.
    if (f.length < 14 || /^(loop|ram|zram|dm-)/.test(f[2]!) || /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$|^nvme\d+n\d+p\d+$|^mmcblk\d+p\d+$/.test(f[2]!)) continue;
    diskBusyMs[f[2]!] = Number(f[12]);
  }
  const memTotalBytes = mem('MemTotal');
  if (!Number.isFinite(memTotalBytes)) return undefined;
  return { cores, cpuBusy: total - idle, cpuTotal: total, memTotalBytes, memAvailableBytes: mem('MemAvailable'), diskBusyMs };
}

/** A cumulative counter's growth since `old`; a counter that went down (stats reset, restart) counts from zero. */
export function counterDelta(cur: number, old: number | undefined): number {
  return old !== undefined && old <= cur ? cur - old : cur;
}

/**
 * The window's metrics from the counters at its start and end. A counter that went down (stats
 * reset, restart) counts from zero.
 */
export function nodeMetrics(node: string, before: NodeCounters | undefined, now: NodeCounters): NodeMetrics {
  const seconds = before ? Math.max(0.001, (now.takenAt - before.takenAt) / 1000) : 0;
  const per = (cur: number, old: number | undefined) => (seconds > 0 ? counterDelta(cur, old) / seconds : 0);
  const read = counterDelta(now.blocksRead, before?.blocksRead);
  const hit = counterDelta(now.blocksHit, before?.blocksHit);
  let host: NodeMetrics['host'] = null;
  if (now.host) {
    const h = now.host;
    const b = before?.host;
    const cpuTotal = b ? h.cpuTotal - b.cpuTotal : 0;
    const disks = Object.keys(h.diskBusyMs).map((d) => counterDelta(h.diskBusyMs[d]!, b?.diskBusyMs[d]));
    host = {
      cores: h.cores,
      cpuBusy: b && cpuTotal > 0 ? (h.cpuBusy - b.cpuBusy) / cpuTotal : null,
      memoryUsed: Number.isFinite(h.memAvailableBytes) ? 1 - h.memAvailableBytes / h.memTotalBytes : NaN,
      diskBusy: b && disks.length ? Math.min(1, Math.max(...disks) / (seconds * 1000)) : null,
    };
  }
  return {
    node,
    seconds,
    busyMs: before ? counterDelta(now.activeMs, before.activeMs) : 0,
    xactsPerSecond: per(now.xacts, before?.xacts),
    cacheHitRatio: before && read + hit > 0 ? hit / (read + hit) : null,
    tuplesReadPerSecond: per(now.tuplesRead, before?.tuplesRead),
    tuplesWrittenPerSecond: per(now.tuplesWritten, before?.tuplesWritten),
    activeBackends: now.activeBackends,
    waitingBackends: now.waitingBackends,
    connectionsUsed: now.connections / Math.max(1, now.maxConnections),
    host,
  };
}

/**
 * How much of its base capacity (a DBA's figure, else its host's cores, else 1) each node has left
 * for shard load, as a factor (1 = all of it): user statements on a node that name none of its
 * shards (other tables, other databases) take room that stays taken whatever shards move, so the
 * rebalancer should not fill it; with these factors it evens the nodes' total load, not just their
 * shard load. Background below 5% of all load is noise and changes nothing.
 */
export function loadFactors(nodes: readonly { node: string; base: number; shardMs: number; backgroundMs: number | null }[]):
  Map<string, { factor: number; backgroundShare: number }> {
  const out = new Map<string, { factor: number; backgroundShare: number }>();
  const shardTotal = nodes.reduce((a, n) => a + n.shardMs, 0);
  const background = nodes.map((n) => n.backgroundMs ?? 0);
  const total = shardTotal + background.reduce((a, b) => a + b, 0);
  const baseTotal = nodes.reduce((a, n) => a + n.base, 0) || 1;
  const meaningful = total > 0 && (total - shardTotal) / total >= 0.05;
  // A node's fair part of all load, less its background; at least a tenth of its fair part.
  const room = nodes.map((n, i) => Math.max(0.1 * n.base / baseTotal * total, n.base / baseTotal * total - background[i]!));
  const roomTotal = room.reduce((a, b) => a + b, 0) || 1;
  nodes.forEach((n, i) => out.set(n.node, {
    factor: meaningful ? (room[i]! / roomTotal) / (n.base / baseTotal) : 1,
    backgroundShare: total > 0 ? background[i]! / total : 0,
  }));
  return out;
}
