import type { Queryable } from '../connect/queryable.js';
import { quoteLiteral } from '../connect/sql.js';

/**
 * Where a server setting's current value comes from, and the SQL that puts it back after an
 * ALTER SYSTEM SET. pg_settings.source says 'configuration file' for postgresql.conf and for
 * postgresql.auto.conf (ALTER SYSTEM) alike, so the origin is read from pg_file_settings: the
 * last entry for the name in postgresql.auto.conf is what ALTER SYSTEM wrote, and the undo
 * writes exactly that back; with no entry there, the undo is ALTER SYSTEM RESET, which leaves
 * postgresql.conf (or the default) in force again. Values from the command line, a role or a
 * database outrank postgresql.auto.conf: ALTER SYSTEM would not change them.
 */
export interface SettingOrigin {
  /** For people: "ALTER SYSTEM (postgresql.auto.conf)", "postgresql.conf", "the default", ... */
  readonly label: string;
  /** What postgresql.auto.conf holds for it now (undefined: no entry). */
  readonly autoConfValue: string | undefined;
  /** Whether a value written by ALTER SYSTEM takes effect over the current source. */
  readonly alterSystemWins: boolean;
  /** Restores postgresql.auto.conf as it is now (then pg_reload_conf()). */
  readonly undoSql: string;
}

/** Sources postgresql.auto.conf outranks (PostgreSQL's GucSource order). */
const BELOW_ALTER_SYSTEM = new Set(['default', 'environment variable', 'configuration file']);

const SETTING_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/** Needs superuser (pg_file_settings); ALTER SYSTEM needs it anyway. */
export async function readSettingOrigins(db: Queryable, names: readonly string[]): Promise<Map<string, SettingOrigin>> {
  for (const n of names) if (!SETTING_NAME.test(n)) throw new Error(`not a setting name: ${JSON.stringify(n)}`);
  const r = await db.query<{ name: string; source: string; sourcefile: string | null; auto_value: string | null }>(
    `SELECT s.name, s.source, s.sourcefile,
            (SELECT f.setting FROM pg_file_settings f
              WHERE f.name = s.name AND f.sourcefile ~ '(^|/)postgresql\\.auto\\.conf$'
              ORDER BY f.seqno DESC LIMIT 1) AS auto_value
       FROM pg_settings s WHERE s.name = ANY($1::text[])`, [names]);
  const out = new Map<string, SettingOrigin>();
  for (const row of r.rows) {
    const auto = row.auto_value ?? undefined;
    const file = row.sourcefile?.split('/').pop();
    const label = auto !== undefined ? `ALTER SYSTEM (postgresql.auto.conf: ${auto})`
      : row.source === 'configuration file' ? (file ?? 'a configuration file')
        : row.source === 'default' ? 'the default' : row.source;
    out.set(row.name, {
      label,
      autoConfValue: auto,
      alterSystemWins: BELOW_ALTER_SYSTEM.has(row.source),
      undoSql: auto !== undefined ? `ALTER SYSTEM SET ${row.name} = ${quoteLiteral(auto)}` : `ALTER SYSTEM RESET ${row.name}`,
    });
  }
  for (const n of names) if (!out.has(n)) throw new Error(`the server has no setting ${n}`);
  return out;
}
