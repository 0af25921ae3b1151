import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { requireCitus } from '../catalog/catalog.js';
import { quoteLiteral } from '../connect/sql.js';
import { describeError, toDatabaseError } from '../errors.js';
import { readHostCounters } from '../workload/node-metrics.js';
import { recordAction, setActionOutcome } from '../store/action-store.js';
import { HOT_FACTOR } from './policy.js';
import { readSettingOrigins, type SettingOrigin } from './setting-origin.js';

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
 * Protocol: every worker is read and planned first (a worker that does not answer is reported,
 * the others are planned). Changes are made only with `apply`, and only when every worker was
 * planned, unless `skipUnreachable` says to change the ones that answered: so a run never changes
 * some nodes and then fails on the next. Each change is ALTER SYSTEM and pg_reload_conf() on its
 * worker, recorded in adaptive_load.actions by itself right after it took effect, with an undo
 * that restores what postgresql.auto.conf held before (setting-origin.ts).
 */
export interface SettingChange {
  readonly node: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  /** Where the current value comes from: ALTER SYSTEM, a configuration file, the default. */
  readonly origin: string;
  readonly reason: string;
  readonly undo: string;
}

export interface NodeTuning {
  readonly node: string;
  /**
   * planned: read and planned (a dry run, or an apply that was refused); applied: every change
   * made and recorded; unreachable: no connection; failed: reading or a change failed (changes
   * made before it are applied and recorded, see `changes[].applied`).
   */
  readonly status: 'planned' | 'applied' | 'unreachable' | 'failed';
  readonly error?: string;
  readonly changes: (SettingChange & { readonly applied: boolean })[];
  /** Settings left alone, and why (set where ALTER SYSTEM does not reach). */
  readonly notes: string[];
}

export interface TuneResult {
  readonly applied: boolean;
  readonly nodes: NodeTuning[];
  /** Every planned change, over all nodes (what a dry run proposes). */
  readonly changes: SettingChange[];
  /** Why `apply` changed nothing, when it did not. */
  readonly refused?: string;
}

export interface TuneOptions {
  readonly apply: boolean;
  /** With `apply`: change the nodes that answer even when some do not. Default false (change nothing then). */
  readonly skipUnreachable?: boolean;
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

const TUNED = ['max_parallel_workers_per_gather', 'work_mem'] as const;

interface Planned {
  readonly load: NodeLoad;
  readonly client?: pg.Client;
  status: NodeTuning['status'];
  error?: string;
  readonly changes: (SettingChange & { applied: boolean })[];
  readonly notes: string[];
}

async function planNode(l: NodeLoad, fair: number, conn: ConnectionConfig): Promise<Planned> {
  const hot = l.predictedShare > fair * HOT_FACTOR;
  const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(l.node)), application_name: 'citus-adaptive-load tune' });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    return { load: l, status: 'unreachable', error: describeError(toDatabaseError(err, l.node, 'cannot connect')), changes: [], notes: [] };
  }
  try {
    const cur = await client.query<{ name: string; setting: string; unit: string | null }>(
      "SELECT name, setting, unit FROM pg_settings WHERE name IN ('max_parallel_workers_per_gather', 'work_mem', 'shared_buffers', 'max_connections')");
    const get = (name: string) => cur.rows.find((r) => r.name === name)!;
    const origins = await readSettingOrigins(client, TUNED);
    const hostMemory = (await readHostCounters(client))?.memTotalBytes;
    const memory = hostMemory ?? parseMemory(get('shared_buffers').setting, get('shared_buffers').unit) * 4;
    const perQuery = (memory * 0.25 * l.capacity) / Number(get('max_connections').setting) / (hot ? 2 : 1);
    const workMemMb = Math.round(Math.min(256, Math.max(4, perQuery / (1024 * 1024))));
    const share = `${(l.predictedShare * 100).toFixed(0)}% of predicted load (fair ${(fair * 100).toFixed(0)}%)`;
    const want: { name: (typeof TUNED)[number]; to: string; reason: string }[] = [
      { name: 'max_parallel_workers_per_gather', to: hot ? '0' : '2',
        reason: hot ? `${share}: keep its CPU for the many tenant queries, not parallel workers for one`
          : `${share}: spare CPU makes multi-shard scans faster with parallel workers` },
      { name: 'work_mem', to: `${workMemMb}MB`,
        reason: `a quarter of ${(memory / 1024 ** 3).toFixed(1)} GB (${hostMemory ? "the host's memory" : '4x shared_buffers'}) over max_connections, capacity ${l.capacity}${hot ? ', halved for concurrency on a hot node' : ''}` },
    ];
    const changes: Planned['changes'] = [];
    const notes: string[] = [];
    for (const w of want) {
      const c = get(w.name);
      const currentText = c.unit === 'kB' ? `${Math.round(Number(c.setting) / 1024)}MB` : c.setting;
      if (currentText === w.to) continue;
      const origin: SettingOrigin = origins.get(w.name)!;
      if (!origin.alterSystemWins) {
        // ALTER SYSTEM would write a value the server ignores: say so instead of claiming a change.
        notes.push(`${w.name} stays ${currentText}: it comes from ${origin.label}, which ALTER SYSTEM does not override (wanted ${w.to}: ${w.reason})`);
        continue;
      }
      changes.push({ node: l.node, name: w.name, from: currentText, to: w.to, origin: origin.label, reason: w.reason, undo: origin.undoSql, applied: false });
    }
    return { load: l, client, status: 'planned', changes, notes };
  } catch (err) {
    await client.end().catch(() => {});
    return { load: l, status: 'failed', error: describeError(toDatabaseError(err, l.node, 'reading worker settings failed')), changes: [], notes: [] };
  }
}

