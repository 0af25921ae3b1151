-- Up Migration
-- Indexes for pruning history by age in bounded batches (store/retention.ts) and for the bounded
-- read of the latest active windows a monitor cycle refits on (store/history-store.ts).
SET LOCAL citus.enable_ddl_propagation TO off;

-- The horizon is a time: find the last window before it without reading them all.
CREATE INDEX IF NOT EXISTS windows_to_at_idx ON adaptive_load.windows (to_at);
-- Deleting a window sets shard_predictions.window_id to NULL: look the rows up, do not scan.
CREATE INDEX IF NOT EXISTS shard_predictions_window_id_idx ON adaptive_load.shard_predictions (window_id);
-- One model state per cycle; pruned by age.
CREATE INDEX IF NOT EXISTS model_state_fitted_at_idx ON adaptive_load.model_state (fitted_at);

-- Down Migration
DROP INDEX IF EXISTS adaptive_load.model_state_fitted_at_idx;
DROP INDEX IF EXISTS adaptive_load.shard_predictions_window_id_idx;
DROP INDEX IF EXISTS adaptive_load.windows_to_at_idx;
