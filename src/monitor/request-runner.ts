import { hostname } from 'node:os';
import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator } from '../connect/coordinator.js';
import { jobLockKeySql, requestListenerLockKeySql, requestLockKeySql } from '../store/advisory-keys.js';
import { load, type LoadOptions } from '../pipeline/loader.js';
import { toLoadOptions, validateLoadOptions, validateRebalanceOptions, type LoadOptionValues } from '../pipeline/options-schema.js';
import { rebalance } from '../rebalance/rebalance.js';
import { checkLoadPrivileges, checkRebalancePrivileges, checkStagingPrivileges, confineSource } from './request-guard.js';
import { describeError } from '../errors.js';
import { finishRequest, markAbandoned, markClaimed, type RequestRow } from '../store/request-store.js';

const CHANNEL = 'adaptive_load_requests';
/** Advisory lock namespace of running requests: the claiming daemon's session holds (ns, id). */
const DEFAULT_REQUEST_TIMEOUT_MS = 6 * 3600_000;
const DEFAULT_POLL_MS = 60_000;
const MAX_BACKOFF_MS = 10_000;
/** After a time limit passes, how long the work may take to wind down before the row is failed anyway. */
const CANCEL_GRACE_MS = 30_000;

export interface RequestRunnerOptions {
  /** Directories whose files requests may load (realpath-confined). None: every file request is refused. */
  allowDirs?: readonly string[];
  /** Time limit of one request. Default 6 hours. */
  requestTimeoutMs?: number;
  /** Look for pending requests this often even without a notification. Default 60 s. */
  pollMs?: number;
  log?: (m: string) => void;
}

export interface RequestListener {
  /** Stops taking requests; a running one gets `graceMs` (default: all it needs) before it is failed. */
  stop(graceMs?: number): Promise<void>;
  /** Marks the request being run (if any) failed with `reason`; for a process about to die. */
  failRunning(reason: string): Promise<void>;
}

class TimeLimitError extends Error {}

/** `${kind} ${id}` log prefix. */
const label = (r: RequestRow) => `request ${r.request_id} (${r.kind})`;

/**
 * LISTENs for requests inserted through adaptive_load.request_load / request_rebalance, claims
 * each pending one atomically (several daemons may listen), runs it, and records status,
 * timings and outcome on the request row. Every request ends done or failed with a reason:
 * invalid options, a file outside --allow-dir, a requester without the table privilege, an
 * exception, its time limit, or (found by the next daemon) the death of the daemon that ran it.
 * A lost listener connection is reopened with bounded backoff and pending requests run then.
 */
export async function startRequestListener(conn: ConnectionConfig, options: RequestRunnerOptions = {}): Promise<RequestListener> {
  const log = options.log ?? (() => {});
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const claimer = `${hostname()}:${process.pid}`;
  let stopped = false;
  let wakeStop!: () => void;
  const stopSignal = new Promise<void>((r) => { wakeStop = r; });
  let queue: Promise<void> = Promise.resolve();
  let session: pg.Client | undefined;
  let listener: pg.Client | undefined;
  let current: RequestRow | undefined;

  /** The runner's session: claims rows and holds each running request's advisory lock. */
  const runnerSession = async (): Promise<pg.Client> => {
    if (session) return session;
    const s = await connectCoordinator(conn, 'citus-adaptive-load request runner');
    s.on('error', () => { if (session === s) session = undefined; });
    s.on('end', () => { if (session === s) session = undefined; });
    session = s;
    return s;
  };

  const runPending = () => {
    queue = queue.then(async () => {
      while (!stopped) {
        const db = await runnerSession();
        await reclaimAbandoned(db, log);
        const r = await claim(db, claimer);
        if (!r) return;
        current = r;
        try {
          await runOne(db, conn, r, { ...options, timeoutMs }, log);
        } finally {
          current = undefined;
          await db.query(`SELECT pg_advisory_unlock(${requestLockKeySql('$1')})`, [r.request_id]).catch(() => {});
        }
      }
    }).catch(async (err: unknown) => {
      log(`request runner: ${describeError(err)}`);
      // A broken session is replaced on the next run; its locks went with it.
      const s = session;
      session = undefined;
      await s?.end().catch(() => {});
    });
  };

  const sleep = (ms: number) => Promise.race([new Promise<void>((r) => setTimeout(r, ms).unref()), stopSignal]);

  const openListener = async (): Promise<void> => {
    const c = await connectCoordinator(conn, 'citus-adaptive-load requests');
    const lost = () => {
      if (listener !== c) return;
      listener = undefined;
      c.end().catch(() => {});
      if (!stopped) {
        log('request listener lost its connection; reconnecting');
        void reconnect();
      }
    };
    c.on('notification', (n) => { if (n.channel === CHANNEL) runPending(); });
    c.on('error', lost);
    c.on('end', lost);
    await c.query(`LISTEN ${CHANNEL}`);
    // Says "a daemon takes requests" to SQL (distribute_table); it goes with this session.
    await c.query(`SELECT pg_advisory_lock_shared(${requestListenerLockKeySql()})`);
    listener = c;
  };

  let reconnecting = false;
  const reconnect = async () => {
    if (reconnecting) return;
    reconnecting = true;
    try {
      for (let attempt = 0; !stopped; attempt++) {
        await sleep(Math.min(MAX_BACKOFF_MS, 200 * 2 ** attempt));
        if (stopped) return;
        try {
          await openListener();
          log('request listener reconnected');
          // Requests made while nobody listened would otherwise wait for the next notification.
          runPending();
          return;
        } catch (err) {
          log(`request listener: cannot reconnect (${describeError(err)}); retrying`);
        }
      }
    } finally {
      reconnecting = false;
    }
  };

  await openListener();
  runPending();
  const poll = setInterval(runPending, options.pollMs ?? DEFAULT_POLL_MS);
  poll.unref();

  const failRunning = async (reason: string) => {
    const r = current;
    if (!r || !session) return;
    await finish(session, r, 'failed', { error: reason }).catch(() => {});
  };

  return {
    failRunning,
    async stop(graceMs?: number) {
      stopped = true;
      wakeStop();
      clearInterval(poll);
      const l = listener;
      listener = undefined;
      await l?.end().catch(() => {});
      if (graceMs === undefined) await queue;
      else {
        const settled = await Promise.race([queue.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), graceMs).unref())]);
        if (!settled) await failRunning('the daemon stopped while the request ran; adaptive_load.loads shows what became of a load (recover finishes it)');
      }
      const s = session;
      session = undefined;
      await s?.end().catch(() => {});
    },
  };
}

