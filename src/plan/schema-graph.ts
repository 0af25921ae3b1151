/**
 * The graph of an application schema, as planning a whole schema needs it: every table with its
 * declared keys, columns and size; the foreign keys between them (declared ones from
 * pg_constraint, in column order, and ones inferred from sampled containment); and a sample of
 * each table's values (from its source file, else from the rows it holds). The graph describes
 * what the application is, never how Citus lays it out today: that state is read too (`citus`)
 * but planning must not look at it, so a table's plan does not depend on the order earlier loads
 * happened in.
 */
import type { Queryable } from '../connect/queryable.js';
import { quoteIdent } from '../connect/sql.js';
import type { InputAnalysis } from './analyze.js';

export interface SchemaColumn {
  readonly name: string;
  /** format_type: what DDL and casts use. */
  readonly type: string;
  /** Base type name (a domain's base): what hashing and comparisons go by. */
  readonly typeName: string;
}

export interface ForeignKey {
  readonly name: string;
  /** Referencing table, format('%I.%I'). */
  readonly table: string;
  readonly columns: string[];
  /** Referenced table, format('%I.%I'). */
  readonly refTable: string;
  /** Referenced columns, in the order of `columns`. */
  readonly refColumns: string[];
  readonly evidence: 'declared' | 'values';
  /** pg_get_constraintdef: the server's own text, replayed to re-create the key. */
  readonly definition?: string;
  /** Share of the sampled distinct values found among the referenced key's (values evidence). */
  readonly containment?: number;
  /** Dropped by an earlier schema load that has not re-created it yet (not in the catalog now). */
  readonly pending?: boolean;
}

export type CitusState =
  | { readonly kind: 'local' }
  | { readonly kind: 'citus-local'; readonly autoConverted: boolean }
  | { readonly kind: 'reference' }
  | { readonly kind: 'hash'; readonly column: string; readonly colocationId: number; readonly shardCount: number }
  | { readonly kind: 'other' };

export interface SchemaTable {
  /** format('%I.%I'): quoted and qualified, usable in SQL as is. */
  readonly name: string;
  readonly columns: SchemaColumn[];
  readonly primaryKey: string[] | null;
  readonly uniqueKeys: string[][];
  /** Rows the table will hold once its sources are loaded. */
  readonly estimatedRows: number;
  /** Rows it holds now (counted, up to a bound). */
  readonly existingRows: number;
  /** Sampled values per column, in the sample's row order (rows align across columns). */
  readonly sample: Record<string, (string | null)[]>;
  /** The sample holds every row the table will hold (so absence from it means absence). */
  readonly sampleComplete: boolean;
  readonly citus: CitusState;
}

export interface SchemaGraph {
  readonly schema: string;
  readonly tables: SchemaTable[];
  readonly foreignKeys: ForeignKey[];
}

/** What a source file brings to a table: its analysis, and whether its rows are in the table already. */
export interface TableSource {
  readonly analysis: InputAnalysis;
  readonly alreadyLoaded: boolean;
}

/** Rows sampled from a table that already holds rows (and counted up to this bound). */
const TABLE_SAMPLE_ROWS = 20_000;
const COUNT_BOUND = 10_000_000;
/** Sampled containment at or above this share counts as a reference (sampling and dirty data leave a little out). */
const CONTAINMENT = 0.99;

