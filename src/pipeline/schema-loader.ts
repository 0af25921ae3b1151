/**
 * A whole application schema onto Citus in one job: resolve the sources (files named after their
 * tables, `table=file` pairs, directories; tables already holding rows are sources too), analyze
 * every table, build the schema's graph, plan the groups (plan/schema-planner.ts), change the
 * layout in the order Citus requires (plan/schema-changes.ts), load every file straight into its
 * shards with the one-table loader (pipeline/loader.ts) parents first, and verify row counts.
 *
 * Atomicity, honestly: each table's load is one atomic distributed transaction (the loader's
 * two-phase commit), or with commitEvery one per chunk; the schema load as a whole is not. One
 * cross-table 2PC is not possible here: the layout DDL (undistribute, create_distributed_table,
 * tenant isolation) and the foreign keys re-created between tables cannot run inside one open
 * distributed COPY transaction, and a child's rows need its parent's committed first. The tables
 * are committed in dependency order instead, grouped under one schema job
 * (store/schema-job-store.ts, the adaptive_load.schema_loads view) that is committed when every
 * table is loaded and verified. A failure stops the run with a report of what finished; a re-run
 * continues that schema job: layout steps already done are skipped (each is checked against the
 * catalog before it runs), foreign keys dropped and not yet re-created are kept in
 * adaptive_load.schema_pending_keys and re-created, a file whose load into its table was committed
 * (adaptive_load.load_jobs) is not loaded again, and a table whose chunked load was interrupted is
 * resumed after its last committed chunk. A run after success changes nothing.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { citusVersion, isSingleTenantShard, requireCitus } from '../catalog/catalog.js';
import { resolveConnectionConfig, type ConnectionConfig, type ConnectionInput } from '../connect/config.js';
import { connectCoordinator, endWithoutWaiting } from '../connect/coordinator.js';
import { ClusterStateError, describeError, InputFileError, InvalidConfigurationError, toDatabaseError } from '../errors.js';
import type { HeaderMode } from '../input/columns.js';
import { resolveCopyFormat, type CopyFormatInput } from '../input/copy-format.js';
import { inputSource } from '../input/input-source.js';
import { analyzeInput } from '../plan/analyze.js';
import { readSchemaGraph, type ForeignKey, type SchemaGraph, type TableSource } from '../plan/schema-graph.js';
import { displaySql, schemaChanges, type SchemaStep } from '../plan/schema-changes.js';
import { planSchema, type SchemaPlan } from '../plan/schema-planner.js';
import { committedLoad, forgetDroppedKey, pendingKeys, recordDroppedKey } from '../store/schema-store.js';
import { beginSchemaJob, finishSchemaJob, recordSchemaTable, recordSchemaTables, tableRowsBefore } from '../store/schema-job-store.js';
import { newestUnfinishedJob, readResumePoint } from '../store/chunk-store.js';
import { contentDifference, fingerprintFile } from '../input/fingerprint.js';
import { migrate } from '../store/migrate.js';
import type { LoadPhase } from '../load/load-events.js';
import { recoverAll } from '../load/recovery.js';
import { load, type LoadSummary } from './loader.js';

export interface SchemaLoadOptions extends CopyFormatInput {
  /** The schema whose tables are planned and loaded together. */
  schema: string;
  /** Sources: `file` (named after its table), `table=file`, or a directory of such files. */
  sources: string[];
  connection?: ConnectionInput;
  /** Whether line 1 of every file is a header. Default 'auto'. */
  header?: HeaderMode;
  sampleRows?: number;
  seed?: number;
  /**
   * Commit each table's load in chunks of this many rows (`500000`) or bytes (`256MB`), each its
   * own distributed transaction; a re-run resumes an interrupted table after its last chunk.
   */
  commitEvery?: number | string;
  onNotice?: (message: string) => void;
  /** Each table's load phases (the one-table loader's), for observers and tests. */
  onPhase?: (table: string, phase: LoadPhase) => void;
}

export interface SchemaSource {
  readonly table: string;
  readonly file: string;
  /**
   * The committed earlier load of this file into this table, if any; `changed` says how the file
   * differs from what that job loaded (a re-run does not load it again, and says so).
   */
  readonly loaded: { jobId: number; rows: number; changed?: string } | null;
  readonly estimatedRows: number;
}

export interface SchemaPlanReport {
  readonly plan: SchemaPlan;
  /** What would change now, in order (empty when the cluster matches the plan). */
  readonly steps: SchemaStep[];
  readonly sources: SchemaSource[];
  /** Each table's state today, for the reader. */
  readonly current: { table: string; state: string; rows: number }[];
  readonly seconds: number;
}

