-- Up Migration
-- Advice for a DBA, stored by the monitor with the window it was drawn from (in the window's
-- transaction), so the report shows what the monitor concluded instead of concluding again by
-- rules of its own.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE TABLE adaptive_load.advice (
    window_id   bigint NOT NULL REFERENCES adaptive_load.windows ON DELETE CASCADE,
    position    integer NOT NULL,
    kind        text NOT NULL,
    table_name  text,
    detail      text NOT NULL,
    sql_text    text,
    PRIMARY KEY (window_id, position)
);
COMMENT ON TABLE adaptive_load.advice IS 'Per window: what a DBA can do that moving shards cannot (isolate a tenant, weight or scale up a node, add a node, connections, memory), or a rebalance the monitor did not run; with the SQL to act where there is one.';

-- The latest window's advice; a window with no advice shows none (not an older window's).
CREATE VIEW adaptive_load.current_advice AS
SELECT a.window_id, w.to_at AS window_end, a.position, a.kind, a.table_name, a.detail, a.sql_text
  FROM adaptive_load.advice a JOIN adaptive_load.windows w USING (window_id)
 WHERE a.window_id = (SELECT max(window_id) FROM adaptive_load.windows)
 ORDER BY a.position;
COMMENT ON VIEW adaptive_load.current_advice IS 'The advice of the latest monitoring window, in the order given.';

-- Down Migration
DROP VIEW adaptive_load.current_advice;
DROP TABLE adaptive_load.advice;
