import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { citusVersion, findTable, readDistribution, readTable, type Distribution, type ShardInfo, type TableInfo } from '../catalog/catalog.js';
import { ShardRouter } from '../routing/shard-router.js';
import { UNSURE, valueHasherFor, type ValueHasher } from '../routing/value-hasher.js';
import { resolveConnectionConfig, type ConnectionConfig, type ConnectionInput } from '../connect/config.js';
import { connectCoordinator, endWithoutWaiting } from '../connect/coordinator.js';
import { destroyConnection } from '../connect/deadline.js';
import { qualifiedName, quoteIdent, quoteLiteral } from '../connect/sql.js';
import {
  AdaptiveLoadError, BadInputError, DatabaseError, InputFileError, InvalidConfigurationError, serverExplanation, toDatabaseError,
} from '../errors.js';
import type { PlanOptions } from '../plan/analyze.js';
import type { ShardingProfile } from '../plan/sharding-profile.js';
import { migrate } from '../store/migrate.js';
import { createLockedJob, recordCommittedJob, recordFailedJob, type JobResult } from '../store/job-store.js';
import { Batch } from '../load/batch.js';
import { firstLine, resolveInputColumns, type HeaderMode } from '../input/columns.js';
import { FastRouter, fastPathSupports, type StagedRowsSink } from '../routing/fast-router.js';
import { copyOptionsSql, resolveCopyFormat, type CopyFormat, type CopyFormatInput } from '../input/copy-format.js';
import { copyFailure, CopySession, readInputSettings, type InputSettings } from '../load/copy-session.js';
import {
  checkPreparedTransactions, commitPreparedAll, decide, globalTransactionIds, jobLockKeySql, prepareAll,
  recoverPreparedTransactions, type RecoveryResult,
} from '../load/distributed-commit.js';
import { lockShardsForLoad, type HeldShardLocks } from '../load/shard-locks.js';
import { inputSource, type InputSource } from '../input/input-source.js';
import { chooseLoadPath, embedsAscii, type LoadPath } from './load-path.js';
import { Rejects } from '../load/rejects.js';
import { decodeField, FIELD_IS_NULL, FIELD_NEEDS_DECODE, RowScanner, type RowSink } from '../input/row-scanner.js';
import { ServerResolver } from '../routing/server-resolver.js';
import { WriterPool, type CopyTarget } from '../load/writer-pool.js';
import { trace } from '../trace.js';

export interface LoadOptions extends CopyFormatInput {
  /** Target table, optionally schema-qualified. */
  table: string;
  /** Input path, `-` for stdin; `.gz` is decompressed. */
  file: string;
  connection?: ConnectionInput;
  /** An already resolved connection config (the daemon's); takes precedence over `connection`. */
  resolvedConnection?: ConnectionConfig;
  /** Whether line 1 is a header. Default 'auto': a header when it names the table's columns. */
  header?: HeaderMode;
  /** The table columns the input's fields hold, in order. Default: the header's, or all columns. */
  columns?: string[];
  /** Distribute a missing or local table by this column (the profile decides the rest). */
  distributionColumn?: string;
  /** Shard count when distributing. Default: the profile's (citus.shard_count, more for big inputs). */
  shardCount?: number;
  /** Use this sharding profile (JSON file) instead of planning one. */
  profileFile?: string;
  /** Write the planned profile to this file. */
  saveProfile?: string;
  /** Only widen keys the chosen column is missing from... never: choose among columns every key includes. */
  keepKeys?: boolean;
  /** Compare an existing layout with a fresh profile even if one from the last day is stored. */
  recheckLayout?: boolean;
  /** Sample size and seed for the analysis. */
  sampleRows?: number;
  seed?: number;
  /** Rows that may be rejected (and written to `rejectsFile`) before the load fails. Default 0. */
  maxErrors?: number;
  rejectsFile?: string;
  /** COPY connections per worker on average; nodes that will receive more rows get more. Default 4. */
  connectionsPerNode?: number;
  /** Bytes per COPY batch. Default 1 MiB (smaller when there are very many shards). */
  batchBytes?: number;
  /** Bytes allowed queued or in flight to the workers before reading pauses. Default 32 MiB. */
  maxInflightBytes?: number;
  /**
   * A row longer than this many bytes fails the load at once, naming the line it starts on (an
   * unclosed quote otherwise makes the rest of the file one row). Default 64 MiB
   * (DEFAULT_MAX_ROW_BYTES); PostgreSQL itself allows up to 1 GB.
   */
  maxRowBytes?: number;
  /** Route simple rows with the WebAssembly kernel (default true); false: the JavaScript scanner only. */
  fastPath?: boolean;
  /** Load through Citus's coordinator COPY even where the direct path would work. */
  viaCoordinator?: boolean;
  onProgress?: (p: LoadProgress) => void;
  onNotice?: (message: string) => void;
  /** Test hook: stop the process at a step of the distributed commit. */
  crashAt?: 'after-prepare' | 'after-commit-record';
}

