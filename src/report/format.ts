/** Small formatting helpers shared by the renderers. */
/** A size; null is a node that could not be reached (its size is unknown). */
export function bytes(n: number | null): string {
  if (n === null) return 'unreachable';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** The size skew, saying which nodes it leaves out. */
export function skew(t: { sizeSkew: number; unreachableNodes: readonly string[] }): string {
  const n = t.unreachableNodes.length;
  return `${t.sizeSkew.toFixed(2)}${n ? ` (${n} node${n === 1 ? '' : 's'} unreachable, left out)` : ''}`;
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

/** Cuts a string to `width` characters, marking the cut. */
export function fit(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** Word-wraps text to lines of at most `width` characters: `first` starts the first, spaces the rest. */
export function wrap(text: string, width: number, first = ''): string[] {
  const lines: string[] = [];
  const rest = ' '.repeat(first.length);
  let line = '';
  const prefix = () => (lines.length === 0 ? first : rest);
  for (const word of text.split(/\s+/)) {
    if (line && first.length + line.length + 1 + word.length > width) {
      lines.push(prefix() + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(prefix() + line);
  return lines.flatMap((l) => (l.length > width ? [fit(l, width)] : [l]));
}

/** A ratio such as busiest/mean, or '-' when unknown. */
export function times(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${x.toFixed(2)}x`;
}
