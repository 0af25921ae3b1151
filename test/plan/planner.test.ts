/**
 * The planner is a pure function of what was sampled and read: these cases need no database.
 * Samples are generated here, described by column-stats as the analysis does, and planned.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeColumn } from '../../src/plan/column-stats.js';
import { hashesOf, planProfile, uniformRanges, type PlanInput } from '../../src/plan/planner.js';
import type { AccessPatterns } from '../../src/plan/query-history.js';
import { validateProfile } from '../../src/plan/sharding-profile.js';

type Row = Record<string, string | null>;

const NO_HISTORY: AccessPatterns = {
  table: 't', statements: 0, calls: 0, columns: {}, workload: { pointLookups: 0, ranges: 0, joins: 0, aggregations: 0 }, source: 'none',
};

/** A PlanInput as analyze.ts builds it, from sampled rows and the table's size and types. */
function inputOf(table: string, rows: Row[], estimatedRows: number, pgTypes: PlanInput['pgTypes'], over: Partial<PlanInput> = {}): PlanInput {
  const names = Object.keys(rows[0]!);
  const positions = rows.map((_, i) => i / rows.length);
  return {
    table,
    columns: names.map((name) => describeColumn({ name, values: rows.map((r) => r[name]!), positions }, estimatedRows)),
    pgTypes,
    sampleValues: Object.fromEntries(names.map((n) => [n, rows.map((r) => r[n]!)])),
    estimatedRows,
    averageRowBytes: 60,
    relationships: [],
    clusterTables: [],
    access: NO_HISTORY,
    nodes: ['w1:5432', 'w2:5432'],
    keys: [],
    keepKeys: false,
    defaultShardCount: 32,
    sample: { rows: rows.length, seconds: 0, method: 'test', estimatedRows },
    ...over,
  };
}

