/**
 * Benchmark: the feedback loop against a whale tenant on a default cluster (citus.stat_tenants_track
 * off). A `tenants` table is distributed first; the tool loads an `events` table into its
 * colocation group; one tenant holds FEEDBACK_WHALE_ROWS of the events and draws half of all
 * queries. Each worker's postmaster (and every backend it has) is pinned to a core of its own with
 * taskset, so an imbalance costs throughput as it would on separate machines.
 *
 * Runs: a window the model learns from, the "before" window, ONE `monitor --once --rebalance`
 * cycle, the "after" window and a final monitor cycle. Prints per-node shares measured from the
 * workers' pg_stat_statements in calls and in execution time, tps, where the whale ended up, the
 * best any placement can do in execution time when the whale alone outweighs a node's fair share,
 * and the WAPE of the per-node prediction for the window after the cycle.
 *
 *   npm run bench:feedback
 *   FEEDBACK_ROWS=30000 FEEDBACK_SECONDS=5 npm run bench:feedback   # a small smoke run
 *
 * Env: FEEDBACK_ROWS (300000), FEEDBACK_TENANTS (1000), FEEDBACK_WHALE_ROWS (0.3),
 * FEEDBACK_SECONDS per workload run (15), FEEDBACK_CLIENTS (4), FEEDBACK_SHARDS (32),
 * FEEDBACK_LOAD: `tool` (default: the tool loads events, and isolates the whale as it lays the
 * table out) or `copy` (events distributed into the group with defaults and loaded by Citus's
 * COPY, as without the tool: the whale shares a shard and a node with other tenants until the
 * monitor's cycle finds it, by sampling its shard, and acts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient, type LocalNode } from '../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../src/connect/config.js';
import { migrate } from '../src/store/migrate.js';
import { monitorOnce, type MonitorResult } from '../src/monitor/monitor.js';

const env = (name: string, dflt: number) => {
  const v = process.env[name] === undefined ? dflt : Number(process.env[name]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got ${process.env[name]}`);
  return v;
};
const ROWS = env('FEEDBACK_ROWS', 300_000);
const TENANTS = env('FEEDBACK_TENANTS', 1000);
const WHALE_ROWS = env('FEEDBACK_WHALE_ROWS', 0.3);
const SECONDS = env('FEEDBACK_SECONDS', 15);
const CLIENTS = env('FEEDBACK_CLIENTS', 4);
const SHARDS = env('FEEDBACK_SHARDS', 32);
const LOAD = process.env.FEEDBACK_LOAD ?? 'tool';
if (LOAD !== 'tool' && LOAD !== 'copy') throw new Error(`FEEDBACK_LOAD must be tool or copy, got ${LOAD}`);
const WHALE = 1;
const PGBENCH = join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'pgbench');
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/**
 * Pins a node's postmaster and every process it has forked to `core`. New backends inherit the
 * postmaster's affinity; those already running (Citus's maintenance daemon, pooled connections)
 * are pinned one by one.
 */
