import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { InvalidConfigurationError } from '../errors.js';

export const METADATA_SCHEMA = 'adaptive_load';

/** The migrations shipped with the package (../../../migrations from dist/src/metadata). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/**
 * Applies pending migrations of the adaptive_load schema with node-pg-migrate (which takes an
 * advisory lock, so concurrent first runs do not race). Returns the names applied.
 */
export async function migrate(client: pg.Client, log: (msg: string) => void = () => {}): Promise<string[]> {
  await checkSchemaOwner(client);
  if (await isUpToDate(client)) return [];
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${METADATA_SCHEMA}`);
  // node-pg-migrate sets search_path on the session it is given; the caller's must survive.
  const searchPath = (await client.query<{ p: string }>("SELECT current_setting('search_path') AS p")).rows[0]!.p;
  try {
    return await runMigrations(client, log);
  } finally {
    await client.query("SELECT set_config('search_path', $1, false)", [searchPath]);
  }
}

/**
 * The schema's routines run with its owner's rights (request_load is SECURITY DEFINER) and the
 * tool trusts what its tables say (requests, commit records). A schema someone else created
 * first, owned by a role that is neither the connecting role, one of its roles, nor a superuser,
 * could hold objects that role planted: refuse it rather than read or extend it.
 */
async function checkSchemaOwner(client: pg.Client): Promise<void> {
  const r = await client.query<{ owner: string; me: string; trusted: boolean }>(
    `SELECT n.nspowner::regrole::text AS owner, current_user::text AS me,
            o.rolname = current_user OR o.rolsuper
              -- pg_has_role is true for a superuser whoever the owner is: only real membership counts.
              OR (NOT me.rolsuper AND pg_has_role(current_user, n.nspowner, 'MEMBER')) AS trusted
       FROM pg_namespace n JOIN pg_roles o ON o.oid = n.nspowner JOIN pg_roles me ON me.rolname = current_user
      WHERE n.nspname = $1`, [METADATA_SCHEMA]);
  const row = r.rows[0];
  if (!row || row.trusted) return;
  throw new InvalidConfigurationError(`schema ${METADATA_SCHEMA} is owned by ${row.owner}, which is neither ${row.me}, a role ${row.me} `
    + `belongs to, nor a superuser; its functions and tables cannot be trusted. If ${row.owner} is meant to own it, connect as `
    + `${row.owner} (or a member of it); otherwise a superuser can inspect it and DROP SCHEMA ${METADATA_SCHEMA} CASCADE or `
    + `ALTER SCHEMA ${METADATA_SCHEMA} OWNER TO ${row.me}.`);
}

/** The migration files shipped with this version, by the name node-pg-migrate records. */
function shippedMigrations(): string[] {
  return readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
}

/**
 * One query answers the common case (every shipped migration already applied), so a load does
 * not pay for loading the migration runner.
 */
async function isUpToDate(client: pg.Client): Promise<boolean> {
  const table = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${METADATA_SCHEMA}.schema_migrations`]);
  if (!table.rows[0]?.t) return false;
  const applied = await client.query<{ name: string }>(`SELECT name FROM ${METADATA_SCHEMA}.schema_migrations`);
  const done = new Set(applied.rows.map((r) => r.name));
  return shippedMigrations().every((m) => done.has(m));
}

async function runMigrations(client: pg.Client, log: (msg: string) => void): Promise<string[]> {
  const { runner } = await import('node-pg-migrate');
  const applied = await runner({
    dbClient: client,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'schema_migrations',
    migrationsSchema: METADATA_SCHEMA,
    schema: METADATA_SCHEMA,
    createSchema: false,
    count: Infinity,
    checkOrder: true,
    singleTransaction: true,
    log,
    logger: { debug: () => {}, info: log, warn: log, error: log },
  });
  return applied.map((m) => m.name);
}