export interface TableLoadOutcome {
  readonly table: string;
  readonly file: string | null;
  /** 'resumed': an interrupted chunked load of this file was continued after its last committed chunk. */
  readonly status: 'loaded' | 'resumed' | 'already-loaded' | 'no-source' | 'failed' | 'not-reached';
  readonly rows: number;
  readonly jobId: number | null;
  readonly path: LoadSummary['path'] | null;
  readonly error?: string;
  readonly rowsBefore: number;
  readonly rowsAfter: number | null;
  /** rowsBefore plus the rows loaded now; the table must hold exactly these. */
  readonly expectedRows: number;
  readonly verified: boolean;
}

export interface SchemaLoadSummary extends SchemaPlanReport {
  readonly applied: { step: SchemaStep; status: 'done' | 'skipped'; note?: string }[];
  readonly tables: TableLoadOutcome[];
  readonly atomicity: 'per-table';
  /** The schema job (adaptive_load.schema_loads) this run belongs to. */
  readonly schemaJobId: number;
  /** Set when this run continued a schema job an earlier run left unfinished. */
  readonly continued: { runs: number; tables: string[] } | null;
  readonly ok: boolean;
  readonly error?: string;
  readonly loadSeconds: number;
}

const SOURCE_EXTENSIONS = /(\.(csv|tsv|txt|tbl|dat))?(\.gz)?$/i;

/** Maps every source argument to a table of the schema (by the unqualified table name). */
export function resolveSchemaSources(args: readonly string[], tables: ReadonlyMap<string, string>, notice: (m: string) => void): Map<string, string> {
  const out = new Map<string, string>();
  const add = (table: string, file: string, from: string) => {
    const qualified = tables.get(table);
    if (!qualified) throw new InvalidConfigurationError(`${from}: the schema has no table ${table} (tables: ${[...tables.keys()].join(', ')})`);
    const prior = out.get(qualified);
    if (prior && prior !== file) throw new InvalidConfigurationError(`two sources for ${table}: ${prior} and ${file}; give one file per table`);
    out.set(qualified, file);
  };
  const tableOf = (file: string) => basename(file).replace(SOURCE_EXTENSIONS, '');
  for (const arg of args) {
    const eq = arg.indexOf('=');
    // table=file, unless the whole argument names a file (a file name may hold '=').
    if (eq > 0 && (tables.has(arg.slice(0, eq)) || !existsSync(arg))) {
      add(arg.slice(0, eq), resolve(arg.slice(eq + 1)), arg);
      continue;
    }
    let st;
    try {
      st = statSync(arg);
    } catch {
      throw new InputFileError(`${arg}: no such file or directory`);
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(arg).sort()) {
        const path = join(arg, name);
        if (!statSync(path).isFile()) continue;
        if (tables.has(tableOf(name))) add(tableOf(name), resolve(path), path);
        else notice(`${path}: no table ${tableOf(name)} in the schema; not loaded`);
      }
    } else {
      add(tableOf(arg), resolve(arg), arg);
    }
  }
  return out;
}

/** The forms a load job may have recorded the file under: as given, absolute, relative to here. */
const sourceNames = (file: string) => [...new Set([file, resolve(file), relative(process.cwd(), resolve(file))])];

interface Prepared {
  graph: SchemaGraph;
  report: SchemaPlanReport;
}

