import type pg from 'pg';
import { connectCoordinator, endWithoutWaiting } from '../connect/coordinator.js';
import { resolveConnectionConfig, type ConnectionInput } from '../connect/config.js';
import { parseQualifiedName } from '../connect/qualified-name.js';
import { InvalidConfigurationError } from '../errors.js';
import { parseColumnList } from '../input/columns.js';
import { load, type LoadSummary } from '../pipeline/loader.js';
import { recoverAll } from '../load/recovery.js';
import { toLoadOptions, validateLocalLoadOptions, type LocalLoadOptionValues } from '../pipeline/options-schema.js';
import { reportFailure } from './format-error.js';
import { migrate } from '../store/migrate.js';
import type { ProgressDisplay } from './progress.js';

export interface CommonFlags {
  coordinator?: string;
  nodeMap?: string[];
  config?: string;
  json?: boolean;
  connectTimeout?: number;
  statementTimeout?: number;
  lockTimeout?: number;
}

export interface LoadFlags extends CommonFlags {
  table: string;
  format: 'csv' | 'text';
  delimiter?: string;
  quote?: string;
  escape?: string;
  null?: string;
  encoding?: string;
  header?: boolean;
  columns?: string;
  distributionColumn?: string;
  shardCount?: number;
  maxErrors?: number;
  rejects?: string;
  maxRowBytes?: number;
  connectionsPerNode?: number;
  batchSize?: number;
  viaCoordinator?: boolean;
  quiet?: boolean;
  profile?: string;
  saveProfile?: string;
  keepKeys?: boolean;
  recheckLayout?: boolean;
  expectedRows?: number;
  isolateTenants?: boolean;
  sampleRows?: number;
  seed?: number;
  fromTable?: string;
  then?: 'keep' | 'truncate' | 'drop';
  commitEvery?: string;
  resume?: boolean | string;
  restart?: boolean;
}

export function connectionInput(flags: CommonFlags): ConnectionInput {
  return {
    coordinator: flags.coordinator, nodeMap: flags.nodeMap, configFile: flags.config,
    connectTimeout: flags.connectTimeout, statementTimeout: flags.statementTimeout, lockTimeout: flags.lockTimeout,
  };
}

/** Every handler's failure (see reportFailure). */
export function fail(flags: { json?: boolean }, err: unknown): void {
  reportFailure(flags.json === true, err);
}

/**
 * The load's flags as option values, checked by the same schema as a request's options (so a
 * bad value fails before connecting, exit 2, with the flag named). Only the flags' names and
 * shapes are translated here: --batch-size is batchBytes, --columns a list, --rejects a file.
 */
export function loadOptionValues(flags: LoadFlags): LocalLoadOptionValues {
  return validateLocalLoadOptions({
    format: flags.format, delimiter: flags.delimiter, quote: flags.quote, escape: flags.escape, null: flags.null,
    encoding: flags.encoding, header: flags.header,
    columns: flags.columns === undefined ? undefined : parseColumnList(flags.columns),
    distributionColumn: flags.distributionColumn, shardCount: flags.shardCount, keepKeys: flags.keepKeys,
    recheckLayout: flags.recheckLayout, sampleRows: flags.sampleRows, seed: flags.seed, maxErrors: flags.maxErrors,
    connectionsPerNode: flags.connectionsPerNode, batchBytes: flags.batchSize, viaCoordinator: flags.viaCoordinator,
    maxRowBytes: flags.maxRowBytes, rejectsFile: flags.rejects, profileFile: flags.profile, saveProfile: flags.saveProfile,
    fromTable: flags.fromTable, then: flags.then,
    commitEvery: flags.commitEvery,
    resume: typeof flags.resume === 'string' && /^\d+$/.test(flags.resume) ? Number(flags.resume) : flags.resume,
    restart: flags.restart, expectedRows: flags.expectedRows, isolateTenants: flags.isolateTenants,
  });
}

/** Checks of the load's command line that need no database, so they fail before connecting (exit 2). */
function checkLoadFlags(file: string | undefined, flags: LoadFlags): LocalLoadOptionValues {
  parseQualifiedName(flags.table);
  if ((file === undefined) === (flags.fromTable === undefined)) {
    throw new InvalidConfigurationError(file === undefined ? 'give an input file, or a table to load from with --from-table'
      : `give an input file or --from-table, not both (got ${JSON.stringify(file)} and --from-table ${JSON.stringify(flags.fromTable)})`);
  }
  if (flags.fromTable !== undefined) parseQualifiedName(flags.fromTable, '--from-table');
  const values = loadOptionValues(flags);
  // Between two options, so not in the schema: its message says what to do about it.
  if (values.rejectsFile !== undefined && !(values.maxErrors !== undefined && values.maxErrors > 0)) {
    throw new InvalidConfigurationError('--rejects needs --max-errors N (N >= 1): without it the first bad row fails the load '
      + 'and no row is set aside; add --max-errors, or leave out --rejects');
  }
  return values;
}

