/**
 * Samples a table (a staging table a load reads from) for the same column statistics and
 * planner a file's sample feeds. The cost is bounded whatever the table's size:
 *
 * - `TABLESAMPLE SYSTEM (p)` reads p% of the table's pages, with p chosen from the page count
 *   and the rows per page (reltuples/relpages, or the rows' width when the table was never
 *   analyzed) so that about `rows` rows come back: the pages read do not grow with the table.
 * - A small table, where SYSTEM would take too few pages to be a fair sample (rows of one page
 *   are neighbours), is read with `BERNOULLI`, which visits every page: small, so cheap.
 * - A table with fewer rows than the sample is read whole.
 *
 * Every statement runs under a statement timeout, and rows stream through pg-query-stream, so
 * neither time nor memory depends on the table. The rows that arrive are thinned to `rows`
 * with a seeded reservoir, so the sample is uniform over what was read, not its first pages.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import type { ColumnInfo, TableInfo } from '../catalog/catalog.js';
import { citusVersion } from '../catalog/catalog.js';
import { qualifiedName, quoteIdent } from '../connect/sql.js';
import { toDatabaseError } from '../errors.js';
import { DEFAULT_SAMPLE_ROWS, type FileSample, type SampledRow } from './file-sampler.js';
import { seededRandom } from './random.js';

/** A heap page's bytes (BLCKSZ); the page count comes from the relation's size. */
const PAGE_BYTES = 8192;
/** Below this many pages to read, SYSTEM's sample is a few clusters of neighbours: use BERNOULLI. */
const MIN_SYSTEM_PAGES = 400;
/** BERNOULLI reads every page: only tables up to this many pages (64 MiB) are sampled that way. */
const MAX_BERNOULLI_PAGES = 8192;
/** Asks for this many times the rows wanted, so a sample that comes back a little short is rare. */
const OVERSAMPLE = 1.5;
/** The bound of every sampling statement. */
export const DEFAULT_TABLE_SAMPLE_TIMEOUT_MS = 60_000;
const STREAM_BATCH_ROWS = 1000;