async function prepare(db: pg.Client, options: SchemaLoadOptions, notice: (m: string) => void): Promise<Prepared> {
  const started = performance.now();
  await requireCitus(db, 'planning a schema for Citus');
  const format = resolveCopyFormat(options);
  const rels = await db.query<{ name: string; qualified: string; job: string }>(
    `SELECT c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qualified, n.nspname || '.' || c.relname AS job
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`, [options.schema]);
  if (rels.rowCount === 0) {
    const exists = await db.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [options.schema]);
    throw new InvalidConfigurationError(exists.rowCount ? `schema ${options.schema} has no tables: create the application's tables first`
      : `schema ${options.schema} does not exist`);
  }
  const byName = new Map(rels.rows.map((r) => [r.name, r.qualified]));
  const jobName = new Map(rels.rows.map((r) => [r.qualified, r.job]));
  const files = resolveSchemaSources(options.sources, byName, notice);
  const sources = new Map<string, TableSource>();
  const sourceList: SchemaSource[] = [];
  for (const [table, file] of files) {
    const cols = await db.query<{ name: string; type: string }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [table]);
    const analysis = await analyzeInput(inputSource(file), format, {
      header: options.header ?? 'auto', existingColumns: cols.rows,
      ...(options.sampleRows ? { rows: options.sampleRows } : {}), ...(options.seed !== undefined ? { seed: options.seed } : {}),
    });
    const committed = await committedLoad(db, jobName.get(table)!, sourceNames(file));
    const changed = committed?.fingerprint ? contentDifference(committed.fingerprint, fingerprintFile(file)) : undefined;
    const loaded = committed ? { jobId: committed.jobId, rows: committed.rows, ...(changed ? { changed } : {}) } : null;
    // A changed file is rows to load, not rows the table holds already: it is planned by its size.
    sources.set(table, { analysis, alreadyLoaded: loaded !== null && !changed });
    sourceList.push({ table, file, loaded, estimatedRows: analysis.sample.estimatedRows });
  }
  const pending: ForeignKey[] = (await pendingKeys(db, options.schema)).map((k) => ({
    name: k.name, table: k.table, columns: k.columns, refTable: k.refTable, refColumns: k.refColumns, evidence: 'declared', definition: k.definition, pending: true,
  }));
  const graph = await readSchemaGraph(db, options.schema, sources, true, pending);
  const defaultShardCount = Number((await db.query<{ n: string }>("SELECT current_setting('citus.shard_count') AS n")).rows[0]!.n);
  const nodeCount = Number((await db.query<{ n: string }>(
    "SELECT count(*)::text AS n FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND shouldhaveshards")).rows[0]!.n);
  const plan = planSchema({ graph, defaultShardCount, nodeCount });
  const isolated = await isolatedTenants(db, graph, plan);
  const steps = schemaChanges(graph, plan, isolated);
  const current = graph.tables.map((t) => ({ table: t.name, state: t.citus.kind === 'hash' ? `hash(${t.citus.column}) x${t.citus.shardCount}` : t.citus.kind, rows: t.existingRows }));
  return { graph, report: { plan, steps, sources: sourceList, current, seconds: (performance.now() - started) / 1000 } };
}

/** `root\0value` for every planned heavy tenant that already has a shard of its own. */
async function isolatedTenants(db: pg.Client, graph: SchemaGraph, plan: SchemaPlan): Promise<Set<string>> {
  const out = new Set<string>();
  for (const g of plan.groups) {
    const root = graph.tables.find((t) => t.name === g.root);
    if (root?.citus.kind !== 'hash' || root.citus.column !== g.column) continue;
    for (const t of g.isolate) {
      const r = await db.query<{ s: string | null }>('SELECT get_shard_id_for_distribution_column($1, $2::text)::text AS s', [g.root, t.value])
        .catch(() => ({ rows: [{ s: null }] }));
      const shard = r.rows[0]?.s;
      if (shard && await isSingleTenantShard(db, shard)) out.add(`${g.root}\u0000${t.value}`);
    }
  }
  return out;
}

async function withSession<T>(conn: ConnectionConfig, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = await connectCoordinator(conn, 'citus-adaptive-load schema', conn.timeouts);
  try {
    await migrate(db);
    if (!(await citusVersion(db))) throw new ClusterStateError('plan --schema and load --schema need the citus extension on the coordinator');
    return await fn(db);
  } finally {
    endWithoutWaiting(db);
  }
}

/** Plans the whole schema and lists the changes it would make. Changes nothing. */
export async function planSchemaLoad(options: SchemaLoadOptions): Promise<SchemaPlanReport> {
  const conn = resolveConnectionConfig(options.connection ?? {});
  return withSession(conn, async (db) => (await prepare(db, options, options.onNotice ?? (() => {}))).report);
}