/** A deterministic generator, so every run plans the same sample. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function orders(n: number, whaleShare: number): Row[] {
  const rand = lcg(7);
  return Array.from({ length: n }, (_, i) => ({
    order_id: String(1_000_000 + i),
    customer_id: rand() < whaleShare ? '1' : String(2 + Math.floor(rand() * 5000)),
    amount: (rand() * 500).toFixed(2),
  }));
}

const ORDER_TYPES = { order_id: { typeName: 'int8' }, customer_id: { typeName: 'int8' }, amount: { typeName: 'numeric' } };

describe('planner (no database)', () => {
  it('distributes a large table by its tenant key, not its monotonic id, and gives a whale tenant its own shard', () => {
    const p = planProfile(inputOf('orders', orders(20_000, 0.3), 2_000_000, ORDER_TYPES));
    assert.equal(p.kind, 'distributed');
    assert.equal(p.distributionColumn, 'customer_id', p.reasons.join('; '));
    assert.deepEqual(p.isolate, ['1']);
    assert.ok((p.shardCount ?? 0) >= 2);
    const orderId = p.candidates.find((c) => c.column === 'order_id');
    assert.ok(orderId && orderId.score < p.candidates.find((c) => c.column === 'customer_id')!.score);
  });

  it('isolates nobody when no tenant stands out', () => {
    const p = planProfile(inputOf('orders', orders(20_000, 0), 2_000_000, ORDER_TYPES));
    assert.equal(p.distributionColumn, 'customer_id');
    assert.deepEqual(p.isolate, []);
  });

  it('makes a small dimension a reference table', () => {
    const rows = Array.from({ length: 300 }, (_, i) => ({ code: `c${i}`, name: `name ${i}` }));
    const p = planProfile(inputOf('countries', rows, 300, { code: { typeName: 'text' }, name: { typeName: 'text' } }));
    assert.equal(p.kind, 'reference', p.reasons.join('; '));
  });

  it('follows a forced distribution column and shard count', () => {
    const p = planProfile(inputOf('orders', orders(5_000, 0), 2_000_000, ORDER_TYPES, { forcedColumn: 'order_id', forcedShardCount: 6 }));
    assert.equal(p.distributionColumn, 'order_id');
    assert.equal(p.shardCount, 6);
  });

  it('widens keys that lack the chosen column, as data; --keep-keys chooses among key columns instead', () => {
    const keys = [{ constraint: 'orders_pkey', columns: ['order_id'], primary: true }];
    const p = planProfile(inputOf('orders', orders(20_000, 0), 2_000_000, ORDER_TYPES, { keys }));
    assert.equal(p.distributionColumn, 'customer_id');
    assert.deepEqual(p.keyChanges, [{ constraint: 'orders_pkey', columns: ['order_id', 'customer_id'] }]);
    const kept = planProfile(inputOf('orders', orders(20_000, 0), 2_000_000, ORDER_TYPES, { keys, keepKeys: true }));
    assert.ok(kept.kind === 'reference' || kept.distributionColumn === 'order_id', kept.reasons.join('; '));
    assert.deepEqual(kept.keyChanges, []);
    assert.match(kept.candidates.find((c) => c.column === 'customer_id')?.rejected ?? '', /--keep-keys/);
  });
  // An 8-row tenant table (the tenant-root rule distributes it) spreads 8 sampled hashes over 32
  // shards: a shard holding one of them is "twice the mean", but one sampled hash has no median
  // to split at. The split rule used to split it at inside[-1] (undefined): an invalid profile.
  it('does not split a shard whose sample holds a single hash: a tiny tenant table plans a valid profile', () => {
    const rows = Array.from({ length: 8 }, (_, i) => ({ id: String(i + 1), name: `company ${i + 1}` }));
    const p = planProfile(inputOf('app.companies', rows, 8, { id: { typeName: 'int8' }, name: { typeName: 'text' } },
      { keys: [{ constraint: 'companies_pkey', columns: ['id'], primary: true }] }));
    assert.equal(p.kind, 'distributed', p.reasons.join('; '));
    assert.equal(p.distributionColumn, 'id');
    assert.doesNotThrow(() => validateProfile(JSON.parse(JSON.stringify(p)), 'planned'));
    assert.ok(p.splitPoints.every((x) => Number.isInteger(x)), `split points ${JSON.stringify(p.splitPoints)}`);
    for (const s of p.shards) assert.ok(Number.isInteger(s.hashMin) && Number.isInteger(s.hashMax) && s.hashMin <= s.hashMax, JSON.stringify(s));
    // One id per shard at most: nothing to split, the 32 uniform ranges stay.
    assert.deepEqual(p.splitPoints, []);
    assert.equal(p.shards.length, 32);
  });
  /** Values of customer_id (int8) whose Citus hash falls in `range`, from `start` on. */
  function valuesIn(range: { min: number; max: number }, n: number, start: number, skip: (h: number) => boolean = () => false): string[] {
    const out: string[] = [];
    for (let v = start; out.length < n; v++) {
      const h = hashesOf([String(v)], { typeName: 'int8' })[0]!;
      if (h >= range.min && h <= range.max && !skip(h)) out.push(String(v));
    }
    return out;
  }

  it('splits a shard that many tenants crowd at the median sampled hash, leaving sampled rows on both sides', () => {
    const first = uniformRanges(32)[0]!;
    const crowd = valuesIn(first, 300, 1);
    const rand = lcg(11);
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      order_id: String(1_000_000 + i),
      customer_id: rand() < 0.5 ? crowd[Math.floor(rand() * crowd.length)]! : String(100_000 + Math.floor(rand() * 5000)),
      amount: (rand() * 500).toFixed(2),
    }));
    const p = planProfile(inputOf('orders', rows, 2_000_000, ORDER_TYPES));
    assert.equal(p.distributionColumn, 'customer_id', p.reasons.join('; '));
    assert.deepEqual(p.isolate, [], 'no single tenant is heavy');
    assert.ok(p.splitPoints.length >= 1, p.reasons.join('; '));
    assert.ok(p.splitPoints.every((x) => Number.isInteger(x) && x >= first.min && x < first.max), JSON.stringify(p.splitPoints));
    // The ranges still tile the whole hash space, and each half of a split holds sampled rows.
    assert.equal(p.shards[0]!.hashMin, -2147483648);
    assert.equal(p.shards[p.shards.length - 1]!.hashMax, 2147483647);
    for (let i = 1; i < p.shards.length; i++) assert.equal(p.shards[i]!.hashMin, p.shards[i - 1]!.hashMax + 1);
    for (const x of p.splitPoints) {
      const lo = p.shards.find((s) => s.hashMax === x)!;
      const hi = p.shards.find((s) => s.hashMin === x + 1)!;
      assert.ok(lo.rows > 0 && hi.rows > 0, `split at ${x}: ${lo.rows} and ${hi.rows} rows`);
    }
  });

  it('does not split a shard whose sampled rows are all one value (too few distinct values to isolate it)', () => {
    // 100 customers (fewer than 4 per shard: no isolation); customer 1 holds 40% of the rows
    // and no other customer shares its shard, so that shard's sample has no median to split at.
    const uniform = uniformRanges(32);
    const h1 = hashesOf(['1'], { typeName: 'int8' })[0]!;
    const own = uniform.find((r) => r.min <= h1 && h1 <= r.max)!;
    const others: string[] = [];
    for (let v = 2; others.length < 99; v++) {
      const h = hashesOf([String(v)], { typeName: 'int8' })[0]!;
      if (h < own.min || h > own.max) others.push(String(v));
    }
    const rand = lcg(3);
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      order_id: String(1_000_000 + i),
      customer_id: rand() < 0.4 ? '1' : others[Math.floor(rand() * others.length)]!,
      amount: (rand() * 500).toFixed(2),
    }));
    const p = planProfile(inputOf('orders', rows, 2_000_000, ORDER_TYPES, { forcedColumn: 'customer_id' }));
    assert.equal(p.distributionColumn, 'customer_id');
    assert.deepEqual(p.isolate, []);
    const ranges = p.shards.map((s) => `${s.hashMin}..${s.hashMax}`);
    assert.ok(ranges.includes(`${own.min}..${own.max}`), `customer 1's shard stays whole: ${ranges.join(', ')}`);
    assert.ok(!p.splitPoints.includes(h1), JSON.stringify(p.splitPoints));
  });
});
