import { hashBytes, hashInt8BigInt, hashInt8Number, hashUint32 } from './pg-hash.js';

/**
 * Hashing a distribution value as Citus does: first canonicalize the input text as the type's
 * PostgreSQL input function would (int8in, uuid_in, date_in, ...), then apply the type's
 * default hash opclass function. Every hasher accepts only input forms whose meaning it knows
 * for certain; anything else yields UNSURE, and the caller must ask PostgreSQL (never guess).
 */

/** Not an int32: the client cannot be certain what PostgreSQL would make of this input. */
export const UNSURE = 0x100000000;

export interface ValueHasher {
  /** Hash of the value spelled by buf[start, end), as a signed int32, or UNSURE. */
  hash(buf: Uint8Array, start: number, end: number): number;
}

/** The base types whose input and hash functions are reimplemented here. */
export type HashableType = 'int2' | 'int4' | 'int8' | 'text' | 'varchar' | 'bpchar' | 'uuid' | 'date'
  | 'timestamp' | 'timestamptz' | 'bool';

export const HASHABLE_TYPES: readonly HashableType[] = ['int2', 'int4', 'int8', 'text', 'varchar', 'bpchar', 'uuid',
  'date', 'timestamp', 'timestamptz', 'bool'];

export interface ColumnTypeInfo {
  /** pg_type.typname of the column's base type (domains resolved). */
  readonly typeName: string;
  /** Length limit in characters for varchar(n)/char(n), otherwise undefined. */
  readonly maxChars?: number;
}

export function isHashableType(typeName: string): typeName is HashableType {
  return (HASHABLE_TYPES as readonly string[]).includes(typeName);
}

export function valueHasherFor(type: ColumnTypeInfo): ValueHasher {
  switch (type.typeName) {
    case 'int2': return new IntegerHasher(-32768, 32767);
    case 'int4': return new IntegerHasher(-2147483648, 2147483647);
    case 'int8': return new Int8Hasher();
    case 'text': return new TextHasher(undefined);
    case 'varchar': return new TextHasher(type.maxChars);
    case 'bpchar': return new BpcharHasher(type.maxChars);
    case 'uuid': return new UuidHasher();
    case 'date': return new DateHasher();
    case 'timestamp': return new TimestampHasher(false);
    case 'timestamptz': return new TimestampHasher(true);
    case 'bool': return new BoolHasher();
    default: throw new Error(`no client-side hash for type ${type.typeName}`);
  }
}

// C's isspace() in the "C" locale, which PostgreSQL's integer and bool input functions use.
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * pg_strtoint16/32 (PostgreSQL 15): optional surrounding whitespace, optional sign, decimal
 * digits only. Overflow and bad syntax are errors in PostgreSQL, so UNSURE here (the server
 * then reports the exact error).
 */
class IntegerHasher implements ValueHasher {
  constructor(private readonly min: number, private readonly max: number) {}

  hash(buf: Uint8Array, start: number, end: number): number {
    const v = parseDecimalInteger(buf, start, end);
    if (v === undefined || v < this.min || v > this.max) return UNSURE;
    return hashUint32(v);
  }
}

const SAFE_DIGITS = 15;

/** Parses int text exactly as pg_strtoint64 accepts it; undefined if not certain (or too long for a double). */
function parseDecimalInteger(buf: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  while (i < end && isSpace(buf[i]!)) i++;
  let negative = false;
  if (buf[i] === 0x2d) { negative = true; i++; } else if (buf[i] === 0x2b) i++;
  const digitsStart = i;
  let v = 0;
  while (i < end && isDigit(buf[i]!)) {
    v = v * 10 + (buf[i]! - 0x30);
    i++;
  }
  const digits = i - digitsStart;
  if (digits === 0 || digits > SAFE_DIGITS) return undefined;
  while (i < end && isSpace(buf[i]!)) i++;
  if (i !== end) return undefined;
  return negative ? -v : v;
}

class Int8Hasher implements ValueHasher {
  hash(buf: Uint8Array, start: number, end: number): number {
    const v = parseDecimalInteger(buf, start, end);
    if (v !== undefined) return hashInt8Number(v);
    return this.slowPath(buf, start, end);
  }

