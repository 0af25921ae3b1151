import { closeSync, openSync, writeSync } from 'node:fs';
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
 * to the rejects file as one JSON line {file, line, column?, reason, row} (row = its raw text).
 */
export class Rejects implements RejectSink {
  private fd: number | undefined;
  readonly rows: RejectedRow[] = [];

  constructor(
    private readonly file: string,
    private readonly maxErrors: number,
    private readonly path: string | undefined,
  ) {}

  get enabled(): boolean {
    return this.maxErrors > 0;
  }

  get count(): number {
    return this.rows.length;
  }

  reject(line: number, reason: string, row: Buffer, column?: string): void {
    if (this.rows.length >= this.maxErrors) {
      const limit = this.maxErrors > 0 ? ` (more than --max-errors ${this.maxErrors})` : '';
      throw new BadInputError({ file: this.file, line, column }, `${reason}${limit}`);
    }
    this.rows.push({ line, reason, column });
    if (this.path) {
      this.fd ??= openSync(this.path, 'w');
      const record = { file: this.file, line, ...(column ? { column } : {}), reason, row: row.toString('utf8').replace(/\r?\n$/, '') };
      writeSync(this.fd, `${JSON.stringify(record)}\n`);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
