/**
 * The error hierarchy without a database: SQLSTATE (and socket codes) to classes, pg's fields
 * kept as properties, messages without the node, and the one CLI line that puts them together.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdaptiveLoadError, BadInputError, CheckViolationError, ConnectionLostError, DatabaseError, InvalidConfigurationError,
  QueryCanceledError, RetryableTransactionError, TimeoutError, UniqueViolationError, isDatabaseFailure, serverExplanation,
  toDatabaseError,
} from '../src/errors.js';
import { errorJson, exitCodeFor, formatError, toUserError } from '../src/cli/format-error.js';

/** What pg's client rejects with for a server error (pg-protocol's DatabaseError, reduced to its fields). */
function pgError(code: string, message: string, fields: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { severity: 'ERROR', code, ...fields });
}

/** What Node rejects with when a socket fails. */
function socketError(code: string): Error {
  return Object.assign(new Error(`read ${code}`), { code, errno: -104, syscall: 'read' });
}

describe('SQLSTATE to error class', () => {
  const cases: [unknown, new (...a: never[]) => DatabaseError][] = [
    [pgError('23505', 'duplicate key value violates unique constraint "t_pkey"'), UniqueViolationError],
    [pgError('23514', 'new row violates check constraint "t_q_check"'), CheckViolationError],
    [pgError('40001', 'could not serialize access due to concurrent update'), RetryableTransactionError],
    [pgError('40P01', 'deadlock detected'), RetryableTransactionError],
    [pgError('57014', 'canceling statement due to statement timeout'), QueryCanceledError],
    [pgError('08006', 'connection failure'), ConnectionLostError],
    [pgError('57P01', 'terminating connection due to administrator command'), ConnectionLostError],
    [socketError('ECONNRESET'), ConnectionLostError],
    [socketError('ECONNREFUSED'), ConnectionLostError],
    [new Error('Connection terminated unexpectedly'), ConnectionLostError],
  ];
  for (const [err, cls] of cases) {
    it(`${(err as { code?: string }).code ?? (err as Error).message} -> ${cls.name}`, () => {
      const e = toDatabaseError(err, '10.0.0.1:5432');
      assert.ok(e instanceof cls, e.name);
      assert.ok(e instanceof DatabaseError && e instanceof AdaptiveLoadError);
      assert.equal(e.name, cls.name);
      assert.equal(e.cause, err);
    });
  }

  it('an unknown SQLSTATE is a plain DatabaseError, and a DatabaseError is returned as is', () => {
    const e = toDatabaseError(pgError('42P01', 'relation "x" does not exist'));
    assert.equal(e.constructor, DatabaseError);
    assert.equal(toDatabaseError(e, 'other:1'), e);
  });
});

