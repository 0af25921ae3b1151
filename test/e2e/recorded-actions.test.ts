/**
 * Every action that changes the cluster is recorded from what happened, with an undo that
 * restores it exactly (issue 15, item 6), and a monitor cycle's history is bounded (item 7), on
 * real Citus:
 *
 * - `rebalance` (CLI) and `adaptive_load.request_rebalance()` (SQL, run by the request runner)
 *   record every shard whose placement changed, colocated shards included, compared with
 *   pg_dist_placement; running the recorded undos puts every placement back.
 * - `tune --apply` reads each setting's origin: a value set with ALTER SYSTEM comes back after
 *   apply + undo (not the default), one from postgresql.conf too.
 * - With a worker stopped, `tune` reports it and plans the others; `tune --apply` changes nothing;
 *   `tune --apply --skip-unreachable` changes the reachable worker and records each change.
 * - A cycle reads a bounded part of shard_load however long the history, and `--retain` prunes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { startRequestListener } from '../../src/monitor/request-runner.js';
import { monitorOnce } from '../../src/monitor/monitor.js';
import { runCli } from '../support/cli.js';
import { RECENT_SHARD_LOAD_SQL } from '../../src/store/history-store.js';
import { HISTORY_WINDOWS } from '../../src/rebalance/policy.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus recorded-actions suite skipped: ${skip}.`);

interface MoveDetail { shardId: string; from: string; to: string; shards: { shardId: string; table: string }[]; startedBy: string; requestId?: string }

describe('Citus suite: actions recorded from what happened, with exact undo; bounded history', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const placements = async () => new Map((await sql(
    `SELECT pl.shardid::text AS s, n.nodeport AS port FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid)
       JOIN pg_dist_shard USING (shardid) WHERE logicalrelid IN ('customers'::regclass, 'orders'::regclass) ORDER BY 1`)).rows.map((r) => [r.s as string, r.port as number]));
  const lastActionId = async () => Number((await sql('SELECT coalesce(max(action_id), 0) AS n FROM adaptive_load.actions')).rows[0].n);
  const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>): Promise<T> => {
    for (let i = 0; i < 300; i++) {
      const v = await fn();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  /** Every customers shard (and so its colocated orders shard) on the first worker. */
  const allOnFirstWorker = async () => {
    const [w1, w2] = cluster.workers;
    const elsewhere = await sql(`SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node n USING (groupid)
                                  WHERE s.logicalrelid = 'customers'::regclass AND n.nodeport = $1`, [w2!.port]);
    for (const r of elsewhere.rows) {
      await sql("SELECT citus_move_shard_placement($1, '127.0.0.1', $2, '127.0.0.1', $3, 'block_writes')", [r.shardid, w2!.port, w1!.port]);
    }
  };

  /** The moves recorded since `since`, checked against the placements before and after. */
  const checkRecordedMoves = async (since: number, before: Map<string, number>, startedBy: string) => {
    const now = await placements();
    const changed = [...before.keys()].filter((s) => before.get(s) !== now.get(s)).sort();
    assert.ok(changed.length >= 2, `the rebalancer moved something (changed: ${changed})`);
    const acts = (await sql("SELECT detail, undo_sql FROM adaptive_load.actions WHERE action_id > $1 AND kind = 'move' ORDER BY action_id", [since])).rows as
      { detail: MoveDetail; undo_sql: string }[];
    const recorded = acts.flatMap((a) => a.detail.shards.map((s) => s.shardId)).sort();
    assert.deepEqual(recorded, changed, 'every shard whose placement changed is recorded, and nothing else');
    assert.ok(acts.every((a) => a.detail.startedBy === startedBy), JSON.stringify(acts.map((a) => a.detail)));
    assert.ok(acts.every((a) => a.detail.shards.some((s) => s.table === 'orders') && a.detail.shards.some((s) => s.table === 'customers')),
      'each move lists the colocated shards that went with it');
    for (const a of acts) {
      for (const s of a.detail.shards) {
        assert.equal(a.detail.from, `127.0.0.1:${before.get(s.shardId)}`);
        assert.equal(a.detail.to, `127.0.0.1:${now.get(s.shardId)}`);
      }
    }
    return acts;
  };

  const runUndos = async (acts: { undo_sql: string }[]) => {
    for (const a of [...acts].reverse()) await sql(a.undo_sql);
  };

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true, settings: { max_parallel_workers_per_gather: 3 } });
    url = cluster.coordinator.url;
    await sql('CREATE TABLE customers (id bigint PRIMARY KEY, name text)');
    await sql('CREATE TABLE orders (customer_id bigint NOT NULL, order_id bigint, total numeric)');
    await sql("SELECT create_distributed_table('customers', 'id', shard_count => 8)");
    await sql("SELECT create_distributed_table('orders', 'customer_id', colocate_with => 'customers')");
    await sql("INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 2000) g");
    await sql('INSERT INTO orders SELECT 1 + g % 2000, g, g % 100 FROM generate_series(1, 20000) g');
    await withClient(url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  it('rebalance (CLI) records every shard that moved, colocated ones included, and the recorded undo restores every placement', async () => {
    await allOnFirstWorker();
    const before = await placements();
    const since = await lastActionId();
    const r = await runCli(['rebalance', '--coordinator', url, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const acts = await checkRecordedMoves(since, before, 'cli');
    assert.deepEqual((r.json as { moved: unknown[] }).moved.length, acts.length, 'the CLI reports what moved');
    await runUndos(acts);
    assert.deepEqual(await placements(), before, 'the undos put every placement back');
  });

  it('a rebalance requested from SQL records every shard that moved, and its undo restores every placement', async () => {
    await allOnFirstWorker();
    const before = await placements();
    const since = await lastActionId();
    const listener = await startRequestListener(resolveConnectionConfig({ coordinator: url }), { pollMs: 200 });
    let id: string;
    try {
      id = (await sql('SELECT adaptive_load.request_rebalance() AS id')).rows[0].id as string;
      const row = await waitFor('the rebalance request', async () => {
        const x = (await sql('SELECT status, error FROM adaptive_load.requests WHERE request_id = $1', [id])).rows[0];
        return x.status === 'done' || x.status === 'failed' ? x : undefined;
      });
      assert.equal(row.status, 'done', row.error);
    } finally {
      await listener.stop();
    }
    const acts = await checkRecordedMoves(since, before, 'request');
    assert.ok(acts.every((a) => a.detail.requestId === id), 'each move names the request');
    await runUndos(acts);
    assert.deepEqual(await placements(), before);
  });

  const setting = async (w: number, name: string) => (await withClient(cluster.workers[w]!.url, (c) => c.query('SELECT current_setting($1) AS v', [name]))).rows[0].v as string;
  const settled = async (w: number, name: string, want: string) => waitFor(`${name} = ${want} on worker ${w}`, async () => ((await setting(w, name)) === want ? true : undefined))
    .catch(async () => assert.equal(await setting(w, name), want, `${name} on worker ${w}`));

  it('tune --apply and its recorded undo restore a value set with ALTER SYSTEM, and one from postgresql.conf', async () => {
    // Below tune's smallest work_mem (4MB), so tune always changes it, and not the 4MB default either.
    for (const w of cluster.workers) await withClient(w.url, async (c) => { await c.query("ALTER SYSTEM SET work_mem = '3MB'"); await c.query('SELECT pg_reload_conf()'); });
    for (const i of [0, 1]) await settled(i, 'work_mem', '3MB');
    const since = await lastActionId();
    const r = await runCli(['tune', '--apply', '--coordinator', url, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const changes = (r.json as { changes: { node: string; name: string; from: string; origin: string }[] }).changes;
    for (const w of cluster.workers) {
      const node = `127.0.0.1:${w.port}`;
      const wm = changes.find((c) => c.node === node && c.name === 'work_mem');
      assert.ok(wm && wm.from === '3MB' && /ALTER SYSTEM/.test(wm.origin), JSON.stringify(changes));
      const mp = changes.find((c) => c.node === node && c.name === 'max_parallel_workers_per_gather');
      assert.ok(mp && mp.from === '3' && mp.origin === 'postgresql.conf', JSON.stringify(changes));
    }
    for (const i of [0, 1]) assert.notEqual(await waitFor('work_mem changed', async () => ((await setting(i, 'work_mem')) !== '3MB' ? true : undefined)), undefined);
    const acts = (await sql("SELECT detail, undo_sql, outcome FROM adaptive_load.actions WHERE action_id > $1 AND kind = 'setting' ORDER BY action_id", [since])).rows;
    assert.equal(acts.length, changes.length, 'one action per change');
    assert.ok(acts.every((a) => a.outcome === 'applied'));
    for (const a of acts) {
      const w = cluster.workers.find((x) => a.detail.node === `127.0.0.1:${x.port}`)!;
      await withClient(w.url, async (c) => {
        for (const stmt of (a.undo_sql as string).split('\n').filter((l) => l && !l.startsWith('--'))) await c.query(stmt);
      });
    }
    for (const i of [0, 1]) {
      await settled(i, 'work_mem', '3MB');
      await settled(i, 'max_parallel_workers_per_gather', '3');
    }
  });

  it('with a worker stopped, tune plans the others, --apply changes nothing, and --skip-unreachable changes and records the reachable one', async () => {
    const [w1, w2] = cluster.workers;
    const node1 = `127.0.0.1:${w1!.port}`;
    const node2 = `127.0.0.1:${w2!.port}`;
    cluster.kill(w2!);
    try {
      const dry = await runCli(['tune', '--coordinator', url, '--json']);
      assert.equal(dry.status, 0, dry.stderr);
      const plan = dry.json as { nodes: { node: string; status: string; changes: unknown[] }[] };
      assert.equal(plan.nodes.find((n) => n.node === node2)?.status, 'unreachable', JSON.stringify(plan));
      assert.ok((plan.nodes.find((n) => n.node === node1)?.changes.length ?? 0) > 0, JSON.stringify(plan));

      const since = await lastActionId();
      const refused = await runCli(['tune', '--apply', '--coordinator', url, '--json']);
      assert.equal(refused.status, 1, refused.stdout);
      assert.match(String((refused.json as { refused?: string }).refused), /changed nothing/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await setting(0, 'work_mem'), '3MB', 'nothing changed on the reachable worker');
      assert.equal(await lastActionId(), since, 'nothing recorded');

      const partial = await runCli(['tune', '--apply', '--skip-unreachable', '--coordinator', url, '--json']);
      assert.equal(partial.status, 0, partial.stderr);
      const applied = partial.json as { nodes: { node: string; status: string; changes: { applied: boolean }[] }[] };
      const n1 = applied.nodes.find((n) => n.node === node1)!;
      assert.equal(n1.status, 'applied');
      const acts = (await sql("SELECT detail->>'node' AS node, outcome, undo_sql FROM adaptive_load.actions WHERE action_id > $1 ORDER BY action_id", [since])).rows;
      assert.equal(acts.length, n1.changes.length);
      assert.ok(acts.every((a) => a.node === node1 && a.outcome === 'applied' && a.undo_sql.includes(`-- on ${node1}`)), JSON.stringify(acts));
      assert.equal(applied.nodes.find((n) => n.node === node2)?.status, 'unreachable');
      await waitFor('work_mem changed', async () => ((await setting(0, 'work_mem')) !== '3MB' ? true : undefined));
    } finally {
      cluster.restart(w2!);
    }
  });

  it('a monitor cycle reads a bounded part of shard_load however long the history, and --retain prunes what is older', async () => {
    // 500 windows of 200 shards each: 100,000 rows of history, half of it 40 days old.
    await sql(`INSERT INTO adaptive_load.windows (from_at, to_at, nodes)
               SELECT now() - make_interval(days => CASE WHEN g <= 250 THEN 40 ELSE 1 END, mins => 600 - g),
                      now() - make_interval(days => CASE WHEN g <= 250 THEN 40 ELSE 1 END, mins => 595 - g), '[]'
                 FROM generate_series(1, 500) g`);
    await sql(`INSERT INTO adaptive_load.shard_load (window_id, shard_id, table_name, node, calls, total_ms)
               SELECT w.window_id, 900000 + g, 'synthetic', 'x:1', 1, g FROM adaptive_load.windows w CROSS JOIN generate_series(1, 200) g`);
    await sql('ANALYZE adaptive_load.shard_load');
    await sql('ANALYZE adaptive_load.windows');
    const total = Number((await sql('SELECT count(*) AS n FROM adaptive_load.shard_load')).rows[0].n);
    assert.ok(total >= 100_000);
    const read = async () => Number((await sql(`SELECT pg_stat_clear_snapshot(), coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n
                                                 FROM pg_stat_user_tables WHERE relid = 'adaptive_load.shard_load'::regclass`)).rows[0].n);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const before = await read();
      await monitorOnce(db, resolveConnectionConfig({ coordinator: url }));
      // The cycle's backend reports its table reads when it goes idle after this.
      await db.query('SELECT pg_stat_force_next_flush()');
      await db.query('SELECT 1');
      const rows = await waitFor('the cycle\'s reads in pg_stat_user_tables', async () => { const n = await read(); return n > before ? n - before : undefined; });
      const plan = (await db.query(`EXPLAIN ${RECENT_SHARD_LOAD_SQL}`, [HISTORY_WINDOWS])).rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.ok(rows < 20_000, `one cycle read ${rows} rows of shard_load's ${total}; the history read's plan:\n${plan}`);
    } finally {
      await db.end();
    }
    const pruned = await runCli(['monitor', '--once', '--retain', '30d', '--coordinator', url, '--json']);
    assert.equal(pruned.status, 0, pruned.stderr);
    const old = await sql("SELECT count(*)::int AS n FROM adaptive_load.windows WHERE to_at < now() - interval '30 days'");
    assert.equal(old.rows[0].n, 0, 'windows older than the horizon are gone');
    const oldRows = await sql("SELECT count(*)::int AS n FROM adaptive_load.shard_load l WHERE NOT EXISTS (SELECT 1 FROM adaptive_load.windows w WHERE w.window_id = l.window_id)");
    assert.equal(oldRows.rows[0].n, 0);
    const kept = await sql("SELECT count(*)::int AS n FROM adaptive_load.windows WHERE to_at > now() - interval '2 days' AND to_at < now() - interval '12 hours'");
    assert.equal(kept.rows[0].n, 250, 'windows inside the horizon are kept');
    assert.equal(Number((await sql("SELECT count(*) AS n FROM adaptive_load.shard_load WHERE table_name = 'synthetic'")).rows[0].n), 250 * 200);
    const bad = await runCli(['monitor', '--once', '--retain', '30 parsecs', '--coordinator', url]);
    assert.equal(bad.status, 2, 'a configuration error, before connecting');
    assert.match(bad.stderr, /--retain "30 parsecs": give a positive duration/);
  });
});
