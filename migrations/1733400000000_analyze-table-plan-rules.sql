-- Up Migration
-- adaptive_load.analyze_table learns the planner's rules of issue 11 (src/plan/colocation-rules.ts
-- and planner.ts say them in TypeScript):
-- - expected_rows (new argument): the table is planned for the rows it will hold, not today's;
-- - only colocations Citus accepts: the group's distribution column must have the table's column
--   type and collation;
-- - weak evidence: the table's own serial key (unique, dense integers) contained in another dense
--   integer key counts only when the names agree; and values in a corner of an integer key's
--   range count when the names agree (a child may hold a few of its parent's keys);
-- - tables that will grow: a column that colocates with a group and that a primary/unique key of
--   the table carries decides the distribution whatever the score or size, and a small table with
--   a column colocated with a group is distributed and colocated, not a reference table; the
--   small tenant table at the root of a multi-tenant schema (tenants, accounts...) is distributed
--   by its id;
-- - tenants above the isolation threshold are isolated inside a colocation group too, and the
--   reasons of a colocated table no longer quote a fresh placement's balance the group will not get.
-- As the earlier patches do, the installed definition (pinned search_path included) is patched
-- where expected, and the patch refuses a body it does not expect. The signature changes, so the
-- old function is dropped and the patched one created.
SET LOCAL citus.enable_ddl_propagation TO off;

/** Do the names say `col` refers to `rel`.`refcol`? Mirrors namesAgree in colocation-rules.ts. */
CREATE OR REPLACE FUNCTION adaptive_load.names_agree(col text, rel text, refcol text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH n AS (
        SELECT lower(col) AS c, lower(refcol) AS r,
               regexp_replace(regexp_replace(lower(replace(regexp_replace(rel, '^.*\.', ''), '"', '')), 'ies$', 'y'), 's$', '') AS t
    ), s AS (
        SELECT c, r, t, regexp_replace(c, '^[a-z]{1,3}_(?=[a-z])', '') AS sc, regexp_replace(r, '^[a-z]{1,3}_(?=[a-z])', '') AS sr FROM n
    )
    SELECT c IN (t || '_id', t || 'id', t || '_key')
        OR (NOT (c = ANY (ARRAY['id', 'key', 'code', 'no', 'num', 'number']) OR sc = ANY (ARRAY['id', 'key', 'code', 'no', 'num', 'number']))
            AND (c = r OR sc = sr))
      FROM s
$$;

/** This migration's text patches, [old, new] pairs, kept so that Down can apply them in reverse. */
CREATE FUNCTION adaptive_load.analyze_table_plan_rules_patches() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $patches$ SELECT ARRAY[
        [$e$sample_percent double precision DEFAULT NULL::double precision)$e$,
         $e$sample_percent double precision DEFAULT NULL::double precision, expected_rows bigint DEFAULT NULL::bigint)$e$],
        [$e$    est_rows float8;
$e$, $e$    est_rows float8;
    plan_rows float8;
    keyed boolean;
    alt jsonb;
    key_rows float8;
    own_span numeric;
$e$],
        [$e$    IF est_rows <= 0 THEN EXECUTE format('SELECT count(*) FROM %s', source) INTO est_rows; END IF;
$e$, $e$    IF est_rows <= 0 THEN EXECUTE format('SELECT count(*) FROM %s', source) INTO est_rows; END IF;
    IF expected_rows IS NOT NULL AND expected_rows < 1 THEN
        RAISE EXCEPTION 'expected_rows must be at least 1 (or NULL to plan for the rows the table holds), got %', expected_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Planned for the rows the table will hold: the user's expectation when it is larger.
    plan_rows := greatest(est_rows, coalesce(expected_rows, 0));
$e$],
        [$e$ceil(pg_total_relation_size(source) / (2.0 * 1024 ^ 3))$e$,
         $e$ceil(pg_total_relation_size(source) * plan_rows / greatest(est_rows, 1) / (2.0 * 1024 ^ 3))$e$],
        [$e$                 WHERE p.partmethod = 'h' AND p.logicalrelid <> source
$e$, $e$                 WHERE p.partmethod = 'h' AND p.logicalrelid <> source
                   -- Citus colocates only distribution columns of the same type and collation.
                   AND (a.atttypid, a.attcollation) = (SELECT atttypid, attcollation FROM pg_attribute WHERE attrelid = source AND attname = col.name)
$e$],
        [$e$                IF containment >= 0.9 THEN
                    colo := t.rel;$e$, $e$                -- The table's own serial key (unique, its sampled span within twice its distinct
                -- count) inside another dense integer key proves little unless the names agree.
                IF containment >= 0.9 AND col.typ IN ('int2', 'int4', 'int8') AND st.f1 = n - st.nulls
                   AND NOT adaptive_load.names_agree(col.name, t.rel, t.dcol) THEN
                    EXECUTE format('SELECT max(%1$I)::numeric - min(%1$I)::numeric + 1 FROM adaptive_load_sample', col.name) INTO own_span;
                    -- Counted up to a bound: a key with more rows than that is dense only if its span is small.
                    EXECUTE format('SELECT count(*)::float8 FROM (SELECT 1 FROM %s LIMIT 1000001) b', t.rel) INTO key_rows;
                    EXECUTE format('SELECT max(%1$I)::numeric - min(%1$I)::numeric + 1 FROM %2$s', t.dcol, t.rel) INTO key_span;
                    IF own_span <= 2 * d_est AND key_span > 0 AND key_rows >= 0.5 * key_span THEN
                        containment := 0;
                    END IF;
                END IF;
                IF containment >= 0.9 THEN
                    colo := t.rel;$e$],
        [$e$                    IF key_span > 0 AND (SELECT max(x::numeric) - min(x::numeric) FROM unnest(probe) x) < 0.5 * key_span THEN$e$,
         $e$                    -- ... unless the names agree: a child may hold a corner of its parent's keys.
                    IF key_span > 0 AND (SELECT max(x::numeric) - min(x::numeric) FROM unnest(probe) x) < 0.5 * key_span
                       AND NOT adaptive_load.names_agree(col.name, t.rel, t.dcol) THEN$e$],
        [$e$            IF colo IS NULL AND d_est >= shards * 4 THEN$e$, $e$            IF d_est >= shards * 4 THEN$e$],
        [$e$            reasons := reasons || format('busiest node predicted at %sx the mean node load', round(balance::numeric, 2));$e$,
         $e$            -- A colocated table's placement is its group's: a fresh placement's balance would be a claim the cluster does not get.
            IF colo IS NULL THEN
                reasons := reasons || format('busiest node predicted at %sx the mean node load', round(balance::numeric, 2));
            ELSE
                reasons := reasons || format('placement follows %s''s colocation group (tenants isolated with CASCADE across it)', colo);
            END IF;$e$],
        [$e$        IF d_est < shards * 4 THEN
            score := score - 25;$e$, $e$        keyed := colo IS NOT NULL AND EXISTS (
            SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
             WHERE k.conrelid = source AND k.contype IN ('p', 'u') AND a.attname = col.name);
        IF keyed THEN
            reasons := reasons || format('a key of the table carries %s''s distribution column: it belongs in that group, whatever its size today', colo);
        END IF;
        IF d_est < shards * 4 THEN
            score := score - 25;$e$],
        [$e$'colocateWith', colo, 'isolate', to_jsonb(iso), 'groups', groups);$e$,
         $e$'colocateWith', colo, 'isolate', to_jsonb(iso), 'groups', groups, 'keyed', keyed, 'unique', st.f1 = n);$e$],
        [$e$    SELECT c INTO best FROM jsonb_array_elements(cands) c WHERE NOT c ? 'rejected' ORDER BY (c->>'score')::float8 DESC LIMIT 1;
    IF best IS NULL OR ((est_rows <= 10000 OR (est_rows <= 100000 AND NOT any_groups)) AND best->>'colocateWith' IS NULL) THEN$e$,
         $e$    -- Declared keys that carry a group's distribution column decide first; then the best score;
    -- a small table with a column colocated with a group is not a dimension.
    SELECT c INTO best FROM jsonb_array_elements(cands) c WHERE NOT c ? 'rejected' AND (c->>'keyed')::boolean ORDER BY (c->>'score')::float8 DESC LIMIT 1;
    IF best IS NULL THEN
        SELECT c INTO best FROM jsonb_array_elements(cands) c WHERE NOT c ? 'rejected' ORDER BY (c->>'score')::float8 DESC LIMIT 1;
    END IF;
    IF best IS NOT NULL AND best->>'colocateWith' IS NULL AND (plan_rows <= 10000 OR (plan_rows <= 100000 AND NOT any_groups)) THEN
        SELECT c INTO alt FROM jsonb_array_elements(cands) c WHERE NOT c ? 'rejected' AND c->>'colocateWith' IS NOT NULL ORDER BY (c->>'score')::float8 DESC LIMIT 1;
        IF alt IS NOT NULL THEN best := alt; END IF;
    END IF;
    -- The tenant table at the root of a multi-tenant schema, keyed by its own id, is not a
    -- dimension: the tables of its tenants will be colocated with it.
    IF best IS NOT NULL AND best->>'colocateWith' IS NULL AND (plan_rows <= 10000 OR (plan_rows <= 100000 AND NOT any_groups)) THEN
        SELECT c || '{"root": true}' INTO alt FROM jsonb_array_elements(cands) c, pg_class r
         WHERE r.oid = source AND NOT c ? 'rejected' AND (c->>'unique')::boolean
           AND regexp_replace(regexp_replace(lower(r.relname), 'ies$', 'y'), 's$', '') ~ '^(tenant|account|organization|organisation|org|company|workspace|customer)$'
           AND c->>'column' IN (regexp_replace(regexp_replace(lower(r.relname), 'ies$', 'y'), 's$', '') || '_id', 'id')
         LIMIT 1;
        IF alt IS NOT NULL THEN
            best := alt || jsonb_build_object('reasons', (alt->'reasons') || jsonb_build_array(
                'the tenant table at the root of a multi-tenant schema (small today): distributed by its id, so the tables of its tenants can be colocated with it'));
        END IF;
    END IF;
    IF best IS NULL OR NOT coalesce((best->>'root')::boolean, false) AND ((plan_rows <= 10000 OR (plan_rows <= 100000 AND NOT any_groups)) AND best->>'colocateWith' IS NULL) THEN$e$],
        [$e$jsonb_agg(c - 'groups' - 'isolate' - 'colocateWith' ORDER BY$e$, $e$jsonb_agg(c - 'groups' - 'isolate' - 'colocateWith' - 'keyed' - 'unique' ORDER BY$e$],
        [$e$    RETURN result || jsonb_build_object('version', 1,$e$,
         $e$    RETURN result || jsonb_strip_nulls(jsonb_build_object('expectedRows', expected_rows)) || jsonb_build_object('version', 1,$e$]
    ] $patches$;

DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8)'::regprocedure);
    patches text[] := adaptive_load.analyze_table_plan_rules_patches();
    i int;
BEGIN
    FOR i IN 1 .. array_length(patches, 1) LOOP
        IF position(patches[i][1] IN def) = 0 OR position(patches[i][1] IN substr(def, position(patches[i][1] IN def) + 1)) > 0 THEN
            RAISE EXCEPTION 'adaptive_load.analyze_table is not the definition this migration patches (patch %)', i;
        END IF;
        def := replace(def, patches[i][1], patches[i][2]);
    END LOOP;
    DROP FUNCTION adaptive_load.analyze_table(regclass, float8);
    EXECUTE def;
END $$;
COMMENT ON FUNCTION adaptive_load.analyze_table(regclass, float8, bigint) IS
  'Samples the table (TABLESAMPLE BERNOULLI ... REPEATABLE) and returns a sharding profile: kind, distributionColumn, shardCount, colocateWith, isolate, ranked candidates with reasons; expected_rows plans for the size the table will have.';

-- Down Migration
DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8, bigint)'::regprocedure);
    patches text[] := adaptive_load.analyze_table_plan_rules_patches();
    i int;
BEGIN
    FOR i IN REVERSE array_length(patches, 1) .. 1 LOOP
        def := replace(def, patches[i][2], patches[i][1]);
    END LOOP;
    DROP FUNCTION adaptive_load.analyze_table(regclass, float8, bigint);
    EXECUTE def;
END $$;
DROP FUNCTION adaptive_load.analyze_table_plan_rules_patches();
DROP FUNCTION adaptive_load.names_agree(text, text, text);
