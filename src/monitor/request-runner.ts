import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator } from '../connect/coordinator.js';
import { load, type LoadOptions } from '../load/loader.js';
import { rebalance } from '../allocate/rebalance.js';

const CHANNEL = 'adaptive_load_requests';

interface RequestRow {
  request_id: string;
  kind: 'load' | 'rebalance';
  table_name: string | null;
  source: string | null;
  options: Record<string, unknown>;
}

export interface RequestListener {
  stop(): Promise<void>;
}

/** Options a request may carry, as the CLI's (unknown keys are ignored). */
function loadOptions(r: RequestRow, conn: ConnectionConfig): LoadOptions {
  const o = r.options;
  const pick = <T>(k: string, type: string): T | undefined => (typeof o[k] === type ? o[k] as T : undefined);
  return {
    table: r.table_name ?? '',
    file: r.source ?? '',
    resolvedConnection: conn,
    format: pick<'csv' | 'text'>('format', 'string'),
    delimiter: pick<string>('delimiter', 'string'),
    quote: pick<string>('quote', 'string'),
    escape: pick<string>('escape', 'string'),
    null: pick<string>('null', 'string'),
    header: pick<boolean>('header', 'boolean') === undefined ? 'auto' : o.header ? 'yes' : 'no',
    maxErrors: pick<number>('maxErrors', 'number'),
    distributionColumn: pick<string>('distributionColumn', 'string'),
    shardCount: pick<number>('shardCount', 'number'),
  };
}

/**
 * LISTENs for requests inserted from SQL (adaptive_load.request_load / request_rebalance), claims
 * each pending one atomically (several daemons may listen), runs it, and records status, timings
 * and outcome on the request row. Requests made while no daemon listened run at start.
 */
export async function startRequestListener(conn: ConnectionConfig, log: (m: string) => void = () => {}): Promise<RequestListener> {
  const listener = await connectCoordinator(conn, 'citus-adaptive-load requests');
  const worker = await connectCoordinator(conn, 'citus-adaptive-load request runner');
  let queue: Promise<void> = Promise.resolve();
  let stopped = false;

  const runPending = () => {
    queue = queue.then(async () => {
      while (!stopped) {
        const claimed = await worker.query<RequestRow>(
          `UPDATE adaptive_load.requests SET status = 'running', started_at = now()
            WHERE request_id = (SELECT request_id FROM adaptive_load.requests WHERE status = 'pending'
                                 ORDER BY request_id FOR UPDATE SKIP LOCKED LIMIT 1)
            RETURNING request_id::text, kind, table_name, source, options`);
        const r = claimed.rows[0];
        if (!r) return;
        await runOne(worker, conn, r, log);
      }
    }).catch((err: unknown) => log(`request runner: ${(err as Error).message}`));
  };

  listener.on('notification', (n) => { if (n.channel === CHANNEL) runPending(); });
  await listener.query(`LISTEN ${CHANNEL}`);
  runPending();
  return {
    async stop() {
      stopped = true;
      await queue;
      await listener.end().catch(() => {});
      await worker.end().catch(() => {});
    },
  };
}

async function runOne(db: pg.Client, conn: ConnectionConfig, r: RequestRow, log: (m: string) => void): Promise<void> {
  try {
    let outcome: unknown;
    if (r.kind === 'load') {
      if (!r.table_name || !r.source) throw new Error('a load request needs table_name and source');
      const s = await load(loadOptions(r, conn));
      outcome = { path: s.path, reason: s.reason ?? null, rows: s.rows, rejected: s.rejected, seconds: s.seconds, jobId: s.jobId, nodes: s.nodes };
    } else {
      outcome = await rebalance(db, { dryRun: r.options.dryRun === true, ...(r.table_name ? { table: r.table_name } : {}) });
    }
    await db.query(`UPDATE adaptive_load.requests SET status = 'done', finished_at = now(), outcome = $2 WHERE request_id = $1`,
      [r.request_id, JSON.stringify(outcome)]);
    log(`request ${r.request_id} (${r.kind}) done`);
  } catch (err) {
    await db.query(`UPDATE adaptive_load.requests SET status = 'failed', finished_at = now(), error = $2 WHERE request_id = $1`,
      [r.request_id, (err as Error).message]);
    log(`request ${r.request_id} (${r.kind}) failed: ${(err as Error).message}`);
  }
}
