/**
 * Exponentially weighted averages of shard shares over windows: one noisy window moves a shard's
 * smoothed share by `alpha` of its surprise, a steady workload is followed within a few windows.
 * A shard missing from a window (it did not exist yet, or the window was not recorded for it)
 * keeps its average; a shard's first window starts it.
 */
export type Shares = ReadonlyMap<string, number>;

/** One step: the average after `window`, from the average before it. */
export function ewmaStep(before: Shares, window: Shares, alpha: number): Map<string, number> {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`smoothing weight must be in (0, 1], got ${alpha}`);
  const out = new Map(before);
  for (const [id, share] of window) {
    const old = before.get(id);
    out.set(id, old === undefined ? share : alpha * share + (1 - alpha) * old);
  }
  return out;
}

/** The average over windows, oldest first; after each window, the average up to it. */
export function ewmaSeries(windows: readonly Shares[], alpha: number): Map<string, number>[] {
  const out: Map<string, number>[] = [];
  let cur: Map<string, number> = new Map();
  for (const w of windows) {
    cur = ewmaStep(cur, w, alpha);
    out.push(cur);
  }
  return out;
}
