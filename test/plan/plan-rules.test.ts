/**
 * The planner's rules for colocation groups, without a database: isolation inside an existing
 * group (and the placement the tool can really deliver), tables that will grow (declared keys and
 * --expected-rows over today's size), and only proposals Citus accepts (types, weak evidence,
 * refused pairings). Samples are generated here and described as the analysis does.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeColumn } from '../../src/plan/column-stats.js';
import { planProfile, uniformRanges, type PlanInput } from '../../src/plan/planner.js';
import type { AccessPatterns } from '../../src/plan/query-history.js';
import type { ClusterTable, GroupShard, Relationship } from '../../src/plan/relationships.js';
import { colocationTypeRule, namesAgree, ownSerialKey, valuesFitType, weakContainment } from '../../src/plan/colocation-rules.js';
import { busiestOverMean } from '../../src/plan/group-layout.js';

type Row = Record<string, string | null>;

const NO_HISTORY: AccessPatterns = {
  table: 't', statements: 0, calls: 0, columns: {}, workload: { pointLookups: 0, ranges: 0, joins: 0, aggregations: 0 }, source: 'none',
};
const W1 = 'w1:5432';
const W2 = 'w2:5432';

function inputOf(table: string, rows: Row[], estimatedRows: number, pgTypes: PlanInput['pgTypes'], over: Partial<PlanInput> = {}): PlanInput {
  const names = Object.keys(rows[0]!);
  const positions = rows.map((_, i) => i / rows.length);
  return {
    table, columns: names.map((name) => describeColumn({ name, values: rows.map((r) => r[name]!), positions }, estimatedRows)),
    pgTypes, sampleValues: Object.fromEntries(names.map((n) => [n, rows.map((r) => r[n]!)])),
    estimatedRows, averageRowBytes: 60, relationships: [], clusterTables: [], access: NO_HISTORY,
    nodes: [W1, W2], keys: [], keepKeys: false, defaultShardCount: 32,
    sample: { rows: rows.length, seconds: 0, method: 'test', estimatedRows }, ...over,
  };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

/** A distributed tenants table as the catalog shows it: 32 uniform shards alternating over two nodes. */
function tenantsGroup(type = 'bigint', shards: GroupShard[] = uniformRanges(32).map((r, i) => ({ shardId: String(102000 + i), ...r, node: i % 2 ? W2 : W1 }))): ClusterTable {
  return {
    name: 'public.tenants', kind: 'hash', distributionColumn: 'tenant_id', colocationId: 5, shardCount: shards.length, estimatedRows: 5000,
    keyColumns: [{ column: 'tenant_id', type }], columnTypes: { tenant_id: type, name: 'text' }, indexedColumns: ['tenant_id'], shards,
  };
}

const toTenants = (over: Partial<Relationship> = {}): Relationship => ({
  column: 'tenant_id', references: { table: 'public.tenants', column: 'tenant_id' }, evidence: 'values', containment: 1,
  colocatable: true, referencedKind: 'hash', referencedRows: 5000, ...over,
});

function events(n: number, whaleShare: number, tenants = 5000): Row[] {
  const rand = lcg(11);
  return Array.from({ length: n }, (_, i) => ({
    event_id: String(1_000_000 + i),
    tenant_id: rand() < whaleShare ? '7' : String(1 + Math.floor(rand() * tenants)),
    amount: (rand() * 100).toFixed(2),
  }));
}
const EVENT_TYPES = { event_id: { typeName: 'int8' }, tenant_id: { typeName: 'int8' }, amount: { typeName: 'numeric' } };

