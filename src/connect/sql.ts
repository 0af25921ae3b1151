import pg from 'pg';

/**
 * Every identifier that reaches SQL goes through quoteIdent; every value is a bound parameter,
 * or, where PostgreSQL takes no parameters (COPY options, PREPARE TRANSACTION), quoteLiteral.
 * Both are node-postgres's own escaping (the driver the statements go through).
 */
export function quoteIdent(name: string): string {
  return pg.escapeIdentifier(name);
}

/** A schema-qualified, quoted name. */
export function qualifiedName(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** A SQL string literal (E'...' when it holds a backslash; pg puts a space before the E). */
export function quoteLiteral(value: string): string {
  return pg.escapeLiteral(value).trimStart();
}
