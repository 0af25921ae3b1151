import { parse } from 'libpg-query';
import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { toDatabaseError } from '../errors.js';

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
  readonly shards: ShardLoad[];
  /** Nodes that could not be read this time (recorded, retried next window). */
  readonly unreachable: { node: string; error: string }[];
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
  queryid: string;
  query: string;
  calls: number;
  total: number;
}

/** Relations a statement reads or writes, by PostgreSQL's own parser. */
async function relationsOf(query: string, cache: Map<string, string[]>): Promise<string[]> {
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
 * so the next snapshot takes deltas; a counter that went down (reset) counts from zero.
 */
export async function takeLoadSnapshot(coordinator: pg.Client, conn: ConnectionConfig): Promise<LoadSnapshot> {
  const to = new Date();
  const prev = await coordinator.query<{ t: Date | null }>('SELECT max(taken_at) AS t FROM adaptive_load.stat_snapshots');
  const from = prev.rows[0]?.t ?? to;
  const shards = await shardLocations(coordinator);
  const byRelname = new Map<string, ShardLocation[]>();
  for (const s of shards) byRelname.set(`${s.node}/${s.shardRelname}`, [...(byRelname.get(`${s.node}/${s.shardRelname}`) ?? []), s]);
  const nodes = [...new Set(shards.map((s) => s.node))];
  const loads = new Map<string, ShardLoad>();
  const unreachable: { node: string; error: string }[] = [];
  const parsed = new Map<string, string[]>();
  for (const node of nodes) {
    const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(node)), application_name: 'citus-adaptive-load monitor' });
    client.on('error', () => {});
    let rows: StatRow[];
    try {
      await client.connect();
      rows = (await client.query<StatRow>(
        `SELECT queryid::text, query, calls::int AS calls, total_exec_time AS total FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL`)).rows;
    } catch (err) {
      unreachable.push({ node, error: toDatabaseError(err, node).message });
      continue;
    } finally {
      await client.end().catch(() => {});
    }
    const before = await coordinator.query<{ queryid: string; calls: string; total_ms: number }>(
      'SELECT queryid::text, calls::text, total_ms FROM adaptive_load.stat_snapshots WHERE node = $1', [node]);
    const old = new Map(before.rows.map((r) => [r.queryid, r]));
    for (const r of rows) {
      const o = old.get(r.queryid);
      const calls = o && Number(o.calls) <= r.calls ? r.calls - Number(o.calls) : r.calls;
      const total = o && o.total_ms <= r.total ? r.total - o.total_ms : r.total;
      if (calls === 0) continue;
      const targets = (await relationsOf(r.query, parsed)).flatMap((rel) => byRelname.get(`${node}/${rel}`) ?? []);
      // A statement touching several shards splits its cost among them.
      for (const s of targets) {
        const cur = loads.get(s.shardId) ?? { shardId: s.shardId, table: s.table, node: s.node, calls: 0, totalMs: 0 };
        loads.set(s.shardId, { ...cur, calls: cur.calls + calls / targets.length, totalMs: cur.totalMs + total / targets.length });
      }
    }
    await coordinator.query('DELETE FROM adaptive_load.stat_snapshots WHERE node = $1', [node]);
    if (rows.length) {
      await coordinator.query(
        `INSERT INTO adaptive_load.stat_snapshots (node, queryid, calls, total_ms, taken_at)
         SELECT $1, q::bigint, c, t, $5 FROM unnest($2::text[], $3::bigint[], $4::float8[]) AS u(q, c, t)`,
        [node, rows.map((r) => r.queryid), rows.map((r) => r.calls), rows.map((r) => r.total), to]);
    }
  }
  // Every shard appears, with zero load when nothing touched it.
  const all = shards.map((s) => loads.get(s.shardId) ?? { shardId: s.shardId, table: s.table, node: s.node, calls: 0, totalMs: 0 });
  return { from, to, shards: all, unreachable };
}
