-- Up Migration
-- analyze_table planned `SELECT count(*) FROM pg_dist_shard ...` as part of the expression that
-- builds a distributed result, even in the branch that runs only with Citus, so on plain
-- PostgreSQL it failed for every table it would distribute. The count now happens in a function
-- that reaches pg_dist_shard through dynamic SQL, planned only when called (only on Citus).
-- The rest of analyze_table is unchanged: its installed definition (pinned search_path
-- included) is patched in place, and the patch refuses to apply to a body it does not expect.
CREATE FUNCTION adaptive_load.colocated_shard_count(colocate_with text) RETURNS int
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    EXECUTE 'SELECT count(*)::int FROM pg_catalog.pg_dist_shard WHERE logicalrelid = $1::regclass' INTO n USING colocate_with;
    RETURN n;
END $$;

DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8)'::regprocedure);
    old_expr text := $e$ELSE (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = (best->>'colocateWith')::regclass) END$e$;
    new_expr text := $e$ELSE adaptive_load.colocated_shard_count(best->>'colocateWith') END$e$;
BEGIN
    IF position(old_expr IN def) = 0 THEN
        RAISE EXCEPTION 'adaptive_load.analyze_table is not the definition this migration patches';
    END IF;
    EXECUTE replace(def, old_expr, new_expr);
END $$;

-- Down Migration
DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8)'::regprocedure);
BEGIN
    EXECUTE replace(def, $e$ELSE adaptive_load.colocated_shard_count(best->>'colocateWith') END$e$,
                    $e$ELSE (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = (best->>'colocateWith')::regclass) END$e$);
END $$;
DROP FUNCTION adaptive_load.colocated_shard_count(text);
