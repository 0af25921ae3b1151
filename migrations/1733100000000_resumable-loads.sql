-- Up Migration
-- Loads committed in chunks (--commit-every), resumable after a crash (--resume). Each chunk is
-- its own distributed transaction: its commit record (commit_records, now one per chunk) and
-- its manifest row (load_chunks) are written in the same coordinator transaction, so a chunk is
-- in the table exactly when its manifest row exists.

ALTER TABLE adaptive_load.load_jobs
    ADD COLUMN IF NOT EXISTS chunk_rows bigint,
    ADD COLUMN IF NOT EXISTS chunk_bytes bigint,
    ADD COLUMN IF NOT EXISTS source_bytes bigint,
    ADD COLUMN IF NOT EXISTS source_fingerprint jsonb,
    ADD COLUMN IF NOT EXISTS chunks_done integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS bytes_done bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN adaptive_load.load_jobs.source_fingerprint IS
  'Chunked loads of a file: path, size, mtime and hashes of its first and last 64 KiB; --resume refuses a file that differs.';

-- 'interrupted': a chunked load whose process ended before its last chunk; --resume continues it.
ALTER TABLE adaptive_load.load_jobs DROP CONSTRAINT IF EXISTS load_jobs_status_check;
ALTER TABLE adaptive_load.load_jobs ADD CONSTRAINT load_jobs_status_check
    CHECK (status IN ('running', 'committed', 'failed', 'rolled_back', 'interrupted'));

ALTER TABLE adaptive_load.commit_records ADD COLUMN IF NOT EXISTS chunk integer NOT NULL DEFAULT 0;
ALTER TABLE adaptive_load.commit_records DROP CONSTRAINT IF EXISTS commit_records_pkey;
ALTER TABLE adaptive_load.commit_records ADD PRIMARY KEY (job_id, chunk);

CREATE TABLE IF NOT EXISTS adaptive_load.load_chunks (
    job_id         bigint NOT NULL REFERENCES adaptive_load.load_jobs ON DELETE CASCADE,
    chunk          integer NOT NULL,
    start_offset   bigint NOT NULL,
    end_offset     bigint NOT NULL,
    end_line       bigint NOT NULL,
    rows_loaded    bigint NOT NULL,
    rows_rejected  bigint NOT NULL,
    rejects_offset bigint NOT NULL,
    shards         jsonb NOT NULL,
    nodes          jsonb NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, chunk),
    CHECK (end_offset >= start_offset)
);
COMMENT ON TABLE adaptive_load.load_chunks IS
  'The manifest of a chunked load: per committed chunk, the input byte range [start_offset, end_offset) (decompressed '
  'offsets for .gz), rows per shard, rows rejected and the rejects file''s length after it. Written in the chunk''s commit-record transaction.';

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

-- Down Migration
CREATE OR REPLACE VIEW adaptive_load.loads AS
SELECT j.job_id, j.table_name, j.source, j.load_path, j.path_reason, j.status, j.started_at, j.finished_at,
       j.rows_loaded, j.rows_rejected, j.bytes_read, j.seconds,
       round((j.rows_loaded / nullif(j.seconds, 0))::numeric, 0) AS rows_per_second, j.error, j.profile_id
  FROM adaptive_load.load_jobs j;
DROP TABLE adaptive_load.load_chunks;
ALTER TABLE adaptive_load.commit_records DROP CONSTRAINT commit_records_pkey;
DELETE FROM adaptive_load.commit_records WHERE chunk <> 0;
ALTER TABLE adaptive_load.commit_records ADD PRIMARY KEY (job_id);
ALTER TABLE adaptive_load.commit_records DROP COLUMN chunk;
ALTER TABLE adaptive_load.load_jobs DROP CONSTRAINT load_jobs_status_check;
UPDATE adaptive_load.load_jobs SET status = 'failed' WHERE status = 'interrupted';
ALTER TABLE adaptive_load.load_jobs ADD CONSTRAINT load_jobs_status_check
    CHECK (status IN ('running', 'committed', 'failed', 'rolled_back'));
ALTER TABLE adaptive_load.load_jobs DROP COLUMN chunk_rows, DROP COLUMN chunk_bytes, DROP COLUMN source_bytes,
    DROP COLUMN source_fingerprint, DROP COLUMN chunks_done, DROP COLUMN bytes_done;
