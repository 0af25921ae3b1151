-- Up Migration
-- Progress of unfinished chunked loads, as far as it is known. A staging table's job knows its
-- chunks (heap block ranges) when a run starts: chunks_total. A file's bytes left are known only
-- when its size on disk is (not for stdin, and not for .gz, whose chunk offsets are of the
-- decompressed bytes); otherwise chunks_left and bytes_left are NULL, not 0.
ALTER TABLE adaptive_load.load_jobs ADD COLUMN IF NOT EXISTS chunks_total integer;
-- 'superseded': an unfinished chunked job whose source a --restart loaded again from its start.
ALTER TABLE adaptive_load.load_jobs DROP CONSTRAINT IF EXISTS load_jobs_status_check;
ALTER TABLE adaptive_load.load_jobs ADD CONSTRAINT load_jobs_status_check
    CHECK (status IN ('running', 'committed', 'failed', 'rolled_back', 'interrupted', 'superseded'));
COMMENT ON COLUMN adaptive_load.load_jobs.chunks_total IS
  'A chunked load from a staging table: how many chunks (heap block ranges) the job has in all; NULL for a file.';

CREATE OR REPLACE VIEW adaptive_load.loads AS
SELECT j.job_id, j.table_name, j.source, j.load_path, j.path_reason, j.status, j.started_at, j.finished_at,
       j.rows_loaded, j.rows_rejected, j.bytes_read, j.seconds,
       round((j.rows_loaded / nullif(j.seconds, 0))::numeric, 0) AS rows_per_second, j.error, j.profile_id,
       CASE WHEN j.chunk_rows IS NOT NULL OR j.chunk_bytes IS NOT NULL THEN j.chunks_done END AS chunks_done,
       CASE WHEN j.chunk_rows IS NULL AND j.chunk_bytes IS NULL THEN NULL
            WHEN j.status = 'committed' THEN 0
            WHEN j.chunks_total IS NOT NULL THEN greatest(j.chunks_total - j.chunks_done, 0)
            WHEN j.source_bytes IS NULL THEN NULL
            WHEN j.chunk_bytes IS NOT NULL THEN ceil(greatest(j.source_bytes - j.bytes_done, 0)::numeric / j.chunk_bytes)::bigint
            WHEN j.bytes_done > 0 AND j.rows_loaded > 0
              THEN ceil(greatest(j.source_bytes - j.bytes_done, 0)::numeric * j.rows_loaded / j.bytes_done / j.chunk_rows)::bigint
       END AS chunks_left,
       CASE WHEN j.chunk_rows IS NULL AND j.chunk_bytes IS NULL THEN NULL
            WHEN j.status = 'committed' THEN 0
            WHEN j.source_bytes IS NULL THEN NULL
            ELSE greatest(j.source_bytes - j.bytes_done, 0) END AS bytes_left
  FROM adaptive_load.load_jobs j;

-- Down Migration
CREATE OR REPLACE VIEW adaptive_load.loads AS
SELECT j.job_id, j.table_name, j.source, j.load_path, j.path_reason, j.status, j.started_at, j.finished_at,
       j.rows_loaded, j.rows_rejected, j.bytes_read, j.seconds,
       round((j.rows_loaded / nullif(j.seconds, 0))::numeric, 0) AS rows_per_second, j.error, j.profile_id,
       CASE WHEN j.chunk_rows IS NOT NULL OR j.chunk_bytes IS NOT NULL THEN j.chunks_done END AS chunks_done,
       CASE WHEN j.status = 'committed' THEN 0
            WHEN j.chunk_bytes IS NOT NULL THEN ceil(greatest(j.source_bytes - j.bytes_done, 0)::numeric / j.chunk_bytes)::bigint
            WHEN j.chunk_rows IS NOT NULL AND j.bytes_done > 0 AND j.rows_loaded > 0
              THEN ceil(greatest(j.source_bytes - j.bytes_done, 0)::numeric * j.rows_loaded / j.bytes_done / j.chunk_rows)::bigint
       END AS chunks_left,
       CASE WHEN j.chunk_rows IS NOT NULL OR j.chunk_bytes IS NOT NULL
            THEN CASE WHEN j.status = 'committed' THEN 0 ELSE greatest(j.source_bytes - j.bytes_done, 0) END END AS bytes_left
  FROM adaptive_load.load_jobs j;
ALTER TABLE adaptive_load.load_jobs DROP COLUMN chunks_total;
UPDATE adaptive_load.load_jobs SET status = 'interrupted' WHERE status = 'superseded';
ALTER TABLE adaptive_load.load_jobs DROP CONSTRAINT IF EXISTS load_jobs_status_check;
ALTER TABLE adaptive_load.load_jobs ADD CONSTRAINT load_jobs_status_check
    CHECK (status IN ('running', 'committed', 'failed', 'rolled_back', 'interrupted'));
