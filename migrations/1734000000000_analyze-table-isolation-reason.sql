-- Up Migration
-- adaptive_load.analyze_table said of every colocated table "tenants isolated with CASCADE across
-- it", whether it isolated any tenant or not: the reason now names the isolation only when there is
-- one. Patched in the installed definition as the earlier migrations do (refusing one it does not expect).
SET LOCAL citus.enable_ddl_propagation TO off;

DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8, bigint)'::regprocedure);
    old text := $e$format('placement follows %s''s colocation group (tenants isolated with CASCADE across it)', colo)$e$;
    new text := $e$format('placement follows %s''s colocation group%s', colo, CASE WHEN coalesce(array_length(iso, 1), 0) > 0
                    THEN format(' (heavy tenant(s) %s isolated with CASCADE across it)', array_to_string(iso, ', ')) ELSE '' END)$e$;
BEGIN
    IF position(old IN def) = 0 THEN
        RAISE EXCEPTION 'adaptive_load.analyze_table is not the definition this migration patches';
    END IF;
    EXECUTE replace(def, old, new);
END $$;

-- Down Migration
DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8, bigint)'::regprocedure);
BEGIN
    EXECUTE replace(def, $e$format('placement follows %s''s colocation group%s', colo, CASE WHEN coalesce(array_length(iso, 1), 0) > 0
                    THEN format(' (heavy tenant(s) %s isolated with CASCADE across it)', array_to_string(iso, ', ')) ELSE '' END)$e$,
        $e$format('placement follows %s''s colocation group (tenants isolated with CASCADE across it)', colo)$e$);
END $$;