/** Runs one layout step, unless the catalog shows it done already (a re-run after a failure). */
async function runStep(db: pg.Client, schema: string, step: SchemaStep, graph: SchemaGraph): Promise<{ status: 'done' | 'skipped'; note?: string }> {
  const exec = async (sql: string, params: unknown[]) => {
    try {
      await db.query(sql, params);
    } catch (err) {
      throw toDatabaseError(err, 'coordinator', `changing the layout failed at: ${displaySql(step)}`);
    }
  };
  const fkExists = async () => ((await db.query(
    "SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'f'", [step.table, step.foreignKey!.name])).rowCount ?? 0) > 0;
  const distributed = async () => ((await db.query('SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass', [step.table])).rowCount ?? 0) > 0;
  switch (step.kind) {
    case 'drop-foreign-key': {
      if (!(await fkExists())) return { status: 'skipped', note: 'already dropped' };
      const fk = graph.foreignKeys.find((f) => f.table === step.table && f.name === step.foreignKey!.name);
      if (fk && step.recreate) {
        await recordDroppedKey(db, schema, { table: fk.table, name: fk.name, columns: fk.columns, refTable: fk.refTable, refColumns: fk.refColumns, definition: fk.definition ?? '' });
      }
      await exec(step.sql, step.params);
      return { status: 'done' };
    }
    case 'undistribute':
      // Citus undistributes a table it converted itself once its last foreign key to a reference table is gone.
      if (!(await distributed())) return { status: 'skipped', note: 'Citus turned it back into a local table when its foreign keys were dropped' };
      await exec(step.sql, step.params);
      return { status: 'done' };
    case 'create-reference':
    case 'distribute':
      if (await distributed()) return { status: 'skipped', note: 'already laid out' };
      await exec(step.sql, step.params);
      return { status: 'done' };
    case 'isolate-tenant':
      await exec(step.sql, step.params);
      return { status: 'done' };
    case 'add-foreign-key':
      if (!(await fkExists())) await exec(step.sql, step.params);
      await forgetDroppedKey(db, step.table, step.foreignKey!.name);
      return { status: 'done' };
  }
}

async function countRows(db: pg.Client, table: string): Promise<number> {
  return Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]!.n);
}

/**
 * Plans, lays out and loads the whole schema; never throws for a table's failed load (the
 * summary says which table failed, what finished and what was not reached), only for what stops
 * everything before loading starts.
 */
export async function loadSchema(options: SchemaLoadOptions): Promise<SchemaLoadSummary> {
  const conn = resolveConnectionConfig(options.connection ?? {});
  const notice = options.onNotice ?? (() => {});
  return withSession(conn, async (db) => {
    const lock = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`adaptive_load schema load ${options.schema}`]);
    if (!lock.rows[0]!.ok) throw new ClusterStateError(`another load --schema ${options.schema} is running; wait for it to finish`);
    const { graph, report } = await prepare(db, options, notice);
    const files = new Map(report.sources.map((s) => [s.table, s]));
    // Under the schema's lock: an unfinished schema job found now was left by a run that failed or died.
    const job = await beginSchemaJob(db, options.schema);
    if (job.continued) notice(`continuing schema job ${job.schemaJobId} (run ${job.runs})`);
    await recordSchemaTables(db, job.schemaJobId, report.plan.tables.map((p) => ({ table: p.table, source: files.get(p.table)?.file ?? null })));
    try {
      const summary = await applyAndLoad(db, conn, options, graph, report, job.schemaJobId, files, notice);
      const continued = job.continued
        ? { runs: job.runs, tables: summary.tables.filter((t) => !job.doneBefore.has(t.table) && t.status !== 'not-reached').map((t) => t.table) }
        : null;
      await finishSchemaJob(db, job.schemaJobId, summary.error);
      return { ...summary, schemaJobId: job.schemaJobId, continued };
    } catch (err) {
      await finishSchemaJob(db, job.schemaJobId, describeError(err)).catch(() => {});
      throw err;
    } finally {
      await db.query('SELECT pg_advisory_unlock(hashtext($1))', [`adaptive_load schema load ${options.schema}`]).catch(() => {});
    }
  });
}

/** The unfinished chunked load of this file into this table that a re-run resumes, if any. */
async function interruptedChunkedLoad(db: pg.Client, conn: ConnectionConfig, table: string, file: string)
  : Promise<{ jobId: number; commitEvery: string; rowsDone: number } | undefined> {
  const job = await newestUnfinishedJob(db, table, resolve(file));
  if (!job || (job.chunkRows === undefined && job.chunkBytes === undefined)) return undefined;
  // A chunk the dead run prepared after its manifest row is committed by recovery first, so the
  // table's count and the manifest's rows agree below (the loader's own recovery finds nothing then).
  await recoverAll(db, conn);
  // The interrupted job's own chunk size, so its chunks line up whatever this run was given.
  const commitEvery = job.chunkRows !== undefined ? String(job.chunkRows) : `${job.chunkBytes}B`;
  return { jobId: job.jobId, commitEvery, rowsDone: (await readResumePoint(db, job.jobId)).rows };
}

