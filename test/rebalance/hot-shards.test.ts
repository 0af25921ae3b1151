/**
 * The hot-shard rules without a database: a dominant tenant is isolated, a shard of many equal
 * tenants is split at the point that halves its load, tenant tracking's undo restores exactly
 * where the old value came from, and WAPE weighs errors by load.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planHotShards } from '../../src/rebalance/hot-shards.js';
import { loadWeightedSplitPoint, weightShare } from '../../src/rebalance/shard-split.js';
import { undoFor } from '../../src/rebalance/tenant-tracking.js';
import { wapeOf } from '../../src/report/cluster-summary.js';
import { TENANT_ISOLATION_MIN_SHARE } from '../../src/rebalance/policy.js';
import type { ShardFacts } from '../../src/rebalance/advice.js';
import type { ShardTenants } from '../../src/rebalance/hot-tenant.js';

const shard = { shardId: '7', table: 'events', node: 'w1:5432', predictedShare: 0.8 };
const tenants = (weights: number[], total = weights.reduce((a, b) => a + b, 0)): ShardTenants => ({
  shardId: '7', table: 'events', source: 'sample', min: 0, max: 999, total,
  tenants: weights.map((w, i) => ({ value: `t${i}`, hash: i * 100 + 50, weight: w })).sort((a, b) => b.weight - a.weight),
});
const facts = (t: ShardTenants, singleTenant = false): Map<string, ShardFacts> =>
  new Map([['7', { nodeId: 1, singleTenant, hottestTenant: undefined, tenants: t }]]);

describe('hot shard rules', () => {
  it('isolates a tenant drawing at least TENANT_ISOLATION_MIN_SHARE of its shard, and splits below it', () => {
    const whale = TENANT_ISOLATION_MIN_SHARE * 100;
    const isolate = planHotShards([shard], facts(tenants([whale, 100 - whale])));
    assert.equal(isolate[0]?.kind, 'isolate');
    assert.equal(isolate[0]?.kind === 'isolate' && isolate[0].tenant.tenant, 't0');
    const split = planHotShards([shard], facts(tenants([whale - 1, (101 - whale) / 2, (101 - whale) / 2])));
    assert.equal(split[0]?.kind, 'split');
  });

  it('does nothing for a single-tenant shard or one whose tenants are unknown', () => {
    assert.deepEqual(planHotShards([shard], facts(tenants([90, 10]), true)), []);
    assert.deepEqual(planHotShards([shard], new Map([['7', { nodeId: 1, singleTenant: false, hottestTenant: undefined }]])), []);
  });

  it('splits many equal tenants at the hash that halves the load, weighted by load, not by count', () => {
    const even = loadWeightedSplitPoint(tenants(Array(10).fill(10)))!;
    assert.equal(even.point, 450);
    assert.ok(Math.abs(even.lowerShare - 0.5) < 1e-9);
    // The first three tenants carry 70% of the load: the point moves to hold the load, not half the tenants.
    const skewed = loadWeightedSplitPoint(tenants([25, 20, 25, 5, 5, 5, 5, 5, 3, 2]))!;
    assert.equal(skewed.point, 150);
    assert.ok(Math.abs(skewed.lowerShare - 0.45) < 1e-9);
    // Weight of tenants not listed counts by range width.
    assert.ok(Math.abs(weightShare(tenants([50], 100), 0, 499) - (0.5 + 0.5 * 0.5)) < 1e-9);
  });

  it('tenant tracking\'s undo sets the old value back only where postgresql.auto.conf held it, else resets', () => {
    assert.equal(undoFor({ setting: 'none', source: 'default', sourcefile: null }), 'ALTER SYSTEM RESET citus.stat_tenants_track');
    assert.equal(undoFor({ setting: 'none', source: 'configuration file', sourcefile: '/d/postgresql.conf' }), 'ALTER SYSTEM RESET citus.stat_tenants_track');
    assert.equal(undoFor({ setting: 'none', source: 'configuration file', sourcefile: '/d/postgresql.auto.conf' }), "ALTER SYSTEM SET citus.stat_tenants_track = 'none'");
  });

  it('WAPE weighs errors by load: a 4-point error on a tiny node is not 3,500%', () => {
    const w = wapeOf([{ predictedShare: 0.04, actualShare: 0.001 }, { predictedShare: 0.96, actualShare: 0.999 }]);
    assert.ok(Math.abs(w! - 0.078) < 1e-9, String(w));
    assert.equal(wapeOf([{ predictedShare: null, actualShare: 1 }]), null);
  });
});
