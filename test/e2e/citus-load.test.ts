/**
 * The Citus suite: loads into a real Citus cluster (coordinator + 2 workers) and proves that every
 * row sits in the shard get_shard_id_for_distribution_column names, read back from the workers'
 * shard tables, for even and uneven (split, isolated) layouts and every supported key type; that a
 * failure at any point leaves the table unchanged; and that recovery finishes a killed load.
 * Skipped, with one line saying why, when the citus extension is not installed.
 */
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { runCli, type CliResult } from '../support/cli.js';

/** Runs test/support/load-and-die.ts: a load through the library that SIGKILLs itself at `phase`. */
function loadAndDie(coordinator: string, phase: string, table: string, file: string): Promise<Omit<CliResult, 'json'>> {
  const script = fileURLToPath(new URL('../support/load-and-die.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, coordinator, phase, table, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

const skip = citusUnavailableReason();
if (skip) console.log(`Citus suite skipped: ${skip}. Build Citus 13.x from source and install it into PostgreSQL 15 to run it.`);

describe('Citus suite: direct shard loading', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string) => Number((await sql(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const load = (args: string[]) => runCli([...args, '--coordinator', url, '--json']);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-citus-test-'));
  });
  after(async () => cluster?.stop());

  it('puts every row of a skewed orders file in its shard, and records the job', async () => {
    await sql(ORDERS_DDL);
    await sql("SELECT create_distributed_table('orders', 'customer_id', shard_count => 16)");
    const file = join(dir, 'orders.csv');
    await generateOrdersCsv(file, { rows: 60_000, customers: 5_000, skew: 1.1, seed: 7 });
    const r = await load(['--table', 'orders', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.path, 'direct');
    assert.equal(r.json?.rows, 60_000);
    assert.equal(r.json?.shards, 16);
    // The WebAssembly router took the rows (the header, and rows cut by a read boundary, went through JavaScript).
    assert.ok(Number(r.json?.fastPathRows) >= 59_000, `fast path took ${r.json?.fastPathRows} rows`);
    const nodes = r.json?.nodes as { node: string; rows: number; connections: number }[];
    assert.equal(nodes.length, 2);
    assert.equal(nodes.reduce((a, n) => a + n.rows, 0), 60_000);
    // Connections follow the rows: the node receiving more rows has at least as many.
    const [more, fewer] = [...nodes].sort((a, b) => b.rows - a.rows);
    assert.ok(more!.connections >= fewer!.connections && more!.connections >= 1 && fewer!.connections >= 1, JSON.stringify(nodes));
    const check = await checkPlacements(url, 'orders');
    assert.equal(check.rows, 60_000);
    assert.deepEqual(check.misplaced, []);
    const job = (await sql('SELECT status, rows_loaded, load_path FROM adaptive_load.load_jobs WHERE job_id = $1', [r.json?.jobId])).rows[0];
    assert.deepEqual(job, { status: 'committed', rows_loaded: '60000', load_path: 'direct' });
    const perShard = await sql('SELECT sum(rows_loaded)::int AS n, count(*)::int AS shards FROM adaptive_load.load_shards WHERE job_id = $1', [r.json?.jobId]);
    assert.deepEqual(perShard.rows[0], { n: 60_000, shards: 16 });
    // The same data through Citus's own COPY gives identical contents.
    await sql('CREATE TABLE orders_ref (LIKE orders)');
    await sql("SELECT create_distributed_table('orders_ref', 'customer_id', colocate_with => 'orders')");
    const viaCoordinator = await load(['--table', 'orders_ref', '--via-coordinator', file]);
    assert.equal(viaCoordinator.json?.path, 'coordinator');
    const diff = await sql(`SELECT count(*)::int AS n FROM ((TABLE orders EXCEPT ALL TABLE orders_ref) UNION ALL (TABLE orders_ref EXCEPT ALL TABLE orders)) d`);
    assert.equal(diff.rows[0].n, 0);
  });

  it('routes by the real ranges after shard splits and tenant isolation', async () => {
    await sql('CREATE TABLE events (tenant_id bigint NOT NULL, seq int, payload text)');
    await sql("SELECT create_distributed_table('events', 'tenant_id', shard_count => 4)");
    const first = (await sql(`SELECT shardid, nodeid FROM pg_dist_shard JOIN pg_dist_placement USING (shardid) JOIN pg_dist_node USING (groupid)
      WHERE logicalrelid = 'events'::regclass ORDER BY shardminvalue::int LIMIT 1`)).rows[0];
    await sql(`SELECT citus_split_shard_by_split_points($1, ARRAY['-2000000000', '-1500000000'], ARRAY[$2::int, $2::int, $2::int], 'block_writes')`,
      [first.shardid, first.nodeid]);
    await sql("SELECT isolate_tenant_to_new_shard('events', 42, shard_transfer_mode => 'block_writes')");
    await sql("SELECT isolate_tenant_to_new_shard('events', 7, shard_transfer_mode => 'block_writes')");
    const shards = Number((await sql("SELECT count(*) AS n FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass")).rows[0].n);
    assert.ok(shards >= 10, `expected uneven ranges, got ${shards} shards`);
    const lines: string[] = ['tenant_id,seq,payload'];
    for (let i = 0; i < 30_000; i++) {
      const tenant = i % 3 === 0 ? 42 : i % 5 === 0 ? 7 : (i * 2654435761) % 100_000 - 50_000;
      lines.push(`${tenant},${i},"p ${i}"`);
    }
    const file = join(dir, 'events.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await load(['--table', 'events', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.shards, shards);
    const check = await checkPlacements(url, 'events');
    assert.equal(check.rows, 30_000);
    assert.deepEqual(check.misplaced, []);
    const tenantShard = (await sql("SELECT count(*)::int AS n FROM events WHERE tenant_id = 42")).rows[0].n;
    assert.equal(tenantShard, 10_000);
  });

  it('hashes text, varchar, uuid, date, timestamptz and int4 keys exactly, in any spelling', async () => {
    const rows = 6000;
    const cases: { type: string; value: (i: number) => string }[] = [
      { type: 'text', value: (i) => (i % 7 === 0 ? `"tenant, ${i % 50} ""q"""` : `tenant-${i % 400}-é中`) },
      { type: 'varchar(20)', value: (i) => `v${i % 300}` },
      { type: 'uuid', value: (i) => {
        const hex = (i % 500).toString(16).padStart(32, '0');
        return i % 2 ? hex.toUpperCase() : `{${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}}`;
      } },
      // Basic-format dates (20240105) are valid PostgreSQL input but not certain for the client:
      // PostgreSQL itself routes those rows.
      { type: 'date', value: (i) => (i % 10 === 0 ? `2024${String(1 + (i % 12)).padStart(2, '0')}05` : `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`) },
      { type: 'timestamptz', value: (i) => (i % 3 ? `2024-03-01 ${String(i % 24).padStart(2, '0')}:00:00+02` : `2024-03-01T${String(i % 24).padStart(2, '0')}:30:00Z`) },
      { type: 'int4', value: (i) => (i % 4 === 0 ? ` +00${i % 977} ` : String((i % 977) - 400)) },
    ];
    for (const [n, c] of cases.entries()) {
      const table = `keyed_${n}`;
      await sql(`CREATE TABLE ${table} (k ${c.type} NOT NULL, i int)`);
      await sql(`SELECT create_distributed_table('${table}', 'k', shard_count => 8)`);
      const file = join(dir, `${table}.csv`);
      writeFileSync(file, Array.from({ length: rows }, (_, i) => `${c.value(i)},${i}`).join('\n'));
      const r = await load(['--table', table, '--no-header', file]);
      assert.equal(r.status, 0, `${c.type}: ${r.stderr}`);
      assert.equal(r.json?.path, 'direct', c.type);
      assert.equal(r.json?.rows, rows);
      if (c.type === 'date') assert.equal(r.json?.serverResolvedRows, rows / 10);
      const check = await checkPlacements(url, table);
      assert.equal(check.rows, rows, c.type);
      assert.deepEqual(check.misplaced, [], c.type);
    }
  });

  it('loads reference tables into every placement, and numeric keys through the coordinator with the reason', async () => {
    await sql('CREATE TABLE countries (code char(2) PRIMARY KEY, name text)');
    await sql("SELECT create_reference_table('countries')");
    const file = join(dir, 'countries.csv');
    writeFileSync(file, 'code,name\nde,Germany\nfr,France\njp,Japan\n');
    const r = await load(['--table', 'countries', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.path, 'direct');
    assert.equal(r.json?.rows, 3);
    for (const node of cluster.nodes) {
      const n = await withClient(node.url, async (c) => {
        await c.query('SET citus.override_table_visibility TO off');
        const shard = (await c.query("SELECT relname FROM pg_class WHERE relname LIKE 'countries\\_%' AND relkind = 'r'")).rows[0]?.relname as string;
        return Number((await c.query(`SELECT count(*) AS n FROM ${shard}`)).rows[0].n);
      });
      assert.equal(n, 3, `reference placement on ${node.name}`);
    }
    await sql('CREATE TABLE amounts (k numeric NOT NULL, v text)');
    await sql("SELECT create_distributed_table('amounts', 'k', shard_count => 4)");
    const nf = join(dir, 'amounts.csv');
    writeFileSync(nf, '1.50,a\n1.5,b\n2,c\n');
    const n = await load(['--table', 'amounts', nf]);
    assert.equal(n.status, 0, n.stderr);
    assert.equal(n.json?.path, 'coordinator');
    assert.match(String(n.json?.reason), /numeric/);
    assert.deepEqual((await checkPlacements(url, 'amounts')).misplaced, []);
    // Shift JIS: 表 is 0x95 0x5c, and 0x5c is a backslash to a byte scanner (an escaped newline
    // here). Only PostgreSQL's conversion splits such input right.
    await sql('CREATE TABLE labels (k int NOT NULL, label text)');
    await sql("SELECT create_distributed_table('labels', 'k', shard_count => 4)");
    const sf = join(dir, 'labels.txt');
    writeFileSync(sf, Buffer.concat([Buffer.from('1\t'), Buffer.from([0x95, 0x5c]), Buffer.from('\n2\tx\n')]));
    const sj = await load(['--table', 'labels', '--format', 'text', '--encoding', 'Shift_JIS', '--no-header', sf]);
    assert.equal(sj.status, 0, sj.stderr);
    assert.equal(sj.json?.path, 'coordinator');
    assert.match(String(sj.json?.reason), /SHIFTJIS/);
    assert.deepEqual((await sql('SELECT k, label FROM labels ORDER BY k')).rows, [{ k: 1, label: '表' }, { k: 2, label: 'x' }]);
    // A bad row in such input still names its line, and nothing is committed.
    const bad = join(dir, 'labels-bad.txt');
    writeFileSync(bad, Buffer.concat([Buffer.from('3\t'), Buffer.from([0x95, 0x5c]), Buffer.from('\n4\ty\nfive\tz\n')]));
    const sb = await load(['--table', 'labels', '--format', 'text', '--encoding', 'SJIS', '--no-header', bad]);
    assert.equal(sb.status, 1);
    assert.match(sb.stderr, /labels-bad\.txt:3.*invalid input syntax for type integer: "five"/);
    assert.equal((await sql('SELECT count(*)::int AS n FROM labels')).rows[0].n, 2);
  });

  it('a failed load into a table it created leaves no table behind, so a rerun works', async () => {
    const file = join(dir, 'fresh.csv');
    const good = Array.from({ length: 3000 }, (_, i) => `${i % 97},${i}`);
    // A NULL key fails the load after the table was created (a file this small is sampled whole, so
    // a value of the wrong type would only make the planner choose a wider type).
    writeFileSync(file, `${['tenant_id,amount', ...good.slice(0, 2000), ',2000', ...good.slice(2000)].join('\n')}\n`);
    const failed = await load(['--table', 'fresh_events', '--distribution-column', 'tenant_id', file]);
    assert.equal(failed.status, 1, failed.stderr);
    assert.match(failed.stderr, /fresh\.csv:2002.*NULL in distribution column tenant_id/);
    assert.equal((await sql("SELECT to_regclass('fresh_events') AS t")).rows[0].t, null, 'the table it created was dropped');
    writeFileSync(file, `${['tenant_id,amount', ...good].join('\n')}\n`);
    const rerun = await load(['--table', 'fresh_events', file]);
    assert.equal(rerun.status, 0, rerun.stderr);
    assert.equal(await count('fresh_events'), 3000);
  });

  it('distributes a local table by --distribution-column, reads stdin and .gz', async () => {
    await sql('CREATE TABLE visits (site_id int NOT NULL, path text)');
    const data = Buffer.from(Array.from({ length: 2000 }, (_, i) => `${i % 37},/p/${i}`).join('\n') + '\n');
    const r = await runCli(['--table', 'visits', '--distribution-column', 'site_id', '--shard-count', '6', '--coordinator', url, '--json', '-'], { input: data });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.path, 'direct');
    assert.equal(r.json?.shards, 6);
    const gz = join(dir, 'visits.csv.gz');
    writeFileSync(gz, gzipSync(data));
    const r2 = await load(['--table', 'visits', gz]);
    assert.equal(r2.json?.rows, 2000);
    const check = await checkPlacements(url, 'visits');
    assert.equal(check.rows, 4000);
    assert.deepEqual(check.misplaced, []);
  });

  it('fails on bad rows naming file, line and column, and commits nothing', async () => {
    await sql('CREATE TABLE payments (customer_id bigint NOT NULL, amount int CHECK (amount > 0), note text)');
    await sql("SELECT create_distributed_table('payments', 'customer_id', shard_count => 8)");
    const good = Array.from({ length: 500 }, (_, i) => `${i},${i + 1},ok`);
    const cases: { name: string; bad: string; line: number; pattern: RegExp }[] = [
      { name: 'NULL key', bad: ',5,x', line: 302, pattern: /NULL in distribution column customer_id/ },
      { name: 'key of the wrong type', bad: 'abc,5,x', line: 302, pattern: /invalid input syntax for type bigint: "abc"/ },
      { name: 'other column of the wrong type', bad: '17,five,x', line: 302, pattern: /column amount.*invalid input syntax for type integer|invalid input syntax for type integer/ },
      { name: 'check violation on a worker', bad: '17,-3,x', line: 302, pattern: /violates check constraint/ },
      { name: 'unterminated quote', bad: '17,5,"open', line: 302, pattern: /unterminated CSV quoted field/ },
      { name: 'missing field', bad: '17,5', line: 302, pattern: /expected 3 fields, found 2/ },
    ];
    for (const c of cases) {
      const file = join(dir, `payments-${c.name.replace(/\W+/g, '-')}.csv`);
      const lines = ['customer_id,amount,note', ...good.slice(0, 300), c.bad, ...good.slice(300)];
      writeFileSync(file, `${lines.join('\n')}\n`);
      const r = await load(['--table', 'payments', file]);
      assert.notEqual(r.status, 0, c.name);
      assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${c.line}`), `${c.name}: ${r.stderr}`);
      assert.match(r.stderr, c.pattern, c.name);
      assert.equal(await count('payments'), 0, `${c.name} left rows behind`);
      const prepared = await withClient(cluster.workers[0]!.url, (w) => w.query('SELECT count(*)::int AS n FROM pg_prepared_xacts'));
      assert.equal(prepared.rows[0].n, 0);
    }
    // With --max-errors the bad rows are set aside with their reasons and the rest loads.
    const file = join(dir, 'payments-mixed.csv');
    writeFileSync(file, `${['customer_id,amount,note', ...good.slice(0, 100), ',5,x', '17,-3,x', ...good.slice(100, 200)].join('\n')}\n`);
    const rejects = join(dir, 'rejects.jsonl');
    const r = await load(['--table', 'payments', '--max-errors', '5', '--rejects', rejects, file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.rows, 200);
    assert.equal(r.json?.rejected, 2);
    const rejected = readFileSync(rejects, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; reason: string; row: string });
    assert.deepEqual(rejected.map((x) => x.line).sort((a, b) => a - b), [102, 103]);
    assert.ok(rejected.some((x) => x.row === '17,-3,x' && /check constraint/.test(x.reason)));
    assert.equal(await count('payments'), 200);
  });

  it('leaves the table unchanged when a worker stops mid-load', async () => {
    await sql(ORDERS_DDL.replace('orders', 'orders_crash'));
    await sql("SELECT create_distributed_table('orders_crash', 'customer_id', shard_count => 8)");
    const file = join(dir, 'orders-crash.csv');
    await generateOrdersCsv(file, { rows: 600_000, seed: 3 });
    const victim = cluster.workers[1]!;
    let exited = false;
    const running = load(['--table', 'orders_crash', '--batch-size', '16384', '--connections-per-node', '1', file]).finally(() => { exited = true; });
    // Wait until the load is writing on the victim, then stop it.
    let seen = false;
    while (!seen && !exited) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await withClient(victim.url, async (c) => (await c.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'citus-adaptive-load job%' AND query LIKE 'COPY%'")).rows[0].n > 0)
        .catch(() => false);
    }
    assert.ok(seen, `the load never reached the worker: ${exited ? (await running).stderr : ''}`);
    cluster.kill(victim);
    const r = await running;
    cluster.restart(victim);
    assert.notEqual(r.status, 0, 'the load should fail when a worker goes away');
    assert.match(r.stderr, new RegExp(`${victim.port}|connection|terminat`, 'i'));
    assert.equal(await count('orders_crash'), 0);
    const rec = await runCli(['recover', '--coordinator', url, '--json']);
    assert.equal(rec.status, 0, rec.stderr);
    for (const w of cluster.workers) {
      const n = await withClient(w.url, (c) => c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts'));
      assert.equal(n.rows[0].n, 0);
    }
  });

  it('passes the documented phases in order on either path; a throwing onPhase changes nothing', async () => {
    const { load: loadFile } = await import('../../src/pipeline/loader.js');
    await sql('CREATE TABLE phased (account bigint NOT NULL, v int)');
    await sql("SELECT create_distributed_table('phased', 'account', shard_count => 4)");
    const file = join(dir, 'phased.csv');
    writeFileSync(file, Array.from({ length: 100 }, (_, i) => `${i},${i}`).join('\n'));
    const direct: string[] = [];
    const summary = await loadFile({
      table: 'phased', file, connection: { coordinator: url },
      onPhase: (p) => {
        direct.push(p);
        if (p === 'commit-recorded') throw new Error('observer bug');
      },
    });
    assert.deepEqual(direct, ['connected', 'recovered', 'locked', 'streamed', 'prepared', 'commit-recorded', 'committed']);
    assert.equal(summary.path, 'direct');
    assert.equal(summary.rows, 100);
    assert.ok(summary.notices.some((n) => /onPhase callback failed at 'commit-recorded'/.test(n)), summary.notices.join('\n'));
    const viaCoordinator: string[] = [];
    await loadFile({ table: 'phased', file, connection: { coordinator: url }, viaCoordinator: true, onPhase: (p) => viaCoordinator.push(p) });
    assert.deepEqual(viaCoordinator, ['connected', 'recovered', 'locked', 'streamed', 'committed']);
    assert.equal(await count('phased'), 200);
  });

  it('recovery rolls back a load killed after PREPARE, and commits one killed after the commit record', async () => {
    await sql('CREATE TABLE ledger (account bigint NOT NULL, v int)');
    await sql("SELECT create_distributed_table('ledger', 'account', shard_count => 4)");
    const file = join(dir, 'ledger.csv');
    writeFileSync(file, Array.from({ length: 1000 }, (_, i) => `${i},${i}`).join('\n'));
    const prepared = async () => {
      let n = 0;
      for (const w of cluster.workers) n += (await withClient(w.url, (c) => c.query("SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid LIKE 'cal\\_%'"))).rows[0].n;
      return n;
    };

    // The commit step's phases: 'prepared' is after every PREPARE, 'commit-recorded' after the commit record.
    const killed = await loadAndDie(url, 'prepared', 'ledger', file);
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(await prepared() > 0, 'prepared transactions should be left behind');
    assert.equal(await count('ledger'), 0);
    const rec = await runCli(['recover', '--coordinator', url, '--json']);
    assert.equal(rec.status, 0, rec.stderr);
    assert.ok((rec.json?.rolledBack as string[]).length > 0);
    assert.equal(await prepared(), 0);
    assert.equal(await count('ledger'), 0);

    const killed2 = await loadAndDie(url, 'commit-recorded', 'ledger', file);
    assert.equal(killed2.signal, 'SIGKILL');
    assert.equal(await count('ledger'), 0, 'nothing is visible before COMMIT PREPARED');
    // The next load recovers automatically: the killed load's rows become visible, then its own.
    const next = await runCli(['--table', 'ledger', '--coordinator', url, file]);
    assert.equal(next.status, 0, next.stderr);
    assert.match(next.stderr, /recovered an earlier interrupted load: \d+ prepared transaction\(s\) committed/);
    assert.equal(await count('ledger'), 2000);
    assert.equal(await prepared(), 0);
    const jobs = (await sql("SELECT status FROM adaptive_load.load_jobs WHERE table_name = 'public.ledger' ORDER BY job_id")).rows.map((j) => j.status);
    assert.deepEqual(jobs, ['rolled_back', 'committed', 'committed']);
  });
});
