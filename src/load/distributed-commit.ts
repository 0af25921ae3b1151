import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Timeouts } from '../connect/config.js';
import { DEADLINE_GRACE_MS, endWithoutWaiting } from '../connect/coordinator.js';
import { withDeadline } from '../connect/deadline.js';
import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';
import { jobLockKeySql } from '../store/advisory-keys.js';
import { markAbandonedJob } from '../store/job-store.js';
import { ClusterStateError, toDatabaseError } from '../errors.js';
import type { CopySession } from './copy-session.js';

/**
 * The distributed commit: every node's transaction is PREPAREd, then one coordinator transaction
 * writes the commit record (adaptive_load.commit_records), then each node runs COMMIT PREPARED.
 * A crash before the record means roll back everywhere; after it, commit everywhere. Recovery
 * (`recoverPreparedTransactions`) applies that rule to whatever a crash left prepared.
 *
 * The rule has one precondition: the record's existence must be final when it is read. A live
 * load holds its job's advisory lock (taken in the same statement that creates the job, so no
 * job is ever visible unlocked) until its session ends, and a session ends only after its
 * transaction did. So recovery first takes the job's lock, and only then reads the record.
 * Every session that may still write a record of the job holds that lock: a run that writes
 * records on a second session (a chunked staging load, whose main session keeps the staging
 * table's lock open) holds it shared on both (`shareJobLock`), so recovery's exclusive try
 * fails until the last of them has ended.
 * Once every PREPARE succeeded, nothing but the record decides: a commit whose reply was lost
 * leaves the prepared transactions to recovery, never rolls them back.
 *
 * A chunked load (--commit-every) runs this protocol once per chunk, each with its own commit
 * record (commit_records has one row per job and chunk) naming that chunk's transactions. So the
 * rule is stated per transaction: a prepared transaction commits when a commit record of its
 * job names it, and rolls back when none does and the job's lock is free.
 *
 * Global transaction ids look like `cal_<job>_<token>_<n>`, a form Citus's own recovery
 * (`citus_<group>_<pid>_...`) never claims; each commit round draws a fresh token.
 */

export function globalTransactionIds(jobId: number, count: number): string[] {
  const token = randomBytes(4).toString('hex');
  return Array.from({ length: count }, (_, i) => `cal_${jobId}_${token}_${i}`);
}

export function jobIdOfGid(gid: string): number | undefined {
  const m = /^cal_(\d+)_[0-9a-f]+_\d+$/.exec(gid);
  return m ? Number(m[1]) : undefined;
}

/** Holds the job's advisory lock on the coordinator session for the duration of the load. */
export async function lockJob(coordinator: Queryable, jobId: number): Promise<void> {
  await coordinator.query(`SELECT pg_advisory_lock(${jobLockKeySql('$1')})`, [jobId]);
}

/**
 * From here both sessions hold the job's lock (shared, so neither waits for the other):
 * `holder` took it in createLockedJob; `other` will write commit records of the job too.
 * A session's own lock never blocks it, so `holder` takes the shared lock before giving up the
 * exclusive one, and there is no moment with the job unlocked.
 */
export async function shareJobLock(holder: Queryable, other: Queryable, jobId: number): Promise<void> {
  await holder.query(`SELECT pg_advisory_lock_shared(${jobLockKeySql('$1')})`, [jobId]);
  await holder.query(`SELECT pg_advisory_unlock(${jobLockKeySql('$1')})`, [jobId]);
  await other.query(`SELECT pg_advisory_lock_shared(${jobLockKeySql('$1')})`, [jobId]);
}

/** Fails clearly when a node cannot prepare transactions. */
export async function checkPreparedTransactions(session: Queryable, node: string, needed: number): Promise<void> {
  const r = await session.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions');
  const max = Number(r.rows[0]?.max_prepared_transactions ?? 0);
  if (max === 0) {
    throw new ClusterStateError(`node ${node} has max_prepared_transactions = 0, so it cannot take part in an atomic `
      + `distributed load. Set max_prepared_transactions to at least max_connections (Citus needs this too) in its `
      + `postgresql.conf and restart it.`);
  }
  if (max < needed) {
    throw new ClusterStateError(`node ${node} allows ${max} prepared transactions but this load needs ${needed}; `
      + `raise max_prepared_transactions or lower --connections-per-node`);
  }
}

/** PREPARE TRANSACTION on every session. On any failure every session is rolled back. */
export async function prepareAll(sessions: CopySession[], gids: string[]): Promise<void> {
  try {
    await Promise.all(sessions.map((s, i) => s.prepare(gids[i]!)));
  } catch (err) {
    await Promise.all(sessions.map((s) => s.abort()));
    throw err;
  }
}

export interface CommitOutcome {
  /** Nodes where COMMIT PREPARED failed; recovery finishes them (the commit record decides). */
  readonly unfinished: { node: string; error: string }[];
}

