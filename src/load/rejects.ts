import { isUtf8 } from 'node:buffer';
import { closeSync, existsSync, fsyncSync, openSync, truncateSync, writeSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import type { RejectSink } from './writer-pool.js';

export interface RejectedRow {
  readonly line: number;
  readonly reason: string;
  readonly column?: string;
}

/**
 * Rows set aside instead of loaded, like pgloader's reject files: with --max-errors N up to N
 * rows are rejected and the rest load; the N+1th fails the load. Each rejected row is written
 * to the rejects file as one JSON line {file, line, column?, reason, row} with row its raw text
 * without the line end, or, when those bytes are not valid UTF-8 (another input encoding, or the
 * very bytes that made the row bad), {..., rowBase64} instead: JSON text cannot hold arbitrary
 * bytes, and a rejects file must give back exactly the row that was read.
 *
 * A chunked load resumed after a crash continues its job's rejects: the rows rejected by its
 * committed chunks count against --max-errors (`resume.previous`), and the file is cut back to
 * the length it had after the last committed chunk (`resume.fileOffset`, from the manifest) and
 * appended to, so a row of a chunk that was rolled back and is read again is listed once.
 */
export class Rejects implements RejectSink {
  private fd: number | undefined;
  readonly rows: RejectedRow[] = [];
  private readonly previous: number;
  /** The rejects file's length: where the next record goes. */
  private written: number;
  private readonly append: boolean;

  constructor(
    private readonly file: string,
    private readonly maxErrors: number,
    private readonly path: string | undefined,
    resume?: { previous: number; fileOffset: number },
  ) {
    this.previous = resume?.previous ?? 0;
    this.written = 0;
    this.append = resume !== undefined;
    if (resume && path) {
      if (existsSync(path)) {
        truncateSync(path, resume.fileOffset);
        this.written = resume.fileOffset;
      }
      this.fd = openSync(path, 'a');
    }
  }

  get enabled(): boolean {
    return this.maxErrors > 0;
  }

  /** Rows rejected by this process. */
  get count(): number {
    return this.rows.length;
  }

  /** Rows rejected by the whole job (a resumed job's earlier chunks included): what --max-errors bounds. */
  get total(): number {
    return this.previous + this.rows.length;
  }

  /** The rejects file's length so far. */
  get fileOffset(): number {
    return this.written;
  }

  /** Makes every record written so far durable: before a chunk's commit record names fileOffset. */
  sync(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  reject(line: number, reason: string, row: Buffer, column?: string): void {
    if (this.total >= this.maxErrors) {
      const limit = this.maxErrors > 0 ? ` (more than --max-errors ${this.maxErrors})` : '';
      throw new BadInputError({ file: this.file, line, column }, `${reason}${limit}`);
    }
    this.rows.push({ line, reason, column });
    if (this.path) {
      this.fd ??= openSync(this.path, this.append ? 'a' : 'w');
      const record = { file: this.file, line, ...(column ? { column } : {}), reason, ...rowField(row) };
      this.written += writeSync(this.fd, `${JSON.stringify(record)}\n`);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The row without its line end: as text when it is valid UTF-8, else base64 of its bytes. */
function rowField(row: Buffer): { row: string } | { rowBase64: string } {
  let end = row.length;
  if (row[end - 1] === 0x0a) end--;
  if (end > 0 && end < row.length && row[end - 1] === 0x0d) end--;
  const bytes = row.subarray(0, end);
  return isUtf8(bytes) ? { row: bytes.toString('utf8') } : { rowBase64: bytes.toString('base64') };
}

/** The exact bytes of a rejected row, from one parsed line of a rejects file. */
export function readRejectedRow(record: { row?: unknown; rowBase64?: unknown }): Buffer {
  if (typeof record.rowBase64 === 'string') return Buffer.from(record.rowBase64, 'base64');
  if (typeof record.row === 'string') return Buffer.from(record.row, 'utf8');
  throw new Error('a rejects record has neither row nor rowBase64');
}
