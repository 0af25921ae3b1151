-- Up Migration
-- A table as the source of a load. request_load_from_table asks the daemon to load a table into
-- another (the daemon checks that the requester may read it, and empty or drop it if asked);
-- distribute_table hands its move to that path when a daemon takes requests (its request
-- listener holds a shared advisory lock, key 'CAQ' << 40, see src/store/advisory-keys.ts) and
-- otherwise keeps its INSERT ... SELECT; either way it says which path it took, in a NOTICE
-- and in its INOUT result.
SET LOCAL citus.enable_ddl_propagation TO off;

CREATE OR REPLACE FUNCTION adaptive_load.request_load_from_table(table_name text, source_table text,
    then_action text DEFAULT 'keep', options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, source, options, requested_by)
    VALUES ('load', $1, NULL, coalesce($4, '{}'::jsonb) || jsonb_build_object('fromTable', $2, 'then', coalesce($3, 'keep')), session_user)
    RETURNING request_id
$$;
COMMENT ON FUNCTION adaptive_load.request_load_from_table(text, text, text, jsonb) IS
  'Asks the daemon to load the rows of table `source_table` into `table_name`, straight into the shards, then keep, truncate or drop `source_table` (then_action) in the same transaction as the load''s commit. The caller must be allowed to SELECT from the source (TRUNCATE it for truncate, own it for drop) and INSERT into the target. Same as request_load(table_name, NULL, options || {"fromTable": ..., "then": ...}). Returns the request id.';

DROP PROCEDURE adaptive_load.distribute_table(regclass, text);
CREATE PROCEDURE adaptive_load.distribute_table(source regclass, target text, INOUT path text DEFAULT NULL, INOUT request_id bigint DEFAULT NULL)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p jsonb;
    parts text[] := parse_ident(target);
    qtarget text;
    qsource text := (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source);
    v text;
BEGIN
    IF cardinality(parts) NOT IN (1, 2) THEN
        RAISE EXCEPTION 'distribute_table: target % is not a table name or schema.table', quote_literal(target);
    END IF;
    -- The routine's search_path is pinned, so an unqualified target goes beside the source.
    IF cardinality(parts) = 1 THEN
        parts := ARRAY[(SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source), parts[1]];
    END IF;
    qtarget := (SELECT string_agg(quote_ident(x), '.' ORDER BY o) FROM unnest(parts) WITH ORDINALITY u(x, o));
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)', qtarget, source);
    IF EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND ((l.classid::bigint << 32) | l.objid::bigint) = (4407633::bigint << 40)) THEN
        -- A daemon takes requests: it samples the source, plans the layout (splits, isolated
        -- tenants, placement), distributes the empty target and loads it straight into the shards.
        request_id := adaptive_load.request_load_from_table(qtarget, qsource, 'keep', '{}');
        path := 'daemon';
        RAISE NOTICE 'distribute_table: a daemon takes requests: created % and handed the move to it as request % (direct shard loading, planned from a TABLESAMPLE of %); it runs once this transaction commits, see adaptive_load.requests',
            qtarget, request_id, qsource;
        RETURN;
    END IF;
    p := adaptive_load.analyze_table(source);
    IF p->>'kind' = 'reference' THEN
        PERFORM create_reference_table(qtarget::regclass);
    ELSIF p->>'colocateWith' IS NOT NULL THEN
        PERFORM create_distributed_table(qtarget::regclass, p->>'distributionColumn', colocate_with => p->>'colocateWith');
    ELSE
        PERFORM create_distributed_table(qtarget::regclass, p->>'distributionColumn', shard_count => (p->>'shardCount')::int, colocate_with => 'none');
    END IF;
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', qtarget, source);
    INSERT INTO adaptive_load.profiles (table_name, applied, statements, profile)
    VALUES (target, true, ARRAY[format('distribute_table(%s, %s)', source, quote_literal(target))], p);
    -- Tenant isolation moves data between shards and cannot run in this transaction: say how.
    FOR v IN SELECT jsonb_array_elements_text(p->'isolate') LOOP
        RAISE NOTICE 'isolate heavy tenant % after commit: SELECT isolate_tenant_to_new_shard(%, %, ''CASCADE'', shard_transfer_mode => ''block_writes'');',
            v, quote_literal(qtarget), quote_literal(v);
    END LOOP;
    path := 'insert-select';
    RAISE NOTICE 'distribute_table: no daemon takes requests: moved the rows of % into % with INSERT ... SELECT through the coordinator', qsource, qtarget;
END $$;
COMMENT ON PROCEDURE adaptive_load.distribute_table(regclass, text, text, bigint) IS
  'Creates `target` (a table name, optionally schema-qualified; unqualified: in the schema of `source`) like `source` and moves the rows of `source` into it. When a daemon takes requests, the move is handed to it (path => ''daemon'', request_id => the request; it runs after this transaction commits, loading straight into the shards by a planned layout); otherwise analyze_table(source) decides the layout and one INSERT ... SELECT moves the rows in this transaction (path => ''insert-select'').';

-- Down Migration
DROP PROCEDURE adaptive_load.distribute_table(regclass, text, text, bigint);
CREATE PROCEDURE adaptive_load.distribute_table(source regclass, target text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p jsonb := adaptive_load.analyze_table(source);
    parts text[] := parse_ident(target);
    qtarget text;
    v text;
BEGIN
    IF cardinality(parts) NOT IN (1, 2) THEN
        RAISE EXCEPTION 'distribute_table: target % is not a table name or schema.table', quote_literal(target);
    END IF;
    IF cardinality(parts) = 1 THEN
        parts := ARRAY[(SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source), parts[1]];
    END IF;
    qtarget := (SELECT string_agg(quote_ident(x), '.' ORDER BY o) FROM unnest(parts) WITH ORDINALITY u(x, o));
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)', qtarget, source);
    IF p->>'kind' = 'reference' THEN
        PERFORM create_reference_table(qtarget::regclass);
    ELSIF p->>'colocateWith' IS NOT NULL THEN
        PERFORM create_distributed_table(qtarget::regclass, p->>'distributionColumn', colocate_with => p->>'colocateWith');
    ELSE
        PERFORM create_distributed_table(qtarget::regclass, p->>'distributionColumn', shard_count => (p->>'shardCount')::int, colocate_with => 'none');
    END IF;
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', qtarget, source);
    INSERT INTO adaptive_load.profiles (table_name, applied, statements, profile)
    VALUES (target, true, ARRAY[format('distribute_table(%s, %s)', source, quote_literal(target))], p);
    FOR v IN SELECT jsonb_array_elements_text(p->'isolate') LOOP
        RAISE NOTICE 'isolate heavy tenant % after commit: SELECT isolate_tenant_to_new_shard(%, %, ''CASCADE'', shard_transfer_mode => ''block_writes'');',
            v, quote_literal(qtarget), quote_literal(v);
    END LOOP;
END $$;
DROP FUNCTION adaptive_load.request_load_from_table(text, text, text, jsonb);