export async function runLoad(file: string | undefined, flags: LoadFlags): Promise<void> {
  const showProgress = !flags.quiet && process.stderr.isTTY === true;
  const progress: ProgressDisplay | undefined = showProgress ? new (await import('./progress.js')).ProgressDisplay() : undefined;
  try {
    const values = checkLoadFlags(file, flags);
    const summary = await load({
      ...toLoadOptions(values),
      table: flags.table,
      ...(file !== undefined ? { file } : {}),
      connection: connectionInput(flags),
      onProgress: progress ? (p) => progress.update(p) : undefined,
      onNotice: flags.quiet || flags.json ? undefined : (m) => { progress?.clear(); process.stderr.write(`note: ${m}\n`); },
    });
    progress?.stop();
    process.stdout.write(flags.json ? `${JSON.stringify(jsonSummary(summary))}\n` : textSummary(summary));
  } catch (err) {
    progress?.stop();
    fail(flags, err);
  }
}

function jsonSummary(s: LoadSummary): Record<string, unknown> {
  return {
    table: s.table, path: s.path, ...(s.reason ? { reason: s.reason } : {}), rows: s.rows, rejected: s.rejected,
    seconds: Number(s.seconds.toFixed(3)), rowsPerSecond: s.rowsPerSecond, shards: s.shards, nodes: s.nodes, jobId: s.jobId,
    source: s.source, header: s.header, serverResolvedRows: s.serverResolvedRows, fastPathRows: s.fastPathRows,
    ...(s.profile ? { profile: { kind: s.profile.kind, distributionColumn: s.profile.distributionColumn, shardCount: s.profile.shardCount,
      colocateWith: s.profile.colocateWith, isolate: s.profile.isolate, reasons: s.profile.reasons } } : {}),
    ...(s.unfinishedCommits ? { unfinishedCommits: s.unfinishedCommits } : {}),
    ...(s.staging ? { staging: s.staging } : {}),
    ...(s.chunks ? { chunks: s.chunks } : {}),
  };
}

function textSummary(s: LoadSummary): string {
  const lines = [
    `loaded ${s.rows.toLocaleString('en-US')} rows into ${s.table} in ${s.seconds.toFixed(2)} s `
      + `(${s.rowsPerSecond.toLocaleString('en-US')} rows/s), job ${s.jobId}`,
    s.path === 'direct'
      ? `path: direct to ${s.shards} shards on ${s.nodes.length} node(s)`
      : `path: through the coordinator (${s.reason})`,
  ];
  for (const n of s.nodes) lines.push(`  ${n.node.padEnd(24)} ${String(n.rows).padStart(12)} rows ${formatBytes(n.bytes).padStart(10)}`);
  if (s.rejected) lines.push(`rejected: ${s.rejected} row(s)`);
  if (s.staging) lines.push(`staging table: ${s.staging.outcome}`);
  if (s.chunks) {
    lines.push(`chunks: ${s.chunks.done} committed (${s.chunks.thisRun} by this run, ${s.chunks.rowsThisRun.toLocaleString('en-US')} rows), `
      + `${s.chunks.left} left${s.chunks.resumedFrom ? `; resumed at chunk ${s.chunks.resumedFrom.chunk}, byte ${s.chunks.resumedFrom.offset}` : ''}`);
  }
  if (s.serverResolvedRows) lines.push(`${s.serverResolvedRows} row(s) routed by PostgreSQL (values the client could not canonicalize)`);
  for (const u of s.unfinishedCommits ?? []) lines.push(`warning: COMMIT PREPARED did not finish on ${u.node} (${u.error}); run citus-adaptive-load recover`);
  return `${lines.join('\n')}\n`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export async function withCoordinator<T>(flags: CommonFlags, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectCoordinator(resolveConnectionConfig(connectionInput(flags)));
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function runMigrate(flags: CommonFlags): Promise<void> {
  try {
    const applied = await withCoordinator(flags, (c) => migrate(c));
    process.stdout.write(flags.json ? `${JSON.stringify({ applied })}\n`
      : applied.length ? `applied: ${applied.join(', ')}\n` : 'the adaptive_load schema is up to date\n');
  } catch (err) {
    fail(flags, err);
  }
}

export async function runRecover(flags: CommonFlags): Promise<void> {
  try {
    const conn = resolveConnectionConfig(connectionInput(flags));
    // Every statement bounded, and the session let go without waiting: a coordinator that stops
    // answering fails recovery within the timeouts instead of holding it up.
    const c = await connectCoordinator(conn, 'citus-adaptive-load recovery', conn.timeouts);
    const result = await (async () => {
      await migrate(c);
      return recoverAll(c, conn);
    })().finally(() => endWithoutWaiting(c));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      process.stdout.write(`committed ${result.committed.length}, rolled back ${result.rolledBack.length}, `
        + `still in progress ${result.inProgress.length} prepared transaction(s)\n`);
      for (const u of result.unreachable) process.stdout.write(`unreachable: ${u.node}: ${u.error}\n`);
    }
    if (result.unreachable.length) process.exitCode = 1;
  } catch (err) {
    fail(flags, err);
  }
}