/**
 * Makes a node's planned changes. Each is recorded first ('applying', with its undo), then made,
 * then settled ('applied' or 'failed: ...'): a run cut short leaves a record of every change it
 * may have made, and running the undo of one that did not happen changes nothing.
 */
async function applyNode(db: Queryable, p: Planned): Promise<void> {
  const client = p.client!;
  for (const c of p.changes) {
    const { applied: _applied, ...detail } = c;
    // One statement per line: ALTER SYSTEM cannot share a transaction with anything.
    const id = await recordAction(db, { kind: 'setting', detail, outcome: 'applying', undoSql: `-- on ${p.load.node}\n${c.undo};\nSELECT pg_reload_conf();` });
    try {
      await client.query(`ALTER SYSTEM SET ${c.name} = ${quoteLiteral(c.to)}`);
      await client.query('SELECT pg_reload_conf()');
    } catch (err) {
      p.status = 'failed';
      p.error = describeError(toDatabaseError(err, p.load.node, `setting ${c.name} failed`));
      await setActionOutcome(db, id, `failed: ${p.error}`);
      return;
    }
    c.applied = true;
    await setActionOutcome(db, id, 'applied');
  }
  p.status = 'applied';
}

/** Plans (and with `apply`, makes) the setting changes on every worker. */
export async function tuneWorkers(db: Queryable, conn: ConnectionConfig, options: TuneOptions): Promise<TuneResult> {
  await requireCitus(db, 'tune');
  const loads = await nodeLoads(db);
  const totalCapacity = loads.reduce((a, l) => a + l.capacity, 0) || 1;
  const planned: Planned[] = [];
  try {
    for (const l of loads) planned.push(await planNode(l, l.capacity / totalCapacity, conn));
    const silent = planned.filter((p) => p.status !== 'planned');
    let refused: string | undefined;
    if (options.apply && silent.length > 0 && !options.skipUnreachable) {
      refused = `changed nothing: ${silent.map((p) => `${p.load.node} (${p.status}: ${p.error})`).join('; ')}; `
        + 'run again when every worker answers, or with --skip-unreachable to change the workers that do';
    } else if (options.apply) {
      for (const p of planned) if (p.status === 'planned') await applyNode(db, p);
    }
    return {
      applied: options.apply && refused === undefined,
      nodes: planned.map((p) => ({ node: p.load.node, status: p.status, ...(p.error ? { error: p.error } : {}), changes: p.changes, notes: p.notes })),
      changes: planned.flatMap((p) => p.changes.map(({ applied: _a, ...c }) => c)),
      ...(refused ? { refused } : {}),
    };
  } finally {
    for (const p of planned) await p.client?.end().catch(() => {});
  }
}
