import { InvalidConfigurationError } from '../errors.js';
import { qualifiedName, quoteIdent } from './sql.js';

/** A table name as PostgreSQL reads it: the schema when one was given, and the name, both unquoted. */
export interface QualifiedName {
  readonly schema?: string;
  readonly name: string;
}

/** PostgreSQL keeps identifiers up to NAMEDATALEN - 1 bytes and truncates longer ones. */
const MAX_IDENT_BYTES = 63;
/** The SQL lexer's unquoted identifier (ident_start, ident_cont); bytes >= 0x80 are letters to it. */
const UNQUOTED = /^[A-Za-z_\u0080-\u{10FFFF}][A-Za-z0-9_$\u0080-\u{10FFFF}]*/u;

/**
 * Reads `name`, `schema.name`, `"Mixed Case"`, `"my.schema"."t"` or `"we""ird"` as psql would:
 * unquoted parts fold to lower case (ASCII letters only, as PostgreSQL does under UTF8), quoted
 * parts keep their case and may hold dots and doubled quotes. Anything else is refused here, before
 * it reaches a database, so a typo fails as a command-line error rather than as "does not exist".
 */
export function parseQualifiedName(text: string, what = '--table'): QualifiedName {
  const bad = (why: string) => new InvalidConfigurationError(`${what} ${JSON.stringify(text)} is not a valid table name: ${why}`);
  const parts: string[] = [];
  let i = 0;
  const skipSpace = () => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  for (;;) {
    skipSpace();
    let part: string;
    if (text[i] === '"') {
      part = '';
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close < 0) throw bad('a quoted name is not closed');
        part += text.slice(i, close);
        i = close + 1;
        if (text[i] !== '"') break;
        part += '"'; // a doubled quote stands for one
        i++;
      }
      if (part === '') throw bad('a quoted name is empty');
    } else {
      const m = UNQUOTED.exec(text.slice(i));
      if (!m) throw bad(i >= text.length || text[i] === '.' ? 'a part of it is empty' : `unexpected ${JSON.stringify(text[i])} (quote names with other characters: '"My Table"')`);
      part = m[0].replace(/[A-Z]+/g, (s) => s.toLowerCase());
      i += m[0].length;
    }
    parts.push(truncate(part));
    skipSpace();
    if (i >= text.length) break;
    if (text[i] !== '.') throw bad(`unexpected ${JSON.stringify(text[i])} (quote names with other characters: '"My Table"')`);
    i++;
  }
  if (parts.length > 2) throw bad('give it as table or schema.table');
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { name: parts[0]! };
}

/** The name with every part quoted: safe in any SQL text, and it reads back as the same name. */
export function quoteQualifiedName(q: QualifiedName): string {
  return q.schema === undefined ? quoteIdent(q.name) : qualifiedName(q.schema, q.name);
}

/** Cuts an identifier to 63 bytes without splitting a UTF-8 character, as PostgreSQL does. */
function truncate(ident: string): string {
  if (Buffer.byteLength(ident) <= MAX_IDENT_BYTES) return ident;
  let out = '';
  for (const ch of ident) {
    if (Buffer.byteLength(out + ch) > MAX_IDENT_BYTES) break;
    out += ch;
  }
  return out;
}