describe('isolation inside a colocation group', () => {
  it('colocates, isolates the whale with the group, moves its shard group off the busiest node and quotes the real prediction', () => {
    const input = inputOf('events', events(20_000, 0.3), 400_000, EVENT_TYPES, { relationships: [toTenants()], clusterTables: [tenantsGroup()] });
    const p = planProfile(input);
    assert.equal(p.colocateWith, 'public.tenants', p.reasons.join(' | '));
    assert.deepEqual(p.isolate, ['7']);
    const whale = p.shards.find((s) => s.tenant === '7')!;
    assert.equal(whale.hashMin, whale.hashMax);
    // Citus leaves the isolated shard on the node of the shard it came from; the plan moves it.
    const source = tenantsGroup().shards!.find((g) => g.min <= whale.hashMin && whale.hashMax <= g.max)!.node;
    assert.notEqual(whale.node, source, 'the whale leaves the node it would make busiest');
    assert.ok(p.reasons.some((r) => /isolated with CASCADE/.test(r)), p.reasons.join(' | '));
    assert.ok(p.reasons.some((r) => new RegExp(`tenant 7 moves from ${source} to ${whale.node}`).test(r)), p.reasons.join(' | '));
    // Every shard has a node, and the quoted figure is the one of these placements.
    assert.ok(p.shards.every((s) => s.node !== null));
    const real = busiestOverMean(p.shards, [W1, W2]);
    assert.ok(p.reasons.some((r) => r.includes(`busiest node predicted at ${real.toFixed(2)}x`)), p.reasons.join(' | '));
    assert.equal(p.predicted.maxNodeLoadOverMean, Math.round(real * 1000) / 1000);
    // Ranges not touched by the isolation are the group's own, on the group's nodes or moved.
    const groupRanges = new Set(tenantsGroup().shards!.map((g) => `${g.min}:${g.max}`));
    assert.equal(p.shards.filter((s) => groupRanges.has(`${s.hashMin}:${s.hashMax}`)).length, 31);
  });

  it('with no moves allowed by the group (no whale), the prediction is the group placement, not a fresh balance', () => {
    // A group whose placements are lopsided: 24 shards on w1, 8 on w2. The tool does not move them.
    const lopsided = uniformRanges(32).map((r, i) => ({ shardId: String(200 + i), ...r, node: i < 24 ? W1 : W2 }));
    const p = planProfile(inputOf('events', events(20_000, 0), 400_000, EVENT_TYPES,
      { relationships: [toTenants()], clusterTables: [tenantsGroup('bigint', lopsided)] }));
    assert.equal(p.colocateWith, 'public.tenants');
    assert.deepEqual(p.isolate, []);
    const figure = Number(/busiest node predicted at ([\d.]+)x/.exec(p.reasons.join(' | '))![1]);
    assert.ok(figure > 1.4, `a 24/8 placement is about 1.5x, said ${figure}`);
    assert.ok(p.reasons.some((r) => /which the tool does not move/.test(r)));
  });

  it('skips a tenant the group already isolated', () => {
    const group = tenantsGroup();
    const p0 = planProfile(inputOf('events', events(20_000, 0.3), 400_000, EVENT_TYPES, { relationships: [toTenants()], clusterTables: [group] }));
    const whale = p0.shards.find((s) => s.tenant === '7')!;
    const isolated = p0.shards.map((s, i) => ({ shardId: String(300 + i), min: s.hashMin, max: s.hashMax, node: s.node! }));
    const p = planProfile(inputOf('events', events(20_000, 0.3), 400_000, EVENT_TYPES,
      { relationships: [toTenants()], clusterTables: [tenantsGroup('bigint', isolated)] }));
    assert.deepEqual(p.isolate, []);
    assert.ok(p.shards.some((s) => s.hashMin === whale.hashMin && s.hashMax === whale.hashMax));
  });
});

