/**
 * The public API of citus-adaptive-load: `import { load, plan, analyze, ... } from 'citus-adaptive-load'`.
 *
 * One function per thing the CLI does, each taking one options object with the connection in it
 * (the same `ConnectionInput` the CLI builds from --coordinator, --node-map, --config and the
 * PG* environment). Each opens its own coordinator session and closes it, so a caller needs no
 * pg client of its own. Failures are thrown as the error classes exported below
 * (`InvalidConfigurationError` for options that cannot work, before anything connects).
 *
 * This file is the only module outside src/cli allowed to import from every stage
 * (.dependency-cruiser.cjs); nothing inside src imports it.
 */
import { readTable } from './catalog/catalog.js';
import { resolveConnectionConfig, type ConnectionInput } from './connect/config.js';
import { connectCoordinator, endWithoutWaiting } from './connect/coordinator.js';
import { resolveCopyFormat, type CopyFormatInput } from './input/copy-format.js';
import { inputSource } from './input/input-source.js';
import { analyzeInput, describeSample, planForInput, type InputAnalysis, type PlanResult } from './plan/analyze.js';
import { sampleTable } from './plan/table-sampler.js';
import type { SampleOptions } from './plan/file-sampler.js';
import { migrate as migrateSchema } from './store/migrate.js';
import type { RecoveryResult } from './load/distributed-commit.js';
import { recoverAll } from './load/recovery.js';
import { monitorOnce, type MonitorOptions, type MonitorResult } from './monitor/monitor.js';
import { collectReport, type ReportData } from './report/report-data.js';
import { renderHtml } from './report/render-html.js';
import { renderMarkdown } from './report/render-markdown.js';
import { renderText } from './report/render-text.js';
import { InvalidConfigurationError } from './errors.js';

// --- load ---------------------------------------------------------------------------------

export { load } from './pipeline/loader.js';
export type { LoadOptions, LoadProgress, LoadSummary } from './pipeline/loader.js';
export type { ChunkSummary } from './pipeline/loader.js';
/** Load options as plain JSON (a request, a config), checked by the schema the CLI and SQL requests use. */
export { toLoadOptions, validateLoadOptions, validateLocalLoadOptions } from './pipeline/options-schema.js';
export type { LoadOptionValues, LocalLoadOptionValues } from './pipeline/options-schema.js';
export { CommitOutcomeUnknownError } from './pipeline/loader.js';
/** A load from a table: `load({ table, fromTable, then })`; `then` says what becomes of it. */
export type { StagingThen } from './load/staging-fate.js';

// --- shared option types ------------------------------------------------------------------

export type { ConnectionInput, NodeAddress, Timeouts } from './connect/config.js';
export type { CopyFormatInput } from './input/copy-format.js';
export type { HeaderMode } from './input/columns.js';
export type { SampleOptions } from './plan/file-sampler.js';

/** Where to connect: what the CLI's --coordinator, --node-map, --config and timeouts give. */
export interface ConnectionOptions {
  connection?: ConnectionInput;
}

/** Opens a coordinator session for one call and always closes it. */
async function withCoordinator<T>(options: ConnectionOptions, fn: (db: Awaited<ReturnType<typeof connectCoordinator>>) => Promise<T>): Promise<T> {
  const conn = resolveConnectionConfig(options.connection ?? {});
  const db = await connectCoordinator(conn);
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => {});
  }
}

// --- analyze a table: a TABLESAMPLE of it, bounded in time whatever its size ---------------

/** Samples table `table` (plan/table-sampler.ts) and describes every column, as analyze() does a file's. */
export async function analyzeTable(table: string, options: SampleOptions & ConnectionOptions = {}): Promise<InputAnalysis> {
  return withCoordinator(options, async (db) => {
    const t = await readTable(db, table);
    const sample = await sampleTable(db, t, t.columns, {
      ...(options.rows !== undefined ? { rows: options.rows } : {}), ...(options.seed !== undefined ? { seed: options.seed } : {}),
    });
    return describeSample(sample, t.columns.map((c) => ({ name: c.name, type: c.displayType })));
  });
}

// --- analyze: the input file alone, no database ------------------------------------------

export type { InputAnalysis } from './plan/analyze.js';
export type { ColumnStats, HeavyHitter, InferredType } from './plan/column-stats.js';
export type { FileSample, SampledRow } from './plan/file-sampler.js';

export interface AnalyzeOptions extends CopyFormatInput, SampleOptions {}

/** Samples `file` (a path, `-` for stdin, `.gz` decompressed) and describes every column. */
export async function analyze(file: string, options: AnalyzeOptions = {}): Promise<InputAnalysis> {
  const format = resolveCopyFormat(options);
  return analyzeInput(inputSource(file), format, sampleOptionsOf(options));
}

function sampleOptionsOf(o: SampleOptions): SampleOptions {
  return {
    ...(o.rows !== undefined ? { rows: o.rows } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.header !== undefined ? { header: o.header } : {}),
  };
}

// --- plan: the sharding profile for loading a file into a table; changes nothing ----------

export type { PlanResult } from './plan/analyze.js';
export type { Candidate, PlannedShard, ShardingProfile } from './plan/sharding-profile.js';

export interface PlanOptions extends ConnectionOptions, CopyFormatInput, SampleOptions {
  /** The table the file would be loaded into (it may not exist yet). */
  table: string;
  /** Distribute by this column; the profile decides the rest. */
  distributionColumn?: string;
  shardCount?: number;
  /** Choose only among columns every unique key already includes. */
  keepKeys?: boolean;
}

