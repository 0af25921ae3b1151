/**
 * Benchmark: a 2,000,000-row orders CSV (~140 MB, customer_id skewed like tenants) loaded into a
 * 32-shard table distributed by customer_id, on one local cluster (coordinator + 2 workers),
 * with Citus's coordinator COPY (psql \copy) and with the citus-adaptive-load process, in
 * alternating runs. Prints rows/s of each, medians, the ratio, and the tool's peak RSS; then
 * the tool's peak RSS on a file five times larger, to show memory stays flat. Last, bad input:
 * the same file with an unclosed quote on line 3, which must fail within 3x the time Citus's
 * COPY takes to fail and within 256 MiB (--bad-input-only runs just that case).
 *
 *   npm run bench:load [-- --rows 2000000 --runs 3 --scale 5 --bad-input-only]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../scripts/generate-orders.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000000' },
    runs: { type: 'string', default: '3' },
    scale: { type: 'string', default: '5' },
    shards: { type: 'string', default: '32' },
    'bad-input-only': { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows);
const RUNS = Number(args.runs);
const SCALE = Number(args.scale);
const SHARDS = Number(args.shards);
const BAD_INPUT_ONLY = args['bad-input-only'];
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const DATA = fileURLToPath(new URL('../../bench/data', import.meta.url));

interface Run {
  seconds: number;
  peakRssMiB?: number;
  /** With allowFailure: the exit code and what the command said on stderr. */
  code?: number | null;
  stderr?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs a command, polling its peak resident set (VmHWM) from /proc until it exits. */
function timed(cmd: string, argv: string[], allowFailure = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let peak = 0;
    let stderr = '';
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch { /* exited */ }
    }, 20);
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0 && !allowFailure) reject(new Error(`${cmd} exited ${code}: ${stderr}`));
      else resolve({ seconds, peakRssMiB: peak || undefined, code, stderr });
    });
  });
}

async function ensureFile(rows: number): Promise<string> {
  mkdirSync(DATA, { recursive: true });
  const path = join(DATA, `orders-${rows}.csv`);
  if (!existsSync(path)) {
    process.stdout.write(`generating ${path} ... `);
    await generateOrdersCsv(path, { rows, seed: 2024, skew: 1.0 });
    process.stdout.write('done\n');
  }
  return path;
}

/** The input with its line 3 opening a quote that never closes: the rest of the file is one field. */
function ensureBadFile(file: string): string {
  const bad = file.replace(/\.csv$/, '-unclosed-quote.csv');
  if (!existsSync(bad)) {
    const r = spawnSync('sh', ['-c', `{ head -n 2 "$0"; sed -n '3{s/^/"/;p;q;}' "$0"; tail -n +4 "$0"; } > "$1"`, file, bad]);
    if (r.status !== 0) throw new Error(`could not write ${bad}: ${r.stderr}`);
  }
  return bad;
}

/**
 * Bad input: both must fail; the tool within 3x Citus COPY's time to fail and 256 MiB. Alternating
 * runs (the first of each a warm-up, which also stores the table's profile), medians; then one
 * run that plans a fresh profile first (a first load into a table does), which samples the file.
 */
