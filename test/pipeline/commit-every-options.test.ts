/**
 * --commit-every and --resume as options: checked by the one schema (a bad value is refused
 * before connecting, naming the flag), and refused where they cannot work (stdin cannot be
 * resumed; --resume needs --commit-every), before anything connects.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateLoadOptions, validateLocalLoadOptions } from '../../src/pipeline/options-schema.js';
import { load } from '../../src/pipeline/loader.js';
import { InvalidConfigurationError } from '../../src/errors.js';

describe('--commit-every and --resume options', () => {
  it('accepts rows and sizes, refuses the rest with the flag named', () => {
    for (const ok of ['500000', '256MB', '1GB', '64kB', '1.5GiB']) assert.deepEqual(validateLocalLoadOptions({ commitEvery: ok }), { commitEvery: ok });
    assert.throws(() => validateLocalLoadOptions({ commitEvery: 'lots' }), /--commit-every must be a row count \(500000\) or a size/);
    assert.throws(() => validateLoadOptions({ commitEvery: '10 rows' }), /option "commitEvery" must be a row count/);
    assert.deepEqual(validateLocalLoadOptions({ resume: true }), { resume: true });
    assert.deepEqual(validateLocalLoadOptions({ resume: 12 }), { resume: 12 });
    assert.throws(() => validateLocalLoadOptions({ resume: 0 }), InvalidConfigurationError);
    // A request (the daemon) may chunk a load but not resume one: that is the local caller's.
    assert.throws(() => validateLoadOptions({ resume: true }), /unknown option "resume"/);
  });

  it('refuses --resume on stdin, and --resume without --commit-every, before connecting', async () => {
    const unreachable = { coordinator: 'postgres://nobody@127.0.0.1:1/none' };
    await assert.rejects(load({ table: 't', file: '-', commitEvery: '1000', resume: true, connection: unreachable }),
      /--resume needs the input as a file: stdin cannot be read again/);
    await assert.rejects(load({ table: 't', file: process.argv[1]!, resume: true, connection: unreachable }),
      /--resume needs --commit-every/);
    await assert.rejects(load({ table: 't', file: process.argv[1]!, commitEvery: 'often', connection: unreachable }),
      /--commit-every must be a row count/);
  });
});
