/**
 * The last step of a load: making its rows visible, on either path.
 *
 * Direct path: the two-phase commit of distributed-commit.ts (PREPARE everywhere, the commit
 * record, COMMIT PREPARED everywhere), plus what to do when the commit record's COMMIT gets no
 * answer. Once every PREPARE succeeded only the record decides; this module never rolls back a
 * prepared transaction whose record may exist.
 *
 * Coordinator path: one transaction; the job record commits with the rows.
 */
import type pg from 'pg';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator, endWithoutWaiting } from '../connect/coordinator.js';
import { destroyConnection } from '../connect/deadline.js';
import type { Queryable } from '../connect/queryable.js';
import { AdaptiveLoadError, toDatabaseError, type DatabaseError } from '../errors.js';
import { recordCommittedJob, type JobResult } from '../store/job-store.js';
import type { CopySession } from './copy-session.js';
import { commitPreparedAll, globalTransactionIds, prepareAll } from './distributed-commit.js';
import type { LoadPhase } from './load-events.js';

/** The commit record's transaction may or may not have committed; recovery will tell. */
export class CommitOutcomeUnknownError extends AdaptiveLoadError {}

/** Nodes where COMMIT PREPARED did not go through (recovery finishes them). */
export type UnfinishedCommits = { node: string; error: string }[];

export interface DistributedCommit {
  /** The job's session: it holds the job's lock, and the commit record is written on it. */
  readonly coordinator: pg.Client;
  /** For a fresh coordinator session when the old one's COMMIT got no answer. */
  readonly conn: ConnectionConfig;
  readonly jobId: number;
  readonly onPhase: (phase: LoadPhase) => void;
  /** Throws unless the shard locks are still held (see shard-locks.ts); asked before the record is written. */
  readonly checkLocks?: () => Promise<void>;
  /**
   * Writes the commit record naming `gids` (undefined on the coordinator path, which has none)
   * and whatever else must commit exactly with the rows. Default: the whole job's record
   * (recordCommittedJob); a chunk of a chunked load writes its own record and manifest row.
   */
  readonly record?: (db: Queryable, gids: string[] | undefined) => Promise<void>;
  /** Work that commits in the commit record's transaction, and only with it (see CommitStep). */
  readonly steps?: readonly CommitStep[];
  /**
   * The commit record's transaction is already open on `coordinator` (a caller that had to take
   * locks in it before the rows were read); otherwise it is opened here.
   */
  readonly transactionOpen?: boolean;
}

/**
 * Extra work in the coordinator transaction that writes the commit record, so that it happens
 * if and only if the load commits: what becomes of a staging table, a chunk's manifest row.
 */
export interface CommitStep {
  /**
   * Runs in that transaction before any node prepares (it is opened first): what can fail late,
   * a lock above all, is had here, where failing still rolls everything back cleanly.
   */
  readonly beforePrepare?: (db: Queryable) => Promise<void>;
  /** Runs in that transaction after the commit record is written, before its COMMIT. */
  readonly inCommit?: (db: Queryable) => Promise<void>;
}

/** The commit record and every step that must commit with it, on `db` inside its transaction. */
async function writeRecord(c: Pick<DistributedCommit, 'jobId' | 'record' | 'steps'>, db: Queryable,
  result: JobResult, gids: string[] | undefined): Promise<void> {
  if (c.record) await c.record(db, gids);
  else await recordCommittedJob(db, c.jobId, result, gids);
  for (const s of c.steps ?? []) await s.inCommit?.(db);
}

/**
 * Prepares every session's transaction, writes the commit record, and commits them. Throws
 * (after rolling back) when the record was not written; returns the nodes left to recovery.
 */
export async function commitDistributed(c: DistributedCommit, sessions: CopySession[], result: JobResult): Promise<UnfinishedCommits> {
  const gids = globalTransactionIds(c.jobId, sessions.length);
  const steps = c.steps ?? [];
  let open = c.transactionOpen === true;
  const giveUp = async (err: unknown): Promise<never> => {
    if (open) await c.coordinator.query('ROLLBACK').catch(() => {});
    await Promise.all(sessions.map((s) => s.abort()));
    throw err;
  };
  if (steps.some((s) => s.beforePrepare)) {
    try {
      if (!open) await c.coordinator.query('BEGIN');
      open = true;
      for (const s of steps) await s.beforePrepare?.(c.coordinator);
    } catch (err) {
      await giveUp(err instanceof AdaptiveLoadError ? err : toDatabaseError(err, 'coordinator', 'preparing the commit record\'s transaction failed'));
    }
  }
  try {
    await prepareAll(sessions, gids);
  } catch (err) {
    await giveUp(err);
  }
  c.onPhase('prepared');
  try {
    // Without the locks a shard may have moved under the load: no record, so nothing commits.
    await c.checkLocks?.();
  } catch (err) {
    await giveUp(err);
  }
  let commitSent = false;
  let backend: BackendIdentity | undefined;
  try {
    if (!open) await c.coordinator.query('BEGIN');
    open = true;
    // Read in the record's transaction, so it is the backend that will run its COMMIT (a
    // transaction-pooling proxy keeps one transaction on one backend).
    backend = await backendIdentity(c.coordinator);
    await writeRecord(c, c.coordinator, result, gids);
    commitSent = true;
    await c.coordinator.query('COMMIT');
  } catch (err) {
    const dbErr = toDatabaseError(err, 'coordinator', 'writing the commit record failed');
    // A server's answer (an error) to COMMIT, or a failure before it was sent, means no record.
    // Without an answer to COMMIT the record may exist: only the record decides from here.
    const unknown = commitSent && !(dbErr.sqlState && !/^(08|57P)/.test(dbErr.sqlState));
    if (unknown) return settleUnknownOutcome(c, sessions, gids, dbErr, backend);
    await c.coordinator.query('ROLLBACK').catch(() => {});
    await Promise.all(sessions.map((s) => s.abort()));
    throw dbErr;
  }
  c.onPhase('commit-recorded');
  const outcome = await commitPreparedAll(sessions);
  return outcome.unfinished;
}

