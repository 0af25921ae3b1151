-- Up Migration
-- The planner's rules in PL/pgSQL, so a DBA can analyze a staging table and distribute it from psql
-- with no Node process. They mirror src/profile/planner.ts: key-like types, values that group
-- rows, tenant-like names (weak), unique and time-like penalties, cardinality, node balance after
-- isolating heavy tenants, colocation found by values, reference tables for small tables.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE FUNCTION adaptive_load.estimate_distinct(n bigint, d bigint, f1 bigint, f2 bigint, total float8)
RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN n = 0 THEN 0
        WHEN n >= total THEN d
        WHEN f1 = n THEN total
        ELSE round(least(total, greatest(d, (n * d) / (n - f1 + f1 * n / total), d + f1 * (f1 - 1) / (2.0 * (f2 + 1)))))
    END
$$;

/** Busiest node over mean, placing shard loads longest-first onto the least loaded of `nodes`. */
CREATE FUNCTION adaptive_load.node_balance(loads float8[], nodes int) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    per float8[] := array_fill(0::float8, ARRAY[greatest(nodes, 1)]);
    l float8;
    k int;
    best int;
BEGIN
    FOR l IN SELECT x FROM unnest(loads) x ORDER BY x DESC LOOP
        best := 1;
        FOR k IN 2 .. array_length(per, 1) LOOP
            IF per[k] < per[best] THEN best := k; END IF;
        END LOOP;
        per[best] := per[best] + l;
    END LOOP;
    RETURN (SELECT max(x) * count(*) / nullif(sum(x), 0) FROM unnest(per) x);
END $$;

