import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { requireCitus } from '../catalog/catalog.js';
import { quoteLiteral } from '../connect/sql.js';
import { toDatabaseError } from '../errors.js';
import { readHostCounters } from '../workload/node-metrics.js';
import { recordAction } from '../store/action-store.js';
import { HOT_FACTOR } from './policy.js';

/**
 * The documented set of worker settings the tool sizes from node capacity and predicted load:
 *
 * - `max_parallel_workers_per_gather`: 0 on a hot node (predicted share above its fair share times
 *   policy.ts HOT_FACTOR: parallel workers would take CPU from the many tenant queries it serves), 2 on the others (spare CPU
 *   makes their multi-shard scans faster).
 * - `work_mem`: memory per sort/hash, sized as a quarter of the node's memory (its host's, read
 *   from /proc/meminfo where the role may; else estimated as four times shared_buffers, the usual
 *   25% rule) divided by max_connections and scaled by its capacity; a hot node keeps headroom
 *   for concurrency (halved), bounded to 4 MB..256 MB.
 *
 * Changes are applied only with `apply`: ALTER SYSTEM and pg_reload_conf() on the worker, each
 * recorded in adaptive_load.actions with its reason and the SQL that undoes it.
 */
export interface SettingChange {
  readonly node: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly undo: string;
}

interface NodeLoad {
  readonly node: string;
  readonly nodeId: number;
  readonly predictedShare: number;
  readonly capacity: number;
}

async function nodeLoads(db: Queryable): Promise<NodeLoad[]> {
  const r = await db.query<{ node: string; nodeid: number; share: number | null; capacity: number }>(
    `SELECT n.nodename || ':' || n.nodeport AS node, n.nodeid,
            (SELECT sum(p.predicted_share) FROM adaptive_load.shard_predictions p
               JOIN pg_dist_placement pl ON pl.shardid = p.shard_id WHERE pl.groupid = n.groupid) AS share,
            adaptive_load.node_capacity(n.nodeid) AS capacity
       FROM pg_dist_node n WHERE n.noderole = 'primary' AND n.isactive AND n.groupid > 0 ORDER BY n.nodeid`);
  return r.rows.map((x) => ({ node: x.node, nodeId: x.nodeid, predictedShare: x.share ?? 0, capacity: x.capacity }));
}

function parseMemory(setting: string, unit: string | null): number {
  const n = Number(setting);
  const factor = unit === '8kB' ? 8192 : unit === 'kB' ? 1024 : unit === 'MB' ? 1024 * 1024 : 1;
  return n * factor;
}

/** Plans (and with `apply`, makes) the setting changes on every worker. */
export async function tuneWorkers(db: Queryable, conn: ConnectionConfig, apply: boolean): Promise<SettingChange[]> {
  await requireCitus(db, 'tune');
  const loads = await nodeLoads(db);
  const totalCapacity = loads.reduce((a, l) => a + l.capacity, 0) || 1;
  const changes: SettingChange[] = [];
  for (const l of loads) {
    const fair = l.capacity / totalCapacity;
    const hot = l.predictedShare > fair * HOT_FACTOR;
    const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(l.node)), application_name: 'citus-adaptive-load tune' });
    client.on('error', () => {});
    try {
      await client.connect();
      const cur = await client.query<{ name: string; setting: string; unit: string | null; source: string }>(
        "SELECT name, setting, unit, source FROM pg_settings WHERE name IN ('max_parallel_workers_per_gather', 'work_mem', 'shared_buffers', 'max_connections')");
      const get = (name: string) => cur.rows.find((r) => r.name === name)!;
      const hostMemory = (await readHostCounters(client))?.memTotalBytes;
      const memory = hostMemory ?? parseMemory(get('shared_buffers').setting, get('shared_buffers').unit) * 4;
      const perQuery = (memory * 0.25 * l.capacity) / Number(get('max_connections').setting) / (hot ? 2 : 1);
      const workMemMb = Math.round(Math.min(256, Math.max(4, perQuery / (1024 * 1024))));
      const share = `${(l.predictedShare * 100).toFixed(0)}% of predicted load (fair ${(fair * 100).toFixed(0)}%)`;
      const want: { name: string; to: string; reason: string }[] = [
        { name: 'max_parallel_workers_per_gather', to: hot ? '0' : '2',
          reason: hot ? `${share}: keep its CPU for the many tenant queries, not parallel workers for one`
            : `${share}: spare CPU makes multi-shard scans faster with parallel workers` },
        { name: 'work_mem', to: `${workMemMb}MB`,
          reason: `a quarter of ${(memory / 1024 ** 3).toFixed(1)} GB (${hostMemory ? "the host's memory" : '4x shared_buffers'}) over max_connections, capacity ${l.capacity}${hot ? ', halved for concurrency on a hot node' : ''}` },
      ];
      for (const w of want) {
        const c = get(w.name);
        const currentText = c.unit === 'kB' ? `${Math.round(Number(c.setting) / 1024)}MB` : c.setting;
        if (currentText === w.to) continue;
        const undo = c.source === 'default' || c.source === 'configuration file'
          ? `ALTER SYSTEM RESET ${w.name}` : `ALTER SYSTEM SET ${w.name} = ${quoteLiteral(currentText)}`;
        const change = { node: l.node, name: w.name, from: currentText, to: w.to, reason: w.reason, undo };
        changes.push(change);
        if (apply) {
          await client.query(`ALTER SYSTEM SET ${w.name} = ${quoteLiteral(w.to)}`);
          await client.query('SELECT pg_reload_conf()');
          // One statement per line: ALTER SYSTEM cannot share a transaction with anything.
          await recordAction(db, { kind: 'setting', detail: change, outcome: 'applied', undoSql: `-- on ${l.node}\n${undo};\nSELECT pg_reload_conf();` });
        }
      }
    } catch (err) {
      throw toDatabaseError(err, l.node, 'tuning worker settings failed');
    } finally {
      await client.end().catch(() => {});
    }
  }
  return changes;
}
