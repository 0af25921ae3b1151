-- Up Migration
-- WAPE and the largest absolute share error per node beside MAPE (issue 11 item 5), and whether a
-- window read every node. Another branch adds the same columns; IF NOT EXISTS lets both run.
SET LOCAL citus.enable_ddl_propagation TO off;

ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS wape double precision;
ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS max_share_error double precision;
ALTER TABLE adaptive_load.windows ADD COLUMN IF NOT EXISTS complete boolean NOT NULL DEFAULT true;

-- Down Migration
-- The columns may belong to the other branch's migration as well: leave them.
SELECT 1;
