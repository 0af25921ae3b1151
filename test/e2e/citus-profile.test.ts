/**
 * The sharding profile on real Citus, on generated data sets: a multi-tenant table with one
 * tenant holding a third of the rows, sensor readings with a unique id and a monotonic timestamp,
 * a child that references a parent under another column name (values only), a schema with
 * declared keys, a small dimension table, and a workload read from pg_stat_statements. Asserts
 * the choices and reasons, and that loading after apply (uneven ranges) puts every row in its shard.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import { runCli } from '../support/cli.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus profile suite skipped: ${skip}.`);

interface Profile {
  kind: string;
  distributionColumn: string | null;
  shardCount: number | null;
  colocateWith: string | null;
  isolate: string[];
  placement: { shardIndex: number; node: string }[];
  candidates: { column: string; score: number; reasons: string[]; rejected?: string }[];
  reasons: string[];
  keyChanges: { constraint: string; columns: string[] }[];
  sample: { rows: number; seconds: number };
}

describe('Citus suite: sharding profiles', { skip }, () => {
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
  const load = (table: string, file: string, extra: string[] = []) => runCli(['--table', table, '--coordinator', url, '--json', ...extra, file]);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-profile-test-'));
  });
  after(async () => cluster?.stop());

  it('multi-tenant: distributes by the tenant and isolates the tenant holding a third of the rows', async () => {
    const lines = ['event_id,tenant_id,kind,amount'];
    for (let i = 1; i <= 60_000; i++) lines.push(`${i},${i % 3 === 0 ? 7 : 1000 + (i * 7919) % 3000},${['view', 'click', 'buy'][i % 3]},${(i % 100) / 4}`);
    const file = write('events.csv', lines);
    const p = await plan('events', file);
    assert.equal(p.kind, 'distributed');
    assert.equal(p.distributionColumn, 'tenant_id');
    assert.deepEqual(p.isolate, ['7']);
    assert.ok(p.reasons.some((r) => /heavy tenant 7 \(3\d(\.\d)?% of rows\) get their own shard/.test(r)), p.reasons.join(' | '));
    assert.ok(p.candidates.find((c) => c.column === 'event_id')!.score < p.candidates[0]!.score);
    assert.ok(p.sample.rows > 10_000);
    assert.equal(await sql("SELECT to_regclass('events') AS t").then((r) => r.rows[0].t), null, 'plan must change nothing');
    // Apply and load: the layout matches the plan and every row sits in its shard.
    const saved = join(dir, 'events-profile.json');
    const r = await load('events', file, ['--save-profile', saved]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.path, 'direct');
    assert.equal(r.json?.rows, 60_000);
    const tenantShard = await sql("SELECT shardminvalue = shardmaxvalue AS alone FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column('events', 7)");
    assert.equal(tenantShard.rows[0].alone, true);
    const check = await checkPlacements(url, 'events');
    assert.equal(check.rows, 60_000);
    assert.deepEqual(check.misplaced, []);
    const stored = await sql("SELECT profile->>'distributionColumn' AS c FROM adaptive_load.profiles WHERE table_name = 'events'");
    assert.equal(stored.rows[0].c, 'tenant_id');
    assert.equal((JSON.parse(readFileSync(saved, 'utf8')) as Profile).distributionColumn, 'tenant_id');
    // Placement balances predicted load: the node with the big tenant gets fewer other shards.
    const perNode = await sql(`SELECT nodeport, count(*)::int AS shards FROM citus_shards WHERE table_name = 'events'::regclass GROUP BY 1 ORDER BY 2`);
    assert.ok(perNode.rows[0].shards < perNode.rows[1].shards, JSON.stringify(perNode.rows));
  });

  it('readings: a monotonic timestamp and a unique id lose to the sensor', async () => {
    const lines = ['reading_id,sensor_id,recorded_at,value'];
    const t0 = Date.UTC(2024, 0, 1);
    for (let i = 1; i <= 50_000; i++) {
      lines.push(`${i},${(i * 2654435761) % 800},${new Date(t0 + i * 1000).toISOString().replace('T', ' ').replace('Z', '+00')},${(i % 1000) / 10}`);
    }
    const p = await plan('readings', write('readings.csv', lines));
    assert.equal(p.distributionColumn, 'sensor_id');
    const ts = p.candidates.find((c) => c.column === 'recorded_at')!;
    assert.ok(ts.reasons.some((r) => /follow row order/.test(r)), ts.reasons.join(' | '));
    const id = p.candidates.find((c) => c.column === 'reading_id')!;
    assert.ok(id.reasons.some((r) => /unique per row/.test(r)), id.reasons.join(' | '));
  });

  it('child table: colocates with a parent found by values, under another column name', async () => {
    await sql('CREATE TABLE accounts (id bigint PRIMARY KEY, name text)');
    await sql("SELECT create_distributed_table('accounts', 'id', shard_count => 8)");
    await sql("INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 5000) g");
    const lines = ['invoice_no,payer,total'];
    for (let i = 1; i <= 30_000; i++) lines.push(`${100000 + i},${1 + (i * 37) % 5000},${i % 500}`);
    const file = write('invoices.csv', lines);
    const p = await plan('invoices', file);
    assert.equal(p.distributionColumn, 'payer');
    assert.equal(p.colocateWith, 'public.accounts');
    assert.equal(p.shardCount, 8);
    assert.ok(p.reasons.some((r) => /of its sampled values are in public\.accounts\.id/.test(r)), p.reasons.join(' | '));
    const r = await load('invoices', file);
    assert.equal(r.status, 0, r.stderr);
    const colocated = await sql("SELECT count(DISTINCT colocationid)::int AS n FROM pg_dist_partition WHERE logicalrelid IN ('accounts'::regclass, 'invoices'::regclass)");
    assert.equal(colocated.rows[0].n, 1);
    assert.deepEqual((await checkPlacements(url, 'invoices')).misplaced, []);
  });

  it('declared keys: widens the primary key to include the tenant, or keeps it with --keep-keys', async () => {
    await sql('CREATE TABLE projects (project_id bigint PRIMARY KEY, org_id bigint NOT NULL, title text)');
    const lines = ['project_id,org_id,title'];
    for (let i = 1; i <= 20_000; i++) lines.push(`${i},${1 + (i * 131) % 900},p${i}`);
    const file = write('projects.csv', lines);
    const p = await plan('projects', file);
    assert.equal(p.distributionColumn, 'org_id');
    assert.equal(p.keyChanges.length, 1);
    assert.deepEqual(p.keyChanges[0], { constraint: 'projects_pkey', columns: ['project_id', 'org_id'] });
    // --keep-keys: only project_id keeps the primary key valid; for 20,000 rows with no column that
    // groups rows, a reference table (which keeps any key) is as good an answer.
    const kept = await plan('projects', file, ['--keep-keys']);
    assert.ok(kept.kind === 'reference' || kept.distributionColumn === 'project_id', JSON.stringify(kept.reasons));
    assert.match(kept.candidates.find((c) => c.column === 'org_id')!.rejected ?? '', /--keep-keys/);
    const r = await load('projects', file);
    assert.equal(r.status, 0, r.stderr);
    const pk = await sql("SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'projects'::regclass AND contype = 'p'");
    assert.equal(pk.rows[0].d, 'PRIMARY KEY (project_id, org_id)');
    assert.deepEqual((await checkPlacements(url, 'projects')).misplaced, []);
  });

  it('a small dimension table becomes a reference table', async () => {
    const lines = ['code,name,region'];
    for (let i = 0; i < 200; i++) lines.push(`C${i},Country ${i},R${i % 5}`);
    const file = write('countries.csv', lines);
    const p = await plan('countries', file);
    assert.equal(p.kind, 'reference');
    assert.match(p.reasons[0]!, /small table .* reference table/);
    const r = await load('countries', file);
    assert.equal(r.status, 0, r.stderr);
    const kind = await sql("SELECT partmethod, repmodel FROM pg_dist_partition WHERE logicalrelid = 'countries'::regclass");
    assert.deepEqual(kind.rows[0], { partmethod: 'n', repmodel: 't' });
  });

  it('creates and finds tables named as psql reads names: unquoted mixed case folds, quoted keeps case, schemas split', async () => {
    await sql('CREATE SCHEMA "my.schema"');
    const lines = ['id,tenant_id,note'];
    for (let i = 1; i <= 3000; i++) lines.push(`${i},${i % 50},n${i}`);
    const file = write('named.csv', lines);
    const cases: { arg: string; sqlName: string; extra: string[] }[] = [
      { arg: 'rt_NewMixed', sqlName: 'rt_newmixed', extra: [] },
      { arg: '"Mixed Case"', sqlName: '"Mixed Case"', extra: ['--distribution-column', 'tenant_id'] },
      { arg: '"my.schema"."Ev""t"', sqlName: '"my.schema"."Ev""t"', extra: ['--distribution-column', 'tenant_id', '--shard-count', '4'] },
    ];
    for (const c of cases) {
      // The first load creates the table, the second finds it (it used to fail with "already exists").
      for (const run of [1, 2]) {
        const r = await load(c.arg, file, c.extra);
        assert.equal(r.status, 0, `${c.arg} run ${run}: ${r.stderr}`);
        assert.equal(r.json?.rows, 3000);
        assert.equal(r.json?.path, 'direct', `${c.arg}: ${String(r.json?.reason)}`);
      }
      assert.equal(Number((await sql(`SELECT count(*) AS n FROM ${c.sqlName}`)).rows[0].n), 6000, c.arg);
      if (c.extra.length) assert.deepEqual((await checkPlacements(url, c.sqlName)).misplaced, [], c.arg);
    }
    assert.equal((await sql("SELECT to_regclass('\"rt_NewMixed\"') AS t")).rows[0].t, null, 'no case-preserved twin');
  });

  it('query history from pg_stat_statements moves the choice to the filtered column', async () => {
    await sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await sql('CREATE TABLE stock (store_id int, sku text, qty int)');
    await sql("INSERT INTO stock SELECT g % 400, 'sku-' || (g % 3000), g FROM generate_series(1, 5000) g");
    const lines = ['store_id,sku,qty'];
    for (let i = 1; i <= 30_000; i++) lines.push(`${i % 400},sku-${(i * 7) % 3000},${i % 50}`);
    const file = write('stock.csv', lines);
    const before = await plan('stock', file);
    assert.equal(before.distributionColumn, 'store_id');
    await withClient(url, async (c) => {
      for (let i = 0; i < 200; i++) await c.query('SELECT sum(qty) FROM stock WHERE sku = $1', [`sku-${i}`]);
      for (let i = 0; i < 20; i++) await c.query('SELECT sku, sum(qty) FROM stock WHERE qty > $1 GROUP BY sku', [i]);
    });
    const after = await plan('stock', file);
    assert.equal(after.distributionColumn, 'sku');
    assert.ok(after.reasons.some((r) => /equality filter in \d+% of the table's query calls/.test(r)), after.reasons.join(' | '));
    assert.ok(after.reasons.some((r) => /GROUP BY in/.test(r)), after.reasons.join(' | '));
  });

  it('from SQL: analyze_table on a staging table makes the CLI\'s choices, and distribute_table applies them', async () => {
    const stage = async (table: string, ddl: string, file: string) => {
      await sql(`CREATE TABLE ${table} ${ddl}`);
      await withClient(url, (c) => pipeline(createReadStream(file), c.query(pgCopyStreams.from(`COPY ${table} FROM STDIN WITH (FORMAT csv, HEADER true)`))));
      await sql(`ANALYZE ${table}`);
    };
    const datasets: { name: string; ddl: string; lines: string[] }[] = [
      { name: 'tenants', ddl: '(event_id bigint, tenant_id bigint, kind text, amount numeric)',
        lines: ['event_id,tenant_id,kind,amount', ...Array.from({ length: 45_000 }, (_, k) => { const i = k + 1; return `${i},${i % 3 === 0 ? 77 : 5000 + (i * 7919) % 2500},${['a', 'b'][i % 2]},${i % 90}`; })] },
      { name: 'sensors', ddl: '(reading_id bigint, sensor_id bigint, recorded_at timestamptz, value numeric)',
        lines: ['reading_id,sensor_id,recorded_at,value', ...Array.from({ length: 40_000 }, (_, k) => `${k + 1},${((k + 1) * 2654435761) % 700},${new Date(Date.UTC(2024, 0, 1) + k * 1000).toISOString()},${k % 97}`)] },
      { name: 'payments', ddl: '(payment_no bigint, payer bigint, total int)',
        lines: ['payment_no,payer,total', ...Array.from({ length: 25_000 }, (_, k) => `${200000 + k},${1 + (k * 53) % 5000},${k % 300}`)] },
      { name: 'regions', ddl: '(code text, name text)',
        lines: ['code,name', ...Array.from({ length: 150 }, (_, k) => `R${k},Region ${k}`)] },
    ];
    for (const d of datasets) {
      const file = write(`${d.name}.csv`, d.lines);
      await stage(`stage_${d.name}`, d.ddl, file);
      const cli = await plan(`${d.name}_cli`, file);
      const fromSql = (await sql('SELECT adaptive_load.analyze_table($1) AS p', [`stage_${d.name}`])).rows[0].p as Profile;
      // Colocating with any table of a colocation group is the same layout: compare the groups.
      const group = async (t: string | null) => (t === null ? null
        : (await sql('SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass', [t])).rows[0].colocationid as number);
      const choice = async (p: Profile) => ({ kind: p.kind, distributionColumn: p.distributionColumn, colocationGroup: await group(p.colocateWith), isolate: p.isolate });
      assert.deepEqual(await choice(fromSql), await choice(cli), `${d.name}: SQL ${JSON.stringify(fromSql.reasons)} vs CLI ${JSON.stringify(cli.reasons)}`);
      assert.ok(fromSql.candidates.length >= 2 && fromSql.candidates[0]!.reasons.length > 0);
    }
    await sql("CALL adaptive_load.distribute_table('stage_payments', 'payments_final')");
    assert.equal(Number((await sql('SELECT count(*) AS n FROM payments_final')).rows[0].n), 25_000);
    const dist = await sql("SELECT column_to_column_name(logicalrelid, partkey) AS c, colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'accounts'::regclass) AS colocated FROM pg_dist_partition WHERE logicalrelid = 'payments_final'::regclass");
    assert.deepEqual(dist.rows[0], { c: 'payer', colocated: true });
    assert.deepEqual((await checkPlacements(url, 'payments_final')).misplaced, []);
  });
});
