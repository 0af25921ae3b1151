-- Up Migration
-- Sharding profiles: what the tool decided for a table, and why; one per plan that was applied
-- or used for a load.
CREATE TABLE adaptive_load.profiles (
    profile_id  bigserial PRIMARY KEY,
    table_name  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    applied     boolean NOT NULL DEFAULT false,
    statements  text[] NOT NULL DEFAULT '{}',
    profile     jsonb NOT NULL
);
CREATE INDEX ON adaptive_load.profiles (table_name, created_at DESC);
COMMENT ON TABLE adaptive_load.profiles IS 'Sharding profiles (versioned JSON): distribution column, shard count, colocation, isolated tenants, placement, ranked candidates with reasons.';

ALTER TABLE adaptive_load.load_jobs ADD COLUMN profile_id bigint REFERENCES adaptive_load.profiles;

-- Down Migration
ALTER TABLE adaptive_load.load_jobs DROP COLUMN profile_id;
DROP TABLE adaptive_load.profiles;
