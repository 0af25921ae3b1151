import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { describeColumn, type ColumnStats } from './column-stats.js';
import { sampleInput, type FileSample, type SampleOptions } from './file-sampler.js';
import { analyzeStatements, readStatementStats, type AccessPatterns } from './query-history.js';
import { findRelationships, readClusterTables } from './relationships.js';
import { citusVersion } from '../catalog/catalog.js';
import { parseQualifiedName, quoteQualifiedName } from '../connect/qualified-name.js';
import type { CopyFormat } from '../input/copy-format.js';
import type { InputSource } from '../input/input-source.js';
import { isTableSource } from '../input/table-source.js';
import { sampleTable } from './table-sampler.js';
import { INFERRED_TO_PG, planProfile, type PlanInput } from './planner.js';
import { validateProfile, type ShardingProfile } from './sharding-profile.js';

export interface InputAnalysis {
  readonly sample: FileSample;
  readonly columns: ColumnStats[];
  readonly values: Record<string, (string | null)[]>;
}

/** Column names for an input: the existing table's, the header's, or col1..colN. */
function columnNames(sample: FileSample, existing: string[] | undefined): string[] {
  const width = sample.header?.length ?? sample.rows[0]?.fields.length ?? 0;
  if (existing && sample.header) {
    const lower = new Map(existing.map((c) => [c.toLowerCase(), c]));
    const mapped = sample.header.map((h) => lower.get(h.trim().toLowerCase()));
    if (mapped.every((m) => m !== undefined)) return mapped as string[];
  }
  if (existing && existing.length === width) return existing;
  if (sample.header) return sample.header.map((h, i) => sanitize(h) || `col${i + 1}`);
  return Array.from({ length: width }, (_, i) => `col${i + 1}`);
}

function sanitize(name: string): string {
  return name.trim().toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 63);
}

/** Samples the input and describes every column; needs no database. */
export async function analyzeInput(source: InputSource, format: CopyFormat, options: SampleOptions & { existingColumns?: { name: string; type: string }[] } = {}): Promise<InputAnalysis> {
  return describeSample(await sampleInput(source, format, options), options.existingColumns);
}

/** Describes every column of a sample, a file's or a table's (table-sampler.ts). */
export function describeSample(sample: FileSample, existingColumns: { name: string; type: string }[] | undefined): InputAnalysis {
  const options = { existingColumns };
  const names = columnNames(sample, options.existingColumns?.map((c) => c.name));
  const positions = sample.rows.map((r) => r.position);
  const values: Record<string, (string | null)[]> = {};
  names.forEach((name, i) => {
    values[name] = sample.rows.map((r) => r.fields[i] ?? null);
  });
  const types = new Map(options.existingColumns?.map((c) => [c.name, c.type]));
  const columns = names.map((name) => describeColumn({ name, existingType: types.get(name), values: values[name]!, positions }, sample.estimatedRows));
  return { sample, columns, values };
}

export interface PlanOptions extends SampleOptions {
  table: string;
  keepKeys?: boolean;
  distributionColumn?: string;
  shardCount?: number;
  /** Rows the table is expected to hold: the plan is sized for them instead of the input's. */
  expectedRows?: number;
}

export interface PlanResult {
  readonly profile: ShardingProfile;
  readonly analysis: InputAnalysis;
  readonly tableExists: boolean;
  readonly seconds: number;
  /**
   * The same plan without the colocations Citus refused (`column->group` keys): the next
   * candidate, from the same sample and catalog reads.
   */
  readonly replan: (refused: ReadonlySet<string>) => ShardingProfile;
}

/**
 * Reads the cluster (tables, keys, layouts, query history) and plans the sharding profile for
 * loading `source` into `table`. Changes nothing.
 */