export interface LoadProgress {
  readonly bytesRead: number;
  readonly totalBytes: number | undefined;
  readonly rows: number;
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

const DEFAULT_BATCH = 1024 * 1024;
const DEFAULT_INFLIGHT = 32 * 1024 * 1024;
const RESOLVE_BATCH = 1000;
const SHARE_SAMPLE_BYTES = 64 * 1024;

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

  trace('load starts');
  const coordinator = await connectCoordinator(conn, 'citus-adaptive-load', conn.timeouts);
  let createdTable: string | undefined;
  try {
    trace('coordinator connected');
    await migrate(coordinator);
    trace('migrations checked');
    const citus = await citusVersion(coordinator);
    // Recovery of earlier loads runs while the table is read (plain reads on the shared
    // session). It ends before anything here opens a transaction or creates this load's job
    // (this session will hold that job's lock, so recovery would take it for abandoned).
    const recovery = citus ? recoverAll(coordinator, conn) : undefined;
    recovery?.catch(() => { /* thrown where it is awaited below */ });
    let source = originalSource;
    let table = await tryReadTable(coordinator, options.table);
    let dist = table ? await readDistribution(coordinator, table, citus !== undefined) : undefined;
    const recovered = await recovery;
    trace('recovery checked');
    if (recovered && recovered.committed.length + recovered.rolledBack.length > 0) {
      notice(`recovered an earlier interrupted load: ${recovered.committed.length} prepared transaction(s) committed, `
        + `${recovered.rolledBack.length} rolled back`);
    }
    let profile: ShardingProfile | undefined;
    let profileId: number | undefined;
    if (citus && (!table || dist!.kind === 'local')) {
      source = await seekable(source);
      profile = await profileFor(coordinator, source, format, options);
      const { applyProfile } = await import('../plan/apply.js');
      const { storeProfile } = await import('../store/profile-store.js');
      const applied = await applyProfile(coordinator, profile, table !== undefined, () => { createdTable = options.table; });
      profileId = await storeProfile(coordinator, profile, true, applied.statements);
      notice(describeProfile(profile));
      for (const n of applied.notes) notice(n);
      table = await readTable(coordinator, options.table);
      dist = await readDistribution(coordinator, table, true);
    } else if (citus && dist!.kind === 'hash' && !options.profileFile && source.size !== undefined && !source.compressed) {
      // Advice only, once a day per table (stored as an unapplied profile); a failure here must
      // not stop the load.
      try {
        const advice = await layoutAdvice(coordinator, table!, dist!, source, format, options);
        if (advice) notice(advice);
      } catch (err) {
        notice(`could not compare the layout with a fresh profile: ${(err as Error).message}`);
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
    });
    if (profileId !== undefined) await coordinator.query('UPDATE adaptive_load.load_jobs SET profile_id = $2 WHERE job_id = $1', [jobId, profileId]);
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
      const run = new LoadRun(coordinator, conn, options, format, source, table, dist, path, cols.columns,
        await readInputSettings(coordinator), rejects, jobId);
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
        serverResolvedRows: run.serverResolved,
        fastPathRows: run.fastPathRows,
        notices,
        ...(recovered ? { recovered } : {}),
        ...(profile ? { profile } : {}),
        ...(result.unfinished.length ? { unfinishedCommits: result.unfinished } : {}),
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
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
        options.onNotice?.(`could not drop ${createdTable}, which this load created: ${(e as Error).message}`);
      });
    }
    throw err;
  } finally {
    // The job's advisory lock is a session lock: it goes with the session.
    endWithoutWaiting(coordinator);
    trace('coordinator closed');
  }
}

/** The commit record's transaction may or may not have committed; recovery will tell. */
export class CommitOutcomeUnknownError extends AdaptiveLoadError {}

async function dropCreatedTable(db: pg.Client, name: string): Promise<void> {
  const r = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]);
  if (r.rows[0]?.t) await db.query(`DROP TABLE ${r.rows[0].t}`);
}

