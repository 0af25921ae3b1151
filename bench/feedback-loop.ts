/**
 * Benchmark: the feedback loop. 300,000 multi-tenant events on two workers, plain hash placement,
 * one tenant drawing half of all queries. Runs the workload, one monitor cycle with rebalance,
 * the workload again, and a final monitor cycle; prints per-node load shares predicted and actual,
 * the MAPE of the prediction, and busiest/mean worker load before and after acting.
 *
 *   npm run bench:feedback [-- --seconds 15]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../src/connect/config.js';
import { migrate } from '../src/store/migrate.js';
import { monitorOnce, type MonitorResult } from '../src/monitor/monitor.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, clients: { type: 'string', default: '4' } } });
const SECONDS = Number(args.seconds);
const CLIENTS = Number(args.clients);
const TENANTS = 1000;
const HOT = 1;
const PGBENCH = join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'pgbench');

function workload(url: string, dir: string): number {
  const file = join(dir, 'tenant-queries.sql');
  // Half of all queries go to the hot tenant, the rest spread over the others.
  writeFileSync(file, `\\set r random(1, 100)
\\if :r <= 50
\\set t ${HOT}
\\else
\\set t random(2, ${TENANTS})
\\endif
SELECT count(*), sum(length(payload)) FROM events WHERE tenant_id = :t;
`);
  const r = spawnSync(PGBENCH, ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-f', file, url], { encoding: 'utf8' });
  const m = /tps = ([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench failed: ${r.stderr}${r.stdout}`);
  return Number(m[1]);
}

function show(label: string, r: MonitorResult): void {
  console.log(`${label}: busiest/mean worker load ${(r.imbalance.actual ?? NaN).toFixed(2)}${r.wape === null ? '' : `, WAPE ${r.wape.toFixed(3)}`}${r.mape === null ? '' : `, MAPE ${r.mape.toFixed(3)} (shards ${r.shardMape?.toFixed(3)})`}`);
  for (const n of r.nodes) {
    const l = n.live;
    const live = l ? `  busy ${(l.busyMs / 1000).toFixed(1)} s, ${l.xactsPerSecond.toFixed(0)} xact/s, host CPU ${l.host?.cpuBusy == null ? '-' : `${(l.host.cpuBusy * 100).toFixed(0)}%`}, capacity ${l.capacity.toFixed(2)}` : '';
    console.log(`  ${n.node.padEnd(20)} predicted ${n.predictedShare === null ? '   -  ' : `${(n.predictedShare * 100).toFixed(1).padStart(5)}%`}  actual ${((n.actualShare ?? NaN) * 100).toFixed(1).padStart(5)}%${live}`);
  }
}

async function main(): Promise<void> {
  const missing = citusUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}; the feedback loop needs a Citus cluster`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cal-bench-feedback-'));
  const cluster = await LocalCluster.start({ workers: 2, citus: true });
  const url = cluster.coordinator.url;
  try {
    // Created on the coordinator, Citus propagates the extension to the workers.
    await withClient(url, (c) => c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements'));
    await withClient(url, async (c) => {
      await c.query('CREATE TABLE events (tenant_id bigint NOT NULL, event_id bigint NOT NULL, payload text)');
      await c.query("SELECT create_distributed_table('events', 'tenant_id', shard_count => 32)");
      await c.query(`INSERT INTO events SELECT 1 + (g % ${TENANTS}), g, repeat('x', 40 + g % 60) FROM generate_series(1, 300000) g`);
      await c.query('ANALYZE events');
    });
    const conn = resolveConnectionConfig({ coordinator: url });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await migrate(db);
    console.log(`300,000 events, ${TENANTS} tenants, 32 shards on 2 workers (hash placement); tenant ${HOT} draws half of all queries; pgbench -c ${CLIENTS} for ${SECONDS} s per run`);
    await monitorOnce(db, conn); // start the counters
    const tps1 = workload(url, dir);
    const before = await monitorOnce(db, conn, { rebalance: true });
    show(`workload 1 (${tps1.toFixed(0)} tps), before acting`, before);
    for (const h of before.hotspots) console.log(`  hotspot: ${h.reason}`);
    console.log(`  actions: ${before.actions.length} (${before.actions.filter((a) => a.kind === 'move').length} shard moves)`);
    const tps2 = workload(url, dir);
    const after = await monitorOnce(db, conn);
    show(`workload 2 (${tps2.toFixed(0)} tps), after acting`, after);
    console.log('');
    console.log(`WAPE after one cycle: ${after.wape?.toFixed(3)} (target <= 0.15); MAPE ${after.mape?.toFixed(3)}`);
    console.log(`busiest/mean worker load: before ${(before.imbalance.actual ?? NaN).toFixed(2)}, after ${(after.imbalance.actual ?? NaN).toFixed(2)} (target <= 1.25)`);
    await db.end();
  } finally {
    await cluster.stop();
  }
}

await main();