CREATE FUNCTION adaptive_load.analyze_table(source regclass, sample_percent float8 DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    est_rows float8;
    pct float8;
    n bigint;
    citus boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');
    default_shards int := coalesce(nullif(current_setting('citus.shard_count', true), '')::int, 32);
    nodes int := 1;
    shards int;
    col record;
    st record;
    cands jsonb := '[]';
    reasons text[];
    score float8;
    d_est float8;
    groups boolean;
    any_groups boolean := false;
    colo text;
    colo_col text;
    containment float8;
    hashes int[];
    loads float8[];
    iso text[];
    best jsonb;
    result jsonb;
    key_types text[] := ARRAY['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar'];
    t record;
    found_n bigint;
    probe text[];
    top_share float8;
    h int;
    step bigint;
    idx int;
    balance float8;
    key_span numeric;
BEGIN
    SELECT greatest(reltuples, 0) INTO est_rows FROM pg_class WHERE oid = source;
    IF est_rows <= 0 THEN EXECUTE format('SELECT count(*) FROM %s', source) INTO est_rows; END IF;
    IF citus THEN
        SELECT count(*) INTO nodes FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND shouldhaveshards;
    END IF;
    nodes := greatest(nodes, 1);
    -- 20,000 sampled rows: every quantile and share within ±1% at 95% confidence (DKW bound).
    pct := coalesce(sample_percent, least(100, 20000 * 100.0 / greatest(est_rows, 1)));
    DROP TABLE IF EXISTS pg_temp.adaptive_load_sample;
    EXECUTE format('CREATE TEMP TABLE adaptive_load_sample AS SELECT row_number() OVER () AS al_pos, s.* FROM %s s TABLESAMPLE BERNOULLI (%s) REPEATABLE (1)', source, pct);
    SELECT count(*) INTO n FROM adaptive_load_sample;
    shards := ceil(greatest(default_shards, ceil(pg_total_relation_size(source) / (2.0 * 1024 ^ 3))) / nodes) * nodes;

    FOR col IN
        SELECT a.attname AS name, bt.typname AS typ, format_type(a.atttypid, a.atttypmod) AS display
          FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
          JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
         WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
    LOOP
        reasons := ARRAY[]::text[];
        EXECUTE format($q$
            WITH v AS (SELECT %1$I::text AS v FROM adaptive_load_sample),
                 c AS (SELECT v, count(*) AS k FROM v WHERE v IS NOT NULL GROUP BY v)
            SELECT (SELECT count(*) FROM v WHERE v IS NULL) AS nulls,
                   (SELECT count(*) FROM c) AS d,
                   (SELECT count(*) FROM c WHERE k = 1) AS f1,
                   (SELECT count(*) FROM c WHERE k = 2) AS f2,
                   (SELECT max(k) FROM c)::float8 / nullif((SELECT count(*) FROM v WHERE v IS NOT NULL), 0) AS top_share
        $q$, col.name) INTO st;
        IF st.nulls > 0 THEN
            cands := cands || jsonb_build_object('column', col.name, 'score', 0, 'reasons', jsonb_build_array('NULL values: Citus does not allow NULL in the distribution column'), 'rejected', 'NULL values');
            CONTINUE;
        END IF;
        d_est := adaptive_load.estimate_distinct(n - st.nulls, st.d, st.f1, st.f2, est_rows);
        IF d_est < 2 THEN
            cands := cands || jsonb_build_object('column', col.name, 'score', 0, 'reasons', jsonb_build_array('a single value'), 'rejected', 'a single value');
            CONTINUE;
        END IF;
        score := 0;
        -- Colocation with a hash-distributed table whose distribution column holds the sampled values.
        colo := NULL;
        IF citus AND col.typ = ANY (key_types) THEN
            -- Up to 500 distinct values spread evenly over the sample.
            EXECUTE format($q$SELECT array_agg(v) FROM (SELECT v, row_number() OVER (ORDER BY first) AS r, count(*) OVER () AS c
                                 FROM (SELECT %1$I::text AS v, min(al_pos) AS first FROM adaptive_load_sample WHERE %1$I IS NOT NULL GROUP BY 1) d) x
                               WHERE (r - 1) %% greatest(1, c / 500) = 0 AND r <= 500 * greatest(1, c / 500)$q$, col.name) INTO probe;
            FOR t IN
                SELECT (SELECT format('%I.%I', ns.nspname, c.relname) FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
                         WHERE c.oid = p.logicalrelid) AS rel, column_to_column_name(p.logicalrelid, p.partkey) AS dcol,
                       format_type(a.atttypid, a.atttypmod) AS dtype
                  FROM pg_dist_partition p JOIN pg_attribute a ON a.attrelid = p.logicalrelid AND a.attname = column_to_column_name(p.logicalrelid, p.partkey)
                 WHERE p.partmethod = 'h' AND p.logicalrelid <> source
                 ORDER BY p.logicalrelid::regclass::text
            LOOP
                BEGIN
                    EXECUTE format('SELECT count(DISTINCT %1$I) FROM %2$s WHERE %1$I = ANY ($1::%3$s[])', t.dcol, t.rel, t.dtype) INTO found_n USING probe;
                EXCEPTION WHEN OTHERS THEN
                    found_n := 0;
                END;
                containment := found_n::float8 / greatest(array_length(probe, 1), 1);
                -- Integer values must also span half the key's range (a measure is "contained" in any dense id range).
                IF containment >= 0.9 AND t.dtype IN ('smallint', 'integer', 'bigint') THEN
                    EXECUTE format('SELECT (max(%1$I) - min(%1$I))::numeric FROM %2$s', t.dcol, t.rel) INTO key_span;
                    IF key_span > 0 AND (SELECT max(x::numeric) - min(x::numeric) FROM unnest(probe) x) < 0.5 * key_span THEN
                        containment := 0;
                    END IF;
                END IF;
                IF containment >= 0.9 THEN
                    colo := t.rel;
                    colo_col := t.dcol;
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF colo IS NOT NULL THEN
            score := score + 25;
            reasons := reasons || format('%s%% of its sampled values are in %s.%s, that table''s distribution column: colocated', round((containment * 100)::numeric), colo, colo_col);
        END IF;
        IF d_est < shards * 4 THEN
            score := score - 25;
            reasons := reasons || format('only about %s distinct values for %s shards', d_est, shards);
        ELSE
            score := score + 10 * least(1, log(d_est) / log(shards * 100.0));
            reasons := reasons || format('about %s distinct values (estimated from %s in the sample)', d_est, st.d);
        END IF;
        -- Node balance after isolating heavy tenants, from the sample's hashes (Citus's own hash).
        balance := NULL;
        iso := ARRAY[]::text[];
        IF citus AND col.typ = ANY (ARRAY['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar', 'date', 'timestamp', 'timestamptz', 'bool']) THEN
            IF colo IS NULL AND d_est >= shards * 4 THEN
                EXECUTE format($q$SELECT coalesce(array_agg(v ORDER BY k DESC), '{}') FROM (
                    SELECT %1$I::text AS v, count(*) AS k FROM adaptive_load_sample GROUP BY 1 HAVING count(*)::float8 / %2$s >= %3$s ORDER BY 2 DESC LIMIT 8) x$q$,
                    col.name, n, 2.0 / shards) INTO iso;
            END IF;
            EXECUTE format('SELECT array_agg(worker_hash(%1$I)) FROM adaptive_load_sample WHERE %1$I IS NOT NULL AND NOT (%1$I::text = ANY ($1))', col.name) INTO hashes USING iso;
            step := 4294967296 / shards;
            loads := array_fill(0::float8, ARRAY[shards]);
            FOREACH h IN ARRAY coalesce(hashes, '{}') LOOP
                idx := least(shards, ((h::bigint + 2147483648) / step)::int + 1);
                loads[idx] := loads[idx] + 1;
            END LOOP;
            IF array_length(iso, 1) > 0 THEN
                EXECUTE format('SELECT array_agg(k::float8) FROM (SELECT count(*) AS k FROM adaptive_load_sample WHERE %1$I::text = ANY ($1) GROUP BY %1$I) x', col.name) INTO hashes USING iso;
                loads := loads || (SELECT array_agg(x::float8) FROM unnest(hashes) x);
                reasons := reasons || format('heavy tenant(s) %s get their own shard', array_to_string(iso, ', '));
            END IF;
            balance := adaptive_load.node_balance(loads, nodes);
            score := score + 15 / greatest(balance, 1);
            reasons := reasons || format('busiest node predicted at %sx the mean node load', round(balance::numeric, 2));
        ELSE
            top_share := coalesce(st.top_share, 0);
            score := score + 15 * greatest(0, 1 - top_share * shards / 2);
        END IF;
        IF col.typ = ANY (key_types) THEN
            score := score + 15;
        ELSE
            reasons := reasons || format('type %s: amounts, times and flags make poor keys', col.display);
        END IF;
        groups := col.typ = ANY (key_types) AND NOT (st.f1 = n - st.nulls AND st.nulls = 0) AND est_rows / d_est >= 2 AND d_est >= shards * 4;
        IF NOT (st.f1 = n) AND est_rows / d_est >= 2 AND d_est >= shards * 4 THEN
            score := score + 10;
            reasons := reasons || format('about %s rows per value: rows that belong together stay in one shard', round((est_rows / d_est)::numeric, 1));
        END IF;
        any_groups := any_groups OR groups;
        IF col.name ~ '(^|_)(tenant|customer|account|org|organization|company|client|site|shop|store|user|project|workspace)_?id$' AND st.f1 <> n THEN
            score := score + 5;
            reasons := reasons || 'named like a tenant key (weak evidence)'::text;
        END IF;
        IF st.f1 = n AND colo IS NULL THEN
            score := score - 5;
            reasons := reasons || 'unique per row: balances perfectly but keeps no related rows together'::text;
        END IF;
        IF col.typ = ANY (ARRAY['int2', 'int4', 'int8', 'numeric', 'date', 'timestamp', 'timestamptz', 'text', 'varchar']) THEN
            EXECUTE format('SELECT corr(r1, r2) FROM (SELECT rank() OVER (ORDER BY %1$I) AS r1, rank() OVER (ORDER BY al_pos) AS r2 FROM adaptive_load_sample WHERE %1$I IS NOT NULL) x', col.name) INTO top_share;
            IF abs(coalesce(top_share, 0)) > 0.9 THEN
                score := score - 15;
                reasons := reasons || format('values follow row order (correlation %s): time-like, queried by ranges', round(top_share::numeric, 2));
            END IF;
        END IF;
        cands := cands || jsonb_build_object('column', col.name, 'score', round(score::numeric, 1), 'reasons', to_jsonb(reasons),
                                             'colocateWith', colo, 'isolate', to_jsonb(iso), 'groups', groups);
    END LOOP;

    SELECT c INTO best FROM jsonb_array_elements(cands) c WHERE NOT c ? 'rejected' ORDER BY (c->>'score')::float8 DESC LIMIT 1;
    IF best IS NULL OR ((est_rows <= 10000 OR (est_rows <= 100000 AND NOT any_groups)) AND best->>'colocateWith' IS NULL) THEN
        result := jsonb_build_object('kind', 'reference', 'distributionColumn', NULL, 'shardCount', NULL, 'colocateWith', NULL, 'isolate', '[]'::jsonb,
            'reasons', jsonb_build_array(format('small table (about %s rows): a reference table keeps a full copy on every node', est_rows)));
    ELSE
        result := jsonb_build_object('kind', 'distributed', 'distributionColumn', best->>'column',
            'shardCount', CASE WHEN best->>'colocateWith' IS NULL THEN shards
                               ELSE (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = (best->>'colocateWith')::regclass) END,
            'colocateWith', best->'colocateWith', 'isolate', best->'isolate',
            'reasons', jsonb_build_array(format('distribute by %s (score %s)', best->>'column', best->>'score')) || (best->'reasons'));
    END IF;
    DROP TABLE IF EXISTS pg_temp.adaptive_load_sample;
    RETURN result || jsonb_build_object('version', 1, 'table', source::text,
        'candidates', (SELECT jsonb_agg(c - 'groups' - 'isolate' - 'colocateWith' ORDER BY (c ? 'rejected'), (c->>'score')::float8 DESC) FROM jsonb_array_elements(cands) c),
        'sample', jsonb_build_object('rows', n, 'percent', pct, 'seconds', extract(epoch FROM clock_timestamp() - started)));
