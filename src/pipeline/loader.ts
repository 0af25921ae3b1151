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
import { ClusterStateError, describeError, InputFileError, InvalidConfigurationError } from '../errors.js';
import { firstLine, resolveInputColumns } from '../input/columns.js';
import { resolveCopyFormat, type CopyFormatInput } from '../input/copy-format.js';
import { inputSource } from '../input/input-source.js';
import { openInput, seekable } from '../input/open-input.js';
import type { InputSource } from '../input/input-source.js';
import { isTableSource } from '../input/table-source.js';
import { StagingFate, type StagingThen } from '../load/staging-fate.js';
import { stagingColumns, stagingSource } from './staging-step.js';
import { CommitOutcomeUnknownError } from '../load/commit.js';
import { readInputSettings } from '../load/copy-session.js';
import { shareJobLock, type RecoveryResult } from '../load/distributed-commit.js';
import { phaseReporter, type LoadPhase, type LoadProgress } from '../load/load-events.js';
import { LoadRun, type LoadTuning } from '../load/load-run.js';
import { recoverAll } from '../load/recovery.js';
import { Rejects } from '../load/rejects.js';
import { lockShardsForLoad, type HeldShardLocks } from '../load/shard-locks.js';
import type { ChunkedRun } from '../load/load-run.js';
import { parseCommitEvery, type CommitEvery } from '../load/chunk-policy.js';
import { fingerprintFile } from '../input/fingerprint.js';
import { recordJobChunking, recordSourceFingerprint, addJobSeconds, type ResumePoint } from '../store/chunk-store.js';
import { findResumableJob, refuseHalfDoneRerun } from './resume-step.js';
import { checkChunkableStaging, stagingBlockRanges } from './staging-chunks.js';
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
  /** Input path, `-` for stdin; `.gz` is decompressed. Give this or `fromTable`. */
  file?: string;
  /** A table to load from instead of a file (a staging table; see pipeline/staging-step.ts). */
  fromTable?: string;
  /** What becomes of `fromTable` with the load's commit. Default 'keep'. */
  then?: StagingThen;
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
  /**
   * Commit in chunks of this many rows (`500000` or 500000) or bytes (`256MB`), each chunk its own
   * distributed transaction with a manifest row, so an interrupted load can be resumed. Default:
   * the whole load is one transaction.
   */
  commitEvery?: number | string;
  /**
   * Continue an interrupted chunked load after its last committed chunk: true for the newest
   * unfinished job of this table and file, a number for that job. The file must be unchanged.
   */
  resume?: boolean | number;
  /**
   * Load the source from its start even though an unfinished chunked job of this table and
   * (unchanged) source committed chunks already; without it such a load is refused. Default false.
   */
  restart?: boolean;
}

/** A chunked load's chunks (--commit-every). */
export interface ChunkSummary {
  commitEvery: CommitEvery;
  /** Chunks committed, by this run and the runs it resumed. */
  done: number;
  /** Chunks and input bytes left: 0 once the load committed. */
  left: number;
  bytesLeft: number;
  /** Chunks and rows this run committed. */
  thisRun: number;
  rowsThisRun: number;
  /** Where this run started, when it resumed a job. */
  resumedFrom?: { chunk: number; offset: number };
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
  /** With `fromTable`: what became of the staging table. */
  staging?: { table: string; then: StagingThen; outcome: string };
  /** With commitEvery: the chunks. `rows` and `rejected` are then the whole job's, resumed runs included. */
  chunks?: ChunkSummary;
}

