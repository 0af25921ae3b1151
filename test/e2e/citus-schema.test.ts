/**
 * Whole schemas onto a real Citus cluster (coordinator + 2 workers) with `plan --schema` and
 * `load --schema`: generated multi-tenant, star, orders and whale-tenant schemas, data made here.
 * For each: the plan is the expert's layout, every table ends distributed or reference as planned
 * (no Citus local table left), query results equal a plain PostgreSQL copy of the same files, and
 * a second run changes nothing. Also the issue's scenario (tables loaded one by one first), a
 * failed run continued, a chunked schema load killed mid-table and resumed, and
 * adaptive_load.analyze_schema agreeing with the CLI's plan.
 */
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { from as copyFrom } from 'pg-copy-streams';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import {
  multiTenantSchema, ordersSchema, qualify, starSchema, type ExpertLayout, type GeneratedSchema,
} from '../../scripts/schema-generators.js';
import { runCli } from '../support/cli.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus schema suite skipped: ${skip}.`);

describe('Citus suite: whole schemas', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let root: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const cli = (args: string[]) => runCli([...args, '--coordinator', url, '--json']);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    root = mkdtempSync(join(tmpdir(), 'cal-schema-test-'));
  });
  after(async () => cluster?.stop());

  async function create(schema: string, gen: GeneratedSchema): Promise<void> {
    await sql(`CREATE SCHEMA ${schema}`);
    await sql(qualify(gen.ddl, schema));
  }

  /** The same DDL and files in plain PostgreSQL tables (another schema, no Citus layout), via COPY. */
  async function plainCopy(schema: string, gen: GeneratedSchema, dir: string): Promise<void> {
    await create(schema, gen);
    await withClient(url, async (c) => {
      for (const t of gen.tables) {
        await pipeline(createReadStream(join(dir, `${t}.csv`)), c.query(copyFrom(`COPY ${schema}.${t} FROM STDIN (FORMAT csv, HEADER true)`)));
      }
    });
  }

  /** Each table's layout: its distribution column, 'reference', 'citus-local' or 'local', with its colocation id. */
  async function layout(schema: string): Promise<Record<string, { kind: string; colocation: number | null }>> {
    const r = await sql(`SELECT c.relname AS t, p.partmethod, p.repmodel, p.colocationid,
                                CASE WHEN p.partkey IS NULL THEN NULL ELSE column_to_column_name(p.logicalrelid, p.partkey) END AS col
                           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
                          WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1`, [schema]);
    return Object.fromEntries(r.rows.map((x) => [x.t, {
      kind: x.partmethod === 'h' ? x.col : x.partmethod === 'n' ? (x.repmodel === 't' ? 'reference' : 'citus-local') : 'local',
      colocation: x.partmethod === 'h' ? x.colocationid : null,
    }]));
  }

  async function assertExpertLayout(schema: string, expert: ExpertLayout): Promise<void> {
    const l = await layout(schema);
    assert.deepEqual(Object.fromEntries(Object.entries(l).map(([t, v]) => [t, v.kind])), expert.tables, 'every table distributed or reference as the expert would');
    for (const group of expert.colocated) {
      assert.equal(new Set(group.map((t) => l[t]!.colocation)).size, 1, `${group.join(', ')} share one colocation group`);
    }
  }

  /** The plan's layout in the same shape as ExpertLayout.tables. */
  const planLayout = (plan: { tables: { table: string; kind: string; distributionColumn: string | null }[] }) =>
    Object.fromEntries(plan.tables.map((t) => [t.table.slice(t.table.indexOf('.') + 1), t.kind === 'reference' ? 'reference' : t.distributionColumn]));

  async function assertSameResults(schema: string, plain: string, gen: GeneratedSchema): Promise<void> {
    for (const q of gen.queries) {
      const params = q.kind === 'tenant' ? [gen.tenant] : [];
      const a = await sql(qualify(q.sql, schema), params);
      const b = await sql(qualify(q.sql, plain), params);
      assert.ok(b.rows.length > 0, `${q.name} returns rows`);
      assert.deepEqual(a.rows, b.rows, q.name);
    }
  }

  async function assertCounts(schema: string, gen: GeneratedSchema): Promise<void> {
    for (const t of gen.tables) {
      assert.equal(Number((await sql(`SELECT count(*) AS n FROM ${schema}.${t}`)).rows[0].n), gen.rows[t], `${t} holds its file's rows`);
    }
  }

  /** Shards and placements of the schema's tables: a second run must leave them exactly as they are. */
  const shardSnapshot = async (schema: string) => (await sql(
    `SELECT s.logicalrelid::text AS t, s.shardid::text, s.shardminvalue, s.shardmaxvalue, p.groupid
       FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_class c ON c.oid = s.logicalrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1, 2, 5`, [schema])).rows;

  async function assertRerunChangesNothing(schema: string, sources: string | string[], gen: GeneratedSchema, withoutFile: string[] = []): Promise<void> {
    const shards = await shardSnapshot(schema);
    const again = await cli(['load', '--schema', schema, ...(Array.isArray(sources) ? sources : [sources])]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(again.json?.steps, [], 'no layout change on a second run');
    assert.deepEqual(Object.fromEntries((again.json?.tables as { table: string; status: string }[]).map((t) => [t.table.slice(schema.length + 1), t.status])),
      Object.fromEntries(gen.tables.map((t) => [t, withoutFile.includes(t) ? 'no-source' : 'already-loaded'])));
    assert.deepEqual(await shardSnapshot(schema), shards);
    await assertCounts(schema, gen);
  }

  it('multi-tenant: plan --schema is the expert layout; load --schema lays it out and loads every file; a re-run changes nothing', async () => {
    const dir = join(root, 'mt');
    const gen = multiTenantSchema(dir, { companies: 8, campaignsPerCompany: 3, adsPerCampaign: 4, clicks: 3000, impressions: 4000 });
    await create('mt', gen);
    const plan = await cli(['plan', '--schema', 'mt', dir]);
    assert.equal(plan.status, 0, plan.stderr);
    const p = plan.json?.plan as { tables: { table: string; kind: string; distributionColumn: string | null; group: string | null }[]; groups: { isolate: unknown[] }[] };
    assert.deepEqual(planLayout(p), gen.expert.tables);
    assert.deepEqual(new Set(p.tables.map((t) => t.group)), new Set(['mt.companies']));
    assert.deepEqual(p.groups[0]!.isolate, [], 'no tenant is much heavier than the others');
    assert.deepEqual(await layout('mt').then((l) => Object.values(l).map((v) => v.kind)), ['local', 'local', 'local', 'local', 'local'], 'plan changes nothing');
    const text = await runCli(['plan', '--schema', 'mt', dir, '--coordinator', url]);
    assert.match(text.stdout, /colocation group companies\.id \(bigint\)/);
    assert.match(text.stdout, /create_distributed_table\('mt\.impressions', 'advertiser_id', colocate_with => 'mt\.companies'\)/);

    const r = await cli(['load', '--schema', 'mt', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.atomicity, 'per-table');
    const tables = r.json?.tables as { table: string; status: string; rows: number; path: string; verified: boolean }[];
    assert.deepEqual(tables.map((t) => [t.table, t.status, t.path, t.verified]),
      gen.tables.map((t) => [`mt.${t}`, 'loaded', 'direct', true]), 'every file straight into its shards, parents first');
    await assertExpertLayout('mt', gen.expert);
    await assertCounts('mt', gen);
    await plainCopy('plain_mt', gen, dir);
    await assertSameResults('mt', 'plain_mt', gen);
    // The foreign keys are all there again, on the distributed tables.
    const fks = await sql("SELECT count(*)::int AS n FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'mt' AND k.contype = 'f'");
    assert.equal(fks.rows[0].n, 4);
    await assertRerunChangesNothing('mt', dir, gen);

    // The same plan from SQL.
    const a = (await sql("SELECT adaptive_load.analyze_schema('mt') AS j")).rows[0].j;
    assert.deepEqual(planLayout(a), gen.expert.tables);
    assert.deepEqual(a.groups.map((g: { root: string; tables: string[] }) => [g.root, g.tables.length]), [['mt.companies', 5]]);
    assert.ok(a.foreignKeys.every((f: { keep: boolean }) => f.keep));

    // A file rewritten after its table was loaded is neither skipped nor loaded twice in silence:
    // the run stops and says what to do; with the table emptied, the new file loads.
    // The same bytes with a new mtime (a copy, a touch) are the same file: nothing to load.
    utimesSync(join(dir, 'companies.csv'), new Date(), new Date());
    await assertRerunChangesNothing('mt', dir, gen);
    const clicksFile = join(dir, 'clicks.csv');
    const lines = readFileSync(clicksFile, 'utf8').trimEnd().split('\n');
    writeFileSync(clicksFile, `${lines.slice(0, -1).join('\n')}\n`);
    const changed = await cli(['load', '--schema', 'mt', dir]);
    assert.equal(changed.status, 1);
    const clicksOutcome = (changed.json?.tables as { table: string; status: string; error?: string }[]).find((t) => t.table === 'mt.clicks')!;
    assert.equal(clicksOutcome.status, 'failed');
    assert.match(clicksOutcome.error ?? '', /mt\.clicks: .*clicks\.csv changed since load job \d+ loaded it \(.*\); a schema load loads a file once\. To replace .* empty the table \(TRUNCATE\)/);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM mt.clicks')).rows[0].n), gen.rows.clicks, 'nothing loaded twice');
    await sql('TRUNCATE mt.clicks');
    const reloaded = await cli(['load', '--schema', 'mt', dir]);
    assert.equal(reloaded.status, 0, reloaded.stderr);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM mt.clicks')).rows[0].n), gen.rows.clicks! - 1, 'the new file, once');
  });

  it("the issue's scenario: tables loaded one by one made the tenant table reference and its children Citus-local; load --schema fixes it", async () => {
    const dir = join(root, 'issue');
    const gen = multiTenantSchema(dir, { companies: 8, campaignsPerCompany: 3, adsPerCampaign: 4, clicks: 2000, impressions: 2000 }, 11);
    await create('issue', gen);
    // The first load made the 8-row tenant table a reference table. The per-table planner did so
    // on its own when the issue was filed; since the tenant-root rule it distributes the table by
    // id, so the saved profile pins the issue's outcome and this test keeps testing the fix.
    const planned = await cli(['plan', join(dir, 'companies.csv'), '-t', 'issue.companies']);
    assert.equal(planned.status, 0, planned.stderr);
    const profileFile = join(root, 'companies-profile.json');
    writeFileSync(profileFile, JSON.stringify({ ...planned.json, kind: 'reference', distributionColumn: null, shardCount: null, colocateWith: null, isolate: [], splitPoints: [], shards: [], placement: [] }));
    const first = await cli(['load', '-t', 'issue.companies', join(dir, 'companies.csv'), '--profile', profileFile]);
    assert.equal(first.status, 0, first.stderr);
    for (const t of gen.tables.slice(1)) {
      const one = await cli(['load', '-t', `issue.${t}`, join(dir, `${t}.csv`)]);
      assert.equal(one.status, 0, one.stderr);
    }
    const before = await layout('issue');
    assert.equal(before.companies!.kind, 'reference');
    assert.deepEqual(['campaigns', 'ads', 'clicks', 'impressions'].map((t) => before[t]!.kind), ['citus-local', 'citus-local', 'citus-local', 'citus-local'],
      'Citus converted every table with a foreign key to it into a Citus-managed local table');

    const plan = await cli(['plan', '--schema', 'issue', dir]);
    assert.equal(plan.status, 0, plan.stderr);
    assert.deepEqual(planLayout(plan.json?.plan as never), gen.expert.tables, 'the plan does not depend on the load order');
    const steps = plan.json?.steps as { kind: string; sql: string }[];
    assert.ok(steps.some((s) => s.kind === 'drop-foreign-key' && /DROP CONSTRAINT/.test(s.sql)), 'the plan shows the foreign key DDL');
    assert.ok(steps.some((s) => s.kind === 'add-foreign-key' && /ADD CONSTRAINT .* FOREIGN KEY/.test(s.sql)));
    assert.ok(steps.some((s) => s.kind === 'undistribute' && /undistribute_table\('issue\.companies'\)/.test(s.sql)));

    const r = await cli(['load', '--schema', 'issue', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((r.json?.tables as { status: string }[]).map((t) => t.status), gen.tables.map(() => 'already-loaded'),
      'the files loaded before are not loaded twice');
    await assertExpertLayout('issue', gen.expert);
    await assertCounts('issue', gen);
    await plainCopy('plain_issue', gen, dir);
    await assertSameResults('issue', 'plain_issue', gen);
    await assertRerunChangesNothing('issue', dir, gen);
  });

  it('a star schema: real dimensions become reference tables, the fact table is distributed', async () => {
    const dir = join(root, 'star');
    const gen = starSchema(dir, { products: 300, stores: 12, days: 90, sales: 6000 });
    await create('star', gen);
    // dates already holds its rows (put there without the tool) and has no file: a source too.
    await withClient(url, (c) => pipeline(createReadStream(join(dir, 'dates.csv')), c.query(copyFrom('COPY star.dates FROM STDIN (FORMAT csv, HEADER true)'))));
    const r = await cli(['load', '--schema', 'star', ...['products', 'stores', 'sales'].map((t) => join(dir, `${t}.csv`))]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(planLayout(r.json?.plan as never), gen.expert.tables);
    const dates = (r.json?.tables as { table: string; status: string; verified: boolean; rowsAfter: number }[]).find((t) => t.table === 'star.dates')!;
    assert.deepEqual([dates.status, dates.verified, dates.rowsAfter], ['no-source', true, gen.rows.dates]);
    await assertExpertLayout('star', gen.expert);
    await assertCounts('star', gen);
    await plainCopy('plain_star', gen, dir);
    await assertSameResults('star', 'plain_star', gen);
    await assertRerunChangesNothing('star', ['products', 'stores', 'sales'].map((t) => join(dir, `${t}.csv`)), gen, ['dates']);
    assert.deepEqual(planLayout((await sql("SELECT adaptive_load.analyze_schema('star') AS j")).rows[0].j), gen.expert.tables);
  });

  it('orders with line items: colocated by order_id, customers and products as reference tables', async () => {
    const dir = join(root, 'ord');
    const gen = ordersSchema(dir, { customers: 400, products: 150, orders: 3000, linesPerOrder: 3 });
    await create('ord', gen);
    // Sources as table=file pairs, in an order that is not the dependency order.
    const r = await cli(['load', '--schema', 'ord', ...[...gen.tables].reverse().map((t) => `${t}=${join(dir, `${t}.csv`)}`)]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((r.json?.tables as { table: string }[]).map((t) => t.table).slice(2), ['ord.orders', 'ord.line_items'], 'loaded parents first');
    await assertExpertLayout('ord', gen.expert);
    await assertCounts('ord', gen);
    await plainCopy('plain_ord', gen, dir);
    await assertSameResults('ord', 'plain_ord', gen);
    await assertRerunChangesNothing('ord', dir, gen);
    assert.deepEqual(planLayout((await sql("SELECT adaptive_load.analyze_schema('ord') AS j")).rows[0].j), gen.expert.tables);
  });

  it('a whale tenant gets a shard of its own in every table of the group (isolate_tenant_to_new_shard CASCADE)', async () => {
    const dir = join(root, 'whale');
    const gen = multiTenantSchema(dir, { companies: 8, campaignsPerCompany: 3, adsPerCampaign: 4, clicks: 4000, impressions: 4000, whaleShare: 0.5 }, 5);
    await create('whale', gen);
    const r = await cli(['load', '--schema', 'whale', dir]);
    assert.equal(r.status, 0, r.stderr);
    const groups = (r.json?.plan as { groups: { isolate: { value: string }[] }[] }).groups;
    assert.deepEqual(groups[0]!.isolate.map((t) => t.value), gen.expert.isolated!.companies);
    assert.ok((r.json?.steps as { kind: string }[]).some((s) => s.kind === 'isolate-tenant'));
    await assertExpertLayout('whale', gen.expert);
    for (const t of gen.tables) {
      const col = gen.expert.tables[t]!;
      const s = await sql(`SELECT s.shardminvalue = s.shardmaxvalue AS alone, (SELECT count(*) FROM whale.${t} WHERE ${col} = 1)::int AS whale_rows
                             FROM pg_dist_shard s WHERE s.shardid = get_shard_id_for_distribution_column('whale.${t}', 1)`);
      assert.equal(s.rows[0].alone, true, `the whale has a shard of its own in ${t}`);
    }
    await assertCounts('whale', gen);
    await plainCopy('plain_whale', gen, dir);
    await assertSameResults('whale', 'plain_whale', gen);
    await assertRerunChangesNothing('whale', dir, gen);
    const a = (await sql("SELECT adaptive_load.analyze_schema('whale') AS j")).rows[0].j;
    assert.deepEqual(a.groups[0].isolate.map((t: { value: string }) => t.value), ['1']);
  });

  it('a failed table stops the run with a report of what finished; the next run continues', async () => {
    const dir = join(root, 'fail');
    const gen = multiTenantSchema(dir, { companies: 6, campaignsPerCompany: 2, adsPerCampaign: 3, clicks: 500, impressions: 500 }, 9);
    await create('fail', gen);
    const clicks = join(dir, 'clicks.csv');
    const good = readFileSync(clicks, 'utf8');
    // A click on an ad that does not exist: the foreign key, kept on the shards, refuses it.
    writeFileSync(clicks, `${good}1,999999,987654,2026-01-02T00:00:00.000Z,1.0000\n`);
    const r = await cli(['load', '--schema', 'fail', dir]);
    assert.equal(r.status, 1, r.stdout);
    assert.equal(r.json?.ok, false);
    const status = Object.fromEntries((r.json?.tables as { table: string; status: string }[]).map((t) => [t.table.slice(5), t.status]));
    assert.deepEqual(status, { companies: 'loaded', campaigns: 'loaded', ads: 'loaded', clicks: 'failed', impressions: 'not-reached' });
    assert.equal(Number((await sql('SELECT count(*) AS n FROM fail.clicks')).rows[0].n), 0, 'the failed table load left nothing');
    const failedJob = (await sql('SELECT status, tables_done, tables_left FROM adaptive_load.schema_loads WHERE schema_job_id = $1', [r.json?.schemaJobId])).rows[0];
    assert.deepEqual([failedJob.status, Number(failedJob.tables_done), Number(failedJob.tables_left)], ['failed', 3, 2]);
    await assertExpertLayout('fail', gen.expert);

    writeFileSync(clicks, good);
    const again = await cli(['load', '--schema', 'fail', dir]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual((again.json?.tables as { status: string }[]).map((t) => t.status),
      ['already-loaded', 'already-loaded', 'already-loaded', 'loaded', 'loaded']);
    await assertCounts('fail', gen);
    assert.equal(again.json?.schemaJobId, r.json?.schemaJobId, 'the re-run continues the failed schema job');
    assert.deepEqual(again.json?.continued, { runs: 2, tables: ['fail.clicks', 'fail.impressions'] });
    const job = (await sql('SELECT status, tables_done, tables_left, error FROM adaptive_load.schema_loads WHERE schema_job_id = $1', [r.json?.schemaJobId])).rows[0];
    assert.deepEqual([job.status, Number(job.tables_done), Number(job.tables_left), job.error], ['committed', 5, 0, null]);

    // A run that stopped between dropping a foreign key and re-creating it left it recorded as
    // pending: the next run re-creates it (and only that).
    const def = (await sql("SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'fail.clicks'::regclass AND contype = 'f'")).rows[0].d;
    await sql(`INSERT INTO adaptive_load.schema_pending_keys (table_name, constraint_name, schema_name, columns, ref_table, ref_columns, definition)
               VALUES ('fail.clicks', 'clicks_company_id_ad_id_fkey', 'fail', '{company_id,ad_id}', 'fail.ads', '{company_id,id}', $1)`, [def]);
    await sql('ALTER TABLE fail.clicks DROP CONSTRAINT clicks_company_id_ad_id_fkey');
    const mended = await cli(['load', '--schema', 'fail', dir]);
    assert.equal(mended.status, 0, mended.stderr);
    assert.deepEqual((mended.json?.steps as { kind: string; table: string }[]).map((s) => [s.kind, s.table]), [['add-foreign-key', 'fail.clicks']]);
    assert.equal((await sql("SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'fail.clicks'::regclass AND contype = 'f'")).rows[0].n, 1);
    assert.equal((await sql('SELECT count(*)::int AS n FROM adaptive_load.schema_pending_keys')).rows[0].n, 0);
  });

  /** Runs test/support/schema-load-and-die.ts; a hung child is killed after `boundMs` and reported. */
  function runSchemaChild(args: Record<string, unknown>, boundMs = 300_000): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string; hung: boolean }> {
    const script = fileURLToPath(new URL('../support/schema-load-and-die.js', import.meta.url));
    return new Promise((done, reject) => {
      const child = spawn(process.execPath, [script, JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let hung = false;
      const timer = setTimeout(() => { hung = true; child.kill('SIGKILL'); }, boundMs);
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('error', reject);
      child.on('close', (status, signal) => { clearTimeout(timer); done({ status, signal, stderr, hung }); });
    });
  }

  /** Rows and an order-independent checksum of every row's text. */
  const fingerprint = async (table: string) => (await sql(
    `SELECT count(*)::int AS n, coalesce(sum(hashtext(t::text)::bigint), 0)::text AS h FROM ${table} t`)).rows[0];

  it('a chunked schema load (--commit-every) killed in the middle of a table is resumed by the next run, as one schema job', async () => {
    const dir = join(root, 'chunk');
    const gen = multiTenantSchema(dir, { companies: 6, campaignsPerCompany: 2, adsPerCampaign: 3, clicks: 3000, impressions: 1500 }, 13);
    await create('chunk', gen);
    // Killed after clicks' third chunk's commit record, before its COMMIT PREPARED: two chunks are
    // in the table, the third is prepared on the workers, impressions is not reached.
    const killed = await runSchemaChild({ coordinator: url, schema: 'chunk', sources: [dir], commitEvery: '500',
      dieTable: 'chunk.clicks', diePhase: 'commit-recorded', dieAt: 3 });
    assert.equal(killed.hung, false, 'the schema load child finished within its bound');
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const partial = Number((await sql('SELECT count(*) AS n FROM chunk.clicks')).rows[0].n);
    assert.ok(partial >= 1000 && partial < gen.rows.clicks!, `clicks was cut in the middle (${partial} rows)`);
    const running = (await sql("SELECT * FROM adaptive_load.schema_loads WHERE schema_name = 'chunk'")).rows;
    assert.equal(running.length, 1);
    assert.deepEqual([running[0].status, Number(running[0].tables_total), Number(running[0].tables_done), Number(running[0].tables_left)],
      ['running', 5, 3, 2], 'the schema job shows what is done and what is left');

    const again = await cli(['load', '--schema', 'chunk', dir, '--commit-every', '500']);
    assert.equal(again.status, 0, `${again.stderr}${JSON.stringify(again.json?.error)}`);
    const status = Object.fromEntries((again.json?.tables as { table: string; status: string }[]).map((t) => [t.table.slice(6), t.status]));
    assert.deepEqual(status, { companies: 'already-loaded', campaigns: 'already-loaded', ads: 'already-loaded', clicks: 'resumed', impressions: 'loaded' });
    assert.equal(again.json?.schemaJobId, Number(running[0].schema_job_id), 'the re-run continues the same schema job');
    assert.deepEqual(again.json?.continued, { runs: 2, tables: ['chunk.clicks', 'chunk.impressions'] });
    assert.ok((again.json?.tables as { verified: boolean }[]).every((t) => t.verified), 'every table holds exactly its rows');

    await plainCopy('plain_chunk', gen, dir);
    for (const t of gen.tables) assert.deepEqual(await fingerprint(`chunk.${t}`), await fingerprint(`plain_chunk.${t}`), `${t}: same rows as its file`);
    await assertCounts('chunk', gen);
    await assertExpertLayout('chunk', gen.expert);
    for (const node of cluster.nodes) {
      assert.equal((await withClient(node.url, (c) => c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts'))).rows[0].n, 0, `no prepared transaction left on ${node.url}`);
    }
    const done = (await sql('SELECT * FROM adaptive_load.schema_loads WHERE schema_job_id = $1', [running[0].schema_job_id])).rows[0];
    assert.deepEqual([done.status, done.runs, Number(done.tables_done), Number(done.tables_left)], ['committed', 2, 5, 0]);
    // One chunked job for clicks, resumed (its chunks before the kill count), not a second load from row one.
    const clicksJob = (await sql("SELECT status, chunks_done FROM adaptive_load.loads WHERE table_name = 'chunk.clicks'")).rows;
    assert.deepEqual(clicksJob.map((j) => j.status), ['committed']);
    assert.ok(clicksJob[0].chunks_done >= 3, `the job's chunks: ${clicksJob[0].chunks_done}`);
    assert.deepEqual((done.tables as { table: string; load_job_id: number }[]).find((t) => t.table === 'chunk.clicks')?.load_job_id,
      Number((await sql("SELECT job_id FROM adaptive_load.loads WHERE table_name = 'chunk.clicks'")).rows[0].job_id), 'the schema job lists it');
  });

  it('says what is wrong with the command: a missing schema, a file for no table', async () => {
    const missing = await cli(['plan', '--schema', 'nosuch']);
    assert.equal(missing.status, 2);
    assert.match(String((missing.json?.error as { message: string }).message), /schema nosuch does not exist/);
    // load is the default command, for a schema too.
    const byDefault = await cli(['--schema', 'nosuch']);
    assert.equal(byDefault.status, 2);
    assert.match(String((byDefault.json?.error as { message: string }).message), /schema nosuch does not exist/);
    const dir = join(root, 'usage');
    await create('usage', multiTenantSchema(dir, { companies: 2, campaignsPerCompany: 1, adsPerCampaign: 1, clicks: 5, impressions: 5 }));
    const file = join(dir, 'companies.csv');
    const stray = await cli(['load', '--schema', 'usage', `nosuchtable=${file}`]);
    assert.equal(stray.status, 2);
    assert.match(String((stray.json?.error as { message: string }).message), /the schema has no table nosuchtable \(tables: ads, campaigns, clicks, companies, impressions\)/);
    const other = join(root, 'orders.csv');
    writeFileSync(other, 'a,b\n1,2\n');
    const unknown = await cli(['plan', '--schema', 'usage', other]);
    assert.equal(unknown.status, 2);
    assert.match(String((unknown.json?.error as { message: string }).message), /the schema has no table orders/);
  });
});
