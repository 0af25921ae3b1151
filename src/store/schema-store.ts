/**
 * What a schema load keeps between runs: the foreign keys it dropped to change a table's layout
 * and has not re-created yet (recorded before the drop, forgotten after the re-creation, so a
 * run that fails in between re-creates them next time), and which source files earlier loads
 * committed into which table (so a re-run loads each file once).
 */
import type { Queryable } from '../connect/queryable.js';

export interface PendingKey {
  readonly table: string;
  readonly name: string;
  readonly columns: string[];
  readonly refTable: string;
  readonly refColumns: string[];
  readonly definition: string;
}

export async function recordDroppedKey(db: Queryable, schema: string, key: PendingKey): Promise<void> {
  await db.query(
    `INSERT INTO adaptive_load.schema_pending_keys (table_name, constraint_name, schema_name, columns, ref_table, ref_columns, definition)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (table_name, constraint_name) DO UPDATE SET definition = EXCLUDED.definition, dropped_at = now()`,
    [key.table, key.name, schema, key.columns, key.refTable, key.refColumns, key.definition]);
}

export async function forgetDroppedKey(db: Queryable, table: string, name: string): Promise<void> {
  await db.query('DELETE FROM adaptive_load.schema_pending_keys WHERE table_name = $1 AND constraint_name = $2', [table, name]);
}

export async function pendingKeys(db: Queryable, schema: string): Promise<PendingKey[]> {
  const r = await db.query<{ table_name: string; constraint_name: string; columns: string[]; ref_table: string; ref_columns: string[]; definition: string }>(
    `SELECT table_name, constraint_name, columns, ref_table, ref_columns, definition
       FROM adaptive_load.schema_pending_keys WHERE schema_name = $1 ORDER BY table_name, constraint_name`, [schema]);
  return r.rows.map((k) => ({ table: k.table_name, name: k.constraint_name, columns: k.columns, refTable: k.ref_table, refColumns: k.ref_columns, definition: k.definition }));
}

/**
 * The last committed load into the table (`schema.name`, as load jobs record it) of a source
 * named any of `sources` (the ways a file's name is recorded), if any, with the file's
 * fingerprint then (null for a job recorded before fingerprints were kept).
 */
export async function committedLoad(db: Queryable, table: string, sources: readonly string[])
  : Promise<{ jobId: number; rows: number; fingerprint: unknown } | undefined> {
  const r = await db.query<{ job_id: string; rows_loaded: string | null; source_fingerprint: unknown }>(
    `SELECT job_id::text, rows_loaded::text, source_fingerprint FROM adaptive_load.load_jobs
      WHERE table_name = $1 AND source = ANY ($2::text[]) AND status = 'committed' ORDER BY job_id DESC LIMIT 1`, [table, [...sources]]);
  const row = r.rows[0];
  return row ? { jobId: Number(row.job_id), rows: Number(row.rows_loaded ?? 0), fingerprint: row.source_fingerprint } : undefined;
}
