import type { AccessPatterns } from './query-history.js';
import type { ColumnStats, InferredType } from './column-stats.js';
import type { ClusterTable, Relationship } from './relationships.js';
import { isHashableType, UNSURE, valueHasherFor } from '../routing/value-hasher.js';
import type { Candidate, PlannedShard, ShardingProfile } from './sharding-profile.js';
import { baseTypeOf, colocationTypeRule } from './colocation-rules.js';
import { busiestOverMean, placeInGroup } from './group-layout.js';

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
  /** The table exists: its column types are fixed (pgTypes are the catalog's). */
  readonly tableExists?: boolean;
  /** Rows the user expects the table to hold (--expected-rows): sizes the plan instead of the input's. */
  readonly expectedRows?: number;
}

/** Rows the plan is sized for: what the user expects, else what the input holds. */
export function plannedRows(input: PlanInput): number {
  return Math.max(input.estimatedRows, input.expectedRows ?? 0);
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
function sampleHashes(input: PlanInput, column: string, t = input.pgTypes[column]): { hash: number; value: string }[] | undefined {
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

/** Citus's hashes of the values the client can hash for sure (others are left out). */
export function hashesOf(values: readonly (string | null)[], type: { typeName: string; maxChars?: number }): number[] {
  if (!isHashableType(type.typeName)) return [];
  const hasher = valueHasherFor(type);
  const out: number[] = [];
  for (const v of values) {
    if (v === null) continue;
    const b = Buffer.from(v, 'utf8');
    const h = hasher.hash(b, 0, b.length);
    if (h !== UNSURE) out.push(h);
  }
  return out;
}

interface Layout {
  shards: PlannedShard[];
  isolate: string[];
  splitPoints: number[];
  maxOverMean: number;
}

export interface LayoutOptions {
  /** Tenants above the threshold get a shard of their own. */
  readonly isolate: boolean;
  /** Shards far above the mean are split (only in a group of the table's own). */
  readonly split: boolean;
  /** The type the column will have (a colocated table takes its group's), for hashing. */
  readonly type?: { typeName: string; maxChars?: number };
  /** The ranges the table starts from: its group's real ones, else Citus's uniform ones. */
  readonly ranges?: readonly { min: number; max: number }[];
}

/**
 * Tenants that hold at least ISOLATE_FACTOR fair shards' worth of rows and are not alone in a
 * shard yet, heaviest first: the isolation rule, for a new table and for one already placed.
 */
export function tenantsToIsolate(column: ColumnStats, type: { typeName: string; maxChars?: number }, ranges: readonly { min: number; max: number }[]): { value: string; hash: number; share: number }[] {
  if (!isHashableType(type.typeName) || column.distinctEstimate < ranges.length * 4) return [];
  const threshold = ISOLATE_FACTOR / ranges.length;
  const hasher = valueHasherFor(type);
  const out: { value: string; hash: number; share: number }[] = [];
  for (const hh of column.heavyHitters) {
    if (out.length >= MAX_ISOLATED || hh.share < threshold) break;
    const b = Buffer.from(hh.value, 'utf8');
    const h = hasher.hash(b, 0, b.length);
    if (h === UNSURE || ranges.some((r) => r.min === h && r.max === h)) continue;
    out.push({ value: hh.value, hash: h, share: hh.share });
  }
  return out;
}

/** Applies tenant isolation and splits to the starting ranges and predicts each shard's rows. */
function layoutFor(input: PlanInput, column: ColumnStats, shardCount: number, options: LayoutOptions): Layout {
  const type = options.type ?? input.pgTypes[column.name];
  const hashes = sampleHashes(input, column.name, type);
  const rowsPerSample = plannedRows(input) / Math.max(1, (input.sampleValues[column.name] ?? []).length);
  let ranges: { min: number; max: number; tenant?: string }[] = options.ranges ? options.ranges.map((r) => ({ ...r })) : uniformRanges(shardCount);
  const isolate: string[] = [];
  const splitPoints: number[] = [];
  if (hashes && type && options.isolate) {
    for (const { value, hash: h } of tenantsToIsolate(column, type, ranges)) {
      isolate.push(value);
      ranges = ranges.flatMap((r) => {
        if (h < r.min || h > r.max) return [r];
        const parts: { min: number; max: number; tenant?: string }[] = [];
        if (h > r.min) parts.push({ min: r.min, max: h - 1 });
        parts.push({ min: h, max: h, tenant: value });
        if (h < r.max) parts.push({ min: h + 1, max: r.max });
        return parts;
      });
    }
  }
  const count = (r: { min: number; max: number }) => (hashes ? hashes.filter((x) => x.hash >= r.min && x.hash <= r.max).length : 0);
  if (hashes && options.split) {
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
    const rows = hashes ? Math.round(n * rowsPerSample) : Math.round(plannedRows(input) / ranges.length);
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
type Scored = Candidate & { colocateWith: string | null; columnType?: string; layout?: Layout; placed?: Placed; groups?: boolean };

interface Placed {
  readonly shards: PlannedShard[];
  readonly moves: { shardIndex: number; from: string; to: string; tenant?: string }[];
  /** Undefined when the nodes are not known (a group whose placements were not read). */
  readonly nodeMaxOverMean: number | undefined;
}

/** Where the layout's shards go: LPT placement in a group of its own, the group's otherwise. */
function placeLayout(input: PlanInput, layout: Layout, group: ClusterTable | undefined): Placed {
  if (!group) {
    const shards = place(layout.shards, input.nodes);
    return { shards, moves: [], nodeMaxOverMean: busiestOverMean(shards, input.nodes.length ? input.nodes : ['node']) };
  }
  if (!group.shards?.length) return { shards: layout.shards, moves: [], nodeMaxOverMean: undefined };
  const nodes = input.nodes.length ? input.nodes : [...new Set(group.shards.map((g) => g.node))];
  const r = placeInGroup(layout.shards, group.shards, nodes, Math.ceil(layout.shards.length / 2));
  return { shards: r.shards, moves: r.moves, nodeMaxOverMean: busiestOverMean(r.shards, nodes) };
}

/** A colocation candidate Citus will accept, with the type the column must have for it. */
export interface ColocationOption {
  readonly rel: Relationship;
  readonly groupType: string;
  readonly plannedType: string | undefined;
  readonly typeReason?: string;
}

/**
 * The groups column `c` can colocate with, best first: evidence that means something (weak values
 * evidence needs the query history to agree), the same shard count when one is forced, a type
 * Citus accepts, and not a pairing already refused (`avoid`). Why others were dropped goes to `reasons`.
 */
export function colocationOptions(input: PlanInput, c: ColumnStats, reasons: string[], avoid: ReadonlySet<string> = new Set()): ColocationOption[] {
  const out: ColocationOption[] = [];
  const joins = input.access.columns[c.name]?.joins ?? {};
  for (const rel of input.relationships.filter((r) => r.column === c.name && r.colocatable)) {
    const table = rel.references.table;
    const group = input.clusterTables.find((x) => x.name === table);
    if (avoid.has(`${c.name}->${table}`)) {
      reasons.push(`Citus refused colocating with ${table}: not colocated`);
      continue;
    }
    const joined = Object.keys(joins).some((k) => k.startsWith(`${table}.`) || k.startsWith(`${table.replace(/^public\./, '')}.`));
    if (rel.weak && !joined) {
      reasons.push(`its values are in ${table}.${rel.references.column}, but both look like serial keys (dense integers) and neither names nor query history agree: weak evidence, not colocated`);
      continue;
    }
    if (input.forcedShardCount && group?.shardCount !== input.forcedShardCount) {
      reasons.push(`--shard-count ${input.forcedShardCount} differs from the shard count of ${table}: not colocated`);
      continue;
    }
    const groupType = group?.columnTypes[rel.references.column];
    if (groupType === undefined) {
      out.push({ rel, groupType: '', plannedType: undefined });
      continue;
    }
    const decision = colocationTypeRule({
      column: c.name, group: table, groupType,
      existingType: input.tableExists ? input.pgTypes[c.name]?.typeName : undefined,
      values: input.sampleValues[c.name] ?? [],
    });
    if (!decision.ok) {
      reasons.push(decision.reason);
      continue;
    }
    out.push({ rel, groupType, plannedType: decision.plannedType,
      ...(decision.reason && baseTypeOf(groupType).typeName !== input.pgTypes[c.name]?.typeName ? { typeReason: decision.reason } : {}) });
  }
  const rank = (e: Relationship['evidence']) => (e === 'name' ? 2 : e === 'values' ? 1 : 0);
  return out.sort((a, b) => rank(a.rel.evidence) - rank(b.rel.evidence) || b.rel.referencedRows - a.rel.referencedRows);
}

function scoreColumn(input: PlanInput, c: ColumnStats, shardCount: number, avoid: ReadonlySet<string> = new Set()): Scored {
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
  let colocateType: string | undefined;
  const joinCalls = Object.entries(use?.joins ?? {}).reduce((a, [, w]) => a + w, 0) / calls;
  const colo = colocationOptions(input, c, reasons, avoid);
  if (colo.length > 0) {
    const best = colo[0]!;
    colocateWith = best.rel.references.table;
    colocateType = best.plannedType ?? best.groupType;
    const weight = best.rel.evidence === 'name' ? 8 : 25;
    score += weight;
    reasons.push(best.rel.evidence === 'values'
      ? `${pct(best.rel.containment ?? 1)} of its sampled values are in ${best.rel.references.table}.${best.rel.references.column}, that table's distribution column: colocated, joins stay on one node`
      : best.rel.evidence === 'declared'
        ? `foreign key to ${best.rel.references.table}.${best.rel.references.column}, its distribution column: colocate so the key can be enforced`
        : `its name suggests it refers to ${best.rel.references.table}.${best.rel.references.column} (weak evidence: no values checked)`);
    if (best.typeReason) reasons.push(best.typeReason);
    if (joinCalls > 0) {
      score += 15 * Math.min(1, joinCalls);
      reasons.push(`joined with ${best.rel.references.table} in ${pct(Math.min(1, joinCalls))} of calls`);
    }
  } else if (joinCalls > 0) {
    score += 5 * Math.min(1, joinCalls);
    reasons.push(`joined in ${pct(Math.min(1, joinCalls))} of calls, but with no distributed table colocated by it`);
  }

  // Balance and cardinality. A forced shard count is the user's: no isolation or splits that
  // would add shards. In an existing group tenants are isolated (with CASCADE, so the group keeps
  // matching ranges) but nothing is split, and the group's real ranges and placements count.
  const groupTable = colocateWith ? input.clusterTables.find((t) => t.name === colocateWith) : undefined;
  const type = colocateType ? baseTypeOf(colocateType) : input.pgTypes[c.name];
  const layout = isHashableType(type?.typeName ?? '')
    ? layoutFor(input, c, shardCount, {
      isolate: !input.forcedShardCount, split: colocateWith === null && !input.forcedShardCount,
      ...(type ? { type } : {}), ...(groupTable?.shards?.length ? { ranges: groupTable.shards } : {}),
    })
    : undefined;
  const placed = layout ? placeLayout(input, layout, groupTable) : undefined;
  if (c.distinctEstimate < shardCount * 4) {
    score -= 25;
    reasons.push(`only about ${c.distinctEstimate} distinct values for ${shardCount} shards: shards would be empty or uneven`);
  } else {
    score += 10 * Math.min(1, Math.log10(c.distinctEstimate) / Math.log10(shardCount * 100));
    reasons.push(`about ${c.distinctEstimate.toLocaleString('en-US')} distinct values (estimated from ${c.sampleDistinct.toLocaleString('en-US')} in the sample)`);
  }
  if (layout && placed) {
    // Nodes, not shards, must balance: an isolated tenant's shard is meant to be big.
    if (layout.isolate.length) {
      reasons.push(`heavy tenant${layout.isolate.length > 1 ? 's' : ''} ${layout.isolate.join(', ')} (${layout.isolate.map((v) => pct(c.heavyHitters.find((h) => h.value === v)?.share ?? 0)).join(', ')} of rows) get their own shard`
        + (colocateWith ? ` (isolated with CASCADE, so every table colocated with ${colocateWith} keeps matching ranges)` : ''));
    }
    if (placed.nodeMaxOverMean === undefined) {
      score += 15 / Math.max(layout.maxOverMean, 1);
      reasons.push(`placement follows ${colocateWith}'s colocation group (busiest shard ${layout.maxOverMean.toFixed(2)}x the mean shard)`);
    } else {
      score += 15 / Math.max(placed.nodeMaxOverMean, 1);
      for (const m of placed.moves.filter((x) => x.tenant !== undefined)) reasons.push(`the shard group of tenant ${m.tenant} moves from ${m.from} to ${m.to}, the node with the least predicted load`);
      const others = placed.moves.filter((x) => x.tenant === undefined).length;
      if (others) reasons.push(`${others} other shard group(s) of ${colocateWith} move off the node the tenant went to, to even the load`);
      reasons.push(`busiest node predicted at ${placed.nodeMaxOverMean.toFixed(2)}x the mean node load`
        + (colocateWith ? ` with ${colocateWith}'s placements${placed.moves.length ? ' and the moves above' : ', which the tool does not move'}` : '')
        + ` (busiest shard ${layout.maxOverMean.toFixed(2)}x the mean shard)`);
    }
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
  // Declared keys say how rows group: a column every key carries needs no key widened.
  if (input.keys.length > 0 && input.keys.every((k) => k.columns.includes(c.name)) && !c.unique) {
    score += 10;
    reasons.push('part of every declared primary/unique key: the keys group rows by it and stay as they are');
  }
  const keysMissing = input.keys.filter((k) => !k.columns.includes(c.name));
  if (keysMissing.length) reasons.push(`keys ${keysMissing.map((k) => k.constraint).join(', ')} would be widened to include it`);
  return { column: c.name, score: Math.round(score * 10) / 10, reasons, colocateWith, ...(colocateType ? { columnType: colocateType } : {}), layout, placed, groups };
}

/**
 * The growth rule: a column that colocates with an existing group and that the table's own
 * declared keys carry (a primary/unique key holding it, or a foreign key from it) makes the table
 * a member of that group however small it is today, and wins over columns that score higher.
 */
export function declaredKeyCandidate(input: PlanInput, candidates: readonly Scored[]): Scored | undefined {
  const inKey = (col: string) => input.keys.some((k) => k.columns.includes(col));
  const declaredFk = (col: string) => input.relationships.some((r) => r.column === col && r.evidence === 'declared' && r.colocatable);
  return candidates.find((c) => !c.rejected && c.colocateWith !== null && (declaredFk(c.column) || inKey(c.column)));
}

/**
 * For a table small enough to be a reference table: a column whose values (strong evidence, not
 * names alone) are the distribution column of an existing group is a tenant key, and a table
 * with a tenant key is not a dimension.
 */
export function tenantKeyCandidate(input: PlanInput, candidates: readonly Scored[]): Scored | undefined {
  return candidates.find((c) => !c.rejected && c.colocateWith !== null && input.relationships.some((r) =>
    r.column === c.column && r.references.table === c.colocateWith && r.evidence !== 'name' && !r.weak));
}

/** Tables that are the tenants of a multi-tenant schema, by their name (singular). */
const TENANT_ROOT = /^(tenant|account|organization|organisation|org|company|workspace|customer)$/;

/**
 * A small table at the root of a multi-tenant schema (tenants, accounts, organizations...) keyed by
 * its own id is not a dimension: the tables that belong to a tenant will be colocated with it, so
 * it is distributed by that id (a group of its own, or the group of a table already keyed by it).
 */
export function tenantRootCandidate(input: PlanInput, candidates: readonly Scored[]): Scored | undefined {
  const rel = input.table.replace(/^.*\./, '').replace(/"/g, '').toLowerCase().replace(/ies$/, 'y').replace(/s$/, '');
  if (!TENANT_ROOT.test(rel)) return undefined;
  return candidates.find((c) => !c.rejected && c.groups !== true && (c.column === `${rel}_id` || c.column === 'id')
    && input.columns.find((x) => x.name === c.column)?.unique === true);
}

export function planProfile(input: PlanInput, avoid: ReadonlySet<string> = new Set()): ShardingProfile {
  const reasons: string[] = [];
  const shardCountFor = (colocateWith: string | null) => {
    const group = colocateWith ? input.clusterTables.find((t) => t.name === colocateWith)?.shardCount : undefined;
    if (input.forcedShardCount) return input.forcedShardCount;
    if (group) return group;
    const bytes = plannedRows(input) * input.averageRowBytes;
    const bySize = Math.ceil(bytes / (2 * 1024 ** 3));
    const n = Math.max(input.defaultShardCount, bySize);
    const nodes = Math.max(1, input.nodes.length);
    return Math.ceil(n / nodes) * nodes;
  };
  const baseCount = shardCountFor(null);
  const scored = input.columns.map((c) => scoreColumn(input, c, baseCount, avoid));
  // Rescore colocated candidates with their group's shard count.
  const candidates: Scored[] = scored.map((s) => (s.colocateWith && shardCountFor(s.colocateWith) !== baseCount
    ? scoreColumn(input, input.columns.find((c) => c.name === s.column)!, shardCountFor(s.colocateWith), avoid) : s))
    .sort((a, b) => (a.rejected ? 1 : 0) - (b.rejected ? 1 : 0) || b.score - a.score);
  const forced = input.forcedColumn ? candidates.find((c) => c.column === input.forcedColumn) : undefined;
  const declaredKey = forced ? undefined : declaredKeyCandidate(input, candidates);
  let best = forced ?? declaredKey ?? candidates.find((c) => !c.rejected);
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
  const rows = plannedRows(input);
  const dimension = rows <= DIMENSION_ROWS || (rows <= REFERENCE_TABLE_ROWS && !grouping);
  const tenantKey = !forced && dimension && !colocates ? tenantKeyCandidate(input, candidates) ?? tenantRootCandidate(input, candidates) : undefined;
  if (tenantKey) best = tenantKey;
  if (!input.forcedColumn && !tenantKey && (!best || best.rejected || (dimension && !colocates))) {
    reasons.push(!best || best.rejected
      ? 'no column can distribute the table; a reference table keeps a full copy on every node'
      : `small table (about ${Math.round(rows).toLocaleString('en-US')} rows${input.expectedRows ? ' expected' : ''}${grouping ? '' : ', no column that groups rows'}, no key shared with a distributed table): `
        + 'a reference table keeps a full copy on every node, so any join with it stays local');
    return {
      ...common, kind: 'reference', distributionColumn: null, shardCount: null, colocateWith: null, isolate: [], splitPoints: [],
      placement: [], shards: [], keyChanges: [], reasons,
      predicted: { rows: Math.round(rows), bytes: Math.round(rows * input.averageRowBytes), maxShardLoadOverMean: 1 },
    };
  }
  const chosen = best!;
  const shardCount = shardCountFor(chosen.colocateWith);
  const group = chosen.colocateWith ? input.clusterTables.find((t) => t.name === chosen.colocateWith) : undefined;
  const layout = chosen.layout ?? layoutFor(input, input.columns.find((c) => c.name === chosen.column)!, shardCount,
    { isolate: !input.forcedShardCount, split: chosen.colocateWith === null && !input.forcedShardCount });
  const placed = chosen.placed ?? placeLayout(input, layout, group);
  const shards = placed.shards;
  const next = candidates.find((c) => c !== chosen && !c.rejected);
  reasons.push(`distribute by ${chosen.column} (score ${chosen.score}${next ? `; next ${next.column} at ${next.score}` : ''})`);
  if (chosen === declaredKey && candidates.find((c) => !c.rejected) !== chosen) {
    reasons.push(`its declared keys carry ${chosen.colocateWith}'s distribution column: the table belongs in that group, whatever its size today`);
  }
  if (chosen === tenantKey && chosen.colocateWith === null) {
    reasons.push(`the tenant table at the root of a multi-tenant schema (small today): distributed by ${chosen.column}, so the tables that belong to a tenant can be colocated with it`);
  } else if ((chosen === declaredKey || chosen === tenantKey) && dimension) {
    reasons.push(`small today (about ${Math.round(rows).toLocaleString('en-US')} rows), but it shares its key with ${chosen.colocateWith}: distributed and colocated, not a reference table`);
  }
  if (input.expectedRows) reasons.push(`planned for ${input.expectedRows.toLocaleString('en-US')} expected rows (--expected-rows)`);
  reasons.push(...chosen.reasons);
  if (chosen.colocateWith) reasons.push(`colocated with ${chosen.colocateWith}: same shard count (${shardCount}) and ranges${layout.isolate.length ? ' (tenants isolated across the group)' : ''}`);
  else reasons.push(`${shardCount} shards${layout.isolate.length || layout.splitPoints.length ? `, then ${layout.isolate.length} tenant isolation(s) and ${layout.splitPoints.length} split(s) give ${shards.length}` : ''}, placed so each node gets a similar predicted load`);
  // Colocation needs the same distribution column type as the group (int4 vs int8 will not do).
  if (chosen.columnType) columnTypes[chosen.column] = chosen.columnType;
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
      rows: Math.round(rows),
      bytes: Math.round(rows * input.averageRowBytes),
      maxShardLoadOverMean: layout.maxOverMean,
      ...(placed.nodeMaxOverMean !== undefined ? { maxNodeLoadOverMean: Math.round(placed.nodeMaxOverMean * 1000) / 1000 } : {}),
    },
    ...(input.expectedRows ? { expectedRows: input.expectedRows } : {}),
  };
}
