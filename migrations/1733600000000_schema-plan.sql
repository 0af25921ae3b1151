-- Up Migration
-- Moving a whole application schema onto Citus (issue 14): the foreign keys a schema load dropped
-- and has yet to re-create (so a run that failed half-way re-creates them on the next run), and
-- adaptive_load.analyze_schema, the group planner's rules in PL/pgSQL. The rules mirror
-- src/plan/schema-planner.ts: colocation groups rooted at a one-column key carried down the
-- foreign keys inside the children's keys, reference tables only for small referenced tables in
-- no group, every other table distributed by its leading key column, heavy tenants isolated.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE TABLE IF NOT EXISTS adaptive_load.schema_pending_keys (
    table_name      text NOT NULL,
    constraint_name text NOT NULL,
    schema_name     text NOT NULL,
    columns         text[] NOT NULL,
    ref_table       text NOT NULL,
    ref_columns     text[] NOT NULL,
    definition      text NOT NULL,
    dropped_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, constraint_name)
);
COMMENT ON TABLE adaptive_load.schema_pending_keys IS
    'Foreign keys a schema load dropped to change a table''s layout and has not re-created yet (the next load --schema does).';

CREATE OR REPLACE FUNCTION adaptive_load.analyze_schema(name text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    citus boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus');
    default_shards int := coalesce(nullif(current_setting('citus.shard_count', true), '')::int, 32);
    nodes int := 1;
    key_types text[] := ARRAY['int2', 'int4', 'int8', 'uuid', 'text', 'varchar', 'bpchar'];
    -- src/plan/planner.ts DIMENSION_ROWS; schema-planner.ts HEAVY_TENANT_FACTOR, MAX_ISOLATED_TENANTS, ROWS_PER_SHARD.
    dimension_rows float8 := 10000;
    heavy_factor float8 := 2;
    max_isolated int := 8;
    rows_per_shard float8 := 5000000;
    r record;
    m record;
    added int;
    best regclass;
    best_n int;
    best_rows float8;
    cnt int;
    total float8;
    n_shards int;
    med float8;
    bar float8;
    iso jsonb;
    groups jsonb := '[]';
    tables jsonb := '[]';
    fkeys jsonb := '[]';
    solo_col text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = analyze_schema.name) THEN
        RAISE EXCEPTION 'schema % does not exist', analyze_schema.name USING ERRCODE = 'invalid_schema_name';
    END IF;
    IF citus THEN
        SELECT greatest(count(*), 1) INTO nodes FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND shouldhaveshards;
    END IF;
    DROP TABLE IF EXISTS pg_temp.al_tables, pg_temp.al_keys, pg_temp.al_fks, pg_temp.al_members, pg_temp.al_try, pg_temp.al_tenants;
    CREATE TEMP TABLE al_tables (rel regclass PRIMARY KEY, qname text, rows float8, pk text[], kind text, grp regclass, col text, shards int);
    CREATE TEMP TABLE al_keys (rel regclass, cols text[], is_primary boolean);
    CREATE TEMP TABLE al_fks (fk_name text, child regclass, parent regclass, cols text[], refcols text[]);
    CREATE TEMP TABLE al_members (root regclass, rel regclass, col text, ord int);
    CREATE TEMP TABLE al_try (rel regclass, col text, ord serial);
    CREATE TEMP TABLE al_tenants (v text, w float8);

    INSERT INTO al_tables (rel, qname, rows)
    SELECT c.oid, format('%I.%I', n.nspname, c.relname), greatest(c.reltuples, 0)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = analyze_schema.name AND c.relkind IN ('r', 'p') AND NOT c.relispartition;
    -- reltuples is -1 before the first ANALYZE and 0 for a table that was empty then: count instead.
    FOR r IN SELECT rel, qname FROM al_tables LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 10000000) s', r.qname) INTO cnt;
        UPDATE al_tables SET rows = cnt WHERE rel = r.rel;
    END LOOP;
    INSERT INTO al_keys
    SELECT k.conrelid, array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(x, i)
                               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.x ORDER BY u.i), k.contype = 'p'
      FROM pg_constraint k JOIN al_tables t ON t.rel = k.conrelid WHERE k.contype IN ('p', 'u');
    UPDATE al_tables t SET pk = k.cols FROM al_keys k WHERE k.rel = t.rel AND k.is_primary;
    INSERT INTO al_fks
    SELECT k.conname, k.conrelid, k.confrelid,
           array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(x, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.x ORDER BY u.i),
           array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(x, i) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.x ORDER BY u.i)
      FROM pg_constraint k JOIN al_tables c ON c.rel = k.conrelid JOIN al_tables p ON p.rel = k.confrelid WHERE k.contype = 'f';

    -- 1. Colocation groups, largest family first (ties: more rows, then name).
    LOOP
        best := NULL;
        FOR r IN SELECT t.rel, t.pk[1] AS col FROM al_tables t
                  WHERE cardinality(t.pk) = 1 AND t.kind IS NULL AND adaptive_load.base_type(t.rel, t.pk[1]) = ANY (key_types)
                  ORDER BY t.qname LOOP
            TRUNCATE al_try;
            INSERT INTO al_try (rel, col) VALUES (r.rel, r.col);
            LOOP
                INSERT INTO al_try (rel, col)
                SELECT DISTINCT ON (f.child) f.child, f.cols[array_position(f.refcols, p.col)]
                  FROM al_fks f JOIN al_try p ON p.rel = f.parent JOIN al_tables c ON c.rel = f.child
                 WHERE c.kind IS NULL AND f.child NOT IN (SELECT rel FROM al_try)
                   AND array_position(f.refcols, p.col) IS NOT NULL
                   AND adaptive_load.base_type(f.child, f.cols[array_position(f.refcols, p.col)]) = adaptive_load.base_type(p.rel, p.col)
                   AND adaptive_load.base_type(f.child, f.cols[array_position(f.refcols, p.col)]) = ANY (key_types)
                   AND NOT EXISTS (SELECT 1 FROM al_keys k WHERE k.rel = f.child AND NOT (f.cols[array_position(f.refcols, p.col)] = ANY (k.cols)))
                   AND (EXISTS (SELECT 1 FROM al_keys k WHERE k.rel = f.child) OR cardinality(f.cols) > 1
                        OR (SELECT count(*) FROM al_fks o WHERE o.child = f.child AND o.parent <> f.child) = 1)
                 ORDER BY f.child, p.ord, f.fk_name;
                GET DIAGNOSTICS added = ROW_COUNT;
                EXIT WHEN added = 0;
            END LOOP;
            SELECT count(*), sum(t.rows) INTO cnt, total FROM al_try a JOIN al_tables t USING (rel);
            IF cnt >= 2 AND (best IS NULL OR cnt > best_n OR (cnt = best_n AND total > best_rows)) THEN
                best := r.rel; best_n := cnt; best_rows := total;
                DELETE FROM al_members WHERE root IS NULL;
                INSERT INTO al_members SELECT NULL, rel, col, ord FROM al_try;
            END IF;
        END LOOP;
        EXIT WHEN best IS NULL;
        UPDATE al_members SET root = best WHERE root IS NULL;
        n_shards := CASE WHEN ceil(best_rows / rows_per_shard) <= default_shards THEN default_shards
                       ELSE (ceil(ceil(best_rows / rows_per_shard) / nodes) * nodes)::int END;
        UPDATE al_tables t SET kind = 'distributed', grp = best, col = m2.col, shards = n_shards
          FROM al_members m2 WHERE m2.root = best AND m2.rel = t.rel;
        -- Heavy tenants: each member's sampled values weighted by its rows.
        TRUNCATE al_tenants;
        FOR m IN SELECT t.qname, t.rows, a.col FROM al_members a JOIN al_tables t USING (rel) WHERE a.root = best AND t.rows > 0 LOOP
            EXECUTE format('INSERT INTO al_tenants SELECT v, $1 / count(*) OVER () FROM (SELECT %I::text AS v FROM %s WHERE random() < $2 AND %I IS NOT NULL LIMIT 20000) s',
                           m.col, m.qname, m.col)
              USING m.rows, least(1.0, 24000.0 / m.rows);
        END LOOP;
        SELECT sum(w) INTO total FROM al_tenants;
        iso := '[]';
        IF total > 0 AND (SELECT count(DISTINCT v) FROM al_tenants) >= 2 THEN
            SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY s) INTO med FROM (SELECT sum(w) / total AS s FROM al_tenants GROUP BY v) x;
            bar := greatest(heavy_factor * med, heavy_factor / n_shards);
            SELECT coalesce(jsonb_agg(jsonb_build_object('value', v, 'share', round(s::numeric, 4)) ORDER BY s DESC), '[]') INTO iso
              FROM (SELECT v, sum(w) / total AS s FROM al_tenants GROUP BY v HAVING sum(w) / total >= bar ORDER BY 2 DESC LIMIT max_isolated) x;
        END IF;
        groups := groups || jsonb_build_object(
            'root', (SELECT qname FROM al_tables WHERE rel = best),
            'column', (SELECT col FROM al_tables WHERE rel = best),
            'shardCount', n_shards, 'estimatedRows', best_rows, 'isolate', iso,
            'tables', (SELECT jsonb_agg(t.qname ORDER BY a.ord) FROM al_members a JOIN al_tables t USING (rel) WHERE a.root = best));
    END LOOP;

    -- 2. Reference tables: small referenced tables in no group.
    UPDATE al_tables t SET kind = 'reference'
     WHERE t.kind IS NULL AND t.rows <= dimension_rows AND EXISTS (SELECT 1 FROM al_fks f WHERE f.parent = t.rel AND f.child <> t.rel);

    -- 3. The rest: by the leading key column that every key includes, else the most varied hashable column.
    FOR r IN SELECT * FROM al_tables WHERE kind IS NULL ORDER BY qname LOOP
        SELECT c INTO solo_col FROM unnest(coalesce(r.pk, (SELECT cols FROM al_keys WHERE rel = r.rel ORDER BY cols LIMIT 1))) WITH ORDINALITY u(c, i)
         WHERE adaptive_load.base_type(r.rel, c) = ANY (key_types)
           AND NOT EXISTS (SELECT 1 FROM al_keys k WHERE k.rel = r.rel AND NOT (c = ANY (k.cols)))
         ORDER BY i LIMIT 1;
        IF solo_col IS NULL AND NOT EXISTS (SELECT 1 FROM al_keys WHERE rel = r.rel) THEN
            SELECT a.attname INTO solo_col FROM pg_attribute a
             WHERE a.attrelid = r.rel AND a.attnum > 0 AND NOT a.attisdropped AND adaptive_load.base_type(r.rel, a.attname) = ANY (key_types)
             ORDER BY (SELECT s.n_distinct FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename JOIN pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = s.schemaname
                        WHERE c.oid = r.rel AND s.attname = a.attname) DESC NULLS LAST, a.attnum LIMIT 1;
        END IF;
        IF solo_col IS NULL THEN
            UPDATE al_tables SET kind = 'reference' WHERE rel = r.rel;
        ELSE
            UPDATE al_tables SET kind = 'distributed', col = solo_col,
                   grp = coalesce((SELECT o.grp FROM al_tables o WHERE o.kind = 'distributed' AND o.grp = o.rel AND o.col = solo_col
                                     AND NOT EXISTS (SELECT 1 FROM al_members WHERE root = o.rel)
                                     AND format_type((SELECT atttypid FROM pg_attribute WHERE attrelid = o.rel AND attname = o.col), NULL)
                                       = format_type((SELECT atttypid FROM pg_attribute WHERE attrelid = r.rel AND attname = solo_col), NULL)
                                   ORDER BY o.qname LIMIT 1), r.rel),
                   shards = CASE WHEN ceil(r.rows / rows_per_shard) <= default_shards THEN default_shards
                                 ELSE (ceil(ceil(r.rows / rows_per_shard) / nodes) * nodes)::int END
             WHERE rel = r.rel;
        END IF;
        solo_col := NULL;
    END LOOP;

    SELECT coalesce(jsonb_agg(jsonb_build_object('table', t.qname, 'kind', t.kind, 'distributionColumn', t.col,
                    'group', (SELECT g.qname FROM al_tables g WHERE g.rel = t.grp), 'shardCount', t.shards, 'estimatedRows', t.rows)
                    ORDER BY t.kind DESC, t.qname), '[]') INTO tables FROM al_tables t;
    SELECT coalesce(jsonb_agg(jsonb_build_object('name', f.fk_name, 'table', c.qname, 'refTable', p.qname,
                    'keep', p.kind = 'reference'
                        OR (c.kind = 'distributed' AND p.kind = 'distributed' AND c.grp = p.grp
                            AND f.cols[array_position(f.refcols, p.col)] IS NOT DISTINCT FROM c.col AND array_position(f.refcols, p.col) IS NOT NULL))
                    ORDER BY c.qname, f.fk_name), '[]') INTO fkeys
      FROM al_fks f JOIN al_tables c ON c.rel = f.child JOIN al_tables p ON p.rel = f.parent;
    DROP TABLE pg_temp.al_tables, pg_temp.al_keys, pg_temp.al_fks, pg_temp.al_members, pg_temp.al_try, pg_temp.al_tenants;
    RETURN jsonb_build_object('version', 1, 'schema', analyze_schema.name, 'groups', groups, 'tables', tables, 'foreignKeys', fkeys);
END $$;
COMMENT ON FUNCTION adaptive_load.analyze_schema(text) IS
    'The layout of a whole schema as JSON: colocation groups (tenant key carried down the foreign keys), reference tables, heavy tenants, which foreign keys Citus keeps. Changes nothing.';

-- The base type name of a column (a domain's base type): what hashing and colocation go by.
CREATE OR REPLACE FUNCTION adaptive_load.base_type(rel regclass, col text) RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT bt.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
     WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped
$$;

-- Down Migration
DROP FUNCTION IF EXISTS adaptive_load.analyze_schema(text);
DROP FUNCTION IF EXISTS adaptive_load.base_type(regclass, text);
DROP TABLE IF EXISTS adaptive_load.schema_pending_keys;
