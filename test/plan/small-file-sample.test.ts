/**
 * A small file (under the sample size and under 1 MiB) is read whole: every row, not only the
 * first 200 the sampler parses to find the header and the row width (it once answered "about 199
 * rows" for a 2,000-row file, and a table that small became a reference table of the wrong size).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleInput } from '../../src/plan/file-sampler.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { inputSource } from '../../src/input/input-source.js';

describe('small file sample', () => {
  it('reads every row of a 2,000-row file, with and without a header', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cal-small-sample-'));
    const rows = Array.from({ length: 2000 }, (_, i) => `${i + 1},category ${i % 40}`);
    const format = resolveCopyFormat({ format: 'csv' });
    for (const header of [true, false]) {
      const file = join(dir, `p-${header}.csv`);
      writeFileSync(file, `${header ? 'product_id,category\n' : ''}${rows.join('\n')}\n`);
      const s = await sampleInput(inputSource(file), format, { header: header ? 'yes' : 'no' });
      assert.equal(s.method, 'whole');
      assert.equal(s.rows.length, 2000);
      assert.equal(s.estimatedRows, 2000);
      assert.deepEqual(s.rows[1999]!.fields, ['2000', 'category 39']);
    }
  });
});
