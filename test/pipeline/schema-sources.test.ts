/** How `load --schema` maps its source arguments to tables: files by name, table=file pairs, directories. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSchemaSources } from '../../src/pipeline/schema-loader.js';

const tables = new Map([['companies', 'app.companies'], ['ads', 'app.ads'], ['line_items', 'app.line_items']]);

describe('schema sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cal-sources-'));
  for (const f of ['companies.csv', 'ads.csv.gz', 'README.txt', 'line_items.tsv']) writeFileSync(join(dir, f), 'x\n');
  mkdirSync(join(dir, 'sub'));
  const other = join(dir, 'export-2026.csv');
  writeFileSync(other, 'x\n');

  it('a directory gives every file named after a table (extensions and .gz dropped) and says what it leaves out', () => {
    const notes: string[] = [];
    const m = resolveSchemaSources([dir], tables, (n) => notes.push(n));
    assert.deepEqual(Object.fromEntries(m), {
      'app.ads': join(dir, 'ads.csv.gz'), 'app.companies': join(dir, 'companies.csv'), 'app.line_items': join(dir, 'line_items.tsv'),
    });
    assert.deepEqual(notes.map((n) => n.replace(dir, 'DIR')), ['DIR/README.txt: no table README in the schema; not loaded', 'DIR/export-2026.csv: no table export-2026 in the schema; not loaded']);
  });

  it('table=file names the table; a file named after no table, an unknown table and two files for one table are refused', () => {
    assert.deepEqual(Object.fromEntries(resolveSchemaSources([`companies=${other}`], tables, () => {})), { 'app.companies': other });
    assert.throws(() => resolveSchemaSources([other], tables, () => {}), /the schema has no table export-2026/);
    assert.throws(() => resolveSchemaSources([`orders=${other}`], tables, () => {}), /the schema has no table orders/);
    assert.throws(() => resolveSchemaSources([dir, `companies=${other}`], tables, () => {}), /two sources for companies/);
  });
});
