/**
 * The CLI's flags go through the same load options schema as a SQL request's options: a plain
 * object built from commander's flags, refused with the flag named and exit status 2, before
 * any connection is tried. No database needed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOptionValues, type LoadFlags } from '../../src/cli/handlers.js';
import { InvalidConfigurationError } from '../../src/errors.js';
import { toLoadOptions, validateLoadOptions, validateLocalLoadOptions } from '../../src/pipeline/options-schema.js';
import { runCli } from '../support/cli.js';

const flags = (extra: Partial<LoadFlags>): LoadFlags => ({ table: 't', format: 'csv', ...extra });

describe('load flags as option values', () => {
  it('translates flag names and shapes, and leaves out what was not given', () => {
    const values = loadOptionValues(flags({
      columns: 'a, b', batchSize: 65536, rejects: '/tmp/r.jsonl', maxErrors: 3, profile: 'p.json', saveProfile: 's.json',
      header: false, maxRowBytes: 1000, sampleRows: 500, seed: 0, viaCoordinator: true, json: true, quiet: true,
    }));
    assert.deepEqual(values, {
      format: 'csv', header: false, columns: ['a', 'b'], batchBytes: 65536, rejectsFile: '/tmp/r.jsonl', maxErrors: 3,
      profileFile: 'p.json', saveProfile: 's.json', maxRowBytes: 1000, sampleRows: 500, seed: 0, viaCoordinator: true,
    });
    assert.deepEqual(toLoadOptions(values).header, 'no');
    assert.deepEqual(toLoadOptions(loadOptionValues(flags({}))), { format: 'csv', header: 'auto' });
  });

  const refused: [Partial<LoadFlags>, RegExp][] = [
    [{ shardCount: 0 }, /^--shard-count must be >= 1, got 0$/],
    [{ shardCount: 100000 }, /^--shard-count must be <= 64000, got 100000$/],
    [{ maxErrors: -1 }, /^--max-errors must be >= 0, got -1$/],
    [{ connectionsPerNode: 0 }, /^--connections-per-node must be >= 1/],
    [{ batchSize: 10 }, /^--batch-size must be >= 1024, got 10$/],
    [{ sampleRows: 5 }, /^--sample-rows must be >= 100, got 5$/],
    [{ maxRowBytes: 0 }, /^--max-row-bytes must be >= 1/],
    [{ delimiter: ';;' }, /^--delimiter must be a single ASCII character \(printable or tab\), got ";;"$/],
    [{ quote: 'é' }, /^--quote must be a single ASCII character/],
    [{ null: 'a\nb' }, /^--null cannot contain a newline or carriage return/],
    [{ encoding: "UTF8'; --" }, /^--encoding must be an encoding name/],
    [{ distributionColumn: 'x'.repeat(64) }, /^--distribution-column must NOT have more than 63 characters/],
    [{ columns: `a,${'c'.repeat(64)}` }, /^--columns item 2 must NOT have more than 63 characters/],
    [{ format: 'xml' as 'csv' }, /^--format must be equal to one of the allowed values \(csv\|text\), got "xml"$/],
    [{ rejects: '' }, /^--rejects must NOT have fewer than 1 characters/],
  ];
  for (const [extra, reason] of refused) {
    it(`refuses ${JSON.stringify(extra)} naming the flag`, () => {
      assert.throws(() => loadOptionValues(flags(extra)), (e: Error) => e instanceof InvalidConfigurationError && reason.test(e.message), JSON.stringify(extra));
    });
  }

  it('reports every bad flag at once', () => {
    assert.throws(() => loadOptionValues(flags({ shardCount: 0, maxErrors: -1 })), /--shard-count must be >= 1, got 0; --max-errors must be >= 0, got -1/);
  });

  it('is the same schema a request is checked by: the same limits, only the names differ', () => {
    assert.throws(() => validateLoadOptions({ shardCount: 0 }, 'request options'), /: invalid request options: option "shardCount" must be >= 1, got 0$/);
    assert.throws(() => validateLocalLoadOptions({ shardCount: 0 }), /: --shard-count must be >= 1, got 0$/);
    assert.throws(() => validateLocalLoadOptions({ shardCount: 0 }, 'key'), /: invalid options: option "shardCount" must be >= 1, got 0$/);
    // Files on the loading machine: the CLI may name them, a request may not.
    assert.deepEqual(validateLocalLoadOptions({ rejectsFile: 'r.jsonl', maxErrors: 1 }), { rejectsFile: 'r.jsonl', maxErrors: 1 });
    assert.throws(() => validateLoadOptions({ rejectsFile: 'r.jsonl' }), /unknown option "rejectsFile"/);
    assert.throws(() => validateLocalLoadOptions({ frobnicate: 1 }), /unknown option "frobnicate"/);
  });
});

describe('the CLI refuses bad values before connecting (exit 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cal-cli-options-'));
  const input = join(dir, 'in.csv');
  writeFileSync(input, 'id,name\n1,a\n2,b\n');
  // Port 1 refuses at once: a test that got past validation would fail with exit 1, not 2.
  const nowhere = ['--coordinator', 'postgresql://u@127.0.0.1:1/d', '--connect-timeout', '2'];

  it('load: a value out of range, on stderr and as --json', async () => {
    const r = await runCli(['--table', 't', ...nowhere, '--shard-count', '0', '--json', input]);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, 'citus-adaptive-load: --shard-count must be >= 1, got 0\n');
    assert.deepEqual(r.json, { ok: false, error: { kind: 'InvalidConfigurationError', message: '--shard-count must be >= 1, got 0' } });
  });

  it('load: --rejects without --max-errors is still refused with its own advice', async () => {
    const r = await runCli(['--table', 't', ...nowhere, '--rejects', join(dir, 'r.jsonl'), input]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--rejects needs --max-errors N/);
  });

  it('analyze and plan: the same schema, the same words', async () => {
    const a = await runCli(['analyze', '--sample-rows', '5', input]);
    assert.equal(a.status, 2, a.stderr);
    assert.equal(a.stderr, 'citus-adaptive-load: --sample-rows must be >= 100, got 5\n');
    const ok = await runCli(['analyze', '--json', '--sample-rows', '100', input]);
    assert.equal(ok.status, 0, ok.stderr);
    const p = await runCli(['plan', '--table', 't', '--coordinator', 'postgresql://u@127.0.0.1:1/d', '--shard-count', '0', input]);
    assert.equal(p.status, 2, p.stderr);
    assert.match(p.stderr, /--shard-count must be >= 1, got 0/);
  });

  it('a commander parse error stays a usage error (exit 2)', async () => {
    const r = await runCli(['--table', 't', '--seed', 'abc', input]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /option '--seed <n>' argument 'abc' is invalid\. It must be an integer/);
  });

  for (const command of ['monitor', 'daemon']) {
    for (const value of ['abc', '0', '-1', '0.5', 'Infinity']) {
      it(`${command} --threshold ${value} is refused before connecting (exit 2): busiest/mean node load is a ratio of at least 1`, async () => {
        const r = await runCli([command, ...nowhere, '--threshold', value]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`option '--threshold <ratio>' argument '${value}' is invalid\\. It must be a number`));
      });
    }
  }

  it('--threshold 1 and 1.5 are accepted (the run gets as far as connecting)', async () => {
    for (const value of ['1', '1.5']) {
      const r = await runCli(['monitor', '--once', ...nowhere, '--threshold', value]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /cannot connect to the coordinator/);
    }
  });

  it('a connection failure names the node once, added by the CLI', async () => {
    const r = await runCli(['--table', 't', ...nowhere, '--json', input]);
    assert.equal(r.status, 1, r.stderr);
    const nodes = r.stderr.match(/\[node [^\]]+\]/g) ?? [];
    assert.deepEqual(nodes, ['[node u@127.0.0.1:1/d]'], r.stderr);
    const error = (r.json as { error: Record<string, unknown> }).error;
    assert.equal(error.kind, 'ConnectionLostError');
    assert.equal(error.node, 'u@127.0.0.1:1/d');
    assert.equal(error.sqlState, 'ECONNREFUSED');
    assert.doesNotMatch(String(error.message), /\[node .*\[node/);
  });
});
