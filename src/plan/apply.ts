import type pg from 'pg';
import { parseNodeLabel } from '../connect/config.js';
import { parseQualifiedName, quoteQualifiedName } from '../connect/qualified-name.js';
import { quoteIdent } from '../connect/sql.js';
import { InvalidConfigurationError, TargetTableError, toDatabaseError } from '../errors.js';
import type { KeyChange, ShardingProfile } from './sharding-profile.js';

export interface ApplyResult {
  /** Every statement run, in order, for the user to see. */
  readonly statements: string[];
  readonly notes: string[];
}

/** The profile's table, read as psql reads names (unquoted parts fold to lower case), quoted. */
function qualified(table: string): string {
  return quoteQualifiedName(parseQualifiedName(table, 'the profile\'s table'));
}

/**
 * Makes the cluster match the profile while the table is still empty (splits and moves of empty
 * shards are cheap): create the table when missing, widen keys, distribute or replicate, isolate
 * tenants, split, and move shards to their planned nodes.
 */
/** `onCreated` runs once the table exists because of this call (so a failed load may drop it). */
export async function applyProfile(db: pg.Client, profile: ShardingProfile, tableExists: boolean,
  onCreated?: () => void): Promise<ApplyResult> {
  const statements: string[] = [];
  const notes: string[] = [];
  const run = async (sql: string, values?: unknown[]) => {
    statements.push(values?.length ? `${sql} -- ${JSON.stringify(values)}` : sql);
    try {
      return await db.query(sql, values);
    } catch (err) {
      throw toDatabaseError(err, 'coordinator', `applying the sharding profile failed at: ${sql}`);
    }
  };
  const table = qualified(profile.table);
  if (!tableExists) {
    for (const [column, type] of Object.entries(profile.columnTypes)) await checkTypeName(db, column, type);
    const cols = Object.entries(profile.columnTypes).map(([name, type]) =>
      `${quoteIdent(name)} ${type}${name === profile.distributionColumn ? ' NOT NULL' : ''}`);
    await run(`CREATE TABLE ${table} (${cols.join(', ')})`);
    onCreated?.();
  } else {
    const rows = await db.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (rows.rowCount && profile.keyChanges.length) {
      throw new TargetTableError(`${profile.table} is not empty, so its keys cannot be widened to include ${profile.distributionColumn}; `
        + 'widen them yourself or load with --keep-keys');
    }
  }
  for (const k of profile.keyChanges) await run(await widenKeySql(db, table, k));
  for (const r of profile.referenceTables) {
    const done = await db.query('SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass', [r.table]);
    if (!done.rowCount) await run('SELECT create_reference_table($1)', [r.table]);
  }
  if (profile.kind === 'reference') {
    await run('SELECT create_reference_table($1)', [table]);
    return { statements, notes };
  }
  if (profile.colocateWith) {
    await run('SELECT create_distributed_table($1, $2, colocate_with => $3)', [table, profile.distributionColumn, profile.colocateWith]);
  } else {
    await run("SELECT create_distributed_table($1, $2, shard_count => $3, colocate_with => 'none')", [table, profile.distributionColumn, profile.shardCount]);
  }
  // Isolation and moves in an existing group carry its other tables' rows along: choose how.
  const mode = profile.isolate.length || profile.colocateWith ? await transferModeFor(db, table) : { mode: 'block_writes' as const, why: '' };
  if (profile.colocateWith && (profile.isolate.length || profile.placement.length)) notes.push(`shard transfers use ${mode.mode}: ${mode.why}`);
  for (const value of profile.isolate) {
    // CASCADE: every table of the colocation group is split at the same hash values.
    await run('SELECT isolate_tenant_to_new_shard($1, $2::text, cascade_option => \'CASCADE\', shard_transfer_mode => $3::citus.shard_transfer_mode)', [table, value, mode.mode]);
  }
  for (const point of profile.splitPoints) {
    const shard = await db.query<{ shardid: string; nodeid: number }>(
      `SELECT s.shardid::text, n.nodeid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
        WHERE s.logicalrelid = $1::regclass AND $2 BETWEEN s.shardminvalue::int AND s.shardmaxvalue::int - 1`, [table, point]);
    const s = shard.rows[0];
    if (!s) continue;
    await run("SELECT citus_split_shard_by_split_points($1, ARRAY[$2::text], ARRAY[$3::int, $3::int], 'block_writes')", [s.shardid, point, s.nodeid]);
  }
  const current = await db.query<{ shardid: string; min: number; max: number; nodename: string; nodeport: number }>(
    `SELECT s.shardid::text, s.shardminvalue::int AS min, s.shardmaxvalue::int AS max, n.nodename, n.nodeport
       FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
      WHERE s.logicalrelid = $1::regclass ORDER BY s.shardminvalue::int`, [table]);
  const planned = new Map(profile.shards.map((s) => [`${s.hashMin}:${s.hashMax}`, s.node]));
  for (const s of current.rows) {
    const target = planned.get(`${s.min}:${s.max}`);
    if (target === undefined) {
      notes.push(`shard ${s.shardid} [${s.min}, ${s.max}] is not in the plan; left where it is`);
      continue;
    }
    const here = `${s.nodename}:${s.nodeport}`;
    if (!target || target === here) continue;
    const { host, port } = parseNodeLabel(target);
    // Moving a shard moves its whole shard group (the colocated tables' shards of the same range).
    await run('SELECT citus_move_shard_placement($1, $2, $3, $4, $5, $6::citus.shard_transfer_mode)', [s.shardid, s.nodename, s.nodeport, host, port, mode.mode]);
  }
  if (profile.colocateWith && profile.placement.length === 0) notes.push(`placement follows ${profile.colocateWith}'s colocation group`);
  return { statements, notes };
}

