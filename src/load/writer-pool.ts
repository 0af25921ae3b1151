import type { Batch } from './batch.js';
import { copyFailure, type CopySession } from './copy-session.js';
import { AdaptiveLoadError, BadInputError, serverExplanation, toDatabaseError } from '../errors.js';

/** Where a batch goes: one shard (all of its placements), or the table itself on the coordinator. */
export interface CopyTarget {
  readonly index: number;
  readonly label: string;
  readonly shardId: string | undefined;
  readonly copySql: string;
  /** Nodes holding a placement; each receives every batch. */
  readonly nodes: readonly string[];
}

/** Receives rows that cannot be loaded; throws once more than --max-errors were rejected. */
export interface RejectSink {
  reject(line: number, reason: string, row: Buffer, column?: string): void;
  readonly enabled: boolean;
}

interface Job {
  readonly target: CopyTarget;
  readonly batch: Batch;
  readonly done: () => void;
}

export interface NodeStats {
  rows: number;
  bytes: number;
}

/**
 * Runs COPY batches on a bounded set of sessions per node. Each node has a FIFO queue; an idle
 * session takes the next batch. Memory is bounded by the bytes queued or in flight, and the
 * producer waits (waitForRoom) when they pass the limit: backpressure all the way to the file.
 */
export class WriterPool {
  private readonly queues = new Map<string, Job[]>();
  private readonly idle = new Map<string, CopySession[]>();
  private inflightBytes = 0;
  private active = 0;
  private waiters: (() => void)[] = [];
  failure: Error | undefined;
  readonly targetRows: number[];
  readonly nodeStats = new Map<string, NodeStats>();

  constructor(
    sessions: Map<string, CopySession[]>,
    targetCount: number,
    private readonly file: string,
    private readonly rejects: RejectSink,
  ) {
    for (const [node, list] of sessions) {
      this.queues.set(node, []);
      this.idle.set(node, [...list]);
      this.nodeStats.set(node, { rows: 0, bytes: 0 });
    }
    this.targetRows = new Array<number>(targetCount).fill(0);
  }

  get bytesInFlight(): number {
    return this.inflightBytes;
  }

  /** Queues the batch on every node of the target; `release` runs once all of them are done. */
  dispatch(target: CopyTarget, batch: Batch, release: (b: Batch) => void): void {
    this.throwIfFailed();
    let pending = target.nodes.length;
    this.inflightBytes += batch.len;
    const size = batch.len;
    const done = () => {
      if (--pending === 0) {
        this.inflightBytes -= size;
        release(batch);
        this.wake();
      }
    };
    for (const node of target.nodes) {
      this.queues.get(node)!.push({ target, batch, done });
      this.pump(node);
    }
  }

  /** Resolves when fewer than `limit` bytes are queued or in flight. */
  async waitForRoom(limit: number): Promise<void> {
    while (this.inflightBytes > limit && !this.failure) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.throwIfFailed();
  }

  /** Resolves when every queued batch has been written (or throws the first failure). */
  async drain(): Promise<void> {
    while ((this.active > 0 || [...this.queues.values()].some((q) => q.length > 0)) && !this.failure) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private pump(node: string): void {
    const queue = this.queues.get(node)!;
    const idle = this.idle.get(node)!;
    while (queue.length > 0 && idle.length > 0 && !this.failure) {
      const job = queue.shift()!;
      const session = idle.pop()!;
      this.active++;
      this.runJob(session, job).then(
        () => {
          this.active--;
          idle.push(session);
          job.done();
          this.pump(node);
        },
        (err: unknown) => {
          this.active--;
          this.failure ??= err instanceof Error ? err : new Error(String(err));
          this.wake();
        },
      );
    }
  }

  private async runJob(session: CopySession, job: Job): Promise<void> {
    const useSavepoint = this.rejects.enabled && job.target.nodes.length === 1;
    let batch = job.batch;
    for (;;) {
      try {
        if (useSavepoint) await session.run('SAVEPOINT cal_batch');
        const rows = await session.copy(job.target.copySql, batch);
        if (useSavepoint) await session.run('RELEASE SAVEPOINT cal_batch');
        const stats = this.nodeStats.get(session.node)!;
        stats.rows += rows;
        stats.bytes += batch.len;
        // Replicated placements hold the same rows: count them once per target.
        if (session.node === job.target.nodes[0]) this.targetRows[job.target.index]! += rows;
        return;
      } catch (err) {
        if (err instanceof AdaptiveLoadError && !('where' in err)) throw err;
        const failure = copyFailure(err);
        if (failure.copyLine === undefined) {
          throw toDatabaseError(err, session.node, `COPY into ${job.target.label} failed`);
        }
        const k = batch.rowForCopyLine(failure.copyLine);
        const line = batch.inputLines[k]!;
        const pgErr = toDatabaseError(err, session.node);
        const reason = `${serverExplanation(pgErr)} (in ${job.target.label} on ${session.node})`;
        if (!useSavepoint) {
          throw new BadInputError({ file: this.file, line, column: failure.column }, reason, { cause: pgErr });
        }
        await session.run('ROLLBACK TO SAVEPOINT cal_batch');
        this.rejects.reject(line, reason, Buffer.from(batch.rowBytes(k)), failure.column);
        batch = batch.without(k);
        if (batch.isEmpty) return;
      }
    }
  }
}
