import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { CopyFormat } from '../input/copy-format.js';
import type { InputSource } from '../input/input-source.js';
import { RowScanner, splitRow, type RowSink } from '../input/row-scanner.js';
import { InputFileError } from '../errors.js';
import { seededRandom } from './random.js';

/**
 * Sample size from stated error bounds. By the Dvoretzky–Kiefer–Wolfowitz inequality, n rows
 * drawn at random estimate every quantile and every value's share (null fraction, heavy-hitter
 * shares) within ±ε of the truth, all at once, with probability 1 − α when
 * n ≥ ln(2/α) / (2ε²). With ε = 0.01 and α = 0.05 that is 18,445 rows; we take 20,000.
 */
export const SAMPLE_ERROR = 0.01;
export const SAMPLE_CONFIDENCE = 0.95;
export const DEFAULT_SAMPLE_ROWS = Math.ceil(Math.log(2 / (1 - SAMPLE_CONFIDENCE)) / (2 * SAMPLE_ERROR ** 2) / 1000) * 1000 + 1000;

/** Rows per block read at a random offset: enough to amortize a read, few enough to spread the sample. */
const ROWS_PER_BLOCK = 50;
/**
 * The most all blocks together read. The row length is estimated from the first MiB; with one
 * row or none there (huge rows, or an unclosed quote making the rest of the file one row) the
 * estimate is the whole file, and unbounded blocks would read the file hundreds of times over.
 * Rows up to ~1.5 KB still fit 50 to a block.
 */
const MAX_SAMPLE_BYTES = 32 << 20;

export interface SampledRow {
  /** Decoded fields (null for the NULL marker). */
  readonly fields: (string | null)[];
  /** Relative position of the row in the input, 0..1 (for monotonicity). */
  readonly position: number;
}

export interface FileSample {
  readonly source: string;
  readonly header: string[] | undefined;
  readonly rows: SampledRow[];
  /** blocks/reservoir/whole: a file; system/bernoulli (TABLESAMPLE) or whole: a table (table-sampler.ts). */
  readonly method: 'blocks' | 'reservoir' | 'whole' | 'system' | 'bernoulli';
  readonly totalBytes: number | undefined;
  /** Estimated rows in the whole input. */
  readonly estimatedRows: number;
  readonly averageRowBytes: number;
  readonly seconds: number;
}

export interface SampleOptions {
  /** Rows to sample. Default DEFAULT_SAMPLE_ROWS. */
  rows?: number;
  /** Seed for reproducible samples. Default 1. */
  seed?: number;
  /** Whether line 1 is a header; 'auto' treats it as one when no field of it parses as a number. */
  header?: 'auto' | 'yes' | 'no';
}

class Collect implements RowSink {
  readonly rows: { start: number; end: number; buf: Buffer }[] = [];
  bad = 0;
  constructor(private readonly limit: number) {}
  row(buf: Buffer, rowStart: number, contentEnd: number): void {
    if (this.bad === 0 && this.rows.length < this.limit) this.rows.push({ start: rowStart, end: contentEnd, buf });
  }
  badRow(): void {
    this.bad++;
  }
}

/** Splits buf into rows (at most `limit`, stopping at the first malformed one). */
function rowsOf(buf: Buffer, format: CopyFormat, fields: number, limit: number, atEof: boolean): Collect {
  const sink = new Collect(limit);
  const scanner = new RowScanner(format, 0, fields);
  scanner.push(buf, sink);
  if (atEof) scanner.end(sink);
  return sink;
}

function fieldCountOfFirstRow(buf: Buffer, format: CopyFormat): number {
  const nl = buf.indexOf(0x0a);
  const end = nl < 0 ? buf.length : nl > 0 && buf[nl - 1] === 0x0d ? nl - 1 : nl;
  return splitRow(buf, 0, end, format).length;
}

/**
 * Where the first complete row after `buf[0]` starts, when buf begins at an arbitrary file
 * offset. Two hypotheses: the offset is outside quotes, or inside. Under each, row boundaries
 * are the newlines outside quotes; the right hypothesis is the one whose rows have the expected
 * field count. (In text format a newline is a boundary unless an odd run of backslashes escapes it.)
 */
