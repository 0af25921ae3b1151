import type { AccessPatterns } from './query-history.js';
import type { ColumnStats, InferredType } from './column-stats.js';
import type { ClusterTable, Relationship } from './relationships.js';
import { isHashableType, UNSURE, valueHasherFor } from '../routing/value-hasher.js';
import type { Candidate, PlannedShard, ShardingProfile } from './sharding-profile.js';

export interface PlanInput {
  readonly table: string;
  readonly columns: readonly ColumnStats[];
  /** PostgreSQL base type names per column (catalog's for an existing table, inferred otherwise). */
  readonly pgTypes: Record<string, { typeName: string; maxChars?: number }>;
  readonly sampleValues: Record<string, readonly (string | null)[]>;
  readonly estimatedRows: number;
  readonly averageRowBytes: number;
  readonly relationships: readonly Relationship[];
  readonly clusterTables: readonly ClusterTable[];
  readonly access: AccessPatterns;
  /** Nodes that can hold shards. */
  readonly nodes: readonly string[];
  /** Primary/unique keys of an existing table. */
  readonly keys: readonly { constraint: string; columns: string[]; primary: boolean }[];
  readonly keepKeys: boolean;
  readonly defaultShardCount: number;
  readonly sample: ShardingProfile['sample'];
  /** Force the distribution column (e.g. --distribution-column). */
  readonly forcedColumn?: string;
  /** Force the shard count (--shard-count); colocation then needs a group of that count. */
  readonly forcedShardCount?: number;
}

/** Up to this many rows a table is a dimension: a reference table, copied to every node, joined locally. */
export const DIMENSION_ROWS = 10_000;
/** Up to this many rows a table without a grouping key column is a reference table too. */
export const REFERENCE_TABLE_ROWS = 100_000;
/** A value holding at least this many times a fair shard's share of rows gets a shard of its own. */
const ISOLATE_FACTOR = 2;
/** Shards predicted to hold this many times the mean are split in two. */
const SPLIT_FACTOR = 2;
const MAX_ISOLATED = 8;
const KEY_TYPES = new Set(['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar']);
const TENANT_NAME = /(^|_)(tenant|customer|account|org|organization|company|client|site|shop|store|user|project|workspace)_?id$/;

export const INFERRED_TO_PG: Record<InferredType, string> = {
  boolean: 'bool', integer: 'int4', bigint: 'int8', numeric: 'numeric', uuid: 'uuid', date: 'date',
  timestamp: 'timestamp', timestamptz: 'timestamptz', text: 'text',
};

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Citus's initial hash ranges for n shards (create_distributed_table). */
export function uniformRanges(n: number): { min: number; max: number }[] {
  const step = Math.floor(4294967296 / n);
  return Array.from({ length: n }, (_, i) => {
    const min = INT32_MIN + i * step;
    return { min, max: i === n - 1 ? INT32_MAX : min + step - 1 };
  });
}

/** Hashes of the sampled values as Citus would compute them, or undefined for unhashable types. */
function sampleHashes(input: PlanInput, column: string): { hash: number; value: string }[] | undefined {
  const t = input.pgTypes[column];
  if (!t || !isHashableType(t.typeName)) return undefined;
  const hasher = valueHasherFor(t);
  const out: { hash: number; value: string }[] = [];
  for (const v of input.sampleValues[column] ?? []) {
    if (v === null) continue;
    const b = Buffer.from(v, 'utf8');
    const h = hasher.hash(b, 0, b.length);
    if (h !== UNSURE) out.push({ hash: h, value: v });
  }
  return out;
}

interface Layout {
  shards: PlannedShard[];
  isolate: string[];
  splitPoints: number[];
  maxOverMean: number;
}

