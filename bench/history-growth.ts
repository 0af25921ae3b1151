/**
 * Benchmark: a monitor cycle's cost as the monitoring history grows. A Citus cluster of two
 * workers with one distributed table; synthetic history rows (windows with shard load, prediction
 * history, node metrics and model states, as a month of cycles leaves them) are added with
 * generate_series up to each size, and at each size one real cycle runs (workload, monitorOnce,
 * then the cycle's retention pass): prints the cycle's time, the process's peak RSS and heap
 * during it, and, for comparison, what reading the whole of shard_load (what a cycle did before
 * it read a bounded window) takes.
 *
 *   npm run bench:history
 *   HISTORY_ROWS=0,1000000,2000000 HISTORY_SHARDS=300 node --expose-gc dist/bench/history-growth.js
 */
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../src/connect/config.js';
import { migrate } from '../src/store/migrate.js';
import { monitorOnce } from '../src/monitor/monitor.js';
import { applyRetention } from '../src/monitor/history-retention.js';

const SIZES = (process.env.HISTORY_ROWS ?? '0,1000000,2000000').split(',').map((s) => Number(s.trim()));
const SHARDS = Number(process.env.HISTORY_SHARDS ?? 300);
/** Synthetic windows are spread over the last RETAINED_DAYS days: all inside the default horizon, so the cycle keeps them. */
const RETAINED_DAYS = 29;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

/** Runs fn, sampling memory every 10 ms; returns its time and the peaks. */
async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; peakRss: number; peakHeap: number }> {
  gc?.();
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 10);
  const t0 = performance.now();
  try {
    const value = await fn();
    const m = process.memoryUsage();
    return { value, ms: performance.now() - t0, peakRss: Math.max(peakRss, m.rss), peakHeap: Math.max(peakHeap, m.heapUsed) };
  } finally {
    clearInterval(timer);
  }
}

/** Adds windows of synthetic history until shard_load holds `target` rows. */
async function growHistory(db: pg.Client, target: number): Promise<void> {
  const have = Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM adaptive_load.shard_load')).rows[0]!.n);
  const windows = Math.ceil(Math.max(0, target - have) / SHARDS);
  if (windows === 0) return;
  // Old windows first in time (ids above the real ones do not matter to the bounded read's cost).
  await db.query(`
    WITH w AS (
      INSERT INTO adaptive_load.windows (from_at, to_at, mape, nodes)
      SELECT now() - make_interval(secs => $2::float8 * 86400 * (1 - g::float8 / $1)) - interval '5 minutes',
             now() - make_interval(secs => $2::float8 * 86400 * (1 - g::float8 / $1)), 0.1, '[]'
        FROM generate_series(1, $1) g
      RETURNING window_id, to_at)
    INSERT INTO adaptive_load.model_state (fitted_at, weights, mape) SELECT to_at, '{}', 0.1 FROM w`, [windows, RETAINED_DAYS]);
  const shards = `(SELECT s.shardid, s.logicalrelid::regclass::text AS t, row_number() OVER (ORDER BY s.shardid) AS k FROM pg_dist_shard s)`;
  const fresh = `(SELECT window_id FROM adaptive_load.windows w WHERE NOT EXISTS (SELECT 1 FROM adaptive_load.shard_load l WHERE l.window_id = w.window_id) AND w.mape = 0.1)`;
  // Synthetic shard ids beyond the real ones stand for shards of other tables (HISTORY_SHARDS per window).
  await db.query(`
    INSERT INTO adaptive_load.shard_load (window_id, shard_id, table_name, node, calls, total_ms)
    SELECT f.window_id, coalesce(s.shardid, 9000000 + g), coalesce(s.t, 'history_synthetic'), 'synthetic:5432', 10 + g % 7, (g % 13) * 1.5
      FROM ${fresh} f CROSS JOIN generate_series(1, $1) g LEFT JOIN ${shards} s ON s.k = g`, [SHARDS]);
  await db.query(`
    INSERT INTO adaptive_load.prediction_history (window_id, shard_id, predicted_share, actual_share)
    SELECT window_id, shard_id, 1.0 / $1, 1.0 / $1 FROM adaptive_load.shard_load l
     WHERE NOT EXISTS (SELECT 1 FROM adaptive_load.prediction_history p WHERE p.window_id = l.window_id)`, [SHARDS]);
  await db.query(`
    INSERT INTO adaptive_load.node_metrics (window_id, node, busy_ms, shard_ms, background_ms, xacts_per_second, tuples_read_per_second,
                                            tuples_written_per_second, active_backends, waiting_backends, connections_used, load_factor)
    SELECT w.window_id, n, 1000, 900, 100, 10, 100, 10, 1, 0, 0.1, 1 FROM adaptive_load.windows w CROSS JOIN (VALUES ('synthetic-a'), ('synthetic-b')) v(n)
     WHERE w.mape = 0.1 AND NOT EXISTS (SELECT 1 FROM adaptive_load.node_metrics m WHERE m.window_id = w.window_id)`);
  await db.query('VACUUM ANALYZE adaptive_load.windows, adaptive_load.shard_load, adaptive_load.prediction_history, adaptive_load.node_metrics, adaptive_load.model_state');
}

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; a monitor cycle needs a Citus cluster`);
    return;
  }
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    await withClient(url, async (c) => {
      await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await c.query('CREATE TABLE events (tenant_id bigint NOT NULL, event_id bigint NOT NULL, payload text)');
      await c.query("SELECT create_distributed_table('events', 'tenant_id', shard_count => 32)");
      await c.query("INSERT INTO events SELECT 1 + g % 500, g, repeat('x', 40) FROM generate_series(1, 50000) g");
    });
    const conn = resolveConnectionConfig({ coordinator: url });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await migrate(db);
    const workload = () => withClient(url, async (c) => {
      for (let i = 0; i < 200; i++) await c.query('SELECT count(*) FROM events WHERE tenant_id = $1', [1 + (i * 37) % 500]);
    });
    await monitorOnce(db, conn); // starts the counters
    console.log(`history rows (shard_load) | cycle ms | peak RSS | peak heap | retention pass ms | whole shard_load read: ms, heap`);
    for (const size of SIZES) {
      await growHistory(db, size);
      const rows = Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM adaptive_load.shard_load')).rows[0]!.n);
      await workload();
      const cycle = await measure(() => monitorOnce(db, conn));
      const retention = await measure(() => applyRetention(db));
      const whole = await measure(async () => (await db.query('SELECT window_id::text, shard_id::text, total_ms FROM adaptive_load.shard_load ORDER BY window_id')).rowCount);
      console.log(`${String(rows).padStart(25)} | ${cycle.ms.toFixed(0).padStart(8)} | ${mb(cycle.peakRss).padStart(8)} | ${mb(cycle.peakHeap).padStart(9)} | `
        + `${retention.ms.toFixed(0).padStart(17)} | ${whole.ms.toFixed(0)} ms, ${mb(whole.peakHeap)}`);
    }
    await db.end();
  } finally {
    await cluster.stop();
  }
}

await main();
