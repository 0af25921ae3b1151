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

/**
 * Sends Terminate and lets the connection go without waiting for the server to hang up, which
 * costs a backend's exit (milliseconds each, many connections at the end of a load). The
 * socket no longer keeps the process alive; the server sees Terminate before the socket closes.
 */
export function endWithoutWaiting(client: pg.Client): void {
  client.end().catch(() => { /* the work on it is finished either way */ });
  (client as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
}
