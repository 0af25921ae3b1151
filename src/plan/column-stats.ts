
/** A PostgreSQL type the analysis can infer from text. */
export type InferredType = 'boolean' | 'integer' | 'bigint' | 'numeric' | 'uuid' | 'date' | 'timestamp' | 'timestamptz' | 'text';

export interface HeavyHitter {
  readonly value: string;
  /** Share of the non-null rows. */
  readonly share: number;
}

export interface ColumnStats {
  readonly name: string;
  /** The existing column's type when the table exists, else the inferred one. */
  readonly type: string;
  readonly inferredType: InferredType;
  readonly nullFraction: number;
  /** Sampled distinct values, and the estimate for the whole input (Haas–Stokes Duj1). */
  readonly sampleDistinct: number;
  readonly distinctEstimate: number;
  /** True when the sample suggests every value is distinct. */
  readonly unique: boolean;
  readonly heavyHitters: HeavyHitter[];
  /** Spearman correlation of value order with row order, in [-1, 1]; undefined when not orderable. */
  readonly monotonicity: number | undefined;
  /** 0%, 10%, ..., 100% quantile boundaries (orderable types only). */
  readonly quantiles: string[] | undefined;
  readonly averageWidth: number;
}

const INT = /^\s*[-+]?\d+\s*$/;
const NUM = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;
const UUID = /^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TS = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;
const TSTZ = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$/;
const BOOL = /^(t|f|true|false|yes|no|on|off)$/i;

/** The narrowest type every non-null value parses as. */
export function inferType(values: readonly string[]): InferredType {
  const all = (re: RegExp) => values.every((v) => re.test(v));
  if (values.length === 0) return 'text';
  if (all(BOOL)) return 'boolean';
  if (all(INT)) {
    const fitsInt4 = values.every((v) => {
      const n = Number(v);
      return n >= -2147483648 && n <= 2147483647;
    });
    return fitsInt4 ? 'integer' : 'bigint';
  }
  if (all(NUM)) return 'numeric';
  if (all(UUID)) return 'uuid';
  if (all(DATE)) return 'date';
  if (all(TSTZ)) return 'timestamptz';
  if (all(TS)) return 'timestamp';
  return 'text';
}

const ORDERABLE = new Set<InferredType>(['integer', 'bigint', 'numeric', 'date', 'timestamp', 'timestamptz', 'text']);
const NUMERIC = new Set<InferredType>(['integer', 'bigint', 'numeric']);

/**
 * Distinct values of the whole input from a sample of n rows with d distinct values, f1 seen
 * once and f2 seen twice, N rows in all. A raw sample count would call a 10-million-customer
 * column "20,000 distinct". Two estimators, the larger wins:
 * - Haas & Stokes' Duj1, n·d / (n − f1 + f1·n/N), which PostgreSQL's ANALYZE uses; good for
 *   even distributions, far too low for skewed ones (tenants!);
 * - the bias-corrected Chao1 lower bound, d + f1(f1 − 1) / (2(f2 + 1)), which holds under
 *   skew and for nearly unique columns.
 */
export function estimateDistinct(n: number, d: number, f1: number, total: number, f2 = 0): number {
  if (n === 0) return 0;
  if (n >= total) return d;
  if (f1 === n) return total; // every sampled value unique: assume a unique column
  const duj1 = (n * d) / (n - f1 + (f1 * n) / total);
  const chao1 = d + (f1 * (f1 - 1)) / (2 * (f2 + 1));
  return Math.round(Math.min(total, Math.max(d, duj1, chao1)));
}

/**
 * Pearson correlation. Written out rather than imported: loading mathjs for this one function cost
 * about 200 ms, a third of the planning budget.
 */
function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]!; my += y[i]!; }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

/** Ranks (ties averaged, as Spearman needs) given the order that sorts the values. */
function ranksFromOrder<T>(values: readonly T[], order: readonly number[], same: (a: T, b: T) => boolean): number[] {
  const r = new Array<number>(values.length);
  for (let k = 0; k < order.length;) {
    let m = k;
    while (m + 1 < order.length && same(values[order[m + 1]!]!, values[order[k]!]!)) m++;
    const avg = (k + m) / 2;
    for (let t = k; t <= m; t++) r[order[t]!] = avg;
    k = m + 1;
  }
  return r;
}

export interface ColumnInput {
  readonly name: string;
  readonly existingType?: string;
  /** Values in sample order, null for NULL. */
  readonly values: readonly (string | null)[];
  /** Each sampled row's relative position in the input (0..1). */
  readonly positions: readonly number[];
}

export function describeColumn(input: ColumnInput, totalRows: number): ColumnStats {
  const n = input.values.length;
  const nonNull: string[] = [];
  const nonNullPositions: number[] = [];
  input.values.forEach((v, i) => {
    if (v !== null) {
      nonNull.push(v);
      nonNullPositions.push(input.positions[i]!);
    }
  });
  const inferredType = inferType(nonNull);
  const counts = new Map<string, number>();
  let width = 0;
  for (const v of nonNull) {
    counts.set(v, (counts.get(v) ?? 0) + 1);
    width += Buffer.byteLength(v);
  }
  let f1 = 0;
  let f2 = 0;
  for (const c of counts.values()) {
    if (c === 1) f1++;
    else if (c === 2) f2++;
  }
  const nonNullTotal = Math.round(totalRows * (nonNull.length / Math.max(1, n)));
  const distinctEstimate = estimateDistinct(nonNull.length, counts.size, f1, Math.max(nonNullTotal, nonNull.length), f2);
  const heavyHitters = [...counts].filter(([, c]) => c / Math.max(1, nonNull.length) >= 0.01)
    .sort((a, b) => b[1] - a[1]).slice(0, 20)
    .map(([value, c]) => ({ value, share: c / nonNull.length }));

  let monotonicity: number | undefined;
  let quantiles: string[] | undefined;
  if (ORDERABLE.has(inferredType) && nonNull.length >= 3) {
    // Numbers compare as numbers (precomputed once), everything else as text.
    const keys: (number | string)[] = NUMERIC.has(inferredType) ? nonNull.map(Number) : nonNull;
    const order = keys.map((_, i) => i).sort(NUMERIC.has(inferredType)
      ? (i, j) => (keys[i] as number) - (keys[j] as number)
      : (i, j) => (keys[i]! < keys[j]! ? -1 : keys[i]! > keys[j]! ? 1 : 0));
    quantiles = Array.from({ length: 11 }, (_, k) => nonNull[order[Math.min(order.length - 1, Math.floor((k / 10) * (order.length - 1)))]!]!);
    const valueRanks = ranksFromOrder(keys, order, (a, b) => a === b);
    const posOrder = nonNullPositions.map((_, i) => i).sort((i, j) => nonNullPositions[i]! - nonNullPositions[j]!);
    const positionRanks = ranksFromOrder(nonNullPositions, posOrder, (a, b) => a === b);
    monotonicity = pearson(valueRanks, positionRanks);
  }
  return {
    name: input.name,
    type: input.existingType ?? inferredType,
    inferredType,
    nullFraction: n ? (n - nonNull.length) / n : 0,
    sampleDistinct: counts.size,
    distinctEstimate,
    unique: nonNull.length > 0 && f1 === nonNull.length && nonNull.length === n,
    heavyHitters,
    monotonicity,
    quantiles,
    averageWidth: nonNull.length ? width / nonNull.length : 0,
  };
}
