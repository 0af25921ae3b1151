/**
 * The advice rules and the policy they read, without a database: what counts as hot, which
 * advice a window gets (and which it does not, when the monitor acts itself), and that every
 * threshold comes from policy.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  assess, liveAdvice, overloadingShards, suggestedCapacity,
  type ShardFacts, type ShardOutlook,
} from '../../src/rebalance/advice.js';
import {
  CONNECTIONS_USED, DEFAULT_REBALANCE_THRESHOLD, DEFAULT_SCHEDULE, HOT_FACTOR, MAX_SUGGESTED_CAPACITY,
} from '../../src/rebalance/policy.js';
import type { NodeObservation } from '../../src/workload/node-observation.js';

const A = 'w1:5432';
const B = 'w2:5432';

/** Shards of one table spread over two nodes with the given predicted shares. */
function outlook(shares: [string, number][], table = 'events'): ShardOutlook[] {
  return shares.map(([node, predictedShare], i) => ({ shardId: String(102000 + i), table, node, predictedShare }));
}

function observation(node: string, over: Partial<NodeObservation> = {}): NodeObservation {
  return {
    node, seconds: 60, busyMs: 1000, xactsPerSecond: 10, cacheHitRatio: 0.99, tuplesReadPerSecond: 10, tuplesWrittenPerSecond: 1,
    activeBackends: 1, waitingBackends: 0, connectionsUsed: 0.1, host: { cores: 4, cpuBusy: 0.2, memoryUsed: 0.5, diskBusy: 0.1 },
    backgroundShare: 0, baseCapacity: 1, loadFactor: 1, capacity: 1, ...over,
  };
}

const noFacts = new Map<string, ShardFacts>();

