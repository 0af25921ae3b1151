/**
 * One error hierarchy for everything a user can see. Every error says what failed, where, and
 * (where there is one) what to do; the original error is kept as `cause`.
 */
export class AdaptiveLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Options or environment that cannot work together; the message says which and how to fix it. */
export class InvalidConfigurationError extends AdaptiveLoadError {}

/** Where in the input a problem was found. `line` is the 1-based physical line where the row starts. */
export interface InputPosition {
  readonly file: string;
  readonly line: number;
  readonly column?: string;
}

export function formatPosition(p: InputPosition): string {
  return `${p.file}:${p.line}${p.column === undefined ? '' : ` column ${p.column}`}`;
}

/** A row of the input that cannot be loaded (malformed, NULL distribution value, rejected by PostgreSQL...). */
export class BadInputError extends AdaptiveLoadError {
  constructor(
    readonly position: InputPosition,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${formatPosition(position)}: ${reason}`, options);
  }
}

/** The input as a whole cannot be read (missing, empty, unreadable). */
export class InputFileError extends AdaptiveLoadError {}

/** The target table or one of its columns does not exist or cannot be loaded. */
export class TargetTableError extends AdaptiveLoadError {}

/** The cluster is not in a state the load can use (max_prepared_transactions = 0, node unreachable...). */
export class ClusterStateError extends AdaptiveLoadError {}

/** An error PostgreSQL raised, with its SQLSTATE and the node it came from. */
export class DatabaseError extends AdaptiveLoadError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    readonly node: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class UniqueViolationError extends DatabaseError {}
export class ForeignKeyViolationError extends DatabaseError {}
export class CheckViolationError extends DatabaseError {}
export class NotNullViolationError extends DatabaseError {}
export class InvalidTextRepresentationError extends DatabaseError {}
/** Serialization failure, deadlock and other SQLSTATE class 40 errors: safe to retry. */
export class RetryableTransactionError extends DatabaseError {}
export class QueryCanceledError extends DatabaseError {}
export class ConnectionLostError extends DatabaseError {}
/** A node did not answer within the bound the load set (connect, statement or lock timeout). */
export class TimeoutError extends DatabaseError {
  constructor(message: string, node: string | undefined, options?: { cause?: unknown }) {
    super(message, undefined, node, options);
  }
}

interface PgErrorLike {
  message?: string;
  code?: string;
  detail?: string;
  hint?: string;
  where?: string;
  constraint?: string;
}

/** The one place SQLSTATE codes become error classes. */
export function toDatabaseError(err: unknown, node?: string, context?: string): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const e = (err ?? {}) as PgErrorLike;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const parts = [context ? `${context}: ` : '', e.message ?? String(err)];
  if (e.detail) parts.push(` (${e.detail})`);
  if (e.hint) parts.push(`. Hint: ${e.hint}`);
  if (node) parts.push(` [node ${node}]`);
  const message = parts.join('');
  const lost = code === undefined && /Connection terminated|connection ended/i.test(message);
  const cls = lost ? ConnectionLostError : errorClassFor(code);
  return new cls(message, code, node, { cause: err });
}

function errorClassFor(code: string | undefined): typeof DatabaseError {
  if (code === undefined) return DatabaseError;
  // Node's socket errors (ECONNREFUSED, ECONNRESET, ...) mean the node went away.
  if (/^E[A-Z]+$/.test(code)) return ConnectionLostError;
  switch (code) {
    case '23505': return UniqueViolationError;
    case '23503': return ForeignKeyViolationError;
    case '23514': return CheckViolationError;
    case '23502': return NotNullViolationError;
    case '22P02': return InvalidTextRepresentationError;
    case '57014': return QueryCanceledError;
    default:
      if (code.startsWith('40')) return RetryableTransactionError;
      if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return ConnectionLostError;
      return DatabaseError;
  }
}
