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

function singleByte(name: string, value: string): number {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length !== 1 || bytes[0]! > 0x7f) {
    throw new InvalidConfigurationError(`--${name} must be a single ASCII character, got ${JSON.stringify(value)}`);
  }
  const b = bytes[0]!;
  if (b === 0x0a || b === 0x0d) throw new InvalidConfigurationError(`--${name} cannot be a newline or carriage return`);
  return b;
}

export function resolveCopyFormat(input: CopyFormatInput): CopyFormat {
  const kind = input.format ?? 'csv';
  const delimiter = singleByte('delimiter', input.delimiter ?? (kind === 'csv' ? ',' : '\t'));
  const quote = kind === 'csv' ? singleByte('quote', input.quote ?? '"') : 0;
  const escape = kind === 'csv' ? singleByte('escape', input.escape ?? String.fromCharCode(quote)) : 0;
  if (kind === 'text' && (input.quote !== undefined || input.escape !== undefined)) {
    throw new InvalidConfigurationError('--quote and --escape apply to --format csv only');
  }
  if (kind === 'csv' && delimiter === quote) {
    throw new InvalidConfigurationError('the CSV delimiter and quote must differ');
  }
  if (kind === 'text' && delimiter === 0x5c) {
    throw new InvalidConfigurationError('the text format cannot use backslash as delimiter');
  }
  const encoding = (input.encoding ?? 'UTF8').toUpperCase().replace(/[^A-Z0-9]/g, ''); // as PostgreSQL cleans names
  return { kind, delimiter, quote, escape, nullString: input.null ?? (kind === 'csv' ? '' : '\\N'), encoding };
}

/** The WITH (...) options of a COPY statement that reads this format exactly as the scanner did. */
export function copyOptionsSql(format: CopyFormat, quoteLiteral: (s: string) => string): string {
  const opts = [
    `FORMAT ${format.kind}`,
    `DELIMITER ${quoteLiteral(String.fromCharCode(format.delimiter))}`,
    `NULL ${quoteLiteral(format.nullString)}`,
  ];
  if (format.kind === 'csv') {
    opts.push(`QUOTE ${quoteLiteral(String.fromCharCode(format.quote))}`);
    opts.push(`ESCAPE ${quoteLiteral(String.fromCharCode(format.escape))}`);
  }
  return opts.join(', ');
}
