/**
 * The coordinator session that holds Citus's shard locks for a direct load sits idle in its
 * transaction while the rows stream. If that session ends (a server's
 * idle_in_transaction_session_timeout, a terminated backend, a cut connection), the locks go with
 * it and shard moves and splits may proceed under the load. The load must not lose its locks to
 * the server's idle timeout, and must never write its commit record without them.
 */
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';

const skip = citusUnavailableReason();

/** Blocks the event loop (onPhase is synchronous): the servers keep running meanwhile. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const LOCKS_SESSION = "application_name LIKE 'citus-adaptive-load job % locks'";

describe('the shard locks session lasts until the last COMMIT PREPARED', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  /** psql, synchronously, for use inside onPhase. */
  const psql = (text: string) => execFileSync('psql', [url, '-AtXc', text], { encoding: 'utf8' }).trim();
  const prepared = async () => {
    let n = 0;
    for (const node of cluster.nodes) {
      n += (await withClient(node.url, (c) => c.query("SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid LIKE 'cal\\_%'"))).rows[0].n;
    }
    return n;
  };

  before(async () => {
    cluster = await LocalCluster.start({ workers: 1, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-lock-session-'));
  });
  after(async () => cluster?.stop());

  const table = async (name: string) => {
    await sql(`CREATE TABLE ${name} (account bigint NOT NULL, v int)`);
    await sql(`SELECT create_distributed_table('${name}', 'account', shard_count => 4)`);
    const file = join(dir, `${name}.csv`);
    writeFileSync(file, Array.from({ length: 1000 }, (_, i) => `${i},${i}`).join('\n'));
    return file;
  };

  it("keeps its locks through the coordinator's idle_in_transaction_session_timeout", async () => {
    const { load } = await import('../../src/pipeline/loader.js');
    const file = await table('idle_locks');
    await sql("ALTER SYSTEM SET idle_in_transaction_session_timeout = '1s'");
    await sql('SELECT pg_reload_conf()');
    try {
      let locksAtPrepared = -1;
      const summary = await load({
        table: 'idle_locks', file, connection: { coordinator: url },
        onPhase: (p) => {
          if (p === 'locked') sleepSync(2500); // the locks session is idle in its transaction meanwhile
          if (p === 'prepared') locksAtPrepared = Number(psql(`SELECT count(*) FROM pg_stat_activity WHERE ${LOCKS_SESSION}`));
        },
      });
      assert.equal(summary.rows, 1000);
      assert.equal(locksAtPrepared, 1, 'the session holding the shard locks was gone before the commit record');
    } finally {
      await sql('ALTER SYSTEM RESET idle_in_transaction_session_timeout');
      await sql('SELECT pg_reload_conf()');
    }
  });

  it('a load whose locks session ended before the commit record commits nothing', async () => {
    const { load } = await import('../../src/pipeline/loader.js');
    const file = await table('lost_locks');
    await assert.rejects(load({
      table: 'lost_locks', file, connection: { coordinator: url },
      onPhase: (p) => {
        if (p === 'streamed') psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${LOCKS_SESSION}`);
      },
    }), /lock/i);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM lost_locks')).rows[0].n), 0);
    assert.equal(await prepared(), 0, 'no prepared transaction may be left');
    const jobs = (await sql("SELECT status FROM adaptive_load.load_jobs WHERE table_name = 'public.lost_locks'")).rows;
    assert.deepEqual(jobs.map((j) => j.status), ['failed']);
  });

  it('a --profile naming another table is refused: no other table is created or distributed', async () => {
    const { load } = await import('../../src/pipeline/loader.js');
    const profileOf = (tableName: string) => {
      const f = join(dir, `${tableName}.profile.json`);
      writeFileSync(f, JSON.stringify({
        version: 1, table: tableName, createdAt: new Date().toISOString(), kind: 'distributed', distributionColumn: 'account',
        shardCount: 4, colocateWith: null, isolate: [], splitPoints: [], placement: [], shards: [], candidates: [], reasons: [],
        columnTypes: { account: 'bigint', v: 'int' }, sample: { rows: 0 }, keyChanges: [], referenceTables: [],
        predicted: { rows: 0, bytes: 0, maxShardLoadOverMean: 1 },
      }));
      return f;
    };
    const file = join(dir, 'prof.csv');
    writeFileSync(file, Array.from({ length: 100 }, (_, i) => `${i},${i}`).join('\n'));
    const exists = async (t: string) => (await sql('SELECT to_regclass($1)::text AS t', [t])).rows[0].t !== null;

    // A missing table: the profile's table must not be created (and left behind) instead.
    await assert.rejects(load({ table: 'prof_target', file, connection: { coordinator: url }, profileFile: profileOf('prof_other') }));
    assert.equal(await exists('prof_other'), false, 'the load created (and left behind) a table it was not asked for');
    assert.equal(await exists('prof_target'), false);

    // An existing local table: another local table named by the profile must not be distributed.
    await sql('CREATE TABLE loc_target (account bigint NOT NULL, v int)');
    await sql('CREATE TABLE loc_other (account bigint NOT NULL, v int)');
    await load({ table: 'loc_target', file, connection: { coordinator: url }, profileFile: profileOf('loc_other') }).catch(() => {});
    const distributed = (await sql("SELECT count(*)::int AS n FROM pg_dist_partition WHERE logicalrelid = 'loc_other'::regclass")).rows[0].n;
    assert.equal(distributed, 0, 'the load distributed a table it was not asked to load');

    // The same table, spelled another way, is of course accepted.
    await sql('CREATE TABLE loc_same (account bigint NOT NULL, v int)');
    const ok = await load({ table: 'loc_same', file, connection: { coordinator: url }, profileFile: profileOf('public."loc_same"') });
    assert.equal(ok.rows, 100);
  });

  it('recover ends within its timeouts when the coordinator stops answering', async () => {
    const { runCli } = await import('../support/cli.js');
    const { FaultProxy } = await import('../support/fault-proxy.js');
    const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: cluster.coordinator.port });
    try {
      // The coordinator goes silent at recovery's question about running jobs.
      proxy.addRule({ direction: 'frontend', action: 'stall', match: (m) => /adaptive_load\.load_jobs WHERE status/.test(m.text ?? '') });
      let pid: number | undefined;
      let hung = false;
      const timer = setTimeout(() => { hung = true; if (pid) process.kill(pid, 'SIGKILL'); }, 60_000);
      const r = await runCli(['recover', '--coordinator', `postgresql://postgres@127.0.0.1:${proxy.port}/postgres`,
        '--statement-timeout', '2', '--connect-timeout', '2', '--json'], { onSpawn: (p) => { pid = p; } })
        .finally(() => clearTimeout(timer));
      assert.equal(proxy.events.filter((e) => e.action === 'stall').length, 1, 'the fault was injected');
      assert.equal(hung, false, 'recover hung on a silent coordinator');
      assert.notEqual(r.status, 0);
    } finally {
      await proxy.close();
    }
  });

  it('a bad input row while batches are in flight commits nothing on any worker', async () => {
    const { load } = await import('../../src/pipeline/loader.js');
    const pg = (await import('pg')).default;
    await sql('CREATE TABLE in_flight (account bigint NOT NULL, v int)');
    await sql("SELECT create_distributed_table('in_flight', 'account', shard_count => 4)");
    // One shard (X) gets one full batch at the start and nothing after; a session blocks on it
    // (its shard table is locked on the worker) while the other session writes the rest.
    const x = (await sql(`SELECT shardid::text AS id, shardminvalue::int AS lo, shardmaxvalue::int AS hi FROM pg_dist_shard
      WHERE logicalrelid = 'in_flight'::regclass ORDER BY shardid LIMIT 1`)).rows[0];
    const keys = (await sql(`SELECT k::int AS k, hashint8(k) BETWEEN $1 AND $2 AS in_x FROM generate_series(1, 200000) k`, [x.lo, x.hi])).rows;
    const inX = keys.filter((r) => r.in_x).slice(0, 3000).map((r) => r.k as number);
    const rest = keys.filter((r) => !r.in_x).map((r) => r.k as number);
    const lines = [...inX.map((k) => `${k},1`), ...rest.slice(0, 100000).map((k) => `${k},1`), '1,2,3', ...rest.slice(100000).map((k) => `${k},1`)];
    const file = join(dir, 'in_flight.csv');
    writeFileSync(file, lines.join('\n'));
    const worker = new pg.Client({ connectionString: cluster.workers[0]!.url });
    await worker.connect();
    try {
      await worker.query('SET citus.enable_manual_changes_to_shards = on');
      await worker.query('BEGIN');
      await worker.query(`LOCK TABLE public.in_flight_${x.id} IN ACCESS EXCLUSIVE MODE`);
      const release = setTimeout(() => { worker.query('COMMIT').catch(() => {}); }, 4000);
      await assert.rejects(load({
        table: 'in_flight', file, connection: { coordinator: url }, connectionsPerNode: 2, batchBytes: 16384,
      }), /line 100002|fields|column/i);
      clearTimeout(release);
      await worker.query('COMMIT').catch(() => {});
    } finally {
      await worker.end();
    }
    assert.equal(Number((await sql('SELECT count(*) AS n FROM in_flight')).rows[0].n), 0, 'a failed load left rows behind');
    assert.equal(await prepared(), 0);
  });
});
