/**
 * A table as the source of a load (`--from-table`), on real Citus: a staging table of every key
 * type the client routes loads with no misplaced row (read back from the shards on the workers);
 * `--then keep|truncate|drop` leaves the staging table as promised and a failed load leaves it
 * untouched and the target empty; a staging table that is itself distributed works; the
 * staging lock is had before anything is prepared, or the load fails with nothing prepared;
 * requests name a table source through the request runner, distribute_table hands its move to
 * a daemon when one takes requests; hostile names are refused or quoted.
 * Skipped, with one line saying why, when the citus extension is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { findTable } from '../../src/catalog/catalog.js';
import { analyzeTable } from '../../src/index.js';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { startRequestListener } from '../../src/monitor/request-runner.js';
import { sampleTable } from '../../src/plan/table-sampler.js';
import { migrate } from '../../src/store/migrate.js';
import { runCli } from '../support/cli.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus staging suite skipped: ${skip}.`);

/** A value of each routed key type from i, as SQL over generate_series (some text needs COPY escapes). */
const KEY_TYPES: { type: string; value: string }[] = [
  { type: 'int2', value: '((i % 30000) - 15000)::int2' },
  { type: 'int4', value: '((i * 7919) % 100000 - 50000)::int4' },
  { type: 'int8', value: '(i::int8 * 1000000007 - 5000000000000)' },
  { type: 'text', value: "CASE WHEN i % 50 = 0 THEN E'tab\\there\\nnew line\\\\back ' || i ELSE 'tenant-' || (i % 400) || '-é中' END" },
  { type: 'varchar(20)', value: "'v' || (i % 300)" },
  { type: 'char(8)', value: "'c' || (i % 100)" },
  { type: 'uuid', value: 'md5(i::text)::uuid' },
  { type: 'date', value: "'2024-01-01'::date + (i % 700)" },
  { type: 'timestamp', value: "'2024-01-01'::timestamp + i * interval '37 minutes 3 seconds'" },
  { type: 'timestamptz', value: "'2024-01-01 00:00+02'::timestamptz + i * interval '61.5 seconds'" },
  { type: 'bool', value: 'i % 3 = 0' },
];

