/**
 * The manifest of a chunked load (--commit-every): one adaptive_load.load_chunks row per committed
 * chunk, written by recordChunk in the transaction that writes the chunk's commit record, so a
 * manifest row exists exactly when the chunk's rows are (or, after recovery, will be) in the
 * table. A resume continues after the newest manifest row and nothing else: the prepared
 * transactions of a chunk without one are rolled back by recovery.
 */
import type { Queryable } from '../connect/queryable.js';
import { jobLockKeySql } from './advisory-keys.js';

export interface ChunkManifest {
  readonly chunk: number;
  /** The input bytes [startOffset, endOffset) the chunk holds; both are row boundaries. */
  readonly startOffset: number;
  readonly endOffset: number;
  /** The input line the next chunk starts on (rejects name lines of the whole input). */
  readonly endLine: number;
  readonly rows: number;
  readonly rejected: number;
  /** The rejects file's length once this chunk's rejected rows are in it (fsynced before the record). */
  readonly rejectsOffset: number;
  /** A staging table's chunk: the heap blocks [fromBlock, toBlock) it read (load/load-run.ts). */
  readonly fromBlock?: number;
  readonly toBlock?: number;
  readonly shards: { target: string; shardId: string | undefined; nodes: readonly string[]; rows: number }[];
  readonly nodes: { node: string; rows: number; bytes: number }[];
}

/** How a chunked job is chunked, and what it reads; stored on the job for --resume. */
export interface ChunkingRecord {
  readonly rows?: number;
  readonly bytes?: number;
  /** Bytes of the source on disk (for bytes left); absent for stdin. */
  readonly sourceBytes?: number;
  /** Absent for stdin, which cannot be resumed. */
  readonly fingerprint?: unknown;
}

/** A file load's fingerprint (input/fingerprint.ts), so a later run can tell the same file from a new one. */
export async function recordSourceFingerprint(db: Queryable, jobId: number, fingerprint: unknown): Promise<void> {
  await db.query('UPDATE adaptive_load.load_jobs SET source_fingerprint = $2 WHERE job_id = $1', [jobId, JSON.stringify(fingerprint)]);
}

export async function recordJobChunking(db: Queryable, jobId: number, c: ChunkingRecord): Promise<void> {
  await db.query(
    `UPDATE adaptive_load.load_jobs SET chunk_rows = $2, chunk_bytes = $3, source_bytes = $4, source_fingerprint = $5
      WHERE job_id = $1`,
    [jobId, c.rows ?? null, c.bytes ?? null, c.sourceBytes ?? null, c.fingerprint === undefined ? null : JSON.stringify(c.fingerprint)]);
}

/** A staging table's job: how many chunks it has in all, once a run has planned its block ranges. */
export async function recordChunksTotal(db: Queryable, jobId: number, total: number): Promise<void> {
  await db.query('UPDATE adaptive_load.load_jobs SET chunks_total = $2 WHERE job_id = $1', [jobId, total]);
}

/**
 * The chunk's commit record and its manifest row, and the job's running totals. Run inside the
 * transaction that decides the chunk's fate (see load/commit.ts).
 */
export async function recordChunk(db: Queryable, jobId: number, m: ChunkManifest, gids: string[] | undefined): Promise<void> {
  if (gids) {
    await db.query('INSERT INTO adaptive_load.commit_records (job_id, chunk, gids) VALUES ($1, $2, $3)', [jobId, m.chunk, gids]);
  }
  await db.query(
    `INSERT INTO adaptive_load.load_chunks (job_id, chunk, start_offset, end_offset, end_line, rows_loaded, rows_rejected,
                                            rejects_offset, shards, nodes, ctid_from_block, ctid_to_block)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [jobId, m.chunk, m.startOffset, m.endOffset, m.endLine, m.rows, m.rejected, m.rejectsOffset,
      JSON.stringify(m.shards.map((s) => ({ target: s.target, shardId: s.shardId ?? null, nodes: s.nodes, rows: s.rows }))),
      JSON.stringify(m.nodes), m.fromBlock ?? null, m.toBlock ?? null]);
  await db.query(
    `UPDATE adaptive_load.load_jobs
        SET chunks_done = $2 + 1, bytes_done = $3, rows_loaded = coalesce(rows_loaded, 0) + $4,
            rows_rejected = coalesce(rows_rejected, 0) + $5, bytes_read = $3
      WHERE job_id = $1`, [jobId, m.chunk, m.endOffset, m.rows, m.rejected]);
}

/**
 * The last chunk was recorded: the job is committed, and its per-shard and per-node figures are
 * the sums over its manifest (a resumed job's chunks came from several processes). In the same
 * transaction as the last chunk's record.
 */
export async function finishChunkedJob(db: Queryable, jobId: number, seconds: number): Promise<void> {
  await db.query(
    `UPDATE adaptive_load.load_jobs SET status = 'committed', finished_at = now(), error = NULL,
            seconds = coalesce(seconds, 0) + $2 WHERE job_id = $1`, [jobId, seconds]);
  await db.query(
    `INSERT INTO adaptive_load.load_shards (job_id, target, shard_id, nodes, rows_loaded)
     SELECT $1, target, shard_id, ARRAY(SELECT jsonb_array_elements_text(nodes)), rows
       FROM (SELECT s->>'target' AS target, max((s->>'shardId')::bigint) AS shard_id,
                    (array_agg(s->'nodes' ORDER BY c.chunk DESC))[1] AS nodes, sum((s->>'rows')::bigint) AS rows
               FROM adaptive_load.load_chunks c, jsonb_array_elements(c.shards) s
              WHERE c.job_id = $1 GROUP BY 1) per_target`, [jobId]);
  await db.query(
    `INSERT INTO adaptive_load.load_nodes (job_id, node, rows_loaded, bytes_sent)
     SELECT $1, n->>'node', sum((n->>'rows')::bigint), sum((n->>'bytes')::bigint)
       FROM adaptive_load.load_chunks c, jsonb_array_elements(c.nodes) n
      WHERE c.job_id = $1 GROUP BY n->>'node'`, [jobId]);
}

/** Time spent by a process that did not finish the job, so a resumed job's seconds add up. */
export async function addJobSeconds(db: Queryable, jobId: number, seconds: number): Promise<void> {
  await db.query('UPDATE adaptive_load.load_jobs SET seconds = coalesce(seconds, 0) + $2 WHERE job_id = $1', [jobId, seconds]);
}

export interface ResumableJob {
  readonly jobId: number;
  readonly table: string;
  readonly source: string;
  readonly status: string;
  readonly chunkRows: number | undefined;
  readonly chunkBytes: number | undefined;
  readonly fingerprint: unknown;
  readonly options: Record<string, unknown>;
}

interface JobRow {
  job_id: string; table_name: string; source: string; status: string;
  chunk_rows: string | null; chunk_bytes: string | null; source_fingerprint: unknown; options: Record<string, unknown>;
}

const JOB_COLUMNS = 'job_id::text, table_name, source, status, chunk_rows::text, chunk_bytes::text, source_fingerprint, options';

function toJob(r: JobRow): ResumableJob {
  return {
    jobId: Number(r.job_id), table: r.table_name, source: r.source, status: r.status,
    chunkRows: r.chunk_rows === null ? undefined : Number(r.chunk_rows),
    chunkBytes: r.chunk_bytes === null ? undefined : Number(r.chunk_bytes),
    fingerprint: r.source_fingerprint, options: r.options,
  };
}

/** One job by id, whatever its state (the caller says why it cannot be resumed). */
export async function readJob(db: Queryable, jobId: number): Promise<ResumableJob | undefined> {
  const r = await db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM adaptive_load.load_jobs WHERE job_id = $1`, [jobId]);
  return r.rows[0] ? toJob(r.rows[0]) : undefined;
}