/**
 * Reads the cluster (tables, keys, layouts, query history), samples `file` and plans the table's
 * sharding profile, as `citus-adaptive-load plan` does. Installs the metadata schema if missing
 * (the plan reads stored profiles and load history), but changes no table.
 */
export async function plan(file: string, options: PlanOptions): Promise<PlanResult> {
  const format = resolveCopyFormat(options);
  if (options.shardCount !== undefined && !(Number.isInteger(options.shardCount) && options.shardCount >= 1)) {
    throw new InvalidConfigurationError(`shardCount must be an integer >= 1, got ${options.shardCount}`);
  }
  const source = inputSource(file);
  return withCoordinator(options, async (db) => {
    await migrateSchema(db);
    return planForInput(db, source, format, {
      table: options.table,
      ...sampleOptionsOf(options),
      ...(options.distributionColumn ? { distributionColumn: options.distributionColumn } : {}),
      ...(options.shardCount ? { shardCount: options.shardCount } : {}),
      ...(options.keepKeys ? { keepKeys: true } : {}),
    });
  });
}

// --- a whole schema: plan the group, lay it out in dependency order, load every file ---------

export { loadSchema, planSchemaLoad } from './pipeline/schema-loader.js';
export type { SchemaLoadOptions, SchemaLoadSummary, SchemaPlanReport, SchemaSource, TableLoadOutcome } from './pipeline/schema-loader.js';
export type { ForeignKeyPlan, GroupPlan, SchemaPlan, TablePlan } from './plan/schema-planner.js';
export type { SchemaStep, SchemaStepKind } from './plan/schema-changes.js';

// --- monitor: one feedback cycle -----------------------------------------------------------

export type { Advice, Hotspot, MonitorOptions, MonitorResult, NodeComparison, ShardComparison } from './monitor/monitor.js';

/** One monitoring window, as `citus-adaptive-load monitor --once` (with `rebalance`, it may move shards). */
export async function monitor(options: ConnectionOptions & MonitorOptions = {}): Promise<MonitorResult> {
  const conn = resolveConnectionConfig(options.connection ?? {});
  return withCoordinator(options, async (db) => {
    await migrateSchema(db);
    return monitorOnce(db, conn, {
      ...(options.rebalance !== undefined ? { rebalance: options.rebalance } : {}),
      ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    });
  });
}

// --- report --------------------------------------------------------------------------------

export type { NodeHealth, ReportData, TableReport } from './report/report-data.js';
export { renderHtml, renderMarkdown, renderText };

const REPORT_FORMATS = ['text', 'markdown', 'html', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportOptions extends ConnectionOptions {
  /** Only this table. */
  table?: string;
}

/** Gathers the DBA report's data (layouts, loads, monitoring windows, actions, advice). */
export async function collect(options: ReportOptions = {}): Promise<ReportData> {
  return withCoordinator(options, async (db) => {
    await migrateSchema(db);
    return collectReport(db, options.table);
  });
}

/** The report's data as text, Markdown, a self-contained HTML page or JSON. */
export function render(data: ReportData, format: ReportFormat = 'text'): string {
  switch (format) {
    case 'text': return renderText(data);
    case 'markdown': return renderMarkdown(data);
    case 'html': return renderHtml(data);
    case 'json': return `${JSON.stringify(data, null, 2)}\n`;
    default:
      checkReportFormat(format);
      throw new Error('unreachable: checkReportFormat accepted an unknown format');
  }
}

/** Callers from plain JavaScript can pass any string as a format. */
function checkReportFormat(format: string): void {
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) {
    throw new InvalidConfigurationError(`report format must be ${REPORT_FORMATS.join(', ')}, not ${JSON.stringify(format)}`);
  }
}

/** collect + render in one call. */
export async function report(options: ReportOptions & { format?: ReportFormat } = {}): Promise<string> {
  const format = options.format ?? 'text';
  // A wrong format fails before connecting, not after the report was gathered.
  checkReportFormat(format);
  return render(await collect(options), format);
}

// --- recover, migrate ----------------------------------------------------------------------

export type { RecoveryResult } from './load/distributed-commit.js';

/**
 * Finishes what crashed loads left prepared on every node: commit where the commit record
 * exists, roll back where it does not and no live load holds the job.
 */
export async function recover(options: ConnectionOptions = {}): Promise<RecoveryResult> {
  const conn = resolveConnectionConfig(options.connection ?? {});
  // Every statement bounded, and the session let go without waiting: a coordinator that stops
  // answering fails recovery within the timeouts instead of holding it up.
  const db = await connectCoordinator(conn, 'citus-adaptive-load recovery', conn.timeouts);
  try {
    await migrateSchema(db);
    return await recoverAll(db, conn);
  } finally {
    endWithoutWaiting(db);
  }
}

/** Installs or upgrades the adaptive_load schema (tables, SQL functions, views); returns the migrations applied. */
export async function migrate(options: ConnectionOptions & { log?: (message: string) => void } = {}): Promise<string[]> {
  return withCoordinator(options, (db) => migrateSchema(db, options.log));
}

// --- errors --------------------------------------------------------------------------------

export {
  AdaptiveLoadError, BadInputError, CheckViolationError, ClusterStateError, ConnectionLostError, DatabaseError,
  ForeignKeyViolationError, InputFileError, InvalidConfigurationError, InvalidTextRepresentationError,
  NotNullViolationError, QueryCanceledError, RetryableTransactionError, TargetTableError, TimeoutError,
  UniqueViolationError,
} from './errors.js';
export type { InputPosition } from './errors.js';
