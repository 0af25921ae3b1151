/**
 * What moved, from two readings of the placements: colocated shards moved together are one move
 * with one undo back to exactly where they were; a shard moved twice is one move from its first
 * node to its last; a placement added or dropped without a counterpart is a change, not a move.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diffPlacements } from '../../src/rebalance/placement-diff.js';
import type { PlacementRow } from '../../src/catalog/placements.js';

const A = { host: '10.0.0.1', port: 5432 };
const B = { host: '10.0.0.2', port: 5432 };
const C = { host: "o'brien", port: 6432 };
const p = (shardId: string, table: string, range: number, node: { host: string; port: number }, colocationId = 1): PlacementRow =>
  ({ shardId, table, colocationId, minValue: String(range * 100), maxValue: String(range * 100 + 99), ...node });

describe('placement diff', () => {
  it('a shard and its colocated shards that went from A to B are one move, undone by moving one of them back', () => {
    const before = [p('101', 'customers', 0, A), p('201', 'orders', 0, A), p('102', 'customers', 1, A), p('202', 'orders', 1, A)];
    const after = [p('101', 'customers', 0, B), p('201', 'orders', 0, B), p('102', 'customers', 1, A), p('202', 'orders', 1, A)];
    const { moves, changes } = diffPlacements(before, after);
    assert.deepEqual(changes, []);
    assert.equal(moves.length, 1);
    assert.deepEqual(moves[0]!.shards, [{ shardId: '101', table: 'customers' }, { shardId: '201', table: 'orders' }]);
    assert.equal(moves[0]!.from, '10.0.0.1:5432');
    assert.equal(moves[0]!.to, '10.0.0.2:5432');
    assert.equal(moves[0]!.undoSql, "SELECT citus_move_shard_placement(101, '10.0.0.2', 5432, '10.0.0.1', 5432, 'block_writes')");
  });

  it('shards of different ranges or groups that moved the same way are separate moves', () => {
    const before = [p('101', 'customers', 0, A), p('102', 'customers', 1, A), p('301', 'visits', 0, A, 2)];
    const after = [p('101', 'customers', 0, B), p('102', 'customers', 1, B), p('301', 'visits', 0, B, 2)];
    assert.deepEqual(diffPlacements(before, after).moves.map((m) => m.shardId), ['101', '102', '301']);
  });

  it('a shard moved A to B and then B to C is one move from A to C; nothing that stayed is recorded', () => {
    const before = [p('101', 'customers', 0, A), p('102', 'customers', 1, B)];
    const after = [p('101', 'customers', 0, C), p('102', 'customers', 1, B)];
    const { moves } = diffPlacements(before, after);
    assert.equal(moves.length, 1);
    assert.equal(moves[0]!.undoSql, "SELECT citus_move_shard_placement(101, 'o''brien', 6432, '10.0.0.1', 5432, 'block_writes')");
  });

  it('a placement added without one removed is a change without undo; a dropped table is nothing', () => {
    const before = [p('101', 'customers', 0, A), p('401', 'gone', 0, A, 3)];
    const after = [p('101', 'customers', 0, A), p('101', 'customers', 0, B)];
    const { moves, changes } = diffPlacements(before, after);
    assert.deepEqual(moves, []);
    assert.deepEqual(changes, [{ shardId: '101', table: 'customers', removed: [], added: ['10.0.0.2:5432'] }]);
  });
});
