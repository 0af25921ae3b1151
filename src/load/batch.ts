/**
 * Rows bound for one shard, held as the exact bytes of the input rows, plus what is needed to
 * name the input line when the worker's COPY rejects one of them ("COPY t_102008, line 17").
 */
export class Batch {
  buf: Buffer;
  len = 0;
  rows = 0;
  /** Input line (1-based, physical) where each row starts. */
  inputLines: Int32Array;
  /** Line number the worker's COPY will report for each row (COPY counts embedded newlines in CSV quotes). */
  copyLines: Int32Array;
  /** Byte offset of each row in buf. */
  offsets: Int32Array;
  private nextCopyLine = 1;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
    const rowsGuess = Math.max(64, capacity >>> 5);
    this.inputLines = new Int32Array(rowsGuess);
    this.copyLines = new Int32Array(rowsGuess);
    this.offsets = new Int32Array(rowsGuess);
  }

  get isEmpty(): boolean {
    return this.rows === 0;
  }

  /** Appends src[start, end) and `terminator` when the row lacks one (the last row of a file may). */
  append(src: Buffer, start: number, end: number, terminator: Buffer | undefined, inputLine: number, copyLineSpan: number): void {
    const need = end - start + (terminator ? terminator.length : 0);
    if (this.len + need > this.buf.length) this.grow(this.len + need);
    if (this.rows === this.offsets.length) this.growRows();
    this.offsets[this.rows] = this.len;
    this.inputLines[this.rows] = inputLine;
    this.copyLines[this.rows] = this.nextCopyLine;
    this.nextCopyLine += copyLineSpan;
    this.rows++;
    const buf = this.buf;
    let p = this.len + src.copy(buf, this.len, start, end);
    if (terminator) for (let i = 0; i < terminator.length; i++) buf[p++] = terminator[i]!;
    this.len = p;
  }

  /**
   * Appends rows staged elsewhere in one copy: their bytes, and per row a pair (offset in
   * `bytes`, input line). Each such row is one COPY line (no quoted newlines).
   */
  appendStaged(bytes: Uint8Array, meta: Int32Array, rows: number): void {
    if (this.len + bytes.length > this.buf.length) this.grow(this.len + bytes.length);
    while (this.rows + rows > this.offsets.length) this.growRows();
    const base = this.len;
    this.buf.set(bytes, base);
    const offsets = this.offsets;
    const inputLines = this.inputLines;
    const copyLines = this.copyLines;
    let r = this.rows;
    let copyLine = this.nextCopyLine;
    for (let i = 0; i < rows; i++, r++) {
      offsets[r] = base + meta[2 * i]!;
      inputLines[r] = meta[2 * i + 1]!;
      copyLines[r] = copyLine++;
    }
    this.rows = r;
    this.nextCopyLine = copyLine;
    this.len = base + bytes.length;
  }

  /** Index of the row the worker's COPY calls `line` (its line counter, 1-based). */
  rowForCopyLine(line: number): number {
    let lo = 0;
    let hi = this.rows - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.copyLines[mid]! <= line) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  rowBytes(k: number): Buffer {
    const end = k + 1 < this.rows ? this.offsets[k + 1]! : this.len;
    return this.buf.subarray(this.offsets[k]!, end);
  }

  /** A new batch with every row but row k (used to retry after a rejected row). */
  without(k: number): Batch {
    const b = new Batch(Math.max(this.len, 1024));
    for (let i = 0; i < this.rows; i++) {
      if (i === k) continue;
      const bytes = this.rowBytes(i);
      const span = (i + 1 < this.rows ? this.copyLines[i + 1]! : this.nextCopyLine) - this.copyLines[i]!;
      b.append(bytes, 0, bytes.length, undefined, this.inputLines[i]!, span);
    }
    return b;
  }

  reset(): void {
    this.len = 0;
    this.rows = 0;
    this.nextCopyLine = 1;
  }

  private grow(min: number): void {
    const next = Buffer.allocUnsafe(Math.max(min, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private growRows(): void {
    const n = this.offsets.length * 2;
    const grow = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.offsets = grow(this.offsets);
    this.inputLines = grow(this.inputLines);
    this.copyLines = grow(this.copyLines);
  }
}
