import type pg from 'pg';
import { TimeoutError } from '../errors.js';

/**
 * A client-side bound on one operation of a connection. Server-side timeouts cannot help when
 * the node (or the network) stops answering altogether; then only the client can give up. On
 * expiry the socket is destroyed, so the operation and everything queued behind it fail and the
 * server sees the connection end (rolling back an open, unprepared transaction).
 */
export async function withDeadline<T>(client: pg.Client, ms: number, what: () => string, node: string | undefined,
  op: Promise<T>, setting?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      destroyConnection(client);
      // The node is a property of the error; the CLI shows it (cli/format-error.ts).
      reject(new TimeoutError(`${what()}: no answer within ${setting ?? formatSeconds(ms)}; the node may be down or unreachable`, node));
    }, ms);
  });
  op.catch(() => { /* after expiry the operation's own failure is expected and not news */ });
  try {
    return await Promise.race([op, expired]);
  } finally {
    clearTimeout(timer);
  }
}

export function destroyConnection(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

export function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