/** The schema's tables (not partitions) with their keys, foreign keys, sizes, samples and Citus state. */
export async function readSchemaGraph(db: Queryable, schema: string, sources: ReadonlyMap<string, TableSource>, citus: boolean,
  pending: readonly ForeignKey[] = []): Promise<SchemaGraph> {
  const rels = await db.query<{ name: string; oid: number }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.oid::int AS oid
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`, [schema]);
  const tables: SchemaTable[] = [];
  for (const rel of rels.rows) {
    const cols = (await db.query<{ name: string; type: string; typname: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, bt.typname
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [rel.oid]))
      .rows.map((c) => ({ name: c.name, type: c.type, typeName: c.typname }));
    const keys = await db.query<{ contype: string; cols: string[] }>(
      `SELECT k.contype, array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS cols
         FROM pg_constraint k WHERE k.conrelid = $1 AND k.contype IN ('p', 'u') ORDER BY k.conname`, [rel.oid]);
    const existingRows = Number((await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM (SELECT 1 FROM ${rel.name} LIMIT ${COUNT_BOUND}) s`)).rows[0]!.n);
    const source = sources.get(rel.name);
    const fileRows = source && !source.alreadyLoaded ? source.analysis.sample.estimatedRows : 0;
    const estimatedRows = existingRows + fileRows;
    let sample: Record<string, (string | null)[]>;
    let sampleComplete: boolean;
    if (source) {
      sample = source.analysis.values;
      sampleComplete = source.analysis.sample.rows.length >= estimatedRows;
    } else {
      ({ sample, complete: sampleComplete } = await sampleTable(db, rel.name, cols.map((c) => c.name), existingRows));
    }
    tables.push({
      name: rel.name, columns: cols,
      primaryKey: keys.rows.find((k) => k.contype === 'p')?.cols ?? null,
      uniqueKeys: keys.rows.filter((k) => k.contype === 'u').map((k) => k.cols),
      estimatedRows, existingRows, sample, sampleComplete,
      citus: citus ? await readCitusState(db, rel.oid) : { kind: 'local' },
    });
  }
  const fks = await db.query<{ name: string; child: string; parent: string; cols: string[]; refcols: string[]; def: string }>(
    `SELECT k.conname AS name, format('%I.%I', cn.nspname, c.relname) AS child, format('%I.%I', pn.nspname, p.relname) AS parent,
            array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS cols,
            array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) AS refcols,
            pg_get_constraintdef(k.oid) AS def
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE k.contype = 'f' AND cn.nspname = $1 AND pn.nspname = $1 ORDER BY c.relname, k.conname`, [schema]);
  const declared: ForeignKey[] = fks.rows.map((f) => ({
    name: f.name, table: f.child, columns: f.cols, refTable: f.parent, refColumns: f.refcols, evidence: 'declared', definition: f.def,
  }));
  const names = new Set(tables.map((t) => t.name));
  const present = new Set(declared.map((f) => `${f.table}\u0000${f.name}`));
  // Keys an earlier run dropped belong to the application's schema still, as if declared.
  for (const k of pending) {
    if (names.has(k.table) && names.has(k.refTable) && !present.has(`${k.table}\u0000${k.name}`)) declared.push({ ...k, evidence: 'declared', pending: true });
  }
  return { schema, tables, foreignKeys: [...declared, ...inferForeignKeys(tables, declared)] };
}

async function readCitusState(db: Queryable, oid: number): Promise<CitusState> {
  const r = await db.query<{ partmethod: string; repmodel: string; col: string | null; colocationid: number; shards: number; auto: boolean | null }>(
    `SELECT partmethod, repmodel, CASE WHEN partkey IS NULL THEN NULL ELSE column_to_column_name(logicalrelid, partkey) END AS col,
            colocationid, (SELECT count(*)::int FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards,
            (to_jsonb(p) ->> 'autoconverted')::boolean AS auto
       FROM pg_dist_partition p WHERE logicalrelid = $1::oid::regclass`, [oid]);
  const d = r.rows[0];
  if (!d) return { kind: 'local' };
  if (d.partmethod === 'h' && d.col) return { kind: 'hash', column: d.col, colocationId: d.colocationid, shardCount: d.shards };
  if (d.partmethod === 'n' && d.repmodel === 't') return { kind: 'reference' };
  if (d.partmethod === 'n') return { kind: 'citus-local', autoConverted: d.auto === true };
  return { kind: 'other' };
}

