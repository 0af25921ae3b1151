/**
 * The CLI's edge for errors: the one place an error becomes the line a person reads (stderr)
 * and the object a program reads (--json). Below this, errors carry their parts as properties
 * (DatabaseError: node, SQLSTATE, detail, hint...) and nobody pastes them into messages.
 */
import {
  AdaptiveLoadError, BadInputError, DatabaseError, describeError, InvalidConfigurationError, isDatabaseFailure, toDatabaseError,
} from '../errors.js';

/**
 * Every error shown to the user is an AdaptiveLoadError: PostgreSQL's and the network's become
 * DatabaseErrors (classified by SQLSTATE); anything else (a file the CLI writes, a bug) keeps
 * its message in a plain AdaptiveLoadError, with the original as `cause`.
 */
export function toUserError(err: unknown): AdaptiveLoadError {
  if (err instanceof AdaptiveLoadError) return err;
  if (isDatabaseFailure(err)) return toDatabaseError(err);
  return new AdaptiveLoadError(err instanceof Error ? err.message : String(err), { cause: err });
}

/** The full line: the message, PostgreSQL's detail and hint, and the node it came from. */
export function formatError(e: AdaptiveLoadError): string {
  return describeError(e);
}

/** The --json error object: the same line as stderr, plus each part for programs to use. */
export function errorJson(e: AdaptiveLoadError): Record<string, unknown> {
  const position = e instanceof BadInputError ? { file: e.position.file, line: e.position.line, column: e.position.column } : {};
  const fields = e instanceof DatabaseError ? e.fields() : {};
  return { kind: e.name, message: formatError(e), ...position, ...fields };
}

/** Exit status: 0 done, 1 the work failed, 2 the command line or configuration is wrong. */
export function exitCodeFor(e: AdaptiveLoadError): number {
  return e instanceof InvalidConfigurationError ? 2 : 1;
}

/** A command's failure: one line on stderr, the same as JSON on stdout with --json, and the exit status. */
export function reportFailure(json: boolean, err: unknown): void {
  const e = toUserError(err);
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error: errorJson(e) })}\n`);
  process.stderr.write(`citus-adaptive-load: ${formatError(e)}\n`);
  process.exitCode = exitCodeFor(e);
}