export async function planForInput(db: pg.Client, source: InputSource, format: CopyFormat, options: PlanOptions): Promise<PlanResult> {
  const started = performance.now();
  const citus = (await citusVersion(db)) !== undefined;
  // PostgreSQL resolves the name (search_path) and prints it: the existing table's name, or the
  // name the table will be created under (quote_ident knows which words need quotes).
  const target = parseQualifiedName(options.table);
  const names = (await db.query<{ rel: string | null; planned: string }>(
    `SELECT to_regclass($1)::text AS rel,
            CASE WHEN $2::text IS NULL THEN quote_ident($3) ELSE quote_ident($2) || '.' || quote_ident($3) END AS planned`,
    [quoteQualifiedName(target), target.schema ?? null, target.name])).rows[0]!;
  const rel = names.rel;
  let existingColumns: { name: string; type: string; typeName: string; maxChars?: number }[] | undefined;
  let keys: { constraint: string; columns: string[]; primary: boolean }[] = [];
  let declared: { column: string; table: string; refColumn: string }[] = [];
  if (rel) {
    const cols = await db.query<{ name: string; type: string; typname: string; typmod: number }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
              bt.typname, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [rel]);
    existingColumns = cols.rows.map((c) => ({ name: c.name, type: c.type, typeName: c.typname,
      ...((c.typname === 'varchar' || c.typname === 'bpchar') && c.typmod >= 4 ? { maxChars: c.typmod - 4 } : {}) }));
    const k = await db.query<{ name: string; cols: string[]; contype: string }>(
      `SELECT conname AS name, contype, array(SELECT attname::text FROM pg_attribute WHERE attrelid = conrelid AND attnum = ANY(conkey)) AS cols
         FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u')`, [rel]);
    keys = k.rows.map((r) => ({ constraint: r.name, columns: r.cols, primary: r.contype === 'p' }));
    const f = await db.query<{ col: string; ref: string; refcol: string }>(
      `SELECT a.attname AS col, format('%I.%I', n.nspname, c.relname) AS ref, ra.attname AS refcol
         FROM pg_constraint k
         JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
         JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
        WHERE k.conrelid = $1::regclass AND k.contype = 'f' AND array_length(k.conkey, 1) = 1`, [rel]);
    declared = f.rows.map((r) => ({ column: r.col, table: r.ref, refColumn: r.refcol }));
  }
  let analysis: InputAnalysis;
  if (isTableSource(source)) {
    // A table's columns come with their types: a table created for them gets the same ones.
    existingColumns ??= source.columns.map((c) => ({ name: c.name, type: c.displayType, typeName: c.typeName,
      ...(c.maxChars !== undefined ? { maxChars: c.maxChars } : {}) }));
    analysis = describeSample(await sampleTable(db, source.table, source.columns, { rows: options.rows, seed: options.seed }), existingColumns);
  } else {
    analysis = await analyzeInput(source, format, { ...options, existingColumns });
  }
  const clusterTables = await readClusterTables(db, citus, rel ?? undefined);
  const distinctSamples: Record<string, string[]> = {};
  for (const c of analysis.columns) distinctSamples[c.name] = [...new Set(analysis.values[c.name]!.filter((v): v is string => v !== null))];
  const relationships = await findRelationships(db, analysis.columns, distinctSamples, clusterTables, declared);
  const tableName = rel ?? names.planned;
  const stats = await readStatementStats(db, parseQualifiedName(tableName).name);
  const access: AccessPatterns = await analyzeStatements(stats ?? [], tableName, analysis.columns.map((c) => c.name));
  const nodes = citus ? (await db.query<{ node: string }>(
    `SELECT nodename || ':' || nodeport AS node FROM pg_dist_node
      WHERE noderole = 'primary' AND isactive AND shouldhaveshards ORDER BY nodeid`)).rows.map((r) => r.node) : [];
  const defaultShardCount = citus ? Number((await db.query<{ n: string }>("SELECT current_setting('citus.shard_count') AS n")).rows[0]!.n) : 32;
  const pgTypes: Record<string, { typeName: string; maxChars?: number }> = {};
  for (const c of analysis.columns) {
    const e = existingColumns?.find((x) => x.name === c.name);
    pgTypes[c.name] = e ? { typeName: e.typeName, ...(e.maxChars !== undefined ? { maxChars: e.maxChars } : {}) } : { typeName: INFERRED_TO_PG[c.inferredType] };
  }
  const input: PlanInput = {
    table: tableName,
    columns: analysis.columns,
    pgTypes,
    sampleValues: analysis.values,
    estimatedRows: analysis.sample.estimatedRows,
    averageRowBytes: analysis.sample.averageRowBytes,
    relationships,
    clusterTables,
    access,
    nodes,
    keys,
    keepKeys: options.keepKeys ?? false,
    defaultShardCount,
    sample: { rows: analysis.sample.rows.length, seconds: analysis.sample.seconds, method: analysis.sample.method, estimatedRows: analysis.sample.estimatedRows },
    ...(options.distributionColumn ? { forcedColumn: options.distributionColumn } : {}),
    ...(options.shardCount ? { forcedShardCount: options.shardCount } : {}),
    ...(options.expectedRows ? { expectedRows: options.expectedRows } : {}),
    tableExists: rel !== null,
  };
  const profile = validateProfile(planProfile(input), 'the planned profile');
  const replan = (refused: ReadonlySet<string>) => validateProfile(planProfile(input, refused), 'the planned profile');
  return { profile, analysis, tableExists: rel !== null, seconds: (performance.now() - started) / 1000, replan };
}