  /** 16 to 19 digits: exact with BigInt, range-checked like int8in. */
  private slowPath(buf: Uint8Array, start: number, end: number): number {
    const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
    const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]{1,19})[ \t\n\v\f\r]*$/.exec(text);
    if (!m) return UNSURE;
    const v = BigInt(`${m[1] === '-' ? '-' : ''}${m[2]}`);
    if (v < -(2n ** 63n) || v > 2n ** 63n - 1n) return UNSURE;
    return hashInt8BigInt(v);
  }
}

/** Number of UTF-8 characters in buf[start, end) (counts lead bytes). */
function utf8Chars(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if ((buf[i]! & 0xc0) !== 0x80) n++;
  return n;
}

/**
 * hashtext under a deterministic collation: hash_bytes over the stored bytes. varchar(n) input
 * silently truncates trailing spaces beyond n (and rejects other excess), so over-long
 * values are UNSURE.
 */
class TextHasher implements ValueHasher {
  constructor(private readonly maxChars: number | undefined) {}

  hash(buf: Uint8Array, start: number, end: number): number {
    const max = this.maxChars;
    if (max !== undefined && end - start > max && utf8Chars(buf, start, end) > max) return UNSURE;
    return hashBytes(buf, start, end);
  }
}

/** hashbpchar: trailing blanks do not count. char(n) pads or trims blanks, rejects other excess. */
class BpcharHasher implements ValueHasher {
  constructor(private readonly maxChars: number | undefined) {}

  hash(buf: Uint8Array, start: number, end: number): number {
    let e = end;
    while (e > start && buf[e - 1] === 0x20) e--;
    const max = this.maxChars;
    if (max !== undefined && e - start > max && utf8Chars(buf, start, e) > max) return UNSURE;
    return hashBytes(buf, start, e);
  }
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** uuid_in's string_to_uuid: optional braces, a hyphen allowed after any group of four digits. */
class UuidHasher implements ValueHasher {
  private readonly bytes = new Uint8Array(16);

