import type { CopyFormat } from './copy-format.js';
import { BadInputError, InputFileError } from '../errors.js';

/**
 * A byte scanner that finds row boundaries exactly as PostgreSQL's COPY FROM does
 * (CopyReadLineText in copyfromparse.c: quotes toggle, the escape counts only inside quotes,
 * the first row fixes the line-ending style, `\.` alone ends the data) and locates one field,
 * the distribution column, without parsing or copying the others. The row's bytes are handed
 * on unchanged, so the worker's COPY sees exactly what this scanner saw.
 *
 * Longer than the other modules on purpose: it is one state machine (csv and text, resumable
 * across chunks in linear time, with PostgreSQL's error cases) whose states only make sense
 * read together, on the loader's per-row hot path; test/input/row-scanner.test.ts holds it to
 * PostgreSQL's own COPY.
 */

/** The distribution field contains quotes (csv) or backslashes (text): decode it before use. */
export const FIELD_NEEDS_DECODE = 1;
/** The distribution field is the NULL marker. */
export const FIELD_IS_NULL = 2;

export interface RowSink {
  /**
   * One complete row (`copyLineSpan`: how far it advances the line counter of the COPY that
   * reads it, which counts newlines inside CSV quotes): bytes [rowStart, rowEnd) with its line terminator, if it had one
   * (only the last row of the input can lack it: `rowEnd === contentEnd`; add the scanner's
   * `lineTerminator` then, so the rows after it in a batch stay separate).
   */
  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number,
    fieldStart: number, fieldEnd: number, fieldFlags: number, line: number, copyLineSpan: number): void;
  /** A row that cannot be loaded as it is; the scanner has already moved past it. */
  badRow(buf: Buffer, rowStart: number, rowEnd: number, line: number, reason: string): void;
}

/**
 * Takes runs of simple rows in bulk, bypassing the sink (the loader's WebAssembly router). It
 * may take none; the scanner then handles the row itself.
 */
export interface BulkRows {
  /** Rows taken by the last take(). */
  readonly taken: number;
  /** Takes complete rows of buf from rowStart (input line `line`); returns where it stopped. */
  take(buf: Buffer, rowStart: number, end: number, line: number, crlf: boolean): number;
  /** The next take() may see a buffer whose bytes changed. */
  forget(): void;
}

const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

type LineEnding = 'unknown' | 'lf' | 'crlf';
const LF_BYTES = Buffer.from('\n');
const CRLF_BYTES = Buffer.from('\r\n');

/** Default RowScannerOptions.maxRowBytes: 64 MiB, far below PostgreSQL's 1 GB field limit. */
export const DEFAULT_MAX_ROW_BYTES = 64 * 1024 * 1024;
/** The first slice of a chunk appended to a carried row: most straddling rows end within it. */
const FIRST_PIECE = 4096;
/** A carried row's buffer doubles up to this size, then grows to the row length limit at once. */
const LARGE_CARRY = 1 << 20;

export interface RowScannerOptions {
  /**
   * A row longer than this fails the scan with a BadInputError naming the line it starts on,
   * as soon as its bytes so far exceed it (an unclosed quote otherwise swallows the whole input
   * into one row). Default DEFAULT_MAX_ROW_BYTES.
   */
  maxRowBytes?: number;
  /** How errors name the input. Default `input`. */
  source?: string;
  /**
   * Where the first pushed byte is in the whole input, and the line it starts: a scan resumed in
   * the middle of a file (at a row boundary) reports the file's offsets and lines. Default 0 and 1.
   */
  startOffset?: number;
  firstLine?: number;
}

export class RowScanner {
  /**
   * The bytes of a row that is not complete yet (it started in an earlier chunk): carry[0,
   * carryLen). Its capacity grows geometrically (see append), so a long row costs linear
   * copying, and scanning continues where it stopped (the saved state below) instead of from the
   * row's start.
   */
  private carry: Buffer | undefined;
  private carryLen = 0;
  // The scan state of the carried row; positions are offsets in carry.
  /** Where scanning continues; 0: the row has not been scanned at all. */
  private resumeAt = 0;
  private rField = 0;
  private rFieldStart = -1;
  private rFieldEnd = -1;
  private rFlags = 0;
  private rInQuote = false;
  private rEmbeddedLines = 0;
  private rQuotedCR = 0;
  private rEolError: string | undefined;

