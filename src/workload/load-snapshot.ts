import { parse } from 'libpg-query';
import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { toDatabaseError } from '../errors.js';
import type { NodeStatCounters } from '../store/metrics-store.js';
import { counterDelta, readNodeCounters, type NodeCounters } from './node-metrics.js';

/** A shard of a distributed table and where it lives. */
export interface ShardLocation {
  readonly shardId: string;
  readonly table: string;
  /** Relation name of the shard table on its worker (`orders_102008`). */
  readonly shardRelname: string;
  readonly node: string;
  readonly nodeId: number;
}

export interface ShardLoad {
  readonly shardId: string;
  readonly table: string;
  readonly node: string;
  readonly calls: number;
  readonly totalMs: number;
}

export interface LoadSnapshot {
  readonly from: Date;
  readonly to: Date;
  /**
   * No counters were stored before for some node that has them now (the first cycle, or a
   * worker added since): what it holds adds up everything since its statistics were last reset
   * (bulk loads, other workloads, an unknown span), not a window. They are the baseline the next
   * snapshot measures from; nothing in this window is load to learn from.
   */
  readonly baseline: boolean;
  readonly shards: ShardLoad[];
  /**
   * Per node, execution time of user statements that named none of its shards (other tables,
   * other databases): load that stays on the node whatever shards move.
   */
  readonly backgroundMs: Map<string, number>;
  /** Live counters of each node read (pg_stat_database, pg_stat_activity, host). */
  readonly counters: Map<string, NodeCounters>;
  /** Nodes that could not be read this time (recorded, retried next window). */
  readonly unreachable: { node: string; error: string }[];
  /**
   * The cumulative counters read from each reachable node, for the monitor to store with the
   * window (the next snapshot takes its deltas from them). Not stored here: if the cycle fails
   * before its window commits, the next one measures from the last committed counters.
   */
  readonly statCounters: NodeStatCounters[];
}

export async function shardLocations(db: Queryable): Promise<ShardLocation[]> {
  const r = await db.query<{ shardid: string; tbl: string; relname: string; node: string; nodeid: number }>(
    `SELECT s.shardid::text, s.logicalrelid::regclass::text AS tbl, (parse_ident(shard_name(s.logicalrelid, s.shardid)))[array_length(parse_ident(shard_name(s.logicalrelid, s.shardid)), 1)] AS relname,
            n.nodename || ':' || n.nodeport AS node, n.nodeid
       FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)
       JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
      WHERE p.partmethod = 'h' AND n.noderole = 'primary' AND n.isactive
      ORDER BY s.shardid`);
  return r.rows.map((x) => ({ shardId: x.shardid, table: x.tbl, shardRelname: x.relname, node: x.node, nodeId: x.nodeid }));
}

interface StatRow {
  dbid: string;
  here: boolean;
  queryid: string;
  query: string;
  calls: number;
  total: number;
}

/**
 * Statements that are not user work on the node: Citus's own (shard moves and copies, 2PC
 * bookkeeping, metadata sync) and catalog or statistics reads (this monitor's among them). They
 * are left out of the background load, or a shard move would count against the node it left.
 */
const INTERNAL_STATEMENT = /\b(worker_\w+|citus_\w+|master_\w+|assign_distributed_transaction_id|pg_catalog\.|pg_stat_\w+|pg_dist_\w+|pg_settings|pg_read_file|current_setting)\b|^\s*(BEGIN|COMMIT|ROLLBACK|PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED|SET|RESET|SHOW|SAVEPOINT|RELEASE)\b/i;

/** Relations a statement reads or writes, by PostgreSQL's own parser. */
export async function relationsOf(query: string, cache: Map<string, string[]>): Promise<string[]> {
  const hit = cache.get(query);
  if (hit) return hit;
  let names: string[] = [];
  try {
    const tree = await parse(query);
    names = [...collectRelnames(tree)];
  } catch {
    names = [];
  }
  cache.set(query, names);
  return names;
}