/** The newest chunked job of this table and file (its absolute path) that did not finish. */
export async function newestUnfinishedJob(db: Queryable, table: string, path: string): Promise<ResumableJob | undefined> {
  const r = await db.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM adaptive_load.load_jobs
      WHERE table_name = $1 AND source_fingerprint->>'path' = $2 AND (chunk_rows IS NOT NULL OR chunk_bytes IS NOT NULL)
        AND status IN ('running', 'failed', 'interrupted', 'rolled_back')
      ORDER BY job_id DESC LIMIT 1`, [table, path]);
  return r.rows[0] ? toJob(r.rows[0]) : undefined;
}

/**
 * Takes the job's lock on this session (so recovery sees it live) and marks it running again.
 * False when another process holds it: that job is still being loaded.
 */
export async function reopenJob(db: Queryable, jobId: number): Promise<boolean> {
  const r = await db.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${jobLockKeySql('$1')}) AS locked`, [jobId]);
  if (!r.rows[0]!.locked) return false;
  await db.query(
    `UPDATE adaptive_load.load_jobs SET status = 'running', finished_at = NULL, error = NULL WHERE job_id = $1`, [jobId]);
  return true;
}

/**
 * Marks an unfinished job superseded (a --restart loads its source again from the start): its
 * committed chunks stay, but no --resume continues it. False when a live process holds it.
 */
export async function supersedeJob(db: Queryable, jobId: number): Promise<boolean> {
  const r = await db.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${jobLockKeySql('$1')}) AS locked`, [jobId]);
  if (!r.rows[0]!.locked) return false;
  try {
    await db.query(`UPDATE adaptive_load.load_jobs SET status = 'superseded', finished_at = coalesce(finished_at, now()) WHERE job_id = $1`, [jobId]);
  } finally {
    await db.query(`SELECT pg_advisory_unlock(${jobLockKeySql('$1')})`, [jobId]);
  }
  return true;
}

/** Where a resumed job continues: after its newest manifest row (the input's start when it has none). */
export interface ResumePoint {
  readonly chunksDone: number;
  readonly offset: number;
  readonly line: number;
  readonly rows: number;
  readonly rejected: number;
  readonly rejectsOffset: number;
  /** A staging table's job: the heap block its next chunk starts at (undefined for a file). */
  readonly toBlock: number | undefined;
}

export async function readResumePoint(db: Queryable, jobId: number): Promise<ResumePoint> {
  const r = await db.query<{ chunks: number; offset: string | null; line: string | null; rows: string; rejected: string; rejects_offset: string | null; to_block: string | null }>(
    `SELECT count(*)::int AS chunks, sum(rows_loaded)::text AS rows, sum(rows_rejected)::text AS rejected,
            (array_agg(end_offset ORDER BY chunk DESC))[1]::text AS offset,
            (array_agg(end_line ORDER BY chunk DESC))[1]::text AS line,
            (array_agg(rejects_offset ORDER BY chunk DESC))[1]::text AS rejects_offset,
            (array_agg(ctid_to_block ORDER BY chunk DESC))[1]::text AS to_block
       FROM adaptive_load.load_chunks WHERE job_id = $1`, [jobId]);
  const row = r.rows[0]!;
  return {
    chunksDone: row.chunks, offset: Number(row.offset ?? 0), line: Number(row.line ?? 1),
    rows: Number(row.rows ?? 0), rejected: Number(row.rejected ?? 0), rejectsOffset: Number(row.rejects_offset ?? 0),
    toBlock: row.to_block === null ? undefined : Number(row.to_block),
  };
}