/** Recovery over every primary node of the cluster (coordinator included). */
export async function recoverAll(coordinator: pg.Client, conn: ConnectionConfig): Promise<RecoveryResult> {
  const nodes = await coordinator.query<{ nodename: string; nodeport: number; groupid: number }>(
    "SELECT nodename, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' AND isactive ORDER BY nodeid");
  const targets = nodes.rows.map((n) => ({
    label: `${n.nodename}:${n.nodeport}`,
    config: n.groupid === 0 ? conn.coordinator : conn.workerConfig({ host: n.nodename, port: n.nodeport }),
  }));
  if (!nodes.rows.some((n) => n.groupid === 0)) targets.unshift({ label: 'coordinator', config: conn.coordinator });
  return recoverPreparedTransactions(coordinator, targets, conn.timeouts);
}

function planOptions(options: LoadOptions): PlanOptions {
  return {
    table: options.table,
    ...(options.distributionColumn ? { distributionColumn: options.distributionColumn } : {}),
    ...(options.shardCount ? { shardCount: options.shardCount } : {}),
    ...(options.keepKeys ? { keepKeys: true } : {}),
    ...(options.sampleRows ? { rows: options.sampleRows } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    header: options.header ?? 'auto',
  };
}

async function profileFor(db: pg.Client, source: InputSource, format: CopyFormat, options: LoadOptions): Promise<ShardingProfile> {
  if (options.profileFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(options.profileFile, 'utf8'));
    } catch (err) {
      throw new InvalidConfigurationError(`cannot read profile ${options.profileFile}: ${(err as Error).message}`, { cause: err });
    }
    const { validateProfile } = await import('../plan/sharding-profile.js');
    return validateProfile(raw, options.profileFile);
  }
  const { planForInput } = await import('../plan/analyze.js');
  const plan = await planForInput(db, source, format, planOptions(options));
  if (options.saveProfile) writeFileSync(options.saveProfile, `${JSON.stringify(plan.profile, null, 2)}\n`);
  return plan.profile;
}

/** How long a stored comparison of an existing layout with a fresh profile is reused. */
const LAYOUT_ADVICE_HOURS = 24;

/** Says when a fresh profile would lay out an existing distributed table differently. */
async function layoutAdvice(db: pg.Client, table: TableInfo, dist: Distribution, source: InputSource, format: CopyFormat,
  options: LoadOptions): Promise<string | undefined> {
  const name = `${table.schema}.${table.name}`;
  let profile: ShardingProfile | undefined;
  if (!options.recheckLayout) {
    const stored = await db.query<{ profile: ShardingProfile }>(
      `SELECT profile FROM adaptive_load.profiles WHERE table_name IN ($1, $2) AND created_at > now() - make_interval(hours => $3)
        ORDER BY created_at DESC LIMIT 1`, [name, table.name, LAYOUT_ADVICE_HOURS]);
    profile = stored.rows[0]?.profile;
  }
  if (!profile) {
    // The planner (parser, schema validator) loads only when a plan is needed.
    const { planForInput } = await import('../plan/analyze.js');
    const { storeProfile } = await import('../store/profile-store.js');
    profile = (await planForInput(db, source, format, planOptions(options))).profile;
    await storeProfile(db, profile, false, []);
  }
  if (profile.distributionColumn === dist.column) return undefined;
  return `${name} is distributed by ${dist.column}; loading into that layout, though the profile would choose `
    + `${profile.kind === 'reference' ? 'a reference table' : profile.distributionColumn} (${profile.reasons[0]})`;
}

/** One line a user can read: what the profile decided. */
export function describeProfile(p: ShardingProfile): string {
  if (p.kind === 'reference') return `created ${p.table} as a reference table: ${p.reasons[0]}`;
  const parts = [`distributed ${p.table} by ${p.distributionColumn} into ${p.shards.length || p.shardCount} shards`];
  if (p.colocateWith) parts.push(`colocated with ${p.colocateWith}`);
  if (p.isolate.length) parts.push(`tenant(s) ${p.isolate.join(', ')} isolated`);
  if (p.splitPoints.length) parts.push(`${p.splitPoints.length} shard(s) split`);
  return `${parts.join(', ')} (${p.reasons.slice(1, 3).join('; ')})`;
}

async function tryReadTable(db: pg.Client, name: string): Promise<TableInfo | undefined> {
  return findTable(db, name);
}

/** Stdin can be read once: spool it to a temporary file when it must be sampled before loading. */
async function seekable(source: InputSource): Promise<InputSource> {
  if (source.size !== undefined) return source;
  const dir = mkdtempSync(join(tmpdir(), 'citus-adaptive-load-'));
  const path = join(dir, 'stdin');
  await pipeline(source.open(), createWriteStream(path));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const spooled = inputSource(path);
  return { ...spooled, name: source.name };
}

