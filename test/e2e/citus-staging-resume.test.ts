/**
 * Chunked, resumable loads from a staging table (--from-table with --commit-every / --resume) on
 * a real Citus cluster: chunks are heap block ranges of a local staging table. A load killed
 * (SIGKILL) several times and resumed each time ends with every staging row in the target exactly
 * once (count and a checksum per key against a copy of the staging table taken before), no
 * prepared transaction on any node, and with --then truncate the staging table emptied only by
 * the last chunk; a staging table rewritten or changed between runs is refused on --resume with
 * the reason; a distributed staging table is refused for chunking.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pgCopyStreams from 'pg-copy-streams';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { recover } from '../../src/index.js';
import { runChild, type ChildArgs, type ChildResult } from '../support/chunked-child.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus staging resume suite skipped: ${skip}.`);

describe('Citus staging resume suite: chunked loads from a staging table, each row exactly once', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string) => Number((await sql(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  const preparedLeft = async () => {
    let n = 0;
    for (const node of cluster.nodes) n += (await withClient(node.url, (c) => c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts'))).rows[0].n;
    return n;
  };
  const checksums = async (table: string) => {
    const r = await sql(`SELECT customer_id::text AS k, count(*)::int AS n, sum(hashtext(t::text)::bigint)::text AS h FROM ${table} t GROUP BY 1`);
    return new Map(r.rows.map((x) => [x.k as string, `${x.n}:${x.h}`]));
  };
  const assertSameRows = async (table: string, reference: string) => {
    assert.equal(await count(table), await count(reference), 'row count differs from the staging table\'s');
    const got = await checksums(table);
    const want = await checksums(reference);
    const differing = [...want].filter(([k, v]) => got.get(k) !== v).map(([k]) => k);
    assert.equal(got.size, want.size, 'keys differ from the staging table\'s');
    assert.deepEqual(differing.slice(0, 10), [], `${differing.length} key(s) whose rows differ from the staging table's`);
  };
  /** A local staging table of generated orders, and `ref`, a copy of its content taken now. */
  const createStaging = async (name: string, rows: number, seed: number, ref?: string) => {
    const file = join(dir, `${name}.csv`);
    await generateOrdersCsv(file, { rows, customers: Math.max(100, rows / 20), skew: 1.0, seed });
    await sql(ORDERS_DDL.replace('orders', name));
    await withClient(url, async (c) => {
      await pipeline(createReadStream(file), c.query(pgCopyStreams.from(`COPY ${name} FROM STDIN WITH (FORMAT csv, HEADER true)`)));
    });
    if (ref) await sql(`CREATE TABLE ${ref} AS SELECT * FROM ${name}`);
  };
  const createTarget = async (name: string) => {
    await sql(ORDERS_DDL.replace('orders', name));
    await sql(`SELECT create_distributed_table('${name}', 'customer_id', shard_count => 8)`);
  };
  /** Blocks per chunk of the one job on orders_from_stg, from its first chunk's range. */
  const blockStep = async () => Number((await sql(`SELECT ctid_to_block - ctid_from_block AS s FROM adaptive_load.load_chunks c
      JOIN adaptive_load.load_jobs j USING (job_id) WHERE j.table_name = 'public.orders_from_stg' AND c.chunk = 0`)).rows[0]?.s ?? 1);
  const blocksOf = async (table: string) =>
    Number((await sql(`SELECT pg_relation_size('${table}') / current_setting('block_size')::bigint AS b`)).rows[0].b);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-staging-resume-test-'));
  });
  after(async () => cluster?.stop());

  it('killed several times and resumed, loads every staging row exactly once and truncates only with the last chunk', async () => {
    await createStaging('stg_orders', 150_000, 31, 'stg_orders_ref');
    await createTarget('orders_from_stg');
    const blocks = await blocksOf('stg_orders');
    const staged = await count('stg_orders_ref');
    const base: ChildArgs = { coordinator: url, table: 'orders_from_stg', fromTable: 'stg_orders', then: 'truncate', commitEvery: '3000' };
    // Both deaths that matter to exactly-once (before a chunk's record: rolled back; after it:
    // committed by recovery), and random moments.
    const kinds = ['commit-recorded', 'prepared', 'random', 'commit-recorded', 'prepared'];
    let kills = 0;
    let finished: ChildResult | undefined;
    for (const [i, kind] of kinds.entries()) {
      const args: ChildArgs = { ...base, ...(i > 0 ? { resume: true } : {}) };
      const r = kind === 'random'
        ? await runChild(args, { killAfterLockedMs: 50 + Math.floor(Math.random() * 200) })
        : await runChild({ ...args, diePhase: kind as ChildArgs['diePhase'], dieAt: 2 });
      assert.equal(r.hung, false, `run ${i} hung: ${r.stderr}`);
      if (r.signal === 'SIGKILL') {
        kills++;
        // Chunks are committed, but the staging table is emptied only with the last one.
        assert.equal(await count('stg_orders'), staged, `after kill ${kills} the staging table must still hold every row`);
        // An unfinished staging job knows its chunks (block ranges); it has no bytes on disk to count.
        const progress = (await sql(`SELECT chunks_done::int AS d, chunks_left::int AS l, bytes_left, status
                                       FROM adaptive_load.loads WHERE table_name = 'public.orders_from_stg'`)).rows[0];
        if (progress && progress.d > 0) {
          assert.equal(progress.bytes_left, null, 'a staging job has no bytes left to tell');
          assert.equal(progress.d + progress.l, Math.ceil(blocks / (await blockStep())), `chunks done and left after kill ${kills}`);
        }
        continue;
      }
      assert.equal(r.status, 0, `run ${i} (${kind}) failed: ${r.stderr}`);
      finished = r;
      break;
    }
    assert.ok(kills >= 4, `the load was killed ${kills} times; it should have been killed (nearly) every time`);
    const jobs = (await sql("SELECT job_id::int AS id FROM adaptive_load.load_jobs WHERE table_name = 'public.orders_from_stg'")).rows;
    assert.equal(jobs.length, 1, 'every resume continued the one job');
    const committedBefore = Number((await sql('SELECT count(*) AS n FROM adaptive_load.load_chunks WHERE job_id = $1', [jobs[0].id])).rows[0].n);
    assert.ok(committedBefore > 0, 'the killed runs committed chunks');
    if (!finished) {
      finished = await runChild({ ...base, resume: true });
      assert.equal(finished.status, 0, finished.stderr);
    }
    assert.equal(finished.summary!.rows, staged, 'the summary counts the whole job');
    assert.equal(await count('stg_orders'), 0, 'the last chunk truncated the staging table');
    assert.equal(await preparedLeft(), 0, 'no prepared transaction may be left on any node');
    await assertSameRows('orders_from_stg', 'stg_orders_ref');
    assert.deepEqual((await checkPlacements(url, 'orders_from_stg')).misplaced, []);
    // The manifest's block ranges cover the staging table's blocks without gaps or overlaps.
    const chunks = (await sql(`SELECT chunk, ctid_from_block::int AS f, ctid_to_block::int AS t, rows_loaded::int AS n
                                 FROM adaptive_load.load_chunks WHERE job_id = $1 ORDER BY chunk`, [jobs[0].id])).rows;
    assert.ok(chunks.length > 1);
    let at = 0;
    for (const [i, c] of chunks.entries()) {
      assert.equal(c.chunk, i);
      assert.equal(c.f, at, `chunk ${i} starts at the block where chunk ${i - 1} ended`);
      at = c.t;
    }
    assert.equal(at, blocks, 'the last chunk ends at the staging table\'s last block');
    assert.equal(chunks.reduce((a, c) => a + c.n, 0), staged);
  });

  it('a chunk prepared while the run\'s main session is ended (as a request\'s time limit ends it) is left to the run, not rolled back by a recovery meanwhile', async () => {
    // The chunks before the last write their commit records on a second coordinator session
    // (the main one keeps the staging table's lock open). Recovery may decide a job only when no
    // session that can still write one of its records is alive: ending the main session alone
    // must not let it roll back a chunk the run is about to record.
    await createStaging('stg_orphan', 60_000, 23, 'stg_orphan_ref');
    await createTarget('orders_orphan');
    const flag = join(dir, 'orphan-go');
    const args: ChildArgs = { coordinator: url, table: 'orders_orphan', fromTable: 'stg_orphan', commitEvery: '3000' };
    let acted: Promise<void> | undefined;
    let actFailed: unknown;
    const r = await runChild({ ...args, stallPhase: 'prepared', stallAt: 2, stallUntil: flag }, { onStalled: () => {
      acted = (async () => {
        try {
          // The run's main session is the one holding the staging table's lock.
          const ended = await sql(`SELECT pg_terminate_backend(pid) AS ok FROM pg_catalog.pg_locks
                                    WHERE locktype = 'relation' AND relation = 'stg_orphan'::regclass AND mode = 'ExclusiveLock' AND granted`);
          assert.equal(ended.rows.length, 1, 'the run\'s main session holds the staging table\'s lock');
          await new Promise((res) => setTimeout(res, 500));
          const rec = await recover({ connection: { coordinator: url } });
          assert.deepEqual(rec.rolledBack, [], 'recovery rolled back a chunk of a run that is still going');
        } finally {
          writeFileSync(flag, 'go');
        }
      })().catch((err) => { actFailed = err; });
    } });
    await acted;
    if (actFailed) throw actFailed;
    assert.equal(r.hung, false, r.stderr);
    // The run may finish its middle chunks; the last one needs the session that was ended.
    assert.equal(r.status, 1, `the run cannot finish without its main session: ${r.stderr}`);
    const done = await runChild({ ...args, resume: true });
    assert.equal(done.status, 0, done.stderr);
    assert.equal(await preparedLeft(), 0, 'no prepared transaction may be left on any node');
    await assertSameRows('orders_orphan', 'stg_orphan_ref');
  });

  it('keeps writers out of the staging table for the whole chunked run, also with --then keep', async () => {
    await createStaging('stg_busy', 100_000, 17);
    await createTarget('orders_busy');
    const original = await count('stg_busy');
    const child = runChild({ coordinator: url, table: 'orders_busy', fromTable: 'stg_busy', then: 'keep', commitEvery: '2000' });
    let running = true;
    void child.then(() => { running = false; });
    // A writer that tries again and again while the load runs, never waiting long: it must meet
    // the lock (55P03) at least once, or the block ranges could name other rows by the next chunk.
    let timeouts = 0;
    let inserted = 0;
    await withClient(url, async (c) => {
      await c.query("SET lock_timeout = '50ms'");
      for (let i = 0; running && i < 5000; i++) {
        try {
          await c.query("INSERT INTO stg_busy VALUES ($1, 1, 1.00, 'paid', '2024-01-01 00:00:00+00', NULL)", [900_000_000 + i]);
          inserted++;
        } catch (err) {
          if ((err as { code?: string }).code !== '55P03') throw err;
          timeouts++;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    const r = await child;
    assert.equal(r.status, 0, r.stderr);
    assert.ok(timeouts > 0, `a writer was never kept out during the chunked load (${inserted} inserts went through)`);
    // Whatever the writer added before the lock was loaded once, what it added after was not.
    assert.equal(await count('stg_busy'), original + inserted);
    const loaded = await count('orders_busy');
    assert.ok(loaded >= original && loaded <= original + inserted);
    assert.equal(Number((await sql('SELECT count(*) AS n FROM (SELECT * FROM orders_busy EXCEPT ALL SELECT * FROM stg_busy) x')).rows[0].n), 0,
      'every loaded row is a staging row, once');
  });

  it('refuses to resume from a staging table that changed, and says how', async () => {
    await createStaging('stg_changing', 40_000, 7);
    await createTarget('orders_changing');
    const args: ChildArgs = { coordinator: url, table: 'orders_changing', fromTable: 'stg_changing', commitEvery: '2000' };
    const killed = await runChild({ ...args, diePhase: 'commit-recorded', dieAt: 2 });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);

    // A row added: it lands in the last block (or a new one).
    await sql("INSERT INTO stg_changing VALUES (999999999, 1, 1.00, 'paid', '2024-01-01 00:00:00+00', NULL)");
    let r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot resume job \d+: the staging table public\.stg_changing changed since it started: (the rows of its last block changed|its size changed)/);
    await sql('DELETE FROM stg_changing WHERE order_id = 999999999');

    // VACUUM FULL moves rows to a new file: the block ranges no longer name the same rows.
    await sql('VACUUM FULL stg_changing');
    r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /changed since it started: its storage was rewritten \(relfilenode \d+ then, \d+ now/);
    assert.equal(await preparedLeft(), 0);
    // A changed staging table is new rows, not a half-done load of these: a plain run is not refused.
    r = await runChild(args);
    assert.equal(r.status, 0, r.stderr);
  });

  it('refuses --commit-every from a distributed staging table, with the reason', async () => {
    await createStaging('stg_dist', 5_000, 3);
    await sql("SELECT create_distributed_table('stg_dist', 'customer_id', shard_count => 4)");
    await createTarget('orders_from_dist');
    const r = await runChild({ coordinator: url, table: 'orders_from_dist', fromTable: 'stg_dist', commitEvery: '1000' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--commit-every cannot chunk the staging table public\.stg_dist: it is a Citus hash table/);
    assert.equal(await count('orders_from_dist'), 0);
  });
});
