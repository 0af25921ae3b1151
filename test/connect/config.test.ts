/** Connection strings in both libpq forms, timeouts and their precedence, and passwords that never show. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConnectionConfig } from '../../src/connect/config.js';
import { parseKeywords, redactConninfo } from '../../src/connect/conninfo.js';
import { runCli } from '../support/cli.js';

describe('connection strings', () => {
  it('reads libpq keyword/value strings, quoted values and escapes included', () => {
    const kv = parseKeywords(`host=db1 port = 6432 dbname='my db' user=app password='s3 \\'cret\\\\' connect_timeout=4`);
    assert.deepEqual(Object.fromEntries(kv), { host: 'db1', port: '6432', dbname: 'my db', user: 'app', password: "s3 'cret\\", connect_timeout: '4' });
    const c = resolveConnectionConfig({ coordinator: `host=db1 port=6432 dbname='my db' user=app password='s3 \\'cret\\\\'` }, {});
    assert.equal(c.coordinator.host, 'db1');
    assert.equal(c.coordinator.port, 6432);
    assert.equal(c.coordinator.database, 'my db');
    assert.equal(c.coordinator.user, 'app');
    assert.equal(c.coordinator.password, "s3 'cret\\");
    assert.equal(c.describe(c.coordinator), 'app@db1:6432/my db');
  });

  it('refuses unknown keywords and malformed strings without repeating them', () => {
    assert.throws(() => parseKeywords('host=a passwrd=x'), /invalid keyword "passwrd"/);
    assert.throws(() => parseKeywords("host=a password='open"), (e: Error) => !e.message.includes('open') && /unterminated/.test(e.message));
    assert.throws(() => parseKeywords('hostdb1'), /missing "="/);
  });

  it('takes connect_timeout from flags, then the string, then PGCONNECT_TIMEOUT, else 10 s', () => {
    assert.equal(resolveConnectionConfig({}, {}).timeouts.connectMs, 10_000);
    assert.equal(resolveConnectionConfig({}, { PGCONNECT_TIMEOUT: '7' }).timeouts.connectMs, 7_000);
    assert.equal(resolveConnectionConfig({ coordinator: 'postgres://u@h/d?connect_timeout=3' }, { PGCONNECT_TIMEOUT: '7' }).timeouts.connectMs, 3_000);
    assert.equal(resolveConnectionConfig({ coordinator: 'host=h connect_timeout=5' }, {}).timeouts.connectMs, 5_000);
    const flagged = resolveConnectionConfig({ coordinator: 'host=h connect_timeout=5', connectTimeout: 2, statementTimeout: 9, lockTimeout: 1.5 }, {});
    assert.deepEqual(flagged.timeouts, { connectMs: 2_000, statementMs: 9_000, lockMs: 1_500 });
    assert.equal(flagged.coordinator.connectionTimeoutMillis, 2_000);
    assert.equal(flagged.coordinator.keepAlive, true);
    // Workers get the same bounds; only the address differs.
    assert.equal(flagged.workerConfig({ host: 'w1', port: 5433 }).connectionTimeoutMillis, 2_000);
    assert.throws(() => resolveConnectionConfig({ connectTimeout: Number('abc') }, {}), /--connect-timeout must be a positive number/);
    assert.throws(() => resolveConnectionConfig({}, { PGCONNECT_TIMEOUT: '-1' }), /PGCONNECT_TIMEOUT/);
  });

  it('redacts passwords in both forms', () => {
    assert.equal(redactConninfo('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
    assert.equal(redactConninfo('postgres://u@h/d?password=secret&x=1'), 'postgres://u@h/d?password=***&x=1');
    assert.equal(redactConninfo("host=h password='se cret' user=u"), 'host=h password=*** user=u');
    assert.equal(redactConninfo('host=h password=secret'), 'host=h password=***');
  });

  it('never prints the password of a keyword/value --coordinator, on stderr or in --json', async () => {
    // Port 1 on loopback refuses at once: the load fails at connect and reports where it tried.
    const file = join(mkdtempSync(join(tmpdir(), 'cal-conninfo-')), 'in.csv');
    writeFileSync(file, '1,a\n');
    const r = await runCli(['--table', 't', '--coordinator', 'host=127.0.0.1 port=1 user=u password=hunter2 dbname=d',
      '--json', '--connect-timeout', '2', file]);
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2/);
    assert.match(r.stderr, /u@127\.0\.0\.1:1\/d/);
  });
});
