import { schedule, validate } from 'node-cron';
import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator } from '../connect/coordinator.js';
import { InvalidConfigurationError } from '../errors.js';
import { monitorOnce, type MonitorOptions, type MonitorResult } from './monitor.js';
import { startRequestListener, type RequestListener } from './request-runner.js';

/** Advisory lock (namespace, key) held by the daemon that acts; others stand by. */
const DAEMON_LOCK: [number, number] = [0x43414c, 0];

export interface DaemonOptions extends MonitorOptions {
  /** Cron expression. Default every five minutes. */
  schedule?: string;
  onTick?: (r: MonitorResult) => void;
  onError?: (e: Error) => void;
  onStandby?: () => void;
  /** Also run loads and rebalances requested from SQL (adaptive_load.requests). Default true. */
  requests?: boolean;
  log?: (m: string) => void;
}

export interface Daemon {
  /** Stops between ticks: waits for a running tick, releases the lock, closes the connection. */
  stop(): Promise<void>;
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>;
}

/**
 * Runs the monitor on a node-cron schedule. Only the daemon holding the advisory lock acts; a
 * node that is down is recorded in the window and retried next tick; an error in one tick is
 * reported and the next tick runs. SIGTERM/SIGINT stop it cleanly between ticks.
 */
export async function startDaemon(conn: ConnectionConfig, options: DaemonOptions = {}): Promise<Daemon> {
  const expr = options.schedule ?? '*/5 * * * *';
  if (!validate(expr)) throw new InvalidConfigurationError(`--schedule ${JSON.stringify(expr)} is not a valid cron expression`);
  let db: pg.Client | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopping = false;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });

  const tick = async () => {
    if (stopping) return;
    try {
      db ??= await connectCoordinator(conn, 'citus-adaptive-load daemon');
      const lock = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', DAEMON_LOCK);
      if (!lock.rows[0]!.ok) {
        options.onStandby?.();
        return;
      }
      options.onTick?.(await monitorOnce(db, conn, options));
    } catch (err) {
      options.onError?.(err instanceof Error ? err : new Error(String(err)));
      // A lost coordinator connection is reopened next tick.
      await db?.end().catch(() => {});
      db = undefined;
    }
  };

  const requests: RequestListener | undefined = options.requests === false ? undefined : await startRequestListener(conn, options.log);
  const task = schedule(expr, () => {
    running = running.then(tick);
    return running;
  }, { noOverlap: true, name: 'citus-adaptive-load-monitor' });

  const stop = async () => {
    if (stopping) return stopped;
    stopping = true;
    await task.stop();
    await running;
    await requests?.stop();
    if (db) {
      await db.query('SELECT pg_advisory_unlock_all()').catch(() => {});
      await db.end().catch(() => {});
    }
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    resolveStopped();
    return stopped;
  };
  const onSignal = () => { void stop(); };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { stop, stopped };
}
