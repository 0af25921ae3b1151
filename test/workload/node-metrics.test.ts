/**
 * Live node metrics: /proc parsing and window deltas on recorded text, the capacity left for
 * shard load when a node carries load no shard explains, and the counters read from a real
 * PostgreSQL instance.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { loadFactors, nodeMetrics, parseProc, readNodeCounters, type NodeCounters } from '../../src/workload/node-metrics.js';

const STAT = (user: number, idle: number) => `cpu  ${user} 0 100 ${idle} 50 0 10 0 0 0
cpu0 ${user / 2} 0 50 ${idle / 2} 25 0 5 0 0 0
cpu1 ${user / 2} 0 50 ${idle / 2} 25 0 5 0 0 0
intr 12345
`;
const MEMINFO = 'MemTotal:       16000000 kB\nMemFree:         2000000 kB\nMemAvailable:    4000000 kB\n';
const DISKS = (busy: number) => `   8       0 sda 100 0 800 30 200 0 1600 40 0 ${busy} 70 0 0 0 0
   8       1 sda1 90 0 700 20 180 0 1500 30 0 ${busy * 10} 50 0 0 0 0
   7       0 loop0 1 0 8 0 0 0 0 0 0 99999 0 0 0 0 0
`;

function counters(at: number, over: Partial<NodeCounters> = {}): NodeCounters {
  return {
    takenAt: at, activeMs: 0, xacts: 0, blocksRead: 0, blocksHit: 0, tuplesRead: 0, tuplesWritten: 0,
    activeBackends: 0, waitingBackends: 0, connections: 10, maxConnections: 100, ...over,
  };
}

describe('node metrics', () => {
  it('parses /proc: cores, CPU busy ticks, memory, whole disks only', () => {
    const h = parseProc(STAT(1000, 3000), MEMINFO, DISKS(500))!;
    assert.equal(h.cores, 2);
    assert.equal(h.cpuTotal, 1000 + 100 + 3000 + 50 + 10);
    assert.equal(h.cpuBusy, 1000 + 100 + 10);
    assert.equal(h.memTotalBytes, 16000000 * 1024);
    assert.deepEqual(Object.keys(h.diskBusyMs), ['sda'], 'partitions and loop devices are left out');
    assert.equal(parseProc('nothing here', MEMINFO, ''), undefined);
  });

  it('turns two snapshots into a window: rates, cache hits, CPU and disk busy; a reset counts from zero', () => {
    const before = counters(0, { activeMs: 1000, xacts: 100, blocksRead: 10, blocksHit: 90, host: parseProc(STAT(1000, 3000), MEMINFO, DISKS(500)) });
    const now = counters(10_000, { activeMs: 6000, xacts: 600, blocksRead: 20, blocksHit: 180, waitingBackends: 1, activeBackends: 3,
      host: parseProc(STAT(2500, 3500), MEMINFO, DISKS(2500)) });
    const m = nodeMetrics('w1:5432', before, now);
    assert.equal(m.seconds, 10);
    assert.equal(m.busyMs, 5000);
    assert.equal(m.xactsPerSecond, 50);
    assert.equal(m.cacheHitRatio, 0.9);
    assert.ok(Math.abs(m.host!.cpuBusy! - 1500 / 2000) < 1e-12, `cpu ${m.host!.cpuBusy}`);
    assert.equal(m.host!.diskBusy, 0.2);
    assert.equal(m.host!.memoryUsed, 0.75);
    assert.equal(m.connectionsUsed, 0.1);
    const reset = nodeMetrics('w1:5432', now, counters(20_000, { activeMs: 700 }));
    assert.equal(reset.busyMs, 700, 'a counter that went down (stats reset) counts from zero');
    const first = nodeMetrics('w1:5432', undefined, now);
    assert.equal(first.busyMs, 0, 'no window before the first snapshot');
    assert.equal(first.host!.cpuBusy, null);
  });

  it('a node busy with statements on no shard gets less capacity for shards; noise changes nothing', () => {
    const f = loadFactors([
      { node: 'a', base: 1, shardMs: 500, backgroundMs: 400 },
      { node: 'b', base: 1, shardMs: 500, backgroundMs: 0 },
    ]);
    // 1400 ms in all, 700 each is fair: a has 300 left for shards, b 700.
    assert.ok(Math.abs(f.get('a')!.factor - 0.6) < 1e-12, `a ${f.get('a')!.factor}`);
    assert.ok(Math.abs(f.get('b')!.factor - 1.4) < 1e-12, `b ${f.get('b')!.factor}`);
    assert.ok(Math.abs(f.get('a')!.backgroundShare - 400 / 1400) < 1e-12);
    const quiet = loadFactors([
      { node: 'a', base: 1, shardMs: 500, backgroundMs: 20 },
      { node: 'b', base: 1, shardMs: 500, backgroundMs: 0 },
    ]);
    assert.equal(quiet.get('a')!.factor, 1);
    const bigger = loadFactors([
      { node: 'a', base: 2, shardMs: 500, backgroundMs: 300 },
      { node: 'b', base: 1, shardMs: 500, backgroundMs: 0 },
    ]);
    // a may carry 2/3 of 1300 = 867 in all, 567 of it shards; b 433: factors relative to their bases.
    assert.ok(Math.abs(bigger.get('a')!.factor - (567 / 1000) / (2 / 3)) < 1e-3, `a ${bigger.get('a')!.factor}`);
  });
});

describe('node metrics on a real PostgreSQL instance', () => {
  let cluster: LocalCluster;
  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
  });
  after(async () => cluster?.stop());

  it('reads busy time, transactions, backends and (as superuser) the host', async () => {
    const url = cluster.coordinator.url;
    const first = await withClient(url, (c) => readNodeCounters(c));
    // A session's statistics reach pg_stat_database when it ends.
    await withClient(url, (c) => c.query('SELECT pg_sleep(0.3)'));
    const busy = await withClient(url, async (c) => {
      await c.query('SELECT pg_sleep(0.05)');
      return readNodeCounters(c);
    });
    const m = nodeMetrics('local', first, busy);
    assert.ok(m.busyMs >= 300, `busy ${m.busyMs} ms`);
    assert.ok(m.xactsPerSecond > 0);
    assert.ok(busy.maxConnections >= 10);
    assert.ok(busy.host, 'the harness connects as a superuser, who may read /proc');
    assert.ok(busy.host.cores >= 1 && busy.host.memTotalBytes > 0);
    const held = await withClient(url, async (c) => {
      const other = await withClient(url, async (d) => {
        const sleeping = d.query('SELECT pg_sleep(1)');
        await new Promise((r) => setTimeout(r, 300));
        const seen = await readNodeCounters(c);
        await sleeping;
        return seen;
      });
      return other;
    });
    assert.ok(held.activeBackends >= 1, `active backends ${held.activeBackends}`);
  });
});
