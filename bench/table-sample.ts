/**
 * Benchmark: how long analysing a staging table takes as the table grows. `--from-table`
 * samples it with TABLESAMPLE SYSTEM (plan/table-sampler.ts: about 20,000 rows whatever the
 * size), against what a full read costs (`SELECT count(*)`, the least any whole-table analysis
 * pays). Prints the table's size, the sample's time and rows, and the full read's time.
 *
 *   node dist/bench/table-sample.js
 *   TABLE_SAMPLE_ROWS=1000000,10000000 node dist/bench/table-sample.js
 */
import pg from 'pg';
import { LocalCluster, postgresUnavailableReason } from '../scripts/local-cluster.js';
import { readTable } from '../src/catalog/catalog.js';
import { sampleTable } from '../src/plan/table-sampler.js';

const SIZES = (process.env.TABLE_SAMPLE_ROWS ?? '1000000,10000000').split(',').map((s) => Number(s.trim()));

async function main(): Promise<void> {
  const missing = postgresUnavailableReason();
  if (missing) {
    console.log(`benchmark skipped: ${missing}`);
    return;
  }
  if (SIZES.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error('TABLE_SAMPLE_ROWS must be positive integers');
  const cluster = await LocalCluster.start({ workers: 0, citus: false });
  const db = new pg.Client({ connectionString: cluster.coordinator.url });
  await db.connect();
  try {
    console.log('rows          size      sample (TABLESAMPLE)         full read (count(*))');
    for (const rows of SIZES) {
      await db.query('DROP TABLE IF EXISTS staging_events');
      await db.query(`CREATE TABLE staging_events (event_id bigint, tenant_id bigint, kind text, amount numeric(12,2), at timestamptz, note text)`);
      await db.query(`INSERT INTO staging_events
        SELECT g, 1 + (hashint8(g) & 65535) % 5000, (ARRAY['view','click','buy'])[1 + g % 3], (g % 10000) / 100.0,
               timestamptz '2024-01-01' + g * interval '1 second', repeat('n', 20 + g % 40)
          FROM generate_series(1, ${rows}) g`);
      await db.query('VACUUM ANALYZE staging_events');
      const size = (await db.query<{ s: string }>("SELECT pg_size_pretty(pg_table_size('staging_events')) AS s")).rows[0]!.s;
      // Cold-ish: the sample runs first, before the full read brings every page into the cache.
      const table = await readTable(db, 'staging_events');
      let t0 = performance.now();
      const sample = await sampleTable(db, table, table.columns, { seed: 1 });
      const sampleMs = performance.now() - t0;
      t0 = performance.now();
      await db.query('SELECT count(*) FROM staging_events');
      const fullMs = performance.now() - t0;
      console.log(`${String(rows).padEnd(12)}  ${size.padEnd(8)}  ${(sampleMs / 1000).toFixed(2).padStart(6)} s, ${String(sample.rows.length).padStart(6)} rows (${sample.method})`
        + `   ${(fullMs / 1000).toFixed(2).padStart(6)} s`);
    }
  } finally {
    await db.end();
    await cluster.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
