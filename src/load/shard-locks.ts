import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import { readDistribution, type Distribution, type TableInfo } from '../catalog/catalog.js';
import type { ConnectionConfig } from '../connect/config.js';
import { connectCoordinator, DEADLINE_GRACE_MS, endWithoutWaiting } from '../connect/coordinator.js';
import { withDeadline } from '../connect/deadline.js';
import { qualifiedName } from '../connect/sql.js';
import { ClusterStateError, toDatabaseError } from '../errors.js';
import { tableLockKeySql } from '../store/advisory-keys.js';

/**
 * The locks a direct load holds on the coordinator, from before it reads placements until every
 * COMMIT PREPARED has returned, so no shard it writes can move, split or be isolated meanwhile.
 *
 * They are Citus's own: Citus's COPY takes ShareLock on each shard's metadata
 * (LockShardListMetadata) and RowExclusiveLock on each shard resource
 * (SerializeNonCommutativeWrites) in CitusCopyDestReceiverStartup; moves, splits and tenant
 * isolation take ExclusiveLock on the same metadata (BlockWritesToShardList), so each waits for
 * the other. The surest way to take exactly those locks, with Citus's own permission checks
 * (INSERT on the table, where lock_shard_metadata() demands ownership), is to run Citus's COPY:
 * a COPY of zero rows into the distributed table opens no worker connection, writes nothing and
 * keeps its locks until this session's transaction ends.
 *
 * Citus's COPY locks the shards of its cached metadata; a split committing just before could
 * leave a new shard unlocked. So placements are read before and after the lock and must agree
 * (under the lock they cannot change again); otherwise the lock is taken once more.
 *
 * A chunked load (--commit-every) holds them for the whole job, not per chunk: its router, its
 * WebAssembly routing tables and its sessions are built from the layout read under them, and a
 * chunk boundary would otherwise have to rebuild all of that from a re-read layout. A shard move
 * therefore waits for the job, or runs between a stopped job and its --resume, whose new process
 * takes the locks again and routes by the placements it reads under them.
 *
 * Loads into a table with a unique or exclusion constraint also take a per-table advisory lock:
 * two loads inserting the same keys in different shard orders would wait on each other on
 * different workers, a deadlock that neither PostgreSQL nor Citus's detector can see (these
 * worker transactions are not Citus's). So such loads run one at a time; the second waits at
 * most the lock timeout and then fails, naming the load that holds the table.
 */

const MAX_LOCK_ROUNDS = 5;

export interface HeldShardLocks {
  /** The table's layout, read under the locks: route by this one. */
  readonly distribution: Distribution;
  /**
   * Throws unless the session holding the locks is still there (so are its locks): a direct
   * load asks this after every PREPARE and before its commit record, and rolls back without it.
   */
  check(): Promise<void>;
  /** Ends the transaction holding the locks (bounded; never throws). */
  release(): Promise<void>;
}

export async function lockShardsForLoad(conn: ConnectionConfig, table: TableInfo, jobId: number): Promise<HeldShardLocks> {
  const { lockMs, statementMs } = conn.timeouts;
  // Waiting for a lock is this session's work: its statements may take the lock timeout and then some.
  const client = await connectCoordinator(conn, `citus-adaptive-load job ${jobId} locks`,
    { ...conn.timeouts, statementMs: lockMs + statementMs });
  const release = async () => {
    await withDeadline(client, conn.timeouts.connectMs, () => 'releasing the shard locks', 'coordinator', client.query('ROLLBACK'))
      .catch(() => { /* ending the session releases them too */ });
    endWithoutWaiting(client);
  };
  const check = async () => {
    try {
      await withDeadline(client, statementMs + DEADLINE_GRACE_MS, () => 'checking the shard locks', 'coordinator', client.query('SELECT 1'));
    } catch (err) {
      throw new ClusterStateError(`the coordinator session holding the shard locks of ${table.schema}.${table.name} ended `
        + `before the load could commit (${(err as Error).message}), so the shards may have moved meanwhile; the load was `
        + 'rolled back. Retry it', { cause: err });
    }
  };
  const name = qualifiedName(table.schema, table.name);
  try {
    // The session is idle in its transaction while the rows stream: the server's idle timeout
    // must not end it (and with it the locks) before the last COMMIT PREPARED.
    await client.query('BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0');
    if (await hasUniqueConstraint(client, table)) await lockTableForUniqueLoads(client, table, conn.timeouts.lockMs);
    let before = await readDistribution(client, table, true);
    for (let round = 0; round < MAX_LOCK_ROUNDS; round++) {
      await copyNothing(client, name, lockMs);
      const after = await readDistribution(client, table, true);
      if (layoutKey(after) === layoutKey(before)) return { distribution: after, check, release };
      before = after;
    }
    throw new ClusterStateError(`the shards of ${table.schema}.${table.name} kept changing while the load tried to lock them `
      + `(${MAX_LOCK_ROUNDS} tries); wait for the running shard moves or splits to finish and retry`);
  } catch (err) {
    await release();
    throw err;
  }
}

/** A zero-row COPY through Citus: takes Citus's COPY locks on every shard of the table. */
async function copyNothing(client: pg.Client, name: string, lockMs: number): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      const stream = client.query(pgCopyStreams.from(`COPY ${name} FROM STDIN`));
      stream.on('error', reject);
      stream.on('finish', () => resolve());
      stream.end();
    });
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') {
      throw new ClusterStateError(`waited ${lockMs / 1000} s for Citus's shard locks on ${name}: a shard move, split or tenant `
        + 'isolation holds them (see citus_rebalance_status() and citus_locks). Retry when it has finished, or raise --lock-timeout',
      { cause: err });
    }
    throw toDatabaseError(err, 'coordinator', `taking Citus's shard locks on ${name}`);
  }
}

async function hasUniqueConstraint(client: pg.Client, table: TableInfo): Promise<boolean> {
  const r = await client.query(
    `SELECT 1 FROM pg_index WHERE indrelid = $1 AND indisunique
      UNION ALL SELECT 1 FROM pg_constraint WHERE conrelid = $1 AND contype = 'x' LIMIT 1`, [table.oid]);
  return (r.rowCount ?? 0) > 0;
}

async function lockTableForUniqueLoads(client: pg.Client, table: TableInfo, lockMs: number): Promise<void> {
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${tableLockKeySql('$1')})`, [table.oid]);
  } catch (err) {
    if ((err as { code?: string }).code !== '55P03') throw toDatabaseError(err, 'coordinator');
    const holder = await client.query<{ application_name: string }>(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND ((l.classid::bigint << 32) | l.objid::bigint) = ${tableLockKeySql('$1')} LIMIT 1`, [table.oid])
      .then((r) => r.rows[0]?.application_name.replace(/ locks$/, ''), () => undefined);
    throw new ClusterStateError(`another load${holder ? ` (${holder})` : ''} is writing into ${table.schema}.${table.name}, `
      + `which has a unique key, so loads into it run one at a time: waited ${lockMs / 1000} s. Retry when it has `
      + 'finished, or raise --lock-timeout', { cause: err });
  }
}


/** Shard ids, ranges and placements: equal keys mean equal layouts. */
function layoutKey(d: Distribution): string {
  return d.shards.map((s) => `${s.shardId}:${s.min}:${s.max}:${s.placements.map((p) => p.nodeId).join('/')}`).join(',');
}
