-- Up Migration
-- What the tool records on the coordinator about every load: the job, what went where, and the
-- commit record that decides the fate of the transactions prepared on the workers.
REVOKE ALL ON SCHEMA adaptive_load FROM PUBLIC;

CREATE TABLE adaptive_load.load_jobs (
    job_id       bigserial PRIMARY KEY,
    table_name   text NOT NULL,
    source       text NOT NULL,
    load_path    text CHECK (load_path IN ('direct', 'coordinator')),
    path_reason  text,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'committed', 'failed', 'rolled_back')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    rows_loaded  bigint,
    rows_rejected bigint,
    bytes_read   bigint,
    seconds      double precision,
    options      jsonb NOT NULL DEFAULT '{}',
    error        text
);
COMMENT ON TABLE adaptive_load.load_jobs IS 'One row per citus-adaptive-load run: source, target, path, outcome, timings.';

CREATE TABLE adaptive_load.load_shards (
    job_id    bigint NOT NULL REFERENCES adaptive_load.load_jobs ON DELETE CASCADE,
    target    text NOT NULL,
    shard_id  bigint,
    nodes     text[] NOT NULL,
    rows_loaded bigint NOT NULL,
    PRIMARY KEY (job_id, target)
);
COMMENT ON TABLE adaptive_load.load_shards IS 'Rows each load wrote into each shard, and the nodes holding its placements.';

CREATE TABLE adaptive_load.load_nodes (
    job_id    bigint NOT NULL REFERENCES adaptive_load.load_jobs ON DELETE CASCADE,
    node      text NOT NULL,
    rows_loaded bigint NOT NULL,
    bytes_sent  bigint NOT NULL,
    PRIMARY KEY (job_id, node)
);

CREATE TABLE adaptive_load.commit_records (
    job_id       bigint PRIMARY KEY REFERENCES adaptive_load.load_jobs ON DELETE CASCADE,
    gids         text[] NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE adaptive_load.commit_records IS
  'Written in the same transaction that marks a job committed; recovery commits the prepared transactions of jobs found here and rolls back the others.';

-- Down Migration
DROP TABLE adaptive_load.commit_records;
DROP TABLE adaptive_load.load_nodes;
DROP TABLE adaptive_load.load_shards;
DROP TABLE adaptive_load.load_jobs;
