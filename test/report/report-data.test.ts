/**
 * The report's data on plain PostgreSQL (no Citus needed): monitoring windows are numbered, not
 * named, so "the latest windows" are the highest window ids, in ascending order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { migrate } from '../../src/store/migrate.js';
import { collectReport } from '../../src/report/report-data.js';
import { renderText } from '../../src/report/render-text.js';

describe('report data', () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    await withClient(cluster.coordinator.url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  it('shows the latest 50 windows by number, oldest first (window 58 is newer than window 9)', async () => {
    const r = await withClient(cluster.coordinator.url, async (c) => {
      await c.query(`INSERT INTO adaptive_load.windows (from_at, to_at, mape)
                     SELECT timestamptz '2025-01-01' + g * interval '5 min', timestamptz '2025-01-01' + (g + 1) * interval '5 min', g / 1000.0
                       FROM generate_series(1, 60) g`);
      return collectReport(c);
    });
    const ids = r.windows.map((w) => w.windowId);
    assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => 11 + i));
    assert.equal(r.windows.at(-1)!.to, '2025-01-01T05:05:00.000Z');
    // The text report shows the last ten: windows 51..60.
    const text = renderText(r);
    assert.match(text, /2025-01-01T05:05:00/);
    assert.doesNotMatch(text, /2025-01-01T00:50:00/);
  });

  it('shows the latest 20 loads by job number, newest first', async () => {
    const r = await withClient(cluster.coordinator.url, async (c) => {
      await c.query("INSERT INTO adaptive_load.load_jobs (table_name, source, status) SELECT 't', 'f' || g || '.csv', 'committed' FROM generate_series(1, 25) g");
      return collectReport(c);
    });
    assert.deepEqual(r.loads.map((l) => l.jobId), Array.from({ length: 20 }, (_, i) => 25 - i));
  });
});