/** Applies tenant isolation and splits to Citus's uniform ranges and predicts each shard's rows. */
function layoutFor(input: PlanInput, column: ColumnStats, shardCount: number, allowChanges: boolean): Layout {
  const hashes = sampleHashes(input, column.name);
  const rowsPerSample = input.estimatedRows / Math.max(1, (input.sampleValues[column.name] ?? []).length);
  let ranges: { min: number; max: number; tenant?: string }[] = uniformRanges(shardCount);
  const isolate: string[] = [];
  const splitPoints: number[] = [];
  if (hashes && allowChanges && column.distinctEstimate >= shardCount * 4) {
    const threshold = ISOLATE_FACTOR / shardCount;
    for (const hh of column.heavyHitters) {
      if (isolate.length >= MAX_ISOLATED || hh.share < threshold) break;
      const b = Buffer.from(hh.value, 'utf8');
      const h = valueHasherFor(input.pgTypes[column.name]!).hash(b, 0, b.length);
      if (h === UNSURE) continue;
      isolate.push(hh.value);
      ranges = ranges.flatMap((r) => {
        if (h < r.min || h > r.max) return [r];
        const parts: { min: number; max: number; tenant?: string }[] = [];
        if (h > r.min) parts.push({ min: r.min, max: h - 1 });
        parts.push({ min: h, max: h, tenant: hh.value });
        if (h < r.max) parts.push({ min: h + 1, max: r.max });
        return parts;
      });
    }
  }
  const count = (r: { min: number; max: number }) => (hashes ? hashes.filter((x) => x.hash >= r.min && x.hash <= r.max).length : 0);
  if (hashes && allowChanges) {
    // Split shards still predicted far above the mean, at the median sampled hash inside them.
    const mean = hashes.length / ranges.length;
    ranges = ranges.flatMap((r) => {
      if (r.tenant !== undefined || count(r) < SPLIT_FACTOR * mean || r.min === r.max) return [r];
      const inside = hashes.filter((x) => x.hash >= r.min && x.hash <= r.max).map((x) => x.hash).sort((a, b) => a - b);
      const point = inside[Math.floor(inside.length / 2) - 1]!;
      if (point < r.min || point >= r.max) return [r];
      splitPoints.push(point);
      return [{ min: r.min, max: point }, { min: point + 1, max: r.max }];
    });
  }
  const total = hashes?.length ?? 0;
  const shards: PlannedShard[] = ranges.map((r, i) => {
    const n = hashes ? count(r) : 0;
    const rows = hashes ? Math.round(n * rowsPerSample) : Math.round(input.estimatedRows / ranges.length);
    return {
      shardIndex: i, hashMin: r.min, hashMax: r.max, rows, bytes: Math.round(rows * input.averageRowBytes),
      load: total ? n / total : 1 / ranges.length, node: null, ...(r.tenant !== undefined ? { tenant: r.tenant } : {}),
    };
  });
  const loads = shards.map((s) => s.load);
  const mean = 1 / shards.length;
  return { shards, isolate, splitPoints, maxOverMean: Math.max(...loads) / mean };
}

/** Longest-processing-time-first: the heaviest shard goes to the node with the least load so far. */
function place(shards: PlannedShard[], nodes: readonly string[]): PlannedShard[] {
  if (nodes.length === 0) return shards;
  const loadOf = new Map(nodes.map((n) => [n, 0]));
  const placed = new Map<number, string>();
  for (const s of [...shards].sort((a, b) => b.load - a.load || a.shardIndex - b.shardIndex)) {
    const node = [...loadOf].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0]![0];
    placed.set(s.shardIndex, node);
    loadOf.set(node, loadOf.get(node)! + s.load);
  }
  return shards.map((s) => ({ ...s, node: placed.get(s.shardIndex)! }));
}

