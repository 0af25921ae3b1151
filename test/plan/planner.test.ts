/**
 * The planner is a pure function of what was sampled and read: these cases need no database.
 * Samples are generated here, described by column-stats as the analysis does, and planned.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeColumn } from '../../src/plan/column-stats.js';
import { planProfile, type PlanInput } from '../../src/plan/planner.js';
import type { AccessPatterns } from '../../src/plan/query-history.js';

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
});
