/**
 * The scanner against PostgreSQL's own COPY parser, on generated nasty inputs: embedded
 * delimiters, quotes, doubled quotes, custom escapes, newlines inside quotes, CRLF files,
 * backslash escapes, NULL markers, a final row with no newline, inputs cut into random chunks.
 * PostgreSQL decides what the rows and fields are; the scanner must agree on every row, and the
 * row bytes it hands on must make PostgreSQL build the same table again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pgCopyStreams from 'pg-copy-streams';
import pg from 'pg';
import { LocalCluster } from '../../scripts/local-cluster.js';
import { resolveCopyFormat, copyOptionsSql, type CopyFormat, type CopyFormatInput } from '../../src/input/copy-format.js';
import { decodeField, FIELD_IS_NULL, FIELD_NEEDS_DECODE, RowScanner, type RowSink } from '../../src/input/row-scanner.js';
import { quoteLiteral } from '../../src/connect/sql.js';
import { seededRandom } from '../../src/plan/random.js';
import { BadInputError } from '../../src/errors.js';

const FIELDS = 4;

interface ScannedRow {
  bytes: Buffer;
  field: string | null;
  line: number;
}

class Collector implements RowSink {
  rows: ScannedRow[] = [];
  bad: { line: number; reason: string }[] = [];
  scanner: RowScanner | undefined;
  constructor(private readonly format: CopyFormat) {}
  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number, fs: number, fe: number, flags: number, line: number): void {
    let field: string | null;
    if (flags & FIELD_IS_NULL) field = null;
    else if (flags & FIELD_NEEDS_DECODE) field = decodeField(buf, fs, fe, this.format)!.toString('utf8');
    else field = buf.toString('utf8', fs, fe);
    const bytes = Buffer.from(buf.subarray(rowStart, rowEnd));
    this.rows.push({ bytes: contentEnd === rowEnd ? Buffer.concat([bytes, this.scanner!.lineTerminator]) : bytes, field, line });
  }
  badRow(_b: Buffer, _s: number, _e: number, line: number, reason: string): void {
    this.bad.push({ line, reason });
  }
}

function scan(input: Buffer, format: CopyFormat, fieldIndex: number, rnd: () => number): Collector {
  const sink = new Collector(format);
  const scanner = new RowScanner(format, fieldIndex, FIELDS);
  sink.scanner = scanner;
  let pos = 0;
  while (pos < input.length) {
    const size = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 8 : 4096));
    scanner.push(input.subarray(pos, pos + size), sink);
    pos += size;
  }
  scanner.end(sink);
  return sink;
}


function csvField(rnd: () => number, f: CopyFormat): string {
  const d = String.fromCharCode(f.delimiter);
  const q = String.fromCharCode(f.quote);
  const e = String.fromCharCode(f.escape);
  const parts = ['a', 'bc', '', ' ', d, q, e, '\n', '\r\n', 'é', '😀', '\\.', '\\', '\\N', '7'];
  let raw = '';
  const len = Math.floor(rnd() * 5);
  for (let i = 0; i < len; i++) raw += parts[Math.floor(rnd() * parts.length)];
  const needsQuote = raw.includes(d) || raw.includes(q) || raw.includes('\n') || raw.includes('\r') || raw.includes(e)
    || raw === '' || raw.startsWith('\\.');
  if (!needsQuote && rnd() < 0.8) return raw;
  if (raw === '' && rnd() < 0.5) return ''; // unquoted empty: NULL
  let out = '';
  for (const ch of raw) out += ch === q || ch === e ? e + ch : ch;
  return q + out + q;
}

function textField(rnd: () => number, f: CopyFormat): string {
  if (rnd() < 0.1) return '\\N';
  const d = String.fromCharCode(f.delimiter);
  const parts = ['a', 'bc', ' ', '\\t', '\\n', '\\\\', '\\x41', '\\101', 'é', '😀', '\\r', `\\${d}`, '"', '\\\n', '7'];
  let s = '';
  const len = Math.floor(rnd() * 5);
  for (let i = 0; i < len; i++) s += parts[Math.floor(rnd() * parts.length)];
  return s;
}

function generate(rnd: () => number, f: CopyFormat, rows: number, crlf: boolean): Buffer {
  const d = String.fromCharCode(f.delimiter);
  const eol = crlf ? '\r\n' : '\n';
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const fields = Array.from({ length: FIELDS }, () => (f.kind === 'csv' ? csvField(rnd, f) : textField(rnd, f)));
    // In text format a raw newline after a backslash escape stays inside the row; avoid a
    // trailing lone backslash, which would escape the delimiter.
    lines.push(fields.map((x) => (x.endsWith('\\') && !x.endsWith('\\\\') ? `${x}a` : x)).join(d));
  }
  // Sometimes the last row has no line terminator.
  return Buffer.from(lines.join(eol) + (rnd() < 0.5 ? eol : ''), 'utf8');
}

async function pgRows(client: pg.Client, input: Buffer, format: CopyFormat, fieldIndex: number): Promise<(string | null)[]> {
  await client.query('TRUNCATE scan_oracle RESTART IDENTITY');
  await new Promise<void>((resolve, reject) => {
    const s = client.query(pgCopyStreams.from(
      `COPY scan_oracle (c0, c1, c2, c3) FROM STDIN WITH (${copyOptionsSql(format, quoteLiteral)})`));
    s.on('error', reject);
    s.on('finish', () => resolve());
    s.end(input);
  });
  const r = await client.query<{ v: string | null }>(`SELECT c${fieldIndex} AS v FROM scan_oracle ORDER BY rn`);
  return r.rows.map((x) => x.v);
}

const FORMATS: { name: string; input: CopyFormatInput }[] = [
  { name: 'csv default', input: { format: 'csv' } },
  { name: 'csv ; with \\ escape', input: { format: 'csv', delimiter: ';', escape: '\\' } },
  { name: "csv | with ' quote and NULL marker", input: { format: 'csv', delimiter: '|', quote: "'", null: 'NULL' } },
  { name: 'text default', input: { format: 'text' } },
  { name: 'text with , delimiter', input: { format: 'text', delimiter: ',' } },
];

describe('row scanner agrees with PostgreSQL COPY', () => {
  let cluster: LocalCluster;
  let client: pg.Client;
  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    client = new pg.Client({ connectionString: cluster.coordinator.url });
    await client.connect();
    await client.query('CREATE TABLE scan_oracle (rn bigint GENERATED ALWAYS AS IDENTITY, c0 text, c1 text, c2 text, c3 text)');
  });
  after(async () => {
    await client?.end();
    await cluster?.stop();
  });

  for (const { name, input } of FORMATS) {
    for (const crlf of [false, true]) {
      it(`${name}${crlf ? ', CRLF' : ''}: 300 generated inputs`, async () => {
        const format = resolveCopyFormat(input);
        const rnd = seededRandom(`${name}-${crlf}`);
        let rowsCompared = 0;
        for (let round = 0; round < 300; round++) {
          const fieldIndex = round % FIELDS;
          const data = generate(rnd, format, 1 + Math.floor(rnd() * 12), crlf);
          let expected: (string | null)[];
          try {
            expected = await pgRows(client, data, format, fieldIndex);
          } catch (err) {
            throw new Error(`PostgreSQL rejected generated input ${JSON.stringify(data.toString())}: ${(err as Error).message}`);
          }
          const ours = scan(data, format, fieldIndex, rnd);
          assert.deepEqual(ours.bad, [], `scanner rejected rows PostgreSQL accepted in ${JSON.stringify(data.toString())}`);
          assert.deepEqual(ours.rows.map((r) => r.field), expected, `fields differ for ${JSON.stringify(data.toString())}`);
          // The row bytes handed on unchanged must make PostgreSQL build the same rows again.
          const again = await pgRows(client, Buffer.concat(ours.rows.map((r) => r.bytes)), format, fieldIndex);
          assert.deepEqual(again, expected);
          rowsCompared += expected.length;
        }
        assert.ok(rowsCompared > 1000);
      });
    }
  }

  it('reports malformed rows with their line numbers', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const rnd = seededRandom('malformed');
    const data = Buffer.from('1,2,3,4\n5,6,7\n"multi\nline",b,c,d\n8,9,10,11,12\n13,"open,14,15,16\n');
    const ours = scan(data, format, 1, rnd);
    assert.deepEqual(ours.rows.map((r) => r.line), [1, 3]);
    assert.deepEqual(ours.bad, [
      { line: 2, reason: 'missing data: expected 4 fields, found 3' },
      { line: 5, reason: 'extra data after last expected column: expected 4 fields, found 5' },
      { line: 6, reason: 'unterminated CSV quoted field' },
    ]);
  });

  it('stops at the end-of-data marker like COPY', () => {
    const format = resolveCopyFormat({ format: 'text' });
    const ours = scan(Buffer.from('a\tb\tc\td\n\\.\ne\tf\tg\th\n'), format, 0, seededRandom('eod'));
    assert.deepEqual(ours.rows.map((r) => r.field), ['a']);
  });
});

/** Everything the scanner reports, in order, with the row bytes copied out. */
class Recorder implements RowSink {
  readonly events: string[] = [];
  row(buf: Buffer, rowStart: number, contentEnd: number, rowEnd: number, fs: number, fe: number, flags: number, line: number, span: number): void {
    this.events.push(`row ${line}+${span} [${buf.toString('latin1', rowStart, rowEnd)}] content ${contentEnd - rowStart}`
      + ` field ${fs < 0 ? '-' : `[${buf.toString('latin1', fs, fe)}]`} flags ${flags}`);
  }
  badRow(buf: Buffer, rowStart: number, rowEnd: number, line: number, reason: string): void {
    this.events.push(`bad ${line} [${buf.toString('latin1', rowStart, rowEnd)}] ${reason}`);
  }
}

