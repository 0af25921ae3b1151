/**
 * One execution of a load, once the orchestrator (pipeline/loader.ts) has decided everything:
 * the table, its layout, the path, the input columns, the job. A LoadRun only moves rows: it
 * opens the COPY sessions, streams the input through the routing sink into the writer pool,
 * and commits (two-phase on the direct path). It plans nothing and records nothing beyond the
 * job's outcome, which commits with the rows.
 *
 * On failure everything it opened is aborted and closed before the error leaves execute();
 * prepared transactions whose commit record may exist are left to recovery, never rolled back.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { ColumnInfo, Distribution, ShardInfo, TableInfo } from '../catalog/catalog.js';
import type { ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { qualifiedName, quoteIdent, quoteLiteral } from '../connect/sql.js';
import { BadInputError, ClusterStateError, InputFileError, serverExplanation, toDatabaseError } from '../errors.js';
import { copyOptionsSql, type CopyFormat } from '../input/copy-format.js';
import type { InputSource } from '../input/input-source.js';
import type { OpenedInput } from '../input/open-input.js';
import { decodeField, FIELD_IS_NULL, FIELD_NEEDS_DECODE, RowScanner, type RowSink } from '../input/row-scanner.js';
import { FastRouter, fastPathSupports } from '../routing/fast-router.js';
import { ServerResolver } from '../routing/server-resolver.js';
import { ShardRouter } from '../routing/shard-router.js';
import { UNSURE, valueHasherFor, type ValueHasher } from '../routing/value-hasher.js';
import type { JobResult } from '../store/job-store.js';
import { finishChunkedJob, recordChunk, type ChunkManifest } from '../store/chunk-store.js';
import { ChunkPolicy, type CommitEvery } from './chunk-policy.js';
import type { BlockRanges } from '../input/table-source.js';
import { trace } from '../trace.js';
import { commitDistributed, commitOnCoordinator, type CommitStep, type UnfinishedCommits } from './commit.js';
import { copyFailure, CopySession, type InputSettings } from './copy-session.js';
import { checkPreparedTransactions } from './distributed-commit.js';
import type { LoadPhase, LoadProgress } from './load-events.js';
import type { Rejects } from './rejects.js';
import { HeaderSkipper, RoutingSink } from './routing-sink.js';
import { WriterPool, type CopyTarget } from './writer-pool.js';

/** Knobs of the data movement; every one has a default. */
export interface LoadTuning {
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
}

export interface LoadRunOptions {
  /** The job's coordinator session: it holds the job's lock, and the commit record is written on it. */
  coordinator: pg.Client;
  connection: ConnectionConfig;
  jobId: number;
  table: TableInfo;
  /** The layout rows are routed by; on the direct path, the one read under the shard locks. */
  distribution: Distribution;
  /** Direct path: throws unless the shard locks are still held; asked before the commit record. */
  checkLocks?: () => Promise<void>;
  /** 'direct': COPY into the shard placements, two-phase commit. 'coordinator': Citus's own COPY. */
  path: 'direct' | 'coordinator';
  /**
   * Coordinator path only: the input goes into one COPY unsplit, because its encoding's multibyte
   * characters may contain ASCII bytes and only PostgreSQL, converting it, can find its rows.
   */
  unsplit?: boolean;
  /** The table columns the input's fields hold, in order. */
  columns: ColumnInfo[];
  format: CopyFormat;
  source: InputSource;
  /** The coordinator's input-parsing settings (DateStyle...), set on every COPY session. */
  settings: InputSettings;
  rejects: Rejects;
  tuning?: LoadTuning;
  onProgress?: (p: LoadProgress) => void;
  /**
   * Called for 'streamed', 'prepared', 'commit-recorded', 'committed'; must not throw. A chunked
   * run passes 'prepared' and 'commit-recorded' once per chunk, the others once.
   */
  onPhase?: (phase: LoadPhase) => void;
  /**
   * The coordinator session PostgreSQL routes unsure values on (default `coordinator`): another
   * one when `coordinator` holds an open transaction a failed lookup would abort.
   */
  resolverSession?: pg.ClientBase;
  /** Direct path: work done in the commit record's transaction (commit.ts CommitStep). */
  commitSteps?: readonly CommitStep[];
  /** Direct path: that transaction is already open on `coordinator` (see commit.ts). */
  commitTransactionOpen?: boolean;
  /** --commit-every: the rows commit in chunks, each its own commit with its manifest row. */
  chunking?: ChunkedRun;
}

