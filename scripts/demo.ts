/**
 * The demo (`npm run demo`): starts a local cluster (coordinator + 2 workers, as separate
 * PostgreSQL 15 instances), generates a skewed orders file, loads it with the CLI exactly as a
 * user would, and shows where the rows went. With Citus installed it is a real Citus cluster and
 * every row is checked against get_shard_id_for_distribution_column; without it, the demo says
 * how to get one and loads into plain PostgreSQL through the coordinator path.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { citusUnavailableReason, LocalCluster, postgresUnavailableReason, withClient } from './local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from './generate-orders.js';
import { checkPlacements } from './verify-placements.js';

const ROWS = Number(process.env.DEMO_ROWS ?? 300_000);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const noPostgres = postgresUnavailableReason();
  if (noPostgres) {
    say(`The demo needs PostgreSQL 15's server binaries: ${noPostgres}.`);
    say('On Debian/Ubuntu: sudo apt-get install postgresql postgresql-contrib');
    process.exitCode = 1;
    return;
  }
  const noCitus = citusUnavailableReason();
  if (noCitus) {
    say(`Citus is not available here (${noCitus}).`);
    say('To load into a real Citus cluster, start one with Docker:');
    say('  docker compose -f docker/docker-compose.yml up -d');
    say('  npx citus-adaptive-load --coordinator postgres://postgres:postgres@localhost:5432/postgres \\');
    say('    --node-map worker1:5432=localhost:5433 --node-map worker2:5432=localhost:5434 --table orders FILE');
    say('or build Citus 13.x from source for PostgreSQL 15. Meanwhile, the demo runs what it can: plain PostgreSQL.');
    say();
  }
  const dir = mkdtempSync(join(tmpdir(), 'cal-demo-'));
  say(`starting a local cluster (coordinator + 2 workers${noCitus ? ', plain PostgreSQL' : ', Citus'}) ...`);
  const cluster = await LocalCluster.start({ workers: 2, citus: !noCitus });
  try {
    for (const n of cluster.nodes) say(`  ${n.name.padEnd(12)} ${n.url}`);
    if (noCitus) {
      await withClient(cluster.coordinator.url, (c) => c.query(ORDERS_DDL));
      say('created table orders');
    } else {
      say('table orders does not exist yet: the tool samples the file, chooses its layout, creates it and loads it');
    }
    const file = join(dir, 'orders.csv');
    await generateOrdersCsv(file, { rows: ROWS, seed: 1 });
    say(`generated ${file}: ${ROWS.toLocaleString('en-US')} rows, ${(statSync(file).size / 1e6).toFixed(1)} MB, customer_id skewed like tenants`);
    say();
    const cmd = ['--table', 'orders', '--coordinator', cluster.coordinator.url, file];
    say(`$ citus-adaptive-load ${cmd.join(' ')}`);
    const r = spawnSync(process.execPath, [CLI, ...cmd], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the load failed (exit ${r.status})`);
    say();
    await withClient(cluster.coordinator.url, async (c) => {
      const total = (await c.query('SELECT count(*)::int AS n FROM orders')).rows[0].n as number;
      say(`SELECT count(*) FROM orders  ->  ${total.toLocaleString('en-US')}`);
      if (noCitus) return;
      const placement = await c.query<{ node: string; shards: number; size: string }>(
        `SELECT nodename || ':' || nodeport AS node, count(*)::int AS shards, pg_size_pretty(sum(shard_size)) AS size
           FROM citus_shards WHERE table_name = 'orders'::regclass GROUP BY 1 ORDER BY 1`);
      for (const p of placement.rows) say(`  ${p.node}: ${p.shards} shards, ${p.size}`);
      const top = await c.query<{ customer_id: string; n: number }>(
        'SELECT customer_id::text, count(*)::int AS n FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 3');
      say(`largest tenants: ${top.rows.map((t) => `${t.customer_id} (${t.n} rows)`).join(', ')}`);
    });
    if (!noCitus) {
      const check = await checkPlacements(cluster.coordinator.url, 'orders');
      say(`verified on the workers: ${check.rows.toLocaleString('en-US')} rows read from the shard tables, `
        + `${check.misplaced.length} in a shard other than get_shard_id_for_distribution_column names`);
      if (check.misplaced.length) process.exitCode = 1;
    }
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