describe('policy', () => {
  it('names one value per decision, ordered as documented', () => {
    assert.equal(HOT_FACTOR, 1.25);
    assert.equal(DEFAULT_REBALANCE_THRESHOLD, 1.1);
    assert.ok(DEFAULT_REBALANCE_THRESHOLD < HOT_FACTOR, 'the monitor acts on an imbalance before a DBA is told about it');
    assert.equal(DEFAULT_SCHEDULE, '*/5 * * * *');
  });

  it('no module outside policy.ts spells a threshold or the default schedule itself', () => {
    const root = new URL('../../../src', import.meta.url).pathname; // dist/test/rebalance -> src
    const files: string[] = [];
    const walk = (d: string) => readdirSync(d).forEach((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') && files.push(join(d, n))));
    walk(root);
    const offenders = files.filter((f) => !/rebalance[\\/]policy\.ts$/.test(f))
      .filter((f) => /[^\d.](1\.25|1\.1)[^\d]|\*\/5 \* \* \* \*/.test(readFileSync(f, 'utf8')));
    assert.deepEqual(offenders, []);
  });
});

describe('advice rules', () => {
  it('a node above its fair share by HOT_FACTOR is a hotspot and gets scale-up advice; just below it, neither', () => {
    const fair = 0.5;
    const hot = assess({ nodes: [A, B], shards: outlook([[A, fair * HOT_FACTOR + 0.01], [B, 1 - fair * HOT_FACTOR - 0.01]]), live: new Map(), facts: noFacts });
    assert.ok(hot.hotspots.some((h) => h.kind === 'node' && h.id === A));
    assert.ok(hot.advice.some((a) => a.kind === 'scale-up' && a.detail.startsWith(A)));
    const warm = assess({ nodes: [A, B], shards: outlook([[A, fair * HOT_FACTOR - 0.01], [B, 1 - fair * HOT_FACTOR + 0.01]]), live: new Map(), facts: noFacts });
    assert.ok(!warm.hotspots.some((h) => h.kind === 'node'));
    assert.ok(!warm.advice.some((a) => a.kind === 'scale-up' || a.kind === 'rebalance'));
  });

  it('fair shares follow capacity: the same share is not hot on a node with twice the capacity', () => {
    const live = new Map([[A, observation(A, { capacity: 2 })], [B, observation(B, { capacity: 1 })]]);
    const r = assess({ nodes: [A, B], shards: outlook([[A, 0.3], [A, 0.3], [B, 0.2], [B, 0.2]]), live, facts: noFacts });
    assert.deepEqual(r.fairShare.map((x) => x.toFixed(3)), ['0.667', '0.333']);
    assert.ok(!r.advice.some((a) => a.kind === 'scale-up'), JSON.stringify(r.advice));
  });

  it('a table skewed across nodes gets rebalance advice with the strategy, unless the monitor rebalances now', () => {
    const shards = outlook([[A, 0.3], [A, 0.3], [A, 0.2], [B, 0.2]]);
    const advised = assess({ nodes: [A, B], shards, live: new Map(), facts: noFacts });
    const rebalance = advised.advice.find((a) => a.kind === 'rebalance');
    assert.ok(rebalance && rebalance.table === 'events', JSON.stringify(advised.advice));
    assert.match(rebalance.sql!, /rebalance_table_shards\('events', rebalance_strategy => 'adaptive_load'/);
    const acting = assess({ nodes: [A, B], shards, live: new Map(), facts: noFacts, acting: { isolating: new Set(), rebalancing: true } });
    assert.ok(!acting.advice.some((a) => a.kind === 'rebalance'));
  });

  it('a shard above a node\'s even share: isolate its hottest tenant (named, with SQL), and record capacity', () => {
    const shards = outlook([[A, 0.6], [A, 0.1], [B, 0.15], [B, 0.15]]);
    assert.deepEqual(overloadingShards(shards, 2).map((s) => s.shardId), ['102000']);
    const facts = new Map<string, ShardFacts>([['102000', { nodeId: 7, singleTenant: false, hottestTenant: { tenant: "o'brien", share: 0.8 } }]]);
    const r = assess({ nodes: [A, B], shards, live: new Map(), facts });
    const isolate = r.advice.find((a) => a.kind === 'isolate-tenant')!;
    assert.match(isolate.detail, /Isolate tenant o'brien into its own shard/);
    assert.equal(isolate.sql, "SELECT isolate_tenant_to_new_shard('events', 'o''brien', 'CASCADE', shard_transfer_mode => 'block_writes')");
    const capacity = r.advice.find((a) => a.kind === 'node-capacity')!;
    assert.match(capacity.sql!, /VALUES \(7, 1\.25\)/, 'share/fair 1.2 is raised to the hot factor');
    assert.ok(r.hotspots.some((h) => h.kind === 'shard' && h.id === '102000'));
  });

  it('with no tenant found the advice says how to find it (never an isolation without a tenant, never tracking that is on); a single-tenant shard gets capacity advice only', () => {
    const shards = outlook([[A, 0.7], [B, 0.3]]);
    const untracked = assess({ nodes: [A, B], shards, live: new Map(), facts: new Map([['102000', { nodeId: 1, singleTenant: false, hottestTenant: undefined, trackingOn: false }]]) });
    assert.ok(!untracked.advice.some((a) => a.kind === 'isolate-tenant'), 'an isolation advice always names its tenant');
    const tracking = untracked.advice.find((a) => a.kind === 'tenant-tracking')!;
    assert.match(tracking.detail, /tenant statistics/);
    assert.match(tracking.sql!, /citus\.stat_tenants_track = 'all'/);
    const tracked = assess({ nodes: [A, B], shards, live: new Map(), facts: new Map([['102000', { nodeId: 1, singleTenant: false, hottestTenant: undefined, trackingOn: true }]]) });
    assert.ok(!tracked.advice.some((a) => a.kind === 'tenant-tracking' || /stat_tenants_track/.test(a.sql ?? '')), 'tracking is on already: not advised again');
    const single = assess({ nodes: [A, B], shards, live: new Map(), facts: new Map([['102000', { nodeId: 1, singleTenant: true, hottestTenant: undefined }]]) });
    assert.deepEqual(single.advice.filter((a) => a.table).map((a) => a.kind).sort(), ['node-capacity', 'rebalance']);
    assert.match(single.advice.find((a) => a.kind === 'node-capacity')!.detail, /single tenant/);
  });

  it('what the monitor acts on itself (hot-shards.ts decides it) is not also advised', () => {
    const shards = outlook([[A, 0.6], [B, 0.2], [B, 0.2]]);
    const facts = (share: number) => new Map<string, ShardFacts>([['102000', { nodeId: 1, singleTenant: false, hottestTenant: { tenant: '5', share } }]]);
    assert.ok(assess({ nodes: [A, B], shards, live: new Map(), facts: facts(0.9) }).advice.some((a) => a.kind === 'isolate-tenant'));
    const r = assess({ nodes: [A, B], shards, live: new Map(), facts: facts(0.9), acting: { isolating: new Set(['102000']), rebalancing: false } });
    assert.ok(!r.advice.some((a) => a.kind === 'isolate-tenant'));
  });

  it('suggested capacity is bounded by HOT_FACTOR and MAX_SUGGESTED_CAPACITY', () => {
    assert.equal(suggestedCapacity(0.51, 0.5), HOT_FACTOR);
    assert.equal(suggestedCapacity(0.8, 0.5), 1.6);
    assert.equal(suggestedCapacity(0.99, 0.1), MAX_SUGGESTED_CAPACITY);
  });

  it('live metrics: connections, memory and add-node advice from their thresholds', () => {
    const busy = (n: string) => observation(n, { connectionsUsed: CONNECTIONS_USED + 0.05, cacheHitRatio: 0.5, tuplesReadPerSecond: 5000, busyMs: 60 * 1000 * 4 * 0.9 });
    const advice = liveAdvice([A, B], new Map([[A, busy(A)], [B, busy(B)]]), [0.5, 0.5], [0.5, 0.5]);
    assert.deepEqual([...new Set(advice.map((a) => a.kind))].sort(), ['add-node', 'connections', 'memory']);
    assert.match(advice.find((a) => a.kind === 'add-node')!.detail, /add 1 worker /);
    const quiet = liveAdvice([A, B], new Map([[A, observation(A)], [B, observation(B)]]), [0.5, 0.5], [0.5, 0.5]);
    assert.deepEqual(quiet, []);
  });
});
