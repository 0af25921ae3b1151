import type { Queryable } from '../connect/queryable.js';
import { parseQualifiedName, quoteQualifiedName } from '../connect/qualified-name.js';
import { qualifiedName } from '../connect/sql.js';
import { ClusterStateError, TargetTableError } from '../errors.js';

/** A column of the target table, as pg_attribute and pg_type describe it. */
export interface ColumnInfo {
  readonly name: string;
  /** Base type name (domains resolved), e.g. int8, text, varchar. */
  readonly typeName: string;
  /** Type as format_type() prints it, for messages. */
  readonly displayType: string;
  /** varchar(n)/char(n) length in characters. */
  readonly maxChars: number | undefined;
  readonly notNull: boolean;
  readonly hasDefault: boolean;
  /** False for a nondeterministic collation (hashing then depends on the collation). */
  readonly collationDeterministic: boolean;
  /** True for enum, composite, array and other types whose text form the client cannot map to a hash. */
  readonly isArray: boolean;
}

export interface TableInfo {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** Writable columns in attnum order (no dropped or generated columns). */
  readonly columns: ColumnInfo[];
}

export type DistributionKind = 'hash' | 'reference' | 'citus-local' | 'local' | 'other';

export interface ShardPlacement {
  readonly shardId: string;
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export interface ShardInfo {
  readonly shardId: string;
  /** Inclusive hash range; undefined for reference tables. */
  readonly min: number | undefined;
  readonly max: number | undefined;
  /** Schema-qualified, quoted shard table name (`schema.table_shardid`). */
  readonly qualifiedName: string;
  readonly placements: ShardPlacement[];
}

export interface Distribution {
  readonly kind: DistributionKind;
  readonly column: string | undefined;
  readonly colocationId: number | undefined;
  readonly shards: ShardInfo[];
}

/** True when the shard's hash range is a single value: it holds exactly one tenant. */
export async function isSingleTenantShard(db: Queryable, shardId: string): Promise<boolean> {
  const r = await db.query<{ one: boolean }>('SELECT shardminvalue = shardmaxvalue AS one FROM pg_dist_shard WHERE shardid = $1', [shardId]);
  return r.rows[0]?.one ?? false;
}

/** pg_dist_node's id for a node known by its `host:port` label. */
export async function nodeIdOf(db: Queryable, label: string): Promise<number | undefined> {
  const r = await db.query<{ nodeid: number }>("SELECT nodeid FROM pg_dist_node WHERE nodename || ':' || nodeport = $1", [label]);
  return r.rows[0]?.nodeid;
}

export async function citusVersion(db: Queryable): Promise<string | undefined> {
  const r = await db.query<{ extversion: string }>("SELECT extversion FROM pg_extension WHERE extname = 'citus'");
  return r.rows[0]?.extversion;
}

/**
 * Fails with a ClusterStateError saying that `what` (monitor, rebalance, tune) needs Citus when
 * the connected database has no citus extension, instead of a raw "relation pg_dist_shard does
 * not exist" from the first catalog query.
 */
export async function requireCitus(db: Queryable, what: string): Promise<void> {
  const r = await db.query<{ citus: boolean; db: string }>(
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus, current_database() AS db");
  const row = r.rows[0]!;
  if (row.citus) return;
  throw new ClusterStateError(`${what} requires Citus: the citus extension is not installed in database ${row.db} `
    + "(it reads Citus's shards and nodes; CREATE EXTENSION citus on the coordinator and the workers, then add the workers)");
}

export async function readTable(db: Queryable, tableName: string): Promise<TableInfo> {
  const table = await findTable(db, tableName);
  if (!table) throw new TargetTableError(`table ${tableName} does not exist; create it first (or check search_path)`);
  return table;
}

/**
 * The table `tableName` names, read as psql reads names (see parseQualifiedName); undefined when
 * there is none. PostgreSQL resolves the quoted name, so search_path decides unqualified ones.
 */
export async function findTable(db: Queryable, tableName: string): Promise<TableInfo | undefined> {
  const rel = await db.query<{ oid: number; schema: string; name: string; relkind: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`, [quoteQualifiedName(parseQualifiedName(tableName))]);
  const row = rel.rows[0];
  if (!row) return undefined;
  if (row.relkind !== 'r' && row.relkind !== 'p') {
    throw new TargetTableError(`${tableName} is not a table (relkind ${row.relkind})`);
  }
  const cols = await db.query<{
    name: string; type_name: string; display_type: string; typmod: number; notnull: boolean;
    hasdef: boolean; deterministic: boolean | null; is_array: boolean;
  }>(
    `SELECT a.attname AS name,
            bt.typname AS type_name,
            format_type(a.atttypid, a.atttypmod) AS display_type,
            CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
            a.attnotnull AS notnull, a.atthasdef AS hasdef,
            coll.collisdeterministic AS deterministic,
            bt.typcategory = 'A' AS is_array
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attnum`, [row.oid]);
  const columns = cols.rows.map((c): ColumnInfo => ({
    name: c.name,
    typeName: c.type_name,
    displayType: c.display_type,
    maxChars: (c.type_name === 'varchar' || c.type_name === 'bpchar') && c.typmod >= 4 ? c.typmod - 4 : undefined,
    notNull: c.notnull,
    hasDefault: c.hasdef,
    collationDeterministic: c.deterministic ?? true,
    isArray: c.is_array,
  }));
  return { oid: row.oid, schema: row.schema, name: row.name, columns };
}

/** How a table is distributed, with every shard's range and active placements. */
export async function readDistribution(db: Queryable, table: TableInfo, citus: boolean): Promise<Distribution> {
  if (!citus) return { kind: 'local', column: undefined, colocationId: undefined, shards: [] };
  const part = await db.query<{ partmethod: string; column: string | null; colocationid: number; repmodel: string }>(
    `SELECT partmethod, CASE WHEN partkey IS NULL THEN NULL ELSE column_to_column_name(logicalrelid, partkey) END AS column,
            colocationid, repmodel
       FROM pg_dist_partition WHERE logicalrelid = $1::regclass`, [table.oid]);
  const p = part.rows[0];
  if (!p) return { kind: 'local', column: undefined, colocationId: undefined, shards: [] };
  const kind: DistributionKind = p.partmethod === 'h' ? 'hash'
    : p.partmethod === 'n' && p.repmodel === 't' ? 'reference'
      : p.partmethod === 'n' ? 'citus-local' : 'other';
  const shards = await db.query<{ shardid: string; min: number | null; max: number | null; name: string }>(
    `SELECT shardid::text AS shardid, shardminvalue::int AS min, shardmaxvalue::int AS max,
            shard_name(logicalrelid, shardid) AS name
       FROM pg_dist_shard WHERE logicalrelid = $1::regclass
      ORDER BY shardminvalue::int NULLS FIRST`, [table.oid]);
  const placements = await db.query<{ shardid: string; nodeid: number; nodename: string; nodeport: number }>(
    `SELECT pl.shardid::text AS shardid, n.nodeid, n.nodename, n.nodeport
       FROM pg_dist_placement pl
       JOIN pg_dist_node n ON n.groupid = pl.groupid
      WHERE pl.shardid IN (SELECT shardid FROM pg_dist_shard WHERE logicalrelid = $1::regclass)
        AND n.noderole = 'primary' AND n.isactive AND pl.shardstate = 1
      ORDER BY pl.shardid, n.nodeid`, [table.oid]);
  const byShard = new Map<string, ShardPlacement[]>();
  for (const pl of placements.rows) {
    const list = byShard.get(pl.shardid) ?? [];
    list.push({ shardId: pl.shardid, nodeId: pl.nodeid, host: pl.nodename, port: pl.nodeport });
    byShard.set(pl.shardid, list);
  }
  return {
    kind,
    column: p.column ?? undefined,
    colocationId: p.colocationid,
    shards: shards.rows.map((s) => ({
      shardId: s.shardid,
      min: s.min ?? undefined,
      max: s.max ?? undefined,
      qualifiedName: shardTableName(s.name, table.schema),
      placements: byShard.get(s.shardid) ?? [],
    })),
  };
}

/**
 * shard_name() leaves out the schema for tables in public and quotes as needed; its output is
 * read with the one name parser (a quoted name may itself hold a dot) and qualified, quoted.
 */
function shardTableName(shardName: string, tableSchema: string): string {
  const q = parseQualifiedName(shardName, 'shard name');
  return qualifiedName(q.schema ?? tableSchema, q.name);
}
