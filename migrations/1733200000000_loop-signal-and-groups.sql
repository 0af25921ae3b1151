-- Up Migration
-- The feedback loop acts on whole colocation groups and honest numbers (issue 15, issue 11 item 5).
SET LOCAL citus.enable_ddl_propagation TO off;
-- The shard cost reads Citus's catalog, absent on plain PostgreSQL (where the tool keeps its history too).
SET LOCAL check_function_bodies TO off;

-- Per window: WAPE of the per-node prediction (sum |predicted - actual| / sum actual, every node
-- scored), the largest absolute node share error, and whether every node answered (an incomplete
-- window stores no actual load and trains nothing).
ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS wape double precision;
ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS max_share_error double precision;
ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS complete boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN adaptive_load.windows.wape IS 'Per-node prediction error: sum of |predicted - actual| node shares over the sum of actual shares; every node scored, idle ones included.';
COMMENT ON COLUMN adaptive_load.windows.max_share_error IS 'Largest absolute error of a node''s predicted share (0.04 = 4 points).';
COMMENT ON COLUMN adaptive_load.windows.complete IS 'False when a node could not be read: no actual load stored, nothing learned, no moves.';

-- Citus calls the strategy's shard cost for the shards of one table per colocation group, and
-- moves each with all its colocated shards: a shard's cost is the predicted load of its whole
-- shard group (every table of the colocation group, the same hash range), as Citus's own
-- citus_shard_cost_by_disk_size sums the group's sizes.
CREATE OR REPLACE FUNCTION adaptive_load.shard_cost(shard_id bigint) RETURNS real
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    -- A small floor keeps shards with no history movable and counted.
    SELECT (coalesce((
        SELECT sum(p.predicted_share)
          FROM pg_dist_shard s
          JOIN pg_dist_partition dp ON dp.logicalrelid = s.logicalrelid
          JOIN pg_dist_partition cp ON cp.colocationid = dp.colocationid AND (dp.colocationid <> 0 OR cp.logicalrelid = dp.logicalrelid)
          JOIN pg_dist_shard c ON c.logicalrelid = cp.logicalrelid
                              AND c.shardminvalue IS NOT DISTINCT FROM s.shardminvalue AND c.shardmaxvalue IS NOT DISTINCT FROM s.shardmaxvalue
          JOIN adaptive_load.shard_predictions p ON p.shard_id = c.shardid
         WHERE s.shardid = $1), 0) + 0.0001)::real
$$;

CREATE OR REPLACE VIEW adaptive_load.predictions_vs_actuals AS
SELECT w.window_id, w.from_at, w.to_at, h.shard_id, l.table_name, l.node,
       h.predicted_share, h.actual_share, abs(h.predicted_share - h.actual_share) AS abs_error, w.mape AS window_mape,
       w.wape AS window_wape, w.max_share_error AS window_max_share_error, w.complete AS window_complete
  FROM adaptive_load.prediction_history h
  JOIN adaptive_load.windows w USING (window_id)
  LEFT JOIN adaptive_load.shard_load l USING (window_id, shard_id);
COMMENT ON VIEW adaptive_load.predictions_vs_actuals IS 'Per window and shard: the share of load the model predicted and the share that happened, with the window''s node-level WAPE (the headline error), largest share error and MAPE.';

-- Per window and node: predicted against actual share (incomplete windows have no actual shares).
CREATE OR REPLACE VIEW adaptive_load.node_predictions_vs_actuals AS
SELECT w.window_id, w.from_at, w.to_at, w.complete, n->>'node' AS node,
       (n->>'predictedShare')::double precision AS predicted_share, (n->>'actualShare')::double precision AS actual_share,
       abs((n->>'predictedShare')::double precision - (n->>'actualShare')::double precision) AS abs_error,
       w.wape AS window_wape, w.max_share_error AS window_max_share_error
  FROM adaptive_load.windows w CROSS JOIN LATERAL jsonb_array_elements(w.nodes) n;
COMMENT ON VIEW adaptive_load.node_predictions_vs_actuals IS 'Per window and node: predicted and actual share of the load, with the window''s WAPE and largest share error.';

-- Down Migration
DROP VIEW adaptive_load.node_predictions_vs_actuals;
DROP VIEW adaptive_load.predictions_vs_actuals;
CREATE VIEW adaptive_load.predictions_vs_actuals AS
SELECT w.window_id, w.from_at, w.to_at, h.shard_id, l.table_name, l.node,
       h.predicted_share, h.actual_share, abs(h.predicted_share - h.actual_share) AS abs_error, w.mape AS window_mape
  FROM adaptive_load.prediction_history h
  JOIN adaptive_load.windows w USING (window_id)
  LEFT JOIN adaptive_load.shard_load l USING (window_id, shard_id);
CREATE OR REPLACE FUNCTION adaptive_load.shard_cost(shard_id bigint) RETURNS real
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (coalesce((SELECT predicted_share FROM adaptive_load.shard_predictions p WHERE p.shard_id = $1), 0) + 0.0001)::real
$$;
ALTER TABLE adaptive_load.windows DROP COLUMN complete, DROP COLUMN max_share_error, DROP COLUMN wape;
