import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { quoteIdent } from '../connect/sql.js';
import { readDistribution, readTable, type ColumnInfo, type ShardInfo } from '../catalog/catalog.js';
import { isHashableType, UNSURE, valueHasherFor } from '../routing/value-hasher.js';
import { SHARD_SAMPLE_ROWS, SHARD_SAMPLE_TIMEOUT_MS, SHARD_TENANTS_LISTED } from './policy.js';

/**
 * Who a hot shard's load comes from, from the best evidence there is, in this order:
 *
 * 1. `citus_stat_tenants` (query counts per tenant) when citus.stat_tenants_track = 'all';
 * 2. the stored sharding profiles' heavy hitters (tenants a plan found heavy in its sample: its
 *    `isolate` list and single-tenant planned shards), hashed with the project's own Citus
 *    hashing (routing/value-hasher.ts) into the shard's live range from pg_dist_shard;
 * 3. a bounded sample of the shard table on its worker: TABLESAMPLE SYSTEM, statement_timeout,
 *    the most frequent distribution values.
 *
 * Weights are query counts (1) or rows (2, 3): rows stand in for queries where Citus counts none.
 * Reads only.
 */

export type TenantSource = 'citus_stat_tenants' | 'profile' | 'sample';

export interface TenantWeight {
  /** The distribution value as text. */
  readonly value: string;
  /** Its 32-bit Citus hash (decides the shard), or undefined where only PostgreSQL could say. */
  readonly hash: number | undefined;
  readonly weight: number;
}

export interface ShardTenants {
  readonly shardId: string;
  readonly table: string;
  readonly source: TenantSource;
  /** Heaviest first. */
  readonly tenants: TenantWeight[];
  /** The shard's whole weight (tenants not listed included), > 0. */
  readonly total: number;
  /** The shard's inclusive hash range. */
  readonly min: number;
  readonly max: number;
}

export interface HotTenant {
  readonly tenant: string;
  /** Its share of the shard's queries (or rows, by source). */
  readonly share: number;
  readonly source: TenantSource;
}

export interface FindTenantsOptions {
  /** Sources to try, in order. Default all three. */
  readonly sources?: readonly TenantSource[];
}

/** The heaviest tenant of the shard and its share, from `found`. */
export function hottestOf(found: ShardTenants | undefined): HotTenant | undefined {
  const top = found?.tenants[0];
  return found && top ? { tenant: top.value, share: top.weight / found.total, source: found.source } : undefined;
}

/** True when citus.stat_tenants_track is 'all' on the coordinator (its counts come from every node). */
export async function tenantTrackingOn(db: Queryable): Promise<boolean> {
  const r = await db.query<{ v: string | null }>("SELECT current_setting('citus.stat_tenants_track', true) AS v");
  return r.rows[0]?.v === 'all';
}

interface ShardContext {
  readonly table: string;
  readonly column: ColumnInfo;
  readonly shard: ShardInfo & { min: number; max: number };
  readonly colocationId: number;
  readonly hash: (value: string) => Promise<number | undefined>;
}

async function context(db: Queryable, table: string, shardId: string): Promise<ShardContext | undefined> {
  const info = await readTable(db, table);
  const dist = await readDistribution(db, info, true);
  const shard = dist.shards.find((s) => s.shardId === shardId);
  const column = info.columns.find((c) => c.name === dist.column);
  if (dist.kind !== 'hash' || !shard || !column || shard.min === undefined || shard.max === undefined || dist.colocationId === undefined) return undefined;
  const hasher = isHashableType(column.typeName) && column.collationDeterministic && !column.isArray
    ? valueHasherFor({ typeName: column.typeName, ...(column.maxChars !== undefined ? { maxChars: column.maxChars } : {}) }) : undefined;
  const hash = async (value: string): Promise<number | undefined> => {
    const b = Buffer.from(value, 'utf8');
    const h = hasher ? hasher.hash(b, 0, b.length) : UNSURE;
    if (h !== UNSURE) return h;
    // The client cannot be sure of this spelling: PostgreSQL decides (the type name is format_type's, quoted by PostgreSQL).
    const r = await db.query<{ h: number }>(`SELECT worker_hash(CAST($1 AS ${column.displayType})) AS h`, [value]).catch(() => undefined);
    return r?.rows[0]?.h ?? undefined;
  };
  return { table, column, shard: { ...shard, min: shard.min, max: shard.max }, colocationId: dist.colocationId, hash };
}

/**
 * The tenants of one shard from the first source that knows any, or undefined. Without `conn`
 * (no worker connections) the sample is skipped.
 */
export async function findShardTenants(db: Queryable, conn: ConnectionConfig | undefined, shard: { shardId: string; table: string; node: string },
  options: FindTenantsOptions = {}): Promise<ShardTenants | undefined> {
  const ctx = await context(db, shard.table, shard.shardId);
  if (!ctx) return undefined;
  for (const source of options.sources ?? ['citus_stat_tenants', 'profile', 'sample'] as const) {
    const found = source === 'citus_stat_tenants' ? (await tenantTrackingOn(db) ? await fromTenantStats(db, ctx) : undefined)
      : source === 'profile' ? await fromProfiles(db, ctx)
        : conn ? await fromSample(conn, shard.node, ctx) : undefined;
    if (found && found.tenants.length > 0 && found.total > 0) return found;
  }
  return undefined;
}

