/**
 * The hot path of a load: every row the scanner (or the WebAssembly router) finds comes here, is
 * given its target (a shard, or the table on the coordinator path), and is appended to that
 * target's batch; a full batch goes to the writer pool. Rows whose shard the client cannot be
 * sure of wait for the server resolver; rows that cannot be loaded go to the rejects.
 *
 * Invariants: a row is counted once it is in a batch (or resolved into one); a batch belongs to
 * one target; the sink methods never throw into the scanner: the first error is kept and
 * rethrown by throwPending() between chunks.
 */
import { decodeField, FIELD_IS_NULL, FIELD_NEEDS_DECODE, type RowSink } from '../input/row-scanner.js';
import type { CopyFormat } from '../input/copy-format.js';
import type { StagedRowsSink } from '../routing/fast-router.js';
import type { ServerResolver } from '../routing/server-resolver.js';
import type { ShardRouter } from '../routing/shard-router.js';
import { UNSURE, type ValueHasher } from '../routing/value-hasher.js';
import { Batch } from './batch.js';
import type { Rejects } from './rejects.js';
import type { CopyTarget, WriterPool } from './writer-pool.js';

export interface RoutingSinkSpec {
  readonly targets: readonly CopyTarget[];
  /** Hash routing (hash-distributed table, direct path); absent: every row goes to target 0 (a reference table's one shard, or the table on the coordinator). */
  readonly router: ShardRouter | undefined;
  readonly hasher: ValueHasher | undefined;
  readonly distColumn: string | undefined;
  readonly format: CopyFormat;
  readonly rejects: Rejects;
  /** A batch is sent once it holds this many bytes. */
  readonly batchBytes: number;
}

/** Free batches kept for reuse; more would only hold memory. */
const FREE_BATCHES = 64;

export class RoutingSink implements RowSink, StagedRowsSink {
  private readonly targets: readonly CopyTarget[];
  private readonly router: ShardRouter | undefined;
  private readonly hasher: ValueHasher | undefined;
  private readonly distColumn: string | undefined;
  private readonly format: CopyFormat;
  private readonly rejects: Rejects;
  private readonly batchBytes: number;
  private readonly batches: (Batch | undefined)[];
  private readonly freeBatches: Batch[] = [];
  private pool!: WriterPool;
  private resolver: ServerResolver | undefined;
  rowsRouted = 0;
  /** The input's line terminator, for a final row that lacks one (the stream keeps it current). */
  terminator: Buffer = Buffer.from('\n');
  private pendingError: Error | undefined;

  constructor(spec: RoutingSinkSpec) {
    this.targets = spec.targets;
    this.router = spec.router;
    this.hasher = spec.hasher;
    this.distColumn = spec.distColumn;
    this.format = spec.format;
    this.rejects = spec.rejects;
    this.batchBytes = spec.batchBytes;
    this.batches = new Array(spec.targets.length);
  }

  /** Where full batches go, and who resolves unsure rows: known only once the sessions are open. */
  attach(pool: WriterPool, resolver: ServerResolver | undefined): void {
    this.pool = pool;
    this.resolver = resolver;
  }

  /** Rows waiting for the server to name their shard. */
  get unresolved(): number {
    return this.resolver?.size ?? 0;
  }

  throwPending(): void {
    if (this.pendingError) throw this.pendingError;
  }

  async flushResolver(): Promise<void> {
    if (!this.resolver) return;
    await this.resolver.flush(
      // Resolved rows were stored with their terminator.
      (target, row, line, span) => this.append(target, row, 0, row.length, -1, line, span),
      (line, reason, row) => this.rejects.reject(line, `${reason} (distribution column ${this.distColumn})`, row, this.distColumn),
    );
    this.throwPending();
  }

  /** At the end of the input: sends every partly filled batch. */
  dispatchAll(): void {
    for (let t = 0; t < this.batches.length; t++) {
      if (this.batches[t]?.isEmpty) this.batches[t] = undefined;
      else this.dispatch(t);
    }
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
      // Room past batchBytes: the row that crosses the limit still fits.
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
    if (this.freeBatches.length < FREE_BATCHES) this.freeBatches.push(b);
  }
}

/** Skips the header row, then hands everything after it to the real sink. */
export class HeaderSkipper implements RowSink {
  private skipped = false;

  constructor(private readonly next: RowSink) {}

  /** The header row went by: rows may go straight to the real sink. */
  get done(): boolean {
    return this.skipped;
  }

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
