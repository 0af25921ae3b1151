/**
 * The package as a user gets it: imported by its name, through package.json's `exports` map
 * (Node resolves a package's own name from inside it, the same way it resolves it for a
 * dependent), and packed with only the files that exist. No database.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string; main: string; types: string; files: string[]; bin: Record<string, string>;
  exports: Record<string, { types: string; default: string } | string>;
};

// Through a variable, so tsc does not resolve the name at build time (the build starts by
// deleting dist, where the name's types live); the type comes from the source instead.
type Api = typeof import('../../src/index.js');
const importByName = (): Promise<Api> => import(pkg.name) as Promise<Api>;

describe('the package imported by its name', () => {
  it('resolves the name to the built index through the exports map', () => {
    const entry = pkg.exports['.'];
    assert.ok(entry && typeof entry === 'object', 'exports["."] is a conditions object');
    assert.equal(import.meta.resolve(pkg.name), new URL(entry.default, `file://${ROOT}`).href);
    assert.equal(`./${pkg.main}`, entry.default);
    assert.equal(`./${pkg.types}`, entry.types);
    assert.ok(existsSync(join(ROOT, entry.types)), `${entry.types} is built`);
  });

  it('exports the API functions and the error classes', async () => {
    const api = await importByName();
    for (const name of ['load', 'plan', 'analyze', 'monitor', 'collect', 'render', 'report', 'recover', 'migrate',
      'renderText', 'renderMarkdown', 'renderHtml'] as const) {
      assert.equal(typeof api[name], 'function', `${name} is exported`);
    }
    for (const name of ['AdaptiveLoadError', 'InvalidConfigurationError', 'BadInputError', 'InputFileError', 'TargetTableError',
      'ClusterStateError', 'DatabaseError', 'TimeoutError', 'ConnectionLostError', 'RetryableTransactionError',
      'CommitOutcomeUnknownError'] as const) {
      assert.equal(typeof api[name], 'function', `${name} is exported`);
      assert.ok(api[name].prototype instanceof Error, `${name} is an Error`);
    }
    assert.ok(api.InvalidConfigurationError.prototype instanceof api.AdaptiveLoadError);
  });

  it('load rejects a bad option with the typed error, before connecting', async () => {
    const api = await importByName();
    // Nothing listens on port 1: reaching the network would fail with a different error.
    const connection = { coordinator: 'postgres://nobody@127.0.0.1:1/none' };
    await assert.rejects(api.load({ table: 't', file: fileURLToPath(import.meta.url), delimiter: ';;', connection }), (err: unknown) => {
      assert.ok(err instanceof api.InvalidConfigurationError, `got ${String(err)}`);
      assert.ok(err instanceof api.AdaptiveLoadError);
      assert.match(err.message, /delimiter must be a single ASCII character/);
      return true;
    });
    await assert.rejects(api.load({ table: 't', file: join(ROOT, 'no-such-file.csv'), connection }), api.InputFileError);
    await assert.rejects(api.report({ format: 'pdf' as never, connection }), api.InvalidConfigurationError);
  });

  it('analyze describes a file without a database', async () => {
    const api = await importByName();
    const a = await api.analyze(join(ROOT, 'package.json'), { format: 'text', delimiter: '\u0001', header: 'no' });
    assert.equal(a.columns.length, 1);
    assert.ok(a.sample.rows.length > 10);
  });
});

describe('what npm packs', () => {
  it('every entry of "files" exists, and the pack has the entry points, the wasm and the migrations', () => {
    for (const f of pkg.files) assert.ok(existsSync(join(ROOT, f)), `package.json files names ${f}, which does not exist`);
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const packed = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    for (const p of [pkg.main, pkg.types, ...Object.values(pkg.bin), 'dist/native/fast-router.wasm', 'package.json']) {
      assert.ok(packed.has(p), `the pack lacks ${p}`);
    }
    const migrations = [...packed].filter((p) => p.startsWith('migrations/') && p.endsWith('.sql'));
    assert.ok(migrations.length >= 7, `the pack has ${migrations.length} migrations`);
    assert.ok(![...packed].some((p) => p.startsWith('dist/test/') || p.startsWith('src/')), 'tests and TypeScript sources stay out');
  });
});