/** A server backend, as the server itself names it: its pid, when it started, and when its server did. */
interface BackendIdentity {
  readonly pid: number;
  /** Null where pg_stat_activity does not show this backend to its own role. */
  readonly started: string | null;
  readonly server: string;
}

async function backendIdentity(db: Queryable): Promise<BackendIdentity> {
  const r = await db.query<BackendIdentity>(
    `SELECT pg_backend_pid() AS pid, (SELECT backend_start::text FROM pg_catalog.pg_stat_activity WHERE pid = pg_backend_pid()) AS started,
            pg_postmaster_start_time()::text AS server`);
  return r.rows[0]!;
}

/**
 * The COMMIT of the commit record got no answer. The prepared transactions are no longer ours
 * to roll back; a fresh coordinator session asks the record once the backend that ran that
 * transaction has exited (so the transaction has ended, committed or not), that backend named
 * as the server named it inside the transaction: a pooler's made-up pid, or a fresh session on
 * another server, cannot pass for it. Waiting for the job's lock instead would wait for this
 * very process when another of its sessions shares that lock (a chunked staging load). Failing
 * that, the prepared transactions are left to recovery, which applies the same rule.
 */
async function settleUnknownOutcome(c: DistributedCommit, sessions: CopySession[], gids: string[], cause: DatabaseError,
  backend: BackendIdentity | undefined): Promise<UnfinishedCommits> {
  for (const s of sessions) s.leavePreparedToRecovery();
  destroyConnection(c.coordinator);
  let decision: 'commit' | 'rollback' | undefined;
  try {
    const fresh = await connectCoordinator(c.conn, `citus-adaptive-load job ${c.jobId} settle`, c.conn.timeouts);
    try {
      const started = backend?.started;
      if (backend === undefined || started === null || started === undefined) throw new Error('the old session\'s backend is unknown');
      if (await backendExited(fresh, { ...backend, started }, c.conn.timeouts.lockMs)) {
        // This round's record names all of its gids, or does not exist.
        const rec = await fresh.query('SELECT 1 FROM adaptive_load.commit_records WHERE job_id = $1 AND $2 = ANY (gids)', [c.jobId, gids[0]]);
        decision = rec.rows.length > 0 ? 'commit' : 'rollback';
      }
    } finally {
      endWithoutWaiting(fresh);
    }
  } catch {
    decision = undefined;
  }
  if (decision === 'commit') {
    c.onPhase('commit-recorded');
    const outcome = await commitPreparedAll(sessions);
    return outcome.unfinished;
  }
  if (decision === 'rollback') {
    for (const s of sessions) s.reclaimPrepared();
    await Promise.all(sessions.map((s) => s.abort()));
    throw new AdaptiveLoadError(`${cause.message}; the commit record was not written, so the load was rolled back`, { cause });
  }
  throw new CommitOutcomeUnknownError(`${cause.message}. The prepared transactions are kept: the commit record decides, `
    + 'and nothing else may. Run citus-adaptive-load recover (the daemon and the next load do it too) to finish them', { cause });
}

/**
 * Waits (polling, at most `limitMs`) until `backend` is gone; false if it is still there, or if
 * `db` is not on its server (nothing there can say).
 */
async function backendExited(db: Queryable, backend: BackendIdentity & { started: string }, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const r = await db.query<{ same_server: boolean; alive: boolean }>(
      `SELECT pg_postmaster_start_time()::text = $3 AS same_server,
              EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start::text = $2) AS alive`,
      [backend.pid, backend.started, backend.server]);
    if (!r.rows[0]!.same_server) return false;
    if (!r.rows[0]!.alive) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** The coordinator path: the job record commits in the same transaction as the rows. */
export async function commitOnCoordinator(session: CopySession, jobId: number, result: JobResult,
  hooks: Pick<DistributedCommit, 'record' | 'steps'> = {}): Promise<UnfinishedCommits> {
  await writeRecord({ jobId, ...hooks }, session, result, undefined);
  await session.run('COMMIT');
  return [];
}
