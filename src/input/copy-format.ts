import { InvalidConfigurationError } from '../errors.js';

/** The options of COPY's csv and text formats that decide how the bytes of a row are split. */
export interface CopyFormat {
  readonly kind: 'csv' | 'text';
  /** Field delimiter byte. Default: ',' for csv, tab for text. */
  readonly delimiter: number;
  /** Quote byte (csv only). Default '"'. */
  readonly quote: number;
  /** Escape byte (csv only). Default: the quote. */
  readonly escape: number;
  /** The string that stands for NULL. Default: '' (csv) or '\N' (text). */
  readonly nullString: string;
  /** Client-side encoding of the input, as PostgreSQL names it. Default 'UTF8'. */
  readonly encoding: string;
}

export interface CopyFormatInput {
  format?: 'csv' | 'text';
  delimiter?: string;
  quote?: string;
  escape?: string;
  null?: string;
  encoding?: string;
}

/**
 * Every encoding name and alias PostgreSQL accepts (pg_encname_tbl in encnames.c), cleaned as it
 * cleans them (letters and digits only, here in upper case). Every encoding is a valid client
 * encoding. A static list, so a typo fails here, before any COPY is sent; the plain PostgreSQL
 * suite checks every name against pg_char_to_encoding.
 */
export const CLIENT_ENCODING_NAMES: ReadonlySet<string> = new Set([
  'ABC', 'ALT', 'BIG5', 'EUCCN', 'EUCJIS2004', 'EUCJP', 'EUCKR', 'EUCTW', 'GB18030', 'GBK',
  'ISO88591', 'ISO885910', 'ISO885913', 'ISO885914', 'ISO885915', 'ISO885916', 'ISO88592', 'ISO88593',
  'ISO88594', 'ISO88595', 'ISO88596', 'ISO88597', 'ISO88598', 'ISO88599', 'JOHAB', 'KOI8', 'KOI8R', 'KOI8U',
  'LATIN1', 'LATIN2', 'LATIN3', 'LATIN4', 'LATIN5', 'LATIN6', 'LATIN7', 'LATIN8', 'LATIN9', 'LATIN10',
  'MSKANJI', 'MULEINTERNAL', 'SHIFTJIS', 'SHIFTJIS2004', 'SJIS', 'SQLASCII', 'TCVN', 'TCVN5712', 'UHC',
  'UNICODE', 'UTF8', 'VSCII', 'WIN', 'WIN1250', 'WIN1251', 'WIN1252', 'WIN1253', 'WIN1254', 'WIN1255',
  'WIN1256', 'WIN1257', 'WIN1258', 'WIN866', 'WIN874', 'WIN932', 'WIN936', 'WIN949', 'WIN950',
  'WINDOWS1250', 'WINDOWS1251', 'WINDOWS1252', 'WINDOWS1253', 'WINDOWS1254', 'WINDOWS1255', 'WINDOWS1256',
  'WINDOWS1257', 'WINDOWS1258', 'WINDOWS866', 'WINDOWS874', 'WINDOWS932', 'WINDOWS936', 'WINDOWS949', 'WINDOWS950',
]);

/** Options arrive from the command line and from SQL requests (JSON): check types, not just values. */
function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidConfigurationError(`--${name} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

function singleByte(name: string, value: string): number {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length !== 1 || bytes[0]! > 0x7f) {
    throw new InvalidConfigurationError(`--${name} must be a single ASCII character, got ${JSON.stringify(value)}`);
  }
  const b = bytes[0]!;
  if (b === 0x0a || b === 0x0d) throw new InvalidConfigurationError(`--${name} cannot be a newline or carriage return`);
  if (b === 0) throw new InvalidConfigurationError(`--${name} cannot be a NUL byte`);
  return b;
}

function checkKind(kind: unknown): 'csv' | 'text' {
  // Interpolated into COPY ... WITH (FORMAT kind): only these two words may ever get there.
  if (kind !== 'csv' && kind !== 'text') throw new InvalidConfigurationError(`--format must be csv or text, got ${JSON.stringify(kind)}`);
  return kind;
}

export function resolveCopyFormat(input: CopyFormatInput): CopyFormat {
  const kind = checkKind(input.format === undefined ? 'csv' : input.format); // null is a wrong value, not a missing one
  const delimiterText = optionalString('delimiter', input.delimiter);
  const quoteText = optionalString('quote', input.quote);
  const escapeText = optionalString('escape', input.escape);
  const nullString = optionalString('null', input.null) ?? (kind === 'csv' ? '' : '\\N');
  const encodingText = optionalString('encoding', input.encoding) ?? 'UTF8';
  const delimiter = singleByte('delimiter', delimiterText ?? (kind === 'csv' ? ',' : '\t'));
  const quote = kind === 'csv' ? singleByte('quote', quoteText ?? '"') : 0;
  const escape = kind === 'csv' ? singleByte('escape', escapeText ?? String.fromCharCode(quote)) : 0;
  if (kind === 'text' && (quoteText !== undefined || escapeText !== undefined)) {
    throw new InvalidConfigurationError('--quote and --escape apply to --format csv only');
  }
  if (kind === 'csv' && delimiter === quote) {
    throw new InvalidConfigurationError('the CSV delimiter and quote must differ');
  }
  if (kind === 'text' && delimiter === 0x5c) {
    throw new InvalidConfigurationError('the text format cannot use backslash as delimiter');
  }
  // The query string is NUL-terminated on the wire, and COPY refuses line breaks in NULL.
  if (nullString.includes('\0')) throw new InvalidConfigurationError('--null cannot contain a NUL byte');
  if (/[\r\n]/.test(nullString)) throw new InvalidConfigurationError('--null cannot contain a newline or carriage return');
  const encoding = encodingText.toUpperCase().replace(/[^A-Z0-9]/g, ''); // as PostgreSQL cleans names
  if (!CLIENT_ENCODING_NAMES.has(encoding)) {
    throw new InvalidConfigurationError(`--encoding ${JSON.stringify(encodingText)} is not an encoding PostgreSQL knows `
      + '(e.g. UTF8, LATIN1, WIN1252, SJIS; see "Character Set Support" in its manual)');
  }
  return { kind, delimiter, quote, escape, nullString, encoding };
}

/**
 * The WITH (...) options of a COPY statement that reads this format exactly as the scanner did.
 * The format word is checked again (a CopyFormat can be built without resolveCopyFormat); every
 * other value goes in as a quoted literal.
 */
export function copyOptionsSql(format: CopyFormat, quoteLiteral: (s: string) => string): string {
  const opts = [
    `FORMAT ${checkKind(format.kind)}`,
    `DELIMITER ${quoteLiteral(String.fromCharCode(format.delimiter))}`,
    `NULL ${quoteLiteral(format.nullString)}`,
  ];
  if (format.kind === 'csv') {
    opts.push(`QUOTE ${quoteLiteral(String.fromCharCode(format.quote))}`);
    opts.push(`ESCAPE ${quoteLiteral(String.fromCharCode(format.escape))}`);
  }
  return opts.join(', ');
}