export type TransferMode = 'block_writes' | 'force_logical';

/**
 * How Citus should copy shard groups when isolating or moving (see shard_transfer.c):
 * - the other tables of the group hold no rows: 'block_writes'. Nothing is there to block, and it
 *   needs neither wal_level = logical nor a replica identity (the new table usually has neither).
 * - they hold rows, every worker has wal_level = logical and every one of them has a replica
 *   identity: 'force_logical'. Writes go on during the copy; 'auto' would refuse because the new,
 *   empty table has no replica identity, which is harmless since nothing writes to it yet.
 * - otherwise 'block_writes': writes to the group wait while its shards are copied.
 */
export function chooseTransferMode(facts: { otherTablesHaveRows: boolean; logicalWal: boolean; replicaIdentity: boolean }): { mode: TransferMode; why: string } {
  if (!facts.otherTablesHaveRows) return { mode: 'block_writes', why: 'the colocation group holds no rows yet, so nothing waits' };
  if (facts.logicalWal && facts.replicaIdentity) return { mode: 'force_logical', why: 'logical replication: writes to the group continue during the copy' };
  return { mode: 'block_writes', why: `writes to the group's tables wait while shards are copied (${facts.logicalWal ? 'a table without a replica identity' : 'wal_level is not logical on every worker'} rules out logical replication)` };
}

/** The transfer mode for the table's group; `includeSelf` when the table itself holds rows. */
export async function transferModeFor(db: pg.Client, table: string, includeSelf = false): Promise<{ mode: TransferMode; why: string }> {
  const others = await db.query<{ rel: string; ident: boolean }>(
    `SELECT p.logicalrelid::regclass::text AS rel,
            (c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) AS ident
       FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = $1::regclass) AND ($2 OR p.logicalrelid <> $1::regclass)`, [table, includeSelf]);
  let otherTablesHaveRows = false;
  for (const o of others.rows) {
    // rel is regclass output: a quoted, qualified name PostgreSQL printed itself.
    if ((await db.query(`SELECT 1 FROM ${o.rel} LIMIT 1`)).rowCount) otherTablesHaveRows = true;
  }
  const wal = await db.query<{ ok: boolean }>("SELECT bool_and(success AND result = 'logical') AS ok FROM run_command_on_workers('SHOW wal_level')");
  return chooseTransferMode({ otherTablesHaveRows, logicalWal: wal.rows[0]?.ok === true, replicaIdentity: others.rows.every((o) => o.ident) });
}

/**
 * A column type from a profile reaches DDL only if PostgreSQL's own type-name parser takes the
 * whole string as one type name (to_regtype parses `SELECT NULL::<string>` and accepts nothing
 * else), so no text after it can ride along.
 */
async function checkTypeName(db: pg.Client, column: string, type: string): Promise<void> {
  const ok = await db.query<{ ok: boolean }>('SELECT to_regtype($1) IS NOT NULL AS ok', [type])
    .then((r) => r.rows[0]?.ok === true, () => false);
  if (!ok) throw new InvalidConfigurationError(`the profile gives column ${column} the type ${JSON.stringify(type)}, which is not a type name PostgreSQL knows`);
}

/** ALTER TABLE for a widened key: its kind (primary or unique) is read from the table, never from the profile. */
async function widenKeySql(db: pg.Client, table: string, k: KeyChange): Promise<string> {
  const r = await db.query<{ contype: string }>(
    "SELECT contype FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2 AND contype IN ('p', 'u')", [table, k.constraint]);
  const kind = r.rows[0]?.contype;
  if (!kind) throw new TargetTableError(`the profile widens key ${k.constraint}, which ${table} does not have as a primary or unique key`);
  const name = quoteIdent(k.constraint);
  return `ALTER TABLE ${table} DROP CONSTRAINT ${name}, ADD CONSTRAINT ${name} ${kind === 'p' ? 'PRIMARY KEY' : 'UNIQUE'} `
    + `(${k.columns.map(quoteIdent).join(', ')})`;
}