/** Loads one file into one table. Throws on failure, after undoing everything it wrote. */
export async function load(options: LoadOptions): Promise<LoadSummary> {
  const started = performance.now();
  // A table's rows leave as COPY's text format (input/table-source.ts); format options are a file's.
  const format = resolveCopyFormat(options.fromTable !== undefined ? { format: 'text' } : options);
  if ((options.file === undefined) === (options.fromTable === undefined)) {
    throw new InvalidConfigurationError('a load reads either a file or a table (--from-table): give exactly one of them');
  }
  if (options.then !== undefined && options.fromTable === undefined) {
    throw new InvalidConfigurationError('--then says what becomes of a staging table: it needs --from-table');
  }
  const commitEvery = chunkingOption(options);
  const fileSource = options.file !== undefined ? inputSource(options.file) : undefined;
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
  /** Chunks of this job are committed: a failure must not drop the table that holds them. */
  let committedChunks = false;
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
    let source: InputSource = fileSource
      ?? await stagingSource(coordinator, conn, options.fromTable!, options.columns, await readInputSettings(coordinator));
    const staged = isTableSource(source) ? source : undefined;
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
      if (!staged) source = await seekable(source);
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

    // A table's rows are read later, once its fate's lock is held (staging-fate.ts).
    const early = staged ? undefined : await openInput(source);
    const first = early ? firstLine(early.head) : undefined;
    if (early && !first && early.head.length === 0) throw new InputFileError(`${source.name} is empty: there is nothing to load`);
    const cols = staged ? stagingColumns(staged, table)
      : resolveInputColumns(table, first ?? early!.head, format, options.header ?? 'auto', options.columns, source.name);
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
    if (embedsAscii(format.encoding) && commitEvery) {
      throw new InvalidConfigurationError(`--commit-every needs input the client can split into rows; ${format.encoding} input `
        + 'goes whole through PostgreSQL\'s COPY as one statement');
    }

    // A chunked load from a table holds the table's EXCLUSIVE lock for the whole run, whatever
    // --then says: its chunks are block ranges, which only mean the same rows while nobody writes.
    if (staged && commitEvery) await checkChunkableStaging(coordinator, staged, citus !== undefined, path.kind);
    const fate = staged ? new StagingFate(options.then ?? 'keep', staged.table, conn.timeouts.lockMs, commitEvery !== undefined) : undefined;
    if (fate && fate.then !== 'keep' && path.kind !== 'direct') {
      throw new InvalidConfigurationError(`--then ${fate.then} needs the direct path, whose commit record's transaction can also `
        + `${fate.then} the staging table; this load goes through the coordinator (${path.reason}). Load with --then keep `
        + 'and empty the staging table yourself');
    }
    // --resume: the job to continue, checked against the file (recovery has finished its chunks above).
    let resumed: { jobId: number; point: ResumePoint; fingerprint: unknown } | undefined;
    if (options.resume !== undefined && options.resume !== false) {
      if (recovered && recovered.unreachable.length > 0) {
        throw new ClusterStateError(`cannot resume while recovery cannot reach ${recovered.unreachable.map((u) => u.node).join(', ')}: `
          + 'a chunk prepared there may or may not be committed. Retry when every node is reachable');
      }
      resumed = await findResumableJob(coordinator, `${table.schema}.${table.name}`, source, options.resume);
    } else {
      await refuseHalfDoneRerun(coordinator, `${table.schema}.${table.name}`, source, options.restart === true);
    }
    if (resumed) {
      notice(`resuming job ${resumed.jobId} after ${resumed.point.chunksDone} committed chunk(s), `
        + (staged ? `at heap block ${resumed.point.toBlock ?? 0} of ${staged.name}`
          : `at byte ${resumed.point.offset}${source.compressed ? ' of the decompressed input' : ''}`));
    }
    const every = commitEvery;
    const jobId = resumed?.jobId ?? await createLockedJob(coordinator, {
      table: `${table.schema}.${table.name}`, source: source.name, path: path.kind, reason: path.reason,
      options: { format: format.kind, header: cols.header, maxErrors: options.maxErrors ?? 0, ...(every ? { commitEvery: every } : {}) },
      ...(profileId !== undefined ? { profileId } : {}),
    });
    if (!every && fileSource?.path !== undefined) await recordSourceFingerprint(coordinator, jobId, fingerprintFile(fileSource.path));
    if (every && !resumed) {
      await recordJobChunking(coordinator, jobId, {
        // A .gz's chunk offsets count decompressed bytes: its size on disk says nothing of what is left.
        ...every, ...(source.size !== undefined && !source.compressed ? { sourceBytes: source.size } : {}),
        // Stdin (spooled or not) is gone once read: no fingerprint, so never resumable.
        ...(fileSource?.path !== undefined ? { fingerprint: fingerprintFile(fileSource.path) } : {}),
      });
    }
    trace('job recorded and locked');
    const rejects = new Rejects(source.name, options.maxErrors ?? 0, options.rejectsFile,
      resumed ? { previous: resumed.point.rejected, fileOffset: resumed.point.rejectsOffset } : undefined);
    const chunking: ChunkedRun | undefined = every ? {
      every, firstChunk: resumed?.point.chunksDone ?? 0, startOffset: resumed?.point.offset ?? 0, startLine: resumed?.point.line ?? 1,
      committed: 0, rows: 0, rejected: 0,
    } : undefined;
    let locks: HeldShardLocks | undefined;
    let input = early;
    let resolverSession: pg.Client | undefined;
    let recordSession: pg.Client | undefined;
    try {
      // Direct writes to shard placements hold Citus's own COPY locks until the last COMMIT
      // PREPARED, and route by the placements read under them (see shard-locks.ts).
      if (path.kind === 'direct') {
        locks = await lockShardsForLoad(conn, table, jobId);
        dist = locks.distribution;
        trace('shard locks held');
      }
      phase('locked');
      await fate?.begin(coordinator);
      // A failed lookup of an unsure value would abort the transaction fate opened: look them
      // up on a session of their own (same role, database and so the same DateStyle and TimeZone).
      if (fate?.transactionOpen) resolverSession = await connectCoordinator(conn, `citus-adaptive-load job ${jobId} lookups`, conn.timeouts);
      if (staged && chunking) {
        // Under the lock: what the fingerprint describes is what the run reads.
        recordSession = await connectCoordinator(conn, `citus-adaptive-load job ${jobId} chunk records`, conn.timeouts);
        // It writes commit records: recovery must see the job live while it can (see distributed-commit.ts).
        await shareJobLock(coordinator, recordSession, jobId);
        const blocks = await stagingBlockRanges(coordinator, recordSession, conn, staged, await readInputSettings(coordinator),
          jobId, chunking.every, resumed);
        source = blocks;
        chunking.blocks = blocks.ranges;
        chunking.recordSession = recordSession;
      }
      input ??= await openInput(source);
      const run = new LoadRun({
        coordinator, connection: conn, jobId, table, distribution: dist, path: path.kind,
        ...(locks ? { checkLocks: locks.check } : {}),
        unsplit: embedsAscii(format.encoding), columns: cols.columns, format, source,
        settings: await readInputSettings(coordinator), rejects, tuning: options,
        onProgress: options.onProgress, onPhase: phase,
        ...(fate ? { commitSteps: fate.commitSteps, commitTransactionOpen: fate.transactionOpen } : {}),
        ...(resolverSession ? { resolverSession } : {}),
        ...(chunking ? { chunking } : {}),
      });
      // A resumed job reads on from its last chunk's end; only the input's start has the header.
      if (chunking && chunking.startOffset > 0 && !chunking.blocks) {
        input.close();
        input = await openInput(source, chunking.startOffset);
      }
      const result = await run.execute(input, cols.header && (chunking?.startOffset ?? 0) === 0, started);
      const previous = resumed?.point;
      return {
        table: `${table.schema}.${table.name}`,
        path: path.kind,
        ...(path.reason ? { reason: path.reason } : {}),
        rows: result.rows + (previous?.rows ?? 0),
        rejected: rejects.total,
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
        ...(fate && staged ? { staging: { table: `${staged.table.schema}.${staged.table.name}`, then: fate.then, outcome: fate.describeDone() } } : {}),
        ...(chunking ? { chunks: {
          commitEvery: chunking.every, done: chunking.firstChunk + chunking.committed, left: 0, bytesLeft: 0,
          thisRun: chunking.committed, rowsThisRun: chunking.rows,
          ...(previous ? { resumedFrom: { chunk: previous.chunksDone, offset: previous.offset } } : {}),
        } } : {}),
      };
    } catch (err) {
      const message = describeError(err);
      await fate?.abandon(coordinator);
      if (chunking) {
        // Committed chunks stay, with their counts; the job is resumable.
        if (chunking.committed > 0 || resumed) committedChunks = true;
        const chunkNote = ` (${chunking.firstChunk + chunking.committed} chunk(s) committed: run the same command with --resume to continue)`;
        await recordFailedJob(coordinator, jobId, message + chunkNote, undefined).catch(() => {});
        await addJobSeconds(coordinator, jobId, (performance.now() - started) / 1000).catch(() => {});
        if (err instanceof Error && (chunking.committed > 0 || resumed)) err.message += chunkNote;
      } else {
        await recordFailedJob(coordinator, jobId, message, rejects.count).catch(() => {});
      }
      throw err;
    } finally {
      // Closed by the run as it ends; here also when the run never started (a table's reader
      // session would otherwise stay open, in its transaction).
      input?.close();
      if (resolverSession) endWithoutWaiting(resolverSession);
      if (recordSession) endWithoutWaiting(recordSession);
      await locks?.release();
      rejects.close();
    }
  } catch (err) {
    // A table this run created holds nothing committed: a failed load leaves nothing behind.
    if (createdTable && !committedChunks && !(err instanceof CommitOutcomeUnknownError)) {
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

/** The --commit-every option, parsed; stdin may be chunked but never resumed (its bytes are gone once read). */
function chunkingOption(options: LoadOptions): CommitEvery | undefined {
  const resume = options.resume !== undefined && options.resume !== false;
  if (resume && options.file === '-') {
    throw new InvalidConfigurationError('--resume needs the input as a file: stdin cannot be read again from where the load '
      + 'stopped. Save the input to a file and load that with --commit-every');
  }
  if (options.commitEvery === undefined) {
    if (resume) throw new InvalidConfigurationError('--resume needs --commit-every, as the interrupted load had: run the same command with --resume added');
    return undefined;
  }
  const every = parseCommitEvery(String(options.commitEvery));
  if (!every) {
    throw new InvalidConfigurationError(`--commit-every must be a row count (500000) or a size (256MB, 1GB, 64kB), got ${JSON.stringify(options.commitEvery)}`);
  }
  return every;
}

async function dropCreatedTable(db: pg.Client, name: string): Promise<void> {
  const table = await findTable(db, name);
  if (table) await db.query(`DROP TABLE ${qualifiedName(table.schema, table.name)}`);
}