  private line = 1;
  /** Input offset of the first pushed byte, plus every byte pushed since. */
  private pushedTo = 0;
  private eol: LineEnding = 'unknown';
  private finished = false;
  private readonly csv: boolean;
  private readonly delim: number;
  private readonly quote: number;
  /** -1 when the escape equals the quote: then quotes simply toggle, as in PostgreSQL. */
  private readonly escape: number;
  private readonly nullBytes: Buffer;
  /** 1 for the bytes that can end a field or a row or start a quote/escape; 0 for the rest. */
  private readonly byteClass = new Uint8Array(256);
  private readonly maxRowBytes: number;
  private readonly source: string;
  /** Rows seen so far, bad ones included. */
  rows = 0;
  /**
   * Work counters, so tests can check the work is linear in the input: bytes handed to the scan
   * loop (from where it starts), and bytes copied into carried rows.
   */
  bytesExamined = 0;
  bytesCopied = 0;
  /** Optional bulk taker for simple rows (never for a row carried across chunks). */
  bulk: BulkRows | undefined;

  constructor(
    format: CopyFormat,
    /** 0-based index of the field to locate. */
    private readonly fieldIndex: number,
    /** Number of fields every row must have. */
    private readonly expectedFields: number,
    options: RowScannerOptions = {},
  ) {
    this.csv = format.kind === 'csv';
    this.delim = format.delimiter;
    this.quote = this.csv ? format.quote : -1;
    this.escape = this.csv && format.escape !== format.quote ? format.escape : -1;
    this.nullBytes = Buffer.from(format.nullString, 'utf8');
    for (const b of [this.delim, LF, CR, this.csv ? this.quote : BACKSLASH]) this.byteClass[b] = 1;
    this.maxRowBytes = options.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
    this.source = options.source ?? 'input';
    this.pushedTo = options.startOffset ?? 0;
    this.line = options.firstLine ?? 1;
  }

  /**
   * The input offset just past the last row handed to the sink (good or bad): every row ending
   * at or before it has been emitted, and none after it. Free to ask: the scan loop is untouched,
   * it is the pushed bytes minus the carried, incomplete row. A chunked load cuts here.
   */
  get rowsEndOffset(): number {
    return this.pushedTo - (this.carry ? this.carryLen : 0);
  }

  /** The line the next row starts on (the line after the last emitted row). */
  get nextLine(): number {
    return this.line;
  }

  /** True once the end-of-data marker `\.` was seen; later input is ignored, as COPY does. */
  get ended(): boolean {
    return this.finished;
  }

  /** The terminator to add to a final row that has none: the input's own line-ending style. */
  get lineTerminator(): Buffer {
    return this.eol === 'crlf' ? CRLF_BYTES : LF_BYTES;
  }

  push(chunk: Buffer, sink: RowSink): void {
    if (this.finished) return;
    this.pushedTo += chunk.length;
    let buf = chunk;
    if (this.carry) {
      // Only the straddling row's bytes are copied, a growing slice at a time (copying whole
      // chunks would cost a second pass over every byte of the input); each slice is scanned
      // once, from where the last one stopped.
      const base = this.carryLen;
      let from = 0;
      for (let piece = FIRST_PIECE; ; piece *= 4) {
        // Never more than one byte past the limit: that byte already proves the row too long.
        const to = Math.min(chunk.length, from + piece, from + this.maxRowBytes + 1 - this.carryLen);
        this.append(chunk, from, to);
        const consumed = this.scan(this.carry!.subarray(0, this.carryLen), false, sink, true);
        if (this.finished) return;
        if (consumed > 0) {
          this.carry = undefined;
          buf = chunk.subarray(consumed - base);
          break;
        }
        if (this.carryLen > this.maxRowBytes) throw this.tooLong();
        if (to === chunk.length) return;
        from = to;
      }
    }
    const consumed = this.scan(buf, false, sink, false);
    if (consumed < buf.length && !this.finished) {
      // The partial row's state was saved by scan; its bytes are kept (the caller may reuse chunk).
      if (buf.length - consumed > this.maxRowBytes) throw this.tooLong();
      this.carryLen = 0;
      this.carry = Buffer.allocUnsafe(Math.min(Math.max(FIRST_PIECE, 2 * (buf.length - consumed)), this.maxRowBytes + 1));
      this.append(buf, consumed, buf.length);
    }
  }