export interface TableSampleOptions {
  /** Rows to sample. Default DEFAULT_SAMPLE_ROWS. */
  rows?: number;
  /** Seed for a reproducible sample (TABLESAMPLE ... REPEATABLE). Default 1. */
  seed?: number;
  /** Bound of each statement. Default DEFAULT_TABLE_SAMPLE_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** The table's size as the catalog knows it. */
export interface TableSize {
  readonly pages: number;
  /** Estimated rows per page: from reltuples/relpages, else from the rows' width. */
  readonly rowsPerPage: number;
  /** Whether the table is a Citus table (its rows live in shards on the workers). */
  readonly citus: boolean;
}

export type TableSampleMethod = 'whole' | 'system' | 'bernoulli';

export interface TableSamplePlan {
  readonly method: TableSampleMethod;
  /** Percentage of pages (SYSTEM) or rows (BERNOULLI) to take; 100 for 'whole'. */
  readonly percent: number;
  readonly estimatedRows: number;
}

/** How to sample a table of this size: a pure decision, tested without a database. */
export function planTableSample(size: TableSize, want: number): TableSamplePlan {
  const estimatedRows = Math.max(0, Math.round(size.pages * size.rowsPerPage));
  if (estimatedRows <= want) return { method: 'whole', percent: 100, estimatedRows };
  const percent = Math.min(100, (100 * want * OVERSAMPLE) / estimatedRows);
  const systemPages = (size.pages * percent) / 100;
  if (systemPages < MIN_SYSTEM_PAGES && size.pages <= MAX_BERNOULLI_PAGES) return { method: 'bernoulli', percent, estimatedRows };
  return { method: 'system', percent, estimatedRows };
}

/** Pages and rows per page of a table; a Citus table's are summed over its shards. */
export async function readTableSize(db: pg.ClientBase, table: TableInfo): Promise<TableSize> {
  const citus = (await citusVersion(db)) !== undefined && (await db.query(
    'SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1::oid::regclass', [table.oid])).rowCount! > 0;
  let pages: number;
  let tuples: number;
  let relpages: number;
  if (citus) {
    // The shell table on the coordinator is empty; the shards hold the rows (each counted once).
    const s = await db.query<{ bytes: string; tuples: number | null; relpages: number | null }>(
      `SELECT citus_relation_size($1::oid::regclass)::text AS bytes,
              sum(split_part(result, ',', 1)::float8) AS tuples, sum(split_part(result, ',', 2)::float8) AS relpages
         FROM run_command_on_shards($1::oid::regclass,
                'SELECT greatest(reltuples, 0) || '','' || relpages FROM pg_class WHERE oid = ''%s''::regclass')
        WHERE success`, [table.oid]);
    pages = Math.ceil(Number(s.rows[0]!.bytes) / PAGE_BYTES);
    tuples = s.rows[0]!.tuples ?? 0;
    relpages = s.rows[0]!.relpages ?? 0;
  } else {
    const r = await db.query<{ bytes: string; reltuples: number; relpages: number }>(
      'SELECT pg_relation_size(oid)::text AS bytes, reltuples, relpages FROM pg_class WHERE oid = $1', [table.oid]);
    pages = Math.ceil(Number(r.rows[0]!.bytes) / PAGE_BYTES);
    tuples = r.rows[0]!.reltuples;
    relpages = r.rows[0]!.relpages;
  }
  let rowsPerPage = tuples > 0 && relpages > 0 ? tuples / relpages : 0;
  if (rowsPerPage === 0 && pages > 0) {
    // Never analyzed (reltuples -1) or analyzed empty: estimate from the width of a few rows.
    const w = await db.query<{ width: number | null }>(
      `SELECT avg(pg_column_size(t.*))::float8 AS width FROM (SELECT * FROM ${qualifiedName(table.schema, table.name)} LIMIT 100) t`);
    const width = w.rows[0]?.width ?? 0;
    // A heap tuple's header and line pointer come on top of its data; pages are not full.
    rowsPerPage = width > 0 ? Math.max(1, Math.floor((PAGE_BYTES * 0.9) / (width + 28))) : 0;
  }
  return { pages, rowsPerPage, citus };
}

/** The row's place in the table, for the monotonicity of a column: its page over all pages. */
const POSITION = '(ctid::text::point)[0]';

/**
 * Samples `columns` of `table` and returns it in the shape of a file's sample (its header is
 * the column names), so column statistics and the planner take it unchanged.
 */
export async function sampleTable(db: pg.ClientBase, table: TableInfo, columns: readonly ColumnInfo[],
  options: TableSampleOptions = {}): Promise<FileSample> {
  const started = performance.now();
  const want = options.rows ?? DEFAULT_SAMPLE_ROWS;
  const seed = options.seed ?? 1;
  const timeoutMs = Math.round(options.timeoutMs ?? DEFAULT_TABLE_SAMPLE_TIMEOUT_MS);
  const name = `${table.schema}.${table.name}`;
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await db.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
    const size = await readTableSize(db, table);
    const plan = planTableSample(size, want);
    const clause = plan.method === 'whole' ? ''
      : ` TABLESAMPLE ${plan.method === 'system' ? 'SYSTEM' : 'BERNOULLI'} (${plan.percent.toPrecision(6)}) REPEATABLE (${Math.trunc(seed)})`;
    // A Citus table's rows have no single ctid order: no position, so no column looks monotonic.
    const position = size.citus ? 'NULL::float8' : `${POSITION}`;
    const list = columns.map((c) => `${quoteIdent(c.name)}::text`).join(', ');
    const sql = `SELECT ${position} AS "position", ${list} FROM ${qualifiedName(table.schema, table.name)}${clause}`;
    const rnd = seededRandom(`table-sample-${seed}`);
    const reservoir: SampledRow[] = [];
    let seen = 0;
    let bytes = 0;
    const stream = db.query(new QueryStream(sql, [], { batchSize: STREAM_BATCH_ROWS, rowMode: 'array' }));
    for await (const raw of stream) {
      const row = raw as (string | number | null)[];
      const fields = row.slice(1) as (string | null)[];
      for (const f of fields) bytes += (f?.length ?? 2) + 1;
      const page = row[0] as number | null;
      const s: SampledRow = { fields, position: page === null ? rnd() : size.pages > 1 ? Math.min(1, page / (size.pages - 1)) : 0 };
      // Algorithm R: row i replaces a random slot with probability want / (i + 1).
      if (reservoir.length < want) reservoir.push(s);
      else {
        const j = Math.floor(rnd() * (seen + 1));
        if (j < want) reservoir[j] = s;
      }
      seen++;
    }
    await db.query('COMMIT');
    const averageRowBytes = seen ? bytes / seen : 0;
    const estimatedRows = plan.method === 'whole' ? seen : Math.max(seen, plan.estimatedRows);
    return {
      source: `table ${name}`, header: columns.map((c) => c.name), rows: reservoir, method: plan.method,
      totalBytes: size.pages * PAGE_BYTES, estimatedRows, averageRowBytes, seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    const e = toDatabaseError(err, 'coordinator', `sampling table ${name} failed`);
    if (e.sqlState === '57014') {
      throw toDatabaseError(err, 'coordinator', `sampling table ${name} took longer than ${timeoutMs / 1000} s`);
    }
    throw e;
  }
}
