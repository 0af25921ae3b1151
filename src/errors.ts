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

/** What PostgreSQL (or the socket) said about an error, kept field by field as pg reports them. */
export interface DatabaseErrorFields {
  /** The node the error came from, as `host:port` (or `coordinator`, or `user@host:port/db`). */
  readonly node?: string;
  /** SQLSTATE, or Node's socket error code (ECONNRESET...). */
  readonly sqlState?: string;
  readonly detail?: string;
  readonly hint?: string;
  /** The server's context: for COPY, `COPY t, line N, column c: ...`. */
  readonly where?: string;
  readonly constraint?: string;
  readonly schema?: string;
  readonly table?: string;
  readonly column?: string;
}

const FIELD_NAMES = ['node', 'sqlState', 'detail', 'hint', 'where', 'constraint', 'schema', 'table', 'column'] as const;

/**
 * An error PostgreSQL raised. The message is the server's (after the context this process adds,
 * such as `cannot connect`); the node, detail and hint are properties, put into one line only
 * where a person reads it (the CLI), so no caller has to take a message apart again.
 */
export class DatabaseError extends AdaptiveLoadError implements DatabaseErrorFields {
  // `declare`: a field pg did not give is absent, not undefined, so `'where' in err` still tells
  // a server error with a position from one without (see the COPY retry in load/writer-pool.ts).
  declare readonly node?: string;
  declare readonly sqlState?: string;
  declare readonly detail?: string;
  declare readonly hint?: string;
  declare readonly where?: string;
  declare readonly constraint?: string;
  declare readonly schema?: string;
  declare readonly table?: string;
  declare readonly column?: string;

  constructor(message: string, fields: DatabaseErrorFields = {}, options?: { cause?: unknown }) {
    super(message, options);
    const self = this as { -readonly [K in keyof DatabaseErrorFields]: DatabaseErrorFields[K] };
    for (const k of FIELD_NAMES) if (fields[k] !== undefined) self[k] = fields[k];
  }

  /** The fields that are set, for JSON output. */
  fields(): DatabaseErrorFields {
    return Object.fromEntries(FIELD_NAMES.filter((k) => this[k] !== undefined).map((k) => [k, this[k]]));
  }
}

/**
 * The server's message with its detail and hint, without the node: the reason a row was
 * rejected is stored (rejects file) and shown next to its own position, so it needs the
 * server's whole explanation but not where the node suffix goes.
 */
export function serverExplanation(e: DatabaseError): string {
  return `${e.message}${e.detail ? ` (${e.detail})` : ''}${e.hint ? `. Hint: ${e.hint}` : ''}`;
}

/**
 * The whole line for a person: the message, PostgreSQL's detail and hint, and the node it came
 * from. The CLI prints it; the job and request rows store it, so they keep the node too.
 */
export function describeError(err: unknown): string {
  if (err instanceof DatabaseError) return `${serverExplanation(err)}${err.node ? ` [node ${err.node}]` : ''}`;
  return err instanceof Error ? err.message : String(err);
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
    super(message, node === undefined ? {} : { node }, options);
  }
}

interface PgErrorLike {
  message?: unknown;
  code?: unknown;
  severity?: unknown;
  path?: unknown;
  detail?: unknown;
  hint?: unknown;
  where?: unknown;
  constraint?: unknown;
  schema?: unknown;
  table?: unknown;
  column?: unknown;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** pg's client says this (with no code) when the server or the network ends the connection. */
const CONNECTION_ENDED = /Connection terminated|connection ended/i;

/**
 * Whether an error came from PostgreSQL or the connection to it (as opposed to this process's
 * own bugs or the file system): a server error (severity, SQLSTATE), a socket error, or pg's
 * own "connection terminated". fs errors carry a `path` and are not database errors even
 * though their codes look like socket codes; a failed connect may come as an AggregateError
 * with the code and no syscall, so the syscall is not required.
 */
export function isDatabaseFailure(err: unknown): boolean {
  if (err instanceof DatabaseError) return true;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as PgErrorLike;
  if (typeof e.severity === 'string') return true;
  const code = text(e.code);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return true;
  if (code !== undefined && /^E[A-Z]+$/.test(code)) return e.path === undefined;
  return code === undefined && typeof e.message === 'string' && CONNECTION_ENDED.test(e.message);
}

/** The one place SQLSTATE codes become error classes. `context` is prefixed to the server's message. */
export function toDatabaseError(err: unknown, node?: string, context?: string): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as PgErrorLike;
  const code = text(e.code);
  const serverMessage = typeof e.message === 'string' ? e.message : String(err);
  const message = `${context ? `${context}: ` : ''}${serverMessage}`;
  const lost = code === undefined && CONNECTION_ENDED.test(serverMessage);
  const cls = lost ? ConnectionLostError : errorClassFor(code);
  return new cls(message, {
    node, sqlState: code, detail: text(e.detail), hint: text(e.hint), where: text(e.where),
    constraint: text(e.constraint), schema: text(e.schema), table: text(e.table), column: text(e.column),
  }, { cause: err });
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
