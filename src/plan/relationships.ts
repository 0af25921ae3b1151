import type { Queryable } from '../connect/queryable.js';
import { quoteIdent } from '../connect/sql.js';
import type { ColumnStats, InferredType } from './column-stats.js';
import { parseQualifiedName } from '../connect/qualified-name.js';
import { namesAgree, weakContainment } from './colocation-rules.js';

/** One shard of a hash-distributed table as placed now (pg_dist_shard + pg_dist_placement). */
export interface GroupShard {
  readonly shardId: string;
  readonly min: number;
  readonly max: number;
  readonly node: string;
}

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
  /** Columns that lead some index: lookups by value on them are cheap. */
  readonly indexedColumns: string[];
  /** A hash-distributed table's shards with their nodes, sorted by range (absent without Citus). */
  readonly shards?: GroupShard[];
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
  /**
   * Values evidence that proves little on its own (an own serial key inside another dense
   * integer key, names disagreeing): not a colocation proposal unless the query history agrees.
   */
  readonly weak?: boolean;
}

/** Rough bytes per row (heap tuple with overhead) for sizing tables by their shard sizes. */
const ESTIMATED_ROW_BYTES = 100;
/** Tables up to this size are probed by value even on unindexed columns. */
const PROBE_SCAN_ROWS = 200_000;

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
    const indexed = await db.query<{ column: string }>(
      `SELECT DISTINCT a.attname AS column FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = $1`, [t.oid]);
    let kind: ClusterTable['kind'] = 'local';
    let distributionColumn: string | undefined;
    let colocationId: number | undefined;
    let shardCount: number | undefined;
    let shards: GroupShard[] | undefined;
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
        if (kind === 'hash') {
          const placed = await db.query<{ shardid: string; min: number; max: number; node: string }>(
            `SELECT s.shardid::text AS shardid, s.shardminvalue::int AS min, s.shardmaxvalue::int AS max, n.nodename || ':' || n.nodeport AS node
               FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
              WHERE s.logicalrelid = $1::regclass AND n.noderole = 'primary' ORDER BY s.shardminvalue::int`, [t.oid]);
          shards = placed.rows.map((r) => ({ shardId: r.shardid, min: r.min, max: r.max, node: r.node }));
        }
      }
    }
    // A distributed table's rows live in its shards: estimate from their size, never count them.
    // A local table has reltuples after ANALYZE; before it, count up to a bound.
    let rows = t.rows;
    if (kind !== 'local') {
      const size = await db.query<{ b: string | null }>("SELECT sum(shard_size)::text AS b FROM citus_shards WHERE table_name = $1::regclass", [t.oid]);
      const bytes = Number(size.rows[0]?.b ?? 0) / (kind === 'reference' ? Math.max(1, (await db.query('SELECT count(*) FROM pg_dist_node WHERE isactive')).rowCount ?? 1) : 1);
      rows = bytes / ESTIMATED_ROW_BYTES;
    } else if (rows <= 0) {
      rows = Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM (SELECT 1 FROM ${t.name} LIMIT 1000001) s`)).rows[0]!.n);
    }
    result.push({
      name: t.name, kind, distributionColumn, colocationId, shardCount, estimatedRows: rows,
      keyColumns: keys.rows, columnTypes: Object.fromEntries(cols.rows.map((c) => [c.column, c.type])),
      indexedColumns: indexed.rows.map((r) => r.column),
      ...(shards ? { shards } : {}),
    });
  }
  return result;
}

async function existing(db: Queryable, table: string): Promise<string | null> {
  const r = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  return r.rows[0]?.t ?? null;
}

/**
 * The column's own type when the sampled values can be compared with it, and a filter keeping
 * only values that are valid input for it: comparing in the column's type keeps its index usable
 * and Citus's shard pruning from failing on values that do not fit.
 */
function compatible(inferred: InferredType, pgType: string): { type: string; valid: (v: string) => boolean } | undefined {
  const t = pgType.toLowerCase();
  const int = (min: bigint, max: bigint) => (v: string) => /^\s*[-+]?\d{1,19}\s*$/.test(v) && BigInt(v.trim()) >= min && BigInt(v.trim()) <= max;
  if (inferred === 'integer' || inferred === 'bigint') {
    if (t === 'smallint') return { type: t, valid: int(-32768n, 32767n) };
    if (t === 'integer') return { type: t, valid: int(-2147483648n, 2147483647n) };
    if (t === 'bigint') return { type: t, valid: int(-(2n ** 63n), 2n ** 63n - 1n) };
  }
  if (inferred === 'uuid' && t === 'uuid') return { type: t, valid: () => true };
  if (inferred === 'date' && t === 'date') return { type: t, valid: () => true };
  if (inferred === 'text' || inferred === 'integer' || inferred === 'bigint' || inferred === 'uuid') {
    if (t === 'text') return { type: t, valid: () => true };
    const m = /^character varying\((\d+)\)$/.exec(t);
    if (m) return { type: t, valid: (v) => [...v].length <= Number(m[1]) };
    if (t === 'character varying') return { type: t, valid: () => true };
  }
  return undefined;
}

/**
 * Containment in a dense integer key proves little: any small number is "in" ids 1..900. A real
 * reference spreads over the key's range; a measure (amounts, counts) sits in a corner of it. So
 * integer values count as evidence only if they span at least half of the key's range.
 */
export async function spansKeyRange(db: Queryable, table: string, column: string, values: readonly string[]): Promise<boolean> {
  const nums = values.map((v) => Number(v)).filter((v) => Number.isFinite(v));
  if (nums.length === 0) return false;
  const r = await db.query<{ lo: string | null; hi: string | null }>(`SELECT min(${quoteIdent(column)})::text AS lo, max(${quoteIdent(column)})::text AS hi FROM ${table}`);
  const lo = Number(r.rows[0]?.lo);
  const hi = Number(r.rows[0]?.hi);
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return true;
  return (Math.max(...nums) - Math.min(...nums)) >= 0.5 * (hi - lo);
}

/**
 * Whether an integer key is dense: about as many rows as integers between its smallest and
 * largest value (a serial). Small tables are counted; larger ones use the size estimate.
 */
async function denseIntegerKey(db: Queryable, t: ClusterTable, column: string): Promise<boolean> {
  const r = await db.query<{ lo: string | null; hi: string | null; n: string | null }>(
    `SELECT min(${quoteIdent(column)})::text AS lo, max(${quoteIdent(column)})::text AS hi,
            ${t.estimatedRows <= PROBE_SCAN_ROWS ? `count(DISTINCT ${quoteIdent(column)})::text` : 'NULL::text'} AS n FROM ${t.name}`);
  const lo = Number(r.rows[0]?.lo);
  const hi = Number(r.rows[0]?.hi);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return false;
  const rows = r.rows[0]?.n !== null && r.rows[0]?.n !== undefined ? Number(r.rows[0].n) : t.estimatedRows;
  return rows / (hi - lo + 1) >= 0.5;
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
    // An evenly spread subset: the first values in sample order all come from the file's start.
    const step = Math.max(1, Math.floor(values.length / 500));
    const probe = values.filter((_, i) => i % step === 0).slice(0, 500);
    for (const t of tables) {
      const targets = new Map<string, string>();
      for (const k of t.keyColumns) targets.set(k.column, k.type);
      if (t.kind === 'hash' && t.distributionColumn) targets.set(t.distributionColumn, t.columnTypes[t.distributionColumn] ?? '');
      for (const [refColumn, refType] of targets) {
        const cmp = compatible(col.inferredType, refType);
        if (!cmp) continue;
        // Probe only where a lookup by value is cheap: an indexed column, or a small table.
        if (!t.indexedColumns.includes(refColumn) && t.estimatedRows > PROBE_SCAN_ROWS) continue;
        const valid = probe.filter(cmp.valid);
        if (valid.length < probe.length * 0.9) continue;
        let r: { rows: { n: number }[] };
        try {
          // t.name is format('%I.%I'): already a quoted, qualified name.
          r = await db.query<{ n: number }>(
            `SELECT count(DISTINCT ${quoteIdent(refColumn)})::int AS n FROM ${t.name} WHERE ${quoteIdent(refColumn)} = ANY($1::${cmp.type}[])`,
            [valid]);
        } catch {
          continue; // values that do not parse as the column's type are not contained in it
        }
        const containment = r.rows[0]!.n / probe.length;
        // Values in a corner of an integer key's range prove little, unless the names agree.
        if (containment >= 0.9 && cmp.type !== 'text' && /int/.test(cmp.type) && !namesAgree(col.name, t.name, refColumn)
          && !(await spansKeyRange(db, t.name, refColumn, valid))) continue;
        if (containment >= 0.9) {
          const weak = /int/.test(cmp.type) && weakContainment({ column: col, distinctValues: values, refTable: t.name, refColumn,
            refDense: await denseIntegerKey(db, t, refColumn) });
          add({ column: col.name, references: { table: t.name, column: refColumn }, evidence: 'values', containment,
            colocatable: t.kind === 'hash' && t.distributionColumn === refColumn, referencedKind: t.kind, referencedRows: t.estimatedRows,
            ...(weak ? { weak } : {}) });
        }
      }
    }
    // Names: weak supporting evidence only, and only when nothing stronger was found.
    if (!found.some((f) => f.column === col.name)) {
      for (const t of tables) {
        const rel = parseQualifiedName(t.name).name;
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