async function applyAndLoad(db: pg.Client, conn: ConnectionConfig, options: SchemaLoadOptions, graph: SchemaGraph, report: SchemaPlanReport,
  schemaJobId: number, files: Map<string, SchemaSource>, notice: (m: string) => void)
  : Promise<Omit<SchemaLoadSummary, 'schemaJobId' | 'continued'>> {
  const applied: SchemaLoadSummary['applied'] = [];
  for (const step of report.steps) {
    applied.push({ step, ...(await runStep(db, options.schema, step, graph)) });
  }
  const loadStarted = performance.now();
  const before = new Map(graph.tables.map((t) => [t.name, t.existingRows]));
  const tables: TableLoadOutcome[] = [];
  let error: string | undefined;
  for (const p of report.plan.tables) {
    const src = files.get(p.table);
    const rowsBefore = before.get(p.table) ?? 0;
    const base = { table: p.table, file: src?.file ?? null, rowsBefore };
    if (error !== undefined) {
      tables.push({ ...base, status: 'not-reached', rows: 0, jobId: null, path: null, rowsAfter: null, expectedRows: rowsBefore, verified: false });
      await recordSchemaTable(db, schemaJobId, p.table, { status: 'not-reached', jobId: null, rows: 0 });
      continue;
    }
    let outcome: Omit<TableLoadOutcome, 'rowsAfter' | 'verified'>;
    if (!src) {
      outcome = { ...base, status: 'no-source', rows: 0, jobId: null, path: null, expectedRows: rowsBefore };
    } else if (src.loaded?.changed && await countRows(db, p.table) > 0) {
      // Loading it again would add its rows to the ones job N loaded: the user must say which they want.
      error = `${p.table}: ${src.file} changed since load job ${src.loaded.jobId} loaded it (${src.loaded.changed}); a schema load `
        + 'loads a file once. To replace the table\'s rows with the new file\'s, empty the table (TRUNCATE) and run again; '
        + 'to add them, load the file with --table';
      outcome = { ...base, status: 'failed', rows: 0, jobId: src.loaded.jobId, path: null, error, expectedRows: rowsBefore };
    } else if (src.loaded && !src.loaded.changed) {
      outcome = { ...base, status: 'already-loaded', rows: src.loaded.rows, jobId: src.loaded.jobId, path: null, expectedRows: rowsBefore };
    } else {
      const interrupted = await interruptedChunkedLoad(db, conn, p.table, src.file);
      // The rows the table held before this schema job first loaded it: with a resumed job's
      // chunks already in the table, that (not today's count) plus the job's rows is the target.
      // Recorded by the run that started the table; else the count now less the job's chunks.
      const rowsBeforeJob = await tableRowsBefore(db, schemaJobId, p.table,
        interrupted ? await countRows(db, p.table) - interrupted.rowsDone : rowsBefore);
      if (interrupted) notice(`${p.table}: resuming the interrupted chunked load job ${interrupted.jobId} after ${interrupted.rowsDone} committed row(s)`);
      const commitEvery = interrupted?.commitEvery ?? options.commitEvery;
      try {
        const s = await load({
          ...options, file: src.file, table: p.table, resolvedConnection: conn, header: options.header ?? 'auto',
          ...(options.sampleRows ? { sampleRows: options.sampleRows } : {}), onNotice: (m) => notice(`${p.table}: ${m}`),
          ...(commitEvery !== undefined ? { commitEvery } : {}), ...(interrupted ? { resume: interrupted.jobId } : {}),
          onPhase: options.onPhase ? (phase) => options.onPhase!(p.table, phase) : undefined,
        });
        outcome = { ...base, status: interrupted ? 'resumed' : 'loaded', rows: s.rows, jobId: s.jobId, path: s.path, expectedRows: rowsBeforeJob + s.rows };
      } catch (err) {
        error = `${p.table}: ${describeError(err)}`;
        outcome = { ...base, status: 'failed', rows: 0, jobId: interrupted?.jobId ?? null, path: null, error: describeError(err), expectedRows: rowsBefore };
      }
    }
    const rowsAfter = await countRows(db, p.table);
    tables.push({ ...outcome, rowsAfter, verified: rowsAfter === outcome.expectedRows });
    await recordSchemaTable(db, schemaJobId, p.table, { status: outcome.status, jobId: outcome.jobId, rows: outcome.rows, ...(outcome.error ? { error: outcome.error } : {}) });
  }
  const mismatched = tables.filter((t) => t.rowsAfter !== null && !t.verified);
  if (!error && mismatched.length) {
    error = `row counts differ from the sources: ${mismatched.map((t) => `${t.table} holds ${t.rowsAfter}, expected ${t.expectedRows}`).join('; ')}`;
  }
  return {
    ...report, applied, tables, atomicity: 'per-table', ok: error === undefined,
    ...(error !== undefined ? { error } : {}), loadSeconds: (performance.now() - loadStarted) / 1000,
  };
}