/** Request ids are bigint; advisory lock keys int4. Collisions need ids 2^31 apart running at once. */

/**
 * Claims the oldest pending request and, in the same statement, takes its advisory lock on this
 * session: while the lock is held the claimer is alive; when it is free the claimer is gone.
 */
async function claim(db: pg.Client, claimer: string): Promise<RequestRow | undefined> {
  // One transaction: the row stays locked (and pending to everyone else) until its request lock
  // is held. The lock is taken on the one chosen row only, never in a WHERE the planner might
  // evaluate for every row.
  await db.query('BEGIN');
  try {
    const next = await db.query<{ id: string }>(
      `SELECT request_id::text AS id FROM adaptive_load.requests WHERE status = 'pending'
        ORDER BY request_id FOR UPDATE SKIP LOCKED LIMIT 1`);
    const id = next.rows[0]?.id;
    if (!id) {
      await db.query('COMMIT');
      return undefined;
    }
    const lock = await db.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${requestLockKeySql('$1')}) AS ok`, [id]);
    if (!lock.rows[0]?.ok) {
      // Its lock is held although the row is pending: a session is still winding it up. Later.
      await db.query('ROLLBACK');
      return undefined;
    }
    const claimed = await markClaimed(db, id, claimer);
    await db.query('COMMIT');
    return claimed;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Fails running requests whose claimer's session is gone (a daemon killed, or its coordinator
 * connection lost): their advisory lock is free. Runs between requests, when this session holds
 * no request lock of its own.
 */
async function reclaimAbandoned(db: pg.Client, log: (m: string) => void): Promise<void> {
  // Row by row: a lock function in an UPDATE's WHERE might be evaluated for rows that are not
  // running, and could make a concurrent claim of a pending one fail.
  await db.query('BEGIN');
  try {
    const running = await db.query<{ id: string; claimed_by: string | null }>(
      "SELECT request_id::text AS id, claimed_by FROM adaptive_load.requests WHERE status = 'running' FOR UPDATE SKIP LOCKED");
    for (const row of running.rows) {
      const free = await db.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(${requestLockKeySql('$1')}) AS ok`, [row.id]);
      if (!free.rows[0]?.ok) continue;
      await markAbandoned(db, row.id);
      log(`request ${row.id}: its daemon (${row.claimed_by ?? 'unknown'}) ended while running it; marked failed`);
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

function finish(db: pg.Client, r: RequestRow, status: 'done' | 'failed', detail: { outcome?: unknown; error?: string }): Promise<boolean> {
  return finishRequest(db, r.request_id, status, detail);
}

