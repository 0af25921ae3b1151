import { lusolve, multiply, transpose, add, identity, matrix, type Matrix } from 'mathjs';

/**
 * The load model: each shard's share of the cluster's load in the next window is predicted from
 * features of the current one. Features per shard: its prior share (what the sharding profile and
 * the coordinator's query history expect of it, else its size; see prior.ts), its smoothed share
 * (an exponentially weighted average over the recorded windows, smoothing.ts), and its share in
 * the current window. The weights are fitted by ridge-regularized
 * least squares (mathjs) over consecutive recorded windows, shrunk toward prior weights (mostly the
 * latest load, a little prior share) so that little history means little change. Predictions are clamped at 0 and normalized.
 */

export interface ShardFeatures {
  readonly shardId: string;
  readonly priorShare: number;
  /** EWMA of its actual shares up to and including the current window. */
  readonly smoothedShare: number;
  readonly currentShare: number;
}

export interface ModelWeights {
  readonly prior: number;
  readonly smoothed: number;
  readonly current: number;
  /** How many (features, next-window actual) pairs the fit used; 0 means the prior. */
  readonly trainedOn: number;
}

/**
 * Persistence with a little smoothing and a little prior: load shares change slowly, the smoothed
 * share damps one window's noise, and the prior covers shards with no history.
 */
export const PRIOR_WEIGHTS: ModelWeights = { prior: 0.05, smoothed: 0.3, current: 0.65, trainedOn: 0 };
/**
 * Strength of the pull toward the prior. In the units of XᵀX (sums of squared shares: about 0.03
 * per window for 32 even shards, more with skew), one window barely moves the weights; ten move
 * them most of the way.
 */
const SHRINK = 0.05;

export interface TrainingRow {
  readonly features: ShardFeatures;
  /** The shard's actual share in the window after the features were taken. */
  readonly nextShare: number;
}

/**
 * Fits the weights (mathjs): least squares shrunk toward the prior, i.e. solving
 * (XᵀX + λI) w = Xᵀy + λ w_prior, so a short or unrepresentative history (a bulk load's
 * window, say) cannot throw the prediction off.
 */
export function fitWeights(rows: readonly TrainingRow[]): ModelWeights {
  if (rows.length === 0) return PRIOR_WEIGHTS;
  const X = matrix(rows.map((r) => [r.features.priorShare, r.features.smoothedShare, r.features.currentShare]));
  const y = matrix(rows.map((r) => [r.nextShare]));
  const Xt = transpose(X);
  const XtX = add(multiply(Xt, X), multiply(identity(3), SHRINK)) as Matrix;
  const Xty = add(multiply(Xt, y), multiply(matrix([[PRIOR_WEIGHTS.prior], [PRIOR_WEIGHTS.smoothed], [PRIOR_WEIGHTS.current]]), SHRINK)) as Matrix;
  const w = (lusolve(XtX, Xty) as Matrix).toArray() as number[][];
  const [prior, smoothed, current] = w.map((row) => Math.max(0, row[0]!));
  // Negative weights fit noise (collinear features of a steady workload), and would let a
  // shard's prediction fall as its load rises: clamped at 0; all zero means no usable fit.
  if (![prior, smoothed, current].every((v) => Number.isFinite(v)) || prior! + smoothed! + current! <= 0) return PRIOR_WEIGHTS;
  return { prior: prior!, smoothed: smoothed!, current: current!, trainedOn: rows.length };
}

/** Predicted next-window share per shard (sums to 1). */
export function predictShares(features: readonly ShardFeatures[], w: ModelWeights): Map<string, number> {
  const raw = features.map((f) => Math.max(0, w.prior * f.priorShare + w.smoothed * f.smoothedShare + w.current * f.currentShare));
  const total = raw.reduce((a, b) => a + b, 0);
  const out = new Map<string, number>();
  features.forEach((f, i) => out.set(f.shardId, total > 0 ? raw[i]! / total : 1 / features.length));
  return out;
}

/**
 * Mean absolute percentage error of predicted against actual shares (0.1 = 10%), over the pairs
 * whose actual share is at least `minActual` (a relative error on a tiny share is noise).
 */
export function mape(pairs: readonly { predicted: number; actual: number }[], minActual = 0): number | undefined {
  const usable = pairs.filter((p) => p.actual > 0 && p.actual >= minActual);
  if (usable.length === 0) return undefined;
  return usable.reduce((a, p) => a + Math.abs(p.predicted - p.actual) / p.actual, 0) / usable.length;
}

/** Shares of a list of non-negative loads (uniform when all are zero). */
export function shares(values: readonly number[]): number[] {
  const total = values.reduce((a, b) => a + b, 0);
  return values.map((v) => (total > 0 ? v / total : 1 / values.length));
}

/**
 * Weighted absolute percentage error: sum |predicted - actual| over sum actual. Every pair counts,
 * an idle one (actual 0) included, so over-predicting an idle node is scored; undefined when
 * nothing happened (no actual load to weigh by).
 */
export function wape(pairs: readonly { predicted: number; actual: number }[]): number | undefined {
  const actual = pairs.reduce((a, p) => a + p.actual, 0);
  if (!(actual > 0)) return undefined;
  return pairs.reduce((a, p) => a + Math.abs(p.predicted - p.actual), 0) / actual;
}

/** The largest absolute error of a share (0.04 = 4 points of share), undefined for no pairs. */
export function maxShareError(pairs: readonly { predicted: number; actual: number }[]): number | undefined {
  return pairs.length ? Math.max(...pairs.map((p) => Math.abs(p.predicted - p.actual))) : undefined;
}
