/**
 * --config FILE and --profile FILE: what they hold is checked by a schema and an error names the
 * file and the key. No database needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConnectionConfig, validateConfigFile } from '../../src/connect/config.js';
import { InvalidConfigurationError } from '../../src/errors.js';
import { validateProfile } from '../../src/plan/sharding-profile.js';
import { runCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cal-config-'));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

describe('--config FILE', () => {
  it('accepts every setting, nodeMap as a list or an object', () => {
    const p = file('ok.json', JSON.stringify({
      coordinator: 'postgres://u@db:5432/d', nodeMap: { 'w1:5432': '10.0.0.1:6432' },
      connectTimeout: 2, statementTimeout: 30, lockTimeout: 0.5,
    }));
    const c = resolveConnectionConfig({ configFile: p }, {});
    assert.equal(c.coordinator.host, 'db');
    assert.deepEqual(c.timeouts, { connectMs: 2000, statementMs: 30_000, lockMs: 500 });
    assert.deepEqual({ host: c.workerConfig({ host: 'w1', port: 5432 }).host, port: c.workerConfig({ host: 'w1', port: 5432 }).port }, { host: '10.0.0.1', port: 6432 });
    assert.deepEqual(validateConfigFile({ nodeMap: ['w1:5432=10.0.0.1:6432'] }, 'x.json'), { nodeMap: ['w1:5432=10.0.0.1:6432'] });
    // A flag still wins over the file.
    assert.equal(resolveConnectionConfig({ configFile: p, connectTimeout: 7 }, {}).timeouts.connectMs, 7000);
  });

  const refused: [unknown, RegExp][] = [
    [{ coordinater: 'postgres://db/d' }, /^config file x\.json: unknown key "coordinater" \(known: coordinator, nodeMap, connectTimeout, statementTimeout, lockTimeout\)$/],
    [{ connectTimeout: '5' }, /^config file x\.json: key "connectTimeout" must be a positive number of seconds, got "5"$/],
    [{ lockTimeout: 0 }, /key "lockTimeout" must be a positive number of seconds, got 0/],
    [{ coordinator: 5 }, /key "coordinator" must be a postgres:\/\/ URL/],
    [{ nodeMap: ['w1=10.0.0.1'] }, /^config file x\.json: key "nodeMap" must be a list of "name:port=host:port" strings or an object/],
    [{ nodeMap: { w1: '10.0.0.1:5432' } }, /key "nodeMap"/],
    [{ nodeMap: 'w1:1=h:2' }, /key "nodeMap"/],
    [['postgres://db/d'], /^config file x\.json must hold a JSON object, got \["postgres:\/\/db\/d"\]$/],
    [null, /must hold a JSON object, got null/],
  ];
  for (const [value, reason] of refused) {
    it(`refuses ${JSON.stringify(value)}, naming the file and the key`, () => {
      assert.throws(() => validateConfigFile(value, 'x.json'), (e: Error) => e instanceof InvalidConfigurationError && reason.test(e.message), JSON.stringify(value));
    });
  }
  it('reports every wrong key at once', () => {
    assert.throws(() => validateConfigFile({ connectTimeout: -1, extra: 1 }, 'x.json'), /key "connectTimeout".*; unknown key "extra"|unknown key "extra".*; key "connectTimeout"/);
  });

  it('the CLI exits 2 naming the file, before connecting', async () => {
    const p = file('typo.json', JSON.stringify({ coordinator: 'postgresql://u@127.0.0.1:1/d', statementTimeot: 5 }));
    const input = file('in.csv', '1,a\n');
    const r = await runCli(['--table', 't', '--config', p, '--json', input]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `citus-adaptive-load: config file ${p}: unknown key "statementTimeot" (known: coordinator, nodeMap, connectTimeout, statementTimeout, lockTimeout)\n`);
    assert.equal((r.json as { error: { kind: string } }).error.kind, 'InvalidConfigurationError');
    const unreadable = await runCli(['--table', 't', '--config', join(dir, 'missing.json'), input]);
    assert.equal(unreadable.status, 2);
    assert.match(unreadable.stderr, /cannot read config file .*missing\.json/);
  });
});

describe('--profile FILE', () => {
  it('an invalid profile is refused naming the file', () => {
    assert.throws(() => validateProfile({ version: 1 }, '/tmp/p.json'), (err: Error) => err instanceof InvalidConfigurationError && /^\/tmp\/p\.json is not a valid sharding profile: /.test(err.message));
  });
});
