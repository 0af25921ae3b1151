/**
 * The client-side hashes against PostgreSQL's own: for every supported type, 100,000 random and
 * edge values in the spellings users write (signs, padding, leading zeros, upper-case UUIDs,
 * braces, offsets...). Where the client claims certainty, PostgreSQL must accept the value and
 * return the same hash; the client may only say UNSURE. The loader's WebAssembly kernel hashes
 * integers and text itself: it is held to the same standard on the same values.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalCluster, withClient } from '../../scripts/local-cluster.js';
import { UNSURE, valueHasherFor, type ColumnTypeInfo } from '../../src/routing/value-hasher.js';
import { seededRandom } from '../../src/plan/random.js';
import type { ShardInfo } from '../../src/catalog/catalog.js';
import { resolveCopyFormat } from '../../src/input/copy-format.js';
import { FastRouter, fastPathSupports } from '../../src/routing/fast-router.js';

const PER_TYPE = 100_000;

interface Case {
  type: ColumnTypeInfo;
  /** SQL computing PostgreSQL's hash of v (text), as Citus's hash opclass function would. */
  sql: string;
  generate(rnd: () => number): string;
  /** Spellings that must be certain (never UNSURE). */
  mustBeSure?: string[];
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const pad = (rnd: () => number, s: string) => pick(rnd, ['', '', '', ' ', '\t', '  '])
  + s + pick(rnd, ['', '', '', ' ', '\n', ' \t']);

function intText(rnd: () => number, v: bigint): string {
  let s = v < 0n ? (-v).toString() : v.toString();
  if (rnd() < 0.1) s = '0'.repeat(1 + Math.floor(rnd() * 3)) + s;
  const sign = v < 0n ? '-' : pick(rnd, ['', '', '', '+']);
  return pad(rnd, sign + s);
}

function randomInt(rnd: () => number, bits: number): bigint {
  const edges = [0n, 1n, -1n, 7n, 2n ** BigInt(bits - 1) - 1n, -(2n ** BigInt(bits - 1)), 2n ** 31n - 1n, -(2n ** 31n),
    2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n].filter((e) => e >= -(2n ** BigInt(bits - 1)) && e < 2n ** BigInt(bits - 1));
  if (rnd() < 0.05) return pick(rnd, edges);
  const mag = Math.floor(rnd() * bits);
  const v = BigInt(Math.floor(rnd() * 2 ** Math.min(mag, 52))) * (mag > 52 ? 2n ** BigInt(mag - 52) : 1n);
  const signed = rnd() < 0.5 ? -v : v;
  const min = -(2n ** BigInt(bits - 1));
  const max = 2n ** BigInt(bits - 1) - 1n;
  return signed < min ? min : signed > max ? max : signed;
}

const CHARS = ['a', 'Z', '0', ' ', '-', '_', 'é', 'ß', '中', '文', '😀', 'Ω', '\t', ',', '"', 'x'];
function randomText(rnd: () => number, maxLen: number): string {
  const len = Math.floor(rnd() * maxLen);
  let s = '';
  for (let i = 0; i < len; i++) s += pick(rnd, CHARS);
  return s;
}

function randomUuid(rnd: () => number): string {
  const hex = randomBytes(16).toString('hex');
  const upper = rnd() < 0.3 ? hex.toUpperCase() : hex;
  switch (Math.floor(rnd() * 5)) {
    case 0: return upper;
    case 1: return `{${upper.replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}}`;
    case 2: return upper.replace(/(.{4})/g, '$1-').slice(0, -1);
    case 3: return ` ${upper}`; // PostgreSQL rejects: must be UNSURE, never wrong
    default: return upper.replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5');
  }
}

const two = (n: number) => String(n).padStart(2, '0');
function randomDate(rnd: () => number): string {
  const y = 1 + Math.floor(rnd() * 9999);
  return `${String(y).padStart(4, '0')}-${two(1 + Math.floor(rnd() * 12))}-${two(1 + Math.floor(rnd() * 31))}`;
}

function randomTime(rnd: () => number): string {
  const frac = Math.floor(rnd() * 8);
  const fraction = frac === 0 ? '' : `.${String(Math.floor(rnd() * 10 ** frac)).padStart(frac, '0')}`;
  return `${two(Math.floor(rnd() * 24))}:${two(Math.floor(rnd() * 60))}:${two(Math.floor(rnd() * 60))}${fraction}`;
}