describe('tables that will grow', () => {
  const small = (n: number) => {
    const rand = lcg(5);
    return Array.from({ length: n }, (_, i) => ({ tenant_id: String(1 + Math.floor(rand() * 300)), item_no: String(i + 1), qty: String(1 + (i % 9)) }));
  };
  const SMALL_TYPES = { tenant_id: { typeName: 'int8' }, item_no: { typeName: 'int8' }, qty: { typeName: 'int4' } };

  it('a small fact table whose primary key leads with the tenant and whose foreign key points at a distributed parent is distributed and colocated', () => {
    const fk = toTenants({ evidence: 'declared', containment: undefined });
    const keys = [{ constraint: 'items_pkey', columns: ['tenant_id', 'item_no'], primary: true }];
    const p = planProfile(inputOf('items', small(900), 900, SMALL_TYPES, { relationships: [fk], clusterTables: [tenantsGroup()], keys, tableExists: true }));
    assert.equal(p.kind, 'distributed', p.reasons.join(' | '));
    assert.equal(p.distributionColumn, 'tenant_id');
    assert.equal(p.colocateWith, 'public.tenants');
    assert.ok(p.reasons.some((r) => /not a reference table/.test(r)), p.reasons.join(' | '));
  });

  it('the primary key alone (values evidence) is enough, and the key column wins over a better-scoring one', () => {
    const keys = [{ constraint: 'items_pkey', columns: ['tenant_id', 'item_no'], primary: true }];
    // Query history favours qty; the declared key still decides.
    const access: AccessPatterns = { ...NO_HISTORY, calls: 100, statements: 1, columns: { qty: { equality: 100, range: 0, groupBy: 0, joins: {} } } };
    const p = planProfile(inputOf('items', small(900), 900, SMALL_TYPES, { relationships: [toTenants()], clusterTables: [tenantsGroup()], keys, access, tableExists: true }));
    assert.equal(p.distributionColumn, 'tenant_id', p.reasons.join(' | '));
    assert.equal(p.colocateWith, 'public.tenants');
  });

  it('a small table without declared keys whose values are a group\'s distribution column is colocated, not a reference table', () => {
    // The query history looks items up by item_no, so the tenant key is not the best score: it still decides.
    const access: AccessPatterns = { ...NO_HISTORY, calls: 100, statements: 1, columns: { item_no: { equality: 100, range: 0, groupBy: 100, joins: {} } } };
    const p = planProfile(inputOf('items', small(900), 900, SMALL_TYPES, { relationships: [toTenants()], clusterTables: [tenantsGroup()], access }));
    assert.ok(p.candidates[0]!.column === 'item_no', 'item_no scores best');
    assert.equal(p.kind, 'distributed', p.reasons.join(' | '));
    assert.equal(p.distributionColumn, 'tenant_id');
    assert.equal(p.colocateWith, 'public.tenants');
  });

  it('the small tenant table at the root of a multi-tenant schema is distributed by its id; a dimension is not', () => {
    const rows = Array.from({ length: 500 }, (_, i) => ({ account_id: String(i + 1), name: `account ${i + 1}` }));
    const types = { account_id: { typeName: 'int8' }, name: { typeName: 'text' } };
    const p = planProfile(inputOf('public.accounts', rows, 500, types));
    assert.equal(p.kind, 'distributed', p.reasons.join(' | '));
    assert.equal(p.distributionColumn, 'account_id');
    assert.ok(p.reasons.some((r) => /root of a multi-tenant schema/.test(r)));
    const stores = rows.map((r) => ({ store_id: r.account_id, name: r.name }));
    assert.equal(planProfile(inputOf('public.stores', stores, 500, { store_id: { typeName: 'int8' }, name: { typeName: 'text' } })).kind, 'reference');
  });

  it('a small table with no key shared with a group stays a reference table', () => {
    const p = planProfile(inputOf('items', small(900), 900, SMALL_TYPES));
    assert.equal(p.kind, 'reference');
  });

  it('--expected-rows plans a small input for the size the user expects', () => {
    const rand = lcg(9);
    const rows = Array.from({ length: 2000 }, (_, i) => ({ id: String(i + 1), device_id: String(1 + Math.floor(rand() * 400)), reading: (rand() * 10).toFixed(3) }));
    const types = { id: { typeName: 'int8' }, device_id: { typeName: 'int8' }, reading: { typeName: 'numeric' } };
    assert.equal(planProfile(inputOf('readings', rows, 2000, types)).kind, 'reference');
    const p = planProfile(inputOf('readings', rows, 2000, types, { expectedRows: 50_000_000 }));
    assert.equal(p.kind, 'distributed', p.reasons.join(' | '));
    assert.equal(p.distributionColumn, 'device_id');
    assert.equal(p.expectedRows, 50_000_000);
    assert.equal(p.predicted.rows, 50_000_000);
    assert.ok(p.reasons.some((r) => /planned for 50,000,000 expected rows/.test(r)));
  });
});