  /** Call once after the last chunk: emits a final row that has no line terminator. */
  end(sink: RowSink): void {
    if (this.finished || !this.carry) return;
    const buf = this.carry.subarray(0, this.carryLen);
    this.carry = undefined;
    this.scan(buf, true, sink, true);
  }

  /**
   * Appends src[from, to) to the carried row, doubling its capacity as needed up to 1 MiB; past
   * that, straight to the limit. Memory the OS has not been written to is not resident, so this
   * costs only the bytes carried, and a long row is never held twice while it grows (an unclosed
   * quote reaches the limit holding the limit, not 1.5 times it).
   */
  private append(src: Buffer, from: number, to: number): void {
    const need = this.carryLen + (to - from);
    let carry = this.carry!;
    if (need > carry.length) {
      const doubled = 2 * carry.length;
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(doubled <= LARGE_CARRY ? doubled : Infinity, this.maxRowBytes + 1)));
      carry.copy(grown, 0, 0, this.carryLen);
      this.bytesCopied += this.carryLen;
      this.carry = carry = grown;
    }
    src.copy(carry, this.carryLen, from, to);
    this.carryLen = need;
    this.bytesCopied += to - from;
  }

  private tooLong(): BadInputError {
    return new BadInputError({ file: this.source, line: this.line },
      `row longer than ${this.maxRowBytes} bytes (unclosed quote?); if rows really are this long, raise the limit (--max-row-bytes)`);
  }

  /**
   * Scans whole rows of buf; returns how many bytes were consumed. With `carried`, buf is
   * the carried row: its scan continues from the saved state and stops after that one row. A
   * row left incomplete (not at EOF) has its state saved for the carry.
   */
  private scan(buf: Buffer, atEof: boolean, sink: RowSink, carried: boolean): number {
    const n = buf.length;
    const csv = this.csv;
    const delim = this.delim;
    const quote = this.quote;
    const escape = this.escape;
    const target = this.fieldIndex;
    const cls = this.byteClass;
    const special = csv ? quote : BACKSLASH;
    const expected = this.expectedFields;
    const maxRow = this.maxRowBytes;
    /** Position of the next quote (csv) or backslash (text) at or after rowStart; n when none. */
    let nextSpecial = -1;
    /** Position of the next carriage return at or after rowStart; n when none. */
    let nextCR = -1;
    let rowStart = 0;
    // A buffer longer than the row limit might hold a row the kernel would take whole.
    const bulk = !carried && n <= maxRow ? this.bulk : undefined;
    bulk?.forget();
    /** The row bulk stopped at: this scanner takes it without asking bulk again. */
    let bulkStop = -1;
    /** The carried row's saved state is loaded instead of starting the row afresh. */
    let resume = carried && this.resumeAt > 0;
    this.bytesExamined += n - (resume ? this.resumeAt : 0);

    while (rowStart < n) {
      if (carried && rowStart > 0) return rowStart;
      if (!resume) {
        if (bulk !== undefined && this.eol !== 'unknown' && rowStart !== bulkStop) {
          const next = bulk.take(buf, rowStart, n, this.line, this.eol === 'crlf');
          bulkStop = next;
          if (bulk.taken > 0) {
            this.line += bulk.taken;
            this.rows += bulk.taken;
            rowStart = next;
            continue;
          }
        }

        // Fast path: a row with no quote or backslash before its newline cannot hide a newline
        // or a delimiter, so memchr (indexOf) finds its end and only the delimiters need a look.
        if (this.eol !== 'unknown' && buf[rowStart] !== BACKSLASH) {
          if (nextSpecial < rowStart) {
            nextSpecial = buf.indexOf(special, rowStart);
            if (nextSpecial < 0) nextSpecial = n;
          }
          const lf = buf.indexOf(LF, rowStart);
          if (lf >= 0 && lf < nextSpecial) {
            if (nextCR < rowStart) {
              nextCR = buf.indexOf(CR, rowStart);
              if (nextCR < 0) nextCR = n;
            }
            // A carriage return other than the line end's own is an error the slow path names
            // (without this check, how a row was split into chunks could change the verdict).
            const contentEnd = nextCR === lf - 1 ? lf - 1 : lf;
            if (nextCR >= lf - 1 && (contentEnd !== lf) === (this.eol === 'crlf')) {
              if (lf - rowStart >= maxRow) throw this.tooLong();
              let field = 0;
              let fieldStart = target === 0 ? rowStart : -1;
              let fieldEnd = -1;
              for (let j = rowStart; j < contentEnd; j++) {
                if (buf[j] === delim) {
                  field++;
                  if (field === target) fieldStart = j + 1;
                  else if (field === target + 1) fieldEnd = j;
                }
              }
              if (field === target) fieldEnd = contentEnd;
              const line = this.line++;
              this.rows++;
              if (field + 1 !== expected) {
                sink.badRow(buf, rowStart, lf + 1, line, fieldCountError(expected, field + 1));
              } else {
                const flags = this.isNullMarker(buf, fieldStart, fieldEnd) ? FIELD_IS_NULL : 0;
                sink.row(buf, rowStart, contentEnd, lf + 1, fieldStart, fieldEnd, flags, line, 1);
              }
              rowStart = lf + 1;
              continue;
            }
          }
        }
        // The end-of-data marker: `\.` as the first thing in a row, then a line end or EOF.
        if (buf[rowStart] === BACKSLASH) {
          if (rowStart + 1 >= n && !atEof) return this.saveRow(rowStart, 0);
          if (buf[rowStart + 1] === DOT) {
            if (rowStart + 2 >= n && !atEof) return this.saveRow(rowStart, 0);
            const after = buf[rowStart + 2];
            if (rowStart + 2 >= n || after === LF || after === CR) {
              this.finished = true;
              return n;
            }
          }
        }
      }

      let i = rowStart;
      let field = 0;
      let fieldStart = target === 0 ? rowStart : -1;
      let fieldEnd = -1;
      let flags = 0;
      let inQuote = false;
      let embeddedLines = 0;
      let quotedCR = 0;
      let contentEnd = -1;
      let rowEnd = -1;
      let eolError: string | undefined;
      if (resume) {
        // The carried row starts at 0, so its saved offsets are positions in buf.
        resume = false;
        i = this.resumeAt;
        field = this.rField;
        fieldStart = this.rFieldStart;
        fieldEnd = this.rFieldEnd;
        flags = this.rFlags;
        inQuote = this.rInQuote;
        embeddedLines = this.rEmbeddedLines;
        quotedCR = this.rQuotedCR;
        eolError = this.rEolError;
      }
      /** Where the scan must continue when this chunk ends before the row does. */
      let stoppedAt = -1;

      for (;;) {
        if (inQuote) {
          // Inside quotes only the quote, the escape and newlines matter (CopyReadLineText).
          while (i < n) {
            const q = buf[i]!;
            if (q === escape) {
              if (i + 1 >= n) break; // the next chunk says what it escapes
              const next = buf[i + 1];
              i += next === quote || next === escape ? 2 : 1;
              continue;
            }
            if (q === quote) {
              inQuote = false;
              i++;
              break;
            }
            if (q === LF) embeddedLines++;
            else if (q === CR) quotedCR++;
            i++;
          }
          if (inQuote) {
            stoppedAt = i;
            break;
          }
          continue;
        }
        // Most bytes are ordinary: one table lookup each.
        while (i < n && cls[buf[i]!] === 0) i++;
        if (i >= n) {
          stoppedAt = n;
          break;
        }
        const c = buf[i]!;
        if (c === delim) {
          field++;
          if (field === target) fieldStart = i + 1;
          else if (field === target + 1) fieldEnd = i;
          i++;
          continue;
        }
        if (c === quote) {
          if (field === target) flags |= FIELD_NEEDS_DECODE;
          inQuote = true;
          i++;
          continue;
        }
        if (!csv && c === BACKSLASH) {
          // In text format a backslash escapes whatever byte follows, newlines included.
          if (i + 1 >= n) {
            if (!atEof) {
              stoppedAt = i;
              break;
            }
            i++;
            continue;
          }
          const next = buf[i + 1]!;
          if (next === DOT) eolError = 'the end-of-copy marker \\. may only stand alone on a line';
          if (next === LF) embeddedLines++;
          if (field === target) flags |= FIELD_NEEDS_DECODE;
          i += 2;
          continue;
        }
        if (c === LF) {
          if (this.eol === 'crlf') eolError = csv ? 'unquoted newline found in data' : 'literal newline found in data';
          else this.eol = 'lf';
          contentEnd = i;
          rowEnd = i + 1;
          break;
        }
        // c === CR
        if (i + 1 >= n && !atEof) {
          stoppedAt = i;
          break;
        }
        if (buf[i + 1] === LF) {
          if (this.eol === 'lf') eolError = csv ? 'unquoted carriage return found in data' : 'literal carriage return found in data';
          else this.eol = 'crlf';
          contentEnd = i;
          rowEnd = i + 2;
          break;
        }
        if (this.eol === 'unknown') {
          throw new InputFileError('the input uses carriage returns alone as line endings, which this tool does not support; convert them to \\n or \\r\\n');
        }
        eolError = csv ? 'unquoted carriage return found in data' : 'literal carriage return found in data';
        i++;
      }

      if (rowEnd < 0) {
        if (!atEof) {
          this.rField = field;
          this.rFieldStart = fieldStart < 0 ? -1 : fieldStart - rowStart;
          this.rFieldEnd = fieldEnd < 0 ? -1 : fieldEnd - rowStart;
          this.rFlags = flags;
          this.rInQuote = inQuote;
          this.rEmbeddedLines = embeddedLines;
          this.rQuotedCR = quotedCR;
          this.rEolError = eolError;
          return this.saveRow(rowStart, stoppedAt - rowStart);
        }
        if (inQuote) {
          this.rows++;
          sink.badRow(buf, rowStart, n, this.line, 'unterminated CSV quoted field');
          this.line += 1 + embeddedLines;
          return n;
        }
        contentEnd = n;
        rowEnd = n;
      }
      if (rowEnd - rowStart > maxRow) throw this.tooLong();

      if (field === target) fieldEnd = contentEnd;
      const line = this.line;
      this.line += 1 + embeddedLines;
      this.rows++;
      const fieldCount = field + 1;
      if (eolError !== undefined) {
        sink.badRow(buf, rowStart, rowEnd, line, eolError);
      } else if (fieldCount !== expected) {
        sink.badRow(buf, rowStart, rowEnd, line, fieldCountError(expected, fieldCount));
      } else {
        // COPY compares the raw field with the NULL marker: before de-escaping in text format,
        // and only for unquoted fields in csv.
        if ((!csv || (flags & FIELD_NEEDS_DECODE) === 0) && this.isNullMarker(buf, fieldStart, fieldEnd)) flags |= FIELD_IS_NULL;
        const copyLineSpan = csv ? 1 + (this.eol === 'crlf' ? quotedCR : embeddedLines) : 1;
        sink.row(buf, rowStart, contentEnd, rowEnd, fieldStart, fieldEnd, flags, line, copyLineSpan);
      }
      rowStart = rowEnd;
    }
    return n;
  }

  /**
   * The row from rowStart is not complete: scanning continues at rowStart + resumeAt when more
   * bytes come (0: from the row's start, nothing of it saved). Returns rowStart.
   */
  private saveRow(rowStart: number, resumeAt: number): number {
    this.resumeAt = resumeAt;
    return rowStart;
  }

  private isNullMarker(buf: Buffer, start: number, end: number): boolean {
    const nb = this.nullBytes;
    if (end - start !== nb.length) return false;
    for (let k = 0; k < nb.length; k++) if (buf[start + k] !== nb[k]) return false;
    return true;
  }
}