export async function commitPreparedAll(sessions: CopySession[]): Promise<CommitOutcome> {
  const results = await Promise.allSettled(sessions.map((s) => s.commitPrepared()));
  const unfinished = results.flatMap((r, i) => r.status === 'rejected'
    ? [{ node: sessions[i]!.node, error: (r.reason as Error).message }] : []);
  return { unfinished };
}

export interface RecoveryResult {
  readonly committed: string[];
  readonly rolledBack: string[];
  /** Prepared by a load that is still running. */
  readonly inProgress: string[];
  readonly unreachable: { node: string; error: string }[];
}

/**
 * Finishes what crashed loads left prepared on the given nodes: COMMIT PREPARED where the
 * coordinator has the job's commit record, ROLLBACK PREPARED where it has none and no live
 * load holds the job's lock.
 */
export async function recoverPreparedTransactions(
  coordinator: Queryable,
  nodes: { label: string; config: pg.ClientConfig }[],
  timeouts: Timeouts,
): Promise<RecoveryResult> {
  const result: RecoveryResult = { committed: [], rolledBack: [], inProgress: [], unreachable: [] };
  // Every gid of a job (several per node) gets the same answer: ask the coordinator once per job.
  const decisions = new Map<number, Promise<Decision>>();
  const decideOnce = (jobId: number): Promise<Decision> => {
    let d = decisions.get(jobId);
    if (!d) decisions.set(jobId, d = decide(coordinator, jobId));
    return d;
  };
  const deadline = timeouts.statementMs + DEADLINE_GRACE_MS;
  // Nodes are checked together: each costs a connection, and nearly always finds nothing.
  await Promise.all(nodes.map(async (node) => {
    const client = new pg.Client({ ...node.config, application_name: 'citus-adaptive-load recovery' });
    client.on('error', () => {});
    const step = <T>(what: string, op: Promise<T>) => withDeadline(client, deadline, () => `recovery: ${what}`, node.label, op);
    try {
      await client.connect();
      const prepared = await step('reading pg_prepared_xacts', client.query<{ gid: string }>(
        "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'cal\\_%' AND database = current_database() ORDER BY gid"));
      for (const { gid } of prepared.rows) {
        const jobId = jobIdOfGid(gid);
        if (jobId === undefined) continue;
        const records = await decideOnce(jobId);
        if (records === 'running') {
          result.inProgress.push(gid);
          continue;
        }
        const decision = records.has(gid) ? 'commit' : 'rollback';
        try {
          await step(`finishing ${gid}`, client.query(`${decision === 'commit' ? 'COMMIT' : 'ROLLBACK'} PREPARED ${quoteLiteral(gid)}`));
        } catch (err) {
          // Another recovery finished it first: the decision is the same, nothing is left to do.
          if ((err as { code?: string }).code === '42704') continue;
          throw err;
        }
        (decision === 'commit' ? result.committed : result.rolledBack).push(`${gid}@${node.label}`);
      }
    } catch (err) {
      result.unreachable.push({ node: node.label, error: toDatabaseError(err, node.label).message });
    } finally {
      endWithoutWaiting(client);
    }
  }));
  await markAbandonedJobs(coordinator, decideOnce);
  return result;
}

/** 'running': the job's load is alive. Otherwise the gids its commit records name (they commit; the rest roll back). */
export type Decision = 'running' | ReadonlySet<string>;

/**
 * Whether a job's prepared transactions belong to a load still running, and if not, which of
 * them commit. The lock comes first: holding it proves the job's session (and so its
 * transaction) has ended, so the records read after it are final.
 */
export async function decide(coordinator: Queryable, jobId: number): Promise<Decision> {
  const lock = await coordinator.query<{ free: boolean }>(`SELECT pg_try_advisory_lock(${jobLockKeySql('$1')}) AS free`, [jobId]);
  if (!lock.rows[0]!.free) return 'running';
  try {
    const rec = await coordinator.query<{ gid: string }>(
      'SELECT unnest(gids) AS gid FROM adaptive_load.commit_records WHERE job_id = $1', [jobId]);
    return new Set(rec.rows.map((r) => r.gid));
  } finally {
    await coordinator.query(`SELECT pg_advisory_unlock(${jobLockKeySql('$1')})`, [jobId]);
  }
}

/**
 * Jobs still 'running' whose process is gone (their lock is free) end as their records say; a
 * chunked job is 'interrupted' instead (markAbandonedJob), for --resume to continue.
 */
async function markAbandonedJobs(coordinator: Queryable, decideOnce: (jobId: number) => Promise<Decision>): Promise<void> {
  const running = await coordinator.query<{ job_id: string }>(
    "SELECT job_id::text FROM adaptive_load.load_jobs WHERE status = 'running'");
  for (const { job_id } of running.rows) {
    const id = Number(job_id);
    const records = await decideOnce(id);
    if (records === 'running') continue;
    await markAbandonedJob(coordinator, id, records.size > 0 ? 'committed' : 'rolled_back');
  }
}
