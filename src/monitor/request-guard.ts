import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import type pg from 'pg';
import { parseQualifiedName, quoteQualifiedName } from '../connect/qualified-name.js';
import { InputFileError, InvalidConfigurationError } from '../errors.js';
import type { LoadOptionValues } from '../pipeline/options-schema.js';

/**
 * What a request may ask of the daemon, decided before any work: which file it may read and
 * whether the requester may write the table. The daemon's OS user and database role are
 * usually more privileged than whoever calls request_load, so both are checked against the
 * requester, not the daemon.
 */

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/**
 * The real path of a request's source, which must lie under one of `allowDirs`. Checked lexically
 * first (so a refused path's existence is not revealed), then on the realpath (so neither a
 * symlink nor `..` leads out). Never `-`: the daemon's standard input is not the requester's.
 */
export function confineSource(source: string, allowDirs: readonly string[]): string {
  if (source === '-' || source.startsWith('/dev/') || source.startsWith('/proc/')) {
    throw new InvalidConfigurationError(`a request cannot read ${JSON.stringify(source)}: only regular files under the daemon's --allow-dir directories`);
  }
  if (allowDirs.length === 0) {
    throw new InvalidConfigurationError('this daemon reads no files for requests: start it with --allow-dir DIR (repeatable) '
      + 'to allow loading files under DIR');
  }
  if (!isAbsolute(source)) throw new InvalidConfigurationError(`the source must be an absolute path, got ${JSON.stringify(source)}`);
  const dirs = allowDirs.map((d) => {
    try {
      return realpathSync(d);
    } catch {
      return resolve(d);
    }
  });
  const outside = () => new InvalidConfigurationError(`${source} is outside the directories this daemon may read for requests (--allow-dir ${allowDirs.join(', ')})`);
  if (!dirs.some((d) => within(resolve(source), d) || within(resolve(source), resolve(d)))) throw outside();
  let real: string;
  try {
    real = realpathSync(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputFileError(`${source}: no such file`);
    throw new InputFileError(`${source}: ${(err as Error).message}`);
  }
  if (!dirs.some((d) => within(real, d))) throw outside();
  if (!statSync(real).isFile()) throw new InvalidConfigurationError(`${source} is not a regular file`);
  return real;
}

/**
 * The requester may load into `table` when it may INSERT into it; changing the table's layout
 * (distributing a local table, choosing a distribution column or shard count) needs what the
 * requester would need to do it by hand: ownership. Refusing is simpler to reason about than SET
 * ROLE, which would cover only the daemon's coordinator session and not the COPY connections the
 * loader opens to the workers as the daemon's role.
 */
export async function checkLoadPrivileges(db: pg.ClientBase, requestedBy: string, table: string, options: LoadOptionValues): Promise<void> {
  const r = await db.query<{ oid: number; rel: string; can_insert: boolean; owns: boolean }>(
    `SELECT c.oid, c.oid::regclass::text AS rel, has_table_privilege($2::name, c.oid, 'INSERT') AS can_insert,
            pg_has_role($2::name, c.relowner, 'USAGE') AS owns
       FROM (SELECT to_regclass($1) AS oid) t JOIN pg_catalog.pg_class c ON c.oid = t.oid`, [table, requestedBy]);
  const row = r.rows[0];
  if (!row) throw new InvalidConfigurationError(`table ${table} does not exist; a request loads only into an existing table`);
  if (!row.can_insert) throw new InvalidConfigurationError(`${requestedBy} may not INSERT into ${row.rel}; the daemon loads only for roles that may`);
  const changesLayout = options.distributionColumn !== undefined || options.shardCount !== undefined || !(await isDistributed(db, row.oid));
  if (changesLayout && !row.owns) {
    throw new InvalidConfigurationError(`${requestedBy} does not own ${row.rel}, so a request cannot distribute it or change its layout`);
  }
}

/**
 * A request that loads from a table reads it as the daemon's role, and may empty or drop it: the
 * requester must hold SELECT on it, TRUNCATE on it for `truncate`, and own it for `drop`. The
 * name is parsed as psql reads names and quoted before PostgreSQL resolves it, so no text of it
 * reaches SQL. Returns the table's name as the catalog has it (`schema.name`, unquoted, as the load names it).
 */
export async function checkStagingPrivileges(db: pg.ClientBase, requestedBy: string, fromTable: string,
  then: 'keep' | 'truncate' | 'drop'): Promise<string> {
  const quoted = quoteQualifiedName(parseQualifiedName(fromTable, 'option fromTable'));
  const r = await db.query<{ rel: string; relkind: string; can_select: boolean; can_truncate: boolean; owns: boolean }>(
    `SELECT n.nspname || '.' || c.relname AS rel, c.relkind::text AS relkind,
            has_table_privilege($2::name, c.oid, 'SELECT') AS can_select,
            has_table_privilege($2::name, c.oid, 'TRUNCATE') AS can_truncate,
            pg_has_role($2::name, c.relowner, 'USAGE') AS owns
       FROM (SELECT to_regclass($1) AS oid) t JOIN pg_catalog.pg_class c ON c.oid = t.oid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`, [quoted, requestedBy]);
  const row = r.rows[0];
  if (!row) throw new InvalidConfigurationError(`staging table ${fromTable} does not exist`);
  if (row.relkind !== 'r' && row.relkind !== 'p') throw new InvalidConfigurationError(`${row.rel} is not a table`);
  if (!row.can_select) throw new InvalidConfigurationError(`${requestedBy} may not SELECT from ${row.rel}; the daemon reads only tables the requester may`);
  if (then === 'truncate' && !row.can_truncate) {
    throw new InvalidConfigurationError(`${requestedBy} may not TRUNCATE ${row.rel}, so a request cannot empty it (--then truncate)`);
  }
  if (then === 'drop' && !row.owns) throw new InvalidConfigurationError(`${requestedBy} does not own ${row.rel}, so a request cannot drop it (--then drop)`);
  return row.rel;
}

/** On plain PostgreSQL nothing is distributed and a load changes no layout: true there. */
async function isDistributed(db: pg.ClientBase, oid: number): Promise<boolean> {
  const citus = await db.query<{ t: string | null }>("SELECT to_regclass('pg_catalog.pg_dist_partition')::text AS t");
  if (!citus.rows[0]?.t) return true;
  const d = await db.query('SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1', [oid]);
  return (d.rowCount ?? 0) > 0;
}

/** Rebalancing moves shards of every table: the requester must have the daemon's rights, or own the one table named. */
export async function checkRebalancePrivileges(db: pg.ClientBase, requestedBy: string, table: string | null): Promise<void> {
  const r = await db.query<{ ok: boolean }>(
    `SELECT pg_has_role($1::name, current_user, 'MEMBER')
            OR coalesce((SELECT pg_has_role($1::name, c.relowner, 'USAGE') FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($2)), false) AS ok`,
    [requestedBy, table]);
  if (!r.rows[0]?.ok) {
    throw new InvalidConfigurationError(`${requestedBy} may not rebalance ${table ?? 'the cluster'}: it needs to own the table or be a member of the daemon's role`);
  }
}
