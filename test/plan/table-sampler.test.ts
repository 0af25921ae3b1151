import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planTableSample } from '../../src/plan/table-sampler.js';

describe('planTableSample: how a table is sampled, bounded whatever its size', () => {
  it('reads a table with fewer rows than the sample whole', () => {
    assert.deepEqual(planTableSample({ pages: 10, rowsPerPage: 100, citus: false }, 20000), { method: 'whole', percent: 100, estimatedRows: 1000 });
  });

  it('takes BERNOULLI where SYSTEM would read too few pages and the table is small enough to visit whole', () => {
    const p = planTableSample({ pages: 2000, rowsPerPage: 100, citus: false }, 20000);
    assert.equal(p.method, 'bernoulli');
    assert.equal(p.percent, 15);
  });

  it('takes SYSTEM on a big table, and the pages it reads do not grow with the table', () => {
    const pagesRead = (pages: number) => {
      const p = planTableSample({ pages, rowsPerPage: 100, citus: false }, 20000);
      assert.equal(p.method, 'system', `${pages} pages`);
      return (pages * p.percent) / 100;
    };
    const small = pagesRead(100_000);
    const huge = pagesRead(100_000_000);
    assert.ok(Math.abs(small - huge) < 1, `${small} vs ${huge} pages`);
    assert.ok(huge <= 400, `${huge} pages`);
  });

  it('takes SYSTEM when BERNOULLI would read too much, even when SYSTEM takes few pages (very narrow rows)', () => {
    assert.equal(planTableSample({ pages: 50_000, rowsPerPage: 2000, citus: false }, 20000).method, 'system');
  });
});
