/**
 * Validation that needs no database: table names parsed as PostgreSQL parses them, COPY format
 * options checked before any of them reaches SQL, --columns lists, and the rejects file keeping
 * rows that are not UTF-8 byte for byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseQualifiedName, quoteQualifiedName } from '../../src/connect/qualified-name.js';
import { quoteLiteral } from '../../src/connect/sql.js';
import { copyOptionsSql, resolveCopyFormat, type CopyFormat, type CopyFormatInput } from '../../src/input/copy-format.js';
import { parseColumnList } from '../../src/input/columns.js';
import { readRejectedRow, Rejects } from '../../src/load/rejects.js';
import { InvalidConfigurationError } from '../../src/errors.js';

describe('qualified table names, as psql reads them', () => {
  const cases: [string, { schema?: string; name: string }][] = [
    ['orders', { name: 'orders' }],
    ['rt_NewMixed', { name: 'rt_newmixed' }],
    ['"rt_NewMixed"', { name: 'rt_NewMixed' }],
    ['"Mixed Case"', { name: 'Mixed Case' }],
    ['Sales.Orders', { schema: 'sales', name: 'orders' }],
    ['sales."Orders"', { schema: 'sales', name: 'Orders' }],
    ['"my.schema"."t"', { schema: 'my.schema', name: 't' }],
    ['"my.schema".T', { schema: 'my.schema', name: 't' }],
    ['"we""ird"', { name: 'we"ird' }],
    ['"a""."."b""c"', { schema: 'a".', name: 'b"c' }],
    [' s . t ', { schema: 's', name: 't' }],
    ['Çafé', { name: 'Çafé' }], // PostgreSQL folds only ASCII letters in UTF8
    ['t$1', { name: 't$1' }],
    [`${'A'.repeat(70)}`, { name: 'a'.repeat(63) }], // NAMEDATALEN - 1 bytes, as PostgreSQL truncates
  ];
  for (const [text, expected] of cases) {
    it(`${text} -> ${JSON.stringify(expected)}`, () => {
      assert.deepEqual({ ...parseQualifiedName(text) }, expected);
    });
  }

  for (const bad of ['', ' ', '.', 'a.', '.a', 'a..b', 'a.b.c', '""', '"a', 'a"b', 'a b', '"a"b', '1abc', 'orders;drop', 'a.""']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => parseQualifiedName(bad), InvalidConfigurationError);
    });
  }

  it('quotes every part, so the result reads back as the same name', () => {
    assert.equal(quoteQualifiedName({ name: 'rt_newmixed' }), '"rt_newmixed"');
    assert.equal(quoteQualifiedName({ schema: 'my.schema', name: 'we"ird' }), '"my.schema"."we""ird"');
    for (const [text] of cases) {
      const q = parseQualifiedName(text);
      assert.deepEqual(parseQualifiedName(quoteQualifiedName(q)), q);
    }
  });
});

describe('COPY format options never reach SQL unchecked', () => {
  const reject = (input: CopyFormatInput, pattern: RegExp) =>
    assert.throws(() => resolveCopyFormat(input), (e: Error) => e instanceof InvalidConfigurationError && pattern.test(e.message), JSON.stringify(input));

  it('accepts only csv and text as the format', () => {
    for (const format of ['csv) ; DO $$ BEGIN RAISE EXCEPTION $x$pwned$x$; END $$; --', 'xml', 'binary', 'CSV', '', 'csv '] as string[]) {
      reject({ format } as unknown as CopyFormatInput, /format must be csv or text/);
    }
    for (const format of [1, null, {}, ['csv']]) reject({ format } as unknown as CopyFormatInput, /format must be csv or text/);
    assert.equal(resolveCopyFormat({ format: 'text' }).kind, 'text');
    assert.equal(resolveCopyFormat({}).kind, 'csv');
  });

  it('rejects options of the wrong type, NUL bytes and line breaks in the NULL string', () => {
    reject({ delimiter: 5 } as unknown as CopyFormatInput, /--delimiter must be a string/);
    reject({ null: ['x'] } as unknown as CopyFormatInput, /--null must be a string/);
    reject({ encoding: 8 } as unknown as CopyFormatInput, /--encoding must be a string/);
    reject({ delimiter: '\0' }, /--delimiter cannot be a NUL byte/);
    reject({ null: 'a\0b' }, /--null cannot contain a NUL byte/);
    reject({ null: 'a\nb' }, /--null cannot contain a newline or carriage return/);
  });

  it('accepts PostgreSQL\'s encoding names and aliases, cleaned as PostgreSQL cleans them, and nothing else', () => {
    for (const [name, clean] of [['utf-8', 'UTF8'], ['LATIN1', 'LATIN1'], ['iso-8859-1', 'ISO88591'], ['Shift_JIS', 'SHIFTJIS'], ['win1252', 'WIN1252'], ['euc_jp', 'EUCJP'], ['SQL_ASCII', 'SQLASCII']]) {
      assert.equal(resolveCopyFormat({ encoding: name }).encoding, clean, name);
    }
    for (const bad of ['BOGUS', 'utf16', "UTF8') ; DROP TABLE t; --", '']) reject({ encoding: bad }, /--encoding .* is not an encoding PostgreSQL knows/);
  });

  it('quotes every value it writes into WITH (...)', () => {
    const hostile = resolveCopyFormat({ format: 'csv', delimiter: "'", quote: '\\', escape: '"', null: "x') ; DROP TABLE t; --\\" });
    const sql = copyOptionsSql(hostile, quoteLiteral);
    assert.equal(sql, "FORMAT csv, DELIMITER '''', NULL E'x'') ; DROP TABLE t; --\\\\', QUOTE E'\\\\', ESCAPE '\"'");
    // A CopyFormat built by hand (not through resolveCopyFormat) is checked again.
    const forged = { ...resolveCopyFormat({}), kind: 'csv) ; DROP TABLE t; --' } as unknown as CopyFormat;
    assert.throws(() => copyOptionsSql(forged, quoteLiteral), InvalidConfigurationError);
  });
});

describe('--columns lists', () => {
  it('splits, trims and rejects duplicates and empty names', () => {
    assert.deepEqual(parseColumnList('a, b ,c'), ['a', 'b', 'c']);
    assert.throws(() => parseColumnList('a,b,a'), (e: Error) => e instanceof InvalidConfigurationError && /--columns names "a" twice/.test(e.message));
    assert.throws(() => parseColumnList('a,B,b'), /--columns names "b" twice/);
    assert.throws(() => parseColumnList('a,,b'), /--columns has an empty name/);
  });
});

describe('the rejects file', () => {
  it('keeps a row that is not valid UTF-8 byte for byte, and valid rows as text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cal-rejects-'));
    const path = join(dir, 'r.jsonl');
    const rejects = new Rejects('in.csv', 5, path);
    const latin1 = Buffer.from([0x31, 0x2c, 0x63, 0x61, 0x66, 0xe9, 0x2c, 0xff, 0xfe, 0x0a]); // "1,caf\xe9,\xff\xfe\n"
    const crlf = Buffer.from([0x32, 0x2c, 0x80, 0x0d, 0x0a]);
    rejects.reject(2, 'bad', latin1, 'name');
    rejects.reject(3, 'bad', Buffer.from('3,café,x\r\n'));
    rejects.reject(4, 'bad', crlf);
    rejects.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.row, undefined);
    assert.equal(lines[0]!.column, 'name');
    assert.deepEqual(readRejectedRow(lines[0]!), latin1.subarray(0, latin1.length - 1));
    assert.equal(lines[1]!.row, '3,café,x');
    assert.equal(lines[1]!.rowBase64, undefined);
    assert.deepEqual(readRejectedRow(lines[1]!), Buffer.from('3,café,x'));
    assert.deepEqual(readRejectedRow(lines[2]!), crlf.subarray(0, 3));
  });
});