function pct(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

/** Scores one column as a distribution column; the reasons say why, in words. */
type Scored = Candidate & { colocateWith: string | null; layout?: Layout; groups?: boolean };

function scoreColumn(input: PlanInput, c: ColumnStats, shardCount: number): Scored {
  const reasons: string[] = [];
  const reject = (why: string): Scored => ({ column: c.name, score: 0, reasons: [why], rejected: why, colocateWith: null });
  if (c.nullFraction > 0) return reject(`${pct(c.nullFraction)} of the sampled values are NULL; Citus does not allow NULL in the distribution column`);
  if (c.distinctEstimate < 2) return reject('a single value: every row would land in one shard');
  if (input.keepKeys && input.keys.some((k) => !k.columns.includes(c.name))) {
    return reject(`--keep-keys: not part of every primary/unique key (${input.keys.map((k) => k.constraint).join(', ')})`);
  }
  const calls = Math.max(1, input.access.calls);
  const use = input.access.columns[c.name];
  let score = 0;

  // Query locality: equality filters become single-shard (router) queries; GROUP BY on the
  // column is pushed down to the shards; range filters on it fan out to every shard.
  const eq = (use?.equality ?? 0) / calls;
  const group = (use?.groupBy ?? 0) / calls;
  const range = (use?.range ?? 0) / calls;
  if (eq > 0) {
    score += 40 * Math.min(1, eq);
    reasons.push(`equality filter in ${pct(Math.min(1, eq))} of the table's query calls: those become single-shard queries`);
  }
  if (group > 0) {
    score += 10 * Math.min(1, group);
    reasons.push(`GROUP BY in ${pct(Math.min(1, group))} of calls: aggregation pushes down to the shards`);
  }
  if (range > 0) {
    score -= 20 * Math.min(1, range);
    reasons.push(`range filters in ${pct(Math.min(1, range))} of calls would fan out to every shard`);
  }

  // Colocation: joins and foreign keys with an existing distributed table stay local only if
  // both are distributed by the joined column.
  let colocateWith: string | null = null;
  const allColo = input.relationships.filter((r) => r.column === c.name && r.colocatable);
  const joinCalls = Object.entries(use?.joins ?? {}).reduce((a, [, w]) => a + w, 0) / calls;
  const groupCount = (t: string) => input.clusterTables.find((x) => x.name === t)?.shardCount;
  const colo = allColo.filter((r) => !input.forcedShardCount || groupCount(r.references.table) === input.forcedShardCount);
  if (allColo.length > colo.length) reasons.push(`--shard-count ${input.forcedShardCount} differs from the shard count of ${allColo[0]!.references.table}: not colocated`);
  if (colo.length > 0) {
    const best = colo.sort((a, b) => (a.evidence === 'name' ? 1 : 0) - (b.evidence === 'name' ? 1 : 0) || b.referencedRows - a.referencedRows)[0]!;
    colocateWith = best.references.table;
    const weight = best.evidence === 'name' ? 8 : 25;
    score += weight;
    reasons.push(best.evidence === 'values'
      ? `${pct(best.containment ?? 1)} of its sampled values are in ${best.references.table}.${best.references.column}, that table's distribution column: colocated, joins stay on one node`
      : best.evidence === 'declared'
        ? `foreign key to ${best.references.table}.${best.references.column}, its distribution column: colocate so the key can be enforced`
        : `its name suggests it refers to ${best.references.table}.${best.references.column} (weak evidence: no values checked)`);
    if (joinCalls > 0) {
      score += 15 * Math.min(1, joinCalls);
      reasons.push(`joined with ${best.references.table} in ${pct(Math.min(1, joinCalls))} of calls`);
    }
  } else if (joinCalls > 0) {
    score += 5 * Math.min(1, joinCalls);
    reasons.push(`joined in ${pct(Math.min(1, joinCalls))} of calls, but with no distributed table colocated by it`);
  }

  // Balance and cardinality.
  // A forced shard count is the user's: no isolation or splits that would add shards.
  const mayReshape = colocateWith === null && !input.forcedShardCount;
  const layout = isHashableType(input.pgTypes[c.name]?.typeName ?? '') ? layoutFor(input, c, shardCount, mayReshape) : undefined;
  if (c.distinctEstimate < shardCount * 4) {
    score -= 25;
    reasons.push(`only about ${c.distinctEstimate} distinct values for ${shardCount} shards: shards would be empty or uneven`);
  } else {
    score += 10 * Math.min(1, Math.log10(c.distinctEstimate) / Math.log10(shardCount * 100));
    reasons.push(`about ${c.distinctEstimate.toLocaleString('en-US')} distinct values (estimated from ${c.sampleDistinct.toLocaleString('en-US')} in the sample)`);
  }
  if (layout) {
    // Nodes, not shards, must balance: an isolated tenant's shard is meant to be big.
    const nodeLoads = new Map<string, number>();
    for (const s of place(layout.shards, input.nodes.length ? input.nodes : ['node'])) nodeLoads.set(s.node!, (nodeLoads.get(s.node!) ?? 0) + s.load);
    const nodeMaxOverMean = Math.max(...nodeLoads.values()) * nodeLoads.size;
    const balance = 1 / Math.max(nodeMaxOverMean, 1);
    score += 15 * balance;
    if (layout.isolate.length) reasons.push(`heavy tenant${layout.isolate.length > 1 ? 's' : ''} ${layout.isolate.join(', ')} (${layout.isolate.map((v) => pct(c.heavyHitters.find((h) => h.value === v)?.share ?? 0)).join(', ')} of rows) get their own shard`);
    reasons.push(`busiest node predicted at ${nodeMaxOverMean.toFixed(2)}x the mean node load (busiest shard ${layout.maxOverMean.toFixed(2)}x the mean shard)`);
  } else {
    const top = c.heavyHitters[0]?.share ?? 0;
    score += 15 * Math.max(0, 1 - top * shardCount / 2);
    reasons.push(`type ${c.type}: per-shard rows not predicted client-side`);
  }
  // Structure, which matters most when there is no query history: a key-like type whose
  // values each group several rows is how tenants, accounts and devices look.
  const typeName = input.pgTypes[c.name]?.typeName ?? '';
  if (KEY_TYPES.has(typeName)) {
    score += 15;
  } else {
    reasons.push(`type ${c.type}: amounts, times and flags make poor keys (filtered by ranges, rarely by equality)`);
  }
  const rowsPerValue = input.estimatedRows / Math.max(1, c.distinctEstimate);
  const groups = KEY_TYPES.has(typeName) && !c.unique && rowsPerValue >= 2 && c.distinctEstimate >= shardCount * 4;
  if (!c.unique && rowsPerValue >= 2 && c.distinctEstimate >= shardCount * 4) {
    score += 10;
    reasons.push(`about ${rowsPerValue.toFixed(rowsPerValue < 10 ? 1 : 0)} rows per value: rows that belong together stay in one shard`);
  }
  if (TENANT_NAME.test(c.name) && !c.unique) {
    score += 5;
    reasons.push('named like a tenant key (weak evidence)');
  }
  if (c.unique && eq === 0 && colocateWith === null) {
    score -= 5;
    reasons.push('unique per row: balances perfectly but keeps no related rows together');
  }
  if (c.monotonicity !== undefined && Math.abs(c.monotonicity) > 0.9 && eq === 0) {
    score -= 15;
    reasons.push(`values follow row order (correlation ${c.monotonicity.toFixed(2)}): time-like, queried by ranges`);
  }
  const keysMissing = input.keys.filter((k) => !k.columns.includes(c.name));
  if (keysMissing.length) reasons.push(`keys ${keysMissing.map((k) => k.constraint).join(', ')} would be widened to include it`);
  return { column: c.name, score: Math.round(score * 10) / 10, reasons, colocateWith, layout, groups };
}

export function planProfile(input: PlanInput): ShardingProfile {
  const reasons: string[] = [];
  const shardCountFor = (colocateWith: string | null) => {
    const group = colocateWith ? input.clusterTables.find((t) => t.name === colocateWith)?.shardCount : undefined;
    if (input.forcedShardCount) return input.forcedShardCount;
    if (group) return group;
    const bytes = input.estimatedRows * input.averageRowBytes;
    const bySize = Math.ceil(bytes / (2 * 1024 ** 3));
    const n = Math.max(input.defaultShardCount, bySize);
    const nodes = Math.max(1, input.nodes.length);
    return Math.ceil(n / nodes) * nodes;
  };
  const baseCount = shardCountFor(null);
  const scored = input.columns.map((c) => scoreColumn(input, c, baseCount));
  // Rescore colocated candidates with their group's shard count.
  const candidates: Scored[] = scored.map((s) => (s.colocateWith && shardCountFor(s.colocateWith) !== baseCount
    ? scoreColumn(input, input.columns.find((c) => c.name === s.column)!, shardCountFor(s.colocateWith)) : s))
    .sort((a, b) => (a.rejected ? 1 : 0) - (b.rejected ? 1 : 0) || b.score - a.score);
  const forced = input.forcedColumn ? candidates.find((c) => c.column === input.forcedColumn) : undefined;
  const best = forced ?? candidates.find((c) => !c.rejected);
  const referenceTables = input.relationships
    .filter((r) => r.referencedKind === 'local' && r.referencedRows <= REFERENCE_TABLE_ROWS && r.evidence !== 'name')
    .map((r) => ({ table: r.references.table, reason: `small (${Math.round(r.referencedRows)} rows) and joined via ${r.column}: replicate it to every node` }))
    .filter((r, i, all) => all.findIndex((x) => x.table === r.table) === i);
  const columnTypes = Object.fromEntries(input.columns.map((c) => [c.name, c.type]));
  const common = {
    version: 1 as const, table: input.table, createdAt: new Date().toISOString(), referenceTables, columnTypes,
    sample: input.sample,
    workload: { ...input.access.workload, statements: input.access.statements },
    candidates: candidates.map(({ column, score, reasons: r, rejected }) => ({ column, score, reasons: r, ...(rejected ? { rejected } : {}) })),
  };

  // Reference table: a dimension-sized table, or a medium one with no column that groups rows
  // (nothing to keep together), unless it must colocate with a distributed table.
  const colocates = best !== undefined && !best.rejected && best.colocateWith !== null;
  const grouping = candidates.some((c) => !c.rejected && c.groups);
  const dimension = input.estimatedRows <= DIMENSION_ROWS
    || (input.estimatedRows <= REFERENCE_TABLE_ROWS && !grouping);
  if (!input.forcedColumn && (!best || best.rejected || (dimension && !colocates))) {
    reasons.push(!best || best.rejected
      ? 'no column can distribute the table; a reference table keeps a full copy on every node'
      : `small table (about ${Math.round(input.estimatedRows).toLocaleString('en-US')} rows${grouping ? '' : ', no column that groups rows'}): `
        + 'a reference table keeps a full copy on every node, so any join with it stays local');
    return {
      ...common, kind: 'reference', distributionColumn: null, shardCount: null, colocateWith: null, isolate: [], splitPoints: [],
      placement: [], shards: [], keyChanges: [], reasons,
      predicted: { rows: Math.round(input.estimatedRows), bytes: Math.round(input.estimatedRows * input.averageRowBytes), maxShardLoadOverMean: 1 },
    };
  }
  const chosen = best!;
  const shardCount = shardCountFor(chosen.colocateWith);
  const layout = chosen.layout ?? layoutFor(input, input.columns.find((c) => c.name === chosen.column)!, shardCount, chosen.colocateWith === null && !input.forcedShardCount);
  const shards = chosen.colocateWith ? layout.shards : place(layout.shards, input.nodes);
  reasons.push(`distribute by ${chosen.column} (score ${chosen.score}${candidates[1] ? `; next ${candidates.find((c) => c !== chosen)?.column} at ${candidates.find((c) => c !== chosen)?.score}` : ''})`);
  reasons.push(...chosen.reasons);
  if (chosen.colocateWith) reasons.push(`colocated with ${chosen.colocateWith}: same shard count (${shardCount}) and placement`);
  else reasons.push(`${shardCount} shards${layout.isolate.length || layout.splitPoints.length ? `, then ${layout.isolate.length} tenant isolation(s) and ${layout.splitPoints.length} split(s) give ${shards.length}` : ''}, placed so each node gets a similar predicted load`);
  if (chosen.colocateWith) {
    // Colocation needs the same distribution column type as the group (int4 vs int8 will not do).
    const parent = input.clusterTables.find((t) => t.name === chosen.colocateWith);
    const rel = input.relationships.find((r) => r.column === chosen.column && r.references.table === chosen.colocateWith);
    const parentType = parent && rel ? parent.columnTypes[rel.references.column] : undefined;
    if (parentType) columnTypes[chosen.column] = parentType;
  }
  const keyChanges = input.keys.filter((k) => !k.columns.includes(chosen.column)).map((k) => ({
    constraint: k.constraint,
    columns: [...k.columns, chosen.column],
  }));
  return {
    ...common,
    kind: 'distributed',
    distributionColumn: chosen.column,
    shardCount,
    colocateWith: chosen.colocateWith,
    isolate: layout.isolate,
    splitPoints: layout.splitPoints,
    placement: shards.filter((s) => s.node !== null).map((s) => ({ shardIndex: s.shardIndex, node: s.node! })),
    shards,
    keyChanges,
    reasons,
    predicted: {
      rows: Math.round(input.estimatedRows),
      bytes: Math.round(input.estimatedRows * input.averageRowBytes),
      maxShardLoadOverMean: layout.maxOverMean,
    },
  };
}
