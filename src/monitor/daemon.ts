import { schedule, validate } from 'node-cron';
import pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator } from '../connect/coordinator.js';
import { InvalidConfigurationError } from '../errors.js';
import { recoverAll } from '../load/recovery.js';
import type { RecoveryResult } from '../load/distributed-commit.js';
import { DEFAULT_SCHEDULE } from '../rebalance/policy.js';
import { monitorOnce, type MonitorOptions, type MonitorResult } from './monitor.js';
import { startRequestListener, type RequestListener } from './request-runner.js';
import { applyRetention, type Retain } from './history-retention.js';
import type { RetentionResult } from '../store/retention.js';

/** Advisory lock (namespace, key) held by the daemon that acts; others stand by. */
const DAEMON_LOCK: [number, number] = [0x43414c, 0];
const MAX_TICK_MS = 10 * 60_000;
const DEFAULT_STOP_GRACE_MS = 30_000;

export interface DaemonOptions extends MonitorOptions {
  /** Cron expression. Default policy.ts DEFAULT_SCHEDULE (every five minutes). */
  schedule?: string;
  onTick?: (r: MonitorResult) => void;
  onError?: (e: Error) => void;
  onStandby?: () => void;
  /** Prepared transactions of crashed loads that a tick finished or rolled back. */
  onRecovered?: (r: RecoveryResult) => void;
  /** Also run loads and rebalances requested from SQL (adaptive_load.requests). Default true. */
  requests?: boolean;
  /** Directories whose files requests may load. None (the default): file requests are refused. */
  allowDirs?: readonly string[];
  /** Time limit of one request. Default 6 hours. */
  requestTimeoutMs?: number;
  /** Time limit of one tick. Default the schedule's interval or 10 minutes, whichever is smaller. */
  tickTimeoutMs?: number;
  /** How long stop() lets a running request finish before failing it. Default 30 s. */
  stopGraceMs?: number;
  log?: (m: string) => void;
  /** History older than this (ms) is pruned after each tick, in bounded batches; 'off' keeps it. Default 30 days (policy.ts). */
  retain?: Retain;
  onPruned?: (r: RetentionResult) => void;
}

export interface Daemon {
  /** Stops: abandons a running tick, releases the lock, gives a running request its grace, closes connections. */
  stop(): Promise<void>;
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>;
  /** The request runner, when requests are on (for a process about to die: failRunning). */
  readonly requests: RequestListener | undefined;
}

class TickAbandoned extends Error {}

/**
 * Runs the monitor on a node-cron schedule. Only the daemon holding the advisory lock acts; it
 * first finishes what crashed loads left prepared, then runs the monitor cycle. A node that is
 * down is recorded in the window and retried next tick; an error in one tick is reported and the
 * next tick runs. A tick that passes its time limit (a silent worker, a lock wait) is abandoned:
 * its coordinator session is terminated, which also gives up the advisory lock so a standby can
 * act. SIGTERM/SIGINT stop it promptly, a running tick included.
 */
export async function startDaemon(conn: ConnectionConfig, options: DaemonOptions = {}): Promise<Daemon> {
  const expr = options.schedule ?? DEFAULT_SCHEDULE;
  if (!validate(expr)) throw new InvalidConfigurationError(`--schedule ${JSON.stringify(expr)} is not a valid cron expression`);
  let db: pg.Client | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopping = false;
  let abandonTick: ((e: Error) => void) | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => { resolveStopped = r; });

  const work = async () => {
    db ??= await connectCoordinator(conn, 'citus-adaptive-load daemon');
    const session = db;
    const lock = await session.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', DAEMON_LOCK);
    if (!lock.rows[0]!.ok) {
      options.onStandby?.();
      return;
    }
    // Nothing a crashed load prepared waits for the next load to be finished or rolled back.
    const citus = await session.query<{ t: string | null }>("SELECT to_regclass('pg_catalog.pg_dist_node')::text AS t");
    if (citus.rows[0]?.t) {
      const rec = await recoverAll(session, conn);
      if (rec.committed.length || rec.rolledBack.length) options.onRecovered?.(rec);
    }
    options.onTick?.(await monitorOnce(session, conn, options));
    const pruned = await applyRetention(session, options.retain);
    if (pruned && Object.values(pruned.deleted).some((n) => n > 0)) options.onPruned?.(pruned);
  };

  const tick = async () => {
    if (stopping) return;
    const limitMs = options.tickTimeoutMs ?? tickLimit(task);
    let timer: NodeJS.Timeout | undefined;
    const w = work();
    w.catch(() => {}); // its rejection after abandonment is of no interest
    try {
      await Promise.race([w, new Promise<never>((_, reject) => {
        abandonTick = reject;
        timer = setTimeout(() => reject(new TickAbandoned(`the tick passed its time limit of ${Math.round(limitMs / 1000)} s and was abandoned`)), limitMs);
      })]);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (!(e instanceof TickAbandoned) || !stopping) options.onError?.(e);
      // A lost or abandoned coordinator session is reopened next tick.
      const s = db;
      db = undefined;
      if (s) await discard(s, conn, e instanceof TickAbandoned);
    } finally {
      clearTimeout(timer);
      abandonTick = undefined;
    }
  };

  const requests: RequestListener | undefined = options.requests === false ? undefined : await startRequestListener(conn, {
    ...(options.allowDirs ? { allowDirs: options.allowDirs } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const task = schedule(expr, () => {
    running = running.then(tick);
    return running;
  }, { noOverlap: true, name: 'citus-adaptive-load-monitor' });

  const stop = async () => {
    if (stopping) return stopped;
    stopping = true;
    await task.stop();
    abandonTick?.(new TickAbandoned('the daemon is stopping'));
    await running;
    await requests?.stop(options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
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
  return { stop, stopped, requests };
}

/** The schedule's interval (from its next two runs), capped at 10 minutes. */
function tickLimit(task: { getNextRuns(count: number): Date[] }): number {
  const [a, b] = task.getNextRuns(2);
  const interval = a && b ? b.getTime() - a.getTime() : MAX_TICK_MS;
  return Math.max(1000, Math.min(MAX_TICK_MS, interval));
}

/**
 * Lets go of a tick's coordinator session. An abandoned tick's backend may be stuck (waiting on a
 * lock) and would not read our Terminate until it is free, keeping the daemon's advisory lock:
 * it is terminated from a fresh session so the lock goes now and a standby can take over.
 */
async function discard(session: pg.Client, conn: ConnectionConfig, stuck: boolean): Promise<void> {
  const pid = (session as unknown as { processID?: number }).processID;
  (session as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
  if (!stuck || !pid) return;
  const killer = new pg.Client({ ...conn.coordinator, application_name: 'citus-adaptive-load daemon', connectionTimeoutMillis: 10_000 });
  killer.on('error', () => {});
  try {
    await killer.connect();
    await killer.query('SELECT pg_terminate_backend($1::int)', [pid]);
  } catch {
    /* the coordinator is unreachable: the backend ends when the server notices the closed socket */
  } finally {
    await killer.end().catch(() => {});
  }
}
