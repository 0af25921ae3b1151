/**
 * The statements that take a schema from its current Citus state to its plan, in the order
 * Citus requires (pure; the plan shows them, the schema loader runs them):
 *
 * 1. drop every foreign key that touches a table about to change, or that Citus cannot keep in
 *    the planned layout (Citus refuses to convert a table while foreign keys tie it to tables of
 *    another kind, and undistribute_table refuses one with foreign keys);
 * 2. turn every table whose layout differs back into a plain table (undistribute_table): a
 *    Citus-managed local table made by the auto-conversion, a reference table that should be
 *    distributed, a table distributed by another column or in another colocation group;
 * 3. create the reference tables, then each group's root, then its members colocated with it;
 * 4. isolate each group's heavy tenants, across the group (CASCADE);
 * 5. re-create the foreign keys Citus keeps, from the server's own definitions.
 *
 * A table that already matches its plan is left alone, so a second run after success has no step.
 */
import { quoteIdent } from '../connect/sql.js';
import type { CitusState, SchemaGraph } from './schema-graph.js';
import type { SchemaPlan, TablePlan } from './schema-planner.js';

export type SchemaStepKind = 'drop-foreign-key' | 'undistribute' | 'create-reference' | 'distribute' | 'isolate-tenant' | 'add-foreign-key';

export interface SchemaStep {
  readonly kind: SchemaStepKind;
  readonly table: string;
  /** The statement, with $n parameters (identifiers are quoted in it). */
  readonly sql: string;
  readonly params: (string | number)[];
  readonly why: string;
  /** For foreign key steps: the key. */
  readonly foreignKey?: { name: string; definition: string };
  /** For isolation: the tenant value. */
  readonly tenant?: string;
  /** For a dropped foreign key: whether a later step re-creates it (so it is recorded as pending first). */
  readonly recreate?: boolean;
}

/** Whether a table's current state is what its plan says (colocation checked against the group root's state). */
export function matchesPlan(state: CitusState, plan: TablePlan, rootState: CitusState | undefined): boolean {
  if (plan.kind === 'reference') return state.kind === 'reference';
  if (state.kind !== 'hash' || state.column !== plan.distributionColumn || state.shardCount < plan.shardCount!) return false;
  if (plan.group === null || plan.group === plan.table) return true;
  return rootState?.kind === 'hash' && rootState.colocationId === state.colocationId;
}

/** A statement as a person reads it: parameters inlined as SQL literals (display only, never run). */
export function displaySql(step: Pick<SchemaStep, 'sql' | 'params'>): string {
  return step.sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = step.params[Number(n) - 1];
    return typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
  });
}

/** `isolated` holds `root\0value` for heavy tenants that already have a shard of their own. */
export function schemaChanges(graph: SchemaGraph, plan: SchemaPlan, isolated: ReadonlySet<string> = new Set()): SchemaStep[] {
  const state = new Map(graph.tables.map((t) => [t.name, t.citus]));
  const changing = new Set<string>();
  for (const p of plan.tables) {
    const root = p.group && p.group !== p.table ? p.group : undefined;
    if (!matchesPlan(state.get(p.table)!, p, root ? state.get(root) : undefined)) changing.add(p.table);
  }
  // A changing root takes its whole group with it: the members must colocate with its new shards.
  for (const p of plan.tables) if (p.group && p.group !== p.table && changing.has(p.group) && p.kind === 'distributed') changing.add(p.table);

  const steps: SchemaStep[] = [];
  const dropped = plan.foreignKeys.filter((f) => !f.pending && (changing.has(f.table) || changing.has(f.refTable) || !f.keep));
  for (const f of dropped) {
    steps.push({
      kind: 'drop-foreign-key', table: f.table, sql: `ALTER TABLE ${f.table} DROP CONSTRAINT ${quoteIdent(f.name)}`, params: [],
      why: f.keep ? `re-created below: Citus cannot convert ${changing.has(f.table) ? f.table : f.refTable} while it holds`
        : `not re-created: ${f.reason}`,
      foreignKey: { name: f.name, definition: f.definition ?? '' }, recreate: f.keep && f.definition !== undefined,
    });
  }
  for (const p of plan.tables) {
    const s = state.get(p.table)!;
    if (!changing.has(p.table) || s.kind === 'local') continue;
    steps.push({
      kind: 'undistribute', table: p.table, sql: 'SELECT undistribute_table($1)', params: [p.table],
      why: `${describeState(s)} today; the plan makes it ${p.kind === 'reference' ? 'a reference table' : `distributed by ${p.distributionColumn}`}`,
    });
  }
  // Reference tables, then group roots, then members: a member's colocate_with must name a table
  // Citus has distributed already (foreign keys do not order these: they are dropped above).
  const layoutRank = (p: TablePlan) => (p.kind === 'reference' ? 0 : p.group === p.table || p.group === null ? 1 : 2);
  for (const p of [...plan.tables].sort((a, b) => layoutRank(a) - layoutRank(b))) {
    if (!changing.has(p.table)) continue;
    if (p.kind === 'reference') {
      steps.push({ kind: 'create-reference', table: p.table, sql: 'SELECT create_reference_table($1)', params: [p.table], why: p.reasons[0] ?? '' });
    } else if (p.group === p.table || p.group === null) {
      steps.push({
        kind: 'distribute', table: p.table, sql: "SELECT create_distributed_table($1, $2, shard_count => $3, colocate_with => 'none')",
        params: [p.table, p.distributionColumn!, p.shardCount!], why: p.reasons[0] ?? '',
      });
    } else {
      steps.push({
        kind: 'distribute', table: p.table, sql: 'SELECT create_distributed_table($1, $2, colocate_with => $3)',
        params: [p.table, p.distributionColumn!, p.group], why: p.reasons[0] ?? '',
      });
    }
  }
  for (const g of plan.groups) {
    for (const t of g.isolate) {
      if (!changing.has(g.root) && isolated.has(`${g.root}\u0000${t.value}`)) continue;
      steps.push({
        kind: 'isolate-tenant', table: g.root, tenant: t.value,
        sql: "SELECT isolate_tenant_to_new_shard($1, $2::text, 'CASCADE', shard_transfer_mode => 'block_writes')",
        params: [g.root, t.value], why: `heavy tenant (${(t.share * 100).toFixed(1)}% of the group's rows), across ${g.tables.length} table(s)`,
      });
    }
  }
  for (const f of [...dropped, ...plan.foreignKeys.filter((k) => k.pending)]) {
    if (!f.keep || !f.definition) continue;
    steps.push({
      kind: 'add-foreign-key', table: f.table, sql: `ALTER TABLE ${f.table} ADD CONSTRAINT ${quoteIdent(f.name)} ${f.definition}`, params: [],
      why: f.reason, foreignKey: { name: f.name, definition: f.definition },
    });
  }
  return steps;
}

function describeState(s: CitusState): string {
  switch (s.kind) {
    case 'citus-local': return s.autoConverted ? 'a Citus-managed local table (converted by Citus for its foreign key to a reference table)' : 'a Citus local table';
    case 'reference': return 'a reference table';
    case 'hash': return `distributed by ${s.column} (${s.shardCount} shards, colocation group ${s.colocationId})`;
    case 'other': return 'distributed by a method other than hash';
    default: return 'a local table';
  }
}
