/** A file under the sampler's first read (1 MiB) is sampled whole: every row, not the first 200 it reads to measure rows. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleInput } from '../../src/plan/file-sampler.js';
import { inputSource } from '../../src/input/input-source.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';

describe('file sampler: small files', () => {
  it('takes every row of a 2,000-row file and counts them exactly', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cal-sampler-')), 'clicks.csv');
    writeFileSync(file, `company_id,id,cost\n${Array.from({ length: 2000 }, (_, i) => `${1 + (i % 8)},${i + 1},${(i % 7) * 0.5}`).join('\n')}\n`);
    const s = await sampleInput(inputSource(file), resolveCopyFormat({ format: 'csv' }), { header: 'auto' });
    assert.equal(s.method, 'whole');
    assert.equal(s.rows.length, 2000);
    assert.equal(s.estimatedRows, 2000);
    assert.deepEqual(s.rows[1999]!.fields, ['8', '2000', '2']);
  });
});