/**
 * A chunked run (--commit-every). Each chunk ends at a row boundary (chunk-policy.ts); its rows
 * are made durable by its own commit (two-phase on the direct path) whose coordinator
 * transaction also writes the chunk's manifest row (chunk-store.ts), after the rejects file was
 * fsynced up to the offset that row records. The same sessions begin a new transaction for the
 * next chunk; the last chunk's transaction also marks the job committed.
 */
export interface ChunkedRun {
  readonly every: CommitEvery;
  /** A resumed job's chunks already committed (0 for a new job): the first chunk's number. */
  readonly firstChunk: number;
  /** Where the input continues (a row boundary of a committed chunk; 0 for a new job), and its line. */
  readonly startOffset: number;
  readonly startLine: number;
  /** Chunks this run committed so far: the caller reads it after a failure too. */
  committed: number;
  /** Rows and rejected rows of the chunks this run committed. */
  rows: number;
  rejected: number;
  /** After each chunk's commit. */
  onChunk?: (m: ChunkManifest) => void;
  /**
   * A staging table's run: chunks are its heap block ranges (input/table-source.ts), cut where
   * the reader says a range ended, not by ChunkPolicy; `from` is where this run starts reading.
   */
  blocks?: BlockRanges;
  /**
   * A staging table's run: the coordinator session that writes the records of every chunk but
   * the last. The job's session holds the staging table's lock in the transaction that writes
   * the last chunk's record (with --then truncate|drop, the TRUNCATE or DROP), so the rows stay
   * put from the first chunk to the last (load/staging-fate.ts).
   */
  recordSession?: pg.Client;
}

/** The figures of one run, for the summary. */
export interface LoadRunResult {
  rows: number;
  seconds: number;
  nodes: { node: string; rows: number; bytes: number; connections: number }[];
  unfinished: UnfinishedCommits;
  /** Rows the WebAssembly router took (the rest went through the JavaScript scanner). */
  fastPathRows: number;
  /** Rows whose shard PostgreSQL decided. */
  serverResolvedRows: number;
}

const DEFAULT_BATCH = 1024 * 1024;
const DEFAULT_INFLIGHT = 32 * 1024 * 1024;
/** Unsure rows are resolved this many at a time (one query). */
const RESOLVE_BATCH = 1000;
const SHARE_SAMPLE_BYTES = 64 * 1024;

export class LoadRun {
  private readonly o: LoadRunOptions;
  private readonly targets: CopyTarget[];
  private readonly router: ShardRouter | undefined;
  private readonly hasher: ValueHasher | undefined;
  private readonly fast: FastRouter | undefined;
  private readonly sink: RoutingSink;
  private readonly fieldIndex: number;
  /** `COPY relation (columns) FROM STDIN WITH (format options, extra)` for this input. */
  private readonly copyInto: (relation: string, extraOptions?: string) => string;
  private readonly onPhase: (phase: LoadPhase) => void;
  private pool!: WriterPool;
  private resolver: ServerResolver | undefined;
  private all: CopySession[] = [];
  private scanner: RowScanner | undefined;
  private chunkStart = 0;
  /** A staging table's chunk: the heap block it starts at. */
  private chunkFromBlock = 0;
  /** pool.targetRows, node figures and rejects when the current chunk began. */
  private chunkBase: { targets: number[]; nodes: Map<string, { rows: number; bytes: number }>; rejected: number } | undefined;

