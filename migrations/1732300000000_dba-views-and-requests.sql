-- Up Migration
-- What a DBA reads and how a DBA asks, from psql: views over what the tool recorded, and a
-- requests table whose trigger NOTIFYs the daemon.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE VIEW adaptive_load.loads AS
SELECT j.job_id, j.table_name, j.source, j.load_path, j.path_reason, j.status, j.started_at, j.finished_at,
       j.rows_loaded, j.rows_rejected, j.bytes_read, j.seconds,
       round((j.rows_loaded / nullif(j.seconds, 0))::numeric, 0) AS rows_per_second, j.error, j.profile_id
  FROM adaptive_load.load_jobs j;
COMMENT ON VIEW adaptive_load.loads IS 'Every load: source, target, path (direct or coordinator, and why), outcome, timings.';

CREATE VIEW adaptive_load.current_profiles AS
SELECT DISTINCT ON (table_name) profile_id, table_name, created_at, applied,
       profile->>'kind' AS kind, profile->>'distributionColumn' AS distribution_column,
       (profile->>'shardCount')::int AS shard_count, profile->>'colocateWith' AS colocate_with,
       profile->'isolate' AS isolated_tenants, profile->'reasons' AS reasons, profile
  FROM adaptive_load.profiles ORDER BY table_name, created_at DESC;
COMMENT ON VIEW adaptive_load.current_profiles IS 'The latest sharding profile per table, with the reasons for each choice.';

CREATE VIEW adaptive_load.predictions_vs_actuals AS
SELECT w.window_id, w.from_at, w.to_at, h.shard_id, l.table_name, l.node,
       h.predicted_share, h.actual_share, abs(h.predicted_share - h.actual_share) AS abs_error, w.mape AS window_mape
  FROM adaptive_load.prediction_history h
  JOIN adaptive_load.windows w USING (window_id)
  LEFT JOIN adaptive_load.shard_load l USING (window_id, shard_id);
COMMENT ON VIEW adaptive_load.predictions_vs_actuals IS 'Per window and shard: the share of load the model predicted and the share that happened.';

CREATE VIEW adaptive_load.actions_taken AS
SELECT action_id, taken_at, kind, detail, outcome, undo_sql FROM adaptive_load.actions ORDER BY taken_at DESC;
COMMENT ON VIEW adaptive_load.actions_taken IS 'Shard moves and setting changes, newest first, each with the SQL that undoes it.';

CREATE TABLE adaptive_load.requests (
    request_id   bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('load', 'rebalance')),
    table_name   text,
    source       text,
    options      jsonb NOT NULL DEFAULT '{}',
    requested_by name NOT NULL DEFAULT current_user,
    requested_at timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    started_at   timestamptz,
    finished_at  timestamptz,
    outcome      jsonb,
    error        text
);
COMMENT ON TABLE adaptive_load.requests IS 'Loads and rebalances requested from SQL; the daemon LISTENs, runs them and records status, timings and outcome here.';

CREATE FUNCTION adaptive_load.notify_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('adaptive_load_requests', NEW.request_id::text);
    RETURN NEW;
END $$;

CREATE TRIGGER requests_notify AFTER INSERT ON adaptive_load.requests
    FOR EACH ROW EXECUTE FUNCTION adaptive_load.notify_request();

CREATE FUNCTION adaptive_load.request_load(table_name text, source text, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, source, options) VALUES ('load', $1, $2, $3) RETURNING request_id
$$;
COMMENT ON FUNCTION adaptive_load.request_load(text, text, jsonb) IS
  'Asks the daemon to load file `source` (a path on the daemon''s machine) into `table_name`; options as the CLI''s (maxErrors, format, delimiter, header...). Returns the request id.';

CREATE FUNCTION adaptive_load.request_rebalance(table_name text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, options) VALUES ('rebalance', $1, jsonb_build_object('dryRun', $2)) RETURNING request_id
$$;

-- Down Migration
DROP FUNCTION adaptive_load.request_rebalance(text, boolean);
DROP FUNCTION adaptive_load.request_load(text, text, jsonb);
DROP TRIGGER requests_notify ON adaptive_load.requests;
DROP FUNCTION adaptive_load.notify_request();
DROP TABLE adaptive_load.requests;
DROP VIEW adaptive_load.actions_taken, adaptive_load.predictions_vs_actuals, adaptive_load.current_profiles, adaptive_load.loads;
