import pg from 'pg';
import { toDatabaseError } from '../errors.js';
import type { ConnectionConfig, Timeouts } from './config.js';

/** Grace a client-side deadline gives the server's own timeout to arrive first, with its message. */
export const DEADLINE_GRACE_MS = 3000;

/**
 * Connects to the coordinator; a failure names where it tried (never the password). With
 * `bounded`, every statement on the connection is bounded on the server (statement_timeout,
 * lock_timeout) and on the client (query_timeout), as a load's coordinator session must be.
 */
export async function connectCoordinator(conn: ConnectionConfig, applicationName = 'citus-adaptive-load',
  bounded?: Timeouts): Promise<pg.Client> {
  const client = new pg.Client({
    ...conn.coordinator,
    application_name: applicationName,
    ...(bounded ? {
      statement_timeout: bounded.statementMs,
      lock_timeout: bounded.lockMs,
      query_timeout: bounded.statementMs + DEADLINE_GRACE_MS,
    } : {}),
  });
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
