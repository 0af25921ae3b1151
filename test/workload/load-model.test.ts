/**
 * The load model on recorded snapshots (no database): a skewed tenant workload whose true shares
 * the model has never seen; window after window of noisy observations, its predictions must move
 * toward the truth. And a bulk load's even window must not throw a skewed workload's prediction off.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fitWeights, mape, predictShares, shares, type ShardFeatures, type TrainingRow } from '../../src/workload/load-model.js';
import { seededRandom } from '../../src/plan/random.js';

const SHARDS = 32;
const ids = Array.from({ length: SHARDS }, (_, i) => String(102008 + i));
// The truth: shard 3 holds the tenant drawing half of all queries; the rest share the other half.
const truth = ids.map((_, i) => (i === 3 ? 0.5 : 0.5 / (SHARDS - 1)));
const priorShare = ids.map(() => 1 / SHARDS);

function observe(rnd: () => number): number[] {
  return shares(truth.map((t) => t * (0.85 + 0.3 * rnd())));
}

describe('load model', () => {
  it('moves predictions toward the truth over successive windows of a skewed tenant workload', () => {
    const rnd = seededRandom('model');
    const windows: number[][] = [];
    const errors: number[] = [];
    let predicted = new Map(ids.map((id, i) => [id, priorShare[i]!]));
    for (let w = 0; w < 8; w++) {
      const actual = observe(rnd);
      errors.push(mape(ids.map((id, i) => ({ predicted: predicted.get(id)!, actual: truth[i]! })))!);
      windows.push(actual);
      const rows: TrainingRow[] = [];
      for (let k = 1; k < windows.length; k++) {
        ids.forEach((id, i) => rows.push({
          features: { shardId: id, priorShare: priorShare[i]!, previousShare: windows[k - 2]?.[i] ?? priorShare[i]!, currentShare: windows[k - 1]![i]! },
          nextShare: windows[k]![i]!,
        }));
      }
      const features: ShardFeatures[] = ids.map((id, i) => ({
        shardId: id, priorShare: priorShare[i]!, previousShare: windows[w - 1]?.[i] ?? priorShare[i]!, currentShare: actual[i]!,
      }));
      predicted = predictShares(features, fitWeights(rows));
    }
    const final = mape(ids.map((id, i) => ({ predicted: predicted.get(id)!, actual: truth[i]! })))!;
    assert.ok(errors[0]! > 0.5, `the size-only start should be far off (${errors[0]})`);
    assert.ok(errors[1]! < errors[0]! / 3, `one window should cut the error: ${errors.map((e) => e.toFixed(3)).join(', ')}`);
    assert.ok(final < 0.12, `after 8 windows MAPE is ${final.toFixed(3)}: ${errors.map((e) => e.toFixed(3)).join(', ')}`);
    const hot = predicted.get(ids[3]!)!;
    assert.ok(Math.abs(hot - 0.5) < 0.08, `hot shard predicted at ${hot}`);
  });

  it('a bulk load window (even across shards) does not undo what the workload showed', () => {
    const rnd = seededRandom('bulk');
    const even = ids.map(() => 1 / SHARDS);
    const skewed = observe(rnd);
    const rows: TrainingRow[] = ids.map((id, i) => ({
      features: { shardId: id, priorShare: priorShare[i]!, previousShare: priorShare[i]!, currentShare: even[i]! },
      nextShare: skewed[i]!,
    }));
    const w = fitWeights(rows);
    const next = predictShares(ids.map((id, i) => ({ shardId: id, priorShare: priorShare[i]!, previousShare: even[i]!, currentShare: skewed[i]! })), w);
    assert.ok(next.get(ids[3]!)! > 0.3, `hot shard predicted at ${next.get(ids[3]!)}; weights ${JSON.stringify(w)}`);
  });

  it('mape ignores shards with no actual load and reports shares of zero loads evenly', () => {
    assert.ok(Math.abs(mape([{ predicted: 0.5, actual: 0.4 }, { predicted: 0.1, actual: 0 }])! - 0.25) < 1e-12);
    assert.deepEqual(shares([0, 0]), [0.5, 0.5]);
  });
});