interface OpenedInput {
  /** The first bytes of the input (at least its first line, when it has one). */
  head: Buffer;
  rest: AsyncIterator<Buffer>;
  close(): void;
}

/** Reads ahead until the first line is complete, for header detection. */
async function openInput(source: InputSource): Promise<OpenedInput> {
  const stream = source.open();
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      parts.push(Buffer.from(next.value)); // chunks are reused buffers: keep copies
      size += next.value.length;
      if (next.value.includes(0x0a) || size > 16 * 1024 * 1024) break;
    }
  } catch (err) {
    throw new InputFileError(`${source.name}: cannot read (${(err as Error).message})`, { cause: err });
  }
  return { head: Buffer.concat(parts), rest: it, close: () => stream.destroy() };
}

interface RunResult {
  rows: number;
  seconds: number;
  nodes: { node: string; rows: number; bytes: number; connections: number }[];
  unfinished: { node: string; error: string }[];
}

/** One execution of a load: sessions, routing, streaming, commit. */
class LoadRun implements RowSink, StagedRowsSink {
  private readonly targets: CopyTarget[];
  private readonly router: ShardRouter | undefined;
  private readonly hasher: ValueHasher | undefined;
  private readonly fast: FastRouter | undefined;
  private readonly batches: (Batch | undefined)[];
  private readonly freeBatches: Batch[] = [];
  private readonly batchBytes: number;
  private readonly distColumn: string | undefined;
  private readonly fieldIndex: number;
  /** `COPY relation (columns) FROM STDIN WITH (format options, extra)` for this input. */
  private readonly copyInto: (relation: string, extraOptions?: string) => string;
  /** The input reaches the coordinator's COPY unsplit (see embedsAscii). */
  private readonly whole: boolean;
  private pool!: WriterPool;
  private resolver: ServerResolver | undefined;
  private rowsRouted = 0;
  /** The input's line terminator, for a final row that lacks one. */
  private terminator: Buffer = Buffer.from('\n');
  private pendingError: Error | undefined;

  constructor(
    private readonly coordinator: pg.Client,
    private readonly conn: ConnectionConfig,
    private readonly options: LoadOptions,
    private readonly format: CopyFormat,
    private readonly source: InputSource,
    private readonly table: TableInfo,
    private readonly dist: Distribution,
    private readonly path: LoadPath,
    private readonly columns: TableInfo['columns'],
    private readonly settings: InputSettings,
    private readonly rejects: Rejects,
    private readonly jobId: number,
  ) {
    const colList = columns.map((c) => quoteIdent(c.name)).join(', ');
    const withOpts = copyOptionsSql(format, quoteLiteral) + (format.encoding !== 'UTF8' ? `, ENCODING ${quoteLiteral(format.encoding)}` : '');
    this.copyInto = (relation, extraOptions = '') => `COPY ${relation} (${colList}) FROM STDIN WITH (${withOpts}${extraOptions})`;
    this.whole = path.kind === 'coordinator' && embedsAscii(format.encoding);
    this.distColumn = dist.kind === 'hash' ? dist.column : undefined;
    this.fieldIndex = this.distColumn ? columns.findIndex((c) => c.name === this.distColumn) : -1;
    if (path.kind === 'direct') {
      this.targets = dist.shards.map((s: ShardInfo, index) => ({
        index,
        label: `shard ${s.shardId}`,
        shardId: s.shardId,
        copySql: this.copyInto(s.qualifiedName),
        nodes: s.placements.map((p) => `${p.host}:${p.port}`),
      }));
      if (dist.kind === 'hash') {
        this.router = new ShardRouter(dist.shards);
        const col = columns[this.fieldIndex]!;
        this.hasher = valueHasherFor({ typeName: col.typeName, maxChars: col.maxChars });
      }
    } else {
      this.targets = [{
        index: 0,
        label: `${table.schema}.${table.name}`,
        shardId: undefined,
        copySql: this.copyInto(qualifiedName(table.schema, table.name)),
        nodes: ['coordinator'],
      }];
    }
    const requested = options.batchBytes ?? DEFAULT_BATCH;
    // Bound the memory held in partly filled batches when there are very many shards.
    this.batchBytes = Math.max(16 * 1024, Math.min(requested, Math.floor((32 * 1024 * 1024) / this.targets.length)));
    this.batches = new Array(this.targets.length);
    const key = this.router ? columns[this.fieldIndex]! : undefined;
    if (key && dist.kind === 'hash' && options.fastPath !== false && fastPathSupports(key.typeName)) {
      this.fast = new FastRouter({
        format, fieldIndex: this.fieldIndex, expectedFields: columns.length, typeName: key.typeName, maxChars: key.maxChars,
        shards: dist.shards, maxStagingBytes: this.batchBytes,
      }, this);
    }
  }

