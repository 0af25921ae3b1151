/**
 * Everything that needs no Citus, against real plain PostgreSQL instances: COPY streaming into
 * tables on several instances under one two-phase commit, recovery after a killed process, a
 * clear message when a node cannot prepare, and the bad-input list through the CLI.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { Batch } from '../../src/load/batch.js';
import { CopySession } from '../../src/load/copy-session.js';
import {
  checkPreparedTransactions, commitPreparedAll, globalTransactionIds, prepareAll, recoverPreparedTransactions,
} from '../../src/load/distributed-commit.js';
import { WriterPool, type CopyTarget } from '../../src/load/writer-pool.js';
import { Rejects } from '../../src/load/rejects.js';
import { migrate } from '../../src/store/migrate.js';
import { createLockedJob, recordCommittedJob } from '../../src/store/job-store.js';
import { DEFAULT_TIMEOUTS } from '../../src/connect/config.js';
import { ClusterStateError, InvalidConfigurationError } from '../../src/errors.js';
import { runCli } from '../support/cli.js';

const SETTINGS = { DateStyle: 'ISO, MDY', TimeZone: 'UTC', IntervalStyle: 'postgres' };

function batchOf(values: string[]): Batch {
  const b = new Batch(1024);
  values.forEach((v, i) => {
    const row = Buffer.from(`${v}\n`);
    b.append(row, 0, row.length, undefined, i + 1, 1);
  });
  return b;
}

describe('plain PostgreSQL: several instances, two-phase commit, recovery', () => {
  let cluster: LocalCluster;
  const count = async (url: string, table = 't') => Number((await withClient(url, (c) => c.query(`SELECT count(*) AS n FROM ${table}`))).rows[0].n);
  const prepared = async (url: string) => Number((await withClient(url, (c) => c.query('SELECT count(*) AS n FROM pg_prepared_xacts'))).rows[0].n);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, citus: false });
    for (const node of cluster.nodes) {
      await withClient(node.url, (c) => c.query('CREATE TABLE t (v int CHECK (v >= 0))'));
    }
    await withClient(cluster.coordinator.url, (c) => migrate(c));
  });
  after(async () => cluster?.stop());

  const openSessions = async (perNode: number) => {
    const sessions = new Map<string, CopySession[]>();
    for (const w of cluster.workers) {
      const list: CopySession[] = [];
      for (let i = 0; i < perNode; i++) {
        const s = await CopySession.open({ connectionString: w.url }, w.name, SETTINGS, 'test', DEFAULT_TIMEOUTS);
        await s.begin();
        list.push(s);
      }
      sessions.set(w.name, list);
    }
    return sessions;
  };

  it('streams batches into tables on several instances and commits them together', async () => {
    const sessions = await openSessions(2);
    const all = [...sessions.values()].flat();
    const targets: CopyTarget[] = cluster.workers.map((w, index) => ({ index, label: `t on ${w.name}`, shardId: undefined, copySql: 'COPY t (v) FROM STDIN', nodes: [w.name] }));
    const pool = new WriterPool(sessions, targets.length, 'test.csv', new Rejects('test.csv', 0, undefined));
    for (let k = 0; k < 40; k++) {
      pool.dispatch(targets[k % 2]!, batchOf(Array.from({ length: 250 }, (_, i) => String(k * 250 + i))), () => {});
      await pool.waitForRoom(4096);
    }
    await pool.drain();
    assert.deepEqual(pool.targetRows, [5000, 5000]);
    assert.equal(await count(cluster.workers[0]!.url), 0, 'invisible before commit');
    await withClient(cluster.coordinator.url, async (c) => {
      const jobId = await createLockedJob(c, { table: 't', source: 'test', path: 'direct', reason: undefined, options: {} });
      const gids = globalTransactionIds(jobId, all.length);
      await prepareAll(all, gids);
      await recordCommittedJob(c, jobId, { rows: 10_000, rejected: 0, bytes: 0, seconds: 0, shards: [], nodes: [] }, gids);
    });
    const outcome = await commitPreparedAll(all);
    assert.deepEqual(outcome.unfinished, []);
    await Promise.all(all.map((s) => s.close()));
    assert.equal(await count(cluster.workers[0]!.url), 5000);
    assert.equal(await count(cluster.workers[1]!.url), 5000);
  });

  it('a row one instance rejects rolls back every instance and names the input line', async () => {
    const before0 = await count(cluster.workers[0]!.url);
    const sessions = await openSessions(1);
    const all = [...sessions.values()].flat();
    const targets: CopyTarget[] = cluster.workers.map((w, index) => ({ index, label: `t on ${w.name}`, shardId: undefined, copySql: 'COPY t (v) FROM STDIN', nodes: [w.name] }));
    const pool = new WriterPool(sessions, 2, 'in.csv', new Rejects('in.csv', 0, undefined));
    pool.dispatch(targets[0]!, batchOf(['1', '2', '3']), () => {});
    const bad = batchOf(['4', '5', '-6']);
    bad.inputLines[2] = 77; // the row came from line 77 of the input
    pool.dispatch(targets[1]!, bad, () => {});
    await assert.rejects(pool.drain(), /in\.csv:77: .*violates check constraint/);
    await Promise.all(all.map(async (s) => { await s.abort(); await s.close(); }));
    assert.equal(await count(cluster.workers[0]!.url), before0);
    assert.equal(await prepared(cluster.workers[0]!.url), 0);
  });

  for (const step of ['after-prepare', 'after-commit-record'] as const) {
    it(`recovery after a process killed ${step.replace(/-/g, ' ')}`, async () => {
      const before = await count(cluster.workers[0]!.url);
      const jobId = await withClient(cluster.coordinator.url, (c) => createLockedJob(c, { table: 't', source: 'test', path: 'direct', reason: undefined, options: {} }));
      const script = fileURLToPath(new URL('../support/prepare-and-die.js', import.meta.url));
      const r = spawnSync(process.execPath, [script, cluster.coordinator.url, String(jobId), step, ...cluster.workers.map((w) => w.url)], { encoding: 'utf8' });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      assert.equal(await prepared(cluster.workers[0]!.url), 1);
      assert.equal(await count(cluster.workers[0]!.url), before, 'prepared rows are invisible');
      const result = await withClient(cluster.coordinator.url, (c) =>
        recoverPreparedTransactions(c, cluster.workers.map((w) => ({ label: w.name, config: { connectionString: w.url } })), DEFAULT_TIMEOUTS));
      const expectCommit = step === 'after-commit-record';
      assert.equal((expectCommit ? result.committed : result.rolledBack).length, 2);
      assert.equal(await prepared(cluster.workers[0]!.url), 0);
      assert.equal(await count(cluster.workers[0]!.url), before + (expectCommit ? 10 : 0));
      const status = await withClient(cluster.coordinator.url, (c) => c.query('SELECT status FROM adaptive_load.load_jobs WHERE job_id = $1', [jobId]));
      assert.equal(status.rows[0].status, expectCommit ? 'committed' : 'rolled_back');
    });
  }

  it('says what to set when a node has max_prepared_transactions = 0', async () => {
    const single = await LocalCluster.start({ workers: 0, citus: false, settings: { max_prepared_transactions: 0 } });
    try {
      const client = new pg.Client({ connectionString: single.coordinator.url });
      await client.connect();
      await assert.rejects(checkPreparedTransactions(client, 'node-x', 4),
        (err: Error) => err instanceof ClusterStateError && /node-x has max_prepared_transactions = 0.*Set max_prepared_transactions/.test(err.message));
      await client.end();
    } finally {
      await single.stop();
    }
  });
});

describe('plain PostgreSQL: the CLI and bad input', () => {
  let cluster: LocalCluster;
  let url: string;
  let dir: string;
  const load = (args: string[]) => runCli([...args, '--coordinator', url, '--json']);
  const count = async () => Number((await withClient(url, (c) => c.query('SELECT count(*) AS n FROM items'))).rows[0].n);
  const file = (name: string, content: string | Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    url = cluster.coordinator.url;
    dir = mkdtempSync(join(tmpdir(), 'cal-plain-test-'));
    await withClient(url, (c) => c.query(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int CHECK (qty >= 0))`));
  });
  after(async () => cluster?.stop());

  it('loads through the coordinator, detects the header, and says why it did not go direct', async () => {
    const r = await load(['--table', 'items', file('ok.csv', 'id,name,qty\n1,apple,3\n2,"pear, green",0\n')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.path, 'coordinator');
    assert.match(String(r.json?.reason), /citus extension is not installed/);
    assert.equal(r.json?.rows, 2);
    assert.equal(r.json?.header, true);
    const t = await load(['--table', 'items', '--format', 'text', file('ok.tsv', '3\tplum\t\\N\n4\tfig\t1\n')]);
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.json?.header, false);
    assert.equal(await count(), 4);
  });

  const badInputs: { name: string; args: (f: (n: string, c: string | Buffer) => string) => string[]; pattern: RegExp; exit?: number }[] = [
    { name: 'missing file', args: () => ['--table', 'items', join('/nonexistent', 'x.csv')], pattern: /x\.csv: no such file/ },
    { name: 'empty file', args: (f) => ['--table', 'items', f('empty.csv', '')], pattern: /empty\.csv is empty/ },
    { name: 'missing table', args: (f) => ['--table', 'nope', f('a.csv', '9,x,1\n')], pattern: /table nope does not exist/ },
    { name: 'missing column', args: (f) => ['--table', 'items', '--columns', 'id,nom,qty', f('b.csv', '9,x,1\n')], pattern: /--columns names "nom", which is not a column/ },
    { name: 'header naming an unknown column', args: (f) => ['--table', 'items', '--header', f('h.csv', 'id,nom,qty\n9,x,1\n')], pattern: /h\.csv:1: header names "nom"/ },
    { name: 'unterminated quote', args: (f) => ['--table', 'items', f('q.csv', '9,x,1\n10,"y,2\n11,z,3\n')], pattern: /q\.csv:2: unterminated CSV quoted field/ },
    { name: 'wrong field count', args: (f) => ['--table', 'items', f('c.csv', '9,x,1\n10,y\n')], pattern: /c\.csv:2: missing data: expected 3 fields, found 2/ },
    { name: 'value of the wrong type', args: (f) => ['--table', 'items', f('t.csv', '9,x,1\n10,y,many\n')], pattern: /t\.csv:2 column qty: invalid input syntax for type integer: "many"/ },
    { name: 'invalid encoding', args: (f) => ['--table', 'items', f('e.csv', Buffer.concat([Buffer.from('9,x,1\n10,'), Buffer.from([0xff, 0xfe]), Buffer.from(',2\n')]))], pattern: /e\.csv:2.*invalid byte sequence for encoding "UTF8"/ },
    { name: 'NOT NULL violation', args: (f) => ['--table', 'items', f('n.csv', '9,x,1\n10,,2\n')], pattern: /n\.csv:2.*null value in column "name"/ },
    { name: 'unique violation', args: (f) => ['--table', 'items', f('u.csv', '9,x,1\n1,dup,2\n')], pattern: /u\.csv:2.*duplicate key value violates unique constraint/ },
    { name: 'check violation', args: (f) => ['--table', 'items', f('k.csv', '9,x,1\n10,y,-2\n')], pattern: /k\.csv:2.*violates check constraint/ },
    { name: 'bad option', args: (f) => ['--table', 'items', '--delimiter', ';;', f('o.csv', '9,x,1\n')], pattern: /--delimiter must be a single ASCII character/, exit: 2 },
    { name: 'an unknown format', args: (f) => ['--table', 'items', '--format', 'xml', f('x.csv', '9,x,1\n')], pattern: /--format.*xml.*is invalid/, exit: 2 },
    { name: 'an unknown option', args: (f) => ['--table', 'items', '--frobnicate', f('x.csv', '9,x,1\n')], pattern: /unknown option '--frobnicate'/, exit: 2 },
    { name: 'a missing file argument', args: () => ['--table', 'items'], pattern: /give an input file, or a table to load from with --from-table/, exit: 2 },
    { name: 'a malformed table name', args: (f) => ['--table', 'items;drop', f('x.csv', '9,x,1\n')], pattern: /--table "items;drop" is not a valid table name/, exit: 2 },
    { name: 'a table name with too many parts', args: (f) => ['--table', 'db.public.items', f('x.csv', '9,x,1\n')], pattern: /--table "db\.public\.items".*schema\.table/, exit: 2 },
    { name: 'a non-numeric --seed', args: (f) => ['--table', 'items', '--seed', 'abc', f('x.csv', '9,x,1\n')], pattern: /option '--seed <n>' argument 'abc' is invalid\. It must be an integer/, exit: 2 },
    { name: 'duplicate --columns', args: (f) => ['--table', 'items', '--columns', 'id,name,id', f('d.csv', '9,x,1\n')], pattern: /--columns names "id" twice/, exit: 2 },
    { name: 'a header naming a column twice', args: (f) => ['--table', 'items', '--header', f('hh.csv', 'id,name,id\n9,x,1\n')], pattern: /hh\.csv:1: header names column id twice/ },
    { name: 'an unknown encoding', args: (f) => ['--table', 'items', '--encoding', 'BOGUS', f('x.csv', '9,x,1\n')], pattern: /--encoding "BOGUS" is not an encoding PostgreSQL knows/, exit: 2 },
    { name: '--rejects without --max-errors', args: (f) => ['--table', 'items', '--rejects', join(dir, 'r.jsonl'), f('x.csv', '9,x,1\n')], pattern: /--rejects needs --max-errors/, exit: 2 },
  ];

  for (const c of badInputs) {
    it(`rejects ${c.name} with a clear error and commits nothing`, async () => {
      const before = await count();
      const r = await load(c.args(file));
      assert.equal(r.status, c.exit ?? 1, r.stderr);
      assert.match(r.stderr, c.pattern);
      assert.equal((r.json as { ok?: boolean } | undefined)?.ok, false);
      assert.equal(await count(), before);
    });
  }

  it('sets aside up to --max-errors rows with their reasons and loads the rest', async () => {
    const before = await count();
    const rejects = join(dir, 'rejects.jsonl');
    const input = file('mixed.csv', 'id,name,qty\n100,a,1\n101,b,-1\n102,c,x\n103,d,4\n104,"e\n');
    const r = await load(['--table', 'items', '--max-errors', '3', '--rejects', rejects, input]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.rows, 2);
    assert.equal(r.json?.rejected, 3);
    const lines = readFileSync(rejects, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; reason: string; row: string });
    assert.deepEqual(lines.map((l) => l.line).sort(), [3, 4, 6]);
    assert.ok(lines.some((l) => l.row === '101,b,-1' && /check constraint/.test(l.reason)));
    assert.equal(await count(), before + 2);
    const tooMany = await load(['--table', 'items', '--max-errors', '1', file('mixed2.csv', '200,a,-1\n201,b,-1\n202,c,1\n')]);
    assert.equal(tooMany.status, 1);
    assert.match(tooMany.stderr, /mixed2\.csv:2.*more than --max-errors 1/);
    assert.equal(await count(), before + 2);
  });

  it('takes a header with an unknown column for a header and stops, instead of loading it as data', async () => {
    await withClient(url, (c) => c.query('CREATE TABLE notes (title text, body text, author text)'));
    const r = await load(['--table', 'notes', file('notes.csv', 'title,bdy,author\nx,y,z\n')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /notes\.csv:1: line 1 looks like a header, but "bdy" is not a column of public\.notes.*--no-header/);
    // Said outright, it is data.
    const data = await load(['--table', 'notes', '--no-header', file('notes2.csv', 'title,bdy,author\n')]);
    assert.equal(data.status, 0, data.stderr);
    assert.equal(data.json?.rows, 1);
  });

  it('resolves table names as psql does: unquoted folds to lower case, quoted keeps case, schema.table splits', async () => {
    await withClient(url, (c) => c.query(`CREATE TABLE rt_newmixed (v int); CREATE TABLE "Mixed Case" (v int);
      CREATE SCHEMA "my.schema"; CREATE TABLE "my.schema"."we""ird" (v int); CREATE SCHEMA s1; CREATE TABLE s1."T" (v int)`));
    const cases: [string, string][] = [
      ['rt_NewMixed', 'rt_newmixed'], ['RT_NEWMIXED', 'rt_newmixed'], ['"Mixed Case"', '"Mixed Case"'],
      ['"my.schema"."we""ird"', '"my.schema"."we""ird"'], ['S1."T"', 's1."T"'],
    ];
    const rows = async (table: string) => Number((await withClient(url, (c) => c.query(`SELECT count(*) AS n FROM ${table}`))).rows[0].n);
    for (const [arg, table] of cases) {
      const before = await rows(table);
      const r = await load(['--table', arg, file('v.csv', '1\n2\n')]);
      assert.equal(r.status, 0, `${arg}: ${r.stderr}`);
      assert.equal(r.json?.rows, 2);
      assert.equal(await rows(table), before + 2, arg);
    }
    const missing = await load(['--table', '"RT_NEWMIXED"', file('v.csv', '1\n')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /table "RT_NEWMIXED" does not exist/);
  });

  it('a format option from a request cannot inject SQL', async () => {
    const { load: loadFile } = await import('../../src/pipeline/loader.js');
    const hostile = 'csv) ; CREATE TABLE pwned (); --';
    await assert.rejects(loadFile({ table: 'items', file: file('inj.csv', '9,x,1\n'), connection: { coordinator: url }, format: hostile as 'csv' }),
      (e: Error) => e instanceof InvalidConfigurationError && /format must be csv or text/.test(e.message));
    assert.equal((await withClient(url, (c) => c.query("SELECT to_regclass('pwned') AS t"))).rows[0].t, null);
  });

  it('writes a rejected row that is not UTF-8 to the rejects file byte for byte', async () => {
    const rejects = join(dir, 'latin1-rejects.jsonl');
    const bad = Buffer.from([0x33, 0x30, 0x30, 0x2c, 0x63, 0x61, 0x66, 0xe9, 0x2c, 0x2d, 0x31]); // 300,caf\xe9,-1 in LATIN1
    const input = file('latin1.csv', Buffer.concat([Buffer.from('301,ok,1\n'), bad, Buffer.from('\n')]));
    const r = await load(['--table', 'items', '--encoding', 'LATIN1', '--max-errors', '1', '--rejects', rejects, input]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json?.rejected, 1);
    const line = JSON.parse(readFileSync(rejects, 'utf8').trim()) as { row?: string; rowBase64?: string; reason: string };
    assert.equal(line.row, undefined);
    assert.deepEqual(Buffer.from(line.rowBase64 ?? '', 'base64'), bad);
    assert.match(line.reason, /check constraint/);
  });

  it('knows every encoding name it accepts as PostgreSQL does', async () => {
    const { CLIENT_ENCODING_NAMES } = await import('../../src/input/copy-format.js');
    const r = await withClient(url, (c) => c.query<{ name: string }>('SELECT name FROM unnest($1::text[]) AS name WHERE pg_char_to_encoding(name) < 0', [[...CLIENT_ENCODING_NAMES]]));
    assert.deepEqual(r.rows.map((x) => x.name), []);
  });

  it('records failed loads in the job table', async () => {
    const r = await withClient(url, (c) => c.query("SELECT count(*)::int AS n FROM adaptive_load.load_jobs WHERE status = 'failed' AND error IS NOT NULL"));
    assert.ok(r.rows[0].n >= 5);
  });
});
