/**
 * Benchmark: does the layout the tool chooses serve the workload? A customers table distributed by
 * customer_id, a 2,000,000-row orders file with skewed customer_id, and two workloads (tenant point
 * aggregates; tenant joins with customers) run with pgbench against three layouts of orders:
 *   (a) the one citus-adaptive-load chooses by itself (table missing, no hints),
 *   (b) naive: distributed by its primary key order_id,
 *   (c) expert: distributed by customer_id, colocated with customers.
 * Also prints sampling + planning time for the 140 MB file and one ten times larger.
 *
 * Then the multi-table scenarios of layout-scenarios.ts (a whale tenant with a tenant table, small
 * fact tables referencing a tenant table, a star schema with real dimensions), each under the
 * tool's layout, a naive one (every table distributed by its first column) and an expert's.
 *
 *   npm run bench:layout [-- --seconds 6 --rounds 3 --clients 4 --scenario all|orders|whale|facts|star --scale 1]
 *   (LAYOUT_SCALE=0.05 LAYOUT_ROWS=100000 size it down for a smoke run)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../scripts/generate-orders.js';
import { factsScenario, naiveColumn, starScenario, whaleScenario, type Scenario } from './layout-scenarios.js';

const { values: args } = parseArgs({ options: {
  seconds: { type: 'string', default: '6' }, clients: { type: 'string', default: '4' }, rows: { type: 'string', default: process.env.LAYOUT_ROWS ?? '2000000' },
  rounds: { type: 'string', default: '3' }, scenario: { type: 'string', default: 'all' }, scale: { type: 'string', default: process.env.LAYOUT_SCALE ?? '1' },
} });
const SCENARIO = args.scenario;
const SCALE = Number(args.scale);
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const ROWS = Number(args.rows);
const CUSTOMERS = 100_000;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const DATA = fileURLToPath(new URL('../../bench/data', import.meta.url));
const PGBENCH = join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'pgbench');

function cli(argv: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [CLI, ...argv, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`citus-adaptive-load ${argv.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** Runs a pgbench script for SECONDS and returns its tps. */
function pgbench(url: string, script: string, dir: string, name: string): number {
  const file = join(dir, `${name}.sql`);
  writeFileSync(file, script);
  const r = spawnSync(PGBENCH, ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', file, url], { encoding: 'utf8' });
  const m = /tps = ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench ${name} failed: ${r.stderr}${r.stdout}`);
  return Number(m[1]);
}

// Customer ids of the generator: 1 + ((i * 7919 + 13) % (customers * 10)); tenants drawn with the
// same skew the rows have is what a tenant-facing application sees.
const pickTenant = `\\set k random_zipfian(0, ${CUSTOMERS - 1}, 1.1)\n\\set cid 1 + ((:k * 7919 + 13) % ${CUSTOMERS * 10})\n`;
const pointScript = (t: string) => `${pickTenant}SELECT count(*), sum(amount) FROM ${t} WHERE customer_id = :cid;\n`;
const joinScript = (t: string) => `${pickTenant}SET citus.enable_repartition_joins TO on;\n`
  + `SELECT c.name, count(*), sum(o.amount) FROM ${t} o JOIN customers c ON c.customer_id = o.customer_id WHERE o.customer_id = :cid GROUP BY c.name;\n`;

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; it compares Citus layouts and needs a Citus cluster`);
    return;
  }
  if (SCENARIO === 'all' || SCENARIO === 'orders') await ordersBench();
  const scenarios = [whaleScenario(SCALE), factsScenario(SCALE), starScenario(SCALE)].filter((x) => SCENARIO === 'all' || SCENARIO === x.name);
  if (scenarios.length === 0 && SCENARIO !== 'orders') throw new Error(`--scenario must be all, orders, whale, facts or star, not ${SCENARIO}`);
  if (scenarios.length === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-scenarios-'));
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  try {
    for (const s of scenarios) await scenarioBench(cluster.coordinator.url, dir, s);
  } finally {
    await cluster.stop();
  }
}

const LAYOUTS = ['tool', 'naive', 'expert'] as const;

