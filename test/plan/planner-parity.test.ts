/**
 * The two planners must agree: the TypeScript one (planForInput: sample a file, plan the table it
 * goes into) and the PL/pgSQL adaptive_load.analyze_table (sample a table), which mirrors it for
 * DBAs working from psql. On plain PostgreSQL (no Citus: analyze_table then skips colocation and
 * Citus-hash balance, and both sides see one node and 32 default shards), for the same generated
 * rows, as a file on one side and a table on the other, they must choose the same kind,
 * distribution column and shard count.
 *
 * Each case's table is created, planned by both and dropped before the next, so no case sees
 * another's table as a relationship candidate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import { LocalCluster, postgresUnavailableReason } from '../../scripts/local-cluster.js';
import { migrate } from '../../src/store/migrate.js';
import { planForInput } from '../../src/plan/analyze.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { inputSource } from '../../src/input/input-source.js';

/** A pseudo-random float in [0, 1) from a row number: the same rows on every run, no random(). */
const U = (salt: number) => `((hashint4(g * 7919 + ${salt}) & 2147483647)::float8 / 2147483648)`;

interface Case {
  readonly name: string;
  readonly why: string;
  readonly ddl: string;
  readonly rows: string;
}

const CASES: Case[] = [
  {
    name: 'tenant_events',
    why: 'a skewed tenant key next to a monotonic id and a time column',
    ddl: 'id bigint NOT NULL, tenant_id int NOT NULL, amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL',
    rows: `SELECT g, 1 + floor(300 * power(${U(1)}, 3))::int, round((${U(2)} * 1000)::numeric, 2),
                  timestamptz '2024-01-01 00:00:00+00' + g * interval '7 seconds'
             FROM generate_series(1, 150000) g`,
  },
  {
    name: 'monotonic_ids',
    why: 'only a monotonic unique id and measures',
    ddl: 'id bigint NOT NULL, reading float8 NOT NULL, ok boolean NOT NULL',
    rows: `SELECT g, ${U(3)} * 100, ${U(4)} < 0.9 FROM generate_series(1, 150000) g`,
  },
  {
    name: 'small_dimension',
    why: 'a 500-row dimension table',
    ddl: 'code int NOT NULL, name text NOT NULL, region text NOT NULL',
    rows: `SELECT g, 'name ' || g, (ARRAY['north', 'south', 'east', 'west', 'centre'])[1 + g % 5] FROM generate_series(1, 500) g`,
  },
  {
    name: 'uuid_sessions',
    why: 'a unique uuid, a grouping uuid (5,000 users) and a time column',
    ddl: 'session_id uuid NOT NULL, user_id uuid NOT NULL, started_at timestamptz NOT NULL',
    rows: `SELECT md5('s' || g)::uuid, md5('u' || floor(${U(5)} * 5000)::int)::uuid,
                  timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds'
             FROM generate_series(1, 150000) g`,
  },
  {
    name: 'medium_unique',
    why: '50,000 rows with no column that groups rows',
    ddl: 'id int NOT NULL, label text NOT NULL',
    rows: `SELECT g, 'label ' || hashint4(g) FROM generate_series(1, 50000) g`,
  },
];

interface Decision {
  kind: string;
  distributionColumn: string | null;
  shardCount: number | null;
}

const skip = postgresUnavailableReason();

describe('planner parity: TypeScript planner and adaptive_load.analyze_table on plain PostgreSQL', { skip }, () => {
  let cluster: LocalCluster;
  let db: pg.Client;
  let dir: string;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    db = new pg.Client({ connectionString: cluster.coordinator.url });
    await db.connect();
    await migrate(db);
    dir = mkdtempSync(join(tmpdir(), 'cal-parity-'));
  });

  after(async () => {
    await db?.end();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('analyze_table runs on plain PostgreSQL for a table it would distribute', async () => {
    // Its result once named pg_dist_shard (the shard count of a colocation group) in a CASE
    // branch never taken without Citus; PL/pgSQL plans the whole expression, so it failed here.
    // Migration 1732800000000 moved that count into a function that reads it dynamically.
    const c = CASES[0]!;
    await db.query(`CREATE TABLE parity_probe (${c.ddl})`);
    try {
      await db.query(`INSERT INTO parity_probe ${c.rows}`);
      await db.query('SELECT adaptive_load.analyze_table($1::regclass)', ['parity_probe']);
    } finally {
      await db.query('DROP TABLE parity_probe');
    }
  });

  for (const c of CASES) {
    it(`${c.name}: ${c.why}`, async (t) => {
      await db.query(`CREATE TABLE ${c.name} (${c.ddl})`);
      try {
        await db.query(`INSERT INTO ${c.name} ${c.rows}`);
        // reltuples for analyze_table's row estimate (it counts when there is none).
        await db.query(`ANALYZE ${c.name}`);
        // The same rows, in the same order, as the file the TypeScript planner samples.
        const file = join(dir, `${c.name}.csv`);
        await pipeline(db.query(pgCopyStreams.to(`COPY ${c.name} TO STDOUT (FORMAT csv)`)), createWriteStream(file));

        const ts = (await planForInput(db, inputSource(file), resolveCopyFormat({ format: 'csv' }), { table: c.name, header: 'no' })).profile;
        const sql = (await db.query<{ p: Decision & { candidates: unknown } }>('SELECT adaptive_load.analyze_table($1::regclass) AS p', [c.name])).rows[0]!.p;

        const decision = (p: Decision): Decision => ({ kind: p.kind, distributionColumn: p.distributionColumn, shardCount: p.shardCount });
        const candidates = (list: readonly { column: string; score: number; rejected?: string }[]) =>
          list.map((x) => `${x.column} ${x.score}${x.rejected ? ` (rejected: ${x.rejected})` : ''}`).join(', ');
        assert.deepEqual(decision(ts), decision(sql),
          `${c.name}: the planners disagree.\n  TypeScript: ${JSON.stringify(decision(ts))}; candidates ${candidates(ts.candidates)}\n`
          + `  analyze_table: ${JSON.stringify(decision(sql))}; candidates ${candidates(sql.candidates as never)}`);
        t.diagnostic(`both: ${JSON.stringify(decision(ts))}`);
      } finally {
        await db.query(`DROP TABLE ${c.name}`);
      }
    });
  }
});
