-- Up Migration
-- Live metrics per node and window, and the capacity each node has left for shard load once the
-- load no shard explains is counted (see src/allocate/node-metrics.ts).
SET LOCAL citus.enable_ddl_propagation TO off;

-- pg_stat_statements counters are kept per database too (the background load reads them all).
ALTER TABLE adaptive_load.stat_snapshots ADD COLUMN dbid oid NOT NULL DEFAULT 0;
ALTER TABLE adaptive_load.stat_snapshots DROP CONSTRAINT stat_snapshots_pkey;
ALTER TABLE adaptive_load.stat_snapshots ADD PRIMARY KEY (node, dbid, queryid);

-- Cumulative counters per node at the last window's end, to take deltas.
CREATE TABLE adaptive_load.node_counters (
    node        text PRIMARY KEY,
    counters    jsonb NOT NULL,
    taken_at    timestamptz NOT NULL
);

CREATE TABLE adaptive_load.node_metrics (
    window_id                 bigint NOT NULL REFERENCES adaptive_load.windows ON DELETE CASCADE,
    node                      text NOT NULL,
    busy_ms                   double precision NOT NULL,
    shard_ms                  double precision NOT NULL,
    background_ms             double precision NOT NULL,
    xacts_per_second          double precision NOT NULL,
    cache_hit_ratio           double precision,
    tuples_read_per_second    double precision NOT NULL,
    tuples_written_per_second double precision NOT NULL,
    active_backends           integer NOT NULL,
    waiting_backends          integer NOT NULL,
    connections_used          double precision NOT NULL,
    host_cores                integer,
    host_cpu_busy             double precision,
    host_memory_used          double precision,
    host_disk_busy            double precision,
    load_factor               double precision NOT NULL,
    PRIMARY KEY (window_id, node)
);
COMMENT ON TABLE adaptive_load.node_metrics IS 'Per window and node: busy time (pg_stat_database.active_time), the statement time its shards explain and the user statements on it that name no shard (background), throughput, backends, connections, host CPU/memory/disk where readable, and the resulting load factor.';

-- What the monitor observed of each node: base capacity from its host (cores relative to the
-- mean, when the host is readable) and the factor of it left for shard load.
CREATE TABLE adaptive_load.node_observed (
    node_id       integer PRIMARY KEY,
    base_capacity double precision CHECK (base_capacity > 0),
    load_factor   double precision NOT NULL CHECK (load_factor > 0),
    observed_at   timestamptz NOT NULL DEFAULT now(),
    detail        jsonb NOT NULL DEFAULT '{}'
);

-- A DBA's capacity wins over the observed base; the observed load factor applies to either.
CREATE OR REPLACE FUNCTION adaptive_load.node_capacity(node_id integer) RETURNS real
LANGUAGE sql STABLE AS $$
    SELECT (coalesce((SELECT capacity FROM adaptive_load.node_capacity c WHERE c.node_id = $1),
                     (SELECT base_capacity FROM adaptive_load.node_observed o WHERE o.node_id = $1), 1)
            * coalesce((SELECT load_factor FROM adaptive_load.node_observed o WHERE o.node_id = $1), 1))::real
$$;

-- Down Migration
CREATE OR REPLACE FUNCTION adaptive_load.node_capacity(node_id integer) RETURNS real
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT capacity FROM adaptive_load.node_capacity c WHERE c.node_id = $1), 1)::real
$$;
DROP TABLE adaptive_load.node_observed, adaptive_load.node_metrics, adaptive_load.node_counters;
DELETE FROM adaptive_load.stat_snapshots WHERE dbid <> 0;
ALTER TABLE adaptive_load.stat_snapshots DROP CONSTRAINT stat_snapshots_pkey;
ALTER TABLE adaptive_load.stat_snapshots DROP COLUMN dbid;
ALTER TABLE adaptive_load.stat_snapshots ADD PRIMARY KEY (node, queryid);
