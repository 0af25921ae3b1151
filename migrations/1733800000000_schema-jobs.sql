-- Up Migration
-- A schema load (load --schema) as one job a DBA can see: schema_jobs is the job (its status,
-- runs, the tables it covers), schema_job_tables one row per table with the load job that loaded
-- it. Each table's load stays its own atomic distributed commit (load_jobs); the schema job groups
-- them and is committed when every table is loaded and verified. A re-run after a failure or a
-- crash continues the newest unfinished schema job of the schema.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE TABLE IF NOT EXISTS adaptive_load.schema_jobs (
    schema_job_id bigserial PRIMARY KEY,
    schema_name   text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'committed', 'failed')),
    runs          integer NOT NULL DEFAULT 1,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    error         text
);
CREATE INDEX IF NOT EXISTS schema_jobs_schema_idx ON adaptive_load.schema_jobs (schema_name, schema_job_id);
COMMENT ON TABLE adaptive_load.schema_jobs IS
    'One load --schema job: committed when every table of the schema is loaded and its row count verified. A run that failed or died leaves it running/failed; the next run continues it.';

CREATE TABLE IF NOT EXISTS adaptive_load.schema_job_tables (
    schema_job_id bigint NOT NULL REFERENCES adaptive_load.schema_jobs ON DELETE CASCADE,
    table_name    text NOT NULL,
    ord           integer NOT NULL,
    source        text,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'loaded', 'resumed', 'already-loaded', 'no-source', 'failed', 'not-reached')),
    load_job_id   bigint,
    rows_loaded   bigint,
    -- The rows the table held when this job first loaded it: a resumed table must end with these plus its file's.
    rows_before   bigint,
    error         text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_job_id, table_name)
);
COMMENT ON TABLE adaptive_load.schema_job_tables IS
    'The tables of a schema job in load order, with the load job (adaptive_load.load_jobs) that loaded each; each is its own atomic distributed commit.';

CREATE OR REPLACE VIEW adaptive_load.schema_loads AS
SELECT s.schema_job_id, s.schema_name, s.status, s.runs, s.started_at, s.finished_at,
       count(t.table_name) AS tables_total,
       count(t.table_name) FILTER (WHERE t.status IN ('loaded', 'resumed', 'already-loaded', 'no-source')) AS tables_done,
       count(t.table_name) FILTER (WHERE t.status NOT IN ('loaded', 'resumed', 'already-loaded', 'no-source')) AS tables_left,
       coalesce(sum(t.rows_loaded), 0) AS rows_loaded,
       array_agg(t.load_job_id ORDER BY t.ord) FILTER (WHERE t.load_job_id IS NOT NULL) AS load_job_ids,
       coalesce(jsonb_agg(jsonb_build_object('table', t.table_name, 'status', t.status, 'load_job_id', t.load_job_id, 'rows', t.rows_loaded)
                          ORDER BY t.ord) FILTER (WHERE t.table_name IS NOT NULL), '[]') AS tables,
       s.error
  FROM adaptive_load.schema_jobs s LEFT JOIN adaptive_load.schema_job_tables t USING (schema_job_id)
 GROUP BY s.schema_job_id;
COMMENT ON VIEW adaptive_load.schema_loads IS
    'load --schema jobs: status, tables done and left, the per-table load jobs (see adaptive_load.loads for each).';

-- Down Migration
DROP VIEW IF EXISTS adaptive_load.schema_loads;
DROP TABLE IF EXISTS adaptive_load.schema_job_tables;
DROP TABLE IF EXISTS adaptive_load.schema_jobs;
