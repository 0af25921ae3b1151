/**
 * Benchmark: a staging table as the source against a file of the same rows. On one local cluster
 * (coordinator + 2 workers), N orders rows (customer_id skewed like tenants) are loaded into a
 * 32-shard table distributed by customer_id, from a CSV file and from a staging table holding
 * the same rows (`--from-table`, --then keep), in alternating runs. Prints rows/s of each (the
 * median of the runs, by the loader's own clock, which includes connecting and reading the
 * table), their ratio, and how long the table sampler (TABLESAMPLE) took on the N-row staging
 * table, which is what analysis pays for a staging table of that size.
 *
 *   BENCH_ROWS=10000000 BENCH_RUNS=3 node dist/bench/staging-source.js
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { from as copyFrom } from 'pg-copy-streams';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../scripts/generate-orders.js';
import { findTable } from '../src/catalog/catalog.js';
import { sampleTable } from '../src/plan/table-sampler.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 32);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs the CLI with --json; returns its summary. */
function cli(args: string[]): Promise<{ rows: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`load exited ${code}: ${err}${out}`));
      const s = JSON.parse(out.trim().split('\n').pop()!) as { rows: number; seconds: number };
      resolve(s);
    });
  });
}

async function main(): Promise<void> {
  const skip = citusUnavailableReason();
  if (skip) {
    console.log(`staging-source bench skipped: ${skip}`);
    return;
  }
  if (!Number.isSafeInteger(ROWS) || ROWS < 1 || !Number.isSafeInteger(RUNS) || RUNS < 1) throw new Error('BENCH_ROWS and BENCH_RUNS must be positive integers');
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-staging-'));
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    const file = join(dir, 'orders.csv');
    await generateOrdersCsv(file, { rows: ROWS, seed: 2024, skew: 1.0 });
    await withClient(url, async (c) => {
      await c.query(ORDERS_DDL);
      await c.query(`SELECT create_distributed_table('orders', 'customer_id', shard_count => ${SHARDS})`);
      await c.query('CREATE TABLE orders_staging (LIKE orders)');
      await pipeline(createReadStream(file), c.query(copyFrom('COPY orders_staging FROM STDIN WITH (FORMAT csv, HEADER true)')));
      await c.query('ANALYZE orders_staging');
    });
    const fromFile: number[] = [];
    const fromTable: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      for (const source of ['file', 'table'] as const) {
        await withClient(url, (c) => c.query('TRUNCATE orders'));
        const s = await cli(source === 'file'
          ? ['--table', 'orders', '--coordinator', url, file]
          : ['--table', 'orders', '--coordinator', url, '--from-table', 'orders_staging', '--then', 'keep']);
        if (s.rows !== ROWS) throw new Error(`${source} load moved ${s.rows} rows, not ${ROWS}`);
        (source === 'file' ? fromFile : fromTable).push(s.rows / s.seconds);
        console.log(`run ${run + 1} ${source.padEnd(5)} ${Math.round(s.rows / s.seconds).toLocaleString('en-US')} rows/s (${s.seconds.toFixed(2)} s)`);
      }
    }
    const f = median(fromFile);
    const t = median(fromTable);
    console.log(`rows: ${ROWS.toLocaleString('en-US')}, runs: ${RUNS}, shards: ${SHARDS}`);
    console.log(`from a file:            ${Math.round(f).toLocaleString('en-US')} rows/s (median)`);
    console.log(`from a staging table:   ${Math.round(t).toLocaleString('en-US')} rows/s (median)`);
    console.log(`staging table / file:   ${(t / f).toFixed(3)}`);
    // What analysis pays for a staging table of this size: the sampler alone, default sample.
    const samples = await withClient(url, async (c) => {
      const table = (await findTable(c, 'orders_staging'))!;
      const out: { seconds: number; method: string; rows: number; estimatedRows: number }[] = [];
      for (let i = 0; i < RUNS; i++) {
        const s = await sampleTable(c, table, table.columns, { seed: i + 1 });
        out.push({ seconds: s.seconds, method: s.method, rows: s.rows.length, estimatedRows: s.estimatedRows });
      }
      return out;
    });
    const m = samples[0]!;
    console.log(`sampler on the ${ROWS.toLocaleString('en-US')}-row staging table: ${median(samples.map((s) => s.seconds)).toFixed(3)} s (median), `
      + `TABLESAMPLE ${m.method}, ${m.rows} rows sampled, ${m.estimatedRows.toLocaleString('en-US')} rows estimated`);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