type RunOptions = RequestRunnerOptions & { timeoutMs: number };

async function runOne(db: pg.Client, conn: ConnectionConfig, r: RequestRow, options: RunOptions, log: (m: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let source: string | undefined;
  let work: Promise<unknown> | undefined;
  try {
    work = execute(db, conn, r, options, (s) => { source = s; });
    // A rejection after the time limit is already accounted for.
    work.catch(() => {});
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeLimitError(`the request passed its time limit of ${Math.round(options.timeoutMs / 1000)} s`)), options.timeoutMs);
    });
    const outcome = await Promise.race([work, limit]);
    await finish(db, r, 'done', { outcome });
    log(`${label(r)} done`);
  } catch (err) {
    const message = describeError(err);
    if (err instanceof TimeLimitError) {
      await finish(db, r, 'failed', { error: message }).catch(() => {});
      await cancelLoad(db, r, source, log);
      // Let it wind down (undo what it wrote) before the next request starts, within a bound.
      await Promise.race([work?.catch(() => {}), new Promise((res) => setTimeout(res, CANCEL_GRACE_MS).unref())]);
    } else {
      await finish(db, r, 'failed', { error: message });
    }
    log(`${label(r)} failed: ${message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Validation, confinement and privileges first; then the work. Anything thrown fails the request. */
async function execute(db: pg.Client, conn: ConnectionConfig, r: RequestRow, options: RunOptions, onSource: (s: string) => void): Promise<unknown> {
  if (r.kind === 'load') {
    const values = validateLoadOptions(r.options, 'request options');
    if (values.fromTable !== undefined) {
      // A table source: the requester must be allowed to read it, and to do to it what `then` says.
      if (!r.table_name || r.source) throw new Error('a load request from a table (option fromTable) needs table_name and no source');
      const staging = await checkStagingPrivileges(db, r.requested_by, values.fromTable, values.then ?? 'keep');
      await checkLoadPrivileges(db, r.requested_by, r.table_name, values);
      onSource(`table ${staging}`);
      const s = await load({ ...toLoadOptions(values), table: r.table_name, resolvedConnection: conn });
      return { path: s.path, reason: s.reason ?? null, rows: s.rows, rejected: s.rejected, seconds: s.seconds, jobId: s.jobId, nodes: s.nodes,
        staging: s.staging ?? null };
    }
    if (!r.table_name || !r.source) throw new Error('a load request needs table_name and source');
    const file = confineSource(r.source, options.allowDirs ?? []);
    await checkLoadPrivileges(db, r.requested_by, r.table_name, values);
    onSource(file);
    const s = await load(loadOptions(r.table_name, file, values, conn));
    return { path: s.path, reason: s.reason ?? null, rows: s.rows, rejected: s.rejected, seconds: s.seconds, jobId: s.jobId, nodes: s.nodes };
  }
  if (r.kind === 'rebalance') {
    const values = validateRebalanceOptions(r.options, 'request options');
    await checkRebalancePrivileges(db, r.requested_by, r.table_name);
    return rebalance(db, { dryRun: values.dryRun === true, ...(r.table_name ? { table: r.table_name } : {}),
      origin: { startedBy: 'request', requestId: r.request_id } });
  }
  throw new Error(`unknown request kind ${JSON.stringify(r.kind)}`);
}

/** The loader's options from validated values (only keys the schema allows reach here). */
function loadOptions(table: string, file: string, values: LoadOptionValues, conn: ConnectionConfig): LoadOptions {
  return { ...toLoadOptions(values), table, file, resolvedConnection: conn };
}

/**
 * A load past its time limit cannot be interrupted from outside the loader; ending its
 * coordinator session (the holder of its job's advisory lock) makes it fail and undo what it
 * wrote. What was already prepared is finished or rolled back by recovery.
 */
async function cancelLoad(db: pg.Client, r: RequestRow, source: string | undefined, log: (m: string) => void): Promise<void> {
  if (r.kind !== 'load' || !source) return;
  try {
    const t = await db.query<{ pid: number }>(
      `SELECT l.pid, pg_terminate_backend(l.pid) FROM adaptive_load.load_jobs j
         JOIN pg_catalog.pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND ((l.classid::bigint << 32) | l.objid::bigint) = ${jobLockKeySql('j.job_id')}
        WHERE j.started_at >= $1 AND j.source = $2`, [r.started_at, source]);
    if (t.rows.length) log(`${label(r)}: ended the load's coordinator session (pid ${t.rows.map((x) => x.pid).join(', ')})`);
  } catch (err) {
    log(`${label(r)}: could not end the load: ${describeError(err)}`);
  }
}
