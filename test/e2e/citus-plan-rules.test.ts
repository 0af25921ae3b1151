/**
 * The planner's rules for colocation groups on real Citus, with data generated here: a whale
 * tenant in a table that joins an existing group is isolated with CASCADE and its shard group
 * moved off the busiest node; the plan quotes the imbalance the cluster will really have; a load
 * into an existing distributed table advises isolation with its SQL (and --isolate-tenants does
 * it); small tables whose keys carry a group's column, and --expected-rows, are distributed; a
 * proposal Citus would refuse is not made, or falls back, and every row loads.
 *
 * Each case uses tables of its own names; earlier cases' tables stay (as in a real database) and
 * the cases are written so that they are no evidence for later ones.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { runCli } from '../support/cli.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus plan-rules suite skipped: ${skip}.`);

interface Profile {
  kind: string;
  distributionColumn: string | null;
  colocateWith: string | null;
  isolate: string[];
  shards: { hashMin: number; hashMax: number; load: number; node: string | null; tenant?: string }[];
  reasons: string[];
  columnTypes: Record<string, string>;
  predicted: { maxNodeLoadOverMean?: number };
}

/** A deterministic generator, so every run writes the same files. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

describe('Citus suite: planner rules for colocation groups', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const write = (name: string, lines: string[]) => {
    const p = join(dir, name);
    writeFileSync(p, `${lines.join('\n')}\n`);
    return p;
  };
  const plan = async (table: string, file: string, extra: string[] = []) => {
    const r = await runCli(['plan', '--table', table, '--coordinator', url, '--json', ...extra, file]);
    assert.equal(r.status, 0, r.stderr);
    return r.json as unknown as Profile;
  };
  const load = (table: string, file: string, extra: string[] = []) => runCli(['--table', table, '--coordinator', url, ...extra, file]);
  const kindOf = async (table: string) => (await sql(
    `SELECT CASE WHEN partmethod = 'h' THEN 'distributed' WHEN repmodel = 't' THEN 'reference' ELSE 'other' END AS k,
            column_to_column_name(logicalrelid, partkey) AS col, colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass`, [table])).rows[0];
  const ranges = async (table: string) => (await sql(
    'SELECT shardminvalue || \':\' || shardmaxvalue AS r FROM pg_dist_shard WHERE logicalrelid = $1::regclass ORDER BY shardminvalue::int', [table])).rows.map((r) => r.r as string);
  const nodeOfValue = async (table: string, value: string) => (await sql(
    `SELECT n.nodename || ':' || n.nodeport AS node FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
      WHERE p.shardid = get_shard_id_for_distribution_column($1::regclass, $2::text)`, [table, value])).rows[0].node as string;
  const aloneInShard = async (table: string, value: string) => (await sql(
    'SELECT shardminvalue = shardmaxvalue AS alone FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column($1::regclass, $2::text)', [table, value])).rows[0].alone as boolean;
  /** Rows of `table` per node, as Citus routes their distribution values. */
  const rowsPerNode = async (table: string, column: string) => new Map((await sql(
    `WITH v AS (SELECT ${column}::text AS v, count(*) AS n FROM ${table} GROUP BY 1)
     SELECT n.nodename || ':' || n.nodeport AS node, sum(v.n)::float8 AS rows
       FROM v JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column($1::regclass, v.v)
       JOIN pg_dist_node n USING (groupid) GROUP BY 1`, [table])).rows.map((r) => [r.node as string, r.rows as number]));

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-plan-rules-'));
  });
  after(async () => cluster?.stop());

  it('a table joining a tenants group: its 30% tenant is isolated with CASCADE and moved off the busiest node', async () => {
    await sql('CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text)');
    await sql("SELECT create_distributed_table('tenants', 'tenant_id', shard_count => 16)");
    await sql("INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 2000) g");
    const before = await nodeOfValue('tenants', '7');
    const rand = lcg(3);
    const lines = ['event_id,tenant_id,kind'];
    for (let i = 1; i <= 40_000; i++) lines.push(`${i},${rand() < 0.3 ? 7 : 1 + Math.floor(rand() * 2000)},${['view', 'click'][i % 2]}`);
    const file = write('events.csv', lines);
    const p = await plan('events', file);
    assert.equal(p.colocateWith, 'public.tenants', p.reasons.join(' | '));
    assert.deepEqual(p.isolate, ['7']);
    const r = await load('events', file);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await kindOf('events')).colocationid, (await kindOf('tenants')).colocationid);
    assert.ok(await aloneInShard('events', '7'));
    assert.ok(await aloneInShard('tenants', '7'), 'CASCADE isolated the tenant in every table of the group');
    assert.deepEqual(await ranges('events'), await ranges('tenants'), 'the group keeps matching ranges');
    const after = await nodeOfValue('events', '7');
    assert.notEqual(after, before, 'the isolated shard group left the node it was isolated on');
    assert.equal(await nodeOfValue('tenants', '7'), after);
    const check = await checkPlacements(url, 'events');
    assert.equal(check.rows, 40_000);
    assert.deepEqual(check.misplaced, []);
    assert.deepEqual((await checkPlacements(url, 'tenants')).misplaced, []);
  });

  it('orders whose top customer holds 15%: the reasons quote the imbalance the cluster then has', async () => {
    await sql('CREATE TABLE customers (c_custkey bigint PRIMARY KEY, c_name text)');
    await sql("SELECT create_distributed_table('customers', 'c_custkey', shard_count => 8)");
    await sql("INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 3000) g");
    // A group placed unevenly (6 shards on one node, 2 on the other), as groups get over time: the
    // tool does not move these shards, so its prediction must be for this placement.
    const placed = (await sql(`SELECT s.shardid, n.nodename, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
                                 JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = 'customers'::regclass ORDER BY n.nodeport, s.shardid`)).rows;
    const [first, second] = [...new Set(placed.map((r) => r.nodeport as number))];
    const to = placed.find((r) => r.nodeport === first)!;
    for (const r of placed.filter((x) => x.nodeport === second).slice(0, 2)) {
      await sql("SELECT citus_move_shard_placement($1, $2, $3, $4, $5, 'block_writes')", [r.shardid, r.nodename, r.nodeport, to.nodename, to.nodeport]);
    }
    const rand = lcg(5);
    const lines = ['o_orderkey,o_custkey,o_total'];
    for (let i = 1; i <= 30_000; i++) lines.push(`${i * 4},${rand() < 0.15 ? 42 : 1 + Math.floor(rand() * 3000)},${(rand() * 900).toFixed(2)}`);
    const file = write('orders.csv', lines);
    const p = await plan('orders', file);
    assert.equal(p.colocateWith, 'public.customers', p.reasons.join(' | '));
    const quoted = Number(/busiest node predicted at ([\d.]+)x/.exec(p.reasons.join(' | '))?.[1]);
    assert.ok(Number.isFinite(quoted), p.reasons.join(' | '));
    const r = await load('orders', file);
    assert.equal(r.status, 0, r.stderr);
    const perNode = [...(await rowsPerNode('orders', 'o_custkey')).values()];
    const actual = Math.max(...perNode) / (perNode.reduce((a, b) => a + b, 0) / perNode.length);
    // A fresh placement the cluster does not get would have claimed about 1.06x; this one is
    // 1.28x or more, whichever node holds the top customer's shard.
    assert.ok(actual > 1.2, `the uneven group gives ${actual.toFixed(3)}x`);
    assert.ok(Math.abs(actual - quoted) < 0.04, `quoted ${quoted}x, the cluster has ${actual.toFixed(3)}x`);
  });

  it('a load into an existing distributed table with a whale advises isolation with SQL; --isolate-tenants does it', async () => {
    await sql('CREATE TABLE clicks (account_id bigint NOT NULL, url text)');
    await sql("SELECT create_distributed_table('clicks', 'account_id', shard_count => 8, colocate_with => 'none')");
    await sql("INSERT INTO clicks SELECT g % 500 + 1000, 'u' FROM generate_series(1, 2000) g");
    const rand = lcg(9);
    const lines = ['account_id,url'];
    for (let i = 1; i <= 20_000; i++) lines.push(`${rand() < 0.3 ? 77 : 1000 + Math.floor(rand() * 500)},/p${i % 40}`);
    const file = write('clicks.csv', lines);
    const advised = await load('clicks', file);
    assert.equal(advised.status, 0, advised.stderr);
    assert.match(advised.stderr, /advice: tenant 77 holds 3\d\.\d% of the sampled rows/);
    assert.match(advised.stderr, /SELECT isolate_tenant_to_new_shard\('public\.clicks', '77', cascade_option => 'CASCADE'/);
    assert.equal(await aloneInShard('clicks', '77'), false, 'advice only: nothing changed');
    const report = await runCli(['report', '--format', 'json', '--coordinator', url]);
    assert.equal(report.status, 0, report.stderr);
    const recs = (JSON.parse(report.stdout) as { recommendations: { kind: string; detail: string; sql: string | null }[] }).recommendations;
    assert.ok(recs.some((x) => x.kind === 'isolate-tenant' && /tenant 77/.test(x.detail) && /isolate_tenant_to_new_shard/.test(x.sql ?? '')), JSON.stringify(recs));
    const beforeNode = await nodeOfValue('clicks', '77');
    const isolated = await load('clicks', file, ['--isolate-tenants']);
    assert.equal(isolated.status, 0, isolated.stderr);
    assert.match(isolated.stderr, /isolated tenant 77 before loading/);
    assert.ok(await aloneInShard('clicks', '77'));
    assert.notEqual(await nodeOfValue('clicks', '77'), beforeNode, 'moved to the less loaded node');
    const check = await checkPlacements(url, 'clicks');
    assert.equal(check.rows, 2000 + 2 * 20_000);
    assert.deepEqual(check.misplaced, []);
    const again = await runCli(['report', '--format', 'json', '--coordinator', url]);
    assert.ok(!(JSON.parse(again.stdout) as { recommendations: { kind: string }[] }).recommendations.some((x) => x.kind === 'isolate-tenant'), 'done advice is not repeated');
  });

  it('a small fact table whose primary key leads with the tenant is distributed and colocated, not a reference table', async () => {
    // tenants is distributed (first case). The table is small and its declared key carries tenant_id.
    await sql('CREATE TABLE settings (tenant_id bigint NOT NULL, setting_no int NOT NULL, value text, PRIMARY KEY (tenant_id, setting_no))');
    const lines = ['tenant_id,setting_no,value'];
    for (let t = 1; t <= 300; t++) for (let s = 1; s <= 3; s++) lines.push(`${t},${s},v${t * s}`);
    const file = write('settings.csv', lines);
    const p = await plan('settings', file);
    assert.equal(p.kind, 'distributed', p.reasons.join(' | '));
    assert.ok(p.colocateWith === 'public.tenants' || p.colocateWith === 'public.events', `a member of the tenants group, not ${p.colocateWith}`);
    const r = await load('settings', file);
    assert.equal(r.status, 0, r.stderr);
    const k = await kindOf('settings');
    assert.equal(k.k, 'distributed');
    assert.equal(k.col, 'tenant_id');
    assert.equal(k.colocationid, (await kindOf('tenants')).colocationid);
  });

  it('--expected-rows makes a small input a distributed table', async () => {
    const rand = lcg(13);
    const lines = ['reading_id,device_id,reading'];
    for (let i = 1; i <= 2000; i++) lines.push(`${i},${100000 + Math.floor(rand() * 400) * 7},${(rand() * 10).toFixed(3)}`);
    const file = write('readings.csv', lines);
    assert.equal((await plan('readings', file)).kind, 'reference');
    const r = await load('readings', file, ['--expected-rows', '50000000']);
    assert.equal(r.status, 0, r.stderr);
    const k = await kindOf('readings');
    assert.equal(k.k, 'distributed');
    assert.equal(k.col, 'device_id');
  });

  it('TPC-H orders (o_orderkey integer) next to invoices (bigint 1..2000): not colocated, every row loads', async () => {
    await sql('CREATE TABLE invoices (invoice_id bigint PRIMARY KEY, amount numeric)');
    await sql("SELECT create_distributed_table('invoices', 'invoice_id', shard_count => 4, colocate_with => 'none')");
    await sql('INSERT INTO invoices SELECT g, g FROM generate_series(1, 2000) g');
    const lines = ['o_orderkey,o_clerk,o_totalprice'];
    for (let i = 1; i <= 1500; i++) lines.push(`${i},Clerk#${String(1 + (i * 7) % 100).padStart(3, '0')},${(i * 3.7).toFixed(2)}`);
    const file = write('h_orders.csv', lines);
    // A new table: o_orderkey could be created as bigint, so only the evidence rule stands between
    // it and a colocation with invoices (two serial keys, names disagreeing).
    const p = await plan('h_orders', file, ['--distribution-column', 'o_orderkey']);
    assert.notEqual(p.colocateWith, 'public.invoices', p.reasons.join(' | '));
    // The case: the table exists with o_orderkey integer.
    await sql('CREATE TABLE h_orders (o_orderkey integer NOT NULL, o_clerk text, o_totalprice numeric)');
    const r = await load('h_orders', file, ['--distribution-column', 'o_orderkey']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM h_orders')).rows[0].n), 1500);
    assert.notEqual((await kindOf('h_orders')).colocationid, (await kindOf('invoices')).colocationid);
  });

  it('an existing integer column is not proposed for a bigint group even when names and values agree', async () => {
    // invoices (bigint) exists from the case before. payments.invoice_id repeats and its name agrees:
    // strong evidence, so only the type rule keeps the planner from a proposal Citus refuses.
    await sql('CREATE TABLE payments (payment_id bigint NOT NULL, invoice_id integer NOT NULL, paid numeric)');
    const rand = lcg(21);
    const lines = ['payment_id,invoice_id,paid'];
    for (let i = 1; i <= 6000; i++) lines.push(`${i * 11},${1 + Math.floor(rand() * 2000)},${(rand() * 50).toFixed(2)}`);
    const file = write('payments.csv', lines);
    const r = await load('payments', file, ['--distribution-column', 'invoice_id']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /refused/, 'no proposal Citus refuses');
    assert.notEqual((await kindOf('payments')).colocationid, (await kindOf('invoices')).colocationid);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM payments')).rows[0].n), 6000);
  });

  it('a colocation Citus refuses (collations differ) falls back to the next candidate and loads', async () => {
    await sql('CREATE TABLE regions (code text COLLATE "C" PRIMARY KEY, name text)');
    await sql("SELECT create_distributed_table('regions', 'code', shard_count => 4, colocate_with => 'none')");
    await sql("INSERT INTO regions SELECT 'R-' || g, 'region ' || g FROM generate_series(1, 3000) g");
    const rand = lcg(17);
    const lines = ['visit_id,code,minutes'];
    for (let i = 1; i <= 20_000; i++) lines.push(`${i},R-${1 + Math.floor(rand() * 3000)},${i % 60}`);
    const file = write('visits.csv', lines);
    const p = await plan('visits', file, ['--distribution-column', 'code']);
    assert.equal(p.colocateWith, 'public.regions', 'the planner cannot see collations: Citus decides');
    const r = await load('visits', file, ['--distribution-column', 'code']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Citus refused colocating (public\.)?visits with public\.regions \(cannot colocate tables .*collations don't match.*\); falling back to code in a colocation group of its own/);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM visits')).rows[0].n), 20_000);
    assert.deepEqual((await checkPlacements(url, 'visits')).misplaced, []);
  });

  it('from SQL: analyze_table applies the same rules (declared key, expected_rows, types, weak evidence)', async () => {
    const analyze = async (table: string, extra = '') => (await sql(`SELECT adaptive_load.analyze_table('${table}'${extra}) AS p`)).rows[0].p as Profile;
    // A small staging table whose primary key carries tenants' distribution column.
    await sql('CREATE TABLE stage_settings (tenant_id bigint NOT NULL, setting_no int NOT NULL, value text, PRIMARY KEY (tenant_id, setting_no))');
    await sql('INSERT INTO stage_settings SELECT t, s, \'v\' FROM generate_series(1, 300) t, generate_series(1, 3) s');
    await sql('ANALYZE stage_settings');
    const keyed = await analyze('stage_settings');
    assert.equal(keyed.kind, 'distributed', JSON.stringify(keyed.reasons));
    assert.equal(keyed.distributionColumn, 'tenant_id');
    assert.ok(keyed.colocateWith, JSON.stringify(keyed.reasons));
    assert.equal((await kindOf(keyed.colocateWith)).colocationid, (await kindOf('tenants')).colocationid, 'in the tenants group');
    // 300 even tenants: nothing isolated, and the reasons do not say otherwise.
    assert.deepEqual(keyed.isolate ?? [], []);
    assert.ok(keyed.reasons.some((r) => /placement follows .* colocation group$/.test(r)), JSON.stringify(keyed.reasons));
    assert.ok(!keyed.reasons.some((r) => /isolated with CASCADE/.test(r)), JSON.stringify(keyed.reasons));
    // expected_rows: a small table of 400 devices is a reference table until it is expected to grow.
    await sql('CREATE TABLE stage_readings (reading_id bigint, device_id bigint, reading float8)');
    await sql('INSERT INTO stage_readings SELECT g, 100000 + (hashint4(g) & 1023) % 400 * 7, g / 10.0 FROM generate_series(1, 2000) g');
    await sql('ANALYZE stage_readings');
    assert.equal((await analyze('stage_readings')).kind, 'reference');
    const grown = await analyze('stage_readings', ', expected_rows => 50000000');
    assert.equal(grown.kind, 'distributed', JSON.stringify(grown.reasons));
    assert.equal(grown.distributionColumn, 'device_id');
    // Types: an integer column is not colocated with the bigint invoices; a serial key is weak evidence.
    await sql('CREATE TABLE stage_payments (invoice_id integer NOT NULL, paid numeric)');
    await sql('INSERT INTO stage_payments SELECT 1 + (hashint4(g) & 2047) % 2000, g FROM generate_series(1, 6000) g');
    await sql('ANALYZE stage_payments');
    const payments = await analyze('stage_payments');
    assert.notEqual(payments.colocateWith, 'public.invoices', JSON.stringify(payments));
    await sql('CREATE TABLE stage_orders (o_orderkey bigint NOT NULL, o_total numeric)');
    await sql('INSERT INTO stage_orders SELECT g, g FROM generate_series(1, 1500) g');
    await sql('ANALYZE stage_orders');
    const orders = await analyze('stage_orders', ', expected_rows => 50000000');
    assert.notEqual(orders.colocateWith, 'public.invoices', JSON.stringify(orders));
    // The tenant table at the root of a multi-tenant schema is distributed by its id; a dimension is not.
    await sql('CREATE TABLE organizations (organization_id bigint PRIMARY KEY, name text)');
    await sql("INSERT INTO organizations SELECT g, 'org ' || g FROM generate_series(1, 500) g");
    await sql('CREATE TABLE stage_regions (region_id bigint PRIMARY KEY, name text)');
    await sql("INSERT INTO stage_regions SELECT g, 'region ' || g FROM generate_series(1, 500) g");
    await sql('ANALYZE organizations; ANALYZE stage_regions');
    const root = await analyze('organizations');
    assert.equal(root.kind, 'distributed', JSON.stringify(root.reasons));
    assert.equal(root.distributionColumn, 'organization_id');
    assert.equal((await analyze('stage_regions')).kind, 'reference');
  });
});
