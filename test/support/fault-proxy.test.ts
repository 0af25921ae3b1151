/**
 * The fault-injecting proxy (test/support/fault-proxy.ts) against a real plain PostgreSQL: it
 * passes simple, extended-protocol and COPY traffic through unchanged, frames the startup and
 * SSL negotiation correctly, and cuts, stalls or drops replies exactly where a rule says.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { FaultProxy, matchCopyDataBytes, matchQuery, matchType, type ProtocolMessage } from './fault-proxy.js';

/** A client through the proxy; errors from a cut connection surface through the query, not as events. */
async function connect(port: number, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', ...extra });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Ends a client without waiting on a connection the proxy may have stalled. */
function abandon(client: pg.Client): void {
  client.end().catch(() => {});
}

/** A rule that never fires but records every message of one direction: a view of the framing. */
function spy(proxy: FaultProxy, direction: 'frontend' | 'backend'): ProtocolMessage[] {
  const seen: ProtocolMessage[] = [];
  proxy.addRule({ direction, action: 'cut', once: false, match: (m) => {
    seen.push(m);
    return false;
  } });
  return seen;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Rows of `n\tpayload\n`, in 64 kB chunks, `total` bytes or so. */
function copyRows(total: number): Readable {
  const row = (i: number) => `${i}\t${'x'.repeat(100)}\n`;
  return Readable.from((function* () {
    let i = 0;
    for (let sent = 0; sent < total;) {
      let chunk = '';
      while (chunk.length < 65536) chunk += row(i++);
      sent += chunk.length;
      yield Buffer.from(chunk);
    }
  })());
}

describe('fault proxy', () => {
  let cluster: LocalCluster;
  let proxy: FaultProxy;
  const direct = <T>(fn: (c: pg.Client) => Promise<T>) => withClient(cluster.coordinator.url, fn);
  const count = async () => Number((await direct((c) => c.query('SELECT count(*) AS n FROM t'))).rows[0].n);

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
    await direct((c) => c.query('CREATE TABLE t (id int, payload text)'));
  });
  after(async () => cluster?.stop());

  const startProxy = async () => {
    proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: cluster.coordinator.port });
    await direct((c) => c.query('TRUNCATE t'));
  };
  afterEach(async () => proxy?.close());

  it('passes simple queries, parameterised extended-protocol queries and COPY through', async () => {
    await startProxy();
    const frontend = spy(proxy, 'frontend');
    const client = await connect(proxy.port);
    const multi = (await client.query("SELECT 1 AS one; SELECT 2 AS two")) as unknown as pg.QueryResult[];
    assert.equal(multi.length, 2);
    // A 300 kB parameter: the Bind message spans many TCP chunks.
    const big = 'y'.repeat(300_000);
    const r = await client.query({ text: 'SELECT length($1::text) AS len, $2::int + 1 AS b', values: [big, 41] });
    assert.deepEqual(r.rows, [{ len: 300_000, b: 42 }]);
    const copy = client.query(copyFrom('COPY t (id, payload) FROM STDIN'));
    await pipeline(copyRows(5_000_000), copy);
    assert.ok(copy.rowCount > 40_000);
    assert.equal(await count(), copy.rowCount);
    await client.end();

    const types = frontend.map((m) => m.type);
    assert.equal(types[0], 'startup');
    assert.ok(types.includes('B') && types.includes('E') && types.includes('S') && types.includes('d') && types.includes('c'));
    assert.ok(frontend.some((m) => m.type === 'P' && m.text === 'SELECT length($1::text) AS len, $2::int + 1 AS b'));
    const copied = frontend.filter((m) => m.type === 'd').reduce((n, m) => n + m.payload.length, 0);
    assert.ok(copied >= 5_000_000);
    assert.equal(proxy.connections, 1);
    assert.deepEqual(proxy.events, []);
  });

  it('frames an SSLRequest, its one-byte answer, the startup after it, and messages split or packed in chunks', async () => {
    await startProxy();
    const frontend = spy(proxy, 'frontend');
    const backend = spy(proxy, 'backend');
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80877103, 4);
    socket.write(sslRequest);
    const [answer] = (await once(socket, 'data')) as [Buffer];
    assert.equal(answer.toString(), 'N'); // the test server has no SSL

    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + params.length, 0);
    startup.writeInt32BE(196608, 4); // protocol 3.0
    socket.write(Buffer.concat([startup, params]));
    const query = (sql: string) => {
      const body = Buffer.from(`${sql}\0`);
      const header = Buffer.alloc(5);
      header.write('Q', 0);
      header.writeInt32BE(4 + body.length, 1);
      return Buffer.concat([header, body]);
    };
    const readyCount = () => backend.filter((m) => m.type === 'Z').length;
    await until(() => readyCount() === 1, 'ReadyForQuery after startup');
    const split = query('SELECT 1');
    socket.write(split.subarray(0, 3)); // inside the length field
    await sleep(50);
    socket.write(split.subarray(3));
    socket.write(Buffer.concat([query('SELECT 2'), query('SELECT 3')]));
    await until(() => readyCount() === 4, 'three answers');
    socket.destroy();

    assert.deepEqual(frontend.map((m) => m.type), ['SSLRequest', 'startup', 'Q', 'Q', 'Q']);
    assert.deepEqual(frontend.slice(2).map((m) => m.text), ['SELECT 1', 'SELECT 2', 'SELECT 3']);
    assert.equal(backend[0]?.type, 'SSLResponse');
    assert.equal(backend[1]?.type, 'R'); // AuthenticationOk (trust)
    assert.deepEqual(backend.filter((m) => m.type === 'D').map((m) => m.payload.subarray(6).toString()), ['1', '2', '3']);
  });

  it("'drop-reply' on COMMIT: the server commits, the client gets an error", async () => {
    await startProxy();
    proxy.addRule({ direction: 'frontend', match: matchQuery(/^COMMIT/), action: 'drop-reply' });
    const client = await connect(proxy.port);
    await client.query('BEGIN');
    await client.query("INSERT INTO t VALUES (1, 'kept')");
    await assert.rejects(client.query('COMMIT'));
    abandon(client);
    const event = await proxy.waitForEvent((e) => e.action === 'drop-reply');
    assert.deepEqual([event.type, event.text, event.connectionIndex], ['Q', 'COMMIT', 0]);
    await proxy.connectionClosed(0); // the server closed its side: COMMIT has run
    assert.equal(await count(), 1);
  });

  it("'cut' before COMMIT: the server never sees it and rolls back; rules apply to later connections only", async () => {
    await startProxy();
    const early = await connect(proxy.port);
    const rule = proxy.addRule({ direction: 'frontend', match: matchQuery(/^COMMIT/), action: 'cut', when: 'before' });
    await early.query('BEGIN');
    await early.query("INSERT INTO t VALUES (1, 'early')");
    await early.query('COMMIT'); // opened before the rule: untouched
    await early.end();
    const client = await connect(proxy.port);
    await client.query('BEGIN');
    await client.query("INSERT INTO t VALUES (2, 'lost')");
    await assert.rejects(client.query('COMMIT'));
    abandon(client);
    await proxy.connectionClosed(1);
    await until(() => proxy.openConnections === 0, 'both connections closed');
    assert.equal(rule.fired, 1);
    assert.deepEqual((await direct((c) => c.query('SELECT payload FROM t'))).rows, [{ payload: 'early' }]);
  });

  it("a backend 'cut' on the second CommandComplete, with existing: true", async () => {
    await startProxy();
    const client = await connect(proxy.port);
    proxy.addRule({ direction: 'backend', match: matchType('C'), action: 'cut', after: 2, existing: true });
    await client.query('SELECT 1');
    await assert.rejects(client.query('SELECT 2'));
    abandon(client);
    assert.deepEqual(proxy.events.map((e) => [e.connectionIndex, e.direction, e.type, e.action]), [[0, 'backend', 'C', 'cut']]);
  });

  it("'stall' after 1 MB of CopyData: the client's query_timeout fires", async () => {
    await startProxy();
    proxy.addRule({ direction: 'frontend', match: matchCopyDataBytes(1 << 20), action: 'stall' });
    const client = await connect(proxy.port, { query_timeout: 1500 });
    await assert.rejects(pipeline(copyRows(20_000_000), client.query(copyFrom('COPY t (id, payload) FROM STDIN'))), /timeout/i);
    abandon(client);
    assert.deepEqual(proxy.events.map((e) => [e.type, e.action]), [['d', 'stall']]);
    assert.equal(proxy.openConnections, 1, 'a stalled connection stays open');
    proxy.cutAll();
    await proxy.connectionClosed(0);
    assert.equal(await count(), 0);
  });

  it('stallAccept: connecting times out; refuse: connecting fails; both can be switched off', async () => {
    await startProxy();
    proxy.stallAccept(true);
    await assert.rejects(connect(proxy.port, { connectionTimeoutMillis: 500 }));
    proxy.stallAccept(false);
    proxy.refuse(true);
    await assert.rejects(connect(proxy.port));
    proxy.refuse(false);
    const client = await connect(proxy.port);
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    await client.end();
    assert.deepEqual(proxy.events.map((e) => [e.connectionIndex, e.action]), [[0, 'stall-accept'], [1, 'refuse']]);
    assert.equal(proxy.connections, 3);
  });

  it('close() finishes with stalled connections open', async () => {
    await startProxy();
    proxy.addRule({ direction: 'frontend', match: matchQuery(/pg_sleep|SELECT 42/), action: 'stall', once: false });
    const stalled = await connect(proxy.port);
    const hanging = stalled.query('SELECT 42');
    const hangingOutcome = hanging.then(() => 'answered', () => 'failed');
    await proxy.waitForEvent((e) => e.action === 'stall');
    proxy.stallAccept(true);
    const silent = net.connect(proxy.port, '127.0.0.1').on('error', () => {});
    await proxy.waitForEvent((e) => e.action === 'stall-accept');
    await proxy.close();
    assert.equal(proxy.openConnections, 0);
    assert.equal(await hangingOutcome, 'failed');
    silent.destroy();
  });
});
