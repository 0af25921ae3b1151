/**
 * The layout of a whole application schema, as an expert (and Citus's multi-tenant tutorial)
 * would write it, from the schema's graph alone:
 *
 * 1. Colocation groups. A table with a one-column primary key roots a group when other tables
 *    carry its key down foreign keys: a child carries the key when the foreign key maps one of
 *    the child's columns (renamed or not) onto the parent's carried column, and that column is
 *    in the child's primary key and every unique key (Citus needs that) with the same type.
 *    Groups are taken largest first; every member is distributed by its carried column and
 *    colocated with the root, however small it is (the tenant table is small by nature).
 * 2. Reference tables only for true dimensions: referenced by another table, in no group (no
 *    tenant key), and small.
 * 3. Every other table is distributed on its own: by its leading key column, colocated with
 *    other such tables whose column has the same name and type.
 * 4. Shard counts per group, and the group's heavy tenants: a tenant holding many times the
 *    typical tenant's rows, and more than a fair shard's share, gets a shard of its own across
 *    the whole group (isolate_tenant_to_new_shard ... CASCADE).
 * 5. Which foreign keys Citus keeps in that layout, and which it cannot.
 *
 * Pure: it reads the graph's keys, sizes and samples, never the tables' current Citus state, so
 * the plan does not depend on the order in which anything was loaded before.
 */
import { DIMENSION_ROWS } from './planner.js';
import type { ForeignKey, SchemaGraph, SchemaTable } from './schema-graph.js';

/** Column types whose values the loader can hash as Citus does (a distribution column must be one). */
const DISTRIBUTABLE_TYPES = new Set(['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar']);
/**
 * A tenant is heavy when it holds this many times the median tenant's share of the group's rows
 * and this many times a fair shard's share: on a hash shard of its own it no longer drags the
 * tenants that happen to share its shard.
 */
const HEAVY_TENANT_FACTOR = 2;
/** At most this many tenants are isolated per group (each isolation adds shards to every table of the group). */
const MAX_ISOLATED_TENANTS = 8;
/** A group holding more rows than this per shard gets more shards (a multiple of the node count). */
const ROWS_PER_SHARD = 5_000_000;

export interface TablePlan {
  readonly table: string;
  readonly kind: 'distributed' | 'reference';
  readonly distributionColumn: string | null;
  /** The group's root (the table that leads its colocation group), or null for reference tables. */
  readonly group: string | null;
  readonly shardCount: number | null;
  readonly estimatedRows: number;
  readonly reasons: string[];
}

export interface GroupPlan {
  /** The table leading the group: created first, the others colocate with it. */
  readonly root: string;
  readonly column: string;
  readonly columnType: string;
  readonly tables: string[];
  readonly shardCount: number;
  readonly estimatedRows: number;
  readonly isolate: { value: string; share: number }[];
  readonly reasons: string[];
}

export interface ForeignKeyPlan {
  readonly name: string;
  readonly table: string;
  readonly refTable: string;
  readonly columns: string[];
  readonly refColumns: string[];
  /** Whether Citus can keep it in the planned layout. */
  readonly keep: boolean;
  readonly reason: string;
  readonly definition?: string;
  /** Dropped by an earlier run and not re-created yet. */
  readonly pending?: boolean;
}

export interface SchemaPlan {
  readonly version: 1;
  readonly schema: string;
  /** Every table, in the order it is laid out: reference tables and parents before children. */
  readonly tables: TablePlan[];
  readonly groups: GroupPlan[];
  /** Declared foreign keys only (inferred ones are evidence, not constraints). */
  readonly foreignKeys: ForeignKeyPlan[];
  /** Foreign keys found by sampled containment (they guided grouping, nothing enforces them). */
  readonly inferredKeys: { table: string; columns: string[]; refTable: string; refColumns: string[]; containment: number }[];
}

export interface SchemaPlanInput {
  readonly graph: SchemaGraph;
  readonly defaultShardCount: number;
  readonly nodeCount: number;
}

interface Member {
  readonly table: SchemaTable;
  readonly column: string;
  readonly via: ForeignKey | null;
  /** The referenced table's carried column the foreign key maps `column` onto. */
  readonly parentColumn?: string;
}

const typeOf = (t: SchemaTable, column: string) => t.columns.find((c) => c.name === column)?.typeName;
const short = (name: string) => name.slice(name.lastIndexOf('.') + 1);

/** Whether `column` may distribute `t`: a hashable type, in its primary key and every unique key. */
function canDistributeBy(t: SchemaTable, column: string): boolean {
  return DISTRIBUTABLE_TYPES.has(typeOf(t, column) ?? '') && [t.primaryKey ?? [], ...t.uniqueKeys].every((k) => k.length === 0 || k.includes(column));
}

