/**
 * Requests from SQL and the daemon on real Citus, against what was reported: injected options
 * fail the request and run nothing; only the request functions write the requests table and they
 * name the session that called; files outside --allow-dir, `-` and symlinks out are refused; a
 * requester without INSERT on the table is refused; a request whose daemon was SIGKILLed is
 * failed by the next one; the listener reconnects after its backend is terminated; a tick
 * stalled on a lock or a silent worker is abandoned at its time limit and SIGTERM stops a
 * wedged daemon promptly.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { startDaemon } from '../../src/monitor/daemon.js';
import { startRequestListener } from '../../src/monitor/request-runner.js';
import { CLI } from '../support/cli.js';
import { quoteIdent } from '../../src/connect/sql.js';

const skip = citusUnavailableReason();
if (skip) console.log(`request safety suite skipped: ${skip}.`);

interface Row { status: string; error: string | null; outcome: { rows: number } | null; requested_by: string }

describe('Citus suite: requests from SQL are safe to offer, the daemon does not wedge', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let allowed: string;
  let outside: string;
  let good: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const conn = () => resolveConnectionConfig({ coordinator: url });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waitFor = async <T>(probe: () => Promise<T | undefined>, what: string, ms = 20_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(100);
    }
  };
  const request = async (source: string, options: unknown, table = 'orders') =>
    (await sql('SELECT adaptive_load.request_load($1, $2, $3)::text AS id', [table, source, JSON.stringify(options)])).rows[0].id as string;
  const settled = (id: string, ms?: number) => waitFor(async () => {
    const r = (await sql('SELECT status, error, outcome, requested_by::text FROM adaptive_load.requests WHERE request_id = $1', [id])).rows[0] as Row | undefined;
    return r && r.status !== 'pending' && r.status !== 'running' ? r : undefined;
  }, `request ${id} to finish`, ms);
  const count = async () => Number((await sql('SELECT count(*) AS n FROM orders')).rows[0].n);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    await withClient(url, (c) => migrate(c));
    await sql(ORDERS_DDL);
    await sql("SELECT create_distributed_table('orders', 'customer_id', shard_count => 4)");
    const root = mkdtempSync(join(tmpdir(), 'cal-requests-'));
    allowed = join(root, 'allowed');
    outside = join(root, 'outside');
    mkdirSync(allowed);
    mkdirSync(outside);
    good = join(allowed, 'orders.csv');
    await generateOrdersCsv(good, { rows: 200, seed: 3 });
    writeFileSync(join(outside, 'secret.csv'), '1,1,1.00,new,2024-01-01T00:00:00Z,\n');
  });
  after(async () => cluster?.stop());

  it('injected or ill-typed options fail the request with the key named, and nothing runs', async () => {
    const listener = await startRequestListener(conn(), { allowDirs: [allowed] });
    const jobsBefore = Number((await sql('SELECT count(*) AS n FROM adaptive_load.load_jobs')).rows[0].n);
    try {
      const cases: [unknown, RegExp][] = [
        [{ format: 'csv) ; DO $$ BEGIN CREATE TABLE injected_do (x int); END $$; --' }, /"format".*csv\|text/],
        [{ format: 'csv) ; SELECT 1 ; --' }, /"format"/],
        [{ format: 'xml' }, /"format".*csv\|text.*"xml"/],
        [{ maxErrors: '5' }, /"maxErrors" must be integer.*"5"/],
        [{ delimiter: ",') ; CREATE TABLE injected_delim (x int); --" }, /"delimiter"/],
        [{ rejectsFile: '/tmp/rejects' }, /unknown option "rejectsFile"/],
        [{ shardCount: 0 }, /"shardCount" must be >= 1/],
        [['csv'], /must be object/],
      ];
      for (const [options, reason] of cases) {
        const r = await settled(await request(good, options));
        assert.equal(r.status, 'failed', JSON.stringify(options));
        assert.match(r.error ?? '', reason, JSON.stringify(options));
      }
    } finally {
      await listener.stop();
    }
    for (const node of cluster.nodes) {
      const t = await withClient(node.url, (c) => c.query("SELECT to_regclass('injected_do')::text AS a, to_regclass('injected_delim')::text AS b"));
      assert.deepEqual(t.rows[0], { a: null, b: null }, `nothing was created on ${node.name}`);
    }
    assert.equal(await count(), 0, 'no row loaded');
    assert.equal(Number((await sql('SELECT count(*) AS n FROM adaptive_load.load_jobs')).rows[0].n), jobsBefore, 'no load started');
  });

  it('callers go through the functions, which record the session user; a requester needs INSERT on the table', async () => {
    await sql('CREATE ROLE requester LOGIN');
    await sql('GRANT USAGE ON SCHEMA adaptive_load TO requester');
    const asRequester = (text: string, values?: unknown[]) =>
      withClient(url.replace('postgres@', 'requester@'), (c) => c.query(text, values).then((r) => r, (e: Error) => e));
    const direct = await asRequester("INSERT INTO adaptive_load.requests (kind, table_name, source, requested_by) VALUES ('load', 'orders', $1, 'postgres')", [good]);
    assert.ok(direct instanceof Error && /permission denied for table requests/.test(direct.message), String(direct));
    const update = await asRequester("UPDATE adaptive_load.requests SET status = 'done'");
    assert.ok(update instanceof Error && /permission denied/.test(update.message), String(update));
    // Even the owner's INSERT cannot choose who asked.
    await sql("INSERT INTO adaptive_load.requests (kind, table_name, source, requested_by, status) VALUES ('rebalance', NULL, NULL, 'somebody', 'done')");
    const forged = (await sql("SELECT requested_by::text AS r, status FROM adaptive_load.requests ORDER BY request_id DESC LIMIT 1")).rows[0];
    assert.deepEqual(forged, { r: 'postgres', status: 'pending' });
    await sql("DELETE FROM adaptive_load.requests WHERE status = 'pending'");

    const listener = await startRequestListener(conn(), { allowDirs: [allowed] });
    try {
      const asked = await asRequester("SELECT adaptive_load.request_load('orders', $1, '{}')::text AS id", [good]);
      assert.ok(!(asked instanceof Error), String(asked));
      const refused = await settled((asked as pg.QueryResult).rows[0].id as string);
      assert.equal(refused.requested_by, 'requester');
      assert.equal(refused.status, 'failed');
      assert.match(refused.error ?? '', /requester may not INSERT into orders/);
      assert.equal(await count(), 0);
      await sql('GRANT INSERT ON orders TO requester');
      const again = await asRequester("SELECT adaptive_load.request_load('orders', $1, '{}')::text AS id", [good]);
      const done = await settled((again as pg.QueryResult).rows[0].id as string);
      assert.equal(done.status, 'done', done.error ?? '');
      assert.equal(done.outcome!.rows, 200);
    } finally {
      await listener.stop();
    }
    await sql('TRUNCATE orders');
  });

  it('files outside --allow-dir, through a symlink or .., and `-` are refused; no --allow-dir refuses every file', async () => {
    symlinkSync(join(outside, 'secret.csv'), join(allowed, 'link.csv'));
    const listener = await startRequestListener(conn(), { allowDirs: [allowed] });
    try {
      for (const source of [join(outside, 'secret.csv'), join(allowed, 'link.csv'), `${allowed}/../outside/secret.csv`]) {
        const r = await settled(await request(source, {}));
        assert.equal(r.status, 'failed', source);
        assert.match(r.error ?? '', /outside the directories this daemon may read/, source);
      }
      const stdin = await settled(await request('-', {}));
      assert.match(stdin.error ?? '', /cannot read "-"/);
      const missing = await settled(await request(join(allowed, 'missing.csv'), {}));
      assert.match(missing.error ?? '', /missing\.csv: no such file/);
    } finally {
      await listener.stop();
    }
    const none = await startRequestListener(conn());
    try {
      const r = await settled(await request(good, {}));
      assert.equal(r.status, 'failed');
      assert.match(r.error ?? '', /start it with --allow-dir DIR/);
    } finally {
      await none.stop();
    }
    assert.equal(await count(), 0);
  });

  it('a request whose daemon was SIGKILLed while running it is failed by the next daemon', async () => {
    // The load waits on a lock (every load records a job), so the request is surely running when
    // the daemon dies. (A lock on the table would not do: the direct path writes the shards.)
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE adaptive_load.load_jobs IN ACCESS EXCLUSIVE MODE');
    const daemon = spawn(process.execPath, [CLI, 'daemon', '--coordinator', url, '--allow-dir', allowed], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    daemon.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    try {
      const id = await request(good, {});
      await waitFor(async () => ((await sql('SELECT status FROM adaptive_load.requests WHERE request_id = $1', [id])).rows[0].status === 'running' ? true : undefined),
        'the request to run').catch((e: Error) => assert.fail(`${e.message}; daemon said: ${stderr}`));
      daemon.kill('SIGKILL');
      await new Promise((r) => daemon.once('exit', r));
      await blocker.query('ROLLBACK');
      const next = await startRequestListener(conn(), { allowDirs: [allowed] });
      try {
        const r = await settled(id, 10_000);
        assert.equal(r.status, 'failed');
        assert.match(r.error ?? '', /daemon ended while running/);
      } finally {
        await next.stop();
      }
    } finally {
      daemon.kill('SIGKILL');
      await blocker.end().catch(() => {});
    }
  });

  it('a request past its time limit fails with the reason, and its load is ended and leaves nothing', async () => {
    // The load's COPY into one worker's shards waits on a lock: it cannot finish in time.
    const worker = cluster.workers[0]!;
    const shards = (await sql("SELECT shard_name FROM citus_shards WHERE table_name = 'orders'::regclass AND nodeport = $1", [worker.port])).rows.map((r) => r.shard_name as string);
    assert.ok(shards.length > 0);
    const blocker = new pg.Client({ connectionString: worker.url });
    blocker.on('error', () => {});
    await blocker.connect();
    await blocker.query('SET citus.enable_manual_changes_to_shards TO on');
    await blocker.query('BEGIN');
    await blocker.query(`LOCK TABLE ${shards.map(quoteIdent).join(', ')} IN ACCESS EXCLUSIVE MODE`);
    const logs: string[] = [];
    const listener = await startRequestListener(conn(), { allowDirs: [allowed], requestTimeoutMs: 3000, log: (m) => logs.push(m) });
    let released = false;
    try {
      const r = await settled(await request(good, {}), 20_000);
      assert.equal(r.status, 'failed');
      assert.match(r.error ?? '', /passed its time limit of 3 s/);
      await waitFor(async () => (logs.some((l) => /ended the load's coordinator session/.test(l)) ? true : undefined), 'the load to be ended', 5000)
        .catch((e: Error) => assert.fail(`${e.message}: ${logs.join(' | ')}`));
      await blocker.query('ROLLBACK');
      released = true;
      await listener.stop();
    } finally {
      if (!released) await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end().catch(() => {});
      await listener.stop();
    }
    assert.equal(await count(), 0, 'the load was undone');
    const job = (await sql('SELECT status FROM adaptive_load.load_jobs ORDER BY job_id DESC LIMIT 1')).rows[0];
    assert.notEqual(job?.status, 'committed');
  });

  it('the listener reconnects after its backend is terminated and then runs a new request', async () => {
    const logs: string[] = [];
    // Backends of earlier (killed) daemons may take a moment to go.
    await waitFor(async () => ((await sql("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'citus-adaptive-load%'")).rows.length === 0 ? true : undefined), 'earlier daemons\' sessions to end');
    const listener = await startRequestListener(conn(), { allowDirs: [allowed], pollMs: 3_600_000, log: (m) => logs.push(m) });
    try {
      const killed = await sql("SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity WHERE application_name = 'citus-adaptive-load requests'");
      assert.equal(killed.rows.length, 1);
      await waitFor(async () => (logs.some((l) => /reconnected/.test(l)) ? true : undefined), 'the listener to reconnect', 10_000);
      const r = await settled(await request(good, {}), 20_000);
      assert.equal(r.status, 'done', r.error ?? '');
      assert.equal(await count(), 200);
    } finally {
      await listener.stop();
    }
  });

  it('a tick stalled on a lock is abandoned at its time limit, gives up the daemon lock, and SIGTERM ends a wedged daemon', async () => {
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE adaptive_load.shard_predictions, adaptive_load.load_jobs IN ACCESS EXCLUSIVE MODE');
    const errors: Error[] = [];
    const holder = async () => (await sql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 4407628 AND objid = 0 AND granted")).rows[0]?.pid as number | undefined;
    const daemon = await startDaemon(conn(), { schedule: '* * * * * *', tickTimeoutMs: 2000, requests: false, onError: (e) => errors.push(e) });
    let stopMs = 0;
    try {
      const first = await waitFor(holder, 'the daemon to take its lock', 10_000);
      await waitFor(async () => (errors.some((e) => /passed its time limit of 2 s/.test(e.message)) ? true : undefined), 'the tick to be abandoned', 10_000);
      await waitFor(async () => ((await sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [first])).rows.length === 0 ? true : undefined),
        'the abandoned session (and its lock) to be gone', 5000);
      const t0 = Date.now();
      await daemon.stop();
      stopMs = Date.now() - t0;
    } finally {
      await daemon.stop();
    }
    assert.ok(stopMs < 5000, `stop took ${stopMs} ms`);
    // The CLI daemon, wedged in a tick with no tick limit to save it, ends promptly on SIGTERM.
    const cli = spawn(process.execPath, [CLI, 'daemon', '--coordinator', url, '--schedule', '* * * * * *', '--tick-timeout', '600'], { stdio: 'ignore' });
    try {
      await waitFor(async () => ((await sql("SELECT 1 FROM pg_stat_activity WHERE application_name = 'citus-adaptive-load daemon' AND wait_event_type = 'Lock'")).rows.length ? true : undefined),
        'the CLI daemon to wedge on the lock', 15_000);
      const t0 = Date.now();
      cli.kill('SIGTERM');
      const code = await Promise.race([new Promise<number | null>((r) => cli.once('exit', (c) => r(c))), sleep(10_000).then(() => 'timeout' as const)]);
      assert.notEqual(code, 'timeout', 'SIGTERM did not stop the daemon within 10 s');
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(code, 0);
    } finally {
      cli.kill('SIGKILL');
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end().catch(() => {});
    }
    const locks = await sql("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 4407628 AND objid = 0");
    assert.equal(locks.rows[0].n, 0, 'no daemon lock left behind');
  });

  it('a tick stalled by a silent worker (accepts, never answers) is abandoned at its time limit', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => { sockets.push(s); s.on('error', () => {}); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as { port: number }).port;
    const worker = cluster.workers[1]!;
    const nodeId = (await sql('SELECT nodeid FROM pg_dist_node WHERE nodeport = $1', [worker.port])).rows[0].nodeid as number;
    await sql('SELECT citus_update_node($1, $2, $3)', [nodeId, '127.0.0.1', silentPort]);
    const errors: Error[] = [];
    const daemon = await startDaemon(conn(), { schedule: '* * * * * *', tickTimeoutMs: 3000, requests: false, onError: (e) => errors.push(e) });
    try {
      await waitFor(async () => (errors.some((e) => /passed its time limit of 3 s/.test(e.message)) ? true : undefined), 'the tick to be abandoned', 15_000);
      assert.ok(sockets.length > 0, 'something connected to the silent worker');
      const t0 = Date.now();
      await daemon.stop();
      assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms`);
    } finally {
      await daemon.stop();
      await sql('SELECT citus_update_node($1, $2, $3)', [nodeId, '127.0.0.1', worker.port]);
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
