/**
 * The load pipeline, end to end, for one file into one table: connect, migrate, recover what
 * earlier loads left prepared, read the table, plan and apply a profile when the table is not
 * distributed yet, choose the path, record and lock the job, take the shard locks, hand the rows
 * to a LoadRun (load/load-run.ts), record the outcome. Each step is a module of its own stage;
 * this file only orders them and owns the cleanup: a failed load leaves nothing behind (no rows,
 * no table it created), except prepared transactions whose commit record may exist, which only
 * recovery may finish.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { citusVersion, findTable, readDistribution, readTable } from '../catalog/catalog.js';
import { qualifiedName } from '../connect/sql.js';
import { resolveConnectionConfig, type ConnectionConfig, type ConnectionInput } from '../connect/config.js';
import { connectCoordinator, endWithoutWaiting } from '../connect/coordinator.js';
import { describeError, InputFileError, InvalidConfigurationError } from '../errors.js';
import { firstLine, resolveInputColumns } from '../input/columns.js';
import { resolveCopyFormat, type CopyFormatInput } from '../input/copy-format.js';
import { inputSource } from '../input/input-source.js';
import { openInput, seekable } from '../input/open-input.js';
import { CommitOutcomeUnknownError } from '../load/commit.js';
import { readInputSettings } from '../load/copy-session.js';
import type { RecoveryResult } from '../load/distributed-commit.js';
import { phaseReporter, type LoadPhase, type LoadProgress } from '../load/load-events.js';
import { LoadRun, type LoadTuning } from '../load/load-run.js';
import { recoverAll } from '../load/recovery.js';
import { Rejects } from '../load/rejects.js';
import { lockShardsForLoad, type HeldShardLocks } from '../load/shard-locks.js';
import type { ShardingProfile } from '../plan/sharding-profile.js';
import { createLockedJob, recordFailedJob } from '../store/job-store.js';
import { migrate } from '../store/migrate.js';
import { trace } from '../trace.js';
import { chooseLoadPath, embedsAscii } from './load-path.js';
import { layoutAdvice, planAndApply, type ProfileStepOptions } from './profile-step.js';

// Callers import these from here, the library's entry point for loading.
export { CommitOutcomeUnknownError } from '../load/commit.js';
export type { LoadPhase, LoadProgress } from '../load/load-events.js';
export type { LoadTuning } from '../load/load-run.js';
export { recoverAll } from '../load/recovery.js';
export { describeProfile } from './profile-step.js';

export interface LoadOptions extends CopyFormatInput, LoadTuning, ProfileStepOptions {
  /** Input path, `-` for stdin; `.gz` is decompressed. */
  file: string;
  connection?: ConnectionInput;
  /** An already resolved connection config (the daemon's); takes precedence over `connection`. */
  resolvedConnection?: ConnectionConfig;
  /** The table columns the input's fields hold, in order. Default: the header's, or all columns. */
  columns?: string[];
  /** Rows that may be rejected (and written to `rejectsFile`) before the load fails. Default 0. */
  maxErrors?: number;
  rejectsFile?: string;
  /** Load through Citus's coordinator COPY even where the direct path would work. */
  viaCoordinator?: boolean;
  onProgress?: (p: LoadProgress) => void;
  onNotice?: (message: string) => void;
  /**
   * Called as the load passes each phase (see LoadPhase for the order and what each guarantees),
   * synchronously, before the load goes on: a log line, a progress stage, or a test that stops
   * the process at a chosen step of the commit. What it throws is reported through onNotice and
   * does not change the load's outcome.
   */
  onPhase?: (phase: LoadPhase) => void;
}