/** Feeds input in the given chunk sizes (cycled); returns what the sink saw, a throw included. */
function record(input: Buffer, format: CopyFormat, fieldIndex: number, sizes: number[], options = {}): { events: string[]; scanner: RowScanner } {
  const sink = new Recorder();
  const scanner = new RowScanner(format, fieldIndex, FIELDS, options);
  try {
    let pos = 0;
    for (let k = 0; pos < input.length; k++) {
      // A fresh copy each time, overwritten after the push: the loader's read buffers are reused.
      const size = sizes[k % sizes.length]!;
      const chunk = Buffer.from(input.subarray(pos, pos + size));
      scanner.push(chunk, sink);
      chunk.fill(0x23);
      pos += size;
      if (scanner.ended) break;
    }
    scanner.end(sink);
    sink.events.push(`end rows ${scanner.rows} ended ${scanner.ended} eol ${JSON.stringify(scanner.lineTerminator.toString())}`);
  } catch (err) {
    sink.events.push(`throw ${(err as Error).message}`);
  }
  return { events: sink.events, scanner };
}

/** Byte soup from the characters that matter to the scanner, valid or not. */
function soup(rnd: () => number, f: CopyFormat, length: number, crlf: boolean): Buffer {
  const d = String.fromCharCode(f.delimiter);
  const parts = f.kind === 'csv'
    ? ['a', 'bc', d, d, '"', '""', String.fromCharCode(f.quote), String.fromCharCode(f.escape), '\\', '\\.', '\n', crlf ? '\r\n' : '\n', '\r', '7']
    : ['a', 'bc', d, d, '\\', '\\\\', '\\.', '\\\n', '\\.\n', '\n', crlf ? '\r\n' : '\n', '\r', '\\N', '7'];
  let s = '';
  while (s.length < length) s += parts[Math.floor(rnd() * parts.length)];
  return Buffer.from(s, 'latin1');
}

