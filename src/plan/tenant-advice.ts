/**
 * Advice for a load into a table that is already distributed: the tool does not change its
 * layout unprompted, but when the input's sample shows a tenant above the isolation threshold
 * that is not alone in a shard yet, it says so with the SQL that isolates it (CASCADE, so the
 * colocation group keeps matching ranges) and moves its new shard group to the node with the
 * least predicted load (Citus leaves it on the source node). `--isolate-tenants` runs that SQL
 * before the load takes its shard locks.
 */
import type pg from 'pg';
import { quoteLiteral } from '../connect/sql.js';
import type { ColumnStats } from './column-stats.js';
import { hashesOf, tenantsToIsolate } from './planner.js';
import type { ProfileAdvice } from './sharding-profile.js';
import { transferModeFor, type TransferMode } from './apply.js';

export interface PlacedShard {
  readonly shardId: string;
  readonly min: number;
  readonly max: number;
  readonly node: string;
  /** Bytes the shard holds now. */
  readonly bytes: number;
}

/**
 * The isolation advice, a pure function: `incomingBytes` is the input's size, spread over the
 * shards by the sample's distribution-column hashes (`shareOf`), on top of what they hold now.
 */
export function isolationAdvice(args: {
  readonly table: string;
  readonly column: ColumnStats;
  readonly type: { typeName: string; maxChars?: number };
  readonly shards: readonly PlacedShard[];
  readonly nodes: readonly string[];
  readonly incomingBytes: number;
  readonly shareOf: (shard: PlacedShard) => number;
  readonly mode: TransferMode;
}): ProfileAdvice[] {
  const advice: ProfileAdvice[] = [];
  const load = new Map(args.nodes.map((n) => [n, 0]));
  for (const s of args.shards) load.set(s.node, (load.get(s.node) ?? 0) + s.bytes + args.shareOf(s) * args.incomingBytes);
  for (const t of tenantsToIsolate(args.column, args.type, args.shards)) {
    const source = args.shards.find((s) => s.min <= t.hash && t.hash <= s.max);
    if (!source) continue;
    const tenantBytes = t.share * args.incomingBytes;
    // Counting the tenant where it is now, the least loaded node is where it should go.
    const target = [...load].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]![0];
    const sql = [`SELECT isolate_tenant_to_new_shard(${quoteLiteral(args.table)}, ${quoteLiteral(t.value)}, cascade_option => 'CASCADE', shard_transfer_mode => '${args.mode}');`];
    if (target !== source.node) {
      const [fromHost, fromPort] = split(source.node);
      const [toHost, toPort] = split(target);
      sql.push(`SELECT citus_move_shard_placement(get_shard_id_for_distribution_column(${quoteLiteral(args.table)}, ${quoteLiteral(t.value)}), `
        + `${quoteLiteral(fromHost)}, ${fromPort}, ${quoteLiteral(toHost)}, ${toPort}, '${args.mode}');`);
      load.set(source.node, load.get(source.node)! - tenantBytes);
      load.set(target, load.get(target)! + tenantBytes);
    }
    advice.push({
      kind: 'isolate-tenant', tenant: t.value,
      detail: `tenant ${t.value} holds ${(t.share * 100).toFixed(1)}% of the sampled rows of ${args.table} (shard ${source.shardId} on ${source.node}): `
        + `isolate it in a shard of its own${target !== source.node ? ` and move that shard group to ${target}, the node with the least predicted load` : ''}`,
      sql: sql.join('\n'),
      statements: sql,
    });
  }
  return advice;
}

function split(label: string): [string, number] {
  const i = label.lastIndexOf(':');
  return [label.slice(0, i), Number(label.slice(i + 1))];
}

/** Reads the table's shards, sizes and the transfer mode, and derives the advice from the sample. */
export async function readIsolationAdvice(db: pg.Client, table: string, column: ColumnStats, type: { typeName: string; maxChars?: number },
  sampleValues: readonly (string | null)[], incomingBytes: number): Promise<ProfileAdvice[]> {
  const shards = (await db.query<{ shardid: string; min: number; max: number; node: string; bytes: string }>(
    `SELECT s.shardid::text AS shardid, s.shardminvalue::int AS min, s.shardmaxvalue::int AS max, cs.nodename || ':' || cs.nodeport AS node,
            coalesce(cs.shard_size, 0)::text AS bytes
       FROM pg_dist_shard s JOIN citus_shards cs USING (shardid) WHERE s.logicalrelid = $1::regclass ORDER BY 2`, [table])).rows
    .map((r) => ({ shardId: r.shardid, min: r.min, max: r.max, node: r.node, bytes: Number(r.bytes) }));
  const nodes = (await db.query<{ node: string }>(
    "SELECT nodename || ':' || nodeport AS node FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND shouldhaveshards ORDER BY nodeid")).rows.map((r) => r.node);
  const hashes = hashesOf(sampleValues, type);
  const shareOf = (s: PlacedShard) => (hashes.length ? hashes.filter((h) => h >= s.min && h <= s.max).length / hashes.length : 0);
  const mode = (await transferModeFor(db, table, true)).mode;
  // The name as psql users write it (quote_ident quotes only where needed), for the SQL shown.
  const readable = (await db.query<{ name: string }>(
    "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
    [table])).rows[0]!.name;
  return isolationAdvice({ table: readable, column, type, shards, nodes, incomingBytes, shareOf, mode });
}

/** The advice whose tenant is not alone in a shard yet (advice stored earlier may have been acted on). */
export async function pendingAdvice(db: pg.Client, table: string, advice: readonly ProfileAdvice[]): Promise<ProfileAdvice[]> {
  const out: ProfileAdvice[] = [];
  for (const a of advice) {
    const r = await db.query<{ alone: boolean }>(
      'SELECT shardminvalue = shardmaxvalue AS alone FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column($1::regclass, $2::text)',
      [table, a.tenant]).catch(() => ({ rows: [{ alone: true }] }));
    if (!r.rows[0]?.alone) out.push(a);
  }
  return out;
}
