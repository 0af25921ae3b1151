/**
 * The one schema for load options a request (and the CLI) may carry: everything the CLI
 * offers that makes sense for a request passes; unknown keys, wrong types and values COPY
 * would not take fail with the key named.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { headerMode, validateLoadOptions, validateRebalanceOptions } from '../../src/pipeline/options-schema.js';

describe('load options schema', () => {
  it('accepts every option a request may set', () => {
    const all = {
      format: 'text', delimiter: '\t', null: '\\N', encoding: 'LATIN1', header: false, columns: ['a', 'b'],
      distributionColumn: 'a', shardCount: 32, keepKeys: true, recheckLayout: false, sampleRows: 1000, seed: 7,
      maxErrors: 0, connectionsPerNode: 2, batchBytes: 65536, fastPath: false, viaCoordinator: true,
    };
    assert.deepEqual(validateLoadOptions(all), all);
    assert.deepEqual(validateLoadOptions({ format: 'csv', quote: "'", escape: '\\' }), { format: 'csv', quote: "'", escape: '\\' });
    assert.deepEqual(validateLoadOptions(null), {});
    assert.equal(headerMode(undefined), 'auto');
    assert.equal(headerMode(true), 'yes');
    assert.deepEqual(validateRebalanceOptions({ dryRun: true }), { dryRun: true });
  });

  it('refuses unknown keys, wrong types and values COPY would not take, naming each key', () => {
    const refused: [unknown, RegExp][] = [
      [{ format: 'xml' }, /option "format" must be equal to one of the allowed values \(csv\|text\), got "xml"/],
      [{ format: 'csv) ; SELECT 1; --' }, /option "format"/],
      [{ maxErrors: '5' }, /option "maxErrors" must be integer, got "5"/],
      [{ maxErrors: -1 }, /option "maxErrors" must be >= 0/],
      [{ maxErrors: 1.5 }, /option "maxErrors" must be integer/],
      [{ delimiter: ',,' }, /option "delimiter" must be a single ASCII character/],
      [{ delimiter: '\n' }, /option "delimiter"/],
      [{ quote: 'é' }, /option "quote"/],
      [{ null: 'a\nb' }, /option "null"/],
      [{ encoding: "UTF8' ; --" }, /option "encoding"/],
      [{ header: 'yes' }, /option "header" must be boolean/],
      [{ columns: 'a,b' }, /option "columns" must be array/],
      [{ columns: [''] }, /option "columns.0"/],
      [{ shardCount: 0 }, /option "shardCount" must be >= 1/],
      [{ rejectsFile: '/etc/passwd' }, /unknown option "rejectsFile"/],
      [{ profileFile: '/etc/passwd' }, /unknown option "profileFile"/],
      [['csv'], /request options must be object/],
      ['csv', /must be object/],
    ];
    for (const [value, reason] of refused) {
      assert.throws(() => validateLoadOptions(value, 'request options'), reason, JSON.stringify(value));
    }
    assert.throws(() => validateRebalanceOptions({ dryRun: 'yes' }), /option "dryRun" must be boolean/);
    assert.throws(() => validateRebalanceOptions({ table: 'x' }), /unknown option "table"/);
  });
});