export function resync(buf: Buffer, format: CopyFormat, fields: number, atEof: boolean): number | undefined {
  let best: { start: number; good: number } | undefined;
  const hypotheses = format.kind === 'csv' ? [false, true] : [false];
  for (const startInQuote of hypotheses) {
    const start = firstBoundary(buf, format, startInQuote);
    if (start === undefined) continue;
    const rows = rowsOf(buf.subarray(start), format, fields, 16, atEof);
    const good = rows.rows.length;
    if (good > 0 && (!best || good > best.good)) best = { start, good };
  }
  return best?.start;
}

function firstBoundary(buf: Buffer, format: CopyFormat, inQuote: boolean): number | undefined {
  let q = inQuote;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (format.kind === 'csv') {
      if (q && c === format.escape && format.escape !== format.quote && i + 1 < buf.length
        && (buf[i + 1] === format.quote || buf[i + 1] === format.escape)) { i++; continue; }
      if (c === format.quote) { q = !q; continue; }
    }
    if (c === 0x0a && !q) {
      if (format.kind === 'text') {
        let k = i - 1;
        while (k >= 0 && buf[k] === 0x5c) k--;
        if ((i - 1 - k) % 2 === 1) continue;
      }
      return i + 1;
    }
  }
  return undefined;
}

function looksLikeHeader(fields: (string | null)[]): boolean {
  return fields.every((f) => f !== null && f !== '' && !/^\s*[-+]?\d+(\.\d+)?\s*$/.test(f));
}

/**
 * Samples a file without reading it whole: `rows / 50` blocks at random offsets, each resynced
 * to a row boundary (quoted newlines included). Cost does not grow with the file. Inputs that
 * cannot be seeked (stdin, .gz) are read once with a reservoir sample instead.
 */
