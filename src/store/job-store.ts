import type { Queryable } from '../connect/queryable.js';
import { jobLockKeySql } from './advisory-keys.js';

export interface JobStart {
  readonly table: string;
  readonly source: string;
  readonly path: string;
  readonly reason: string | undefined;
  readonly options: Record<string, unknown>;
  /** The stored sharding profile this load laid the table out by, when it planned one. */
  readonly profileId?: number;
}

export interface JobResult {
  readonly rows: number;
  readonly rejected: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly shards: { target: string; shardId: string | undefined; nodes: readonly string[]; rows: number }[];
  readonly nodes: { node: string; rows: number; bytes: number }[];
}

/**
 * Creates the job and takes its advisory lock on this session in one statement: the row becomes
 * visible only when the statement commits, by which time the lock is held, so recovery can
 * never find the job of a live load unlocked.
 */
export async function createLockedJob(db: Queryable, job: JobStart): Promise<number> {
  const r = await db.query<{ job_id: string }>(
    `WITH job AS (
       INSERT INTO adaptive_load.load_jobs (table_name, source, load_path, path_reason, options, profile_id)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING job_id)
     SELECT job_id::text, pg_advisory_lock(${jobLockKeySql('job_id')}) FROM job`,
    [job.table, job.source, job.path, job.reason ?? null, JSON.stringify(job.options), job.profileId ?? null]);
  return Number(r.rows[0]!.job_id);
}

/**
 * A job whose loading process is gone ends as recovery decided for its prepared transactions; a
 * chunked job is 'interrupted' (its committed chunks stay, --resume continues after them).
 */
export async function markAbandonedJob(db: Queryable, jobId: number, outcome: 'committed' | 'rolled_back'): Promise<void> {
  await db.query(
    `UPDATE adaptive_load.load_jobs
        SET status = CASE WHEN chunk_rows IS NOT NULL OR chunk_bytes IS NOT NULL THEN 'interrupted' ELSE $2 END,
            finished_at = coalesce(finished_at, now()),
            error = coalesce(error, 'the loading process ended before finishing; recovered')
      WHERE job_id = $1 AND status = 'running'`, [jobId, outcome]);
}

/**
 * Marks the job committed with its per-shard and per-node figures and, for a distributed
 * commit, the commit record naming the prepared transactions. Run inside the transaction that
 * decides the load's fate.
 */
export async function recordCommittedJob(db: Queryable, jobId: number, result: JobResult, gids: string[] | undefined): Promise<void> {
  if (gids) {
    await db.query('INSERT INTO adaptive_load.commit_records (job_id, gids) VALUES ($1, $2)', [jobId, gids]);
  }
  await db.query(
    `UPDATE adaptive_load.load_jobs
        SET status = 'committed', finished_at = now(), rows_loaded = $2, rows_rejected = $3, bytes_read = $4, seconds = $5
      WHERE job_id = $1`, [jobId, result.rows, result.rejected, result.bytes, result.seconds]);
  if (result.shards.length > 0) {
    await db.query(
      `INSERT INTO adaptive_load.load_shards (job_id, target, shard_id, nodes, rows_loaded)
       SELECT $1, t.target, t.shard_id, string_to_array(t.nodes, ','), t.rows_loaded
         FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[]) AS t(target, shard_id, nodes, rows_loaded)`,
      [jobId, result.shards.map((s) => s.target), result.shards.map((s) => s.shardId ?? null),
        result.shards.map((s) => s.nodes.join(',')), result.shards.map((s) => s.rows)]);
  }
  if (result.nodes.length > 0) {
    await db.query(
      `INSERT INTO adaptive_load.load_nodes (job_id, node, rows_loaded, bytes_sent)
       SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[])`,
      [jobId, result.nodes.map((n) => n.node), result.nodes.map((n) => n.rows), result.nodes.map((n) => n.bytes)]);
  }
}

/** `rejected` undefined: keep the job's count (a chunked job's committed chunks summed it). */
export async function recordFailedJob(db: Queryable, jobId: number, error: string, rejected: number | undefined): Promise<void> {
  await db.query(
    `UPDATE adaptive_load.load_jobs SET status = 'failed', finished_at = now(), error = $2,
            rows_rejected = coalesce($3::bigint, rows_rejected)
      WHERE job_id = $1 AND status = 'running'`, [jobId, error, rejected ?? null]);
}