function* collectRelnames(node: unknown): Generator<string> {
  if (Array.isArray(node)) {
    for (const x of node) yield* collectRelnames(x);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if (typeof o.relname === 'string') yield o.relname;
  for (const v of Object.values(o)) yield* collectRelnames(v);
}

/**
 * Reads pg_stat_statements on every worker and attributes each statement's calls and time since
 * the previous snapshot to the shards it names (statements on workers name shard tables, which
 * is how actual load per shard becomes visible). Cumulative counters are kept on the coordinator
 * so the next snapshot takes deltas; a counter that went down (reset) counts from zero. Reads
 * only: the counters read are returned for the monitor to store with its window.
 */
export async function takeLoadSnapshot(coordinator: Queryable, conn: ConnectionConfig): Promise<LoadSnapshot> {
  const to = new Date();
  const prev = await coordinator.query<{ t: Date | null }>('SELECT max(taken_at) AS t FROM adaptive_load.stat_snapshots');
  const from = prev.rows[0]?.t ?? to;
  const shards = await shardLocations(coordinator);
  const byRelname = new Map<string, ShardLocation[]>();
  for (const s of shards) byRelname.set(`${s.node}/${s.shardRelname}`, [...(byRelname.get(`${s.node}/${s.shardRelname}`) ?? []), s]);
  const nodes = [...new Set(shards.map((s) => s.node))];
  const loads = new Map<string, ShardLoad>();
  const unreachable: { node: string; error: string }[] = [];
  const counters = new Map<string, NodeCounters>();
  const backgroundMs = new Map<string, number>();
  const parsed = new Map<string, string[]>();
  const statCounters: NodeStatCounters[] = [];
  let newNode = false;
  for (const node of nodes) {
    const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(node)), application_name: 'citus-adaptive-load monitor' });
    client.on('error', () => {});
    let rows: StatRow[];
    try {
      await client.connect();
      rows = (await client.query<StatRow>(
        // One row per statement and database: the same statement run by several roles is one load.
        `SELECT dbid::text, dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS here, queryid::text,
                min(query) AS query, sum(calls)::float8 AS calls, sum(total_exec_time) AS total
           FROM pg_stat_statements WHERE queryid IS NOT NULL GROUP BY dbid, queryid`)).rows;
      counters.set(node, await readNodeCounters(client));
    } catch (err) {
      unreachable.push({ node, error: toDatabaseError(err, node).message });
      continue;
    } finally {
      await client.end().catch(() => {});
    }
    const before = await coordinator.query<{ dbid: string; queryid: string; calls: string; total_ms: number }>(
      'SELECT dbid::text, queryid::text, calls::text, total_ms FROM adaptive_load.stat_snapshots WHERE node = $1', [node]);
    const old = new Map(before.rows.map((r) => [`${r.dbid}/${r.queryid}`, r]));
    if (before.rows.length === 0 && rows.length > 0) newNode = true;
    let background = 0;
    for (const r of rows) {
      const o = old.get(`${r.dbid}/${r.queryid}`);
      const calls = counterDelta(r.calls, o && Number(o.calls));
      const total = counterDelta(r.total, o?.total_ms);
      if (calls === 0) continue;
      const targets = r.here ? (await relationsOf(r.query, parsed)).flatMap((rel) => byRelname.get(`${node}/${rel}`) ?? []) : [];
      if (targets.length === 0 && !INTERNAL_STATEMENT.test(r.query)) background += total;
      // A statement touching several shards splits its cost among them.
      for (const s of targets) {
        const cur = loads.get(s.shardId) ?? { shardId: s.shardId, table: s.table, node: s.node, calls: 0, totalMs: 0 };
        loads.set(s.shardId, { ...cur, calls: cur.calls + calls / targets.length, totalMs: cur.totalMs + total / targets.length });
      }
    }
    backgroundMs.set(node, background);
    statCounters.push({ node, rows: rows.map((r) => ({ dbid: r.dbid, queryid: r.queryid, calls: r.calls, totalMs: r.total })) });
  }
  // Every shard appears, with zero load when nothing touched it.
  const all = shards.map((s) => loads.get(s.shardId) ?? { shardId: s.shardId, table: s.table, node: s.node, calls: 0, totalMs: 0 });
  return { from, to, baseline: prev.rows[0]?.t == null || newNode, shards: all, backgroundMs, counters, unreachable, statCounters };
}
