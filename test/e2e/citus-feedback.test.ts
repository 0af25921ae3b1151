/**
 * The allocator and feedback loop on real Citus: the rebalance strategy's functions return what
 * the model says; monitor measures a skewed workload from the workers' statements, predicts it,
 * and with --rebalance moves shards off the hot node; rebalance --dry-run plans without moving;
 * the daemon survives a worker going away and stops cleanly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { startDaemon } from '../../src/monitor/daemon.js';
import { monitorOnce, type MonitorResult } from '../../src/monitor/monitor.js';
import { runCli } from '../support/cli.js';
import { priorShares } from '../../src/workload/prior.js';
import { uniformRanges } from '../../src/plan/planner.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus feedback suite skipped: ${skip}.`);

describe('Citus suite: predicted load, rebalancing, daemon', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const monitor = async (extra: string[] = []) => {
    const r = await runCli(['monitor', '--once', '--coordinator', url, '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return r.json as unknown as MonitorResult;
  };
  const workload = async (queries: number) => {
    await withClient(url, async (c) => {
      for (let i = 0; i < queries; i++) {
        // Tenant 1 draws 40% of the queries: its shard is hot but below a node's fair share, so this
        // cycle moves shards (isolation has its own test below; an isolated whale's queries scan
        // only its rows, which changes what its load costs).
        const tenant = i % 5 < 2 ? 1 : 2 + (i * 7) % 300;
        await c.query('SELECT count(*), sum(length(payload)) FROM events WHERE tenant_id = $1', [tenant]);
      }
    });
  };

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true, settings: { 'citus.stat_tenants_track': "'all'" } });
    url = cluster.coordinator.url;
    await sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await sql('CREATE TABLE events (tenant_id bigint NOT NULL, event_id bigint, payload text)');
    await sql("SELECT create_distributed_table('events', 'tenant_id', shard_count => 16)");
    await sql("INSERT INTO events SELECT 1 + g % 300, g, repeat('x', 50) FROM generate_series(1, 60000) g");
    await withClient(url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  it('the strategy functions return the model\'s predictions and node capacities', async () => {
    const shard = (await sql("SELECT get_shard_id_for_distribution_column('events', 1)::text AS s")).rows[0].s as string;
    await sql("INSERT INTO adaptive_load.shard_predictions (shard_id, table_name, predicted_share) VALUES ($1, 'events', 0.42)", [shard]);
    const cost = await sql('SELECT adaptive_load.shard_cost($1) AS c', [shard]);
    assert.ok(Math.abs(cost.rows[0].c - 0.4201) < 1e-4, `cost ${cost.rows[0].c}`);
    const nodeId = (await sql("SELECT nodeid FROM pg_dist_node WHERE groupid > 0 ORDER BY nodeid LIMIT 1")).rows[0].nodeid as number;
    assert.equal((await sql('SELECT adaptive_load.node_capacity($1) AS c', [nodeId])).rows[0].c, 1);
    await sql('INSERT INTO adaptive_load.node_capacity VALUES ($1, 2)', [nodeId]);
    assert.equal((await sql('SELECT adaptive_load.node_capacity($1) AS c', [nodeId])).rows[0].c, 2);
    await sql('DELETE FROM adaptive_load.node_capacity');
    await sql('DELETE FROM adaptive_load.shard_predictions');
  });

  it('monitor measures a skewed workload per shard, predicts it, and --rebalance moves shards off the hot node', async () => {
    await monitor(); // starts the counters
    await workload(3000);
    const first = await monitor();
    const hotShard = (await sql("SELECT get_shard_id_for_distribution_column('events', 1)::text AS s")).rows[0].s as string;
    const hot = first.shards.find((s) => s.shardId === hotShard)!;
    assert.ok(hot.actualShare! > 0.35, `hot shard took ${hot.actualShare} of the load`);
    assert.ok(hot.nextPredictedShare > 0.3, `hot shard predicted at ${hot.nextPredictedShare}`);
    assert.ok(first.hotspots.some((h) => h.kind === 'shard' && h.id === hotShard));
    // Half of all queries on one shard of two nodes: more than a node's fair share, so advice says so.
    if (hot.nextPredictedShare > 0.5) assert.ok(first.advice.some((a) => a.kind === 'isolate-tenant' && a.detail.includes(hotShard)), JSON.stringify(first.advice));
    const stored = await sql('SELECT predicted_share FROM adaptive_load.shard_predictions WHERE shard_id = $1', [hotShard]);
    assert.ok(Math.abs(stored.rows[0].predicted_share - hot.nextPredictedShare) < 1e-9);
    // The advice is stored with the window, and the report shows exactly that advice (it decides nothing itself).
    const storedAdvice = await sql('SELECT window_id::int AS w, kind, detail FROM adaptive_load.current_advice ORDER BY position');
    assert.deepEqual(storedAdvice.rows.map((r) => [r.w, r.kind, r.detail]), first.advice.map((x) => [first.windowId, x.kind, x.detail]));
    const reported = await runCli(['report', '--format', 'json', '--coordinator', url]);
    assert.equal(reported.status, 0, reported.stderr);
    const recs = (JSON.parse(reported.stdout) as { recommendations: { kind: string; detail: string }[] }).recommendations;
    assert.deepEqual(recs.filter((r) => r.kind !== 'distribution-column').map((r) => r.detail), first.advice.map((x) => x.detail));
    const dry = await runCli(['rebalance', '--dry-run', '--coordinator', url, '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const planned = (dry.json as { moves: { shardId: string }[] }).moves;
    assert.ok(planned.length > 0, 'the strategy should plan moves for a skewed prediction');
    assert.ok(!planned.some((m) => m.shardId === hotShard), 'the hot shard stays; the others move away from it');
    const placementBefore = (await sql("SELECT count(*)::int AS n FROM citus_shards WHERE table_name = 'events'::regclass")).rows[0].n;
    assert.equal(placementBefore, 16, 'dry run moves nothing');

    await workload(3000);
    const acted = await monitor(['--rebalance']);
    assert.ok(acted.mape !== null && acted.mape < 0.3, `MAPE ${acted.mape}`);
    assert.ok(acted.actions.some((a) => a.kind === 'move'), JSON.stringify(acted.actions));
    // The hot tenant drew most of its shard's queries and the shard more than a node's share: isolated.
    if (acted.shards.find((s) => s.shardId === hotShard)!.nextPredictedShare > 0.5) {
      assert.ok(acted.actions.some((a) => a.kind === 'isolate' && /isolated tenant 1 of events/.test(a.detail)), JSON.stringify(acted.actions));
      const alone = await sql("SELECT shardminvalue = shardmaxvalue AS alone FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column('events', 1)");
      assert.equal(alone.rows[0].alone, true);
    }
    const recorded = await sql("SELECT count(*)::int AS n FROM adaptive_load.actions WHERE kind = 'move' AND undo_sql LIKE 'SELECT citus_move_shard_placement%'");
    assert.ok(recorded.rows[0].n > 0);
    await workload(3000);
    const afterActing = await monitor();
    assert.ok(afterActing.imbalance.actual! < acted.imbalance.actual!, `imbalance ${acted.imbalance.actual} -> ${afterActing.imbalance.actual}; actions ${JSON.stringify(acted.actions)}; nodes ${JSON.stringify(afterActing.nodes.map((n) => [n.node, n.predictedShare, n.actualShare]))}`);
    assert.ok(afterActing.imbalance.actual! <= 1.3, `busiest/mean after acting ${afterActing.imbalance.actual}`);
    const windows = await sql('SELECT count(*)::int AS n FROM adaptive_load.windows WHERE mape IS NOT NULL');
    assert.ok(windows.rows[0].n >= 2);
  });

  it('a window is written in one transaction: a concurrent reader never sees an empty or partial cost table', async () => {
    const conn = resolveConnectionConfig({ coordinator: url });
    const shardCount = (await sql("SELECT count(*)::int AS n FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid) WHERE p.partmethod = 'h'")).rows[0].n as number;
    let done = false;
    const seen: string[] = [];
    // Polls what the rebalance strategy reads (shard_cost over shard_predictions) while the monitor writes windows.
    const reader = withClient(url, async (c) => {
      while (!done) {
        const r = await c.query<{ n: number; w: number }>('SELECT count(*)::int AS n, count(DISTINCT window_id)::int AS w FROM adaptive_load.shard_predictions');
        seen.push(`${r.rows[0]!.n}/${r.rows[0]!.w}`);
      }
    });
    const windows: number[] = [];
    try {
      await withClient(url, async (c) => {
        for (let i = 0; i < 4; i++) {
          await workload(200);
          windows.push((await monitorOnce(c, conn)).windowId);
        }
      });
    } finally {
      done = true;
      await reader;
    }
    assert.ok(seen.length > 10, `the reader polled ${seen.length} times`);
    assert.deepEqual([...new Set(seen)], [`${shardCount}/1`], 'every poll saw one whole window\'s predictions');
    const perWindow = await sql(`SELECT w.window_id::int AS w, (SELECT count(*)::int FROM adaptive_load.node_metrics m WHERE m.window_id = w.window_id) AS metrics
                                   FROM adaptive_load.windows w WHERE w.window_id = ANY($1::bigint[])`, [windows]);
    assert.ok(perWindow.rows.every((r) => r.metrics === 2), JSON.stringify(perWindow.rows));
  });

  it('tune sizes worker settings from the predicted load, applies them only with --apply, and records the undo', async () => {
    // Predictions as the model stores them: the first worker's shards take 80% of the load.
    const first = cluster.workers[0]!;
    const counts = await sql(`SELECT n.nodeport, count(*)::int AS k FROM adaptive_load.shard_predictions p
                                JOIN pg_dist_placement pl ON pl.shardid = p.shard_id JOIN pg_dist_node n USING (groupid) GROUP BY 1`);
    for (const row of counts.rows) {
      await sql(`UPDATE adaptive_load.shard_predictions p SET predicted_share = $2 FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid)
                  WHERE pl.shardid = p.shard_id AND n.nodeport = $1`, [row.nodeport, (row.nodeport === first.port ? 0.8 : 0.2) / row.k]);
    }
    const dry = await runCli(['tune', '--coordinator', url, '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const changes = (dry.json as { changes: { node: string; name: string; to: string; reason: string }[] }).changes;
    assert.ok(changes.some((c) => c.name === 'max_parallel_workers_per_gather' && c.to === '0' && /predicted load/.test(c.reason)), JSON.stringify(changes));
    const hotNode = changes.find((c) => c.name === 'max_parallel_workers_per_gather' && c.to === '0')!.node;
    const worker = cluster.workers.find((w) => hotNode.endsWith(`:${w.port}`))!;
    const setting = async () => (await withClient(worker.url, (c) => c.query("SELECT setting FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'"))).rows[0].setting as string;
    assert.equal(await setting(), '2', 'a dry run changes nothing');
    const applied = await runCli(['tune', '--apply', '--coordinator', url, '--json']);
    assert.equal(applied.status, 0, applied.stderr);
    assert.equal(await setting(), '0');
    const undo = await sql("SELECT undo_sql FROM adaptive_load.actions WHERE kind = 'setting' AND detail->>'name' = 'max_parallel_workers_per_gather' AND detail->>'node' = $1", [hotNode]);
    assert.match(undo.rows[0].undo_sql, /ALTER SYSTEM RESET max_parallel_workers_per_gather/);
    await withClient(worker.url, async (c) => {
      for (const stmt of (undo.rows[0].undo_sql as string).split('\n').filter((l) => !l.startsWith('--'))) await c.query(stmt);
    });
    assert.equal(await setting(), '2', 'the recorded undo restores the setting');
  });

  it('monitor --rebalance isolates a tenant whose shard would overload any node it sits on', async () => {
    await sql('CREATE TABLE visits (site_id bigint NOT NULL, path text)');
    await sql("SELECT create_distributed_table('visits', 'site_id', shard_count => 8, colocate_with => 'none')");
    await sql("INSERT INTO visits SELECT 1 + g % 200, '/p/' || g FROM generate_series(1, 20000) g");
    await monitor();
    const visitsWorkload = () => withClient(url, async (c) => {
      for (let i = 0; i < 2500; i++) await c.query('SELECT count(*) FROM visits WHERE site_id = $1', [i % 5 === 0 ? 2 + (i % 150) : 5]);
    });
    await visitsWorkload();
    // Without --rebalance the same finding is advice that names the tenant and the SQL to isolate it.
    const advised = await monitor();
    assert.ok(advised.advice.some((a) => a.kind === 'isolate-tenant' && /Isolate tenant 5 into its own shard/.test(a.detail)
      && /isolate_tenant_to_new_shard\('visits', '5'/.test(a.sql ?? '')), JSON.stringify(advised.advice));
    await visitsWorkload();
    const acted = await monitor(['--rebalance']);
    const isolation = acted.actions.find((a) => a.kind === 'isolate');
    assert.ok(isolation && /isolated tenant 5 of visits/.test(isolation.detail), JSON.stringify(acted.actions));
    const alone = await sql("SELECT shardminvalue = shardmaxvalue AS alone FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column('visits', 5)");
    assert.equal(alone.rows[0].alone, true);
    // (An earlier cycle may have isolated events' whale: only visits' isolations are this test's.)
    const recorded = await sql("SELECT detail->>'tenant' AS t FROM adaptive_load.actions WHERE kind = 'isolate' AND detail->>'table' = 'visits'");
    assert.deepEqual(recorded.rows.map((r) => r.t), ['5']);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM visits')).rows[0].n), 20000);
  });

  it('user statements on no shard lower a node\'s capacity for shards, and the rebalancer plans around them', async () => {
    const busyWorker = cluster.workers[0]!;
    const busyLabel = (n: string) => n.endsWith(`:${busyWorker.port}`);
    await monitor(); // starts the window
    const even = withClient(url, async (c) => {
      for (let i = 0; i < 1500; i++) await c.query('SELECT count(*), sum(length(payload)) FROM events WHERE tenant_id = $1', [2 + (i * 7) % 299]);
    });
    // Work on the first worker that no shard explains: another application's queries.
    await withClient(busyWorker.url, async (c) => {
      for (let i = 0; i < 4; i++) await c.query('SELECT count(*) FROM generate_series(1, 2000000)');
    });
    await even;
    const r = await monitor();
    const busy = r.nodes.find((n) => busyLabel(n.node))!;
    const other = r.nodes.find((n) => !busyLabel(n.node))!;
    assert.ok(busy.live && other.live, JSON.stringify(r.nodes));
    assert.ok(busy.live.busyMs > 0 && busy.live.xactsPerSecond > 0, JSON.stringify(busy.live));
    assert.ok(busy.live.host && busy.live.host.cores >= 1, 'the harness may read /proc');
    assert.ok(busy.live.backgroundShare! > 0.2, `background share ${busy.live.backgroundShare}`);
    assert.ok(busy.live.loadFactor < 1 && other.live.loadFactor > 1, `factors ${busy.live.loadFactor} / ${other.live.loadFactor}`);
    const capacity = await sql(`SELECT n.nodeport, adaptive_load.node_capacity(n.nodeid) AS c FROM pg_dist_node n WHERE n.groupid > 0`);
    const cap = (port: number) => capacity.rows.find((x) => x.nodeport === port)!.c as number;
    assert.ok(cap(busyWorker.port) < cap(cluster.workers[1]!.port), JSON.stringify(capacity.rows));
    const metrics = await sql('SELECT count(*)::int AS n FROM adaptive_load.node_metrics WHERE window_id = $1 AND background_ms > 0', [r.windowId]);
    assert.ok(metrics.rows[0].n >= 1);
    const dry = await runCli(['rebalance', '--dry-run', '--coordinator', url, '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const moves = (dry.json as { moves: { from: string; to: string; gainShare: number; reason: string }[] }).moves;
    const off = moves.filter((m) => busyLabel(m.from)).length;
    const onto = moves.filter((m) => busyLabel(m.to)).length;
    // Moves are judged on the whole cluster's predicted load against capacity: shards go onto the
    // busy worker only while its predicted share stays below its (lowered) fair share.
    const busyNext = r.shards.filter((x) => busyLabel(x.node)).reduce((a, x) => a + x.nextPredictedShare, 0);
    const busyFair = cap(busyWorker.port) / (cap(busyWorker.port) + cap(cluster.workers[1]!.port));
    assert.ok(off > onto || busyNext < busyFair, `moves off the busy worker ${off}, onto it ${onto}; its predicted share ${busyNext}, fair ${busyFair}: ${JSON.stringify(moves)}`);
    assert.ok(moves.every((m) => m.gainShare > 0), JSON.stringify(moves));
    // The DBA report shows the window's node metrics and the capacity the rebalancer uses.
    const report = await runCli(['report', '--format', 'json', '--coordinator', url]);
    assert.equal(report.status, 0, report.stderr);
    const health = (JSON.parse(report.stdout) as { nodeHealth: { node: string; capacity: number; busySeconds: number }[] }).nodeHealth;
    const reported = health.find((h) => busyLabel(h.node))!;
    assert.ok(Math.abs(reported.capacity - cap(busyWorker.port)) < 1e-6 && reported.busySeconds > 0, JSON.stringify(health));
    const text = await runCli(['report', '--coordinator', url]);
    assert.match(text.stdout, /nodes in the last window/);
    await sql('DELETE FROM adaptive_load.node_observed');
  });

  it('the prior follows the sharding profile within a table and the coordinator\'s query history across tables', async () => {
    await sql('CREATE TABLE sessions (user_id bigint NOT NULL, started timestamptz)');
    await sql("SELECT create_distributed_table('sessions', 'user_id', shard_count => 4, colocate_with => 'none')");
    await sql('INSERT INTO sessions SELECT g, now() FROM generate_series(1, 20000) g');
    const planned = uniformRanges(4).map((r, i) => ({ shardIndex: i, hashMin: r.min, hashMax: r.max, rows: 5000, load: i === 0 ? 0.7 : 0.1, node: null }));
    await sql('INSERT INTO adaptive_load.profiles (table_name, profile) VALUES ($1, $2)',
      ['sessions', JSON.stringify({ version: 1, table: 'sessions', kind: 'distributed', shards: planned })]);
    const prior = await withClient(url, (c) => priorShares(c));
    const sessionShards = (await sql("SELECT shardid::text AS s FROM pg_dist_shard WHERE logicalrelid = 'sessions'::regclass ORDER BY shardminvalue::int")).rows.map((x) => x.s as string);
    const within = sessionShards.map((id) => prior.get(id)!);
    assert.ok(within.every((p) => p.source === 'profile'));
    assert.ok(Math.abs(within[0]!.share / within[1]!.share - 7) < 1e-6, within.map((p) => p.share).join(', '));
    // events drew every query the coordinator saw; sessions none: it keeps only a size-based tenth.
    const eventsShards = (await sql("SELECT shardid::text AS s FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass")).rows.map((x) => x.s as string);
    const total = (ids: string[]) => ids.reduce((a, id) => a + prior.get(id)!.share, 0);
    assert.ok(total(eventsShards) > 5 * total(sessionShards), `events ${total(eventsShards)} vs sessions ${total(sessionShards)}`);
    assert.ok(eventsShards.every((id) => prior.get(id)!.source === 'size'));
  });

  it('rebalance --table on a reference, Citus-local or plain table says it is not hash-distributed (exit 0, nothing to do)', async () => {
    await sql('CREATE TABLE lookup (id int PRIMARY KEY)');
    await sql("SELECT create_reference_table('lookup')");
    await sql('CREATE TABLE plain_local (id int)');
    await sql('CREATE TABLE citus_local (id int)');
    await sql("SELECT citus_set_coordinator_host('localhost', $1)", [cluster.coordinator.port]);
    await sql("SELECT citus_add_local_table_to_metadata('citus_local')");
    const cases: [string, RegExp][] = [
      ['lookup', /^lookup is a reference table \(a copy on every node\), not hash-distributed: nothing to rebalance\n$/],
      ['citus_local', /^citus_local is a Citus local table \(on the coordinator only\), not hash-distributed: nothing to rebalance\n$/],
      ['plain_local', /^plain_local is a plain PostgreSQL table \(not in Citus's metadata\), not hash-distributed: nothing to rebalance\n$/],
    ];
    for (const [table, message] of cases) {
      const r = await runCli(['rebalance', '--dry-run', '--table', table, '--coordinator', url]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, message);
      assert.doesNotMatch(r.stdout, /balanced/);
      const j = await runCli(['rebalance', '--dry-run', '--table', table, '--coordinator', url, '--json']);
      assert.equal(j.status, 0, j.stderr);
      assert.deepEqual((j.json as { moves: unknown[] }).moves, []);
      assert.match(String((j.json as { notRebalanced?: string }).notRebalanced), /not hash-distributed/);
    }
    const missing = await runCli(['rebalance', '--dry-run', '--table', 'no_such_table', '--coordinator', url]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no_such_table does not exist/);
    await sql('DROP TABLE lookup, plain_local, citus_local');
  });

  it('report marks a worker it cannot reach and leaves it out of the size skew', async () => {
    const victim = cluster.workers[1]!;
    cluster.kill(victim);
    try {
      const r = await runCli(['report', '--format', 'json', '--table', 'events', '--coordinator', url]);
      assert.equal(r.status, 0, r.stderr);
      const data = JSON.parse(r.stdout) as { tables: { table: string; sizeSkew: number; nodes: { node: string; bytes: number | null; reachable: boolean }[] }[] };
      const events = data.tables.find((t) => t.table === 'events')!;
      const down = events.nodes.find((n) => n.node.endsWith(`:${victim.port}`))!;
      const up = events.nodes.find((n) => !n.node.endsWith(`:${victim.port}`))!;
      assert.equal(down.reachable, false);
      assert.equal(down.bytes, null);
      assert.equal(up.reachable, true);
      assert.ok(up.bytes! > 0);
      assert.equal(events.sizeSkew, 1, 'one reachable node: no skew to speak of');
      const text = await runCli(['report', '--table', 'events', '--coordinator', url]);
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`:${victim.port}\\s.*unreachable`));
      assert.match(text.stdout, /size skew \(busiest\/mean\): 1\.00 \(1 node unreachable, left out\)/);
      assert.doesNotMatch(text.stdout, /\b0 B\b/);
    } finally {
      cluster.restart(victim);
    }
  });

  it('the daemon records a worker that went away, keeps ticking, and stops cleanly', async () => {
    const conn = resolveConnectionConfig({ coordinator: url });
    const ticks: MonitorResult[] = [];
    const errors: Error[] = [];
    const daemon = await startDaemon(conn, { schedule: '* * * * * *', onTick: (r) => ticks.push(r), onError: (e) => errors.push(e) });
    const waitFor = async (cond: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(cond(), what);
    };
    await waitFor(() => ticks.length >= 1, 'a first tick');
    const victim = cluster.workers[1]!;
    cluster.kill(victim);
    await waitFor(() => ticks.some((t) => t.unreachable.some((u) => u.node.endsWith(`:${victim.port}`))), 'a tick that records the stopped worker');
    cluster.restart(victim);
    const seen = ticks.length;
    await waitFor(() => ticks.length > seen && ticks[ticks.length - 1]!.unreachable.length === 0, 'a tick after the worker came back');
    // A second daemon stands by while the first holds the lock.
    let standby = 0;
    const second = await startDaemon(conn, { schedule: '* * * * * *', onStandby: () => { standby++; } });
    await waitFor(() => standby > 0, 'the second daemon standing by');
    await second.stop();
    await daemon.stop();
    const settled = ticks.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(ticks.length, settled, 'no tick after stop');
    const unreachable = await sql("SELECT count(*)::int AS n FROM adaptive_load.windows WHERE cardinality(unreachable) > 0");
    assert.ok(unreachable.rows[0].n >= 1);
    const locks = await withClient(url, (c: pg.Client) => c.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 4407628 AND objid = 0"));
    assert.equal(locks.rows[0].n, 0, 'the lock is released');
  });
});
