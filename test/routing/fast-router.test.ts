/**
 * The WebAssembly router against the JavaScript scanner and router it stands in for (which the
 * row-scanner and hashing suites hold to PostgreSQL's own parser and hash functions). On
 * generated inputs full of what makes the kernel give up (quotes, quoted keys, quoted newlines,
 * NULL markers, bad field counts, CRLF, 19-digit and padded integers, over-long varchar values,
 * rows larger than a staging area, text-format escapes), cut into random chunks, both paths must
 * put exactly the same rows, with the same input lines, into the same shards, over uneven
 * shard ranges listed out of order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ShardInfo } from '../../src/catalog/catalog.js';
import { ShardRouter } from '../../src/routing/shard-router.js';
import { UNSURE, valueHasherFor } from '../../src/routing/value-hasher.js';
import { resolveCopyFormat, type CopyFormat, type CopyFormatInput } from '../../src/input/copy-format.js';
import { FastRouter } from '../../src/routing/fast-router.js';
import { decodeField, FIELD_IS_NULL, FIELD_NEEDS_DECODE, RowScanner, type RowSink } from '../../src/input/row-scanner.js';
import { seededRandom } from '../../src/plan/random.js';

const FIELDS = 4;

/** Uneven hash ranges tiling int32, listed in shuffled order (as pg_dist_shard may return them). */
function unevenShards(rnd: () => number, count: number): ShardInfo[] {
  const cuts = new Set<number>();
  while (cuts.size < count - 1) cuts.add(Math.floor(rnd() * 4294967295) - 2147483647);
  const bounds = [-2147483648, ...[...cuts].sort((a, b) => a - b), 2147483648];
  const shards = bounds.slice(0, -1).map((min, i) => ({ shardId: String(1000 + i), min, max: bounds[i + 1]! - 1 }) as unknown as ShardInfo);
  for (let i = shards.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [shards[i], shards[j]] = [shards[j]!, shards[i]!];
  }
  return shards;
}

interface Routed {
  /** Per target: "line|row bytes" of every row it received, sorted. */
  targets: string[][];
  /** Rows the router could not place, and rows the scanner rejected, as "line|reason". */
  other: string[];
  /** Rows the kernel took. */
  fast: number;
}

/** The loader's routing, reduced to its decisions: where each row goes. */
class RoutingSink implements RowSink {
  readonly routed: Routed;
  private readonly router: ShardRouter;
  private readonly hasher;
  scanner!: RowScanner;

  constructor(private readonly format: CopyFormat, shards: ShardInfo[], typeName: string, maxChars: number | undefined) {
    this.routed = { targets: shards.map(() => []), other: [], fast: 0 };
    this.router = new ShardRouter(shards);
    this.hasher = valueHasherFor({ typeName, maxChars });
  }

  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number, fs: number, fe: number, flags: number, line: number): void {
    const bytes = Buffer.concat([buf.subarray(rowStart, rowEnd), contentEnd === rowEnd ? this.scanner.lineTerminator : Buffer.alloc(0)]);
    if (flags & FIELD_IS_NULL) return void this.routed.other.push(`${line}|null`);
    const value = flags & FIELD_NEEDS_DECODE ? decodeField(buf, fs, fe, this.format)! : buf.subarray(fs, fe);
    const h = this.hasher.hash(value, 0, value.length);
    if (h === UNSURE) return void this.routed.other.push(`${line}|unsure`);
    this.routed.targets[this.router.shardIndexFor(h)]!.push(`${line}|${bytes.toString('latin1')}`);
  }

  badRow(_b: Buffer, _s: number, _e: number, line: number, reason: string): void {
    this.routed.other.push(`${line}|${reason}`);
  }

  staged(target: number, bytes: Buffer, meta: Int32Array, rows: number): void {
    for (let i = 0; i < rows; i++) {
      const end = i + 1 < rows ? meta[2 * i + 2]! : bytes.length;
      this.routed.targets[target]!.push(`${meta[2 * i + 1]}|${bytes.toString('latin1', meta[2 * i]!, end)}`);
    }
    this.routed.fast += rows;
  }
}