/** Up to TABLE_SAMPLE_ROWS rows of a table that holds rows, as text; a random subset when it holds more. */
async function sampleTable(db: Queryable, table: string, columns: string[], rows: number): Promise<{ sample: Record<string, (string | null)[]>; complete: boolean }> {
  const sample: Record<string, (string | null)[]> = Object.fromEntries(columns.map((c) => [c, []]));
  if (rows === 0 || columns.length === 0) return { sample, complete: true };
  const list = columns.map((c, i) => `${quoteIdent(c)}::text AS c${i}`).join(', ');
  // random() < p works on every kind of table (TABLESAMPLE does not on distributed ones).
  const where = rows > TABLE_SAMPLE_ROWS ? `WHERE random() < ${Math.min(1, (TABLE_SAMPLE_ROWS * 1.2) / rows)}` : '';
  const r = await db.query<Record<string, string | null>>(`SELECT ${list} FROM ${table} ${where} LIMIT ${TABLE_SAMPLE_ROWS}`);
  for (const row of r.rows) columns.forEach((c, i) => sample[c]!.push(row[`c${i}`] ?? null));
  return { sample, complete: rows <= TABLE_SAMPLE_ROWS };
}

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8']);

/**
 * Foreign keys the schema does not declare, found by sampled containment: a key-like column
 * (named `*_id`, or part of its table's primary key) whose sampled values all appear among a
 * single-column primary key of another table of the same type. Only a referenced table whose
 * sample holds all its rows can prove containment; integer values must also spread over at
 * least half the key's range, since any small number is "in" ids 1..N.
 */
export function inferForeignKeys(tables: readonly SchemaTable[], declared: readonly ForeignKey[]): ForeignKey[] {
  const found: ForeignKey[] = [];
  const covered = new Set(declared.flatMap((f) => f.columns.map((c) => `${f.table}.${c}`)));
  for (const child of tables) {
    for (const col of child.columns) {
      if (covered.has(`${child.name}.${col.name}`)) continue;
      const keyLike = /_id$/.test(col.name) || (child.primaryKey?.includes(col.name) ?? false);
      if (!keyLike || (child.primaryKey?.length === 1 && child.primaryKey[0] === col.name)) continue;
      const values = [...new Set((child.sample[col.name] ?? []).filter((v): v is string => v !== null))];
      if (values.length < 2) continue;
      for (const parent of tables) {
        if (parent === child || parent.primaryKey?.length !== 1 || !parent.sampleComplete) continue;
        const pk = parent.primaryKey[0]!;
        const pkType = parent.columns.find((c) => c.name === pk)?.typeName;
        if (pkType !== col.typeName) continue;
        const keys = new Set((parent.sample[pk] ?? []).filter((v): v is string => v !== null).map((v) => canonical(v, pkType)));
        if (keys.size === 0) continue;
        const contained = values.filter((v) => keys.has(canonical(v, pkType))).length / values.length;
        if (contained < CONTAINMENT) continue;
        if (INTEGER_TYPES.has(pkType) && !spans(values, [...keys])) continue;
        found.push({ name: `inferred_${col.name}`, table: child.name, columns: [col.name], refTable: parent.name, refColumns: [pk], evidence: 'values', containment: contained });
      }
    }
  }
  return found;
}

function canonical(v: string, type: string): string {
  const t = v.trim();
  if (INTEGER_TYPES.has(type) && /^[-+]?\d+$/.test(t)) return BigInt(t).toString();
  return type === 'uuid' ? t.toLowerCase() : v;
}

function spans(values: string[], keys: string[]): boolean {
  const nums = (xs: string[]) => xs.map(Number).filter(Number.isFinite);
  const v = nums(values);
  const k = nums(keys);
  const kRange = Math.max(...k) - Math.min(...k);
  return kRange <= 0 || Math.max(...v) - Math.min(...v) >= 0.5 * kRange;
}
