/**
 * Faults a load meets in production, on a real Citus cluster: shard moves while rows stream,
 * a coordinator that commits the record but whose answer is lost, workers cut, stalled or down,
 * concurrent loads into a unique-keyed table. A fault-injecting proxy on 127.0.0.1 sits between
 * the loader and one node (workers are reached through it with --node-map, so Citus keeps its
 * own address for them). Every case ends in one of two states only: all rows, job committed; or
 * no rows, job not committed; and no prepared transaction left behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citusUnavailableReason, LocalCluster, withClient, type LocalNode } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { runCli, type CliResult } from '../support/cli.js';
import { FaultProxy, matchCopyDataBytes, type ProtocolMessage } from '../support/fault-proxy.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus fault suite skipped: ${skip}.`);

/** A run that must end by itself: killed (and reported as hung) after `ms`. */
async function runBounded(args: string[], ms: number): Promise<CliResult & { hung: boolean }> {
  let pid: number | undefined;
  let hung = false;
  const timer = setTimeout(() => { hung = true; if (pid) process.kill(pid, 'SIGKILL'); }, ms);
  try {
    const r = await runCli(args, { onSpawn: (p) => { pid = p; } });
    return { ...r, hung };
  } finally {
    clearTimeout(timer);
  }
}

describe('Citus fault suite: nothing lost, nothing hung', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  let orders: string;
  const ROWS = 300_000;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string) => Number((await sql(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const preparedLeft = async () => {
    let n = 0;
    for (const node of cluster.nodes) {
      n += (await withClient(node.url, (c) => c.query("SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid LIKE 'cal\\_%'"))).rows[0].n;
    }
    return n;
  };
  const recover = async () => {
    const r = await runCli(['recover', '--coordinator', url, '--json']);
    assert.equal(r.status, 0, r.stderr);
  };
  const createOrders = async (table: string) => {
    await sql(ORDERS_DDL.replace('orders', table));
    await sql(`SELECT create_distributed_table('${table}', 'customer_id', shard_count => 8)`);
  };
  /** Only two end states are allowed; says which one this is. */
  const assertAllOrNothing = async (table: string, r: CliResult) => {
    await recover();
    assert.equal(await preparedLeft(), 0, 'no prepared transaction may be left');
    const rows = await count(table);
    const jobs = (await sql('SELECT status FROM adaptive_load.load_jobs WHERE table_name = $1', [`public.${table}`])).rows;
    const committed = jobs.filter((j) => j.status === 'committed').length;
    if (rows === 0) {
      assert.equal(committed, 0, `no rows, yet a job says committed (exit ${r.status}: ${r.stderr})`);
      assert.notEqual(r.status, 0, 'no rows, yet the load said it succeeded');
    } else {
      assert.equal(rows, ROWS, `a partial load: ${rows} of ${ROWS} rows (exit ${r.status}: ${r.stderr})`);
      assert.equal(committed, 1);
      assert.deepEqual((await checkPlacements(url, table)).misplaced, []);
    }
    return rows === ROWS ? 'all' : 'nothing';
  };
  /** Waits until a load is writing COPY data on the node. */
  const untilCopying = async (node: LocalNode, done: () => boolean) => {
    for (let i = 0; i < 3000 && !done(); i++) {
      const n = await withClient(node.url, (c) => c.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'citus-adaptive-load job%' AND query LIKE 'COPY%'"))
        .then((r) => r.rows[0].n as number, () => 0);
      if (n > 0) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  };

  before(async () => {
    // Logical replication for the shard move's logical transfer mode.
    cluster = await LocalCluster.start({ workers: 2, citus: true, settings: { wal_level: 'logical' } });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-faults-'));
    orders = join(dir, 'orders.csv');
    await generateOrdersCsv(orders, { rows: ROWS, customers: 20_000, seed: 11 });
  });
  after(async () => cluster?.stop());

  for (const mode of ['block_writes', 'force_logical'] as const) {
    it(`a shard move (${mode}) during a load waits for it: no row is lost`, async () => {
      const table = `moved_${mode}`;
      await createOrders(table);
      const [source, target] = cluster.workers as [LocalNode, LocalNode];
      let exited = false;
      const loading = runBounded(['--table', table, '--coordinator', url, '--json', '--batch-size', '16384',
        '--connections-per-node', '1', orders], 300_000).finally(() => { exited = true; });
      assert.ok(await untilCopying(source, () => exited) || await untilCopying(target, () => exited), 'the load never wrote');
      const shard = (await sql(`SELECT s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
        JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = $1::regclass AND n.nodeport = $2 LIMIT 1`,
      [table, source.port])).rows[0].shardid as string;
      const move = sql('SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode => $6)',
        [shard, '127.0.0.1', source.port, '127.0.0.1', target.port, mode]);
      const [r] = await Promise.all([loading, move]);
      assert.equal(r.hung, false, 'the load hung');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(await assertAllOrNothing(table, r), 'all');
      const now = (await sql(`SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $1`, [shard])).rows;
      assert.deepEqual(now.map((x) => x.nodeport), [target.port], 'the move finished after the load');
    });
  }

  it("a lost answer to the commit record's COMMIT never rolls back a committed load", async () => {
    const table = 'commit_cut';
    await createOrders(table);
    const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: cluster.coordinator.port });
    try {
      // The COMMIT of the connection that wrote the commit record reaches the server; its answer never returns.
      const recordWriters = new Set<number>();
      proxy.addRule({
        direction: 'frontend',
        action: 'drop-reply',
        match: (m: ProtocolMessage) => {
          if (m.text?.includes('adaptive_load.commit_records')) recordWriters.add(m.connectionIndex);
          return m.type === 'Q' && recordWriters.has(m.connectionIndex) && /^COMMIT/i.test(m.text ?? '');
        },
      });
      const r = await runBounded(['--table', table, '--coordinator', `postgresql://postgres@127.0.0.1:${proxy.port}/postgres`,
        '--json', orders], 300_000);
      assert.equal(r.hung, false, 'the load hung');
      assert.equal(proxy.events.filter((e) => e.action === 'drop-reply').length, 1, 'the fault was injected');
      // The record committed, so the rows must be there (now, or once recovery has run).
      assert.equal(await assertAllOrNothing(table, r), 'all');
    } finally {
      await proxy.close();
    }
  });

  const throughProxy = async (worker: LocalNode, setup: (p: FaultProxy) => void) => {
    const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: worker.port });
    setup(proxy);
    return { proxy, nodeMap: ['--node-map', `127.0.0.1:${worker.port}=127.0.0.1:${proxy.port}`] };
  };

  it('a worker cut mid-COPY fails the load, naming the node; nothing is committed', async () => {
    const table = 'worker_cut';
    await createOrders(table);
    const victim = cluster.workers[1]!;
    const { proxy, nodeMap } = await throughProxy(victim, (p) => p.addRule({ direction: 'frontend', match: matchCopyDataBytes(2 << 20), action: 'cut' }));
    try {
      const r = await runBounded(['--table', table, '--coordinator', url, '--json', ...nodeMap, orders], 120_000);
      assert.equal(r.hung, false, 'the load hung');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${victim.port}`));
      assert.equal(await assertAllOrNothing(table, r), 'nothing');
    } finally {
      await proxy.close();
    }
  });

  it('a worker that stops answering mid-COPY fails the load within the statement timeout', async () => {
    const table = 'worker_stall';
    await createOrders(table);
    const victim = cluster.workers[0]!;
    const { proxy, nodeMap } = await throughProxy(victim, (p) => p.addRule({ direction: 'frontend', match: matchCopyDataBytes(1 << 20), action: 'stall' }));
    try {
      const r = await runBounded(['--table', table, '--coordinator', url, '--json', '--statement-timeout', '3', ...nodeMap, orders], 120_000);
      assert.equal(r.hung, false, 'the load hung');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /COPY on 127\.0\.0\.1:\d+: no answer within the statement timeout \(3 s\)/);
      assert.ok(proxy.events.some((e) => e.action === 'stall'), 'the fault was injected');
    } finally {
      await proxy.close();
    }
    assert.equal(await assertAllOrNothing(table, { status: 1 } as CliResult), 'nothing');
  });

  it('a worker that accepts connections and says nothing fails the load within the connect timeout', async () => {
    const table = 'worker_silent';
    await createOrders(table);
    const victim = cluster.workers[0]!;
    const { proxy, nodeMap } = await throughProxy(victim, (p) => p.stallAccept(true));
    try {
      const r = await runBounded(['--table', table, '--coordinator', url, '--json', '--connect-timeout', '2', ...nodeMap, orders], 120_000);
      assert.equal(r.hung, false, 'the load hung');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot connect.*127\\.0\\.0\\.1:${victim.port}|127\\.0\\.0\\.1:${victim.port}.*timeout`, 's'));
    } finally {
      await proxy.close();
    }
    assert.equal(await assertAllOrNothing(table, { status: 1 } as CliResult), 'nothing');
  });

  it('a worker down at the start fails the load at once and the process exits', async () => {
    const table = 'worker_down';
    await createOrders(table);
    const victim = cluster.workers[1]!;
    const { proxy, nodeMap } = await throughProxy(victim, (p) => p.refuse(true));
    try {
      const r = await runBounded(['--table', table, '--coordinator', url, '--json', ...nodeMap, orders], 120_000);
      assert.equal(r.hung, false, 'the process did not exit');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${victim.port}`));
    } finally {
      await proxy.close();
    }
    // The healthy node's sessions were closed, not left idle in transaction.
    const idle = await withClient(cluster.workers[0]!.url, (c) => c.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'citus-adaptive-load job%'"));
    assert.equal(idle.rows[0].n, 0);
    assert.equal(await assertAllOrNothing(table, { status: 1 } as CliResult), 'nothing');
  });

  it('concurrent loads into a unique-keyed table never deadlock: one commits, the other fails clearly', async () => {
    await sql('CREATE TABLE accounts (id bigint PRIMARY KEY, v text)');
    await sql("SELECT create_distributed_table('accounts', 'id', shard_count => 8)");
    const n = 100_000;
    const up = join(dir, 'accounts-up.csv');
    const down = join(dir, 'accounts-down.csv');
    writeFileSync(up, Array.from({ length: n }, (_, i) => `${i + 1},up`).join('\n'));
    writeFileSync(down, Array.from({ length: n }, (_, i) => `${n - i},down`).join('\n'));
    const args = (f: string) => ['--table', 'accounts', '--coordinator', url, '--json', '--no-header', '--batch-size', '16384',
      '--connections-per-node', '1', f];
    const [a, b] = await Promise.all([runBounded(args(up), 180_000), runBounded(args(down), 180_000)]);
    assert.equal(a.hung || b.hung, false, `a load hung: ${a.stderr} ${b.stderr}`);
    assert.equal([a, b].filter((r) => r.status === 0).length, 1, `${a.stderr}\n${b.stderr}`);
    const failed = a.status === 0 ? b : a;
    assert.match(failed.stderr, /duplicate key|another load .* is writing into public\.accounts/);
    assert.equal(await count('accounts'), n);
    await recover();
    assert.equal(await preparedLeft(), 0);
  });
});
