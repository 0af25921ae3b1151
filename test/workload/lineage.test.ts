/**
 * The pieces of a shard split by a tenant isolation inherit its prediction: the tenant's
 * one-value piece its share of the shard's load, the others the rest by range width.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inheritPredictions } from '../../src/workload/lineage.js';

describe('prediction lineage', () => {
  it('an isolated tenant carries its share of its old shard; the rest splits by range; other shards keep theirs', () => {
    const before = [
      { shardId: '1', table: 'events', min: -100, max: -1 },
      { shardId: '2', table: 'events', min: 0, max: 99 },
      { shardId: '11', table: 'visits', min: 0, max: 99 },
    ];
    const after = [
      { shardId: '1', table: 'events', min: -100, max: -1 },
      { shardId: '3', table: 'events', min: 0, max: 40 },
      { shardId: '4', table: 'events', min: 41, max: 41 },
      { shardId: '5', table: 'events', min: 42, max: 99 },
      // The colocated table's shard, split with it (CASCADE).
      { shardId: '12', table: 'visits', min: 0, max: 40 },
      { shardId: '13', table: 'visits', min: 41, max: 41 },
      { shardId: '14', table: 'visits', min: 42, max: 99 },
    ];
    const predicted = new Map([['1', 0.2], ['2', 0.6], ['11', 0.2]]);
    const out = inheritPredictions(before, after, predicted, [{ hash: 41, share: 0.8 }]);
    const near = (id: string, v: number) => assert.ok(Math.abs(out.get(id)! - v) < 1e-12, `${id}: ${out.get(id)} != ${v}`);
    near('1', 0.2);
    near('4', 0.48);
    near('3', 0.6 * 0.2 * 41 / 99);
    near('5', 0.6 * 0.2 * 58 / 99);
    near('13', 0.16);
    const total = [...out.values()].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-12, `the pieces add up to their parents: ${total}`);
  });
});