  get fastPathRows(): number {
    return this.fast?.rowsTotal ?? 0;
  }

  get serverResolved(): number {
    return this.resolver?.resolved ?? 0;
  }

  async execute(input: OpenedInput, header: boolean, started: number): Promise<RunResult> {
    trace('load prepared');
    const shares = this.nodeRowShares(input.head, header);
    trace('node shares');
    const sessions = await this.openSessions(shares);
    trace('worker sessions open');
    const all = [...sessions.values()].flat();
    try {
      this.pool = new WriterPool(sessions, this.targets.length, this.source.name, this.rejects);
      if (this.router) {
        this.resolver = new ServerResolver(this.coordinator, this.table.oid,
          new Map(this.targets.map((t) => [t.shardId!, t.index])));
      }
      const bytesRead = this.whole ? await this.streamWhole(all[0]!, input, header) : await this.stream(input, header);
      trace('input streamed');
      const rows = this.pool.targetRows.reduce((a, b) => a + b, 0);
      const seconds = (performance.now() - started) / 1000;
      const nodes = [...this.pool.nodeStats].map(([node, s]) => ({ node, rows: s.rows, bytes: s.bytes, connections: sessions.get(node)?.length ?? 0 }));
      const result: JobResult = {
        rows, rejected: this.rejects.count, bytes: bytesRead, seconds, nodes,
        shards: this.targets.map((t) => ({ target: t.label, shardId: t.shardId, nodes: t.nodes, rows: this.pool.targetRows[t.index]! })),
      };
      const unfinished = this.path.kind === 'direct'
        ? await this.commitDistributed(all, result)
        : await this.commitOnCoordinator(all[0]!, result);
      trace('committed');
      return { rows, seconds, nodes, unfinished };
    } catch (err) {
      await Promise.all(all.map((s) => s.abort()));
      throw err;
    } finally {
      input.close();
      for (const s of all) s.close();
      trace('worker sessions closed');
    }
  }

  /**
   * Where the rows will go, per node: the first 64 KiB of the input routed without copying (a
   * sorted file would mislead it, so it is blended half and half with each node's share of shards).
   * A thousand rows or so say enough, and this runs before the code is warm.
   */
  private nodeRowShares(head: Buffer, header: boolean): Map<string, number> | undefined {
    if (!this.router || this.path.kind !== 'direct') return undefined;
    const perTarget = new Float64Array(this.targets.length);
    const hasher = this.hasher!;
    const router = this.router;
    const format = this.format;
    let skip = header;
    const counter: RowSink = {
      row(buf, _rs, _ce, _re, fs, fe, flags) {
        if (skip) { skip = false; return; }
        if ((flags & FIELD_IS_NULL) !== 0) return;
        const v = (flags & FIELD_NEEDS_DECODE) !== 0 ? decodeField(buf, fs, fe, format)! : undefined;
        const h = v ? hasher.hash(v, 0, v.length) : hasher.hash(buf, fs, fe);
        if (h !== UNSURE) perTarget[router.shardIndexFor(h)]!++;
      },
      badRow() { skip = false; },
    };
    new RowScanner(format, this.fieldIndex, this.columns.length).push(head.subarray(0, SHARE_SAMPLE_BYTES), counter);
    const rows = perTarget.reduce((a, b) => a + b, 0);
    const byNode = new Map<string, number>();
    for (const t of this.targets) {
      const fromHead = rows > 0 ? perTarget[t.index]! / rows : 0;
      const fromShards = 1 / this.targets.length;
      for (const node of t.nodes) byNode.set(node, (byNode.get(node) ?? 0) + 0.5 * (rows > 0 ? fromHead : fromShards) + 0.5 * fromShards);
    }
    return byNode;
  }

