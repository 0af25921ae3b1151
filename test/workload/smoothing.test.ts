/**
 * Smoothing of shard shares over windows: one noisy window moves the average by alpha of its
 * surprise, a steady change is followed, a new shard starts at its first share.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ewmaSeries, ewmaStep } from '../../src/workload/smoothing.js';

describe('share smoothing', () => {
  it('a one-window burst moves the average only part of the way, and it decays', () => {
    const steady = new Map([['a', 0.5], ['b', 0.5]]);
    const burst = new Map([['a', 1], ['b', 0]]);
    const series = ewmaSeries([steady, steady, burst, steady, steady], 0.5);
    assert.deepEqual(series.map((m) => m.get('a')), [0.5, 0.5, 0.75, 0.625, 0.5625]);
  });

  it('a lasting change is followed within a few windows', () => {
    const before = new Map([['a', 0.2]]);
    const after = new Map([['a', 0.8]]);
    const series = ewmaSeries([before, after, after, after, after], 0.5);
    assert.ok(Math.abs(series[4]!.get('a')! - 0.8) < 0.04, String(series[4]!.get('a')));
  });

  it('a shard starts at its first share and a shard absent from a window keeps its average', () => {
    const m = ewmaStep(new Map([['a', 0.4]]), new Map([['b', 0.3]]), 0.5);
    assert.equal(m.get('a'), 0.4);
    assert.equal(m.get('b'), 0.3);
    assert.throws(() => ewmaStep(new Map(), new Map(), 0), /smoothing weight/);
  });
});