export async function sampleInput(source: InputSource, format: CopyFormat, options: SampleOptions = {}): Promise<FileSample> {
  const started = performance.now();
  const want = options.rows ?? DEFAULT_SAMPLE_ROWS;
  const rnd = seededRandom(`sample-${options.seed ?? 1}`);
  if (source.compressed || source.size === undefined || source.path === undefined) {
    return reservoirSample(source, format, want, rnd, options, started);
  }
  const fd = openSync(source.path, 'r');
  try {
    const size = source.size;
    const headBuf = Buffer.alloc(Math.min(size, 1 << 20));
    readSync(fd, headBuf, 0, headBuf.length, 0);
    const fields = fieldCountOfFirstRow(headBuf, format);
    const firstRows = rowsOf(headBuf, format, fields, 200, headBuf.length === size);
    if (firstRows.rows.length === 0) throw new InputFileError(`${source.name}: no well-formed row in the first MiB`);
    const firstFields = splitRow(headBuf, firstRows.rows[0]!.start, firstRows.rows[0]!.end, format);
    const header = options.header === 'yes' || (options.header !== 'no' && looksLikeHeader(firstFields))
      ? firstFields.map((f) => f ?? '') : undefined;
    const dataRows = header ? firstRows.rows.slice(1) : firstRows.rows;
    const headerBytes = header ? firstRows.rows[1]?.start ?? 0 : 0;
    const avg = dataRows.length > 1
      ? (dataRows[dataRows.length - 1]!.start - dataRows[0]!.start) / (dataRows.length - 1)
      : Math.max(1, size - headerBytes);
    const estimatedRows = Math.max(dataRows.length, Math.round((size - headerBytes) / avg));
    const decode = (r: { start: number; end: number; buf: Buffer }, offset: number): SampledRow => ({
      fields: splitRow(r.buf, r.start, r.end, format),
      position: (offset + r.start) / size,
    });

    // Small inputs: every row (the first 200 above were only for the header and the row width).
    if (estimatedRows <= want && size <= headBuf.length) {
      const all = rowsOf(headBuf, format, fields, Number.MAX_SAFE_INTEGER, true).rows;
      const rows = (header ? all.slice(1) : all).map((r) => decode(r, 0));
      return { source: source.name, header, rows, method: 'whole', totalBytes: size, estimatedRows: rows.length, averageRowBytes: avg, seconds: (performance.now() - started) / 1000 };
    }
    const blocks = Math.max(1, Math.ceil(want / ROWS_PER_BLOCK));
    const blockBytes = Math.min(Math.ceil(avg * (ROWS_PER_BLOCK + 2)) + 8192, Math.max(65536, Math.floor(MAX_SAMPLE_BYTES / blocks)));
    const offsets = Array.from({ length: blocks }, () => headerBytes + Math.floor(rnd() * Math.max(1, size - headerBytes - blockBytes)))
      .sort((a, b) => a - b);
    const rows: SampledRow[] = [];
    const buf = Buffer.alloc(blockBytes);
    // Blocks may not overlap (a row sampled twice biases every statistic): each starts after
    // the last row the previous one took.
    let taken = headerBytes;
    let spanBytes = 0;
    let spanRows = 0;
    for (const offset of offsets) {
      const n = readSync(fd, buf, 0, blockBytes, offset);
      const block = buf.subarray(0, n);
      const atEof = offset + n >= size;
      const start = offset === headerBytes ? 0 : resync(block, format, fields, atEof);
      if (start === undefined) continue;
      const got = rowsOf(block.subarray(start), format, fields, ROWS_PER_BLOCK + 1, atEof).rows;
      // The bytes from one row's start to the next measure whole rows, terminators included.
      for (let k = 0; k + 1 < got.length; k++) {
        const at = offset + start + got[k]!.start;
        if (at < taken) continue;
        rows.push(decode(got[k]!, offset + start));
        spanBytes += got[k + 1]!.start - got[k]!.start;
        spanRows++;
        taken = offset + start + got[k + 1]!.start;
      }
    }
    const sampledAvg = spanRows ? spanBytes / spanRows : avg;
    const sampledEstimate = Math.max(rows.length, Math.round((size - headerBytes) / sampledAvg));
    return { source: source.name, header, rows, method: 'blocks', totalBytes: size, estimatedRows: sampledEstimate,
      averageRowBytes: sampledAvg, seconds: (performance.now() - started) / 1000 };
  } finally {
    closeSync(fd);
  }
}

async function reservoirSample(source: InputSource, format: CopyFormat, want: number, rnd: () => number,
  options: SampleOptions, started: number): Promise<FileSample> {
  const stream = source.open();
  let header: string[] | undefined;
  let fields = -1;
  let scanner: RowScanner | undefined;
  let seen = 0;
  let bytes = 0;
  const reservoir: { fields: (string | null)[]; index: number }[] = [];
  const sink: RowSink = {
    row(buf, rowStart, contentEnd) {
      const decoded = splitRow(buf, rowStart, contentEnd, format);
      if (seen === 0 && header === undefined && (options.header === 'yes' || (options.header !== 'no' && looksLikeHeader(decoded)))) {
        header = decoded.map((f) => f ?? '');
        return;
      }
      // Algorithm R: row i replaces a random slot with probability want / i.
      if (reservoir.length < want) reservoir.push({ fields: decoded, index: seen });
      else {
        const j = Math.floor(rnd() * (seen + 1));
        if (j < want) reservoir[j] = { fields: decoded, index: seen };
      }
      seen++;
    },
    badRow() { /* sampling skips malformed rows; the load reports them */ },
  };
  for await (const chunk of stream) {
    const c = chunk as Buffer;
    bytes += c.length;
    if (!scanner) {
      fields = fieldCountOfFirstRow(c, format);
      scanner = new RowScanner(format, 0, fields, { source: source.name });
    }
    scanner.push(c, sink);
  }
  scanner?.end(sink);
  const rows = reservoir.map((r) => ({ fields: r.fields, position: seen > 1 ? r.index / (seen - 1) : 0 }));
  return { source: source.name, header, rows, method: 'reservoir', totalBytes: bytes, estimatedRows: seen,
    averageRowBytes: seen ? bytes / seen : 0, seconds: (performance.now() - started) / 1000 };
}
