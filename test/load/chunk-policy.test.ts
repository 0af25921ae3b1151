/**
 * Where chunks are cut, without a database: the scanner's rowsEndOffset is the end of the last
 * row it emitted however the input is split into pushes, and a chunked feed (ChunkPolicy's
 * pieces, closing where due) cuts only at row ends, covers the input without gaps, and keeps
 * chunks at their byte limit (or row count).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { RowScanner, type RowSink } from '../../src/input/row-scanner.js';
import { ChunkPolicy, parseCommitEvery, type CommitEvery } from '../../src/load/chunk-policy.js';
import { seededRandom } from '../../src/plan/random.js';

/** A csv input with quoted newlines, quotes and uneven row lengths; returns it and each row's end offset. */
function input(rows: number, seed: number, longestNote = 300): { buf: Buffer; ends: number[] } {
  const rnd = seededRandom(String(seed));
  const parts: string[] = [];
  const ends: number[] = [];
  let at = 0;
  for (let i = 0; i < rows; i++) {
    const note = rnd() < 0.2 ? `"multi\nline, ""quoted"""` : 'x'.repeat(Math.floor(rnd() * longestNote));
    const line = `${i},${Math.floor(rnd() * 1000)},${note}\n`;
    parts.push(line);
    at += Buffer.byteLength(line);
    ends.push(at);
  }
  return { buf: Buffer.from(parts.join('')), ends };
}

const format = resolveCopyFormat({ format: 'csv' });

function recorder(): RowSink & { ends: number[]; base: number } {
  const rec = {
    ends: [] as number[],
    base: 0,
    row(_b: Buffer, _s: number, _c: number, rowEnd: number) { void rowEnd; },
    badRow() { throw new Error('no bad rows here'); },
  };
  return rec;
}

/** Feeds buf in pushes of random sizes as a chunked load does; returns the chunks' [start, end) and row counts. */
function chunked(buf: Buffer, every: CommitEvery, seed: number): { start: number; end: number; rows: number }[] {
  const rnd = seededRandom(String(seed));
  const scanner = new RowScanner(format, 1, 3);
  const sink = recorder();
  const policy = new ChunkPolicy(every, 0, 0);
  const chunks: { start: number; end: number; rows: number }[] = [];
  let offset = 0;
  let rowsAtStart = 0;
  while (offset < buf.length) {
    const read = buf.subarray(offset, Math.min(buf.length, offset + 1 + Math.floor(rnd() * 70_000)));
    for (let from = 0; from < read.length;) {
      const len = policy.pieceLength(offset, read.length - from, scanner.rows);
      scanner.push(read.subarray(from, from + len), sink);
      from += len;
      offset += len;
      if (policy.due(offset, scanner.rowsEndOffset, scanner.rows)) {
        chunks.push({ start: policy.chunkStart, end: scanner.rowsEndOffset, rows: scanner.rows - rowsAtStart });
        rowsAtStart = scanner.rows;
        policy.next(scanner.rowsEndOffset, scanner.rows);
      }
    }
  }
  scanner.end(sink);
  chunks.push({ start: policy.chunkStart, end: scanner.rowsEndOffset, rows: scanner.rows - rowsAtStart });
  return chunks;
}

describe('chunk boundaries', () => {
  it('rowsEndOffset is the end of the last emitted row, whatever the pushes', () => {
    const { buf, ends } = input(2000, 1);
    const rnd = seededRandom(String(2));
    const scanner = new RowScanner(format, 1, 3, { startOffset: 1000, firstLine: 7 });
    const emitted: number[] = [];
    const sink: RowSink = {
      row: () => { emitted.push(0); },
      badRow: () => { throw new Error('no bad rows here'); },
    };
    for (let at = 0; at < buf.length;) {
      const len = 1 + Math.floor(rnd() * 5000);
      scanner.push(buf.subarray(at, at + len), sink);
      at += len;
      const n = emitted.length;
      // Offsets are the input's, from startOffset.
      assert.equal(scanner.rowsEndOffset, 1000 + (n === 0 ? 0 : ends[n - 1]!), `after ${n} rows`);
    }
    scanner.end(sink);
    assert.equal(scanner.rowsEndOffset, 1000 + buf.length);
    assert.ok(scanner.nextLine > 2000 + 7, 'lines count on from firstLine, quoted newlines included');
  });

  for (const every of [{ bytes: 64 * 1024 }, { bytes: 5000 }, { rows: 97 }, { rows: 1000 }] as CommitEvery[]) {
    it(`cuts only at row ends and covers the input: ${JSON.stringify(every)}`, () => {
      const { buf, ends } = input(3000, 3);
      const rowEnds = new Set(ends);
      const chunks = chunked(buf, every, 4);
      assert.ok(chunks.length > 2);
      let at = 0;
      for (const [i, c] of chunks.entries()) {
        assert.equal(c.start, at, `chunk ${i} starts where the last ended`);
        assert.ok(rowEnds.has(c.end), `chunk ${i} ends at a row end`);
        at = c.end;
        if (i === chunks.length - 1) continue;
        if ('bytes' in every) {
          // At the limit, unless one row alone passes it.
          const next = ends.find((e) => e > c.end)!;
          assert.ok(c.end - c.start <= every.bytes || c.rows === 1, `chunk ${i}: ${c.end - c.start} bytes`);
          assert.ok(next - c.start > every.bytes, `chunk ${i} could have taken the next row`);
        } else {
          assert.ok(c.rows >= every.rows, `chunk ${i}: ${c.rows} rows`);
          assert.ok(c.rows <= every.rows + 40, `chunk ${i}: ${c.rows} rows, far past ${every.rows}`);
        }
      }
      assert.equal(at, buf.length);
      assert.equal(chunks.reduce((a, c) => a + c.rows, 0), 3000);
    });
  }

  it('a row limit holds from the first chunk on, whatever the rows\' length (short rows: no first guess overshoots)', () => {
    for (const longestNote of [0, 10, 2000]) {
      const { buf } = input(12_000, 5, longestNote);
      const chunks = chunked(buf, { rows: 1000 }, 6);
      for (const [i, c] of chunks.slice(0, -1).entries()) {
        assert.ok(c.rows >= 1000 && c.rows <= 1000 + 64 + 1, `rows up to ${longestNote} bytes long, chunk ${i}: ${c.rows} rows`);
      }
    }
  });

  it('parses --commit-every', () => {
    assert.deepEqual(parseCommitEvery('500000'), { rows: 500000 });
    assert.deepEqual(parseCommitEvery('256MB'), { bytes: 256 * 1024 ** 2 });
    assert.deepEqual(parseCommitEvery('1.5GiB'), { bytes: 1.5 * 1024 ** 3 });
    assert.deepEqual(parseCommitEvery('64kB'), { bytes: 65536 });
    assert.deepEqual(parseCommitEvery('100B'), { bytes: 100 });
    for (const bad of ['0', '', 'MB', '1.5', '-3', '12 rows', '5XB']) assert.equal(parseCommitEvery(bad), undefined, bad);
  });
});