describe('row scanner: chunking, row length limit, linear work', () => {
  it('gives the same rows, fields and lines whatever the chunk sizes', () => {
    const rnd = seededRandom('chunk-equivalence');
    let compared = 0;
    for (const { name, input } of FORMATS) {
      const format = resolveCopyFormat(input);
      for (let round = 0; round < 150; round++) {
        const crlf = round % 2 === 1;
        const data = round % 3 === 0
          ? soup(rnd, format, 1 + Math.floor(rnd() * 300), crlf)
          : generate(rnd, format, 1 + Math.floor(rnd() * 12), crlf);
        const fieldIndex = round % FIELDS;
        const whole = record(data, format, fieldIndex, [data.length]).events;
        const chunkings = [[1], [2], [3], [1, 7, 2, 64], Array.from({ length: 8 }, () => 1 + Math.floor(rnd() * data.length))];
        for (const sizes of chunkings) {
          const chunked = record(data, format, fieldIndex, sizes).events;
          assert.deepEqual(chunked, whole, `${name}: chunks ${sizes.join(',')} of ${JSON.stringify(data.toString('latin1'))}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 3000);
  });

  it('stops at the end-of-data marker split across chunks', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const data = Buffer.from('a,"b\r\nc",c,d\r\n\\.\r\ne,f,g,h\r\n');
    const whole = record(data, format, 1, [data.length]).events;
    assert.match(whole.at(-1)!, /rows 1 ended true/);
    for (let size = 1; size < data.length; size++) assert.deepEqual(record(data, format, 1, [size]).events, whole);
  });

  it('fails a row longer than maxRowBytes at once, naming the line it starts on', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const head = '1,2,3,4\n"two\nlines",b,c,d\n';
    const input = Buffer.from(`${head}5,"open quote,6,7\n${'8,9,10,11\n'.repeat(100_000)}`);
    for (const sizes of [[64], [65536], [input.length]]) {
      const sink = new Recorder();
      const scanner = new RowScanner(format, 0, FIELDS, { maxRowBytes: 1000, source: 'orders.csv' });
      let fed = 0;
      const err = assert.throws(() => {
        for (let pos = 0; pos < input.length; pos += sizes[0]!) {
          fed += sizes[0]!;
          scanner.push(input.subarray(pos, pos + sizes[0]!), sink);
        }
        scanner.end(sink);
      }, BadInputError) as unknown;
      void err;
      assert.deepEqual(sink.events.map((e) => e.slice(0, 6)), ['row 1+', 'row 2+']);
      // Small chunks: it stops soon after the limit instead of reading on to the end.
      if (sizes[0] === 64) assert.ok(fed < head.length + 1000 + 64 * 70, `read ${fed} bytes before failing`);
    }
    const scanner = new RowScanner(format, 0, FIELDS, { maxRowBytes: 1000, source: 'orders.csv' });
    assert.throws(() => { scanner.push(input.subarray(0, 4096), new Recorder()); },
      (e: unknown) => e instanceof BadInputError && e.position.line === 4
        && e.message.startsWith('orders.csv:4: row longer than 1000 bytes (unclosed quote?)'));
  });

  it('lets rows up to maxRowBytes through, quoted newlines included', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const row = `1,"${'x\n'.repeat(480)}",3,4\n`; // 969 bytes
    const input = Buffer.from(`a,b,c,d\n${row}${row}`);
    const { events } = record(input, format, 0, [100], { maxRowBytes: row.length });
    assert.deepEqual(events.map((e) => e.slice(0, 8)), ['row 1+1 ', 'row 2+48', 'row 483+', 'end rows']);
    const over = record(input, format, 0, [100], { maxRowBytes: row.length - 1 }).events;
    assert.ok(over.at(-1)!.startsWith(`throw input:2: row longer than ${row.length - 1} bytes (unclosed quote?)`), over.at(-1));
  });

  it('examines and copies each byte of a 20 MB quoted field a bounded number of times', () => {
    const format = resolveCopyFormat({ format: 'csv' });
    const field = Buffer.alloc(20 * 1024 * 1024, 'abc,"",\r\nxyz');
    const input = Buffer.concat([Buffer.from('1,2,3,4\n5,"'), field, Buffer.from('",7,8\n9,10,11,12\n')]);
    const sink = new Recorder();
    const scanner = new RowScanner(format, 1, FIELDS);
    const chunk = 64 * 1024;
    for (let pos = 0; pos < input.length; pos += chunk) scanner.push(input.subarray(pos, pos + chunk), sink);
    scanner.end(sink);
    assert.equal(sink.events.length, 3);
    assert.equal(sink.events[1]!.length > field.length, true);
    assert.ok(scanner.bytesExamined <= 2 * input.length, `examined ${scanner.bytesExamined} bytes of ${input.length}`);
    assert.ok(scanner.bytesCopied <= 3 * input.length, `copied ${scanner.bytesCopied} bytes of ${input.length}`);
  });
});