  private async openSessions(rowShares?: Map<string, number>): Promise<Map<string, CopySession[]>> {
    const perNode = new Map<string, { config: pg.ClientConfig; targets: number }>();
    if (this.path.kind === 'direct') {
      for (const s of this.dist.shards) {
        for (const p of s.placements) {
          const label = `${p.host}:${p.port}`;
          const entry = perNode.get(label) ?? { config: this.conn.workerConfig({ host: p.host, port: p.port }), targets: 0 };
          entry.targets++;
          perNode.set(label, entry);
        }
      }
    } else {
      perNode.set('coordinator', { config: this.conn.coordinator, targets: 1 });
    }
    const max = this.options.connectionsPerNode ?? 4;
    const sessions = new Map<string, CopySession[]>();
    // Every node's opening is awaited, failed or not (each is bounded by the timeouts): a session
    // that finished opening after a failure was handled would stay idle in its transaction.
    const outcomes = await Promise.allSettled([...perNode].map(async ([node, { config, targets }]) => {
      // Nodes that will receive more rows get proportionally more of the connections.
      const share = rowShares?.get(node);
      const proportional = share === undefined ? max : Math.round(max * perNode.size * share);
      const count = this.path.kind === 'direct' ? Math.max(1, Math.min(proportional, targets, max * 2)) : 1;
      const list: CopySession[] = [];
      sessions.set(node, list);
      // The node's connections open together: each costs a round trip or three (auth, settings).
      const opened = await Promise.allSettled(Array.from({ length: count }, async () => {
        const s = await CopySession.open(config, node, this.settings, `citus-adaptive-load job ${this.jobId}`, this.conn.timeouts);
        list.push(s);
        return s;
      }));
      const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      await Promise.all([
        ...(this.path.kind === 'direct' ? [checkPreparedTransactions(list[0]!, node, count)] : []),
        ...list.map((s) => s.begin()),
      ]);
    }));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) {
      const all = [...sessions.values()].flat();
      await Promise.all(all.map(async (s) => { await s.abort(); s.close(); }));
      throw failed.reason;
    }
    return sessions;
  }

  /** Reads the input to the end, routing rows into batches; returns the bytes read. */
  private async stream(input: OpenedInput, header: boolean): Promise<number> {
    const scanner = new RowScanner(this.format, Math.max(0, this.fieldIndex), this.columns.length,
      { maxRowBytes: this.options.maxRowBytes, source: this.source.name });
    scanner.bulk = this.fast;
    const limit = this.options.maxInflightBytes ?? DEFAULT_INFLIGHT;
    let bytesRead = 0;
    let skipHeader = header;
    const progress = this.options.onProgress;
    let lastProgress = 0;
    const feed = async (chunk: Buffer) => {
      bytesRead += chunk.length;
      if (skipHeader) {
        skipHeader = false;
        scanner.push(chunk, new HeaderSkipper(this));
      } else {
        scanner.push(chunk, this);
      }
      this.terminator = scanner.lineTerminator;
      this.throwPending();
      if (this.resolver && this.resolver.size >= RESOLVE_BATCH) await this.flushResolver();
      if (this.pool.bytesInFlight > limit) await this.pool.waitForRoom(limit);
      if (progress) {
        const now = performance.now();
        if (now - lastProgress > 200) {
          lastProgress = now;
          progress({ bytesRead: this.source.compressed ? 0 : bytesRead, totalBytes: this.source.compressed ? undefined : this.source.size, rows: this.rowsRouted });
        }
      }
    };
    await feed(input.head);
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await input.rest.next();
      } catch (err) {
        throw new InputFileError(`${this.source.name}: read failed after ${bytesRead} bytes (${(err as Error).message})`, { cause: err });
      }
      if (next.done || scanner.ended) break;
      await feed(next.value);
    }
    scanner.end(this);
    this.throwPending();
    if (this.rowsRouted === 0 && scanner.rows === 0 && !header) {
      throw new InputFileError(`${this.source.name} holds no rows`);
    }
    await this.flushResolver();
    for (let t = 0; t < this.batches.length; t++) {
      if (this.batches[t]?.isEmpty) this.batches[t] = undefined;
      else this.dispatch(t);
    }
    await this.pool.drain();
    progress?.({ bytesRead, totalBytes: this.source.compressed ? undefined : this.source.size, rows: this.rowsRouted });
    return bytesRead;
  }

  /**
   * Input whose multibyte characters may contain ASCII bytes goes into one coordinator COPY,
   * unsplit: only PostgreSQL, converting it first, can find its rows and fields. Its line
   * numbers are the file's (the header counts as line 1), so errors still name the line.
   */
  private async streamWhole(session: CopySession, input: OpenedInput, header: boolean): Promise<number> {
    const copySql = this.copyInto(qualifiedName(this.table.schema, this.table.name), header ? ', HEADER true' : '');
    let bytes = 0;
    async function* chunks(): AsyncGenerator<Buffer> {
      bytes += input.head.length;
      yield input.head;
      for (;;) {
        const next = await input.rest.next();
        if (next.done) return;
        bytes += next.value.length;
        yield Buffer.from(next.value); // read buffers are reused; the socket may still hold this one
      }
    }
    let rows: number;
    try {
      rows = await session.copyWhole(copySql, chunks());
    } catch (err) {
      const failure = copyFailure(err);
      const pgErr = toDatabaseError(err, session.node);
      if (failure.copyLine === undefined) throw pgErr;
      throw new BadInputError({ file: this.source.name, line: failure.copyLine, column: failure.column },
        serverExplanation(pgErr), { cause: pgErr });
    }
    this.pool.targetRows[0] = rows;
    const stats = this.pool.nodeStats.get(session.node)!;
    stats.rows = rows;
    stats.bytes = bytes;
    this.rowsRouted = rows;
    return bytes;
  }

  private async flushResolver(): Promise<void> {
    if (!this.resolver) return;
    await this.resolver.flush(
      // Resolved rows were stored with their terminator.
      (target, row, line, span) => this.append(target, row, 0, row.length, -1, line, span),
      (line, reason, row) => this.rejects.reject(line, `${reason} (distribution column ${this.distColumn})`, row, this.distColumn),
    );
    this.throwPending();
  }

  private throwPending(): void {
    if (this.pendingError) throw this.pendingError;
  }

  // RowSink: the hot path, once per row.
  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number,
    fieldStart: number, fieldEnd: number, flags: number, line: number, copyLineSpan: number): void {
    if (this.pendingError) return;
    try {
      let target = 0;
      if (this.router) {
        if ((flags & FIELD_IS_NULL) !== 0) {
          this.rejects.reject(line, `NULL in distribution column ${this.distColumn}; Citus requires a value`,
            buf.subarray(rowStart, rowEnd), this.distColumn);
          return;
        }
        let h: number;
        let valueBuf: Buffer = buf;
        let vs = fieldStart;
        let ve = fieldEnd;
        if ((flags & FIELD_NEEDS_DECODE) !== 0) {
          valueBuf = decodeField(buf, fieldStart, fieldEnd, this.format)!;
          vs = 0;
          ve = valueBuf.length;
        }
        h = this.hasher!.hash(valueBuf, vs, ve);
        if (h === UNSURE) {
          if (ve === vs) {
            this.rejects.reject(line, `empty value in distribution column ${this.distColumn}`, buf.subarray(rowStart, rowEnd), this.distColumn);
            return;
          }
          const row = buf.subarray(rowStart, rowEnd);
          const terminated = contentEnd === rowEnd ? Buffer.concat([row, this.terminator]) : row;
          this.resolver!.add(terminated, valueBuf.toString('utf8', vs, ve), line, copyLineSpan);
          return;
        }
        target = this.router.shardIndexFor(h);
      }
      this.append(target, buf, rowStart, rowEnd, contentEnd, line, copyLineSpan);
    } catch (err) {
      this.pendingError = err instanceof Error ? err : new Error(String(err));
    }
  }

  badRow(buf: Buffer, rowStart: number, rowEnd: number, line: number, reason: string): void {
    if (this.pendingError) return;
    try {
      this.rejects.reject(line, reason, buf.subarray(rowStart, rowEnd));
    } catch (err) {
      this.pendingError = err instanceof Error ? err : new Error(String(err));
    }
  }

  // StagedRowsSink: rows the WebAssembly router took, one target's worth at a time.
  staged(target: number, bytes: Buffer, meta: Int32Array, rows: number): void {
    const current = this.batches[target];
    // Sent a little early rather than grown: staged rows come a staging area at a time.
    if (current && current.len + bytes.length > current.buf.length) this.dispatch(target);
    const b = this.openBatch(target);
    b.appendStaged(bytes, meta, rows);
    this.rowsRouted += rows;
    if (b.len >= this.batchBytes) this.dispatch(target);
  }

  private append(target: number, buf: Buffer, rowStart: number, rowEnd: number, contentEnd: number, line: number, span: number): void {
    const b = this.openBatch(target);
    b.append(buf, rowStart, rowEnd, contentEnd === rowEnd ? this.terminator : undefined, line, span);
    this.rowsRouted++;
    if (b.len >= this.batchBytes) this.dispatch(target);
  }

  /** The target's batch being filled, started from a free one when there is none. */
  private openBatch(target: number): Batch {
    let b = this.batches[target];
    if (!b) {
      b = this.freeBatches.pop() ?? new Batch(this.batchBytes + 4096);
      this.batches[target] = b;
    }
    return b;
  }

  /** Sends the target's batch to its nodes; the next row starts a new one. */
  private dispatch(target: number): void {
    const b = this.batches[target];
    if (!b) return;
    this.batches[target] = undefined;
    this.pool.dispatch(this.targets[target]!, b, (x) => this.release(x));
  }

  private release(b: Batch): void {
    b.reset();
    if (this.freeBatches.length < 64) this.freeBatches.push(b);
  }

  private async commitDistributed(sessions: CopySession[], result: JobResult): Promise<{ node: string; error: string }[]> {
    const gids = globalTransactionIds(this.jobId, sessions.length);
    await prepareAll(sessions, gids);
    if (this.options.crashAt === 'after-prepare') process.kill(process.pid, 'SIGKILL');
    let commitSent = false;
    try {
      await this.coordinator.query('BEGIN');
      await recordCommittedJob(this.coordinator, this.jobId, result, gids);
      commitSent = true;
      await this.coordinator.query('COMMIT');
    } catch (err) {
      const dbErr = toDatabaseError(err, 'coordinator', 'writing the commit record failed');
      // A server's answer (an error) to COMMIT, or a failure before it was sent, means no record.
      // Without an answer to COMMIT the record may exist: only the record decides from here.
      const unknown = commitSent && !(dbErr.sqlState && !/^(08|57P)/.test(dbErr.sqlState));
      if (unknown) return this.settleUnknownOutcome(sessions, dbErr);
      await this.coordinator.query('ROLLBACK').catch(() => {});
      await Promise.all(sessions.map((s) => s.abort()));
      throw dbErr;
    }
    if (this.options.crashAt === 'after-commit-record') process.kill(process.pid, 'SIGKILL');
    const outcome = await commitPreparedAll(sessions);
    return outcome.unfinished;
  }

  /**
   * The COMMIT of the commit record got no answer. The prepared transactions are no longer ours
   * to roll back; a fresh coordinator session asks the record, after taking the job's lock (held
   * by the old session's backend until it has ended, with its transaction). Failing that, they
   * are left to recovery, which applies the same rule.
   */
  private async settleUnknownOutcome(sessions: CopySession[], cause: DatabaseError): Promise<{ node: string; error: string }[]> {
    for (const s of sessions) s.leavePreparedToRecovery();
    // The old session's backend holds the job's lock until it exits; make it exit.
    destroyConnection(this.coordinator);
    let decision: Awaited<ReturnType<typeof decide>> | undefined;
    try {
      const fresh = await connectCoordinator(this.conn, `citus-adaptive-load job ${this.jobId} settle`, this.conn.timeouts);
      try {
        await fresh.query(`SELECT pg_advisory_lock(${jobLockKeySql('$1')})`, [this.jobId]);
        decision = await decide(fresh, this.jobId);
      } finally {
        endWithoutWaiting(fresh);
      }
    } catch {
      decision = undefined;
    }
    if (decision === 'commit') {
      const outcome = await commitPreparedAll(sessions);
      return outcome.unfinished;
    }
    if (decision === 'rollback') {
      for (const s of sessions) s.reclaimPrepared();
      await Promise.all(sessions.map((s) => s.abort()));
      throw new AdaptiveLoadError(`${cause.message}; the commit record was not written, so the load was rolled back`, { cause });
    }
    throw new CommitOutcomeUnknownError(`${cause.message}. The prepared transactions are kept: the commit record decides, `
      + 'and nothing else may. Run citus-adaptive-load recover (the daemon and the next load do it too) to finish them', { cause });
  }

  /** The coordinator path: the job record commits in the same transaction as the rows. */
  private async commitOnCoordinator(session: CopySession, result: JobResult): Promise<{ node: string; error: string }[]> {
    await recordCommittedJob(session, this.jobId, result, undefined);
    await session.run('COMMIT');
    return [];
  }
}

/** Skips the header row, then hands everything after it to the real sink. */
class HeaderSkipper implements RowSink {
  private skipped = false;

  constructor(private readonly next: RowSink) {}

  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number,
    fieldStart: number, fieldEnd: number, flags: number, line: number, span: number): void {
    if (!this.skipped) {
      this.skipped = true;
      return;
    }
    this.next.row(buf, rowStart, contentEnd, rowEnd, fieldStart, fieldEnd, flags, line, span);
  }

  badRow(buf: Buffer, rowStart: number, rowEnd: number, line: number, reason: string): void {
    // The header may have another field count than the data; it is skipped all the same.
    if (!this.skipped) {
      this.skipped = true;
      return;
    }
    this.next.badRow(buf, rowStart, rowEnd, line, reason);
  }
}