const CASES: Case[] = [
  { type: { typeName: 'int2' }, sql: 'hashint2(v::int2)', generate: (r) => intText(r, randomInt(r, 16)), mustBeSure: ['7', '+7', ' 7 ', '007', '-32768'] },
  { type: { typeName: 'int4' }, sql: 'hashint4(v::int4)', generate: (r) => intText(r, randomInt(r, 32)), mustBeSure: ['2147483647', '-2147483648', '\t42\n'] },
  { type: { typeName: 'int8' }, sql: 'hashint8(v::int8)', generate: (r) => intText(r, randomInt(r, 64)),
    mustBeSure: ['9223372036854775807', '-9223372036854775808', '+0000000000000000001', '-1'] },
  { type: { typeName: 'text' }, sql: 'hashtext(v)', generate: (r) => randomText(r, 40), mustBeSure: ['', 'tenant-42', '中文'] },
  { type: { typeName: 'varchar', maxChars: 8 }, sql: 'hashtext(varcharin(v::cstring, 1043, 12)::text)',
    generate: (r) => randomText(r, 10), mustBeSure: ['abcdefgh', '😀😀😀😀😀😀😀😀'] },
  { type: { typeName: 'bpchar', maxChars: 8 }, sql: 'hashbpchar(bpcharin(v::cstring, 1042, 12))',
    generate: (r) => randomText(r, 10) + pick(r, ['', ' ', '   ']), mustBeSure: ['abc', 'abc     ', 'abcdefgh   '] },
  { type: { typeName: 'uuid' }, sql: 'uuid_hash(v::uuid)', generate: randomUuid,
    mustBeSure: ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}', 'a0eebc999c0b4ef8bb6d6bb9bd380a11'] },
  { type: { typeName: 'date' }, sql: "hashint4(v::date - '2000-01-01'::date)", generate: randomDate,
    mustBeSure: ['2000-01-01', '1999-12-31', '2024-02-29', '0001-01-01', '9999-12-31'] },
  { type: { typeName: 'timestamp' }, sql: 'timestamp_hash(v::timestamp)',
    generate: (r) => `${randomDate(r)}${pick(r, [' ', 'T'])}${randomTime(r)}`,
    mustBeSure: ['2024-03-01 12:00:00', '2024-03-01T12:00:00.123456'] },
  { type: { typeName: 'timestamptz' }, sql: "timestamp_hash(v::timestamptz AT TIME ZONE 'UTC')",
    generate: (r) => `${randomDate(r)}${pick(r, [' ', 'T'])}${randomTime(r)}${pick(r, ['Z', '+00', '-05', '+05:30', '+0530', '-11:45', '', '+14'])}`,
    mustBeSure: ['2024-03-01 12:00:00Z', '2024-03-01T12:00:00+02:00', '2024-03-01 12:00:00.5-0330'] },
  { type: { typeName: 'bool' }, sql: 'hashchar(v::bool::int::"char")',
    generate: (r) => pad(r, pick(r, ['t', 'true', 'TRUE', 'Tr', 'f', 'false', 'FaLsE', 'y', 'yes', 'n', 'no', 'on', 'off', 'of', '1', '0', 'o', 'maybe'])),
    mustBeSure: ['true', ' YES ', 'of', '0'] },
];

describe('client-side hashing equals PostgreSQL', () => {
  let cluster: LocalCluster;
  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, citus: false });
  });
  after(async () => cluster?.stop());

  for (const c of CASES) {
    it(`${c.type.typeName}${c.type.maxChars ? `(${c.type.maxChars})` : ''}: ${PER_TYPE} values`, async () => {
      const rnd = seededRandom(`hash-${c.type.typeName}`);
      const hasher = valueHasherFor(c.type);
      const kernel = fastPathSupports(c.type.typeName) ? new FastRouter({
        format: resolveCopyFormat({ format: 'csv' }), fieldIndex: 0, expectedFields: 1, typeName: c.type.typeName,
        maxChars: c.type.maxChars, shards: [{ shardId: '1', min: -2147483648, max: 2147483647 } as unknown as ShardInfo],
        maxStagingBytes: 65536,
      }, { staged() {} }) : undefined;
      const sure: string[] = [];
      const ours: number[] = [];
      /** The kernel's hash of each certain value, where it does not defer to JavaScript. */
      const kernels: (number | undefined)[] = [];
      const values = [...(c.mustBeSure ?? [])];
      while (values.length < PER_TYPE) values.push(c.generate(rnd));
      for (const v of values) {
        const b = Buffer.from(v, 'utf8');
        const h = hasher.hash(b, 0, b.length);
        const k = kernel?.hash(b);
        if (h === UNSURE) {
          assert.equal(k, undefined, `the kernel claims certainty about ${JSON.stringify(v)}, which JavaScript does not`);
          continue;
        }
        sure.push(v);
        ours.push(h);
        kernels.push(k);
      }
      for (const v of c.mustBeSure ?? []) assert.ok(sure.includes(v), `${JSON.stringify(v)} should be certain`);
      // Most generated spellings are ones PostgreSQL accepts unambiguously; the client must know them.
      assert.ok(sure.length > PER_TYPE * 0.5, `only ${sure.length} of ${PER_TYPE} values were certain`);
      const theirs = await withClient(cluster.coordinator.url, async (cl) => {
        await cl.query("SET TimeZone = 'America/New_York'"); // must not matter for certain values
        const r = await cl.query<{ h: number }>(`SELECT ${c.sql} AS h FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i`, [sure]);
        return r.rows.map((row) => row.h);
      });
      let mismatches = 0;
      let first = '';
      for (let i = 0; i < sure.length; i++) {
        if (ours[i] !== theirs[i]) {
          if (mismatches++ === 0) first = `${JSON.stringify(sure[i])}: ours ${ours[i]}, PostgreSQL ${theirs[i]}`;
        }
      }
      assert.equal(mismatches, 0, `${mismatches} mismatches, first: ${first}`);
      if (kernel) {
        const compared = kernels.filter((k) => k !== undefined).length;
        assert.ok(compared > sure.length * 0.9, `the kernel hashed only ${compared} of ${sure.length} values`);
        const wrong = kernels.findIndex((k, i) => k !== undefined && k !== theirs[i]);
        assert.equal(wrong, -1, wrong < 0 ? '' : `kernel: ${JSON.stringify(sure[wrong])} hashes to ${kernels[wrong]}, PostgreSQL ${theirs[wrong]}`);
      }
    });
  }
});
