/**
 * The schema job of a load --schema (adaptive_load.schema_jobs and schema_job_tables): one row a
 * DBA can watch for the whole schema, grouping the per-table load jobs. Each table's load stays
 * its own atomic distributed commit; the schema job is committed when every table is done and
 * verified. A run that failed, or whose process died, leaves the job unfinished; the next run of
 * the same schema continues it.
 */
import type { Queryable } from '../connect/queryable.js';

export type SchemaTableStatus = 'pending' | 'loaded' | 'resumed' | 'already-loaded' | 'no-source' | 'failed' | 'not-reached';

export const DONE_STATUSES: readonly SchemaTableStatus[] = ['loaded', 'resumed', 'already-loaded', 'no-source'];

export interface SchemaJob {
  readonly schemaJobId: number;
  readonly runs: number;
  /** true when this run continues a job an earlier run left unfinished. */
  readonly continued: boolean;
  /** The tables the earlier runs of this job finished (empty for a new job). */
  readonly doneBefore: ReadonlySet<string>;
}

/**
 * The newest unfinished schema job of the schema, taken over by this run (runs + 1), or a new
 * one. The caller holds the schema's advisory lock, so a 'running' job found here belongs to a
 * process that died.
 */
export async function beginSchemaJob(db: Queryable, schema: string): Promise<SchemaJob> {
  const open = await db.query<{ id: string; runs: number }>(
    `UPDATE adaptive_load.schema_jobs SET status = 'running', runs = runs + 1, finished_at = NULL, error = NULL
      WHERE schema_job_id = (SELECT max(schema_job_id) FROM adaptive_load.schema_jobs WHERE schema_name = $1 AND status <> 'committed')
     RETURNING schema_job_id::text AS id, runs`, [schema]);
  if (open.rows[0]) {
    const id = Number(open.rows[0].id);
    const done = await db.query<{ table_name: string }>(
      'SELECT table_name FROM adaptive_load.schema_job_tables WHERE schema_job_id = $1 AND status = ANY ($2)', [id, DONE_STATUSES]);
    return { schemaJobId: id, runs: open.rows[0].runs, continued: true, doneBefore: new Set(done.rows.map((r) => r.table_name)) };
  }
  const created = await db.query<{ id: string }>(
    'INSERT INTO adaptive_load.schema_jobs (schema_name) VALUES ($1) RETURNING schema_job_id::text AS id', [schema]);
  return { schemaJobId: Number(created.rows[0]!.id), runs: 1, continued: false, doneBefore: new Set() };
}

/** Every table of the job in load order; a table the job knows already keeps its state. */
export async function recordSchemaTables(db: Queryable, schemaJobId: number, tables: readonly { table: string; source: string | null }[]): Promise<void> {
  await db.query(
    `INSERT INTO adaptive_load.schema_job_tables (schema_job_id, table_name, ord, source)
     SELECT $1, t, o::int, s FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(t, s, o)
     ON CONFLICT (schema_job_id, table_name) DO UPDATE SET ord = EXCLUDED.ord, source = EXCLUDED.source`,
    [schemaJobId, tables.map((t) => t.table), tables.map((t) => t.source)]);
}

/**
 * The rows the table held when this schema job first loaded it (recorded now on the first
 * attempt): the base a resumed table's final count is checked against.
 */
export async function tableRowsBefore(db: Queryable, schemaJobId: number, table: string, now: number): Promise<number> {
  const r = await db.query<{ n: string }>(
    `UPDATE adaptive_load.schema_job_tables SET rows_before = coalesce(rows_before, $3)
      WHERE schema_job_id = $1 AND table_name = $2 RETURNING rows_before::text AS n`, [schemaJobId, table, now]);
  return Number(r.rows[0]?.n ?? now);
}

export async function recordSchemaTable(db: Queryable, schemaJobId: number, table: string,
  outcome: { status: SchemaTableStatus; jobId: number | null; rows: number; error?: string }): Promise<void> {
  await db.query(
    // A table an earlier run of this job loaded is 'already-loaded' now: keep the run that loaded it.
    `UPDATE adaptive_load.schema_job_tables
        SET status = CASE WHEN status IN ('loaded', 'resumed') AND $3 = 'already-loaded' THEN status ELSE $3 END,
            load_job_id = coalesce($4, load_job_id),
            rows_loaded = CASE WHEN status IN ('loaded', 'resumed') AND $3 = 'already-loaded' THEN rows_loaded ELSE $5 END,
            error = $6, updated_at = now()
      WHERE schema_job_id = $1 AND table_name = $2`,
    [schemaJobId, table, outcome.status, outcome.jobId, outcome.rows, outcome.error ?? null]);
}

export async function finishSchemaJob(db: Queryable, schemaJobId: number, error: string | undefined): Promise<void> {
  await db.query(
    'UPDATE adaptive_load.schema_jobs SET status = $2, finished_at = now(), error = $3 WHERE schema_job_id = $1',
    [schemaJobId, error === undefined ? 'committed' : 'failed', error ?? null]);
}
