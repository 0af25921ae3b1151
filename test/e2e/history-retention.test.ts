/**
 * Retention and the bounded history read on plain PostgreSQL (neither needs Citus): pruning
 * removes every row of windows older than the horizon, in batches no larger than asked, keeps
 * recent windows whole and always the latest window; the history read's plan touches about
 * HISTORY_WINDOWS windows' rows of shard_load whatever its size.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, postgresUnavailableReason, withClient } from '../../scripts/local-cluster.js';
import { migrate } from '../../src/store/migrate.js';
import { parseRetention, pruneHistory } from '../../src/store/retention.js';
import { readRecentShardLoad, RECENT_SHARD_LOAD_SQL } from '../../src/store/history-store.js';

const skip = postgresUnavailableReason();
const DAY = 86_400_000;

describe('history retention and the bounded history read (plain PostgreSQL)', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string, where = 'true') => Number((await sql(`SELECT count(*) AS n FROM adaptive_load.${table} WHERE ${where}`)).rows[0].n);

  /** `n` windows ending `daysAgo` days ago (a minute apart), each with `shards` rows in every per-window table. */
  const addWindows = async (n: number, daysAgo: number, shards: number) => {
    await sql(`WITH w AS (
                 INSERT INTO adaptive_load.windows (from_at, to_at, nodes)
                 SELECT now() - make_interval(days => $2, mins => g + 5), now() - make_interval(days => $2, mins => g), '[]' FROM generate_series(1, $1) g
                 RETURNING window_id, to_at),
               l AS (INSERT INTO adaptive_load.shard_load (window_id, shard_id, table_name, node, calls, total_ms)
                     SELECT window_id, s, 't', 'n:1', 1, s FROM w CROSS JOIN generate_series(1, $3) s),
               p AS (INSERT INTO adaptive_load.prediction_history (window_id, shard_id, predicted_share, actual_share)
                     SELECT window_id, s, 0.1, 0.1 FROM w CROSS JOIN generate_series(1, $3) s),
               m AS (INSERT INTO adaptive_load.node_metrics (window_id, node, busy_ms, shard_ms, background_ms, xacts_per_second, tuples_read_per_second,
                                                             tuples_written_per_second, active_backends, waiting_backends, connections_used, load_factor)
                     SELECT window_id, 'n:1', 1, 1, 0, 1, 1, 1, 1, 0, 0.1, 1 FROM w),
               a AS (INSERT INTO adaptive_load.advice (window_id, position, kind, detail) SELECT window_id, 0, 'x', 'y' FROM w)
               INSERT INTO adaptive_load.model_state (fitted_at, weights) SELECT to_at, '{}' FROM w`, [n, daysAgo, shards]);
  };
  const clear = async () => sql('TRUNCATE adaptive_load.windows, adaptive_load.shard_load, adaptive_load.prediction_history, adaptive_load.node_metrics, adaptive_load.advice, adaptive_load.model_state CASCADE');

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    url = cluster.coordinator.url;
    await withClient(url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  it('prunes every row of windows older than the horizon in bounded batches, and keeps the recent ones whole', async () => {
    await clear();
    await addWindows(6, 40, 30);
    await addWindows(4, 1, 30);
    const horizon = new Date(Date.now() - 30 * DAY);
    const runs: number[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await withClient(url, (c) => pruneHistory(c, { olderThan: horizon, batchRows: 7, maxBatches: 3 }));
      const total = Object.values(r.deleted).reduce((a, b) => a + b, 0);
      runs.push(total);
      assert.ok(total <= 7 * 3, `one run deleted ${total} rows, more than 3 batches of 7`);
      if (!r.more) break;
    }
    assert.ok(runs.length > 1, 'the batch limit spread the work over several runs');
    assert.equal(await count('windows', "to_at < now() - interval '30 days'"), 0, `runs deleted ${runs.join(', ')}`);
    for (const t of ['shard_load', 'prediction_history', 'node_metrics', 'advice']) {
      assert.equal(await count(t, 'NOT EXISTS (SELECT 1 FROM adaptive_load.windows w WHERE w.window_id = window_id)'), 0, `${t} rows without a window`);
    }
    assert.equal(await count('windows'), 4);
    assert.equal(await count('shard_load'), 4 * 30);
    assert.equal(await count('prediction_history'), 4 * 30);
    assert.equal(await count('node_metrics'), 4);
    assert.equal(await count('advice'), 4);
    assert.equal(await count('model_state', "fitted_at < now() - interval '30 days'"), 0);
    assert.equal(await count('model_state'), 4);
  });

  it('keeps the latest window and model even when all of the history is older than the horizon', async () => {
    await clear();
    await addWindows(5, 40, 3);
    const r = await withClient(url, (c) => pruneHistory(c, { olderThan: new Date(Date.now() - 30 * DAY), batchRows: 1000, maxBatches: 50 }));
    assert.equal(r.more, false);
    assert.equal(await count('windows'), 1);
    assert.equal(await count('shard_load'), 3);
    assert.equal(await count('model_state'), 1);
    const latest = Number((await sql('SELECT window_id FROM adaptive_load.windows')).rows[0].window_id);
    assert.equal(latest, Number((await sql("SELECT max(window_id) AS m FROM adaptive_load.advice")).rows[0].m));
  });

  it('the history read touches about HISTORY_WINDOWS windows of shard_load rows, however many there are', async () => {
    await clear();
    await addWindows(2000, 2, 100); // 200,000 rows
    await sql('INSERT INTO adaptive_load.windows (from_at, to_at) SELECT now() - interval \'1 hour\', now() FROM generate_series(1, 50)'); // idle windows
    await sql('ANALYZE adaptive_load.windows, adaptive_load.shard_load');
    const rows = await withClient(url, (c) => readRecentShardLoad(c, 48));
    assert.equal(rows.length, 48 * 100);
    assert.equal(new Set(rows.map((r) => r.windowId)).size, 48);
    const newest = Number((await sql('SELECT max(window_id) AS m FROM adaptive_load.shard_load')).rows[0].m);
    assert.equal(Math.max(...rows.map((r) => Number(r.windowId))), newest, 'the latest active windows');
    const plan = (await sql(`EXPLAIN (ANALYZE, FORMAT JSON) ${RECENT_SHARD_LOAD_SQL}`, [48])).rows[0]['QUERY PLAN'][0].Plan;
    let touched = 0;
    const walk = (n: Record<string, unknown>) => {
      if (n['Relation Name'] === 'shard_load') {
        assert.notEqual(n['Node Type'], 'Seq Scan', 'no sequential scan of shard_load');
        touched += Number(n['Actual Rows']) * Number(n['Actual Loops']) + Number(n['Rows Removed by Filter'] ?? 0);
      }
      for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
    };
    walk(plan);
    assert.ok(touched <= 48 * 100 + 48 + 50, `the read touched ${touched} of 200,000 shard_load rows`);
  });

  it('parses a retention horizon, or refuses it with a message a person can act on', () => {
    assert.equal(parseRetention('30d'), 30 * DAY);
    assert.equal(parseRetention('12h'), 12 * 3_600_000);
    assert.equal(parseRetention('2w'), 14 * DAY);
    assert.equal(parseRetention('off'), 'off');
    for (const bad of ['', '0d', '-1d', '30', 'abc', '1y']) assert.throws(() => parseRetention(bad), /give a positive duration/);
  });
});
