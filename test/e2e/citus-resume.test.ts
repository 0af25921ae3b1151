/**
 * Chunked, resumable loads (--commit-every, --resume) on a real Citus cluster: a load killed
 * (SIGKILL) at random points, ten times in a row and resumed each time, ends with every source
 * row in the table exactly once, compared with a plain COPY of the same file into a reference
 * table by count and by a checksum per key, and with no prepared transaction left on any node;
 * a changed source is refused; rejected rows are listed once across resumes and --max-errors
 * counts over the whole job; a chunked load equals a one-transaction load.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pgCopyStreams from 'pg-copy-streams';
import { citusUnavailableReason, LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { generateOrdersCsv, ORDERS_DDL } from '../../scripts/generate-orders.js';
import { checkPlacements } from '../../scripts/verify-placements.js';
import { runCli } from '../support/cli.js';
import { mulberry32 } from '../../src/plan/random.js';
import { runChild, type ChildArgs, type ChildResult } from '../support/chunked-child.js';

const skip = citusUnavailableReason();
if (skip) console.log(`Citus resume suite skipped: ${skip}.`);

describe('Citus resume suite: chunked loads, each row exactly once', { skip }, () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const sql = async (text: string, values?: unknown[]) => withClient(url, (c) => c.query(text, values));
  const count = async (table: string) => Number((await sql(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  /** Every prepared transaction on every node, ours or not. */
  const preparedLeft = async () => {
    let n = 0;
    for (const node of cluster.nodes) n += (await withClient(node.url, (c) => c.query('SELECT count(*)::int AS n FROM pg_prepared_xacts'))).rows[0].n;
    return n;
  };
  const createOrders = async (table: string, distributed = true) => {
    await sql(ORDERS_DDL.replace('orders', table));
    if (distributed) await sql(`SELECT create_distributed_table('${table}', 'customer_id', shard_count => 8)`);
  };
  /** The reference: PostgreSQL's own COPY of the same file into a local table. */
  const copyReference = async (table: string, file: string) => {
    await createOrders(table, false);
    await withClient(url, async (c) => {
      await pipeline(createReadStream(file), c.query(pgCopyStreams.from(`COPY ${table} FROM STDIN WITH (FORMAT csv, HEADER true)`)));
    });
  };
  /** Per customer: row count and a sum of hashes of whole rows; equal maps mean equal multisets, with overwhelming likelihood. */
  const checksums = async (table: string) => {
    const r = await sql(`SELECT customer_id::text AS k, count(*)::int AS n, sum(hashtext(t::text)::bigint)::text AS h FROM ${table} t GROUP BY 1`);
    return new Map(r.rows.map((x) => [x.k as string, `${x.n}:${x.h}`]));
  };
  const assertSameRows = async (table: string, reference: string) => {
    assert.equal(await count(table), await count(reference), 'row count differs from the plain COPY');
    const got = await checksums(table);
    const want = await checksums(reference);
    const differing = [...want].filter(([k, v]) => got.get(k) !== v).map(([k]) => k);
    assert.equal(got.size, want.size, 'keys differ from the plain COPY');
    assert.deepEqual(differing.slice(0, 10), [], `${differing.length} key(s) whose rows differ from the plain COPY`);
  };
  /** The manifest covers the input without gaps or overlaps, from 0 to its end. */
  const assertManifest = async (jobId: number, fileBytes: number) => {
    const chunks = (await sql('SELECT chunk, start_offset::bigint AS s, end_offset::bigint AS e FROM adaptive_load.load_chunks WHERE job_id = $1 ORDER BY chunk', [jobId])).rows;
    assert.ok(chunks.length > 1, 'a chunked load has more than one chunk');
    let at = 0;
    chunks.forEach((c, i) => {
      assert.equal(c.chunk, i);
      assert.equal(Number(c.s), at, `chunk ${i} starts where chunk ${i - 1} ended`);
      at = Number(c.e);
    });
    assert.equal(at, fileBytes, 'the last chunk ends at the end of the file');
    return chunks.length;
  };

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: true });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-resume-test-'));
  });
  after(async () => cluster?.stop());

  it('killed ten times at random points and resumed each time, loads every row exactly once', async () => {
    const file = join(dir, 'orders.csv');
    await generateOrdersCsv(file, { rows: 400_000, customers: 20_000, skew: 1.0, seed: 11 });
    await createOrders('orders_chunked');
    await copyReference('orders_ref', file);
    const seed = Number(process.env.RESUME_TEST_SEED ?? Date.now() % 100_000);
    console.log(`resume test seed ${seed} (RESUME_TEST_SEED=${seed} replays it)`);
    const rnd = mulberry32(seed);
    const base: ChildArgs = { coordinator: url, table: 'orders_chunked', file, commitEvery: '5000' };
    // 80 chunks: ten runs that each commit a few at most leave most of the file to the last resume,
    // so every run is killed mid-load even on a fast machine.
    // Each kind of death at least three times: before a chunk's record (it must roll back), after
    // it (recovery must commit it), and at a random moment (connecting, streaming, committing...).
    const kinds = ['commit-recorded', 'prepared', 'random', 'commit-recorded', 'random', 'prepared', 'random', 'commit-recorded', 'prepared', 'random'];
    const jobIds = new Set<number>();
    let kills = 0;
    let finished: ChildResult | undefined;
    for (const [i, kind] of kinds.entries()) {
      const args: ChildArgs = { ...base, ...(i > 0 ? { resume: true } : {}) };
      const r = kind === 'random'
        ? await runChild(args, { killAfterLockedMs: Math.floor(rnd() * 200) })
        : await runChild({ ...args, diePhase: kind as ChildArgs['diePhase'], dieAt: 1 + Math.floor(rnd() * 2) });
      assert.equal(r.hung, false, `run ${i} hung: ${r.stderr}`);
      if (r.signal === 'SIGKILL') {
        kills++;
        // An unfinished job's progress: what the manifest holds, and a file's bytes still to load.
        const progress = (await sql(`SELECT chunks_done::int AS d, bytes_left::bigint AS b,
                                            (SELECT coalesce(max(end_offset), 0) FROM adaptive_load.load_chunks c WHERE c.job_id = l.job_id)::bigint AS e
                                       FROM adaptive_load.loads l WHERE table_name = 'public.orders_chunked'`)).rows[0];
        if (progress && progress.d > 0) assert.equal(Number(progress.b), statSync(file).size - Number(progress.e), `bytes left after kill ${kills}`);
        continue;
      }
      assert.equal(r.status, 0, `run ${i} (${kind}) failed: ${r.stderr}`);
      finished = r; // a random kill came after the end: nothing left to resume
      break;
    }
    assert.ok(kills >= 8, `the load was killed ${kills} times; it should have been killed (nearly) every time`);
    const jobsBefore = (await sql("SELECT job_id::int AS id, status FROM adaptive_load.load_jobs WHERE table_name = 'public.orders_chunked'")).rows;
    assert.equal(jobsBefore.length, 1, 'every resume continued the one job');
    if (!finished) {
      finished = await runChild({ ...base, resume: true });
      assert.equal(finished.status, 0, finished.stderr);
    }
    const summary = finished.summary!;
    jobIds.add(summary.jobId as number);
    assert.deepEqual([...jobIds], [jobsBefore[0].id], 'the resumed job keeps its id');
    const chunks = summary.chunks as { done: number; left: number; bytesLeft: number };
    assert.equal(chunks.left, 0);
    assert.equal(chunks.bytesLeft, 0);
    assert.equal(summary.rows, 400_000, 'the summary counts the whole job');

    assert.equal(await preparedLeft(), 0, 'no prepared transaction may be left on any node');
    await assertSameRows('orders_chunked', 'orders_ref');
    assert.deepEqual((await checkPlacements(url, 'orders_chunked')).misplaced, []);
    const done = await assertManifest(jobsBefore[0].id, statSync(file).size);
    assert.equal(chunks.done, done);
    const view = (await sql('SELECT status, chunks_done::int AS d, chunks_left::int AS l, bytes_left::bigint AS b, rows_loaded::bigint AS r FROM adaptive_load.loads WHERE job_id = $1', [jobsBefore[0].id])).rows[0];
    assert.deepEqual({ ...view, b: Number(view.b), r: Number(view.r) }, { status: 'committed', d: done, l: 0, b: 0, r: 400_000 });
    const shardSum = (await sql('SELECT sum(rows_loaded)::bigint AS n FROM adaptive_load.load_shards WHERE job_id = $1', [jobsBefore[0].id])).rows[0].n;
    assert.equal(Number(shardSum), 400_000, 'load_shards sums every chunk of every run');
  });

  it('refuses to load a half-loaded file again from its start unless told to (--resume continues, --restart reloads)', async () => {
    const file = join(dir, 'half.csv');
    await generateOrdersCsv(file, { rows: 30_000, customers: 2_000, seed: 9 });
    await createOrders('orders_half');
    const args: ChildArgs = { coordinator: url, table: 'orders_half', file, commitEvery: '5000' };
    const killed = await runChild({ ...args, diePhase: 'commit-recorded', dieAt: 2 });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    // The second chunk's record was written: recovery (at the next start) commits it.
    const again = await runChild(args);
    assert.equal(again.status, 1);
    const said = /job \d+ loaded 2 chunk\(s\) \((\d+) rows\) of .*half\.csv into public\.orders_half and stopped .*loading it again from the start would load those rows twice\. Add --resume .* or --restart/.exec(again.stderr);
    assert.ok(said, again.stderr);
    const committed = Number(said[1]);
    assert.ok(committed >= 10_000 && committed < 10_200, `two chunks of 5000 rows: ${committed}`);
    assert.equal(await count('orders_half'), committed, 'the refused run loaded nothing');
    const restarted = await runChild({ ...args, restart: true });
    assert.equal(restarted.status, 0, restarted.stderr);
    assert.equal(await count('orders_half'), committed + 30_000, '--restart loads the whole file again, as asked');
    // The job it restarted is superseded: nothing resumes it, and a plain run is not refused for it.
    const old = (await sql("SELECT status FROM adaptive_load.load_jobs WHERE table_name = 'public.orders_half' ORDER BY job_id LIMIT 1")).rows[0];
    assert.equal(old.status, 'superseded');
    const resumeNow = await runChild({ ...args, resume: true });
    assert.equal(resumeNow.status, 1);
    assert.match(resumeNow.stderr, /no unfinished chunked load of .*half\.csv into public\.orders_half to resume/);
    assert.equal(await preparedLeft(), 0);
  });

  it('refuses to resume from a source that changed, and says how', async () => {
    const file = join(dir, 'changing.csv');
    await generateOrdersCsv(file, { rows: 60_000, customers: 2_000, seed: 5 });
    // A whole-second mtime, which utimes can put back exactly (the file system keeps nanoseconds).
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    utimesSync(file, mtime, mtime);
    await createOrders('orders_changing');
    const args: ChildArgs = { coordinator: url, table: 'orders_changing', file, commitEvery: '256kB' };
    const killed = await runChild({ ...args, diePhase: 'commit-recorded', dieAt: 2 });
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const st = statSync(file);

    // The same size and mtime, other bytes at the end: only the last block's hash can tell.
    const bytes = readFileSync(file);
    const edited = Buffer.from(bytes);
    const at = edited.lastIndexOf(Buffer.from('\n'), edited.length - 2) + 1;
    edited[at] = edited[at] === 0x31 ? 0x32 : 0x31; // a digit of the last row's order id
    writeFileSync(file, edited);
    utimesSync(file, st.atime, mtime);
    let r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot resume job \d+: the source changed since it started: its last 64 KiB differ/);

    // Rows appended: the size says it.
    writeFileSync(file, bytes);
    appendFileSync(file, '999999999,1,1.00,paid,2024-01-01 00:00:00+00,\n');
    r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the source changed since it started: its size changed from \d+ to \d+ bytes/);

    // Put back exactly (bytes and mtime): the resume, naming the job, goes through and finishes it.
    writeFileSync(file, bytes);
    utimesSync(file, st.atime, mtime);
    const jobId = (await sql("SELECT job_id::int AS id FROM adaptive_load.load_jobs WHERE table_name = 'public.orders_changing'")).rows[0].id as number;
    assert.equal((await sql('SELECT status FROM adaptive_load.load_jobs WHERE job_id = $1', [jobId])).rows[0].status, 'interrupted');
    r = await runChild({ ...args, resume: jobId + 1000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`there is no load job ${jobId + 1000}`));
    r = await runChild({ ...args, resume: jobId });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.summary?.jobId, jobId);
    r = await runChild({ ...args, resume: jobId });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /it is committed already/);
    assert.equal(await count('orders_changing'), 60_000);
    assert.equal(await preparedLeft(), 0);
  });

  it('resumes a gzip input by decompressing and skipping to the chunk\'s offset', async () => {
    const plain = join(dir, 'gz-source.csv');
    await generateOrdersCsv(plain, { rows: 60_000, customers: 2_000, seed: 21 });
    const file = join(dir, 'orders.csv.gz');
    writeFileSync(file, gzipSync(readFileSync(plain)));
    await copyReference('gz_ref', plain);
    await createOrders('orders_gz');
    const args: ChildArgs = { coordinator: url, table: 'orders_gz', file, commitEvery: '512kB' };
    let r = await runChild({ ...args, diePhase: 'commit-recorded', dieAt: 2 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    r = await runChild({ ...args, resume: true, diePhase: 'prepared', dieAt: 2 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.summary?.chunks as { resumedFrom?: { chunk: number } }).resumedFrom?.chunk, 3, 'resumed after the three committed chunks');
    await assertSameRows('orders_gz', 'gz_ref');
    // Offsets are the decompressed input's.
    await assertManifest(r.summary?.jobId as number, statSync(plain).size);
    assert.equal(await preparedLeft(), 0);
  });

  it('lists each rejected row once across resumes, and counts --max-errors over the whole job', async () => {
    const clean = join(dir, 'clean.csv');
    await generateOrdersCsv(clean, { rows: 40_000, customers: 2_000, seed: 9 });
    const lines = readFileSync(clean, 'utf8').split('\n');
    // Bad rows (too few fields) every 1000th data row: line numbers are the file's (header = line 1).
    const badLines: number[] = [];
    for (let line = 2; line <= 40_001; line++) {
      if ((line - 2) % 1000 === 500) {
        lines[line - 1] = `bad row at line ${line}`;
        badLines.push(line);
      }
    }
    const file = join(dir, 'with-bad-rows.csv');
    writeFileSync(file, lines.join('\n'));
    const refLines = readFileSync(clean, 'utf8').split('\n').filter((_, i) => !badLines.includes(i + 1));
    const refFile = join(dir, 'without-bad-rows.csv');
    writeFileSync(refFile, refLines.join('\n'));
    await copyReference('rejects_ref', refFile);

    await createOrders('orders_rejects');
    const rejectsFile = join(dir, 'rejects.jsonl');
    const args: ChildArgs = { coordinator: url, table: 'orders_rejects', file, commitEvery: '256kB', maxErrors: badLines.length, rejectsFile };
    // Killed after a record (the chunk's rejects stay), before one (its rejects are cut off the file), then at random.
    let r = await runChild({ ...args, diePhase: 'commit-recorded', dieAt: 2 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    r = await runChild({ ...args, resume: true, diePhase: 'prepared', dieAt: 2 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    r = await runChild({ ...args, resume: true, diePhase: 'prepared', dieAt: 1 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    r = await runChild({ ...args, resume: true });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.summary?.rejected, badLines.length, 'the summary counts the whole job\'s rejects');
    const listed = readFileSync(rejectsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; row: string });
    assert.deepEqual(listed.map((x) => x.line).sort((a, b) => a - b), badLines, 'each bad row listed exactly once');
    for (const x of listed) assert.equal(x.row, `bad row at line ${x.line}`);
    await assertSameRows('orders_rejects', 'rejects_ref');
    assert.equal(await preparedLeft(), 0);

    // One fewer allowed than the file holds: the resumed run alone sees fewer than that, the job more.
    await createOrders('orders_rejects_max');
    const maxArgs: ChildArgs = { ...args, table: 'orders_rejects_max', maxErrors: badLines.length - 1, rejectsFile: join(dir, 'rejects-max.jsonl') };
    r = await runChild({ ...maxArgs, diePhase: 'commit-recorded', dieAt: 3 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const committedRejects = Number((await sql(
      "SELECT sum(c.rows_rejected)::int AS n FROM adaptive_load.load_chunks c JOIN adaptive_load.load_jobs j USING (job_id) WHERE j.table_name = 'public.orders_rejects_max'")).rows[0].n ?? 0);
    assert.ok(committedRejects >= 2, `the killed run committed chunks holding ${committedRejects} rejected rows`);
    r = await runChild({ ...maxArgs, resume: true });
    assert.equal(r.status, 1, 'the job rejects more rows than --max-errors allows');
    assert.match(r.stderr, new RegExp(`more than --max-errors ${badLines.length - 1}`));
    assert.equal(await preparedLeft(), 0);
  });

  it('a chunked load without a crash equals a one-transaction load', async () => {
    const file = join(dir, 'plain.csv');
    await generateOrdersCsv(file, { rows: 80_000, customers: 3_000, seed: 3 });
    await createOrders('orders_one');
    await createOrders('orders_many');
    const one = await runCli(['--table', 'orders_one', file, '--coordinator', url, '--json']);
    assert.equal(one.status, 0, one.stderr);
    assert.equal(one.json?.chunks, undefined, 'no chunks without --commit-every');
    const many = await runCli(['--table', 'orders_many', file, '--commit-every', '512kB', '--coordinator', url, '--json']);
    assert.equal(many.status, 0, many.stderr);
    const chunks = many.json?.chunks as { done: number; left: number; thisRun: number };
    assert.equal(chunks.left, 0);
    assert.equal(chunks.thisRun, chunks.done);
    assert.equal(await assertManifest(many.json?.jobId as number, statSync(file).size), chunks.done);
    await assertSameRows('orders_many', 'orders_one');
    assert.deepEqual((await checkPlacements(url, 'orders_many')).misplaced, []);
    const oneJob = (await sql('SELECT count(*)::int AS n FROM adaptive_load.commit_records WHERE job_id = $1', [one.json?.jobId])).rows[0].n;
    assert.equal(oneJob, 1, 'a one-transaction load has one commit record, as before');

    // Through the coordinator (Citus's COPY): each chunk is one coordinator transaction with its manifest row.
    await createOrders('orders_coord');
    const coord = await runCli(['--table', 'orders_coord', file, '--commit-every', '1MB', '--via-coordinator', '--coordinator', url, '--json']);
    assert.equal(coord.status, 0, coord.stderr);
    assert.equal(coord.json?.path, 'coordinator');
    assert.equal(await assertManifest(coord.json?.jobId as number, statSync(file).size), (coord.json?.chunks as { done: number }).done);
    await assertSameRows('orders_coord', 'orders_one');

    // The text summary says the chunks too.
    await createOrders('orders_text');
    const text = await runCli(['--table', 'orders_text', file, '--commit-every', '2MB', '--coordinator', url]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^chunks: \d+ committed \(\d+ by this run, 80,000 rows\), 0 left$/m);

    // Rows mode, and stdin: chunked (no resume possible, so no fingerprint).
    await createOrders('orders_stdin');
    const viaStdin = await runCli(['--table', 'orders_stdin', '-', '--commit-every', '20000', '--coordinator', url, '--json'], { input: readFileSync(file) });
    assert.equal(viaStdin.status, 0, viaStdin.stderr);
    assert.ok((viaStdin.json?.chunks as { done: number }).done >= 4);
    await assertSameRows('orders_stdin', 'orders_one');
    const resumeStdin = await runCli(['--table', 'orders_stdin', '-', '--commit-every', '20000', '--resume', '--coordinator', url, '--json']);
    assert.notEqual(resumeStdin.status, 0);
    assert.match(resumeStdin.stderr, /--resume needs the input as a file: stdin cannot be read again/);
  });
});
