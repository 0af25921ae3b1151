/**
 * chooseLoadPath: the direct path only when the client can route every row exactly as Citus
 * would; every other case goes through the coordinator with a reason naming the obstacle. Pure:
 * no database.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ColumnInfo, Distribution, DistributionKind } from '../../src/catalog/catalog.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { chooseLoadPath, embedsAscii } from '../../src/pipeline/load-path.js';

function column(name: string, typeName: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return {
    name, typeName, displayType: typeName, maxChars: undefined, notNull: false, hasDefault: false,
    collationDeterministic: true, isArray: false, ...extra,
  };
}

const placement = { shardId: '102008', nodeId: 2, host: 'w1', port: 5432 };

function distribution(kind: DistributionKind, distColumn?: string, placements = [placement]): Distribution {
  return {
    kind, column: distColumn, colocationId: kind === 'hash' ? 1 : undefined,
    shards: kind === 'local' ? [] : [{ shardId: '102008', min: -2147483648, max: 2147483647, qualifiedName: 'public.t_102008', placements }],
  };
}

const tenant = column('tenant_id', 'int8');
const note = column('note', 'text');

/** The direct case; each test changes one thing. */
function args(over: Partial<Parameters<typeof chooseLoadPath>[0]> = {}): Parameters<typeof chooseLoadPath>[0] {
  return {
    citusVersion: '13.2', distribution: distribution('hash', 'tenant_id'), inputColumns: [tenant, note],
    tableColumns: [tenant, note], format: resolveCopyFormat({ format: 'csv' }), serverEncoding: 'UTF8',
    forceCoordinator: false, ...over,
  };
}

describe('chooseLoadPath', () => {
  it('goes direct for a hash-distributed table whose distribution column the client hashes', () => {
    assert.deepEqual(chooseLoadPath(args()), { kind: 'direct' });
    for (const t of ['int2', 'int4', 'int8', 'text', 'varchar', 'bpchar', 'uuid', 'date', 'timestamp', 'timestamptz', 'bool']) {
      const c = column('k', t);
      assert.equal(chooseLoadPath(args({ distribution: distribution('hash', 'k'), inputColumns: [c], tableColumns: [c] })).kind, 'direct', t);
    }
  });

  it('goes direct for a reference table (every placement gets every row)', () => {
    assert.deepEqual(chooseLoadPath(args({ distribution: distribution('reference') })), { kind: 'direct' });
  });

  const coordinatorCases: [string, Partial<Parameters<typeof chooseLoadPath>[0]>, RegExp][] = [
    ['--via-coordinator', { forceCoordinator: true }, /--via-coordinator was given/],
    ['no Citus', { citusVersion: undefined }, /citus extension is not installed/],
    ['a local table', { distribution: distribution('local') }, /not distributed/],
    ['a Citus local table', { distribution: distribution('citus-local') }, /Citus local table/],
    ['range or append distribution', { distribution: distribution('other', 'tenant_id') }, /other than hash/],
    ['a shard without placement', { distribution: distribution('hash', 'tenant_id', []) }, /no active placement/],
    ['an omitted column with a default', {
      inputColumns: [tenant], tableColumns: [tenant, column('created_at', 'timestamptz', { hasDefault: true })],
    }, /column created_at is not in the input and has a default/],
    ['an encoding that embeds ASCII bytes', { format: resolveCopyFormat({ format: 'csv', encoding: 'SJIS' }) }, /encoding SJIS has multibyte characters/],
    ['no field for the distribution column', { inputColumns: [note] }, /no field for the distribution column tenant_id/],
    ['an unhashable distribution type', {
      distribution: distribution('hash', 'amount'), inputColumns: [column('amount', 'numeric', { displayType: 'numeric(10,2)' })],
      tableColumns: [column('amount', 'numeric')],
    }, /amount has type numeric\(10,2\), whose hashing the client does not reproduce/],
    ['a nondeterministic collation', {
      distribution: distribution('hash', 'name'), inputColumns: [column('name', 'text', { collationDeterministic: false })],
      tableColumns: [column('name', 'text')],
    }, /nondeterministic collation/],
    ['a text key on a non-UTF8 server', {
      distribution: distribution('hash', 'name'), inputColumns: [column('name', 'text')], tableColumns: [column('name', 'text')],
      serverEncoding: 'LATIN1',
    }, /server encoding is LATIN1/],
    ['a text key from non-UTF8 input', {
      distribution: distribution('hash', 'name'), inputColumns: [column('name', 'varchar')], tableColumns: [column('name', 'varchar')],
      format: resolveCopyFormat({ format: 'csv', encoding: 'LATIN1' }),
    }, /input encoding is LATIN1/],
  ];
  for (const [what, over, reason] of coordinatorCases) {
    it(`goes through the coordinator for ${what}, saying why`, () => {
      const path = chooseLoadPath(args(over));
      assert.equal(path.kind, 'coordinator');
      assert.match(path.reason ?? '', reason);
    });
  }

  it('checks in order: a forced coordinator path wins over every other reason', () => {
    const path = chooseLoadPath(args({ forceCoordinator: true, citusVersion: undefined, distribution: distribution('local') }));
    assert.match(path.reason ?? '', /--via-coordinator/);
  });

  it('an omitted column without a default does not stop the direct path; an integer key from LATIN1 input does not either', () => {
    assert.equal(chooseLoadPath(args({ inputColumns: [tenant], tableColumns: [tenant, note] })).kind, 'direct');
    assert.equal(chooseLoadPath(args({ format: resolveCopyFormat({ format: 'csv', encoding: 'LATIN1' }), serverEncoding: 'LATIN1' })).kind, 'direct');
  });
});

describe('embedsAscii', () => {
  it('names the client-only encodings under their aliases, and nothing else', () => {
    for (const e of ['SJIS', 'SHIFTJIS2004', 'BIG5', 'GBK', 'UHC', 'GB18030', 'JOHAB', 'WIN932', 'WINDOWS950']) assert.ok(embedsAscii(e), e);
    for (const e of ['UTF8', 'LATIN1', 'EUCJP', 'WIN1252', 'SQLASCII']) assert.ok(!embedsAscii(e), e);
  });
});
