/**
 * Hot tenants on real Citus with tenant statistics off (the default): one monitor --once
 * --rebalance cycle finds a whale from a sample of its shard, isolates it with CASCADE (every
 * table of the group keeps matching ranges), moves it off its node so the busiest/mean node load
 * in calls falls, and records the action with an undo that works; the stored profile's heavy
 * hitters and the shard sample each find the tenant alone; a hot shard of many equal tenants is
 * split, not isolated; tune --apply turns tenant statistics on with an exact undo.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePng, inkShare, isInk } from '../support/png.js';
import { nodeBars, overTime, STYLE } from '../../src/report/render-html.js';
import type { ReportData, TableReport } from '../../src/report/report-data.js';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { resolveConnectionConfig, type ConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { findShardTenants } from '../../src/rebalance/hot-tenant.js';
import { runCli } from '../support/cli.js';
import type { MonitorResult } from '../../src/monitor/monitor.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** A headless Chromium screenshot of `html` (1000x1200). */
function screenshot(html: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'cal-hot-report-'));
  const page = join(dir, 'page.html');
  writeFileSync(page, html);
  const shot = `${page}.png`;
  const r = spawnSync(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--force-device-scale-factor=1', `--user-data-dir=${join(dir, 'profile')}`,
    '--window-size=1000,1200', `--screenshot=${shot}`, `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
  assert.ok(existsSync(shot), `no screenshot: ${r.stderr}`);
  return readFileSync(shot);
}

/** A chart alone at the page's top left corner, styled as in the report. */
const chartPage = (svg: string) => `<!doctype html><html><head><meta charset="utf-8"><style>${STYLE} body{margin:0!important;max-width:none!important}</style></head><body>${svg}</body></html>`;

const skip = citusUnavailableReason();
if (skip) console.log(`Citus hot-tenant suite skipped: ${skip}.`);

describe('Citus suite: hot tenants without tenant statistics', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let conn: ConnectionConfig;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const monitor = async (extra: string[] = []) => {
    const r = await runCli(['monitor', '--once', '--coordinator', url, '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return r.json as unknown as MonitorResult;
  };
  /** Calls per worker of statements on `table`'s shards, cumulative (pg_stat_statements). */
  const callsPerWorker = async (table: string) => Promise.all(cluster.workers.map((w) => withClient(w.url, async (c) => Number((await c.query(
    "SELECT coalesce(sum(calls), 0)::text AS n FROM pg_stat_statements WHERE query LIKE $1 AND query NOT LIKE '%pg_stat_statements%'", [`%${table}\\_%`])).rows[0].n))));
  const busiestOverMean = (xs: number[]) => Math.max(...xs) / (xs.reduce((a, b) => a + b, 0) / xs.length);
  /** `queries` lookups, half of them for `whale`, the rest spread over tenants 2..tenants. */
  const workload = async (table: string, queries: number, whale: number, tenants: number) => withClient(url, async (c) => {
    for (let i = 0; i < queries; i++) {
      await c.query(`SELECT count(*) FROM ${table} WHERE tenant_id = $1`, [i % 2 === 0 ? whale : 2 + ((i * 7919) % (tenants - 1))]);
    }
  });
  const shardOf = async (table: string, value: string | number) =>
    (await sql('SELECT get_shard_id_for_distribution_column($1::regclass, $2::text)::text AS s', [table, String(value)])).rows[0].s as string;
  const nodeOf = async (shardId: string) => (await sql(
    "SELECT n.nodename || ':' || n.nodeport AS node FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $1", [shardId])).rows[0].node as string;
  const ranges = async (table: string) => (await sql(
    'SELECT shardminvalue::int AS lo, shardmaxvalue::int AS hi FROM pg_dist_shard WHERE logicalrelid = $1::regclass ORDER BY 1', [table])).rows.map((r) => `${r.lo}..${r.hi}`);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    conn = resolveConnectionConfig({ coordinator: url });
    await sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await withClient(url, (c) => migrate(c));
    assert.equal((await sql("SELECT current_setting('citus.stat_tenants_track') AS v")).rows[0].v, 'none');
  });
  after(async () => cluster?.stop());
  // Each test starts without the tables of the others (a failed test leaves its own behind).
  beforeEach(async () => {
    if (cluster) await sql('DROP TABLE IF EXISTS events, tenants, orders, visits, flat, shop, hot CASCADE');
  });

  it('one monitor --once --rebalance cycle isolates the whale with its group, moves it, lowers busiest/mean in calls, and records a working undo', async () => {
    await sql('CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text)');
    await sql("SELECT create_distributed_table('tenants', 'tenant_id', shard_count => 8)");
    await sql('CREATE TABLE events (tenant_id bigint NOT NULL, event_id bigint, payload text)');
    await sql("SELECT create_distributed_table('events', 'tenant_id', colocate_with => 'tenants')");
    await sql("INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 200) g");
    // Tenant 1 holds 30% of the events and draws half of the queries.
    await sql("INSERT INTO events SELECT CASE WHEN g % 10 < 3 THEN 1 ELSE 2 + g % 199 END, g, repeat('x', 40) FROM generate_series(1, 30000) g");
    await sql('ANALYZE events');
    const whaleShard = await shardOf('events', 1);
    const source = await nodeOf(whaleShard);

    await monitor(); // starts the counters
    // A first window the model learns from (one window alone is blended with the uniform prior).
    await workload('events', 600, 1, 200);
    await monitor();
    const c0 = await callsPerWorker('events');
    await workload('events', 1200, 1, 200);
    const c1 = await callsPerWorker('events');
    const cycle = await monitor(['--rebalance']);
    const before = busiestOverMean(c1.map((x, i) => x - c0[i]!));

    const isolate = cycle.actions.find((a) => a.kind === 'isolate');
    const top = [...cycle.shards].sort((a, b) => b.nextPredictedShare - a.nextPredictedShare).slice(0, 3);
    assert.ok(isolate, `no isolation: ${JSON.stringify(cycle.actions)} ${JSON.stringify(cycle.advice)} ${JSON.stringify(top)}`);
    assert.match(isolate.detail, /isolated tenant 1 of events .*found by sample/);
    assert.ok(cycle.actions.some((a) => a.kind === 'setting' && /citus\.stat_tenants_track on .*: none -> all/.test(a.detail)), 'the cycle turned tenant statistics on for the next window');
    const isolated = await shardOf('events', 1);
    const one = (await sql('SELECT shardminvalue = shardmaxvalue AS one FROM pg_dist_shard WHERE shardid = $1', [isolated])).rows[0].one as boolean;
    assert.ok(one, 'the whale has a shard of its own');
    assert.deepEqual(await ranges('tenants'), await ranges('events'), 'CASCADE: every table of the group keeps matching ranges');
    const whaleNode = await nodeOf(isolated);
    assert.notEqual(whaleNode, source, 'the isolated shard group left its source node');
    assert.equal(await nodeOf(await shardOf('tenants', 1)), whaleNode, 'the tenants shard moved with it');

    const c2 = await callsPerWorker('events');
    await workload('events', 1200, 1, 200);
    const c3 = await callsPerWorker('events');
    const afterRatio = busiestOverMean(c3.map((x, i) => x - c2[i]!));
    assert.ok(afterRatio < before, `busiest/mean in calls ${before.toFixed(2)} before, ${afterRatio.toFixed(2)} after`);
    const next = await monitor();
    assert.ok(next.actions.some((a) => a.kind === 'check' && /isolating tenant 1/.test(a.detail)), JSON.stringify(next.actions));

    const action = (await sql("SELECT undo_sql, detail FROM adaptive_load.actions WHERE kind = 'isolate' ORDER BY action_id DESC LIMIT 1")).rows[0];
    assert.equal(action.detail.tenant, '1');
    assert.equal(action.detail.source, 'sample');
    await sql(action.undo_sql as string);
    assert.equal(await nodeOf(isolated), source, 'undo brings the tenant\'s shard group back to its source node');
    await sql('DROP TABLE events, tenants');
  });

  it('the stored profile\'s heavy hitters alone find the tenant, hashed into the live shard range', async () => {
    await sql('CREATE TABLE orders (tenant_id text NOT NULL, amount int)');
    await sql("SELECT create_distributed_table('orders', 'tenant_id', shard_count => 4)");
    const whale = 'acme-corp';
    const shard = await shardOf('orders', whale);
    const range = (await sql('SELECT shardminvalue::int AS lo, shardmaxvalue::int AS hi FROM pg_dist_shard WHERE shardid = $1', [shard])).rows[0];
    const hash = (await sql('SELECT worker_hash($1::text) AS h', [whale])).rows[0].h as number;
    // A profile a plan stored: the whale planned into a shard of its own, 6000 of the range's 8000 rows.
    const planned = [
      { shardIndex: 0, hashMin: range.lo, hashMax: hash - 1, rows: 1000, load: 0.1, node: null },
      { shardIndex: 1, hashMin: hash, hashMax: hash, rows: 6000, load: 0.6, node: null, tenant: whale },
      { shardIndex: 2, hashMin: hash + 1, hashMax: range.hi, rows: 1000, load: 0.1, node: null },
    ];
    const profile = { version: 1, table: 'orders', isolate: [whale], shards: planned };
    const node = await nodeOf(shard);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      // No rows in the table, no tenant statistics: only the profile can say.
      assert.equal(await findShardTenants(db, conn, { shardId: shard, table: 'orders', node }, { sources: ['profile'] }), undefined);
      await db.query('INSERT INTO adaptive_load.profiles (table_name, applied, statements, profile) VALUES ($1, false, $2, $3)', ['orders', [], JSON.stringify(profile)]);
      const found = await findShardTenants(db, conn, { shardId: shard, table: 'orders', node }, { sources: ['profile'] });
      assert.equal(found?.source, 'profile');
      assert.equal(found?.tenants[0]?.value, whale);
      assert.equal(found?.tenants[0]?.hash, hash, 'hashed by the project\'s own hashing exactly as Citus does');
      assert.ok(Math.abs(found!.tenants[0]!.weight / found!.total - 0.75) < 1e-9, `share ${found!.tenants[0]!.weight / found!.total}`);
      // A shard whose range does not hold the whale learns nothing from that profile.
      const other = (await sql('SELECT shardid::text AS s FROM pg_dist_shard WHERE logicalrelid = \'orders\'::regclass AND shardid <> $1 LIMIT 1', [shard])).rows[0].s as string;
      assert.equal(await findShardTenants(db, conn, { shardId: other, table: 'orders', node: await nodeOf(other) }, { sources: ['profile'] }), undefined);
    } finally {
      await db.end();
    }
    await sql('DROP TABLE orders');
    await sql("DELETE FROM adaptive_load.profiles WHERE table_name = 'orders'");
  });

  it('a bounded sample of the shard on its worker alone finds the tenant', async () => {
    await sql('CREATE TABLE visits (tenant_id int NOT NULL, at int)');
    await sql("SELECT create_distributed_table('visits', 'tenant_id', shard_count => 4)");
    await sql('INSERT INTO visits SELECT CASE WHEN g % 3 = 0 THEN 77 ELSE g % 500 END, g FROM generate_series(1, 20000) g');
    await sql('ANALYZE visits');
    const shard = await shardOf('visits', 77);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const found = await findShardTenants(db, conn, { shardId: shard, table: 'visits', node: await nodeOf(shard) }, { sources: ['sample'] });
      assert.equal(found?.source, 'sample');
      assert.equal(found?.tenants[0]?.value, '77');
      assert.ok(found!.tenants[0]!.weight / found!.total > 0.5, `share ${found!.tenants[0]!.weight / found!.total}`);
      assert.ok(found!.tenants.every((t) => t.hash !== undefined && t.hash >= found!.min && t.hash <= found!.max), 'every sampled value hashes into the shard');
    } finally {
      await db.end();
    }
    await sql('DROP TABLE visits');
  });

  it('a hot shard of many equal tenants is split at a load-weighted point, not isolated, and the halves go to different nodes', async () => {
    await monitor(); // counters after the earlier tests' tables are gone
    await sql('CREATE TABLE flat (tenant_id bigint NOT NULL, v int)');
    await sql("SELECT create_distributed_table('flat', 'tenant_id', shard_count => 4)");
    await sql('INSERT INTO flat SELECT g % 2000, g FROM generate_series(1, 20000) g');
    await sql('ANALYZE flat');
    const hot = await shardOf('flat', 0);
    const hotRange = (await sql('SELECT shardminvalue::int AS lo, shardmaxvalue::int AS hi FROM pg_dist_shard WHERE shardid = $1', [hot])).rows[0];
    // Every query aims at the tenants of one shard, evenly.
    const mine = (await sql("SELECT array_agg(t) AS ts FROM generate_series(0, 1999) t WHERE get_shard_id_for_distribution_column('flat', t) = $1", [hot])).rows[0].ts as string[];
    assert.ok(mine.length > 100);
    await monitor();
    const hotQueries = () => withClient(url, async (c) => {
      for (let i = 0; i < 600; i++) await c.query('SELECT count(*) FROM flat WHERE tenant_id = $1', [mine[i % mine.length]]);
    });
    await hotQueries();
    await monitor(); // a window the model learns from
    await hotQueries();
    const cycle = await monitor(['--rebalance']);
    const top = [...cycle.shards].sort((a, b) => b.nextPredictedShare - a.nextPredictedShare).slice(0, 2);
    assert.ok(!cycle.actions.some((a) => a.kind === 'isolate'), JSON.stringify(cycle.actions));
    const split = cycle.actions.find((a) => a.kind === 'split');
    assert.ok(split, `no split: ${JSON.stringify(cycle.actions)} ${JSON.stringify(cycle.advice)} ${JSON.stringify(top)}`);
    const old = (await sql('SELECT count(*)::int AS n FROM pg_dist_shard WHERE shardid = $1', [hot])).rows[0].n as number;
    assert.equal(old, 0, 'the hot shard was split');
    const halves = (await sql(
      `SELECT s.shardid::text AS s, n.nodename || ':' || n.nodeport AS node FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
        WHERE s.logicalrelid = 'flat'::regclass AND s.shardminvalue::int >= $1 AND s.shardmaxvalue::int <= $2`, [hotRange.lo, hotRange.hi])).rows;
    assert.equal(halves.length, 2);
    assert.notEqual(halves[0].node, halves[1].node, 'the halves are placed on different nodes');
    // Load-weighted: each half holds a fair part of the hot tenants.
    const perHalf = new Map<string, number>();
    for (const t of mine) { const s = await shardOf('flat', t); perHalf.set(s, (perHalf.get(s) ?? 0) + 1); }
    for (const n of perHalf.values()) assert.ok(n > mine.length * 0.3 && n < mine.length * 0.7, `tenants per half ${[...perHalf.values()]}`);
    await sql('DROP TABLE flat');
  });

  it('the report shows the cluster summary first, names the tenant of every isolation, and its charts keep legend colours and whole labels (headless Chromium)', async () => {
    await sql('CREATE TABLE shop (tenant_id bigint NOT NULL, v int)');
    await sql("SELECT create_distributed_table('shop', 'tenant_id', shard_count => 4)");
    await sql('INSERT INTO shop SELECT CASE WHEN g % 5 < 2 THEN 5 ELSE g % 300 END, g FROM generate_series(1, 20000) g');
    await sql('ANALYZE shop');
    await monitor();
    await workload('shop', 600, 5, 300);
    await monitor();
    await workload('shop', 600, 5, 300);
    const advised = await monitor();
    assert.ok(advised.advice.some((a) => a.kind === 'isolate-tenant' && /Isolate tenant 5 /.test(a.detail) && /'5'/.test(a.sql ?? '')), JSON.stringify(advised.advice));
    const text = await runCli(['report', '--coordinator', url]);
    assert.equal(text.status, 0, text.stderr);
    assert.ok(text.stdout.indexOf('cluster summary') >= 0 && text.stdout.indexOf('cluster summary') < text.stdout.indexOf('shop:'), 'the summary comes first');
    assert.match(text.stdout, /WAPE \d\.\d{3}/);
    assert.match(text.stdout, /Isolate tenant 5/);
    for (const line of text.stdout.split('\n')) assert.ok([...line].length <= 80, `line over 80 columns: ${line}`);
    const md = await runCli(['report', '--format', 'markdown', '--coordinator', url]);
    assert.match(md.stdout, /^# citus-adaptive-load report\n\nGenerated [^\n]+\n\n## Cluster summary\n/);
    assert.match(md.stdout, /Isolate tenant 5/);
    // Acting on it: the summary's hottest shard then names its tenant, and the action is listed.
    await workload('shop', 600, 5, 300);
    const acted = await monitor(['--rebalance']);
    assert.ok(acted.actions.some((a) => a.kind === 'isolate'), JSON.stringify(acted.actions));
    const json = await runCli(['report', '--format', 'json', '--coordinator', url]);
    const data = JSON.parse(json.stdout) as ReportData;
    assert.deepEqual(data.summary.hottestShards.find((h) => h.table === 'shop')?.tenants, ['5'], JSON.stringify(data.summary));
    assert.ok(data.summary.actionsTaken >= 1);
    // Beside WAPE, the largest node share error of the same window, in every format.
    const latest = [...data.windows].reverse().find((w) => w.complete && w.nodes.some((n) => n.predictedShare !== null))!;
    const largest = Math.max(...latest.nodes.filter((n) => n.predictedShare !== null).map((n) => Math.abs(n.predictedShare! - n.actualShare)));
    assert.ok(Math.abs((latest.maxShareError ?? -1) - largest) < 1e-9, `window ${latest.windowId}: ${latest.maxShareError} vs ${largest}`);
    assert.equal(typeof data.summary.maxShareError, 'number');
    assert.match(md.stdout, /largest node share error \d+\.\d points/);
    assert.match(md.stdout, /\| window end \| WAPE \| largest node share error \| MAPE \|/);
    assert.ok(data.actions.some((a) => /isolated tenant 5 of shop/.test(a.detail)));
    const all = text.stdout + md.stdout + json.stdout;
    assert.doesNotMatch(all, /<tenant>|<node id>/, 'no placeholder where a tenant or node belongs');
    const html = await runCli(['report', '--format', 'html', '--coordinator', url]);
    assert.match(html.stdout, /<h2>Cluster summary<\/h2>[\s\S]*<code>5<\/code>/);
    if (!CHROMIUM) return console.log('HTML screenshot check skipped: no chromium');
    assert.ok(inkShare(screenshot(html.stdout)) > 0.01, 'the rendered report is not blank');

    // The legend of the predicted-vs-actual chart is drawn in its lines' colours.
    const chart = overTime(data);
    const nodesInChart = [...new Set(data.windows.flatMap((w) => w.nodes.map((n) => n.node)))];
    assert.equal(nodesInChart.length, 2);
    const width = Number(/<svg viewBox="0 0 (\d+) /.exec(chart)![1]);
    const px = decodePng(screenshot(chartPage(chart)));
    const colours: [number, number, number][] = [[0x4e, 0x79, 0xa7], [0xe1, 0x57, 0x59]];
    colours.forEach((c, k) => {
      let hits = 0;
      for (let y = 18 + k * 18; y < 34 + k * 18; y++) {
        for (let x = 630; x < width; x++) {
          const p = px.rgb(x, y);
          if (Math.abs(p[0] - c[0]) + Math.abs(p[1] - c[1]) + Math.abs(p[2] - c[2]) < 60) hits++;
        }
      }
      assert.ok(hits >= 5, `legend entry ${k + 1} (${nodesInChart[k]}) is not drawn in its line's colour (${hits} pixels)`);
    });

    // No label is cut at a chart's edge: a 93.5% bar's label and a long node name fit.
    const table: TableReport = { table: 'shop', kind: 'distributed', distributionColumn: 'tenant_id', shardCount: 5, colocatedWith: [], sizeSkew: 1.9, unreachableNodes: [],
      hotShards: [], isolatedTenants: [], nodes: [
        { node: 'worker-1.a-rather-long-domain.example.internal:5432', shards: 3, bytes: 1.9e9, predictedLoad: 0.935, reachable: true },
        { node: 'worker-2:5432', shards: 2, bytes: 1.1e8, predictedLoad: 0.065, reachable: true }] };
    const bars = nodeBars(table);
    const bw = Number(/<svg viewBox="0 0 (\d+) /.exec(bars)![1]);
    const bh = Number(/<svg viewBox="0 0 \d+ (\d+)"/.exec(bars)![1]);
    const shot = decodePng(screenshot(chartPage(bars)));
    let rightmost = 0;
    for (let y = 0; y < bh; y++) for (let x = 0; x < Math.min(bw + 20, shot.width); x++) if (isInk(shot.rgb(x, y))) rightmost = Math.max(rightmost, x);
    assert.ok(rightmost > 560, `the long label is drawn (rightmost ink at ${rightmost})`);
    assert.ok(rightmost < bw - 3, `a label reaches the chart's edge at x=${rightmost} of ${bw}: cut off`);
    await sql('DROP TABLE shop');
  });

  it('tune --apply turns tenant statistics on everywhere with its reason, once, and the undo restores the previous value', async () => {
    const setting = async (u: string, want: string) => {
      // pg_reload_conf() signals; a new session sees the value once the postmaster has reread its files (bounded wait).
      let v = '';
      for (let i = 0; i < 100 && v !== want; i++) {
        v = await withClient(u, async (c) => (await c.query("SELECT current_setting('citus.stat_tenants_track') AS v")).rows[0].v as string);
        if (v !== want) await new Promise((r) => setTimeout(r, 100));
      }
      return v;
    };
    const undoAll = async () => {
      const rows = (await sql("SELECT action_id, undo_sql FROM adaptive_load.actions WHERE kind = 'setting' AND detail->>'name' = 'citus.stat_tenants_track' ORDER BY action_id DESC")).rows;
      for (const a of rows) {
        const where = /^-- on (.*)$/m.exec(a.undo_sql as string)![1]!;
        const node = where === 'coordinator' ? cluster.coordinator : cluster.workers.find((w) => where.endsWith(`:${w.port}`))!;
        // One statement at a time: ALTER SYSTEM cannot run in the implicit transaction of a multi-statement string.
        for (const stmt of (a.undo_sql as string).split('\n').filter((l) => l.trim() && !l.startsWith('--'))) await withClient(node.url, (c) => c.query(stmt));
      }
      await sql("DELETE FROM adaptive_load.actions WHERE kind = 'setting' AND detail->>'name' = 'citus.stat_tenants_track'");
      return rows.length;
    };
    // The monitor's --rebalance cycles turned it on (recorded with undo): their undo turns it off again.
    assert.equal(await undoAll(), 3);
    for (const node of cluster.nodes) assert.equal(await setting(node.url, 'none'), 'none', node.name);
    await sql('CREATE TABLE hot (tenant_id bigint NOT NULL)');
    await sql("SELECT create_distributed_table('hot', 'tenant_id', shard_count => 4)");
    const shard = await shardOf('hot', 1);
    await sql('DELETE FROM adaptive_load.shard_predictions');
    await sql("INSERT INTO adaptive_load.shard_predictions (shard_id, table_name, predicted_share) VALUES ($1, 'hot', 0.8)", [shard]);
    const dry = await runCli(['tune', '--coordinator', url, '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.equal((dry.json!.changes as { name: string }[]).filter((c) => c.name === 'citus.stat_tenants_track').length, 3, dry.stdout);
    const applied = await runCli(['tune', '--apply', '--coordinator', url, '--json']);
    assert.equal(applied.status, 0, applied.stderr);
    for (const node of cluster.nodes) assert.equal(await setting(node.url, 'all'), 'all', node.name);
    const actions = (await sql("SELECT undo_sql, detail FROM adaptive_load.actions WHERE kind = 'setting' AND detail->>'name' = 'citus.stat_tenants_track' ORDER BY action_id")).rows;
    assert.equal(actions.length, 3);
    assert.match(actions[0].detail.reason, new RegExp(`${shard} \\(80%\\)`));
    // Already on: nothing more is planned or advised.
    const again = await runCli(['tune', '--coordinator', url, '--json']);
    assert.equal((again.json!.changes as { name: string }[]).filter((c) => c.name === 'citus.stat_tenants_track').length, 0, again.stdout);
    assert.equal(await undoAll(), 3);
    for (const node of cluster.nodes) {
      assert.equal(await setting(node.url, 'none'), 'none', node.name);
      assert.equal(await withClient(node.url, async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_settings WHERE name = 'citus.stat_tenants_track' AND source <> 'default'")).rows[0].n), 0);
    }
    await sql('DROP TABLE hot');
  });
});