export interface LoadSummary {
  table: string;
  path: 'direct' | 'coordinator';
  reason?: string;
  rows: number;
  rejected: number;
  seconds: number;
  rowsPerSecond: number;
  shards: number;
  nodes: { node: string; rows: number; bytes: number; connections: number }[];
  jobId: number;
  source: string;
  header: boolean;
  /** Rows whose shard PostgreSQL decided (values the client could not canonicalize). */
  serverResolvedRows: number;
  /** Rows the WebAssembly router took (the rest went through the JavaScript scanner). */
  fastPathRows: number;
  notices: string[];
  recovered?: RecoveryResult;
  /** The profile that created the layout, when this load planned and applied one. */
  profile?: ShardingProfile;
  /** Nodes where COMMIT PREPARED did not go through; `citus-adaptive-load recover` finishes them. */
  unfinishedCommits?: { node: string; error: string }[];
}

/** Loads one file into one table. Throws on failure, after undoing everything it wrote. */
export async function load(options: LoadOptions): Promise<LoadSummary> {
  const started = performance.now();
  const format = resolveCopyFormat(options);
  const originalSource = inputSource(options.file);
  const conn = options.resolvedConnection ?? resolveConnectionConfig(options.connection ?? {});
  const notices: string[] = [];
  const notice = (m: string) => {
    notices.push(m);
    options.onNotice?.(m);
  };
  const phase = phaseReporter(options.onPhase, notice);

  trace('load starts');
  const coordinator = await connectCoordinator(conn, 'citus-adaptive-load', conn.timeouts);
  let createdTable: string | undefined;
  try {
    trace('coordinator connected');
    phase('connected');
    await migrate(coordinator);
    trace('migrations checked');
    const citus = await citusVersion(coordinator);
    // Recovery of earlier loads runs while the table is read (plain reads on the shared
    // session). It ends before anything here opens a transaction or creates this load's job
    // (this session will hold that job's lock, so recovery would take it for abandoned).
    const recovery = citus ? recoverAll(coordinator, conn) : undefined;
    recovery?.catch(() => { /* thrown where it is awaited below */ });
    let source = originalSource;
    let table = await findTable(coordinator, options.table);
    let dist = table ? await readDistribution(coordinator, table, citus !== undefined) : undefined;
    const recovered = await recovery;
    trace('recovery checked');
    phase('recovered');
    if (recovered && recovered.committed.length + recovered.rolledBack.length > 0) {
      notice(`recovered an earlier interrupted load: ${recovered.committed.length} prepared transaction(s) committed, `
        + `${recovered.rolledBack.length} rolled back`);
    }
    let profile: ShardingProfile | undefined;
    let profileId: number | undefined;
    if (citus && (!table || dist!.kind === 'local')) {
      source = await seekable(source);
      ({ profile, profileId } = await planAndApply(coordinator, source, format, options, table !== undefined,
        () => { createdTable = options.table; }, notice));
      table = await readTable(coordinator, options.table);
      dist = await readDistribution(coordinator, table, true);
    } else if (citus && dist!.kind === 'hash' && !options.profileFile && source.size !== undefined && !source.compressed) {
      // Advice only, once a day per table (stored as an unapplied profile); a failure here must
      // not stop the load.
      try {
        for (const line of await layoutAdvice(coordinator, table!, dist!, source, format, options)) notice(line);
        // --isolate-tenants changed the shards: read them again (before any shard lock is taken).
        if (options.isolateTenants) dist = await readDistribution(coordinator, table!, true);
      } catch (err) {
        if (options.isolateTenants) throw err; // asked for, so not optional
        notice(`could not compare the layout with a fresh profile: ${describeError(err)}`);
      }
    }
    trace('table and layout read');
    if (!table || !dist) table = await readTable(coordinator, options.table); // throws: missing, and no Citus to create it
    if (!dist) dist = await readDistribution(coordinator, table, citus !== undefined);

    const input = await openInput(source);
    const first = firstLine(input.head);
    if (!first && input.head.length === 0) throw new InputFileError(`${source.name} is empty: there is nothing to load`);
    const cols = resolveInputColumns(table, first ?? input.head, format, options.header ?? 'auto', options.columns, source.name);
    const serverEncoding = (await coordinator.query<{ e: string }>("SELECT current_setting('server_encoding') AS e")).rows[0]!.e;
    const path = chooseLoadPath({
      citusVersion: citus, distribution: dist, inputColumns: cols.columns, tableColumns: table.columns,
      format, serverEncoding, forceCoordinator: options.viaCoordinator ?? false,
    });
    if (path.reason) notice(`loading through the coordinator: ${path.reason}`);
    if (embedsAscii(format.encoding) && (options.maxErrors ?? 0) > 0) {
      throw new InvalidConfigurationError(`--max-errors needs input the client can split into rows; ${format.encoding} input `
        + 'goes whole through PostgreSQL\'s COPY, which stops at the first bad row');
    }

    const jobId = await createLockedJob(coordinator, {
      table: `${table.schema}.${table.name}`, source: source.name, path: path.kind, reason: path.reason,
      options: { format: format.kind, header: cols.header, maxErrors: options.maxErrors ?? 0 },
      ...(profileId !== undefined ? { profileId } : {}),
    });
    trace('job recorded and locked');
    const rejects = new Rejects(source.name, options.maxErrors ?? 0, options.rejectsFile);
    let locks: HeldShardLocks | undefined;
    try {
      // Direct writes to shard placements hold Citus's own COPY locks until the last COMMIT
      // PREPARED, and route by the placements read under them (see shard-locks.ts).
      if (path.kind === 'direct') {
        locks = await lockShardsForLoad(conn, table, jobId);
        dist = locks.distribution;
        trace('shard locks held');
      }
      phase('locked');
      const run = new LoadRun({
        coordinator, connection: conn, jobId, table, distribution: dist, path: path.kind,
        ...(locks ? { checkLocks: locks.check } : {}),
        unsplit: embedsAscii(format.encoding), columns: cols.columns, format, source,
        settings: await readInputSettings(coordinator), rejects, tuning: options,
        onProgress: options.onProgress, onPhase: phase,
      });
      const result = await run.execute(input, cols.header, started);
      return {
        table: `${table.schema}.${table.name}`,
        path: path.kind,
        ...(path.reason ? { reason: path.reason } : {}),
        rows: result.rows,
        rejected: rejects.count,
        seconds: result.seconds,
        rowsPerSecond: result.seconds > 0 ? Math.round(result.rows / result.seconds) : result.rows,
        shards: path.kind === 'direct' ? dist.shards.length : 0,
        nodes: result.nodes,
        jobId,
        source: source.name,
        header: cols.header,
        serverResolvedRows: result.serverResolvedRows,
        fastPathRows: result.fastPathRows,
        notices,
        ...(recovered ? { recovered } : {}),
        ...(profile ? { profile } : {}),
        ...(result.unfinished.length ? { unfinishedCommits: result.unfinished } : {}),
      };
    } catch (err) {
      const message = describeError(err);
      await recordFailedJob(coordinator, jobId, message, rejects.count).catch(() => {});
      throw err;
    } finally {
      await locks?.release();
      rejects.close();
    }
  } catch (err) {
    // A table this run created holds nothing committed: a failed load leaves nothing behind.
    if (createdTable && !(err instanceof CommitOutcomeUnknownError)) {
      await dropCreatedTable(coordinator, createdTable).catch((e: unknown) => {
        options.onNotice?.(`could not drop ${createdTable}, which this load created: ${describeError(e)}`);
      });
    }
    throw err;
  } finally {
    // The job's advisory lock is a session lock: it goes with the session.
    endWithoutWaiting(coordinator);
    trace('coordinator closed');
  }
}

async function dropCreatedTable(db: pg.Client, name: string): Promise<void> {
  const table = await findTable(db, name);
  if (table) await db.query(`DROP TABLE ${qualifiedName(table.schema, table.name)}`);
}