  constructor(options: LoadRunOptions) {
    this.o = options;
    const { format, table, distribution: dist, columns } = options;
    this.onPhase = options.onPhase ?? (() => {});
    const colList = columns.map((c) => quoteIdent(c.name)).join(', ');
    const withOpts = copyOptionsSql(format, quoteLiteral) + (format.encoding !== 'UTF8' ? `, ENCODING ${quoteLiteral(format.encoding)}` : '');
    this.copyInto = (relation, extraOptions = '') => `COPY ${relation} (${colList}) FROM STDIN WITH (${withOpts}${extraOptions})`;
    const distColumn = dist.kind === 'hash' ? dist.column : undefined;
    this.fieldIndex = distColumn ? columns.findIndex((c) => c.name === distColumn) : -1;
    if (options.path === 'direct') {
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
    const requested = options.tuning?.batchBytes ?? DEFAULT_BATCH;
    // Bound the memory held in partly filled batches when there are very many shards.
    const batchBytes = Math.max(16 * 1024, Math.min(requested, Math.floor((32 * 1024 * 1024) / this.targets.length)));
    this.sink = new RoutingSink({
      targets: this.targets, router: this.router, hasher: this.hasher, distColumn, format, rejects: options.rejects, batchBytes,
    });
    const key = this.router ? columns[this.fieldIndex]! : undefined;
    if (key && dist.kind === 'hash' && options.tuning?.fastPath !== false && fastPathSupports(key.typeName)) {
      this.fast = new FastRouter({
        format, fieldIndex: this.fieldIndex, expectedFields: columns.length, typeName: key.typeName, maxChars: key.maxChars,
        shards: dist.shards, maxStagingBytes: batchBytes,
      }, this.sink);
    }
  }

  /**
   * Streams the input (its head already read) into the table and commits. `startedAt` is when
   * the whole load started, so the figures include connecting and planning.
   */
  async execute(input: OpenedInput, header: boolean, startedAt: number = performance.now()): Promise<LoadRunResult> {
    trace('load prepared');
    const shares = this.nodeRowShares(input.head, header);
    trace('node shares');
    const sessions = await this.openSessions(shares);
    trace('worker sessions open');
    const all = [...sessions.values()].flat();
    this.all = all;
    try {
      this.pool = new WriterPool(sessions, this.targets.length, this.o.source.name, this.o.rejects);
      if (this.router) {
        this.resolver = new ServerResolver(this.o.resolverSession ?? this.o.coordinator, this.o.table.oid,
          new Map(this.targets.map((t) => [t.shardId!, t.index])));
      }
      this.sink.attach(this.pool, this.resolver);
      const unsplit = this.o.path === 'coordinator' && this.o.unsplit === true;
      const bytesRead = unsplit ? await this.streamWhole(all[0]!, input, header) : await this.stream(input, header);
      trace('input streamed');
      this.onPhase('streamed');
      const rows = this.pool.targetRows.reduce((a, b) => a + b, 0);
      const seconds = (performance.now() - startedAt) / 1000;
      const nodes = [...this.pool.nodeStats].map(([node, s]) => ({ node, rows: s.rows, bytes: s.bytes, connections: sessions.get(node)?.length ?? 0 }));
      const result: JobResult = {
        rows, rejected: this.o.rejects.count, bytes: bytesRead, seconds, nodes,
        shards: this.targets.map((t) => ({ target: t.label, shardId: t.shardId, nodes: t.nodes, rows: this.pool.targetRows[t.index]! })),
      };
      const unfinished = this.o.chunking ? await this.closeChunk(true, startedAt) : this.o.path === 'direct'
        ? await commitDistributed({ coordinator: this.o.coordinator, conn: this.o.connection, jobId: this.o.jobId, onPhase: this.onPhase,
          ...(this.o.checkLocks ? { checkLocks: this.o.checkLocks } : {}),
          ...(this.o.commitSteps ? { steps: this.o.commitSteps, transactionOpen: this.o.commitTransactionOpen === true } : {}) }, all, result)
        : await commitOnCoordinator(all[0]!, this.o.jobId, result);
      trace('committed');
      this.onPhase('committed');
      return {
        rows, seconds, nodes, unfinished,
        fastPathRows: this.fast?.rowsTotal ?? 0,
        serverResolvedRows: this.resolver?.resolved ?? 0,
      };
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
    if (!this.router || this.o.path !== 'direct') return undefined;
    const perTarget = new Float64Array(this.targets.length);
    const hasher = this.hasher!;
    const router = this.router;
    const format = this.o.format;
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
    new RowScanner(format, this.fieldIndex, this.o.columns.length).push(head.subarray(0, SHARE_SAMPLE_BYTES), counter);
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
    const { path, connection: conn } = this.o;
    const perNode = new Map<string, { config: pg.ClientConfig; targets: number }>();
    if (path === 'direct') {
      for (const s of this.o.distribution.shards) {
        for (const p of s.placements) {
          const label = `${p.host}:${p.port}`;
          const entry = perNode.get(label) ?? { config: conn.workerConfig({ host: p.host, port: p.port }), targets: 0 };
          entry.targets++;
          perNode.set(label, entry);
        }
      }
    } else {
      perNode.set('coordinator', { config: conn.coordinator, targets: 1 });
    }
    const max = this.o.tuning?.connectionsPerNode ?? 4;
    const sessions = new Map<string, CopySession[]>();
    // Every node's opening is awaited, failed or not (each is bounded by the timeouts): a session
    // that finished opening after a failure was handled would stay idle in its transaction.
    const outcomes = await Promise.allSettled([...perNode].map(async ([node, { config, targets }]) => {
      // Nodes that will receive more rows get proportionally more of the connections.
      const share = rowShares?.get(node);
      const proportional = share === undefined ? max : Math.round(max * perNode.size * share);
      const count = path === 'direct' ? Math.max(1, Math.min(proportional, targets, max * 2)) : 1;
      const list: CopySession[] = [];
      sessions.set(node, list);
      // The node's connections open together: each costs a round trip or three (auth, settings).
      const opened = await Promise.allSettled(Array.from({ length: count }, async () => {
        const s = await CopySession.open(config, node, this.o.settings, `citus-adaptive-load job ${this.o.jobId}`, conn.timeouts);
        list.push(s);
        return s;
      }));
      const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
      await Promise.all([
        ...(path === 'direct' ? [checkPreparedTransactions(list[0]!, node, count)] : []),
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
    const { source, onProgress: progress } = this.o;
    const sink = this.sink;
    const chunking = this.o.chunking;
    const base = chunking?.startOffset ?? 0;
    const scanner = new RowScanner(this.o.format, Math.max(0, this.fieldIndex), this.o.columns.length,
      { maxRowBytes: this.o.tuning?.maxRowBytes, source: source.name, startOffset: base, firstLine: chunking?.startLine ?? 1 });
    scanner.bulk = this.fast;
    this.scanner = scanner;
    const limit = this.o.tuning?.maxInflightBytes ?? DEFAULT_INFLIGHT;
    let bytesRead = 0;
    const skipper = header ? new HeaderSkipper(sink) : undefined;
    let lastProgress = 0;
    const push = async (chunk: Buffer) => {
      bytesRead += chunk.length;
      // Until the header row has gone by (a chunk's cut may fall before its end).
      scanner.push(chunk, skipper && !skipper.done ? skipper : sink);
      sink.terminator = scanner.lineTerminator;
      sink.throwPending();
      if (sink.unresolved >= RESOLVE_BATCH) await sink.flushResolver();
      if (this.pool.bytesInFlight > limit) await this.pool.waitForRoom(limit);
      if (progress) {
        const now = performance.now();
        if (now - lastProgress > 200) {
          lastProgress = now;
          progress({ bytesRead: source.compressed ? 0 : base + bytesRead, totalBytes: source.compressed ? undefined : source.size, rows: sink.rowsRouted });
        }
      }
    };
    const blocks = chunking?.blocks;
    const policy = chunking && !blocks ? new ChunkPolicy(chunking.every, base, 0) : undefined;
    if (chunking) this.beginChunk(base, blocks?.from);
    // A staging table's chunk closes before the first buffer of a later block range: every
    // buffer the reader yields holds rows of one range, and every range ends at a row's end.
    const feedBlocks = async (chunk: Buffer) => {
      const ended = blocks!.ended.filter((e) => e.offset <= bytesRead && e.toBlock > this.chunkFromBlock);
      if (ended.length > 0) await this.closeChunk(false, undefined, ended[ended.length - 1]!.toBlock);
      await push(chunk);
    };
    // Chunked: each buffer goes in pieces that end where the chunk is due, and the chunk closes there.
    const feed = blocks ? feedBlocks : !policy ? push : async (chunk: Buffer) => {
      for (let from = 0; from < chunk.length;) {
        const len = policy.pieceLength(base + bytesRead, chunk.length - from, scanner.rows);
        await push(chunk.subarray(from, from + len));
        from += len;
        if (policy.due(base + bytesRead, scanner.rowsEndOffset, scanner.rows)) {
          await this.closeChunk(false);
          policy.next(scanner.rowsEndOffset, scanner.rows);
        }
      }
    };
    await feed(input.head);
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await input.rest.next();
      } catch (err) {
        throw new InputFileError(`${source.name}: read failed after ${bytesRead} bytes (${(err as Error).message})`, { cause: err });
      }
      if (next.done || scanner.ended) break;
      await feed(next.value);
    }
    scanner.end(sink);
    sink.throwPending();
    if (sink.rowsRouted === 0 && scanner.rows === 0 && !header && base === 0) {
      throw new InputFileError(`${source.name} holds no rows`);
    }
    await sink.flushResolver();
    sink.dispatchAll();
    await this.pool.drain();
    progress?.({ bytesRead: base + bytesRead, totalBytes: source.compressed ? undefined : source.size, rows: sink.rowsRouted });
    return bytesRead;
  }

  /** A chunk starts at input offset `offset`: its figures are counted from here. */
  private beginChunk(offset: number, fromBlock?: number): void {
    this.chunkStart = offset;
    if (fromBlock !== undefined) this.chunkFromBlock = fromBlock;
    this.chunkBase = {
      targets: [...this.pool.targetRows],
      nodes: new Map([...this.pool.nodeStats].map(([n, st]) => [n, { rows: st.rows, bytes: st.bytes }])),
      rejected: this.o.rejects.count,
    };
  }

  /**
   * Commits the rows of the current chunk with its manifest row (see ChunkedRun). Every row the
   * scanner emitted so far belongs to it, so its end is the scanner's rowsEndOffset. Then, unless
   * it was the last, the sessions begin the next chunk's transactions.
   */
  private async closeChunk(final: boolean, startedAt?: number, toBlock?: number): Promise<UnfinishedCommits> {
    const c = this.o.chunking!;
    const sink = this.sink;
    const scanner = this.scanner!;
    await sink.flushResolver();
    sink.dispatchAll();
    await this.pool.drain();
    sink.throwPending();
    const chunkBase = this.chunkBase!;
    const shards = this.targets.map((t) => ({
      target: t.label, shardId: t.shardId, nodes: t.nodes, rows: this.pool.targetRows[t.index]! - chunkBase.targets[t.index]!,
    }));
    const nodes = [...this.pool.nodeStats].map(([node, st]) => ({
      node, rows: st.rows - (chunkBase.nodes.get(node)?.rows ?? 0), bytes: st.bytes - (chunkBase.nodes.get(node)?.bytes ?? 0),
    }));
    const rows = shards.reduce((a, t) => a + t.rows, 0);
    const manifest: ChunkManifest = {
      chunk: c.firstChunk + c.committed, startOffset: this.chunkStart, endOffset: scanner.rowsEndOffset, endLine: scanner.nextLine,
      rows, rejected: this.o.rejects.count - chunkBase.rejected, rejectsOffset: this.o.rejects.fileOffset, shards, nodes,
      // The last chunk of a staging table reads to the end of the blocks the run planned.
      ...(c.blocks ? { fromBlock: this.chunkFromBlock, toBlock: final ? c.blocks.to : toBlock! } : {}),
    };
    // The rejected rows the manifest row accounts for are on disk before it can commit.
    this.o.rejects.sync();
    const seconds = startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000;
    const record = async (db: Queryable, gids: string[] | undefined) => {
      await recordChunk(db, this.o.jobId, manifest, gids);
      if (final) await finishChunkedJob(db, this.o.jobId, seconds);
    };
    const result: JobResult = { rows, rejected: manifest.rejected, bytes: manifest.endOffset - manifest.startOffset, seconds, nodes, shards };
    // Only the last chunk's transaction carries the staging table's fate (and its open lock).
    const coordinator = final ? this.o.coordinator : c.recordSession ?? this.o.coordinator;
    const fateSteps = final && this.o.commitSteps ? { steps: this.o.commitSteps, transactionOpen: this.o.commitTransactionOpen === true } : {};
    const unfinished = this.o.path === 'direct'
      ? await commitDistributed({ coordinator, conn: this.o.connection, jobId: this.o.jobId, onPhase: this.onPhase,
        record, ...fateSteps, ...(this.o.checkLocks ? { checkLocks: this.o.checkLocks } : {}) }, this.all, result)
      : await commitOnCoordinator(this.all[0]!, this.o.jobId, result, { record });
    c.committed++;
    c.rows += rows;
    c.rejected += manifest.rejected;
    trace(`chunk ${manifest.chunk} committed`);
    c.onChunk?.(manifest);
    if (final) return unfinished;
    if (unfinished.length > 0) {
      // The chunk's record exists: its prepared transactions are recovery's to commit, never ours to roll back.
      for (const s of this.all) if (s.preparedGid) s.leavePreparedToRecovery();
      throw new ClusterStateError(`chunk ${manifest.chunk} is committed, but COMMIT PREPARED did not finish on `
        + `${unfinished.map((u) => `${u.node} (${u.error})`).join(', ')}; recovery finishes it. Run the same command with --resume `
        + 'to continue after it');
    }
    await Promise.all(this.all.map((s) => s.begin()));
    this.beginChunk(manifest.endOffset, manifest.toBlock);
    return unfinished;
  }

  /**
   * Input whose multibyte characters may contain ASCII bytes goes into one coordinator COPY,
   * unsplit: only PostgreSQL, converting it first, can find its rows and fields. Its line
   * numbers are the file's (the header counts as line 1), so errors still name the line.
   */
  private async streamWhole(session: CopySession, input: OpenedInput, header: boolean): Promise<number> {
    const copySql = this.copyInto(qualifiedName(this.o.table.schema, this.o.table.name), header ? ', HEADER true' : '');
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
      throw new BadInputError({ file: this.o.source.name, line: failure.copyLine, column: failure.column },
        serverExplanation(pgErr), { cause: pgErr });
    }
    this.pool.targetRows[0] = rows;
    const stats = this.pool.nodeStats.get(session.node)!;
    stats.rows = rows;
    stats.bytes = bytes;
    this.sink.rowsRouted = rows;
    return bytes;
  }
}
