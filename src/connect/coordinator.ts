import pg from 'pg';
import { toDatabaseError } from '../errors.js';
import type { ConnectionConfig } from './config.js';

/** Connects to the coordinator; a failure names where it tried (never the password). */
export async function connectCoordinator(conn: ConnectionConfig, applicationName = 'citus-adaptive-load'): Promise<pg.Client> {
  const client = new pg.Client({ ...conn.coordinator, application_name: applicationName });
  client.on('error', () => { /* surfaced by the query that fails */ });
  try {
    await client.connect();
  } catch (err) {
    throw toDatabaseError(err, conn.describe(conn.coordinator), 'cannot connect to the coordinator');
  }
  return client;
}
