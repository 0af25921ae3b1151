-- Up Migration
-- Requests from SQL made safe to offer: who asked is the session that called, not a value the
-- inserter chooses; callers go through the request functions (SECURITY DEFINER), never write the
-- table; a claimed request records which daemon backend runs it, so a request whose daemon died
-- can be told apart and failed; every routine of the schema resolves names in pg_catalog only,
-- so no object a caller creates in another schema can stand in for a built-in.
SET LOCAL citus.enable_ddl_propagation TO off;

ALTER TABLE adaptive_load.requests
    ADD COLUMN claimed_by text,
    ADD COLUMN claimed_backend_pid integer;
ALTER TABLE adaptive_load.requests ALTER COLUMN requested_by SET DEFAULT session_user;
COMMENT ON COLUMN adaptive_load.requests.requested_by IS 'The session user that called request_load/request_rebalance; set by a trigger, whatever the INSERT said.';
COMMENT ON COLUMN adaptive_load.requests.claimed_by IS 'The daemon (host and process id) that claimed the request.';
COMMENT ON COLUMN adaptive_load.requests.claimed_backend_pid IS 'The coordinator backend of the claiming daemon; it holds an advisory lock for the request while it runs.';

-- Whatever an INSERT says, the row starts pending and names the session that made it.
CREATE FUNCTION adaptive_load.stamp_request() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.requested_by := session_user;
    NEW.requested_at := now();
    NEW.status := 'pending';
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    NEW.outcome := NULL;
    NEW.error := NULL;
    NEW.claimed_by := NULL;
    NEW.claimed_backend_pid := NULL;
    RETURN NEW;
END $$;
CREATE TRIGGER requests_stamp BEFORE INSERT ON adaptive_load.requests
    FOR EACH ROW EXECUTE FUNCTION adaptive_load.stamp_request();

-- SECURITY DEFINER: callers need USAGE on the schema, not INSERT on the table. session_user,
-- not current_user (which is the owner here), names the caller.
CREATE OR REPLACE FUNCTION adaptive_load.request_load(table_name text, source text, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, source, options, requested_by)
    VALUES ('load', $1, $2, coalesce($3, '{}'::jsonb), session_user) RETURNING request_id
$$;
COMMENT ON FUNCTION adaptive_load.request_load(text, text, jsonb) IS
  'Asks the daemon to load file `source` (a path on the daemon''s machine, under a directory it was started with --allow-dir) into `table_name`, which the caller must be allowed to INSERT into; options as the CLI''s (format, delimiter, quote, escape, null, encoding, header, columns, maxErrors, distributionColumn, shardCount...), checked by the daemon. Returns the request id.';

CREATE OR REPLACE FUNCTION adaptive_load.request_rebalance(table_name text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, options, requested_by)
    VALUES ('rebalance', $1, jsonb_build_object('dryRun', coalesce($2, false)), session_user) RETURNING request_id
$$;

-- Callers go through the functions: nobody but the owner writes the table directly.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON adaptive_load.requests FROM PUBLIC;
REVOKE ALL ON SEQUENCE adaptive_load.requests_request_id_seq FROM PUBLIC;
DO $$
DECLARE
    g regrole;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'adaptive_load.requests'::regclass AND a.grantee <> c.relowner AND a.grantee <> 0
                AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON adaptive_load.requests FROM %s', g);
    END LOOP;
END $$;

-- The target name is parsed as an identifier and re-quoted: never spliced in as SQL text. An
-- unqualified target is created in the source's schema (names no longer resolve in the caller's
-- search_path, see below).
CREATE OR REPLACE PROCEDURE adaptive_load.distribute_table(source regclass, target text)
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb := adaptive_load.analyze_table(source);
    parts text[] := parse_ident(target);
    qtarget text;
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
END $$;

COMMENT ON PROCEDURE adaptive_load.distribute_table(regclass, text) IS
  'Creates `target` (a table name, optionally schema-qualified; unqualified: in the schema of `source`) distributed as analyze_table(source) decides and moves the rows of `source` into it, in one transaction.';

-- Every routine of the schema, those above and those of earlier migrations: names resolve in
-- pg_catalog (then pg_temp, for analyze_table's sample), never in a schema a caller controls.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'adaptive_load'::regnamespace LOOP
        EXECUTE format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END $$;

-- Down Migration
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'adaptive_load'::regnamespace LOOP
        EXECUTE format('ALTER ROUTINE %s RESET search_path', f);
    END LOOP;
END $$;
CREATE OR REPLACE FUNCTION adaptive_load.request_rebalance(table_name text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bigint LANGUAGE sql SECURITY INVOKER AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, options) VALUES ('rebalance', $1, jsonb_build_object('dryRun', $2)) RETURNING request_id
$$;
CREATE OR REPLACE FUNCTION adaptive_load.request_load(table_name text, source text, options jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql SECURITY INVOKER AS $$
    INSERT INTO adaptive_load.requests (kind, table_name, source, options) VALUES ('load', $1, $2, $3) RETURNING request_id
$$;
DROP TRIGGER requests_stamp ON adaptive_load.requests;
DROP FUNCTION adaptive_load.stamp_request();
ALTER TABLE adaptive_load.requests ALTER COLUMN requested_by SET DEFAULT current_user;
ALTER TABLE adaptive_load.requests DROP COLUMN claimed_backend_pid, DROP COLUMN claimed_by;
