-- Up Migration
-- analyze_table(t, 0) sampled nothing (TABLESAMPLE BERNOULLI (0)) and answered "reference" for
-- any table, and a negative or NaN sample_percent failed deep inside with TABLESAMPLE's words.
-- A sample_percent outside (0, 100] is now refused first, naming the argument. As in
-- 1732800000000, the installed definition (pinned search_path included) is patched in place,
-- and the patch refuses to apply to a body it does not expect.
DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8)'::regprocedure);
    old_head text := $e$BEGIN
    SELECT greatest(reltuples, 0) INTO est_rows FROM pg_class WHERE oid = source;$e$;
    new_head text := $e$BEGIN
    -- NOT (... AND ...) also refuses NaN, which compares greater than every number.
    IF sample_percent IS NOT NULL AND NOT (sample_percent > 0 AND sample_percent <= 100) THEN
        RAISE EXCEPTION 'sample_percent must be greater than 0 and at most 100 (or NULL for a 20,000-row sample), got %', sample_percent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT greatest(reltuples, 0) INTO est_rows FROM pg_class WHERE oid = source;$e$;
BEGIN
    IF position(old_head IN def) = 0 OR position(old_head IN substr(def, position(old_head IN def) + 1)) > 0 THEN
        RAISE EXCEPTION 'adaptive_load.analyze_table is not the definition this migration patches';
    END IF;
    EXECUTE replace(def, old_head, new_head);
END $$;

-- Down Migration
DO $$
DECLARE
    def text := pg_get_functiondef('adaptive_load.analyze_table(regclass, float8)'::regprocedure);
BEGIN
    EXECUTE replace(def, $e$    -- NOT (... AND ...) also refuses NaN, which compares greater than every number.
    IF sample_percent IS NOT NULL AND NOT (sample_percent > 0 AND sample_percent <= 100) THEN
        RAISE EXCEPTION 'sample_percent must be greater than 0 and at most 100 (or NULL for a 20,000-row sample), got %', sample_percent
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
$e$, '');
END $$;
