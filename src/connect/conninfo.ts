import { parse as parseConnectionString } from 'pg-connection-string';
import { InvalidConfigurationError } from '../errors.js';

/**
 * Connection strings in both of libpq's forms: `postgres[ql]://...` URLs and keyword/value
 * strings (`host=db1 port=5432 password='a b'`). Keyword/value strings are tokenized as libpq's
 * conninfo_parse does (whitespace around `=`, values single-quoted with backslash escapes) and
 * re-expressed as a URL, so pg-connection-string does everything after (TLS modes, types) the
 * same way for both. No package parses the keyword form; it is this small.
 */

/** The settings of a connection string, as pg-connection-string returns them (all strings). */
export type ConninfoSettings = Record<string, string | boolean | object | null | undefined>;

const KEYWORDS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'passfile', 'connect_timeout', 'client_encoding',
  'options', 'application_name', 'fallback_application_name', 'keepalives', 'keepalives_idle',
  'keepalives_interval', 'keepalives_count', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert', 'sslcrl',
  'target_session_attrs', 'uselibpqcompat',
]);

export function isUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s.trim());
}

/** Parses either form; errors never repeat the string (it may hold a password). */
export function parseConninfo(s: string): ConninfoSettings {
  const url = isUrl(s) ? s.trim() : keywordsToUrl(parseKeywords(s));
  try {
    return parseConnectionString(url) as ConninfoSettings;
  } catch (err) {
    throw new InvalidConfigurationError(`invalid connection string ${redactConninfo(s)}: ${(err as Error).message}`);
  }
}

export function parseKeywords(s: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const skipSpace = () => { while (i < s.length && /\s/.test(s[i]!)) i++; };
  for (;;) {
    skipSpace();
    if (i >= s.length) return out;
    const start = i;
    while (i < s.length && s[i] !== '=' && !/\s/.test(s[i]!)) i++;
    const key = s.slice(start, i);
    skipSpace();
    if (s[i] !== '=') {
      throw new InvalidConfigurationError(`connection string: missing "=" after ${JSON.stringify(key)} `
        + '(expected a postgres:// URL or keyword=value pairs)');
    }
    i++;
    skipSpace();
    let value = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) throw new InvalidConfigurationError(`connection string: unterminated quoted value for ${key}`);
        const c = s[i++]!;
        if (c === "'") break;
        value += c === '\\' && i < s.length ? s[i++]! : c;
      }
    } else {
      while (i < s.length && !/\s/.test(s[i]!)) {
        const c = s[i++]!;
        value += c === '\\' && i < s.length ? s[i++]! : c;
      }
    }
    if (!KEYWORDS.has(key)) throw new InvalidConfigurationError(`connection string: invalid keyword ${JSON.stringify(key)}`);
    out.set(key, value);
  }
}

function keywordsToUrl(kv: Map<string, string>): string {
  const enc = encodeURIComponent;
  const user = kv.get('user');
  const password = kv.get('password');
  const auth = user !== undefined || password !== undefined
    ? `${enc(user ?? '')}${password !== undefined ? `:${enc(password)}` : ''}@` : '';
  const params = new URLSearchParams();
  for (const [k, v] of kv) {
    if (k === 'user' || k === 'password' || k === 'dbname') continue;
    params.set(k === 'hostaddr' && !kv.has('host') ? 'host' : k, v);
  }
  const query = params.toString();
  return `postgres://${auth}/${enc(kv.get('dbname') ?? '')}${query ? `?${query}` : ''}`;
}

/** The string with any password replaced by ***, in either form. */
export function redactConninfo(s: string): string {
  if (isUrl(s)) {
    return s.replace(/(\/\/[^:/@]*:)([^@]*)@/, '$1***@').replace(/([?&]password=)[^&]*/gi, '$1***');
  }
  return s.replace(/(password\s*=\s*)('(?:\\.|[^'])*'|\S*)/gi, '$1***');
}