/** One multi-table scenario under the three layouts: decisions, then medians of tps per query. */
async function scenarioBench(url: string, dir: string, s: Scenario): Promise<void> {
  console.log(`\n== ${s.name}: ${s.description}`);
  const create = (schema: string) => withClient(url, async (c) => {
    await c.query(`CREATE SCHEMA ${schema}`);
    for (const t of s.tables) {
      await c.query(`CREATE TABLE ${schema}.${t.name} (${t.columns})`);
      for (const i of t.indexes) await c.query(i.replace('%T', `${schema}.${t.name}`));
    }
  });
  // The tool: alone in the database, every layout its own decision, loaded in order.
  await create('tool');
  for (const t of s.tables) {
    const file = await t.write(dir);
    const r = cli(['--table', `tool.${t.name}`, '--coordinator', url, file]);
    const p = r.profile as { kind: string; distributionColumn: string | null; colocateWith: string | null; isolate: string[]; reasons: string[] } | undefined;
    console.log(`  tool: ${t.name} -> ${p ? (p.kind === 'reference' ? 'reference table' : `distributed by ${p.distributionColumn}${p.colocateWith ? `, colocated with ${p.colocateWith}` : ''}${p.isolate.length ? `, isolated [${p.isolate.join(', ')}]` : ''}`) : 'kept'} `
      + `(${String(r.rows)} rows)${p ? `: ${p.reasons[0]}` : ''}`);
  }
  // Naive: what a new user types, create_distributed_table by the first column of each table.
  await create('naive');
  await withClient(url, async (c) => {
    for (const t of s.tables) {
      await c.query('SELECT create_distributed_table($1, $2)', [`naive.${t.name}`, naiveColumn(t)]);
      await c.query(`INSERT INTO naive.${t.name} SELECT * FROM tool.${t.name}`);
    }
  });
  console.log(`  naive: ${s.tables.map((t) => `${t.name} by ${naiveColumn(t)}`).join(', ')} (create_distributed_table by the first column, defaults)`);
  // Expert: by hand.
  await create('expert');
  await withClient(url, async (c) => {
    for (const t of s.tables) {
      if (t.expert.kind === 'reference') await c.query('SELECT create_reference_table($1)', [`expert.${t.name}`]);
      else {
        await c.query('SELECT create_distributed_table($1, $2, colocate_with => $3)',
          [`expert.${t.name}`, t.expert.column, t.expert.colocateWith ? `expert.${t.expert.colocateWith}` : 'none']);
      }
      await c.query(`INSERT INTO expert.${t.name} SELECT * FROM tool.${t.name}`);
    }
    for (const q of s.expertAfter) await c.query(q.replace(/%S/g, 'expert'));
    for (const l of LAYOUTS) for (const t of s.tables) await c.query(`ANALYZE ${l}.${t.name}`);
  });
  console.log(`  expert: ${s.tables.map((t) => `${t.name} ${t.expert.kind === 'reference' ? 'reference' : `by ${t.expert.column}${t.expert.colocateWith ? ` with ${t.expert.colocateWith}` : ''}`}`).join(', ')}`
    + `${s.expertAfter.length ? `; then ${s.expertAfter.length} statement(s): isolation with CASCADE, rebalance by disk size` : ''}`);

  // Rounds, layouts interleaved within each (the machine may be noisy): medians.
  const tps: Record<string, Record<string, number[]>> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const q of s.queries) {
      for (const l of LAYOUTS) {
        ((tps[q.name] ??= {})[l] ??= []).push(pgbench(url, q.script.replace(/%S/g, l), dir, `${s.name}-${l}-${q.name.replace(/\W+/g, '-')}`));
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  for (const q of s.queries) {
    const m = Object.fromEntries(LAYOUTS.map((l) => [l, median(tps[q.name]![l]!)])) as Record<(typeof LAYOUTS)[number], number>;
    console.log(`  ${q.name.padEnd(20)} tool ${m.tool.toFixed(1).padStart(9)} | naive ${m.naive.toFixed(1).padStart(9)} | expert ${m.expert.toFixed(1).padStart(9)} tps`
      + ` -> tool/expert ${(m.tool / m.expert).toFixed(2)}x (target >= 0.9x), tool/naive ${(m.tool / m.naive).toFixed(1)}x${q.tenantScoped ? ' (target >= 10x)' : ''}`);
  }
  await withClient(url, (c) => c.query('DROP SCHEMA tool, naive, expert CASCADE'));
}

async function ordersBench(): Promise<void> {
  mkdirSync(DATA, { recursive: true });
  const file = join(DATA, `orders-${ROWS}.csv`);
  if (!existsSync(file)) await generateOrdersCsv(file, { rows: ROWS, seed: 2024, skew: 1.0 });
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-layout-'));
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    await withClient(url, async (c) => {
      await c.query('CREATE TABLE customers (customer_id bigint PRIMARY KEY, name text NOT NULL, segment text)');
      await c.query("SELECT create_distributed_table('customers', 'customer_id', shard_count => 32)");
      await c.query(`INSERT INTO customers SELECT 1 + ((g * 7919 + 13) % ${CUSTOMERS * 10}), 'customer ' || g, (ARRAY['smb','mid','ent'])[1 + g % 3]
                       FROM generate_series(0, ${CUSTOMERS - 1}) g`);
      await c.query(ORDERS_DDL.replace('orders', 'orders_naive'));
      await c.query("SELECT create_distributed_table('orders_naive', 'order_id', shard_count => 32, colocate_with => 'none')");
      await c.query(ORDERS_DDL.replace('orders', 'orders_expert'));
      await c.query("SELECT create_distributed_table('orders_expert', 'customer_id', colocate_with => 'customers')");
      await c.query('ANALYZE customers');
    });
    const mb = (statSync(file).size / 1e6).toFixed(0);
    const planned = cli(['plan', '--table', 'orders_tool', '--coordinator', url, file]);
    console.log(`input: ${ROWS.toLocaleString('en-US')} orders (${mb} MB), ${CUSTOMERS.toLocaleString('en-US')} customers; pgbench -c ${CLIENTS} for ${SECONDS} s per run`);
    console.log(`(a) the tool chose: ${planned.kind} by ${planned.distributionColumn}, ${planned.shardCount} shards, colocated with ${planned.colocateWith ?? 'nothing'}, isolate [${(planned.isolate as string[]).join(', ')}]`);
    for (const r of (planned.reasons as string[]).slice(0, 6)) console.log(`    - ${r}`);
    cli(['--table', 'orders_tool', '--coordinator', url, file]);
    cli(['--table', 'orders_naive', '--coordinator', url, file]);
    cli(['--table', 'orders_expert', '--coordinator', url, file]);
    await withClient(url, (c) => c.query('ANALYZE orders_tool; ANALYZE orders_naive; ANALYZE orders_expert'));

    // Three rounds, layouts interleaved within each (the machine is shared and noisy): medians.
    const layouts = [['(a) tool', 'orders_tool'], ['(b) naive', 'orders_naive'], ['(c) expert', 'orders_expert']] as const;
    const runs: Record<string, { point: number[]; join: number[] }> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, table] of layouts) {
        runs[label] ??= { point: [], join: [] };
        runs[label]!.point.push(pgbench(url, pointScript(table), dir, `${table}-point`));
        runs[label]!.join.push(pgbench(url, joinScript(table), dir, `${table}-join`));
      }
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const results: Record<string, { point: number; join: number }> = {};
    for (const [label] of layouts) {
      results[label] = { point: median(runs[label]!.point), join: median(runs[label]!.join) };
      console.log(`${label.padEnd(11)} point aggregate ${results[label]!.point.toFixed(1).padStart(9)} tps | tenant join ${results[label]!.join.toFixed(2).padStart(9)} tps `
        + `(medians of ${ROUNDS}; runs ${runs[label]!.point.map((x) => x.toFixed(0)).join('/')} and ${runs[label]!.join.map((x) => x.toFixed(1)).join('/')})`);
    }
    const a = results['(a) tool']!;
    const b = results['(b) naive']!;
    const c = results['(c) expert']!;
    console.log('');
    console.log(`point aggregate: tool/naive ${(a.point / b.point).toFixed(1)}x (target >= 10x), tool/expert ${(a.point / c.point).toFixed(2)}x (target >= 0.9x)`);
    console.log(`tenant join:     tool/naive ${(a.join / b.join).toFixed(1)}x (target >= 10x), tool/expert ${(a.join / c.join).toFixed(2)}x (target >= 0.9x)`);

    // Sampling + planning time: the 140 MB file and one ten times larger.
    const big = join(DATA, `orders-${ROWS}x10.csv`);
    if (!existsSync(big)) {
      spawnSync('sh', ['-c', `head -n 1 '${file}' > '${big}'; for i in 1 2 3 4 5 6 7 8 9 10; do tail -n +2 '${file}' >> '${big}'; done`]);
    }
    for (const f of [file, big]) {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) times.push((cli(['plan', '--table', 'orders_new', '--coordinator', url, f]).sample as { seconds: number }).seconds);
      times.sort((x, y) => x - y);
      console.log(`sampling + planning, ${(statSync(f).size / 1e6).toFixed(0)} MB: median ${times[1]!.toFixed(3)} s of 3 (target <= 0.5 s)`);
    }
  } finally {
    await cluster.stop();
  }
}

await main();
