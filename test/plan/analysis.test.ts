/**
 * The analysis without a database: the distinct-count estimator against known populations, the
 * block sampler's resync on CSV with quoted newlines (every sampled row must be a real row of the
 * file), determinism for a seed, and the analyze command's output.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateDistinct, describeColumn, inferType } from '../../src/plan/column-stats.js';
import { sampleInput, DEFAULT_SAMPLE_ROWS } from '../../src/plan/file-sampler.js';
import { seededRandom } from '../../src/plan/random.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { inputSource } from '../../src/input/input-source.js';
import { runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cal-analysis-'));

describe('column statistics', () => {
  it('estimates distinct counts of large populations from a sample, where the raw sample count is far off', () => {
    const rnd = seededRandom('duj1');
    for (const [population, distinct] of [[1_000_000, 100_000], [1_000_000, 5_000], [2_000_000, 1_500_000]] as const) {
      const counts = new Map<number, number>();
      const n = DEFAULT_SAMPLE_ROWS;
      for (let i = 0; i < n; i++) {
        const v = Math.floor(rnd() * distinct);
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      const f1 = [...counts.values()].filter((c) => c === 1).length;
      const f2 = [...counts.values()].filter((c) => c === 2).length;
      const est = estimateDistinct(n, counts.size, f1, population, f2);
      assert.ok(Math.abs(est - distinct) / distinct < 0.2, `estimated ${est} for ${distinct} distinct (sample had ${counts.size})`);
      if (distinct > n) assert.ok(counts.size < distinct * 0.25, 'the raw sample count should be far below the truth');
    }
  });

  it('estimates distinct tenants under Zipf skew, where Duj1 alone is far too low', () => {
    const rnd = seededRandom('zipf');
    const customers = 100_000;
    const cdf: number[] = [];
    let sum = 0;
    for (let k = 1; k <= customers; k++) cdf.push((sum += 1 / k));
    const draw = () => {
      const u = rnd() * sum;
      let lo = 0;
      let hi = customers - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const population = 2_000_000;
    const seen = new Set<number>();
    const sample = new Map<number, number>();
    for (let i = 0; i < population; i++) {
      const v = draw();
      seen.add(v);
      if (i % 100 === 0) sample.set(v, (sample.get(v) ?? 0) + 1);
    }
    const n = population / 100;
    const f1 = [...sample.values()].filter((c) => c === 1).length;
    const f2 = [...sample.values()].filter((c) => c === 2).length;
    const est = estimateDistinct(n, sample.size, f1, population, f2);
    const duj1Only = Math.round((n * sample.size) / (n - f1 + (f1 * n) / population));
    // A 1% sample never sees most of a Zipf tail: no estimator recovers it all. The combined one
    // must be well above Duj1 and, being a lower bound, not above the truth.
    assert.ok(est > duj1Only * 2, `combined ${est} vs Duj1 ${duj1Only} (truth ${seen.size})`);
    assert.ok(est <= seen.size, `combined ${est} overshoots the truth ${seen.size}`);
  });

  it('infers types and measures nulls, heavy hitters and monotonicity', () => {
    assert.equal(inferType(['1', '-2', ' 3 ']), 'integer');
    assert.equal(inferType(['1', '9999999999']), 'bigint');
    assert.equal(inferType(['1.5', '2']), 'numeric');
    assert.equal(inferType(['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']), 'uuid');
    assert.equal(inferType(['2024-01-01 10:00:00+00']), 'timestamptz');
    assert.equal(inferType(['2024-01-01']), 'date');
    assert.equal(inferType(['x', '1']), 'text');
    const values = Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? null : i % 3 === 0 ? 'big' : `t${i}`));
    const stats = describeColumn({ name: 'tenant', values, positions: values.map((_, i) => i / 999) }, 1000);
    assert.equal(stats.nullFraction, 0.1);
    assert.equal(stats.heavyHitters[0]!.value, 'big');
    const ts = describeColumn({ name: 'ts', values: Array.from({ length: 500 }, (_, i) => String(1000 + i)), positions: Array.from({ length: 500 }, (_, i) => i / 499) }, 500);
    assert.ok(ts.monotonicity! > 0.99);
    assert.ok(ts.unique);
  });
});

describe('file sampling', () => {
  // Rows whose content is derivable from their id, with quoted newlines, delimiters and quotes.
  const rowFor = (id: number) => `${id},"line one\nline ${id % 7}, with ""quotes""",${id % 13},tail-${id}`;
  const file = join(dir, 'quoted.csv');
  const ROWS = 120_000;
  writeFileSync(file, `id,body,grp,tail\n${Array.from({ length: ROWS }, (_, i) => rowFor(i + 1)).join('\n')}\n`);
  const format = resolveCopyFormat({ format: 'csv' });

  it('resyncs to real row boundaries across quoted newlines and reads a bounded amount', async () => {
    const s = await sampleInput(inputSource(file), format, { rows: 4000, seed: 3 });
    assert.equal(s.method, 'blocks');
    assert.deepEqual(s.header, ['id', 'body', 'grp', 'tail']);
    assert.ok(s.rows.length >= 3500, `only ${s.rows.length} rows sampled`);
    for (const r of s.rows) {
      const id = Number(r.fields[0]);
      assert.ok(Number.isInteger(id) && id >= 1 && id <= ROWS, `not a row id: ${r.fields[0]}`);
      assert.deepEqual(r.fields, [String(id), `line one\nline ${id % 7}, with "quotes"`, String(id % 13), `tail-${id}`]);
    }
    assert.ok(Math.abs(s.estimatedRows - ROWS) / ROWS < 0.05, `estimated ${s.estimatedRows} rows`);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const a = await sampleInput(inputSource(file), format, { rows: 1000, seed: 5 });
    const b = await sampleInput(inputSource(file), format, { rows: 1000, seed: 5 });
    const c = await sampleInput(inputSource(file), format, { rows: 1000, seed: 6 });
    assert.deepEqual(a.rows.map((r) => r.fields[0]), b.rows.map((r) => r.fields[0]));
    assert.notDeepEqual(a.rows.map((r) => r.fields[0]), c.rows.map((r) => r.fields[0]));
  });

  it('analyze describes every column without a database', async () => {
    const r = await runCli(['analyze', '--json', file]);
    assert.equal(r.status, 0, r.stderr);
    const columns = r.json?.columns as { name: string; type: string; unique: boolean; distinctEstimate: number }[];
    assert.deepEqual(columns.map((c) => [c.name, c.type]), [['id', 'integer'], ['body', 'text'], ['grp', 'integer'], ['tail', 'text']]);
    assert.ok(columns[0]!.unique);
    assert.ok(columns[2]!.distinctEstimate === 13);
    const text = await runCli(['analyze', file]);
    assert.match(text.stdout, /about 1[12]\d,\d{3} rows/);
  });
});
