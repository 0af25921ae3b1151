/**
 * A sharding profile is data, also when it comes from a file: its key changes and column types
 * never reach SQL as text. Runs on plain PostgreSQL (apply fails at the first Citus call, after
 * everything checked here has happened).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalCluster, postgresUnavailableReason } from '../../scripts/local-cluster.js';
import { applyProfile } from '../../src/plan/apply.js';
import { validateProfile, type ShardingProfile } from '../../src/plan/sharding-profile.js';

const skip = postgresUnavailableReason();

function profile(over: Partial<ShardingProfile> & Record<string, unknown>): ShardingProfile {
  return validateProfile({
    version: 1, table: 'accounts', kind: 'distributed', distributionColumn: 'org_id', shardCount: 4, colocateWith: null,
    isolate: [], splitPoints: [], placement: [], shards: [], candidates: [], reasons: ['test'],
    columnTypes: { id: 'bigint', org_id: 'bigint' }, sample: { rows: 0 }, keyChanges: [], referenceTables: [],
    predicted: { rows: 0, bytes: 0, maxShardLoadOverMean: 1 },
    workload: { pointLookups: 0, ranges: 0, joins: 0, aggregations: 0, statements: 0 },
    ...over,
  }, 'test profile');
}

describe('applying a profile', { skip }, () => {
  let cluster: LocalCluster;
  let db: pg.Client;
  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    db = new pg.Client({ connectionString: cluster.coordinator.url });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await cluster?.stop();
  });

  it('refuses a column type that is not one type name, before any DDL', async () => {
    await db.query('CREATE TABLE victim (x int)');
    const hostile = profile({ table: 'fresh', columnTypes: { id: 'int); DROP TABLE victim; --', org_id: 'bigint' } });
    await assert.rejects(applyProfile(db, hostile, false), /column id the type "int\); DROP TABLE victim; --", which is not a type name/);
    assert.equal((await db.query("SELECT to_regclass('victim') AS t")).rows[0].t, 'victim');
    assert.equal((await db.query("SELECT to_regclass('fresh') AS t")).rows[0].t, null);
    // Real type names with modifiers and arrays pass.
    const fine = profile({ table: 'fresh', columnTypes: { id: 'character varying(20)', org_id: 'timestamp(3) with time zone', tags: 'text[]' }, distributionColumn: 'id' });
    await assert.rejects(applyProfile(db, fine, false), /create_distributed_table/);
    assert.equal((await db.query("SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'fresh'::regclass AND attname = 'id'")).rows[0].t,
      'character varying(20)');
  });

  it('widens a key from its name and columns, reading its kind from the table; a stored statement is never run', async () => {
    await db.query('CREATE TABLE accounts (id bigint PRIMARY KEY, org_id bigint NOT NULL, email text UNIQUE)');
    // A profile file written by 0.1 carried the statement beside the key: it is read, never run.
    const p = profile({ keyChanges: [
      { constraint: 'accounts_pkey', columns: ['id', 'org_id'], sql: 'DROP TABLE victim' },
      { constraint: 'accounts_email_key', columns: ['email', 'org_id'] },
    ] as unknown as ShardingProfile['keyChanges'] });
    await assert.rejects(applyProfile(db, p, true), /create_distributed_table/);
    const defs = (await db.query("SELECT conname, pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = 'accounts'::regclass ORDER BY conname")).rows;
    assert.deepEqual(defs, [
      { conname: 'accounts_email_key', d: 'UNIQUE (email, org_id)' },
      { conname: 'accounts_pkey', d: 'PRIMARY KEY (id, org_id)' },
    ]);
    assert.equal((await db.query("SELECT to_regclass('victim') AS t")).rows[0].t, 'victim');
    const missing = profile({ keyChanges: [{ constraint: 'no_such_key', columns: ['id', 'org_id'] }] });
    await assert.rejects(applyProfile(db, missing, true), /widens key no_such_key, which "accounts" does not have as a primary or unique key/);
  });

  it('a profile file without key changes or with extra keys in them is not valid', () => {
    assert.throws(() => profile({ keyChanges: undefined as unknown as [] }), /must have required property 'keyChanges'/);
    assert.throws(() => profile({ keyChanges: [{ constraint: 'k', columns: ['a'], run: 'DROP TABLE x' }] as unknown as [] }), /must NOT have additional properties/);
  });
});