/** The child's column that a foreign key maps onto the parent's `parentColumn`, when it can carry it. */
function carriedColumn(graph: SchemaGraph, fk: ForeignKey, parent: SchemaTable, parentColumn: string, child: SchemaTable): string | undefined {
  const i = fk.refColumns.indexOf(parentColumn);
  if (i < 0) return undefined;
  const c = fk.columns[i]!;
  if (typeOf(child, c) !== typeOf(parent, parentColumn)) return undefined;
  if (!canDistributeBy(child, c)) return undefined;
  if (child.primaryKey !== null || child.uniqueKeys.length > 0) return c;
  // A keyless table (an event log) carries the key only when nothing else competes for it: a
  // composite foreign key (the tenant-key pattern) or its only foreign key. A keyless fact table
  // pointing at several dimensions carries none of them.
  return fk.columns.length > 1 || outgoing(graph, child) === 1 ? c : undefined;
}

const outgoing = (graph: SchemaGraph, t: SchemaTable) => graph.foreignKeys.filter((f) => f.table === t.name && f.refTable !== t.name).length;

/** The tables that carry `root`'s key down the foreign keys, breadth first, skipping `taken`. */
function family(graph: SchemaGraph, root: SchemaTable, taken: ReadonlySet<string>): Member[] {
  const byName = new Map(graph.tables.map((t) => [t.name, t]));
  const members: Member[] = [{ table: root, column: root.primaryKey![0]!, via: null }];
  const inGroup = new Map([[root.name, members[0]!]]);
  for (let i = 0; i < members.length; i++) {
    const parent = members[i]!;
    for (const fk of graph.foreignKeys) {
      if (fk.refTable !== parent.table.name || inGroup.has(fk.table) || taken.has(fk.table)) continue;
      const child = byName.get(fk.table);
      if (!child) continue;
      const column = carriedColumn(graph, fk, parent.table, parent.column, child);
      if (!column) continue;
      const m = { table: child, column, via: fk, parentColumn: parent.column };
      members.push(m);
      inGroup.set(child.name, m);
    }
  }
  return members;
}

function shardCountFor(rows: number, input: SchemaPlanInput): number {
  const needed = Math.ceil(rows / ROWS_PER_SHARD);
  if (needed <= input.defaultShardCount) return input.defaultShardCount;
  const nodes = Math.max(1, input.nodeCount);
  return Math.ceil(needed / nodes) * nodes;
}

/** Each sampled tenant's share of the group's rows: per table, its share of the sample times the table's rows. */
function tenantShares(members: readonly Member[]): Map<string, number> {
  const weighted = new Map<string, number>();
  let total = 0;
  for (const m of members) {
    const values = (m.table.sample[m.column] ?? []).filter((v): v is string => v !== null);
    if (values.length === 0 || m.table.estimatedRows <= 0) continue;
    total += m.table.estimatedRows;
    const per = m.table.estimatedRows / values.length;
    for (const v of values) weighted.set(v.trim(), (weighted.get(v.trim()) ?? 0) + per);
  }
  return new Map([...weighted].map(([v, w]) => [v, total > 0 ? w / total : 0]));
}