function result(ctx: ShardContext, source: TenantSource, tenants: TenantWeight[], total: number): ShardTenants {
  return { shardId: ctx.shard.shardId, table: ctx.table, source, tenants: [...tenants].sort((a, b) => b.weight - a.weight), total, min: ctx.shard.min, max: ctx.shard.max };
}

async function fromTenantStats(db: Queryable, ctx: ShardContext): Promise<ShardTenants | undefined> {
  // The total counts every tenant of the shard, not only the ones listed: a shard of many small
  // tenants must not make its top one look dominant.
  const r = await db.query<{ tenant: string; q: number; total: number }>(
    `WITH t AS (SELECT tenant_attribute AS tenant, sum(query_count_in_this_period + query_count_in_last_period)::float8 AS q
                  FROM citus_stat_tenants
                 WHERE colocation_id = $1 AND get_shard_id_for_distribution_column($2::regclass, tenant_attribute) = $3
                 GROUP BY 1)
     SELECT tenant, q, sum(q) OVER () AS total FROM t ORDER BY q DESC LIMIT $4`, [ctx.colocationId, ctx.table, ctx.shard.shardId, SHARD_TENANTS_LISTED]);
  const tenants = await Promise.all(r.rows.map(async (t) => ({ value: t.tenant, hash: await ctx.hash(t.tenant), weight: t.q })));
  return result(ctx, 'citus_stat_tenants', tenants, r.rows[0]?.total ?? 0);
}

/**
 * Heavy hitters of the newest profile of any table of the shard's colocation group (they share
 * the distribution values), hashed into the shard's range. A tenant's weight is its planned rows,
 * over the planned rows of the part of the profile's ranges that overlaps this shard.
 */
async function fromProfiles(db: Queryable, ctx: ShardContext): Promise<ShardTenants | undefined> {
  const r = await db.query<{ profile: { isolate?: string[]; shards?: { hashMin: number; hashMax: number; rows: number; tenant?: string }[] } }>(
    `SELECT DISTINCT ON (p.table_name) p.profile FROM adaptive_load.profiles p
      WHERE to_regclass(p.table_name) IN (SELECT logicalrelid FROM pg_dist_partition WHERE colocationid = $1)
      ORDER BY p.table_name, p.created_at DESC`, [ctx.colocationId]);
  const { min, max } = ctx.shard;
  for (const { profile } of r.rows) {
    const planned = profile.shards ?? [];
    const values = new Set([...(profile.isolate ?? []), ...planned.flatMap((s) => (s.tenant !== undefined ? [s.tenant] : []))]);
    const tenants: TenantWeight[] = [];
    for (const value of values) {
      const hash = await ctx.hash(value);
      if (hash === undefined || hash < min || hash > max) continue;
      const own = planned.find((s) => s.tenant === value);
      // A heavy hitter the plan did not give its own shard: its planned shard's rows bound it from above.
      const rows = own?.rows ?? planned.find((s) => hash >= s.hashMin && hash <= s.hashMax)?.rows ?? 0;
      tenants.push({ value, hash, weight: rows });
    }
    if (tenants.length === 0) continue;
    // Planned rows in the overlap of each planned range with this shard, by the width of the overlap.
    const total = planned.reduce((a, s) => {
      const lo = Math.max(min, s.hashMin);
      const hi = Math.min(max, s.hashMax);
      return hi < lo ? a : a + s.rows * ((hi - lo + 1) / (s.hashMax - s.hashMin + 1));
    }, 0);
    const weightSum = tenants.reduce((a, t) => a + t.weight, 0);
    if (weightSum > 0) return result(ctx, 'profile', tenants, Math.max(total, weightSum));
  }
  return undefined;
}

/** The most frequent distribution values in a bounded TABLESAMPLE SYSTEM of the shard on its worker. */
async function fromSample(conn: ConnectionConfig, node: string, ctx: ShardContext): Promise<ShardTenants | undefined> {
  const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(node)), application_name: 'citus-adaptive-load hot-tenant sample' });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`SET statement_timeout = ${SHARD_SAMPLE_TIMEOUT_MS}`);
    // Citus hides shard tables from pg_class on workers unless told otherwise.
    await client.query('SET citus.override_table_visibility = off');
    const est = await client.query<{ n: number }>('SELECT greatest(reltuples, 0)::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [ctx.shard.qualifiedName]);
    if (est.rowCount === 0) return undefined;
    const estimated = est.rows[0]!.n;
    // Too few estimated rows (or never analyzed) to sample: read it all, the statement_timeout still bounds it.
    const percent = estimated > SHARD_SAMPLE_ROWS ? Math.max(0.01, (100 * SHARD_SAMPLE_ROWS) / estimated) : 100;
    const col = quoteIdent(ctx.column.name);
    const r = await client.query<{ v: string; n: number; total: number }>(
      `SELECT ${col}::text AS v, count(*)::float8 AS n, sum(count(*)) OVER ()::float8 AS total
         FROM ${ctx.shard.qualifiedName} TABLESAMPLE SYSTEM ($1) GROUP BY 1 ORDER BY 2 DESC LIMIT $2`, [percent, SHARD_TENANTS_LISTED]);
    const total = r.rows[0]?.total ?? 0;
    const tenants = await Promise.all(r.rows.map(async (t) => ({ value: t.v, hash: await ctx.hash(t.v), weight: t.n })));
    return result(ctx, 'sample', tenants, total);
  } catch {
    // A timed-out or failed sample is no evidence; the caller advises instead of acting.
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}
