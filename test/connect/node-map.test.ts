/**
 * Node labels (`host:port`, hosts that contain ':' too) and --node-map rewrites
 * (`name:port=host:port`) from flags and from the config file. Pure: no database.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNodeLabel, resolveConnectionConfig } from '../../src/connect/config.js';
import { InvalidConfigurationError } from '../../src/errors.js';

describe('parseNodeLabel', () => {
  it('splits at the last colon, so IPv6 hosts keep theirs', () => {
    assert.deepEqual(parseNodeLabel('worker1:5432'), { host: 'worker1', port: 5432 });
    assert.deepEqual(parseNodeLabel('10.0.0.7:6432'), { host: '10.0.0.7', port: 6432 });
    assert.deepEqual(parseNodeLabel('::1:5433'), { host: '::1', port: 5433 });
    assert.deepEqual(parseNodeLabel('fe80::1:9700'), { host: 'fe80::1', port: 9700 });
  });

  it('does not validate: an empty port reads as 0 (Number(\'\')), so only labels built as host:port may be passed', () => {
    // Pins today's behaviour so a change to it is seen; the labels come from pg_dist_node.
    assert.deepEqual(parseNodeLabel('worker1:'), { host: 'worker1', port: 0 });
  });
});

describe('--node-map', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cal-node-map-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rewrites the advertised address of mapped nodes and leaves the others alone', () => {
    const c = resolveConnectionConfig({
      coordinator: 'postgres://app:secret@coord:5432/db',
      nodeMap: ['worker1:5432=localhost:5433', ' worker2:5432=127.0.0.1:5434 '],
    }, {});
    const w1 = c.workerConfig({ host: 'worker1', port: 5432 });
    assert.equal(w1.host, 'localhost');
    assert.equal(w1.port, 5433);
    // Same credentials and database as the coordinator: only the address differs.
    assert.equal(w1.user, 'app');
    assert.equal(w1.password, 'secret');
    assert.equal(w1.database, 'db');
    assert.deepEqual([c.workerConfig({ host: 'worker2', port: 5432 }).host, c.workerConfig({ host: 'worker2', port: 5432 }).port], ['127.0.0.1', 5434]);
    // The port is part of the name: worker1:5433 is another node.
    assert.deepEqual([c.workerConfig({ host: 'worker1', port: 5433 }).host, c.workerConfig({ host: 'worker1', port: 5433 }).port], ['worker1', 5433]);
  });

  it('maps IPv6 names and targets (the port is after the last colon)', () => {
    const c = resolveConnectionConfig({ nodeMap: ['fd00::5:5432=::1:6000'] }, {});
    const w = c.workerConfig({ host: 'fd00::5', port: 5432 });
    assert.deepEqual([w.host, w.port], ['::1', 6000]);
  });

  it('refuses entries that are not name:port=host:port, with the typed error naming the entry', () => {
    for (const bad of ['worker1=localhost:5433', 'worker1:5432=localhost', 'worker1:5432', 'worker1:x=localhost:5433', '']) {
      assert.throws(() => resolveConnectionConfig({ nodeMap: [bad] }, {}), (e: unknown) => {
        assert.ok(e instanceof InvalidConfigurationError, String(e));
        assert.match(e.message, /--node-map expects name:port=host:port/);
        assert.ok(e.message.includes(JSON.stringify(bad)));
        return true;
      }, bad);
    }
  });

  it('reads the config file as a list or an object, and flags override it for the same node', () => {
    const asList = join(dir, 'list.json');
    writeFileSync(asList, JSON.stringify({ nodeMap: ['w1:5432=h1:1001', 'w2:5432=h2:1002'] }));
    const asObject = join(dir, 'object.json');
    writeFileSync(asObject, JSON.stringify({ nodeMap: { 'w1:5432': 'h1:1001', 'w2:5432': 'h2:1002' } }));
    for (const configFile of [asList, asObject]) {
      const c = resolveConnectionConfig({ configFile, nodeMap: ['w2:5432=flag:2002'] }, {});
      const w1 = c.workerConfig({ host: 'w1', port: 5432 });
      const w2 = c.workerConfig({ host: 'w2', port: 5432 });
      assert.deepEqual([w1.host, w1.port, w2.host, w2.port], ['h1', 1001, 'flag', 2002], configFile);
    }
  });

  it('says which config file it cannot read', () => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ nodeMap: ');
    assert.throws(() => resolveConnectionConfig({ configFile: broken }, {}), (e: unknown) =>
      e instanceof InvalidConfigurationError && e.message.includes(broken));
  });
});