END $$;
COMMENT ON FUNCTION adaptive_load.analyze_table(regclass, float8) IS
  'Samples the table (TABLESAMPLE BERNOULLI ... REPEATABLE) and returns a sharding profile: kind, distributionColumn, shardCount, colocateWith, isolate, ranked candidates with reasons.';

CREATE PROCEDURE adaptive_load.distribute_table(source regclass, target text)
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb := adaptive_load.analyze_table(source);
    v text;
BEGIN
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)', target, source);
    IF p->>'kind' = 'reference' THEN
        PERFORM create_reference_table(target::regclass);
    ELSIF p->>'colocateWith' IS NOT NULL THEN
        PERFORM create_distributed_table(target::regclass, p->>'distributionColumn', colocate_with => p->>'colocateWith');
    ELSE
        PERFORM create_distributed_table(target::regclass, p->>'distributionColumn', shard_count => (p->>'shardCount')::int, colocate_with => 'none');
    END IF;
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', target, source);
    INSERT INTO adaptive_load.profiles (table_name, applied, statements, profile)
    VALUES (target, true, ARRAY[format('distribute_table(%s, %s)', source, target)], p);
    -- Tenant isolation moves data between shards and cannot run in this transaction: say how.
    FOR v IN SELECT jsonb_array_elements_text(p->'isolate') LOOP
        RAISE NOTICE 'isolate heavy tenant % after commit: SELECT isolate_tenant_to_new_shard(%, %, ''CASCADE'', shard_transfer_mode => ''block_writes'');',
            v, quote_literal(target), quote_literal(v);
    END LOOP;
END $$;
COMMENT ON PROCEDURE adaptive_load.distribute_table(regclass, text) IS
  'Creates `target` distributed as analyze_table(source) decides and moves the rows of `source` into it, in one transaction.';

-- Down Migration
DROP PROCEDURE adaptive_load.distribute_table(regclass, text);
DROP FUNCTION adaptive_load.analyze_table(regclass, float8);
DROP FUNCTION adaptive_load.node_balance(float8[], int);
DROP FUNCTION adaptive_load.estimate_distinct(bigint, bigint, bigint, bigint, float8);
