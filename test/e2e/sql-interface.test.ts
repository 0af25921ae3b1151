/**
 * The SQL-callable side and the reports, on real PostgreSQL (and Citus when installed): a load
 * requested from SQL reaches the daemon through the trigger's NOTIFY and is recorded on the
 * request row; the DBA views answer; PUBLIC cannot write the schema; every report format renders,
 * text within 80 columns, HTML self-contained and not blank in headless Chromium.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { startRequestListener } from '../../src/monitor/request-runner.js';
import { runCli } from '../support/cli.js';
import { inkShare } from '../support/png.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) console.log('HTML screenshot check skipped: no chromium (apt-get install chromium)');

describe('SQL interface, requests and reports', () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));

  before(async () => {
    cluster = await LocalCluster.start({ workers: citusUnavailableReason() ? 0 : 2 });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-sql-test-'));
    await withClient(url, (c) => migrate(c));
    await sql(ORDERS_DDL);
    if (cluster.citus) await sql("SELECT create_distributed_table('orders', 'customer_id', shard_count => 8)");
  });
  after(async () => cluster?.stop());

  it('a load requested from SQL reaches the daemon through NOTIFY and is recorded on the request row', async () => {
    const file = join(dir, 'orders.csv');
    await generateOrdersCsv(file, { rows: 5000, seed: 9 });
    const listener = await startRequestListener(resolveConnectionConfig({ coordinator: url }), { allowDirs: [dir] });
    try {
      const id = (await sql("SELECT adaptive_load.request_load('orders', $1, '{\"maxErrors\": 0}') AS id", [file])).rows[0].id as string;
      let row: { status: string; outcome: { rows: number; path: string } | null; error: string | null; started_at: Date | null; finished_at: Date | null } | undefined;
      for (let i = 0; i < 200; i++) {
        row = (await sql('SELECT status, outcome, error, started_at, finished_at FROM adaptive_load.requests WHERE request_id = $1', [id])).rows[0];
        if (row?.status === 'done' || row?.status === 'failed') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(row?.status, 'done', row?.error ?? 'request not finished');
      assert.equal(row!.outcome!.rows, 5000);
      assert.equal(row!.outcome!.path, cluster.citus ? 'direct' : 'coordinator');
      assert.ok(row!.started_at! <= row!.finished_at!);
      const bad = (await sql("SELECT adaptive_load.request_load('orders', $1) AS id", [join(dir, 'nonexistent', 'orders.csv')])).rows[0].id as string;
      for (let i = 0; i < 100; i++) {
        row = (await sql('SELECT status, outcome, error, started_at, finished_at FROM adaptive_load.requests WHERE request_id = $1', [bad])).rows[0];
        if (row?.status !== 'pending' && row?.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(row?.status, 'failed');
      assert.match(row!.error!, /\/nonexistent\/orders\.csv: no such file/);
      if (cluster.citus) {
        const rb = (await sql('SELECT adaptive_load.request_rebalance(NULL, true) AS id')).rows[0].id as string;
        for (let i = 0; i < 200; i++) {
          row = (await sql('SELECT status, outcome, error, started_at, finished_at FROM adaptive_load.requests WHERE request_id = $1', [rb])).rows[0];
          if (row?.status === 'done' || row?.status === 'failed') break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(row?.status, 'done', row?.error ?? 'rebalance request not finished');
        assert.ok(Array.isArray((row!.outcome as unknown as { moves: unknown[] }).moves));
        assert.equal((row!.outcome as unknown as { applied: boolean }).applied, false, 'a dry run moves nothing');
      }
    } finally {
      await listener.stop();
    }
    assert.equal(Number((await sql('SELECT count(*) AS n FROM orders')).rows[0].n), 5000);
  });

  it('the DBA views answer, and PUBLIC cannot write the schema', async () => {
    const loads = await sql("SELECT status, rows_loaded, rows_per_second FROM adaptive_load.loads WHERE table_name = 'public.orders'");
    assert.equal(loads.rows[0].status, 'committed');
    assert.equal(Number(loads.rows[0].rows_loaded), 5000);
    for (const v of ['current_profiles', 'predictions_vs_actuals', 'actions_taken']) await sql(`SELECT * FROM adaptive_load.${v} LIMIT 1`);
    await sql('CREATE ROLE report_reader LOGIN');
    const denied = await withClient(url.replace('postgres@', 'report_reader@'), (c) => c.query('CREATE TABLE adaptive_load.intruder (x int)').then(() => 'created', (e: Error) => e.message));
    assert.match(denied, /permission denied for schema adaptive_load/);
  });

  it('every routine of the schema resolves names in pg_catalog only, and a schema owned by a stranger is refused', async () => {
    const routines = await sql(`SELECT p.oid::regprocedure::text AS f, coalesce(array_to_string(p.proconfig, ','), '') AS config
                                  FROM pg_proc p WHERE p.pronamespace = 'adaptive_load'::regnamespace`);
    assert.ok(routines.rows.length >= 8);
    for (const r of routines.rows) assert.match(r.config, /search_path=pg_catalog, pg_temp/, r.f);
    const definers = await sql("SELECT proname FROM pg_proc WHERE pronamespace = 'adaptive_load'::regnamespace AND prosecdef ORDER BY 1");
    assert.deepEqual(definers.rows.map((r) => r.proname), ['request_load', 'request_load_from_table', 'request_rebalance']);
    // A target name is an identifier, never SQL text.
    const injected = await sql("CALL adaptive_load.distribute_table('orders', 'x (a int); CREATE TABLE injected_dt (y int); --')").then(() => 'ran', (e: Error) => e.message);
    assert.match(injected, /not a valid identifier/);
    assert.equal((await sql("SELECT to_regclass('injected_dt')::text AS t")).rows[0].t, null);
    await sql('CREATE DATABASE planted');
    await sql('CREATE ROLE mallory');
    const planted = url.replace(/\/postgres$/, '/planted');
    await withClient(planted, (c) => c.query('CREATE SCHEMA adaptive_load AUTHORIZATION mallory'));
    const refused = await withClient(planted, (c) => migrate(c).then(() => 'migrated', (e: Error) => e.message));
    assert.match(refused, /schema adaptive_load is owned by mallory, which is neither postgres/);
  });

  it('analyze_table refuses a sample_percent outside (0, 100] with a clear error, and keeps its pinned search_path', async () => {
    for (const pct of ['0', '-5', '100.5', "'NaN'"]) {
      await assert.rejects(sql(`SELECT adaptive_load.analyze_table('orders', ${pct})`), (e: Error & { code?: string }) => {
        assert.match(e.message, /^sample_percent must be greater than 0 and at most 100 \(or NULL for a 20,000-row sample\), got /);
        assert.equal(e.code, '22023');
        return true;
      }, pct);
    }
    const ok = await sql("SELECT adaptive_load.analyze_table('orders', 100) AS p");
    assert.ok(ok.rows[0].p.kind);
    const config = await sql("SELECT proconfig FROM pg_proc WHERE oid = 'adaptive_load.analyze_table(regclass, float8, bigint)'::regprocedure");
    assert.deepEqual(config.rows[0].proconfig, ['search_path=pg_catalog, pg_temp']);
  });

  it('renders text within 80 columns, JSON, Markdown, and a self-contained HTML page', async () => {
    const text = await runCli(['report', '--coordinator', url]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /recent loads/);
    for (const line of text.stdout.split('\n')) assert.ok([...line].length <= 80, `line over 80 columns: ${line}`);
    const json = await runCli(['report', '--format', 'json', '--coordinator', url]);
    const data = JSON.parse(json.stdout) as { loads: { rows: number }[]; tables: { table: string; nodes: unknown[] }[] };
    assert.equal(data.loads[0]!.rows, 5000);
    if (cluster.citus) assert.equal(data.tables.find((t) => t.table === 'orders')!.nodes.length, 2);
    const md = await runCli(['report', '--format', 'markdown', '--coordinator', url]);
    assert.match(md.stdout, /^# citus-adaptive-load report/);
    assert.match(md.stdout, /\| job \| table \| status \| rows \| path \| seconds \|/);
    const html = join(dir, 'report.html');
    const h = await runCli(['report', '--format', 'html', '--out', html, '--coordinator', url]);
    assert.equal(h.status, 0, h.stderr);
    const page = readFileSync(html, 'utf8');
    assert.match(page, /^<!doctype html>/);
    assert.doesNotMatch(page, /<(script|link|img)\b|src=|href=/i, 'self-contained: nothing fetched');
    if (cluster.citus) assert.match(page, /<svg[^>]*aria-label="size and predicted load per node"/);
    if (CHROMIUM) {
      const screenshot = (page: string) => {
        const shot = `${page}.png`;
        const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(join(tmpdir(), 'cal-chromium-'))}`, '--window-size=1000,1200',
          `--screenshot=${shot}`, `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
        assert.ok(existsSync(shot), `no screenshot: ${r.stderr}`);
        return inkShare(readFileSync(shot));
      };
      const ink = screenshot(html);
      assert.ok(ink > 0.01, `the rendered report looks blank (${(ink * 100).toFixed(2)}% non-white pixels)`);
      // The check can fail: an empty page reads as blank.
      const empty = join(dir, 'empty.html');
      writeFileSync(empty, '<!doctype html><html><body></body></html>');
      assert.ok(screenshot(empty) < 0.001);
    }
  });
});