describe('DatabaseError keeps what PostgreSQL said', () => {
  const raw = pgError('23505', 'duplicate key value violates unique constraint "items_pkey"', {
    detail: 'Key (id)=(1) already exists.', hint: 'Load the row once.', where: 'COPY items_102008, line 2',
    constraint: 'items_pkey', schema: 'public', table: 'items_102008', column: 'id',
  });

  it('as properties, with the server message (and context) unchanged and no node in it', () => {
    const e = toDatabaseError(raw, '127.0.0.1:9702', 'COPY into items failed');
    assert.equal(e.message, 'COPY into items failed: duplicate key value violates unique constraint "items_pkey"');
    assert.doesNotMatch(e.message, /\[node|127\.0\.0\.1/);
    assert.deepEqual(e.fields(), {
      node: '127.0.0.1:9702', sqlState: '23505', detail: 'Key (id)=(1) already exists.', hint: 'Load the row once.',
      where: 'COPY items_102008, line 2', constraint: 'items_pkey', schema: 'public', table: 'items_102008', column: 'id',
    });
    assert.equal(e.node, '127.0.0.1:9702');
    assert.equal(e.sqlState, '23505');
    assert.equal(e.where, 'COPY items_102008, line 2');
  });

  it('fields pg did not give are absent, not undefined', () => {
    const e = toDatabaseError(pgError('57014', 'canceling statement due to statement timeout'));
    assert.deepEqual(e.fields(), { sqlState: '57014' });
    assert.equal('where' in e, false);
    assert.equal('node' in new TimeoutError('COPY on n:1: no answer within 3 s', undefined), false);
  });

  it('serverExplanation: message, detail and hint, never the node', () => {
    const e = toDatabaseError(raw, '127.0.0.1:9702');
    assert.equal(serverExplanation(e), 'duplicate key value violates unique constraint "items_pkey" (Key (id)=(1) already exists.). Hint: Load the row once.');
  });
});

describe('what counts as a database failure', () => {
  it('server errors, socket errors and a terminated connection do; file errors and bugs do not', () => {
    assert.equal(isDatabaseFailure(pgError('22P02', 'invalid input syntax')), true);
    assert.equal(isDatabaseFailure(socketError('ECONNRESET')), true);
    assert.equal(isDatabaseFailure(new Error('Connection terminated unexpectedly')), true);
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x/p.json'"), { code: 'ENOENT', syscall: 'open', path: '/x/p.json' });
    assert.equal(isDatabaseFailure(enoent), false);
    assert.equal(isDatabaseFailure(new TypeError("Cannot read properties of undefined (reading 'x')")), false);
    assert.equal(isDatabaseFailure('a string'), false);
  });
});

describe('the CLI error line', () => {
  it('puts message, detail, hint and node together, as the CLI always printed them', () => {
    const e = toDatabaseError(pgError('23505', 'duplicate key value violates unique constraint "t_pkey"',
      { detail: 'Key (id)=(1) already exists.', hint: 'Retry.' }), '127.0.0.1:9702', 'COPY into t failed');
    assert.equal(formatError(e),
      'COPY into t failed: duplicate key value violates unique constraint "t_pkey" (Key (id)=(1) already exists.). Hint: Retry. [node 127.0.0.1:9702]');
    assert.equal(formatError(new TimeoutError('COPY on 127.0.0.1:9701: no answer within the statement timeout (3 s)', '127.0.0.1:9701')),
      'COPY on 127.0.0.1:9701: no answer within the statement timeout (3 s) [node 127.0.0.1:9701]');
    assert.equal(formatError(toDatabaseError(pgError('42P01', 'relation "x" does not exist'))), 'relation "x" does not exist');
  });

  it('--json carries the same line and each field', () => {
    const e = toDatabaseError(pgError('23514', 'new row violates check constraint "c"', { detail: 'Failing row contains (1).', constraint: 'c', table: 't' }), 'w1:5432');
    assert.deepEqual(errorJson(e), {
      kind: 'CheckViolationError', message: 'new row violates check constraint "c" (Failing row contains (1).) [node w1:5432]',
      node: 'w1:5432', sqlState: '23514', detail: 'Failing row contains (1).', constraint: 'c', table: 't',
    });
    const bad = new BadInputError({ file: 'in.csv', line: 3, column: 'qty' }, 'invalid input syntax for type integer: "x"');
    assert.deepEqual(errorJson(bad), { kind: 'BadInputError', message: 'in.csv:3 column qty: invalid input syntax for type integer: "x"', file: 'in.csv', line: 3, column: 'qty' });
  });

  it('no plain Error reaches the user: unexpected errors become AdaptiveLoadErrors with their message', () => {
    const bug = new TypeError('x is not a function');
    const e = toUserError(bug);
    assert.equal(e.constructor, AdaptiveLoadError);
    assert.equal(e.message, 'x is not a function');
    assert.equal(e.cause, bug);
    assert.equal(exitCodeFor(e), 1);
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x/p.json'"), { code: 'ENOENT', syscall: 'open', path: '/x/p.json' });
    assert.equal(toUserError(enoent).name, 'AdaptiveLoadError');
    assert.equal(toUserError('thrown string').message, 'thrown string');
    assert.ok(toUserError(socketError('ECONNRESET')) instanceof ConnectionLostError);
    const config = new InvalidConfigurationError('--shard-count must be >= 1, got 0');
    assert.equal(toUserError(config), config);
    assert.equal(exitCodeFor(config), 2);
  });
});