function fieldCountError(expected: number, found: number): string {
  return found < expected
    ? `missing data: expected ${expected} fields, found ${found}`
    : `extra data after last expected column: expected ${expected} fields, found ${found}`;
}

/**
 * Decodes one field as COPY would: CSV unquoting with the escape, or text-format backslash
 * escapes. Returns null for the NULL marker. Used off the hot path (fields that need decoding,
 * header lines, error messages).
 */
export function decodeField(buf: Buffer, start: number, end: number, format: CopyFormat): Buffer | null {
  const nb = Buffer.from(format.nullString, 'utf8');
  if (format.kind === 'csv') {
    let sawQuote = false;
    const out: number[] = [];
    let inQuote = false;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (!inQuote) {
        if (c === format.quote) { inQuote = true; sawQuote = true; continue; }
        out.push(c);
      } else {
        if (c === format.escape && i + 1 < end && (buf[i + 1] === format.escape || buf[i + 1] === format.quote)) {
          out.push(buf[i + 1]!);
          i++;
          continue;
        }
        if (c === format.quote) { inQuote = false; continue; }
        out.push(c);
      }
    }
    if (!sawQuote && buf.subarray(start, end).equals(nb)) return null;
    return Buffer.from(out);
  }
  if (buf.subarray(start, end).equals(nb)) return null;
  const out: number[] = [];
  for (let i = start; i < end; i++) {
    let c = buf[i]!;
    if (c === BACKSLASH && i + 1 < end) {
      c = buf[++i]!;
      if (c >= 0x30 && c <= 0x37) {
        let val = c - 0x30;
        for (let k = 0; k < 2 && i + 1 < end && buf[i + 1]! >= 0x30 && buf[i + 1]! <= 0x37; k++) val = (val << 3) + (buf[++i]! - 0x30);
        c = val & 0xff;
      } else if (c === 0x78 /* x */ && i + 1 < end && isHex(buf[i + 1]!)) {
        let val = hexValue(buf[++i]!);
        if (i + 1 < end && isHex(buf[i + 1]!)) val = (val << 4) + hexValue(buf[++i]!);
        c = val & 0xff;
      } else {
        c = TEXT_ESCAPES[c] ?? c;
      }
    }
    out.push(c);
  }
  return Buffer.from(out);
}