function pin(node: LocalNode, core: number): string {
  const pid = readFileSync(join(node.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
  const children = spawnSync('pgrep', ['-P', pid], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const p of [pid, ...children]) execFileSync('taskset', ['-a', '-p', '-c', String(core), p], { stdio: 'ignore' });
  return `${node.name} (postmaster ${pid} and ${children.length} backends) on core ${core}`;
}

async function generateEvents(file: string): Promise<void> {
  const out = createWriteStream(file);
  let x = 12345;
  const rand = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  for (let i = 1; i <= ROWS; i++) {
    const tenant = rand() < WHALE_ROWS ? WHALE : 2 + Math.floor(rand() * (TENANTS - 1));
    if (!out.write(`${tenant},${i},${'x'.repeat(40 + (i % 60))}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function workload(url: string, dir: string): number {
  const file = join(dir, 'tenant-queries.sql');
  // Half of all queries go to the whale, the rest spread over the others.
  writeFileSync(file, `\\set r random(1, 100)
\\if :r <= 50
\\set t ${WHALE}
\\else
\\set t random(2, ${TENANTS})
\\endif
SELECT count(*), sum(length(payload)) FROM events WHERE tenant_id = :t;
`);
  const r = spawnSync(PGBENCH, ['-n', '-c', String(CLIENTS), '-j', String(Math.min(CLIENTS, 2)), '-T', String(SECONDS), '-f', file, url], { encoding: 'utf8' });
  const m = /tps = ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench failed: ${r.stderr}${r.stdout}`);
  return Number(m[1]);
}

interface Totals { calls: number; ms: number; whaleMs: number }

/**
 * Cumulative calls and execution ms of statements on the group's shard tables, per worker, and
 * the ms of those on `whaleShard`'s table (each shard table has statements of its own).
 */
async function statementTotals(workers: LocalNode[], whaleShard = '0'): Promise<Totals[]> {
  return Promise.all(workers.map((w) => withClient(w.url, async (c) => {
    const r = await c.query<{ calls: string; ms: number; whale: number }>(
      `SELECT coalesce(sum(calls), 0)::text AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms,
              coalesce(sum(total_exec_time) FILTER (WHERE query ~ ('events_' || $1 || '([^0-9]|$)')), 0)::float8 AS whale
         FROM pg_stat_statements WHERE query ~ '(events|tenants)_[0-9]+' AND query !~* 'pg_stat_statements|TABLESAMPLE|worker_|citus_'`, [whaleShard]);
    return { calls: Number(r.rows[0]!.calls), ms: r.rows[0]!.ms, whaleMs: r.rows[0]!.whale };
  })));
}

const delta = (a: Totals[], b: Totals[]) => b.map((x, i) => ({ calls: x.calls - a[i]!.calls, ms: x.ms - a[i]!.ms, whaleMs: x.whaleMs - a[i]!.whaleMs }));
const shares = (xs: number[]) => { const t = xs.reduce((a, b) => a + b, 0) || 1; return xs.map((x) => x / t); };
const busiestOverMean = (xs: number[]) => Math.max(...xs) / (xs.reduce((a, b) => a + b, 0) / xs.length || 1);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function showShares(label: string, workers: LocalNode[], d: { calls: number; ms: number }[], tps: number): void {
  const c = shares(d.map((x) => x.calls));
  const t = shares(d.map((x) => x.ms));
  console.log(`${label}: ${tps.toFixed(0)} tps; busiest/mean worker load ${busiestOverMean(d.map((x) => x.calls)).toFixed(2)} in calls, `
    + `${busiestOverMean(d.map((x) => x.ms)).toFixed(2)} in execution time`);
  workers.forEach((w, i) => console.log(`  ${w.name.padEnd(8)} calls ${pct(c[i]!).padStart(6)}  execution time ${pct(t[i]!).padStart(6)}`));
}

function showMonitor(label: string, r: MonitorResult): void {
  const wape = r.wape;
  console.log(`${label}: monitor busiest/mean ${r.imbalance.actual === null ? 'n/a (window incomplete)' : r.imbalance.actual.toFixed(2)} actual, ${r.imbalance.predicted.toFixed(2)} predicted next`
    + `${wape === null ? '' : `; per-node prediction WAPE ${wape.toFixed(3)}`}${r.mape === null ? '' : `, MAPE ${r.mape.toFixed(3)}`}`);
  if (process.env.FEEDBACK_DEBUG) console.log(`  model ${JSON.stringify(r.model)} signal ${JSON.stringify(r.signal)}`);
  for (const n of r.nodes) console.log(`  ${n.node.padEnd(20)} predicted ${n.predictedShare === null ? '   -  ' : pct(n.predictedShare).padStart(6)}  actual ${n.actualShare === null ? '   -  ' : pct(n.actualShare).padStart(6)}`);
}

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; the feedback loop needs a Citus cluster`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-feedback-'));
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    const cores = cpus().length;
    const tasksetOk = spawnSync('taskset', ['--version']).status === 0 && existsSync(join(cluster.workers[0]!.dataDir, 'postmaster.pid'));
    if (cores >= 2 && tasksetOk) cluster.workers.forEach((w, i) => console.log(`pinned ${pin(w, i % cores)}`));
    else console.log(`not pinned: ${cores < 2 ? `${cores} core` : 'no taskset'}; an imbalance then costs less throughput than on separate machines`);

    await withClient(url, async (c) => {
      await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await c.query('CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text NOT NULL)');
      await c.query(`SELECT create_distributed_table('tenants', 'tenant_id', shard_count => ${SHARDS})`);
      await c.query(`INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, ${TENANTS}) g`);
      await c.query('CREATE TABLE events (tenant_id bigint NOT NULL, event_id bigint NOT NULL, payload text)');
    });
    const file = join(dir, 'events.csv');
    await generateEvents(file);
    if (LOAD === 'tool') {
      const load = spawnSync(process.execPath, [CLI, 'load', '--table', 'events', '--coordinator', url, '-q', file], { encoding: 'utf8' });
      if (load.status !== 0) throw new Error(`load failed: ${load.stderr}${load.stdout}`);
    } else {
      await withClient(url, async (c) => {
        await c.query("SELECT create_distributed_table('events', 'tenant_id', colocate_with => 'tenants')");
        await pipeline(createReadStream(file), c.query(pgCopyStreams.from('COPY events FROM STDIN WITH (FORMAT csv)')));
      });
    }
    const layout = await withClient(url, async (c) => {
      await c.query('ANALYZE events');
      return (await c.query<{ same: boolean; shards: number }>(
        `SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass)
              = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'tenants'::regclass) AS same,
                (SELECT count(*)::int FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass) AS shards`)).rows[0]!;
    });
    const tracking = await withClient(url, async (c) => (await c.query("SELECT current_setting('citus.stat_tenants_track') AS v")).rows[0].v as string);
    console.log(`${ROWS} events (tenant ${WHALE} holds ${pct(WHALE_ROWS)} of them and draws half of all queries), ${TENANTS} tenants; `
      + `events ${layout.same ? 'loaded into the tenants colocation group' : 'NOT colocated with tenants'}, ${layout.shards} shards; `
      + `citus.stat_tenants_track = ${tracking}; pgbench -c ${CLIENTS} for ${SECONDS} s per run`);

    const conn = resolveConnectionConfig({ coordinator: url });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await migrate(db);
    await monitorOnce(db, conn); // starts the counters
    workload(url, dir);
    showMonitor('learning window', await monitorOnce(db, conn));

    const s0 = await statementTotals(cluster.workers);
    const tpsBefore = workload(url, dir);
    const s1 = await statementTotals(cluster.workers);
    const cycle = await monitorOnce(db, conn, { rebalance: true });
    console.log('');
    showShares('before the cycle', cluster.workers, delta(s0, s1), tpsBefore);
    showMonitor('the monitor --once --rebalance cycle', cycle);
    for (const a of cycle.actions) console.log(`  action ${a.kind}: ${a.detail}`);

    const whaleShard = (await db.query<{ s: string }>("SELECT get_shard_id_for_distribution_column('events', $1::text)::text AS s", [String(WHALE)])).rows[0]!.s;
    const s2 = await statementTotals(cluster.workers, whaleShard);
    const tpsAfter = workload(url, dir);
    const s3 = await statementTotals(cluster.workers, whaleShard);
    const next = await monitorOnce(db, conn);
    console.log('');
    showShares('after the cycle', cluster.workers, delta(s2, s3), tpsAfter);
    showMonitor('the window after the cycle', next);
    for (const a of next.actions) console.log(`  ${a.kind}: ${a.detail}`);

    // Where the whale is, and whether its node holds any other hot shard.
    const whale = (await db.query<{ shard: string; alone: boolean; node: string }>(
      `SELECT s.shardid::text AS shard, s.shardminvalue = s.shardmaxvalue AS alone, n.nodename || ':' || n.nodeport AS node
         FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
        WHERE s.shardid = get_shard_id_for_distribution_column('events', $1::text)`, [String(WHALE)])).rows[0]!;
    const otherHot = next.hotspots.filter((h) => h.kind === 'shard' && h.id !== whale.shard
      && next.shards.find((s) => s.shardId === h.id)?.node === whale.node);
    const after = delta(s2, s3);
    const timeShares = shares(after.map((x) => x.ms));
    // The whale's part of all execution time, from the statements on its own shard table.
    const whaleTime = after.reduce((a, x) => a + x.whaleMs, 0) / (after.reduce((a, x) => a + x.ms, 0) || 1);
    const fair = 1 / cluster.workers.length;
    const wape = next.wape;
    console.log('');
    console.log(`whale: ${whale.alone ? 'alone in its shard' : 'SHARES its shard'} ${whale.shard} on ${whale.node}, `
      + `${otherHot.length ? `beside ${otherHot.length} other hot shard(s)` : 'no other hot shard on that node'}`);
    console.log(`busiest/mean worker load in calls: before ${busiestOverMean(delta(s0, s1).map((x) => x.calls)).toFixed(2)}, `
      + `after ${busiestOverMean(after.map((x) => x.calls)).toFixed(2)} (target <= 1.25)`);
    if (whaleTime > fair) {
      console.log(`execution time: the whale alone takes ${pct(whaleTime)} of the shards' time, more than a node's fair ${pct(fair)}: `
        + `the best any placement can do is the whale alone on its node, busiest/mean ${(whaleTime / fair).toFixed(2)}; `
        + `measured ${busiestOverMean(after.map((x) => x.ms)).toFixed(2)} (node shares ${timeShares.map(pct).join(', ')})`);
    } else {
      console.log(`execution time: busiest/mean before ${busiestOverMean(delta(s0, s1).map((x) => x.ms)).toFixed(2)}, after ${busiestOverMean(after.map((x) => x.ms)).toFixed(2)}`);
    }
    console.log(`WAPE of the per-node prediction for the window after the cycle: ${wape === null ? 'n/a' : wape.toFixed(3)} (target <= 0.15)`);
    console.log(`tps: before ${tpsBefore.toFixed(0)}, after ${tpsAfter.toFixed(0)}`);
    await db.end();
  } finally {
    await cluster.stop();
  }
}

await main();