describe('only proposals the cluster accepts', () => {
  it('types: an existing int4 column does not colocate with an int8 group; a new table takes the group type when values fit', () => {
    const rows = events(5000, 0);
    const existing = planProfile(inputOf('events', rows, 400_000, { ...EVENT_TYPES, tenant_id: { typeName: 'int4' } },
      { relationships: [toTenants()], clusterTables: [tenantsGroup()], tableExists: true }));
    assert.equal(existing.colocateWith, null, existing.candidates.map((c) => c.reasons.join(';')).join(' | '));
    assert.ok(existing.candidates.find((c) => c.column === 'tenant_id')!.reasons.some((r) => /same type/.test(r)));
    const created = planProfile(inputOf('events', rows, 400_000, { ...EVENT_TYPES, tenant_id: { typeName: 'int4' } },
      { relationships: [toTenants()], clusterTables: [tenantsGroup()] }));
    assert.equal(created.colocateWith, 'public.tenants');
    assert.equal(created.columnTypes.tenant_id, 'bigint');
    // An int4 group with values beyond int4: not colocated.
    const big = rows.map((r, i) => ({ ...r, tenant_id: i % 2 ? '5000000000' : r.tenant_id! }));
    const nofit = planProfile(inputOf('events', big, 400_000, EVENT_TYPES, { relationships: [toTenants()], clusterTables: [tenantsGroup('integer')] }));
    assert.notEqual(nofit.colocateWith, 'public.tenants');
  });

  it('type rule and value fit, directly', () => {
    assert.equal(colocationTypeRule({ column: 'a', group: 'g', groupType: 'bigint', existingType: 'int8', values: [] }).ok, true);
    assert.equal(colocationTypeRule({ column: 'a', group: 'g', groupType: 'bigint', existingType: 'int4', values: [] }).ok, false);
    assert.equal(colocationTypeRule({ column: 'a', group: 'g', groupType: 'text', existingType: 'varchar', values: [] }).ok, false);
    assert.ok(valuesFitType(['1', '-2147483648', null], 'integer'));
    assert.ok(!valuesFitType(['2147483648'], 'integer'));
    assert.ok(!valuesFitType(['abc'], 'character varying(2)'));
    assert.ok(valuesFitType(['ab'], 'character varying(2)'));
  });

  it('weak evidence: an own serial key inside another dense integer key is not a colocation unless names or history agree', () => {
    const rows = Array.from({ length: 1500 }, (_, i) => ({ o_orderkey: String(i + 1), o_custkey: String(1 + ((i * 37) % 150)), o_total: String(i % 90) }));
    const types = { o_orderkey: { typeName: 'int4' }, o_custkey: { typeName: 'int4' }, o_total: { typeName: 'int4' } };
    const base = inputOf('orders', rows, 1500, types);
    const orderkey = base.columns.find((c) => c.name === 'o_orderkey')!;
    const values = rows.map((r) => r.o_orderkey!);
    assert.ok(ownSerialKey(orderkey, values));
    assert.ok(!ownSerialKey(base.columns.find((c) => c.name === 'o_custkey')!, rows.map((r) => r.o_custkey!)), 'repeating values are a reference, not a serial');
    assert.ok(weakContainment({ column: orderkey, distinctValues: values, refTable: 'public.invoices', refColumn: 'invoice_id', refDense: true }));
    assert.ok(!weakContainment({ column: orderkey, distinctValues: values, refTable: 'public.invoices', refColumn: 'invoice_id', refDense: false }));
    assert.ok(!weakContainment({ column: orderkey, distinctValues: values, refTable: 'public.orders_archive', refColumn: 'a_orderkey', refDense: true }));
    assert.ok(namesAgree('tenant_id', 'public.tenants', 'id'));
    assert.ok(namesAgree('o_custkey', 'customer', 'c_custkey'));
    assert.ok(!namesAgree('id', 'public.invoices', 'id'));

    const invoices: ClusterTable = { name: 'public.invoices', kind: 'hash', distributionColumn: 'invoice_id', colocationId: 9, shardCount: 32, estimatedRows: 2000,
      keyColumns: [{ column: 'invoice_id', type: 'bigint' }], columnTypes: { invoice_id: 'bigint' }, indexedColumns: ['invoice_id'] };
    const rel: Relationship = { column: 'o_orderkey', references: { table: 'public.invoices', column: 'invoice_id' }, evidence: 'values', containment: 1,
      colocatable: true, referencedKind: 'hash', referencedRows: 2000, weak: true };
    const p = planProfile({ ...base, relationships: [rel], clusterTables: [invoices], expectedRows: 2_000_000 });
    assert.notEqual(p.colocateWith, 'public.invoices', p.reasons.join(' | '));
    assert.ok(p.candidates.find((c) => c.column === 'o_orderkey')!.reasons.some((r) => /weak evidence, not colocated/.test(r)));
    // The query history joining the two makes it evidence again.
    const access: AccessPatterns = { ...NO_HISTORY, calls: 10, statements: 1, columns: { o_orderkey: { equality: 0, range: 0, groupBy: 0, joins: { 'public.invoices.invoice_id': 10 } } } };
    const joined = planProfile({ ...base, relationships: [rel], clusterTables: [invoices], access, expectedRows: 2_000_000, forcedColumn: 'o_orderkey' });
    assert.equal(joined.colocateWith, 'public.invoices');
  });

  it('a pairing Citus refused is planned without it: the next candidate', () => {
    const input = inputOf('events', events(20_000, 0), 400_000, EVENT_TYPES, { relationships: [toTenants()], clusterTables: [tenantsGroup()] });
    assert.equal(planProfile(input).colocateWith, 'public.tenants');
    const p = planProfile(input, new Set(['tenant_id->public.tenants']));
    assert.equal(p.colocateWith, null);
    assert.equal(p.kind, 'distributed');
    assert.ok(p.candidates.find((c) => c.column === 'tenant_id')!.reasons.some((r) => /Citus refused/.test(r)));
  });
});