const TEXT_ESCAPES: Record<number, number> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b };

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}

/** One field as a string; plain fields (no quote or backslash) skip the byte-by-byte decoder. */
function fieldText(buf: Buffer, start: number, end: number, format: CopyFormat): string | null {
  const special = format.kind === 'csv' ? format.quote : BACKSLASH;
  const at = buf.indexOf(special, start);
  if (at < 0 || at >= end) {
    const nb = format.nullString;
    if (end - start === nb.length && buf.toString('utf8', start, end) === nb) return null;
    return buf.toString('utf8', start, end);
  }
  const v = decodeField(buf, start, end, format);
  return v === null ? null : v.toString('utf8');
}

/** Splits and decodes every field of one row's content [start, end) (header lines, diagnostics). */
export function splitRow(buf: Buffer, start: number, end: number, format: CopyFormat): (string | null)[] {
  const fields: (string | null)[] = [];
  let fieldStart = start;
  let inQuote = false;
  for (let i = start; i <= end; i++) {
    const c = i < end ? buf[i]! : -1;
    if (format.kind === 'csv') {
      if (inQuote && format.escape !== format.quote && c === format.escape && i + 1 < end
        && (buf[i + 1] === format.quote || buf[i + 1] === format.escape)) { i++; continue; }
      if (c === format.quote) { inQuote = !inQuote; continue; }
      if (inQuote) continue;
    } else if (c === BACKSLASH) { i++; continue; }
    if (c === format.delimiter || c === -1) {
      fields.push(fieldText(buf, fieldStart, i, format));
      fieldStart = i + 1;
    }
  }
  return fields;
}
