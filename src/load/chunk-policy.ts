/**
 * Where a chunked load (--commit-every) cuts its input. A chunk ends at a row boundary, the end
 * of the last row the scanner has emitted (RowScanner.rowsEndOffset), so the scanner's hot loop
 * never checks a limit: instead each read buffer is pushed in pieces that end where the chunk
 * is due (its byte limit, or the estimated position of its row limit), and the chunk closes
 * after the piece that makes it due. Rows are therefore counted exactly to the piece, and bytes
 * to the row: a chunk of `--commit-every 256MB` ends at the last row end at or before 256 MB
 * (later only when one row alone is longer), one of `--commit-every 500000` after the first
 * piece that brings it to 500000 rows or more (at most about 64 rows over: pieces are cut at
 * the rows' average length, the first chunk's after a small probe).
 */

export type CommitEvery = { readonly rows: number } | { readonly bytes: number };

/** The smallest piece worth a push of its own: below this, a cut costs more than it saves. */
const MIN_PIECE = 4096;
/** A chunk's first piece before any row was seen: enough rows to measure their length. */
const FIRST_PROBE = MIN_PIECE;
/** ...but a piece never holds more than about this many rows past a row limit. */
const MAX_ROWS_OVER = 64;

export class ChunkPolicy {
  /** Input offset and scanner row count where the current chunk starts. */
  private startOffset: number;
  private startRows: number;
  /** Bytes per row so far, to place a row limit in a buffer. */
  private bytesSeen = 0;
  private rowsSeen = 0;

  constructor(private readonly every: CommitEvery, startOffset: number, startRows: number) {
    this.startOffset = startOffset;
    this.startRows = startRows;
  }

  get chunkStart(): number {
    return this.startOffset;
  }

  /**
   * How many of the `available` bytes at input offset `offset` to push before asking due()
   * again: all of them, or fewer when the chunk becomes due inside them.
   */
  pieceLength(offset: number, available: number, rows: number): number {
    if ('bytes' in this.every) {
      const want = this.startOffset + this.every.bytes - offset;
      // Past the limit (one row longer than a chunk): whole buffers until that row ends.
      return want <= 0 || want >= available ? available : want;
    }
    // Rows: cut where the limit's row should end at the average row length so far (of the closed
    // chunks, else of this one's rows; before any row, a small probe to learn it), never in
    // pieces so small that pushing them costs more.
    const inChunk = rows - this.startRows;
    const left = this.every.rows - inChunk;
    const perRow = this.rowsSeen > 0 ? this.bytesSeen / this.rowsSeen
      : inChunk > 0 ? (offset - this.startOffset) / inChunk : 0;
    if (perRow === 0) return Math.min(available, FIRST_PROBE);
    const want = Math.ceil(left * perRow);
    return want >= available ? available : Math.min(available, Math.max(Math.min(MIN_PIECE, Math.ceil(MAX_ROWS_OVER * perRow)), want));
  }

  /**
   * Whether the chunk must close now, given the input offset pushed so far and the scanner's
   * emitted rows and their end. A byte limit closes it once the pushed bytes reach the limit:
   * the rows ending before it are the chunk, the row it cuts through begins the next.
   */
  due(pushedOffset: number, rowsEndOffset: number, rows: number): boolean {
    if (rowsEndOffset <= this.startOffset) return false; // not one whole row yet
    if ('bytes' in this.every) return pushedOffset >= this.startOffset + this.every.bytes;
    return rows - this.startRows >= this.every.rows;
  }

  /** The chunk closed at `endOffset` after `rows` scanner rows: the next one starts there. */
  next(endOffset: number, rows: number): void {
    this.bytesSeen += endOffset - this.startOffset;
    this.rowsSeen += rows - this.startRows;
    this.startOffset = endOffset;
    this.startRows = rows;
  }
}

const UNITS: Readonly<Record<string, number>> = { k: 1024, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `500000` (rows) or `256MB`, `1.5GiB`, `64kB` (bytes; k/M/G/T, B optional, i optional: powers of 1024). */
export function parseCommitEvery(text: string): CommitEvery | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kKMGT])i?B?|(B))?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!m[2] && !m[3]) return Number.isInteger(n) && n > 0 ? { rows: n } : undefined;
  const unit = m[2] ? UNITS[m[2]]! : 1;
  const bytes = Math.round(n * unit);
  return bytes > 0 ? { bytes } : undefined;
}
