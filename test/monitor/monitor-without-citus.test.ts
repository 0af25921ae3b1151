/**
 * monitor, rebalance and the daemon's ticks read Citus's catalog: on plain PostgreSQL they say
 * that Citus is required instead of failing with "relation pg_dist_shard does not exist".
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { migrate } from '../../src/store/migrate.js';
import { monitorOnce } from '../../src/monitor/monitor.js';
import { runCli } from '../support/cli.js';

describe('monitor on plain PostgreSQL', () => {
  let cluster: LocalCluster;
  let url: string;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    url = cluster.coordinator.url;
  });
  after(async () => cluster?.stop());

  for (const command of [['monitor', '--once'], ['rebalance'], ['tune']]) {
    it(`${command[0]} says Citus is required (exit 1), as text and as --json`, async () => {
      const r = await runCli([...command, '--coordinator', url]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /requires Citus: the citus extension is not installed in database postgres/);
      assert.doesNotMatch(r.stderr, /pg_dist/);
      const j = await runCli([...command, '--coordinator', url, '--json']);
      assert.equal(j.status, 1, j.stderr);
      assert.match(JSON.stringify(j.json), /requires Citus/);
    });
  }

  it('the library says so too (a daemon tick reports the same error)', async () => {
    await withClient(url, async (c) => {
      await migrate(c);
      await assert.rejects(monitorOnce(c, resolveConnectionConfig({ coordinator: url })), /monitor requires Citus/);
    });
  });
});