function route(input: Buffer, format: CopyFormat, fieldIndex: number, shards: ShardInfo[], typeName: string,
  maxChars: number | undefined, withKernel: boolean, rnd: (() => number) | undefined): Routed {
  const sink = new RoutingSink(format, shards, typeName, maxChars);
  const scanner = new RowScanner(format, fieldIndex, FIELDS);
  sink.scanner = scanner;
  if (withKernel) {
    // A small staging area, so staging fills and rows outgrow it.
    scanner.bulk = new FastRouter({ format, fieldIndex, expectedFields: FIELDS, typeName, maxChars, shards, maxStagingBytes: 16 * 1024 }, sink);
  }
  let pos = 0;
  while (pos < input.length) {
    const size = rnd ? 1 + Math.floor(rnd() * (rnd() < 0.2 ? 64 : 256 * 1024)) : input.length;
    scanner.push(input.subarray(pos, pos + size), sink);
    pos += size;
  }
  scanner.end(sink);
  for (const t of sink.routed.targets) t.sort();
  sink.routed.other.sort();
  return sink.routed;
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

function keyText(rnd: () => number, typeName: string): string {
  if (typeName === 'text' || typeName === 'varchar') {
    return pick(rnd, ['tenant-1', 'tenant-2', 'acme', 'ünïcödé', '😀', 'a much longer tenant name', 'x', ' padded ', String(Math.floor(rnd() * 1e6))]);
  }
  const v = pick(rnd, [
    String(Math.floor(rnd() * 1e6)), String(-Math.floor(rnd() * 1e9)), ' 42 ', '+7', '007', '\t-3',
    '9223372036854775807', '-9223372036854775808', '123456789012345678', '1234567890123456789', '2147483648', '-2147483649',
    '32768', '-32768', '12a', '', '1 2',
  ]);
  return v;
}

function field(rnd: () => number, f: CopyFormat): string {
  if (f.kind === 'text') return pick(rnd, ['plain', 'with\\ttab', '\\N', 'back\\\\slash', 'é', '']);
  const q = String.fromCharCode(f.quote);
  return pick(rnd, ['plain', '', `${q}quoted, with delimiter${q}`, `${q}say ${q}${q}hi${q}${q}${q}`, `${q}two\nlines${q}`,
    `${q}${q}`, 'é', 'x'.repeat(20000), `${q}cr\r\nlf${q}`, 'NULL']);
}

function generate(rnd: () => number, f: CopyFormat, typeName: string, fieldIndex: number, rows: number, crlf: boolean): Buffer {
  const d = String.fromCharCode(f.delimiter);
  const q = String.fromCharCode(f.quote);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const fields = Array.from({ length: FIELDS }, () => field(rnd, f));
    const plainRow = rnd() < 0.6;
    if (plainRow) for (let i = 0; i < FIELDS; i++) fields[i] = pick(rnd, ['a', 'bb', '12.50', '2024-01-01 00:00:00+00']);
    let key = keyText(rnd, typeName);
    if (f.kind === 'csv' && rnd() < 0.05) key = `${q}${key}${q}`;
    if (rnd() < 0.02) key = f.nullString;
    fields[fieldIndex] = key;
    if (rnd() < 0.02) fields.pop();
    if (rnd() < 0.02) fields.push('extra');
    lines.push(fields.join(d));
  }
  const eol = crlf ? '\r\n' : '\n';
  return Buffer.from(lines.join(eol) + (rnd() < 0.5 ? eol : ''), 'utf8');
}

const FORMATS: { name: string; input: CopyFormatInput }[] = [
  { name: 'csv', input: { format: 'csv' } },
  { name: 'csv ; with \\ escape', input: { format: 'csv', delimiter: ';', escape: '\\' } },
  { name: 'csv | with NULL marker', input: { format: 'csv', delimiter: '|', null: 'NULL' } },
  { name: 'text', input: { format: 'text' } },
];

const KEYS: { typeName: string; maxChars?: number }[] = [
  { typeName: 'int2' }, { typeName: 'int4' }, { typeName: 'int8' }, { typeName: 'text' }, { typeName: 'varchar', maxChars: 8 },
];

describe('WebAssembly router routes exactly as the JavaScript path', () => {
  for (const { name, input } of FORMATS) {
    for (const key of KEYS) {
      it(`${name}, ${key.typeName}${key.maxChars ? `(${key.maxChars})` : ''} key: 40 generated inputs`, () => {
        const format = resolveCopyFormat(input);
        const rnd = seededRandom(`fast-${name}-${key.typeName}`);
        let rows = 0;
        let fast = 0;
        for (let round = 0; round < 40; round++) {
          const fieldIndex = round % FIELDS;
          const shards = unevenShards(rnd, 1 + Math.floor(rnd() * 40));
          const data = generate(rnd, format, key.typeName, fieldIndex, 1 + Math.floor(rnd() * 2000), round % 3 === 2);
          const seed = `${round}`;
          const reference = route(data, format, fieldIndex, shards, key.typeName, key.maxChars, false, seededRandom(seed));
          const kernel = route(data, format, fieldIndex, shards, key.typeName, key.maxChars, true, seededRandom(seed));
          assert.deepEqual(kernel.other, reference.other, `rejected or unroutable rows differ (round ${round})`);
          for (let t = 0; t < shards.length; t++) {
            assert.deepEqual(kernel.targets[t], reference.targets[t], `shard ${shards[t]!.shardId} got other rows (round ${round})`);
          }
          rows += reference.targets.reduce((a, t) => a + t.length, 0);
          fast += kernel.fast;
        }
        // The kernel must really have taken rows, or this compared the JavaScript path with itself.
        assert.ok(fast > rows * 0.3, `the kernel took only ${fast} of ${rows} routed rows`);
      });
    }
  }

  it('takes every row of a plain file and only the odd ones go to JavaScript', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const shards = unevenShards(seededRandom('plain'), 32);
    const lines = Array.from({ length: 50_000 }, (_, i) => `${i},${(i * 7919) % 100_000},${i % 5 === 0 ? '"a, b"' : 'x'},y`);
    lines[20_000] = '20000,"12345",x,y'; // quoted key: JavaScript decodes it
    lines[30_000] = '30000,,x,y'; // NULL key
    const data = Buffer.from(`${lines.join('\n')}\n`);
    const reference = route(data, format, 1, shards, 'int8', undefined, false, undefined);
    const kernel = route(data, format, 1, shards, 'int8', undefined, true, undefined);
    assert.deepEqual(kernel.targets, reference.targets);
    assert.deepEqual(kernel.other, ['30001|null']);
    // Line 1 (it fixes the line-ending style), the quoted key and the NULL key go to JavaScript.
    assert.equal(kernel.fast, 49_997);
  });
});