  hash(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    const braces = buf[i] === 0x7b;
    if (braces) i++;
    for (let k = 0; k < 16; k++) {
      if (i + 1 >= end) return UNSURE;
      const hi = hexNibble(buf[i]!);
      const lo = hexNibble(buf[i + 1]!);
      if (hi < 0 || lo < 0) return UNSURE;
      this.bytes[k] = (hi << 4) | lo;
      i += 2;
      if (i < end && buf[i] === 0x2d && (k % 2) === 1 && k < 15) i++;
    }
    if (braces) {
      if (buf[i] !== 0x7d) return UNSURE;
      i++;
    }
    if (i !== end) return UNSURE;
    return hashBytes(this.bytes, 0, 16);
  }
}

/** date2j() from PostgreSQL's datetime.c: the Julian day number. */
function date2j(year: number, month: number, day: number): number {
  let y = year;
  let m = month;
  if (m > 2) { m += 1; y += 4800; } else { m += 13; y += 4799; }
  const century = Math.floor(y / 100);
  let julian = y * 365 - 32167;
  julian += Math.floor(y / 4) - century + Math.floor(century / 4);
  julian += Math.floor((7834 * m) / 256) + day;
  return julian;
}

const POSTGRES_EPOCH_JDATE = date2j(2000, 1, 1);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function digitsAt(buf: Uint8Array, i: number, count: number): number {
  let v = 0;
  for (let k = 0; k < count; k++) {
    const c = buf[i + k];
    if (c === undefined || !isDigit(c)) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** Days since 2000-01-01 of a strict ISO 'YYYY-MM-DD' at buf[i], or undefined. */
function isoDate(buf: Uint8Array, i: number): number | undefined {
  const y = digitsAt(buf, i, 4);
  const m = digitsAt(buf, i + 5, 2);
  const d = digitsAt(buf, i + 8, 2);
  if (y < 1 || m < 1 || m > 12 || d < 1 || buf[i + 4] !== 0x2d || buf[i + 7] !== 0x2d) return undefined;
  const dim = m === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[m - 1]!;
  if (d > dim) return undefined;
  return date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
}

/**
 * date: only strict ISO 'YYYY-MM-DD' is certain (other spellings depend on DateStyle);
 * the hash is hashint4 of the day number.
 */
class DateHasher implements ValueHasher {
  hash(buf: Uint8Array, start: number, end: number): number {
    if (end - start !== 10) return UNSURE;
    const days = isoDate(buf, start);
    return days === undefined ? UNSURE : hashUint32(days);
  }
}

/**
 * timestamp / timestamptz: strict ISO 'YYYY-MM-DD[ T]HH:MM:SS[.ffffff]'; for timestamptz an
 * explicit offset (Z, ±HH, ±HHMM, ±HH:MM) is required, since without one the value depends on
 * the session TimeZone. The hash is hashint8 of microseconds since 2000-01-01 (UTC for timestamptz).
 */
class TimestampHasher implements ValueHasher {
  constructor(private readonly withZone: boolean) {}

  hash(buf: Uint8Array, start: number, end: number): number {
    if (end - start < 19) return UNSURE;
    const days = isoDate(buf, start);
    if (days === undefined) return UNSURE;
    const sep = buf[start + 10];
    if (sep !== 0x20 && sep !== 0x54) return UNSURE;
    const hh = digitsAt(buf, start + 11, 2);
    const mm = digitsAt(buf, start + 14, 2);
    const ss = digitsAt(buf, start + 17, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59
      || buf[start + 13] !== 0x3a || buf[start + 16] !== 0x3a) return UNSURE;
    let i = start + 19;
    let micros = 0;
    if (buf[i] === 0x2e) {
      i++;
      let scale = 100000;
      const fracStart = i;
      while (i < end && isDigit(buf[i]!)) {
        if (scale < 1) return UNSURE; // more than 6 digits: PostgreSQL rounds
        micros += (buf[i]! - 0x30) * scale;
        scale /= 10;
        i++;
      }
      if (i === fracStart) return UNSURE;
    }
    let offsetSeconds = 0;
    if (this.withZone) {
      const z = buf[i];
      if (z === 0x5a /* Z */ && i + 1 === end) {
        i++;
      } else if (z === 0x2b || z === 0x2d) {
        const oh = digitsAt(buf, i + 1, 2);
        if (oh < 0 || oh > 15) return UNSURE;
        let om = 0;
        let j = i + 3;
        if (buf[j] === 0x3a) j++;
        if (j < end) {
          om = digitsAt(buf, j, 2);
          if (om < 0 || om > 59) return UNSURE;
          j += 2;
        } else if (buf[j - 1] === 0x3a) return UNSURE;
        offsetSeconds = (oh * 3600 + om * 60) * (z === 0x2d ? -1 : 1);
        i = j;
      } else {
        return UNSURE;
      }
    }
    if (i !== end) return UNSURE;
    const seconds = days * 86400 + hh * 3600 + mm * 60 + ss - offsetSeconds;
    return hashInt8BigInt(BigInt(seconds) * 1000000n + BigInt(micros));
  }
}

/** boolin / parse_bool_with_len: whitespace-trimmed, case-insensitive unique prefixes. */
class BoolHasher implements ValueHasher {
  hash(buf: Uint8Array, start: number, end: number): number {
    let s = start;
    let e = end;
    while (s < e && isSpace(buf[s]!)) s++;
    while (e > s && isSpace(buf[e - 1]!)) e--;
    const word = Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('latin1').toLowerCase();
    const value = parseBool(word);
    return value === undefined ? UNSURE : hashUint32(value ? 1 : 0);
  }
}

function parseBool(w: string): boolean | undefined {
  if (w.length === 0) return undefined;
  const prefixOf = (full: string, min: number): boolean => w.length >= min && full.startsWith(w);
  switch (w[0]) {
    case 't': return prefixOf('true', 1) ? true : undefined;
    case 'f': return prefixOf('false', 1) ? false : undefined;
    case 'y': return prefixOf('yes', 1) ? true : undefined;
    case 'n': return prefixOf('no', 1) ? false : undefined;
    case 'o':
      if (prefixOf('on', 2)) return true;
      if (prefixOf('off', 2)) return false;
      return undefined;
    case '1': return w.length === 1 ? true : undefined;
    case '0': return w.length === 1 ? false : undefined;
    default: return undefined;
  }
}