describe('Citus suite: a staging table as the source', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string) => Number((await sql(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const exists = async (table: string) => (await sql('SELECT to_regclass($1)::text AS t', [table])).rows[0].t !== null;
  const load = (args: string[]) => runCli([...args, '--coordinator', url, '--json']);
  /** Rows in one table and not the other, both ways (0: the same rows). */
  const difference = async (a: string, b: string, cols = '*') => Number((await sql(
    `SELECT count(*) AS n FROM ((SELECT ${cols} FROM ${a} EXCEPT ALL SELECT ${cols} FROM ${b}) UNION ALL (SELECT ${cols} FROM ${b} EXCEPT ALL SELECT ${cols} FROM ${a})) d`)).rows[0].n);
  const prepared = async () => {
    let n = 0;
    for (const node of cluster.nodes) n += await withClient(node.url, async (c) => Number((await c.query('SELECT count(*) AS n FROM pg_prepared_xacts')).rows[0].n));
    return n;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waitFor = async <T>(probe: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(100);
    }
  };
  const settled = (id: string) => waitFor(async () => {
    const r = (await sql('SELECT status, error, outcome FROM adaptive_load.requests WHERE request_id = $1', [id])).rows[0] as
      { status: string; error: string | null; outcome: Record<string, unknown> | null } | undefined;
    return r && r.status !== 'pending' && r.status !== 'running' ? r : undefined;
  }, `request ${id} to finish`);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    await withClient(url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  it('a staging table of every routed key type loads with no misplaced row, and is kept by default', async () => {
    const rows = 4000;
    for (const [n, k] of KEY_TYPES.entries()) {
      const stg = `stg_key_${n}`;
      const tgt = `tgt_key_${n}`;
      await sql(`CREATE TABLE ${stg} AS SELECT (${k.value})::${k.type} AS k, i, 'row ' || i AS note FROM generate_series(1, ${rows}) i`);
      await sql(`CREATE TABLE ${tgt} (k ${k.type} NOT NULL, i int, note text)`);
      await sql(`SELECT create_distributed_table('${tgt}', 'k', shard_count => 8)`);
      const r = await load(['--table', tgt, '--from-table', stg]);
      assert.equal(r.status, 0, `${k.type}: ${r.stderr}`);
      assert.equal(r.json?.path, 'direct', k.type);
      assert.equal(r.json?.rows, rows, k.type);
      assert.equal(r.json?.source, `table public.${stg}`);
      assert.deepEqual(r.json?.staging, { table: `public.${stg}`, then: 'keep', outcome: `public.${stg} was kept as it was` });
      const check = await checkPlacements(url, tgt);
      assert.equal(check.rows, rows, k.type);
      assert.deepEqual(check.misplaced, [], k.type);
      assert.equal(await difference(stg, tgt), 0, `${k.type}: the target holds exactly the staging rows`);
      assert.equal(await count(stg), rows, `${k.type}: the staging table is kept`);
    }
  });

  it('--then truncate, drop and keep leave the staging table as promised, with the load\'s commit', async () => {
    for (const then of ['truncate', 'drop', 'keep'] as const) {
      const stg = `stg_then_${then}`;
      const tgt = `tgt_then_${then}`;
      await sql(`CREATE TABLE ${stg} AS SELECT i AS tenant_id, i * 2 AS amount FROM generate_series(1, 5000) i`);
      await sql(`CREATE TABLE ${tgt} (tenant_id bigint NOT NULL, amount int)`);
      await sql(`SELECT create_distributed_table('${tgt}', 'tenant_id', shard_count => 4)`);
      const r = await load(['--table', tgt, '--from-table', stg, '--then', then]);
      assert.equal(r.status, 0, `${then}: ${r.stderr}`);
      assert.equal(r.json?.rows, 5000);
      assert.equal((r.json?.staging as { then: string }).then, then);
      assert.equal(await count(tgt), 5000);
      assert.deepEqual((await checkPlacements(url, tgt)).misplaced, []);
      if (then === 'truncate') assert.equal(await count(stg), 0, 'emptied, still there');
      if (then === 'drop') assert.equal(await exists(stg), false, 'dropped');
      if (then === 'keep') assert.equal(await count(stg), 5000, 'kept');
    }
    assert.equal(await prepared(), 0);
  });

  it('--max-errors with --then truncate: a value PostgreSQL rejects is set aside, the rest load and the staging table is emptied', async () => {
    // A text staging column into an int key: 'abc' and '1e3' the client cannot route; PostgreSQL
    // is asked (on a session other than the one holding the staging table's lock) and refuses them.
    await sql(`CREATE TABLE stg_lax AS SELECT CASE WHEN i = 700 THEN 'abc' WHEN i = 900 THEN '1e3' ELSE ' +' || i || ' ' END AS k, i FROM generate_series(1, 3000) i`);
    await sql('CREATE TABLE tgt_lax (k int NOT NULL, i int)');
    await sql("SELECT create_distributed_table('tgt_lax', 'k', shard_count => 4)");
    const r = await load(['--table', 'tgt_lax', '--from-table', 'stg_lax', '--then', 'truncate', '--max-errors', '5']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.rows, 2998);
    assert.equal(r.json?.rejected, 2);
    assert.equal(await count('tgt_lax'), 2998);
    assert.deepEqual((await checkPlacements(url, 'tgt_lax')).misplaced, []);
    assert.equal(await count('stg_lax'), 0);
  });

  it('a failed load (a NULL key) leaves the staging table untouched and the target empty, whatever --then says', async () => {
    await sql(`CREATE TABLE stg_bad AS SELECT CASE WHEN i = 2500 THEN NULL ELSE i END AS tenant_id, i AS amount FROM generate_series(1, 5000) i`);
    await sql('CREATE TABLE tgt_bad (tenant_id bigint, amount int)');
    await sql("SELECT create_distributed_table('tgt_bad', 'tenant_id', shard_count => 4)");
    for (const then of ['drop', 'truncate']) {
      const r = await load(['--table', 'tgt_bad', '--from-table', 'stg_bad', '--then', then]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /NULL|null/);
      assert.equal(await exists('stg_bad'), true);
      assert.equal(await count('stg_bad'), 5000, `${then}: the staging table is untouched`);
      assert.equal(await count('tgt_bad'), 0, `${then}: nothing loaded`);
    }
    assert.equal(await prepared(), 0);
    const jobs = (await sql("SELECT status FROM adaptive_load.load_jobs WHERE source = 'table public.stg_bad'")).rows.map((r) => r.status);
    assert.deepEqual(jobs, ['failed', 'failed']);
  });

  it('the staging table\'s lock is had before anything is prepared: a reader holding it fails the load cleanly', async () => {
    await sql('CREATE TABLE stg_busy AS SELECT i AS tenant_id, i AS amount FROM generate_series(1, 3000) i');
    await sql('CREATE TABLE tgt_busy (tenant_id bigint NOT NULL, amount int)');
    await sql("SELECT create_distributed_table('tgt_busy', 'tenant_id', shard_count => 4)");
    // A reader's open transaction holds ACCESS SHARE: the load may read beside it, but cannot
    // truncate until it ends.
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM stg_busy');
      const r = await load(['--table', 'tgt_busy', '--from-table', 'stg_busy', '--then', 'truncate', '--lock-timeout', '1']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /stg_busy is in use by another session.*ACCESS EXCLUSIVE.*not granted within 1 s/);
      assert.equal(await prepared(), 0, 'it failed before PREPARE');
      await reader.query('COMMIT');
    } finally {
      await reader.end();
    }
    assert.equal(await count('stg_busy'), 3000);
    assert.equal(await count('tgt_busy'), 0);
    // Free, the same load goes through.
    const again = await load(['--table', 'tgt_busy', '--from-table', 'stg_busy', '--then', 'truncate']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(await count('tgt_busy'), 3000);
    assert.equal(await count('stg_busy'), 0);
  });

  it('writers wait while the load runs, so --then truncate empties only rows it loaded', async () => {
    await sql('CREATE TABLE stg_live AS SELECT i AS tenant_id, i AS amount FROM generate_series(1, 200000) i');
    await sql('CREATE TABLE tgt_live (tenant_id bigint NOT NULL, amount int)');
    await sql("SELECT create_distributed_table('tgt_live', 'tenant_id', shard_count => 4)");
    const loading = load(['--table', 'tgt_live', '--from-table', 'stg_live', '--then', 'truncate']);
    // Insert while it loads: each insert either lands before the load's lock (and is loaded) or
    // waits for its commit (and stays in the emptied staging table). None may vanish.
    const writer = new pg.Client({ connectionString: url });
    await writer.connect();
    let inserted = 0;
    try {
      for (let i = 0; i < 20; i++) {
        await writer.query('INSERT INTO stg_live VALUES ($1, -1)', [1_000_000 + i]);
        inserted++;
        await sleep(50);
      }
    } finally {
      await writer.end();
    }
    const r = await loading;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await count('tgt_live') + await count('stg_live'), 200000 + inserted, 'every row is in the target or still staged');
    assert.equal(Number((await sql('SELECT count(*) AS n FROM tgt_live t JOIN stg_live s USING (tenant_id)')).rows[0].n), 0, 'no row in both');
  });

  it('a distributed or reference staging table works, and a missing target is planned from a TABLESAMPLE of it', async () => {
    await sql("CREATE TABLE stg_dist (tenant_id bigint, seq int, label text)");
    await sql("SELECT create_distributed_table('stg_dist', 'seq', shard_count => 6)");
    await sql("INSERT INTO stg_dist SELECT i % 997, i, 'l' || (i % 13) FROM generate_series(1, 30000) i");
    await sql('CREATE TABLE tgt_dist (tenant_id bigint NOT NULL, seq int, label text)');
    await sql("SELECT create_distributed_table('tgt_dist', 'tenant_id', shard_count => 8)");
    const r = await load(['--table', 'tgt_dist', '--from-table', 'stg_dist', '--then', 'truncate']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.rows, 30000);
    assert.deepEqual((await checkPlacements(url, 'tgt_dist')).misplaced, []);
    assert.equal(await count('stg_dist'), 0);

    await sql("CREATE TABLE stg_ref (code int, name text)");
    await sql("SELECT create_reference_table('stg_ref')");
    await sql("INSERT INTO stg_ref SELECT i, 'n' || i FROM generate_series(1, 500) i");
    await sql('CREATE TABLE tgt_ref (code int NOT NULL, name text)');
    await sql("SELECT create_distributed_table('tgt_ref', 'code', shard_count => 4)");
    const ref = await load(['--table', 'tgt_ref', '--from-table', 'stg_ref']);
    assert.equal(ref.status, 0, ref.stderr);
    assert.equal(await difference('stg_ref', 'tgt_ref'), 0);

    // No target: the profile is planned from a sample of the staging table, and the table it
    // creates has the staging table's column types.
    await sql("CREATE TABLE stg_new (account_id bigint, created date, amount numeric(10,2), note varchar(30))");
    await sql("INSERT INTO stg_new SELECT i % 5000, '2024-01-01'::date + i % 300, (i % 1000) / 7.0, 'n' || i FROM generate_series(1, 60000) i");
    const created = await load(['--table', 'tgt_new', '--from-table', 'stg_new', '--then', 'drop']);
    assert.equal(created.status, 0, created.stderr);
    assert.equal(created.json?.rows, 60000);
    assert.ok(created.json?.profile, 'a profile was planned');
    const types = (await sql(`SELECT attname::text AS c, format_type(atttypid, atttypmod) AS t FROM pg_attribute
      WHERE attrelid = 'tgt_new'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)).rows;
    assert.deepEqual(types, [{ c: 'account_id', t: 'bigint' }, { c: 'created', t: 'date' }, { c: 'amount', t: 'numeric(10,2)' }, { c: 'note', t: 'character varying(30)' }]);
    assert.equal(await exists('stg_new'), false);
    if ((await sql("SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = 'tgt_new'::regclass")).rows[0]?.partmethod === 'h') {
      assert.deepEqual((await checkPlacements(url, 'tgt_new')).misplaced, []);
    }
  });

  it('samples with TABLESAMPLE SYSTEM for a big table, BERNOULLI for a small one, whole when tiny; a Citus table too', async () => {
    // About 35 rows a page: the big ones are above the 8192 pages BERNOULLI may read whole.
    const wide = (rows: number) => `SELECT i AS id, (i % 100)::text AS v, repeat('x', 200) AS pad FROM generate_series(1, ${rows}) i`;
    await sql(`CREATE TABLE smp_big AS ${wide(320000)}`);
    await sql('CREATE TABLE smp_small AS SELECT i AS id, (i % 100)::text AS v FROM generate_series(1, 40000) i');
    await sql('CREATE TABLE smp_tiny AS SELECT i AS id, (i % 100)::text AS v FROM generate_series(1, 300) i');
    await sql('ANALYZE smp_big, smp_small');
    await withClient(url, async (c) => {
      const sample = async (name: string) => {
        const t = (await findTable(c, name))!;
        return sampleTable(c, t, t.columns, { rows: 5000 });
      };
      const big = await sample('smp_big');
      assert.equal(big.method, 'system');
      assert.ok(big.rows.length >= 3000 && big.rows.length <= 5000, `${big.rows.length} rows`);
      assert.ok(Math.abs(big.estimatedRows - 320000) < 32000, String(big.estimatedRows));
      assert.deepEqual(big.header, ['id', 'v', 'pad']);
      const small = await sample('smp_small');
      assert.equal(small.method, 'bernoulli');
      assert.ok(small.rows.length >= 4000 && small.rows.length <= 5000, `${small.rows.length} rows`);
      // Spread over the table, not its first pages.
      const ids = small.rows.map((r) => Number(r.fields[0]));
      assert.ok(Math.min(...ids) < 4000 && Math.max(...ids) > 36000, `${Math.min(...ids)}..${Math.max(...ids)}`);
      // The library's analyzeTable describes the same sample's columns.
      const described = await analyzeTable('smp_small', { connection: { coordinator: url }, rows: 5000 });
      assert.equal(described.sample.method, 'bernoulli');
      assert.deepEqual(described.columns.map((col) => [col.name, col.type]), [['id', 'integer'], ['v', 'text']]);
      const tiny = await sample('smp_tiny');
      assert.equal(tiny.method, 'whole');
      assert.equal(tiny.rows.length, 300);
      // Never analyzed: the size comes from the rows' width.
      await sql(`CREATE TABLE smp_fresh WITH (autovacuum_enabled = off) AS ${wide(320000)}`);
      const fresh = await sample('smp_fresh');
      assert.equal(fresh.method, 'system');
      assert.ok(fresh.rows.length >= 2500, `${fresh.rows.length} rows`);
      await sql("SELECT create_distributed_table('smp_big', 'id', shard_count => 4)");
      await sql('ANALYZE smp_big');
      const dist = await sample('smp_big');
      assert.equal(dist.method, 'system');
      assert.ok(dist.rows.length >= 3000, `${dist.rows.length} rows`);
      assert.ok(Math.abs(dist.estimatedRows - 320000) < 32000, String(dist.estimatedRows));
    });
  });

  it('hostile table names are refused before SQL, or quoted and read as the names they are', async () => {
    await sql('CREATE TABLE hostile_tgt (k int NOT NULL, v text)');
    await sql("SELECT create_distributed_table('hostile_tgt', 'k', shard_count => 4)");
    for (const name of ['stg; DROP TABLE hostile_tgt; --', 'stg)', "stg' OR 1=1", 'a.b.c', '']) {
      const r = await load(['--table', 'hostile_tgt', '--from-table', name]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, /--from-table/);
    }
    // A real table with a name that needs quotes loads; one with such a name that does not exist is not found.
    await sql('CREATE SCHEMA "we.ird"');
    await sql('CREATE TABLE "we.ird"."stg ""x""; DROP TABLE hostile_tgt; --" AS SELECT i AS k, \'v\' || i AS v FROM generate_series(1, 100) i');
    const quoted = await load(['--table', 'hostile_tgt', '--from-table', '"we.ird"."stg ""x""; DROP TABLE hostile_tgt; --"', '--then', 'drop']);
    assert.equal(quoted.status, 0, quoted.stderr);
    assert.equal(await count('hostile_tgt'), 100);
    assert.equal((await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = '"we.ird"'::regnamespace`)).rows[0].n, 0, 'dropped, by its own name');
    const missing = await load(['--table', 'hostile_tgt', '--from-table', '"nope""; DROP TABLE hostile_tgt; --"']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /does not exist/);
    assert.equal(await count('hostile_tgt'), 100);
  });

  it('requests name a table source; the runner checks the requester may read (and empty) it; hostile names fail the request', async () => {
    const conn = resolveConnectionConfig({ coordinator: url });
    await sql('CREATE TABLE req_stg AS SELECT i AS tenant_id, i AS amount FROM generate_series(1, 2000) i');
    await sql('CREATE TABLE req_tgt (tenant_id bigint NOT NULL, amount int)');
    await sql("SELECT create_distributed_table('req_tgt', 'tenant_id', shard_count => 4)");
    await sql('CREATE ROLE stager LOGIN');
    await sql('GRANT USAGE ON SCHEMA adaptive_load TO stager');
    await sql('GRANT INSERT ON req_tgt TO stager');
    const asStager = (text: string, values?: unknown[]) => withClient(url.replace('postgres@', 'stager@'), (c) => c.query(text, values));
    const listener = await startRequestListener(conn, {});
    try {
      // The requester may not read the staging table: refused, nothing loaded.
      const denied = (await asStager("SELECT adaptive_load.request_load_from_table('req_tgt', 'req_stg', 'truncate')::text AS id")).rows[0].id as string;
      const d = await settled(denied);
      assert.equal(d.status, 'failed');
      assert.match(d.error ?? '', /stager may not SELECT from public\.req_stg/);
      await sql('GRANT SELECT ON req_stg TO stager');
      const noTruncate = await settled((await asStager("SELECT adaptive_load.request_load_from_table('req_tgt', 'req_stg', 'truncate')::text AS id")).rows[0].id as string);
      assert.match(noTruncate.error ?? '', /may not TRUNCATE public\.req_stg/);
      const noDrop = await settled((await asStager("SELECT adaptive_load.request_load_from_table('req_tgt', 'req_stg', 'drop')::text AS id")).rows[0].id as string);
      assert.match(noDrop.error ?? '', /does not own public\.req_stg/);
      for (const [options, reason] of [
        [{ fromTable: 'req_stg; DROP TABLE req_tgt' }, /not a valid table name/],
        [{ fromTable: 'req_stg', then: 'drop cascade' }, /"then"/],
        [{ fromTable: 'pg_catalog.pg_authid' }, /may not SELECT/],
      ] as const) {
        const id = (await asStager('SELECT adaptive_load.request_load($1, NULL, $2)::text AS id', ['req_tgt', JSON.stringify(options)])).rows[0].id as string;
        const f = await settled(id);
        assert.equal(f.status, 'failed', JSON.stringify(options));
        assert.match(f.error ?? '', reason, JSON.stringify(options));
      }
      assert.equal(await count('req_tgt'), 0);
      assert.equal(await count('req_stg'), 2000);
      await sql('GRANT TRUNCATE ON req_stg TO stager');
      const ok = await settled((await asStager("SELECT adaptive_load.request_load_from_table('req_tgt', 'req_stg', 'truncate')::text AS id")).rows[0].id as string);
      assert.equal(ok.status, 'done', ok.error ?? '');
      assert.equal(ok.outcome?.rows, 2000);
      assert.equal((ok.outcome?.staging as { then: string }).then, 'truncate');
      assert.equal(await count('req_tgt'), 2000);
      assert.equal(await count('req_stg'), 0);
    } finally {
      await listener.stop();
    }
  });

  it('distribute_table hands its move to a daemon that takes requests, else keeps INSERT ... SELECT; it says which', async () => {
    await sql("CREATE TABLE dt_stage (account_id bigint, amount int, note text)");
    await sql("INSERT INTO dt_stage SELECT i % 3000, i, 'n' || i FROM generate_series(1, 20000) i");
    const call = async (target: string) => withClient(url, async (c) => {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      const r = await c.query('CALL adaptive_load.distribute_table($1, $2)', ['dt_stage', target]);
      return { row: r.rows[0] as { path: string; request_id: string | null }, notices };
    });
    const plain = await call('dt_plain');
    assert.equal(plain.row.path, 'insert-select');
    assert.equal(plain.row.request_id, null);
    assert.ok(plain.notices.some((m) => /no daemon takes requests.*INSERT \.\.\. SELECT/.test(m)), plain.notices.join('\n'));
    assert.equal(await count('dt_plain'), 20000);

    const listener = await startRequestListener(resolveConnectionConfig({ coordinator: url }), {});
    try {
      const handed = await call('dt_daemon');
      assert.equal(handed.row.path, 'daemon');
      assert.ok(handed.row.request_id, 'a request id');
      assert.ok(handed.notices.some((m) => /a daemon takes requests.*request \d+/.test(m)), handed.notices.join('\n'));
      const done = await settled(String(handed.row.request_id));
      assert.equal(done.status, 'done', done.error ?? '');
      assert.equal(done.outcome?.rows, 20000);
      assert.equal(done.outcome?.path, 'direct');
      assert.equal(await difference('dt_stage', 'dt_daemon'), 0);
      const kind = (await sql("SELECT partmethod FROM pg_dist_partition WHERE logicalrelid = 'dt_daemon'::regclass")).rows[0]?.partmethod;
      assert.ok(kind === 'h' || kind === 'n', `distributed (${String(kind)})`);
      if (kind === 'h') assert.deepEqual((await checkPlacements(url, 'dt_daemon')).misplaced, []);
      assert.equal(await count('dt_stage'), 20000, 'distribute_table keeps its source');
    } finally {
      await listener.stop();
    }
  });
});
