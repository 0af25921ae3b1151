/**
 * Benchmark: the cost of chunking. The same generated orders CSV (customer_id skewed like
 * tenants) is loaded by the citus-adaptive-load CLI into a 32-shard table, as one transaction
 * and with --commit-every (500000 rows by default), in alternating runs on one local cluster
 * (coordinator + 2 workers); the table is truncated before each run. Prints rows/s of each
 * (median of the runs), the ratio, and the chunk count. Target: chunking costs <= 10%.
 *
 *   BENCH_ROWS=2000000 BENCH_RUNS=3 BENCH_COMMIT_EVERY=500000 node dist/bench/chunked-load.js
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../scripts/generate-orders.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const COMMIT_EVERY = process.env.BENCH_COMMIT_EVERY ?? '500000';
const SHARDS = Number(process.env.BENCH_SHARDS ?? 32);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const DATA = fileURLToPath(new URL('../../bench/data', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One CLI load; its own summary gives the rows and, chunked, the chunks. Wall time includes startup. */
function loadOnce(url: string, file: string, extra: string[]): Promise<{ seconds: number; rows: number; chunks: number | undefined }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [CLI, '--table', 'orders', file, '--coordinator', url, '--json', '--quiet', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`load exited ${code}: ${stderr}`));
      const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { rows: number; chunks?: { done: number } };
      resolve({ seconds, rows: summary.rows, chunks: summary.chunks?.done });
    });
  });
}

async function main(): Promise<void> {
  const skip = citusUnavailableReason();
  if (skip) {
    console.log(`chunked-load bench skipped: ${skip}`);
    return;
  }
  mkdirSync(DATA, { recursive: true });
  const file = join(DATA, `orders-${ROWS}.csv`);
  if (!existsSync(file)) await generateOrdersCsv(file, { rows: ROWS, seed: 2024, skew: 1.0 });
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  try {
    const url = cluster.coordinator.url;
    await withClient(url, async (c) => {
      await c.query(ORDERS_DDL);
      await c.query(`SELECT create_distributed_table('orders', 'customer_id', shard_count => ${SHARDS})`);
    });
    const truncate = () => withClient(url, (c) => c.query('TRUNCATE orders'));
    // A warm-up run, not counted: the first load migrates the schema and warms the caches.
    await loadOnce(url, file, []);
    const one: number[] = [];
    const chunked: number[] = [];
    let chunks: number | undefined;
    for (let i = 0; i < RUNS; i++) {
      await truncate();
      const a = await loadOnce(url, file, []);
      if (a.rows !== ROWS) throw new Error(`one transaction loaded ${a.rows} rows, not ${ROWS}`);
      one.push(ROWS / a.seconds);
      await truncate();
      const b = await loadOnce(url, file, ['--commit-every', COMMIT_EVERY]);
      if (b.rows !== ROWS) throw new Error(`chunked loaded ${b.rows} rows, not ${ROWS}`);
      chunked.push(ROWS / b.seconds);
      chunks = b.chunks;
    }
    const m1 = median(one);
    const m2 = median(chunked);
    const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
    console.log(`chunking cost: ${ROWS.toLocaleString('en-US')} rows, ${SHARDS} shards, median of ${RUNS} run(s)`);
    console.log(`  one transaction:              ${fmt(m1).padStart(12)} rows/s`);
    console.log(`  --commit-every ${COMMIT_EVERY.padEnd(14)} ${fmt(m2).padStart(12)} rows/s  (${chunks} chunks)`);
    console.log(`  ratio chunked / one: ${(m2 / m1).toFixed(3)}  (cost ${((1 - m2 / m1) * 100).toFixed(1)}%; target <= 10%)`);
  } finally {
    await cluster.stop();
  }
}

await main();
