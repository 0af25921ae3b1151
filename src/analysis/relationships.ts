import type { Queryable } from '../connect/queryable.js';
import { quoteIdent } from '../connect/sql.js';
import type { ColumnStats, InferredType } from './column-stats.js';

/** A table already in the cluster, as far as layout decisions care. */
export interface ClusterTable {
  readonly name: string;
  readonly kind: 'hash' | 'reference' | 'local' | 'other';
  readonly distributionColumn: string | undefined;
  readonly colocationId: number | undefined;
  readonly shardCount: number | undefined;
  readonly estimatedRows: number;
  /** Single-column primary or unique keys (what a foreign key can point at). */
  readonly keyColumns: { column: string; type: string }[];
  readonly columnTypes: Record<string, string>;
}

export interface Relationship {
  /** The column of the input. */
  readonly column: string;
  readonly references: { table: string; column: string };
  readonly evidence: 'declared' | 'values' | 'name';
  /** Share of the sampled distinct values found in the referenced column (values evidence). */
  readonly containment?: number;
  /** The referenced column is the distribution column of a hash-distributed table. */
  readonly colocatable: boolean;
  readonly referencedKind: ClusterTable['kind'];
  readonly referencedRows: number;
}

export async function readClusterTables(db: Queryable, citus: boolean, exclude: string | undefined): Promise<ClusterTable[]> {
  const tables = await db.query<{ name: string; rows: number; oid: number }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, greatest(c.reltuples, 0)::float8 AS rows, c.oid::int AS oid
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'adaptive_load', 'citus', 'columnar', 'columnar_internal')
        AND n.nspname NOT LIKE 'pg\\_%'
        AND ($1::regclass IS NULL OR c.oid <> $1::regclass)`, [exclude ? await existing(db, exclude) : null]);
  const result: ClusterTable[] = [];
  for (const t of tables.rows) {
    const keys = await db.query<{ column: string; type: string }>(
      `SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.conrelid = $1 AND k.contype IN ('p', 'u') AND array_length(k.conkey, 1) = 1`, [t.oid]);
    const cols = await db.query<{ column: string; type: string }>(
      `SELECT attname AS column, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, [t.oid]);
    let kind: ClusterTable['kind'] = 'local';
    let distributionColumn: string | undefined;
    let colocationId: number | undefined;
    let shardCount: number | undefined;
    if (citus) {
      const p = await db.query<{ partmethod: string; repmodel: string; col: string | null; colocationid: number; shards: number }>(
        `SELECT partmethod, repmodel, CASE WHEN partkey IS NULL THEN NULL ELSE column_to_column_name(logicalrelid, partkey) END AS col,
                colocationid, (SELECT count(*)::int FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards
           FROM pg_dist_partition p WHERE logicalrelid = $1::regclass`, [t.oid]);
      const d = p.rows[0];
      if (d) {
        kind = d.partmethod === 'h' ? 'hash' : d.partmethod === 'n' && d.repmodel === 't' ? 'reference' : 'other';
        distributionColumn = d.col ?? undefined;
        colocationId = d.colocationid;
        shardCount = d.shards;
      }
    }
    // reltuples is -1/0 before ANALYZE; count small tables exactly, cheaply bounded.
    const rows = t.rows > 0 ? t.rows : Number((await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${t.name} LIMIT 1000001) s`)).rows[0]!.n);
    result.push({
      name: t.name, kind, distributionColumn, colocationId, shardCount, estimatedRows: rows,
      keyColumns: keys.rows, columnTypes: Object.fromEntries(cols.rows.map((c) => [c.column, c.type])),
    });
  }
  return result;
}

async function existing(db: Queryable, table: string): Promise<string | null> {
  const r = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  return r.rows[0]?.t ?? null;
}

function compatible(inferred: InferredType, pgType: string): string | undefined {
  const t = pgType.toLowerCase();
  if ((inferred === 'integer' || inferred === 'bigint') && /^(smallint|integer|bigint)$/.test(t)) return 'bigint';
  if (inferred === 'uuid' && t === 'uuid') return t;
  if (inferred === 'text' && /^(text|character varying.*)$/.test(t)) return 'text';
  if (inferred === 'date' && t === 'date') return t;
  return undefined;
}

function singular(name: string): string {
  return name.replace(/ies$/, 'y').replace(/s$/, '');
}

/**
 * Finds which input columns point at columns of tables already in the cluster: declared foreign
 * keys, then values (a sample of the column's distinct values looked up in the other table's
 * distribution or key column), then names (`customer_id` next to a `customers` table) as weak
 * evidence only.
 */
export async function findRelationships(
  db: Queryable,
  columns: readonly ColumnStats[],
  distinctSamples: Record<string, string[]>,
  tables: readonly ClusterTable[],
  declared: readonly { column: string; table: string; refColumn: string }[],
): Promise<Relationship[]> {
  const found: Relationship[] = [];
  const byName = new Map(tables.map((t) => [t.name, t]));
  const seen = new Set<string>();
  const add = (r: Relationship) => {
    const key = `${r.column}->${r.references.table}.${r.references.column}`;
    if (!seen.has(key)) {
      seen.add(key);
      found.push(r);
    }
  };
  for (const d of declared) {
    const t = byName.get(d.table);
    if (!t) continue;
    add({ column: d.column, references: { table: d.table, column: d.refColumn }, evidence: 'declared',
      colocatable: t.kind === 'hash' && t.distributionColumn === d.refColumn, referencedKind: t.kind, referencedRows: t.estimatedRows });
  }
  for (const col of columns) {
    const values = distinctSamples[col.name] ?? [];
    if (values.length < 2 || col.nullFraction > 0.5) continue;
    const probe = values.slice(0, 500);
    for (const t of tables) {
      const targets = new Map<string, string>();
      for (const k of t.keyColumns) targets.set(k.column, k.type);
      if (t.kind === 'hash' && t.distributionColumn) targets.set(t.distributionColumn, t.columnTypes[t.distributionColumn] ?? '');
      for (const [refColumn, refType] of targets) {
        const castType = compatible(col.inferredType, refType);
        if (!castType) continue;
        const [schema, rel] = t.name.split('.') as [string, string];
        let r: { rows: { n: number }[] };
        try {
          r = await db.query<{ n: number }>(
          // The column is cast, not the values: Citus's shard pruning would coerce the values to
          // the column's type (varchar(20), int4) and fail on ones that do not fit.
          `SELECT count(DISTINCT ${quoteIdent(refColumn)})::int AS n FROM ${schema}.${rel} WHERE ${quoteIdent(refColumn)}::${castType} = ANY($1::${castType}[])`,
          [probe]);
        } catch {
          continue; // values that do not parse as the column's type are not contained in it
        }
        const containment = r.rows[0]!.n / probe.length;
        if (containment >= 0.9) {
          add({ column: col.name, references: { table: t.name, column: refColumn }, evidence: 'values', containment,
            colocatable: t.kind === 'hash' && t.distributionColumn === refColumn, referencedKind: t.kind, referencedRows: t.estimatedRows });
        }
      }
    }
    // Names: weak supporting evidence only, and only when nothing stronger was found.
    if (!found.some((f) => f.column === col.name)) {
      for (const t of tables) {
        const rel = t.name.split('.').pop()!.replace(/"/g, '');
        if (col.name === `${singular(rel)}_id` && t.keyColumns.length > 0) {
          const k = t.kind === 'hash' && t.distributionColumn ? t.distributionColumn : t.keyColumns[0]!.column;
          add({ column: col.name, references: { table: t.name, column: k }, evidence: 'name',
            colocatable: t.kind === 'hash' && t.distributionColumn === k, referencedKind: t.kind, referencedRows: t.estimatedRows });
        }
      }
    }
  }
  return found;
}
