-- Up Migration
-- Coordinator-only objects: the functions below read tables that exist only here.
SET LOCAL citus.enable_ddl_propagation TO off;
-- The load model: snapshots of actual load per shard and node, predictions, the model's state,
-- and the actions taken. The rebalance strategy's functions read the current predictions.

-- Cumulative pg_stat_statements counters per node, to take deltas between windows.
CREATE TABLE adaptive_load.stat_snapshots (
    node        text NOT NULL,
    queryid     bigint NOT NULL,
    calls       bigint NOT NULL,
    total_ms    double precision NOT NULL,
    taken_at    timestamptz NOT NULL,
    PRIMARY KEY (node, queryid)
);

CREATE TABLE adaptive_load.windows (
    window_id   bigserial PRIMARY KEY,
    from_at     timestamptz NOT NULL,
    to_at       timestamptz NOT NULL,
    mape        double precision,
    nodes       jsonb NOT NULL DEFAULT '[]',
    unreachable text[] NOT NULL DEFAULT '{}'
);

-- Actual load (execution time and calls) per shard in a window, from the worker statements
-- that name the shard table.
CREATE TABLE adaptive_load.shard_load (
    window_id   bigint NOT NULL REFERENCES adaptive_load.windows ON DELETE CASCADE,
    shard_id    bigint NOT NULL,
    table_name  text NOT NULL,
    node        text NOT NULL,
    calls       bigint NOT NULL,
    total_ms    double precision NOT NULL,
    PRIMARY KEY (window_id, shard_id)
);

-- The model's prediction for each shard: share of the cluster's load in the next window.
CREATE TABLE adaptive_load.shard_predictions (
    shard_id        bigint PRIMARY KEY,
    table_name      text NOT NULL,
    predicted_share double precision NOT NULL CHECK (predicted_share >= 0),
    predicted_at    timestamptz NOT NULL DEFAULT now(),
    window_id       bigint REFERENCES adaptive_load.windows ON DELETE SET NULL
);

CREATE TABLE adaptive_load.prediction_history (
    window_id       bigint NOT NULL REFERENCES adaptive_load.windows ON DELETE CASCADE,
    shard_id        bigint NOT NULL,
    predicted_share double precision NOT NULL,
    actual_share    double precision NOT NULL,
    PRIMARY KEY (window_id, shard_id)
);

CREATE TABLE adaptive_load.model_state (
    model_id    bigserial PRIMARY KEY,
    fitted_at   timestamptz NOT NULL DEFAULT now(),
    weights     jsonb NOT NULL,
    mape        double precision
);

-- Relative capacity of each node (1 = a standard node); a DBA may set it.
CREATE TABLE adaptive_load.node_capacity (
    node_id     integer PRIMARY KEY,
    capacity    double precision NOT NULL CHECK (capacity > 0)
);

CREATE TABLE adaptive_load.actions (
    action_id   bigserial PRIMARY KEY,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    detail      jsonb NOT NULL,
    outcome     text NOT NULL,
    undo_sql    text
);

-- Citus's rebalancer calls these for every shard and node when planning with the strategy.
CREATE FUNCTION adaptive_load.shard_cost(shard_id bigint) RETURNS real
LANGUAGE sql STABLE AS $$
    -- A small floor keeps shards with no history movable and counted.
    SELECT (coalesce((SELECT predicted_share FROM adaptive_load.shard_predictions p WHERE p.shard_id = $1), 0) + 0.0001)::real
$$;

CREATE FUNCTION adaptive_load.node_capacity(node_id integer) RETURNS real
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT capacity FROM adaptive_load.node_capacity c WHERE c.node_id = $1), 1)::real
$$;

CREATE FUNCTION adaptive_load.shard_allowed_on_node(shard_id bigint, node_id integer) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT true $$;

-- Down Migration
DROP FUNCTION adaptive_load.shard_allowed_on_node(bigint, integer);
DROP FUNCTION adaptive_load.node_capacity(integer);
DROP FUNCTION adaptive_load.shard_cost(bigint);
DROP TABLE adaptive_load.actions, adaptive_load.node_capacity, adaptive_load.model_state,
  adaptive_load.prediction_history, adaptive_load.shard_predictions, adaptive_load.shard_load,
  adaptive_load.windows, adaptive_load.stat_snapshots;