async function badInput(url: string, file: string, count: () => Promise<number>): Promise<void> {
  const bad = ensureBadFile(file);
  const mb = statSync(bad).size / 1e6;
  const copy: Run[] = [];
  const tool: Run[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const c = await timed('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy orders FROM '${bad}' WITH (FORMAT csv, HEADER true)`], true);
    if (c.code === 0) throw new Error('Citus COPY loaded a file with an unclosed quote');
    const t = await timed(process.execPath, [CLI, '--table', 'orders', '--coordinator', url, '--quiet', bad], true);
    if (t.code === 0) throw new Error('citus-adaptive-load loaded a file with an unclosed quote');
    if (await count() !== 0) throw new Error('a failed load left rows behind');
    if (i === 0) {
      console.log(`Citus COPY says: ${c.stderr?.trim().split('\n')[0]}`);
      console.log(`citus-adaptive-load says: ${t.stderr?.trim().split('\n')[0]}`);
      continue;
    }
    copy.push(c);
    tool.push(t);
    console.log(`bad input run ${i}: Citus COPY fails in ${c.seconds.toFixed(2)} s | citus-adaptive-load fails in ${t.seconds.toFixed(2)} s, `
      + `peak RSS ${t.peakRssMiB?.toFixed(0)} MiB`);
  }
  const copyTime = median(copy.map((r) => r.seconds));
  const toolTime = median(tool.map((r) => r.seconds));
  console.log('');
  console.log(`bad input (${mb.toFixed(0)} MB, unclosed quote on line 3), median time to fail:`);
  console.log(`  Citus COPY (psql \\copy through the coordinator): ${copyTime.toFixed(2)} s`);
  console.log(`  citus-adaptive-load (whole process):             ${toolTime.toFixed(2)} s, peak RSS ${median(tool.map((r) => r.peakRssMiB ?? 0)).toFixed(0)} MiB`);
  console.log(`  ratio: ${(toolTime / copyTime).toFixed(2)}x   (target <= 3.0x, peak RSS <= 256 MiB)`);
  const fresh = await timed(process.execPath, [CLI, '--table', 'orders', '--coordinator', url, '--quiet', '--recheck-layout', bad], true);
  if (fresh.code === 0) throw new Error('citus-adaptive-load loaded a file with an unclosed quote');
  console.log(`  citus-adaptive-load planning a fresh profile first (--recheck-layout): ${fresh.seconds.toFixed(2)} s, `
    + `peak RSS ${fresh.peakRssMiB?.toFixed(0)} MiB, ${(fresh.seconds / copyTime).toFixed(2)}x`);
}

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; it compares against Citus's own COPY and needs a Citus cluster`);
    return;
  }
  const file = await ensureFile(ROWS);
  const mb = statSync(file).size / 1e6;
  console.log(`input: ${ROWS.toLocaleString('en-US')} rows, ${mb.toFixed(0)} MB; table: ${SHARDS} shards by customer_id; cluster: coordinator + 2 workers on this machine`);
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    await withClient(url, async (c) => {
      await c.query(ORDERS_DDL);
      await c.query('SELECT create_distributed_table($1, $2, shard_count => $3)', ['orders', 'customer_id', SHARDS]);
    });
    const truncate = () => withClient(url, (c) => c.query('TRUNCATE orders'));
    const count = async () => Number((await withClient(url, (c) => c.query('SELECT count(*) AS n FROM orders'))).rows[0].n);
    if (!BAD_INPUT_ONLY) {
      const copy: Run[] = [];
      const tool: Run[] = [];
      const toolArgs = (f: string) => [CLI, '--table', 'orders', '--coordinator', url, '--json', '--quiet', f];
      // One warm-up of each, not counted (first touches of the shard files, plans, caches).
      for (let i = 0; i <= RUNS; i++) {
        await truncate();
        const c = await timed('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy orders FROM '${file}' WITH (FORMAT csv, HEADER true)`]);
        if (await count() !== ROWS) throw new Error('Citus COPY loaded a wrong row count');
        await truncate();
        const t = await timed(process.execPath, toolArgs(file));
        if (await count() !== ROWS) throw new Error('citus-adaptive-load loaded a wrong row count');
        if (i === 0) continue;
        copy.push(c);
        tool.push(t);
        console.log(`run ${i}: Citus COPY ${(ROWS / c.seconds).toFixed(0)} rows/s (${c.seconds.toFixed(2)} s) | `
          + `citus-adaptive-load ${(ROWS / t.seconds).toFixed(0)} rows/s (${t.seconds.toFixed(2)} s, peak RSS ${t.peakRssMiB?.toFixed(0)} MiB)`);
      }
      const copyRate = ROWS / median(copy.map((r) => r.seconds));
      const toolRate = ROWS / median(tool.map((r) => r.seconds));
      console.log('');
      console.log(`median Citus COPY (psql \\copy through the coordinator): ${copyRate.toFixed(0)} rows/s`);
      console.log(`median citus-adaptive-load (whole process):            ${toolRate.toFixed(0)} rows/s`);
      console.log(`ratio: ${(toolRate / copyRate).toFixed(2)}x   (target >= 2.0x)`);
      console.log(`peak RSS of citus-adaptive-load: ${median(tool.map((r) => r.peakRssMiB ?? 0)).toFixed(0)} MiB (target <= 256 MiB)`);

      if (SCALE > 1) {
        await truncate();
        const big = join(DATA, `orders-${ROWS}x${SCALE}.csv`);
        if (!existsSync(big)) {
          // The same file five times over (order_ids repeat; nothing here depends on them).
          const parts = Array.from({ length: SCALE }, () => file);
          const header = spawnSync('head', ['-n', '1', file], { encoding: 'utf8' }).stdout;
          spawnSync('sh', ['-c', `{ printf '%s' "$0"; for f in "$@"; do tail -n +2 "$f"; done; } > '${big}'`, header, ...parts]);
        }
        const t = await timed(process.execPath, toolArgs(big));
        console.log(`${SCALE}x file (${(statSync(big).size / 1e6).toFixed(0)} MB): ${(ROWS * SCALE / t.seconds).toFixed(0)} rows/s, peak RSS ${t.peakRssMiB?.toFixed(0)} MiB`);
      }
    }
    await truncate();
    await badInput(url, file, count);
  } finally {
    await cluster.stop();
  }
}

await main();
