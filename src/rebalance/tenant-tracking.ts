import pg from 'pg';
import { parseNodeLabel, type ConnectionConfig } from '../connect/config.js';
import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';
import { toDatabaseError } from '../errors.js';
import { recordAction } from '../store/action-store.js';

/**
 * Turning on Citus's tenant statistics (citus.stat_tenants_track = 'all') so the next window has
 * query counts per tenant. Every node gets it (the coordinator counts router queries, the workers
 * count what they run): ALTER SYSTEM and pg_reload_conf() on each node whose value differs, each
 * recorded as an action with its reason and the SQL that restores the previous value exactly:
 * ALTER SYSTEM SET to the old value where postgresql.auto.conf held it, ALTER SYSTEM RESET where
 * it came from postgresql.conf or the default (RESET removes only the auto.conf entry).
 * Nothing is planned, advised or recorded for a node where it is already 'all'.
 */

export const SETTING = 'citus.stat_tenants_track';

export interface TrackingChange {
  readonly node: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  /** Where the current value comes from, as tune reports it for every setting. */
  readonly origin: string;
  readonly reason: string;
  readonly undo: string;
}

interface Current { readonly setting: string; readonly source: string; readonly sourcefile: string | null }

async function current(c: Queryable): Promise<Current> {
  const r = await c.query<Current>('SELECT setting, source, sourcefile FROM pg_settings WHERE name = $1', [SETTING]);
  return r.rows[0] ?? { setting: 'none', source: 'default', sourcefile: null };
}

/** The SQL that brings the setting back to `was`, run on the node it was read on. */
export function undoFor(was: Current): string {
  const fromAutoConf = was.source === 'configuration file' && (was.sourcefile ?? '').endsWith('postgresql.auto.conf');
  return fromAutoConf ? `ALTER SYSTEM SET ${SETTING} = ${quoteLiteral(was.setting)}` : `ALTER SYSTEM RESET ${SETTING}`;
}

/**
 * Plans (and with `apply`, makes) the change on the coordinator and every active primary worker.
 * `reason` says why (the hot shard it is for); it is recorded with each change.
 */
export async function enableTenantTracking(db: Queryable, conn: ConnectionConfig, apply: boolean, reason: string): Promise<TrackingChange[]> {
  const workers = await db.query<{ node: string }>(
    "SELECT nodename || ':' || nodeport AS node FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid > 0 ORDER BY nodeid");
  const changes: TrackingChange[] = [];
  const one = async (node: string, c: Queryable) => {
    const was = await current(c);
    if (was.setting === 'all') return;
    const undo = undoFor(was);
    const origin = undo.startsWith('ALTER SYSTEM SET') ? 'ALTER SYSTEM (postgresql.auto.conf)' : was.source;
    const change = { node, name: SETTING, from: was.setting, to: 'all', origin, reason, undo };
    changes.push(change);
    if (!apply) return;
    await c.query(`ALTER SYSTEM SET ${SETTING} = 'all'`);
    await c.query('SELECT pg_reload_conf()');
    await recordAction(db, { kind: 'setting', detail: change, outcome: 'applied', undoSql: `-- on ${node}\n${change.undo};\nSELECT pg_reload_conf();` });
  };
  await one('coordinator', db);
  for (const { node } of workers.rows) {
    const client = new pg.Client({ ...conn.workerConfig(parseNodeLabel(node)), application_name: 'citus-adaptive-load tenant tracking' });
    client.on('error', () => {});
    try {
      await client.connect();
      await one(node, client);
    } catch (err) {
      throw toDatabaseError(err, node, `setting ${SETTING} failed`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return changes;
}

/**
 * For `tune`: tenant statistics are worth their cost where a shard holding several tenants is
 * predicted hotter than a node's even share (the monitor then needs to know which tenant to
 * isolate). Plans (and with `apply`, makes) the change for that reason; none otherwise.
 */
export async function tuneTenantTracking(db: Queryable, conn: ConnectionConfig, apply: boolean): Promise<TrackingChange[]> {
  const hot = await db.query<{ shard_id: string; share: number }>(
    `SELECT p.shard_id::text, p.predicted_share AS share FROM adaptive_load.shard_predictions p JOIN pg_dist_shard s ON s.shardid = p.shard_id
      WHERE s.shardminvalue <> s.shardmaxvalue
        AND p.predicted_share > 1.0 / greatest(1, (SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid > 0))
      ORDER BY p.predicted_share DESC`);
  if (hot.rowCount === 0) return [];
  const list = hot.rows.map((r) => `${r.shard_id} (${(r.share * 100).toFixed(0)}%)`).join(', ');
  return enableTenantTracking(db, conn, apply, `shard${hot.rows.length > 1 ? 's' : ''} ${list} predicted hotter than a node's even share: `
    + 'count queries per tenant so the monitor can isolate the right one');
}
