/**
 * The schema planner's rules without a database: graphs written by hand (keys, foreign keys,
 * sizes, samples), the layouts an expert would choose for them, and the changes that take a
 * schema from its current Citus state to the plan.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { inferForeignKeys, type CitusState, type ForeignKey, type SchemaGraph, type SchemaTable } from '../../src/plan/schema-graph.js';
import { planSchema, type SchemaPlan } from '../../src/plan/schema-planner.js';
import { schemaChanges } from '../../src/plan/schema-changes.js';

interface T {
  cols: Record<string, string>;
  pk?: string[];
  unique?: string[][];
  rows: number;
  sample?: Record<string, (string | null)[]>;
  citus?: CitusState;
}

const typeNames: Record<string, string> = { bigint: 'int8', integer: 'int4', text: 'text', numeric: 'numeric', timestamptz: 'timestamptz', date: 'date' };

function graph(tables: Record<string, T>, fks: [string, string[], string, string[]][]): SchemaGraph {
  const ts: SchemaTable[] = Object.entries(tables).map(([name, t]) => ({
    name: `app.${name}`,
    columns: Object.entries(t.cols).map(([c, type]) => ({ name: c, type, typeName: typeNames[type]! })),
    primaryKey: t.pk ?? null, uniqueKeys: t.unique ?? [], estimatedRows: t.rows, existingRows: 0,
    sample: t.sample ?? {}, sampleComplete: true, citus: t.citus ?? { kind: 'local' },
  }));
  const foreignKeys: ForeignKey[] = fks.map(([child, cols, parent, refCols], i) => ({
    name: `fk${i}_${child}_${parent}`, table: `app.${child}`, columns: cols, refTable: `app.${parent}`, refColumns: refCols, evidence: 'declared',
    definition: `FOREIGN KEY (${cols.join(', ')}) REFERENCES app.${parent}(${refCols.join(', ')})`,
  }));
  return { schema: 'app', tables: ts, foreignKeys };
}

const plan = (g: SchemaGraph) => planSchema({ graph: g, defaultShardCount: 32, nodeCount: 2 });
const layout = (p: SchemaPlan) => Object.fromEntries(p.tables.map((t) => [t.table.slice(4), t.kind === 'reference' ? 'reference' : t.distributionColumn]));
const groupOf = (p: SchemaPlan, t: string) => p.tables.find((x) => x.table === `app.${t}`)!.group;

function multiTenant(opts: { companyRows?: number; citus?: Record<string, CitusState>; clickSample?: string[] } = {}): SchemaGraph {
  return graph({
    companies: { cols: { id: 'bigint', name: 'text' }, pk: ['id'], rows: opts.companyRows ?? 8, citus: opts.citus?.companies },
    campaigns: { cols: { company_id: 'bigint', id: 'bigint', name: 'text' }, pk: ['company_id', 'id'], rows: 40, citus: opts.citus?.campaigns },
    ads: { cols: { company_id: 'bigint', id: 'bigint', campaign_id: 'bigint' }, pk: ['company_id', 'id'], rows: 200, citus: opts.citus?.ads },
    clicks: { cols: { company_id: 'bigint', id: 'bigint', ad_id: 'bigint', cost: 'numeric' }, pk: ['company_id', 'id'], rows: 100_000,
      ...(opts.clickSample ? { sample: { company_id: opts.clickSample } } : {}), citus: opts.citus?.clicks },
    impressions: { cols: { advertiser_id: 'bigint', id: 'bigint', ad_id: 'bigint' }, pk: ['advertiser_id', 'id'], rows: 300_000, citus: opts.citus?.impressions },
  }, [
    ['campaigns', ['company_id'], 'companies', ['id']],
    ['ads', ['company_id', 'campaign_id'], 'campaigns', ['company_id', 'id']],
    ['clicks', ['company_id', 'ad_id'], 'ads', ['company_id', 'id']],
    ['impressions', ['advertiser_id', 'ad_id'], 'ads', ['company_id', 'id']],
  ]);
}

describe('schema planner: colocation groups', () => {
  it('distributes the tenant table by its key and every child by the carried key (renamed too), in one group', () => {
    const p = plan(multiTenant());
    assert.deepEqual(layout(p), { companies: 'id', campaigns: 'company_id', ads: 'company_id', clicks: 'company_id', impressions: 'advertiser_id' });
    assert.equal(p.groups.length, 1);
    assert.deepEqual(new Set(p.tables.map((t) => t.group)), new Set(['app.companies']));
    assert.equal(p.groups[0]!.shardCount, 32);
    assert.deepEqual(p.tables.map((t) => t.table.slice(4)), ['companies', 'campaigns', 'ads', 'clicks', 'impressions'], 'parents before children');
    assert.ok(p.foreignKeys.every((f) => f.keep), JSON.stringify(p.foreignKeys));
    assert.match(p.tables.find((t) => t.table === 'app.impressions')!.reasons[0]!, /advertiser_id \(renamed from ads\.company_id\)/);
  });

  it('a child whose key does not include the carried column is not in the group, and its key to the group is dropped', () => {
    const g = graph({
      companies: { cols: { id: 'bigint' }, pk: ['id'], rows: 8 },
      campaigns: { cols: { company_id: 'bigint', id: 'bigint' }, pk: ['company_id', 'id'], rows: 40 },
      notes: { cols: { id: 'bigint', company_id: 'bigint' }, pk: ['id'], rows: 50_000 },
    }, [['campaigns', ['company_id'], 'companies', ['id']], ['notes', ['company_id'], 'companies', ['id']]]);
    const p = plan(g);
    assert.equal(layout(p).notes, 'id');
    assert.notEqual(groupOf(p, 'notes'), groupOf(p, 'companies'));
    const fk = p.foreignKeys.find((f) => f.table === 'app.notes')!;
    assert.equal(fk.keep, false);
    assert.match(fk.reason, /different colocation groups/);
  });

  it('a column of another type cannot carry the key (colocation needs equal types)', () => {
    const g = graph({
      companies: { cols: { id: 'bigint' }, pk: ['id'], rows: 8 },
      campaigns: { cols: { company_id: 'integer', id: 'bigint' }, pk: ['company_id', 'id'], rows: 40 },
    }, [['campaigns', ['company_id'], 'companies', ['id']]]);
    assert.equal(plan(g).groups.length, 0);
    // Too large for a reference table: both distributed by the key, but not colocated, so Citus cannot keep the key.
    const big = graph({
      companies: { cols: { id: 'bigint' }, pk: ['id'], rows: 50_000 },
      campaigns: { cols: { company_id: 'integer', id: 'bigint' }, pk: ['company_id', 'id'], rows: 400_000 },
    }, [['campaigns', ['company_id'], 'companies', ['id']]]);
    const p = plan(big);
    assert.deepEqual(layout(p), { companies: 'id', campaigns: 'company_id' });
    assert.notEqual(groupOf(p, 'campaigns'), groupOf(p, 'companies'));
    assert.deepEqual(p.foreignKeys.map((f) => f.keep), [false]);
  });

  it('orders with line items: one group by order_id; customers and products are dimensions', () => {
    const g = graph({
      customers: { cols: { customer_id: 'bigint', name: 'text' }, pk: ['customer_id'], rows: 500 },
      products: { cols: { product_id: 'integer', name: 'text' }, pk: ['product_id'], rows: 200 },
      orders: { cols: { order_id: 'bigint', customer_id: 'bigint' }, pk: ['order_id'], rows: 50_000 },
      line_items: { cols: { order_id: 'bigint', line_no: 'integer', product_id: 'integer' }, pk: ['order_id', 'line_no'], rows: 150_000 },
    }, [['orders', ['customer_id'], 'customers', ['customer_id']], ['line_items', ['order_id'], 'orders', ['order_id']],
      ['line_items', ['product_id'], 'products', ['product_id']]]);
    const p = plan(g);
    assert.deepEqual(layout(p), { customers: 'reference', products: 'reference', orders: 'order_id', line_items: 'order_id' });
    assert.equal(groupOf(p, 'line_items'), 'app.orders');
    assert.deepEqual(p.tables.slice(0, 2).map((t) => t.kind), ['reference', 'reference'], 'reference tables first');
    assert.ok(p.foreignKeys.every((f) => f.keep));
  });
});

describe('schema planner: reference tables only for true dimensions', () => {
  const star = (salesKey: boolean) => graph({
    products: { cols: { product_id: 'integer', category: 'text' }, pk: ['product_id'], rows: 300 },
    stores: { cols: { store_id: 'integer', region: 'text' }, pk: ['store_id'], rows: 20 },
    sales: { cols: { sale_id: 'bigint', product_id: 'integer', store_id: 'integer', amount: 'numeric' }, ...(salesKey ? { pk: ['sale_id'] } : {}), rows: 1_000_000,
      sample: { sale_id: ['1', '2', '3'], product_id: ['1', '1', '2'], store_id: ['1', '1', '1'] } },
  }, [['sales', ['product_id'], 'products', ['product_id']], ['sales', ['store_id'], 'stores', ['store_id']]]);

  it('a star schema: dimensions are reference tables, the fact is distributed by its key', () => {
    assert.deepEqual(layout(plan(star(true))), { products: 'reference', stores: 'reference', sales: 'sale_id' });
  });

  it('a keyless fact table referencing several dimensions carries none of their keys', () => {
    const p = plan(star(false));
    assert.equal(p.groups.length, 0);
    assert.deepEqual(layout(p), { products: 'reference', stores: 'reference', sales: 'sale_id' });
  });

  it('a referenced table that is large is distributed, not copied to every node', () => {
    const g = graph({
      users: { cols: { user_id: 'bigint' }, pk: ['user_id'], rows: 2_000_000 },
      posts: { cols: { post_id: 'bigint', user_id: 'bigint' }, pk: ['post_id'], rows: 5_000_000 },
    }, [['posts', ['user_id'], 'users', ['user_id']]]);
    assert.deepEqual(layout(plan(g)), { users: 'user_id', posts: 'post_id' });
  });

  it('an unreferenced small table is distributed, and what a reference table references becomes one too', () => {
    const g = graph({
      countries: { cols: { code: 'text' }, pk: ['code'], rows: 200 },
      regions: { cols: { region_id: 'integer', country: 'text' }, pk: ['region_id'], rows: 50 },
      stores: { cols: { store_id: 'integer', region_id: 'integer' }, pk: ['store_id'], rows: 20 },
      visits: { cols: { visit_id: 'bigint', store_id: 'integer' }, pk: ['visit_id'], rows: 900_000 },
      settings: { cols: { key: 'text' }, pk: ['key'], rows: 10 },
    }, [['visits', ['store_id'], 'stores', ['store_id']], ['stores', ['region_id'], 'regions', ['region_id']], ['regions', ['country'], 'countries', ['code']]]);
    const p = plan(g);
    // stores roots no group: visits' key does not include store_id.
    assert.deepEqual(layout(p), { countries: 'reference', regions: 'reference', stores: 'reference', visits: 'visit_id', settings: 'key' });
  });
});

describe('schema planner: heavy tenants', () => {
  it('isolates a whale across the group, and no tenant when all are alike', () => {
    const whale = [...Array(500).fill('1'), ...Array.from({ length: 500 }, (_, i) => String(2 + (i % 7)))];
    const p = plan(multiTenant({ clickSample: whale }));
    assert.deepEqual(p.groups[0]!.isolate.map((t) => t.value), ['1']);
    assert.ok(p.groups[0]!.isolate[0]!.share > 0.4);
    const even = Array.from({ length: 1000 }, (_, i) => String(1 + (i % 8)));
    assert.deepEqual(plan(multiTenant({ clickSample: even })).groups[0]!.isolate, []);
  });
});

describe('schema planner: the plan does not depend on the current layout', () => {
  it('the same schema planned in its state after one-by-one loads and before any load gives one plan', () => {
    const bad: Record<string, CitusState> = {
      companies: { kind: 'reference' }, campaigns: { kind: 'citus-local', autoConverted: true }, ads: { kind: 'citus-local', autoConverted: true },
      clicks: { kind: 'citus-local', autoConverted: true }, impressions: { kind: 'hash', column: 'id', colocationId: 9, shardCount: 4 },
    };
    assert.deepEqual(plan(multiTenant({ citus: bad })), plan(multiTenant()));
  });
});

describe('schema changes', () => {
  const good = (colocationId: number, column: string): CitusState => ({ kind: 'hash', column, colocationId, shardCount: 32 });

  it('from the one-by-one state: drop the keys, undistribute, distribute parents first, re-create the keys', () => {
    const g = multiTenant({ citus: {
      companies: { kind: 'reference' }, campaigns: { kind: 'citus-local', autoConverted: true }, ads: { kind: 'citus-local', autoConverted: true },
      clicks: { kind: 'citus-local', autoConverted: true },
    } });
    const steps = schemaChanges(g, plan(g));
    const kinds = steps.map((s) => s.kind);
    assert.deepEqual([...new Set(kinds)], ['drop-foreign-key', 'undistribute', 'distribute', 'add-foreign-key']);
    assert.equal(kinds.filter((k) => k === 'drop-foreign-key').length, 4);
    assert.deepEqual(steps.filter((s) => s.kind === 'undistribute').map((s) => s.table), ['app.companies', 'app.campaigns', 'app.ads', 'app.clicks']);
    const dist = steps.filter((s) => s.kind === 'distribute');
    assert.deepEqual(dist.map((s) => s.params), [
      ['app.companies', 'id', 32], ['app.campaigns', 'company_id', 'app.companies'], ['app.ads', 'company_id', 'app.companies'],
      ['app.clicks', 'company_id', 'app.companies'], ['app.impressions', 'advertiser_id', 'app.companies'],
    ]);
    assert.ok(steps.filter((s) => s.kind === 'drop-foreign-key').every((s) => s.recreate));
  });

  it('tables colocated on their own are distributed after the table they colocate with, whatever their names and keys', () => {
    // posts (alphabetically first) leads the lone tables keyed by id bigint; users is its parent by foreign key.
    const g = graph({
      posts: { cols: { id: 'bigint', user_id: 'bigint' }, pk: ['id'], rows: 200_000 },
      users: { cols: { id: 'bigint', name: 'text' }, pk: ['id'], rows: 50_000 },
    }, [['posts', ['user_id'], 'users', ['id']]]);
    const p = plan(g);
    const lead = p.tables.find((t) => t.table === 'app.users')!.group!;
    const first = p.tables.findIndex((t) => t.table === lead);
    assert.ok(p.tables.every((t, i) => t.group !== lead || t.table === lead || i > first), `the plan lists ${lead} before its members`);
    const dist = schemaChanges(g, p).filter((s) => s.kind === 'distribute');
    const distributed = new Set<string>();
    for (const s of dist) {
      const colocateWith = s.params[2];
      if (typeof colocateWith === 'string') assert.ok(distributed.has(colocateWith), `${s.table} colocates with ${colocateWith} before it is distributed`);
      distributed.add(s.table);
    }
    assert.equal(dist.length, 2);
  });

  it('a cluster that matches the plan needs no step; a key dropped by a failed run is re-created', () => {
    const state = { companies: good(5, 'id'), campaigns: good(5, 'company_id'), ads: good(5, 'company_id'), clicks: good(5, 'company_id'), impressions: good(5, 'advertiser_id') };
    const g = multiTenant({ citus: state });
    assert.deepEqual(schemaChanges(g, plan(g)), []);
    const pending = { ...g, foreignKeys: g.foreignKeys.map((f, i) => (i === 2 ? { ...f, pending: true } : f)) };
    const steps = schemaChanges(pending, plan(pending));
    assert.deepEqual(steps.map((s) => [s.kind, s.table]), [['add-foreign-key', 'app.clicks']]);
  });

  it('a member in another colocation group is moved, and so is the whole group when its root changes', () => {
    const g = multiTenant({ citus: { companies: good(5, 'id'), campaigns: good(5, 'company_id'), ads: good(6, 'company_id'), clicks: good(5, 'company_id'), impressions: good(5, 'advertiser_id') } });
    assert.deepEqual(schemaChanges(g, plan(g)).filter((s) => s.kind === 'distribute').map((s) => s.table), ['app.ads']);
    const h = multiTenant({ citus: { companies: { kind: 'reference' }, campaigns: good(5, 'company_id'), ads: good(5, 'company_id'), clicks: good(5, 'company_id'), impressions: good(5, 'advertiser_id') } });
    assert.equal(schemaChanges(h, plan(h)).filter((s) => s.kind === 'distribute').length, 5);
  });
});

describe('sampled containment', () => {
  const base = (parentRows: number, complete: boolean, values: string[]): SchemaTable[] => [
    { name: 'app.accounts', columns: [{ name: 'id', type: 'bigint', typeName: 'int8' }], primaryKey: ['id'], uniqueKeys: [], estimatedRows: parentRows,
      existingRows: 0, sample: { id: Array.from({ length: parentRows }, (_, i) => String(i + 1)) }, sampleComplete: complete, citus: { kind: 'local' } },
    { name: 'app.events', columns: [{ name: 'account_id', type: 'bigint', typeName: 'int8' }, { name: 'n', type: 'bigint', typeName: 'int8' }],
      primaryKey: null, uniqueKeys: [], estimatedRows: 1000, existingRows: 0, sample: { account_id: values, n: values.map(() => '3') }, sampleComplete: false, citus: { kind: 'local' } },
  ];

  it('finds an undeclared reference when every sampled value is among a complete key', () => {
    const found = inferForeignKeys(base(100, true, ['1', '50', '99', '7']), []);
    assert.deepEqual(found.map((f) => [f.table, f.columns, f.refTable, f.refColumns]), [['app.events', ['account_id'], 'app.accounts', ['id']]]);
  });

  it('not when the key was only partly sampled, values are missing, or they sit in a corner of the key range', () => {
    assert.deepEqual(inferForeignKeys(base(100, false, ['1', '50', '99']), []), []);
    assert.deepEqual(inferForeignKeys(base(100, true, ['1', '50', '999']), []), []);
    assert.deepEqual(inferForeignKeys(base(100, true, ['1', '2', '3']), []), []);
  });
});
