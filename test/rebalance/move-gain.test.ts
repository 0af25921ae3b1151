/**
 * Which planned moves are worth their copy (no database): gain on the whole cluster's predicted
 * load above fair shares, against the bytes to copy, with policy.ts's margin.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { excessLoad, fairShares, judgeMoves, type ClusterLoad } from '../../src/rebalance/move-gain.js';
import { MIN_MOVE_GAIN_SHARE, MOVE_COPY_BYTES_PER_MS, MOVE_COST_MARGIN, MOVE_PAYBACK_WINDOWS } from '../../src/rebalance/policy.js';

const load = (over: Partial<ClusterLoad> = {}): ClusterLoad => ({
  groupShare: new Map([['s1', 0.1], ['s2', 0.1], ['s3', 0.005]]),
  groupBytes: new Map([['s1', 1e6], ['s2', 1e6], ['s3', 1e6]]),
  nodeShare: new Map([['a', 0.7], ['b', 0.3]]),
  capacity: new Map([['a', 1], ['b', 1]]),
  windowMs: 10_000,
  ...over,
});

describe('move gain', () => {
  it('excess load is what passes fair shares by capacity', () => {
    assert.ok(Math.abs(excessLoad(new Map([['a', 0.7], ['b', 0.3]]), new Map([['a', 1], ['b', 1]])) - 0.2) < 1e-12);
    assert.ok(Math.abs(excessLoad(new Map([['a', 0.7], ['b', 0.3]]), new Map([['a', 7], ['b', 3]]))) < 1e-12);
  });

  it('keeps moves that cut the excess, drops one that would overshoot, on loads that include the kept ones', () => {
    const v = judgeMoves([{ shardId: 's1', from: 'a', to: 'b' }, { shardId: 's2', from: 'a', to: 'b' }, { shardId: 's1', from: 'b', to: 'a' }], load());
    assert.deepEqual(v.map((x) => x.keep), [true, true, false]);
    assert.ok(Math.abs(v[0]!.gainShare - 0.1) < 1e-12);
    assert.ok(v[2]!.gainShare < 0);
  });

  it('crumbs move nothing; before any load was measured, the prior is balanced without a copy cost', () => {
    assert.equal(judgeMoves([{ shardId: 's3', from: 'a', to: 'b' }], load())[0]!.keep, false, `gain 0.005 < ${MIN_MOVE_GAIN_SHARE}`);
    assert.equal(judgeMoves([{ shardId: 's3', from: 'a', to: 'b' }], load({ windowMs: 0 }))[0]!.keep, false);
    const prior = judgeMoves([{ shardId: 's1', from: 'a', to: 'b' }], load({ windowMs: 0, groupBytes: new Map([['s1', 1e12]]) }))[0]!;
    assert.equal(prior.keep, true, prior.reason);
    assert.match(prior.reason, /no load measured yet/);
  });

  it('a node one indivisible group saturates is that group\'s alone: the others move off it, however small, and the whale stays', () => {
    // 'w' (a whale tenant's shard group) alone is 90% of all load, on a; two small groups share a with it.
    const whale: ClusterLoad = load({
      groupShare: new Map([['w', 0.9], ['x', 0.004], ['y', 0.004]]),
      groupBytes: new Map([['w', 1e6], ['x', 1e5], ['y', 1e5]]),
      nodeShare: new Map([['a', 0.908], ['b', 0.092]]),
      largestGroup: new Map([['a', 0.9], ['b', 0.004]]),
    });
    const fair = fairShares(whale.nodeShare, whale.capacity, whale.largestGroup);
    assert.ok(Math.abs(fair.get('a')! - 0.9) < 1e-12 && Math.abs(fair.get('b')! - 0.1) < 1e-12, JSON.stringify([...fair]));
    assert.ok(Math.abs(excessLoad(whale.nodeShare, whale.capacity, whale.largestGroup) - 0.008) < 1e-12, 'only the small groups on a are above fair');
    const v = judgeMoves([{ shardId: 'x', from: 'a', to: 'b' }, { shardId: 'y', from: 'a', to: 'b' }, { shardId: 'w', from: 'a', to: 'b' }], whale);
    assert.deepEqual(v.map((x) => x.keep), [true, true, false], v.map((x) => x.reason).join('\n'));
    assert.match(v[0]!.reason, /one shard group alone is predicted at 90\.0%.*queue behind/);
    // Without the indivisible group (the same numbers, all divisible) such crumbs move nothing.
    assert.equal(judgeMoves([{ shardId: 'x', from: 'a', to: 'b' }], { ...whale, largestGroup: new Map() })[0]!.keep, false);
    // Three nodes: b's 9% is one group too (its fair share), so the 1% left is c's: only c takes the crumb.
    const three: ClusterLoad = { ...whale, nodeShare: new Map([['a', 0.904], ['b', 0.09], ['c', 0.006]]),
      capacity: new Map([['a', 1], ['b', 1], ['c', 1]]), largestGroup: new Map([['a', 0.9], ['b', 0.09], ['c', 0.006]]) };
    assert.deepEqual(judgeMoves([{ shardId: 'x', from: 'a', to: 'b' }], three).map((x) => x.keep), [false]);
    assert.deepEqual(judgeMoves([{ shardId: 'x', from: 'a', to: 'c' }], three).map((x) => x.keep), [true]);
  });

  it('a move whose copy costs more than its gain over the payback windows (with the margin) is not made', () => {
    // Gain 0.1 of the load per window; bytes such that the copy is just above what the gain pays.
    const windowMs = 100;
    const gainMs = 0.1 * windowMs * MOVE_PAYBACK_WINDOWS;
    const bytes = (gainMs / MOVE_COST_MARGIN) * MOVE_COPY_BYTES_PER_MS;
    const pays = judgeMoves([{ shardId: 's1', from: 'a', to: 'b' }], load({ windowMs, groupBytes: new Map([['s1', bytes * 0.9]]) }))[0]!;
    const costs = judgeMoves([{ shardId: 's1', from: 'a', to: 'b' }], load({ windowMs, groupBytes: new Map([['s1', bytes * 1.1]]) }))[0]!;
    assert.equal(pays.keep, true, pays.reason);
    assert.equal(costs.keep, false, costs.reason);
    assert.match(costs.reason, /does not beat/);
  });
});
