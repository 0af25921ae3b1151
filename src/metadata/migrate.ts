import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { runner } from 'node-pg-migrate';

export const METADATA_SCHEMA = 'adaptive_load';

/** The migrations shipped with the package (../../../migrations from dist/src/metadata). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/**
 * Applies pending migrations of the adaptive_load schema with node-pg-migrate (which takes an
 * advisory lock, so concurrent first runs do not race). Returns the names applied.
 */
export async function migrate(client: pg.Client, log: (msg: string) => void = () => {}): Promise<string[]> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${METADATA_SCHEMA}`);
  // node-pg-migrate sets search_path on the session it is given; the caller's must survive.
  const searchPath = (await client.query<{ p: string }>("SELECT current_setting('search_path') AS p")).rows[0]!.p;
  try {
    return await runMigrations(client, log);
  } finally {
    await client.query("SELECT set_config('search_path', $1, false)", [searchPath]);
  }
}

async function runMigrations(client: pg.Client, log: (msg: string) => void): Promise<string[]> {
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