function heavyTenants(members: readonly Member[], shardCount: number): { value: string; share: number }[] {
  const shares = tenantShares(members);
  if (shares.size < 2) return [];
  const sorted = [...shares.values()].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const bar = Math.max(HEAVY_TENANT_FACTOR * median, HEAVY_TENANT_FACTOR / shardCount);
  return [...shares].filter(([, s]) => s >= bar).sort((a, b) => b[1] - a[1]).slice(0, MAX_ISOLATED_TENANTS)
    .map(([value, share]) => ({ value, share }));
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function planSchema(input: SchemaPlanInput): SchemaPlan {
  const { graph } = input;
  const byName = new Map(graph.tables.map((t) => [t.name, t]));
  const referenced = (t: SchemaTable) => graph.foreignKeys.some((f) => f.refTable === t.name && f.table !== t.name);

  // 1. Colocation groups, largest family first (ties: more rows, then name, so the plan is stable).
  const taken = new Set<string>();
  const groups: { root: SchemaTable; members: Member[] }[] = [];
  const roots = graph.tables.filter((t) => t.primaryKey?.length === 1 && DISTRIBUTABLE_TYPES.has(typeOf(t, t.primaryKey[0]!) ?? ''));
  const rowsOf = (ms: Member[]) => ms.reduce((s, m) => s + m.table.estimatedRows, 0);
  for (;;) {
    const best = roots.filter((r) => !taken.has(r.name)).map((r) => ({ root: r, members: family(graph, r, taken) }))
      .filter((g) => g.members.length >= 2)
      .sort((a, b) => b.members.length - a.members.length || rowsOf(b.members) - rowsOf(a.members) || a.root.name.localeCompare(b.root.name))[0];
    if (!best) break;
    groups.push(best);
    for (const m of best.members) taken.add(m.table.name);
  }

  // 2. Reference tables: small referenced tables outside every group (what a reference table
  // references is referenced, so it is one too, unless it is in a group: that key is dropped).
  const reference = new Set<string>();
  const referenceWhy = new Map<string, string>();
  for (const t of graph.tables) {
    if (!taken.has(t.name) && referenced(t) && t.estimatedRows <= DIMENSION_ROWS) {
      reference.add(t.name);
      const by = [...new Set(graph.foreignKeys.filter((f) => f.refTable === t.name && f.table !== t.name).map((f) => short(f.table)))];
      referenceWhy.set(t.name, `a dimension: referenced by ${by.join(', ')}, carries no group's key, about ${Math.round(t.estimatedRows)} rows `
        + `(at most ${DIMENSION_ROWS}): copied to every node so joins to it stay local`);
    }
  }

  const plans = new Map<string, TablePlan>();
  const groupPlans: GroupPlan[] = [];
  for (const g of groups) {
    const rows = rowsOf(g.members);
    const shardCount = shardCountFor(rows, input);
    const isolate = heavyTenants(g.members, shardCount);
    const column = g.members[0]!.column;
    const reasons = [
      `${short(g.root.name)}.${column} is the tenant key: ${g.members.length - 1} table(s) carry it down their foreign keys `
        + 'inside their primary keys, so every tenant-scoped query and join by it stays on one node',
      shardCount === input.defaultShardCount ? `${shardCount} shards (citus.shard_count) for about ${Math.round(rows)} rows`
        : `${shardCount} shards: about ${Math.round(rows)} rows, at most ${ROWS_PER_SHARD} per shard, a multiple of ${input.nodeCount} node(s)`,
      ...isolate.map((t) => `tenant ${t.value} holds ${pct(t.share)} of the group's rows (more than ${HEAVY_TENANT_FACTOR}x the typical tenant `
        + `and a fair shard's ${pct(1 / shardCount)}): a shard of its own in every table of the group`),
    ];
    groupPlans.push({
      root: g.root.name, column, columnType: g.root.columns.find((c) => c.name === column)!.type,
      tables: g.members.map((m) => m.table.name), shardCount, estimatedRows: rows, isolate, reasons,
    });
    for (const m of g.members) {
      plans.set(m.table.name, {
        table: m.table.name, kind: 'distributed', distributionColumn: m.column, group: g.root.name, shardCount, estimatedRows: m.table.estimatedRows,
        reasons: m.via === null
          ? [`the group's root: distributed by its key ${m.column}${m.table.estimatedRows <= DIMENSION_ROWS ? ', although small, because the other tables carry its key' : ''}`]
          : [`carries ${short(g.root.name)}.${g.members[0]!.column} as ${m.column}${m.via.refTable !== g.root.name && m.column !== m.parentColumn
            ? ` (renamed from ${short(m.via.refTable)}.${m.parentColumn})` : ''} through `
            + `${m.via.evidence === 'declared' ? 'foreign key' : 'sampled containment'} ${m.via.name} to ${short(m.via.refTable)}: colocated with ${short(g.root.name)}`],
      });
    }
  }
  for (const name of reference) {
    const t = byName.get(name)!;
    plans.set(name, { table: name, kind: 'reference', distributionColumn: null, group: null, shardCount: null, estimatedRows: t.estimatedRows, reasons: [referenceWhy.get(name)!] });
  }

  // 3. The rest: distributed on their own, colocated by a shared column name and type.
  const solo = new Map<string, GroupPlan & { tables: string[] }>();
  for (const t of graph.tables) {
    if (plans.has(t.name)) continue;
    const column = soloColumn(t);
    if (!column) {
      plans.set(t.name, { table: t.name, kind: 'reference', distributionColumn: null, group: null, shardCount: null, estimatedRows: t.estimatedRows,
        reasons: ['no column can distribute it (none is of a hashable type and in every unique key): a reference table'] });
      continue;
    }
    const type = t.columns.find((c) => c.name === column)!.type;
    const key = `${column}\u0000${type}`;
    const g = solo.get(key);
    const shardCount = g ? g.shardCount : shardCountFor(t.estimatedRows, input);
    if (g) g.tables.push(t.name);
    else solo.set(key, { root: t.name, column, columnType: type, tables: [t.name], shardCount, estimatedRows: t.estimatedRows, isolate: [], reasons: [] });
    plans.set(t.name, {
      table: t.name, kind: 'distributed', distributionColumn: column, group: g ? g.root : t.name, shardCount, estimatedRows: t.estimatedRows,
      reasons: [
        `in no tenant group${referenced(t) ? ` and too large for a reference table (about ${Math.round(t.estimatedRows)} rows)` : ''}: distributed by `
          + `${t.primaryKey?.includes(column) ? 'its leading key column' : 'its most varied column'} ${column}`,
        ...(g ? [`colocated with ${short(g.root)}, distributed by a ${type} column of the same name`] : []),
      ],
    });
  }
  for (const g of solo.values()) {
    if (g.tables.length > 1) groupPlans.push({ ...g, reasons: [`tables outside every tenant group sharing the column ${g.column} (${g.columnType})`] });
  }

  const foreignKeys = graph.foreignKeys.filter((f) => f.evidence === 'declared').map((f) => foreignKeyPlan(f, plans));
  const order = dependencyOrder(graph, plans);
  return {
    version: 1, schema: graph.schema, tables: order.map((n) => plans.get(n)!), groups: groupPlans, foreignKeys,
    inferredKeys: graph.foreignKeys.filter((f) => f.evidence === 'values')
      .map((f) => ({ table: f.table, columns: f.columns, refTable: f.refTable, refColumns: f.refColumns, containment: f.containment ?? 1 })),
  };
}

/** A lone table's distribution column: its leading distributable key column, else its most varied column. */
function soloColumn(t: SchemaTable): string | undefined {
  const keyed = (t.primaryKey ?? t.uniqueKeys[0] ?? []).find((c) => canDistributeBy(t, c));
  if (keyed) return keyed;
  if (t.primaryKey || t.uniqueKeys.length) return undefined;
  const distinct = (c: string) => new Set(t.sample[c] ?? []).size;
  return t.columns.filter((c) => DISTRIBUTABLE_TYPES.has(c.typeName)).sort((a, b) => distinct(b.name) - distinct(a.name))[0]?.name;
}

function foreignKeyPlan(f: ForeignKey, plans: ReadonlyMap<string, TablePlan>): ForeignKeyPlan {
  const child = plans.get(f.table)!;
  const parent = plans.get(f.refTable)!;
  const base = { name: f.name, table: f.table, refTable: f.refTable, columns: f.columns, refColumns: f.refColumns, ...(f.definition ? { definition: f.definition } : {}), ...(f.pending ? { pending: true } : {}) };
  if (parent.kind === 'reference') {
    return { ...base, keep: true, reason: child.kind === 'reference' ? 'between reference tables' : 'to a reference table, which every node holds' };
  }
  if (child.kind === 'reference') {
    return { ...base, keep: false, reason: `Citus does not allow a reference table to reference distributed ${short(f.refTable)}` };
  }
  const i = f.refColumns.indexOf(parent.distributionColumn!);
  if (child.group === parent.group && i >= 0 && f.columns[i] === child.distributionColumn) {
    return { ...base, keep: true, reason: 'between colocated tables, on the distribution column' };
  }
  return { ...base, keep: false, reason: child.group === parent.group
    ? 'does not include the distribution column, which Citus requires of a key between distributed tables'
    : `${short(f.table)} and ${short(f.refTable)} are in different colocation groups, so Citus cannot check it` };
}

/**
 * Reference tables first, then each group root first, then the rest; within each, parents
 * before children (Kahn's order over the foreign keys, ties by name; a cycle is broken by name).
 */
function dependencyOrder(graph: SchemaGraph, plans: ReadonlyMap<string, TablePlan>): string[] {
  const rank = (p: TablePlan) => (p.kind === 'reference' ? 0 : 1);
  // A member depends on its group's root too: Citus colocates only with a table already distributed.
  const parents = new Map(graph.tables.map((t) => {
    const group = plans.get(t.name)?.group;
    return [t.name, new Set([...graph.foreignKeys
      .filter((f) => f.table === t.name && f.refTable !== t.name && plans.has(f.refTable)).map((f) => f.refTable),
    ...(group && group !== t.name ? [group] : [])])];
  }));
  const done = new Set<string>();
  const order: string[] = [];
  const pending = () => [...plans.values()].filter((p) => !done.has(p.table))
    .sort((a, b) => rank(a) - rank(b) || a.table.localeCompare(b.table));
  while (done.size < plans.size) {
    const left = pending();
    const ready = left.find((p) => [...parents.get(p.table) ?? []].every((x) => done.has(x) || rank(plans.get(x)!) > rank(p)) && rank(p) === rank(left[0]!))
      ?? left[0]!;
    done.add(ready.table);
    order.push(ready.table);
  }
  return order;
}
