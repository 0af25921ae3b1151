// AssemblyScript, compiled to WebAssembly by `npm run build` (asc). The loader's hot path for
// the common case: rows without quotes or backslashes whose distribution value is an integer
// or plain text. For each such row it finds the line end and the distribution field with SIMD
// compares, hashes the value exactly as PostgreSQL does, finds the shard by binary search over
// the real hash ranges, and copies the row's bytes into that shard's staging area. Anything
// else (a quote, a bad field count, the NULL marker, a value it cannot hash with certainty)
// stops the kernel at that row, and the JavaScript scanner, the reference implementation,
// takes it. Written in WebAssembly because per-row work in JavaScript (a typed-array view per
// row copy, the garbage it makes, the byte loop) was the client's main cost.
//
// Memory is imported and laid out by the caller (src/routing/fast-router.ts); nothing here
// allocates. native/abi.ts is the contract between the two.

import {
  STOP_END, STOP_SLOW, STOP_FULL, KEY_INT2, KEY_INT4, KEY_INT8, KEY_TEXT,
  CFG_DELIMITER, CFG_SPECIAL, CFG_QUOTED_FIELDS, CFG_CRLF, CFG_FIELD, CFG_FIELDS, CFG_KEY_KIND, CFG_MAX_CHARS,
  CFG_NULL_PTR, CFG_NULL_LEN, CFG_MINS_PTR, CFG_ORDER_PTR, CFG_SHARDS, CFG_STAGED_LEN_PTR, CFG_STAGED_ROWS_PTR,
  CFG_STAGING_PTR, CFG_STAGING_BYTES, CFG_META_PTR, CFG_META_ROWS, CFG_TOUCHED_PTR,
} from './abi';

const LF: u8 = 0x0a;
const CR: u8 = 0x0d;
const BACKSLASH: u8 = 0x5c;
const SPACE: u8 = 0x20;

// Configuration, set once by configure().
let delim: u8 = 0x2c;
let special: u8 = 0x22;
/** csv with the quote as its own escape: quoted stretches can be skipped here. */
let quotes = false;
let crlf = false;
let fieldIndex: i32 = 0;
let expectedFields: i32 = 0;
let keyKind: i32 = 0;
let maxChars: i32 = -1;
let nullPtr: usize = 0;
let nullLen: i32 = 0;
let minsPtr: usize = 0; // i32[shardCount], ascending shardminvalue
let orderPtr: usize = 0; // i32[shardCount], target index of each sorted shard
let shardCount: i32 = 0;
let stagedLenPtr: usize = 0; // i32[targets]: bytes staged per target
let stagedRowsPtr: usize = 0; // i32[targets]: rows staged per target
let stagingPtr: usize = 0; // targets × stagingCap bytes
let stagingCap: i32 = 0;
let metaPtr: usize = 0; // targets × metaCap × (offset i32, line i32)
let metaCap: i32 = 0;
let touchedPtr: usize = 0; // i32[targets]: targets staged since the last reset, in first-touch order
let touchedCount: i32 = 0;

// Results of the last scan().
let rowsDone: i32 = 0;
let stopReason: i32 = 0;

@inline function slot(block: usize, index: i32): i32 {
  return load<i32>(block + (<usize>index << 2));
}

/** Reads the configuration block the binding wrote (slots in native/abi.ts). */
export function configure(block: usize): void {
  delim = <u8>slot(block, CFG_DELIMITER);
  special = <u8>slot(block, CFG_SPECIAL);
  quotes = slot(block, CFG_QUOTED_FIELDS) != 0;
  crlf = slot(block, CFG_CRLF) != 0;
  fieldIndex = slot(block, CFG_FIELD);
  expectedFields = slot(block, CFG_FIELDS);
  keyKind = slot(block, CFG_KEY_KIND);
  maxChars = slot(block, CFG_MAX_CHARS);
  nullPtr = <usize>slot(block, CFG_NULL_PTR);
  nullLen = slot(block, CFG_NULL_LEN);
  minsPtr = <usize>slot(block, CFG_MINS_PTR);
  orderPtr = <usize>slot(block, CFG_ORDER_PTR);
  shardCount = slot(block, CFG_SHARDS);
  stagedLenPtr = <usize>slot(block, CFG_STAGED_LEN_PTR);
  stagedRowsPtr = <usize>slot(block, CFG_STAGED_ROWS_PTR);
  stagingPtr = <usize>slot(block, CFG_STAGING_PTR);
  stagingCap = slot(block, CFG_STAGING_BYTES);
  metaPtr = <usize>slot(block, CFG_META_PTR);
  metaCap = slot(block, CFG_META_ROWS);
  touchedPtr = <usize>slot(block, CFG_TOUCHED_PTR);
  touchedCount = 0;
}

export function lastRows(): i32 { return rowsDone; }
export function lastStop(): i32 { return stopReason; }
export function touched(): i32 { return touchedCount; }
export function resetTouched(): void { touchedCount = 0; }

// ---- PostgreSQL's hash functions (src/common/hashfn.c, lookup3) ----

@inline function finalMix(a: u32, b: u32, c: u32): i32 {
  c ^= b; c -= rotl<u32>(b, 14);
  a ^= c; a -= rotl<u32>(c, 11);
  b ^= a; b -= rotl<u32>(a, 25);
  c ^= b; c -= rotl<u32>(b, 16);
  a ^= c; a -= rotl<u32>(c, 4);
  b ^= a; b -= rotl<u32>(a, 14);
  c ^= b; c -= rotl<u32>(b, 24);
  return <i32>c;
}

const INIT: u32 = 0x9e3779b9 + 3923095;

/** hash_bytes_uint32(): hashint2, hashint4 and (after folding) hashint8. */
@inline function hashUint32(k: u32): i32 {
  const init: u32 = INIT + 4;
  return finalMix(init + k, init, init);
}

/** hash_bytes() over [p, p + len): hashtext under a deterministic collation. */
export function hashBytes(p: usize, len: i32): i32 {
  let a: u32 = INIT + <u32>len;
  let b = a;
  let c = a;
  while (len >= 12) {
    a += load<u32>(p);
    b += load<u32>(p, 4);
    c += load<u32>(p, 8);
    a -= c; a ^= rotl<u32>(c, 4); c += b;
    b -= a; b ^= rotl<u32>(a, 6); a += c;
    c -= b; c ^= rotl<u32>(b, 8); b += a;
    a -= c; a ^= rotl<u32>(c, 16); c += b;
    b -= a; b ^= rotl<u32>(a, 19); a += c;
    c -= b; c ^= rotl<u32>(b, 4); b += a;
    p += 12;
    len -= 12;
  }
  // The last 11 bytes, little-endian; the lowest byte of c is reserved for the length.
  if (len >= 11) c += <u32>load<u8>(p, 10) << 24;
  if (len >= 10) c += <u32>load<u8>(p, 9) << 16;
  if (len >= 9) c += <u32>load<u8>(p, 8) << 8;
  if (len >= 8) b += <u32>load<u8>(p, 7) << 24;
  if (len >= 7) b += <u32>load<u8>(p, 6) << 16;
  if (len >= 6) b += <u32>load<u8>(p, 5) << 8;
  if (len >= 5) b += <u32>load<u8>(p, 4);
  if (len >= 4) a += <u32>load<u8>(p, 3) << 24;
  if (len >= 3) a += <u32>load<u8>(p, 2) << 16;
  if (len >= 2) a += <u32>load<u8>(p, 1) << 8;
  if (len >= 1) a += <u32>load<u8>(p);
  return finalMix(a, b, c);
}

@inline function isSpace(c: u8): bool {
  return c == SPACE || (c >= 0x09 && c <= 0x0d);
}

// Set by parseInteger().
let parsed: i64 = 0;

/**
 * Integer text as pg_strtoint16/32/64 accept it: optional C-locale whitespace, a sign, decimal
 * digits, whitespace. Up to 18 digits (never overflows an i64); longer values go to the
 * JavaScript path, which handles all 19.
 */
@inline function parseInteger(p: usize, end: usize): bool {
  while (p < end && isSpace(load<u8>(p))) p++;
  let negative = false;
  if (p < end) {
    const s = load<u8>(p);
    if (s == 0x2d) { negative = true; p++; } else if (s == 0x2b) p++;
  }
  const digitsStart = p;
  let v: i64 = 0;
  while (p < end) {
    const d = <u32>load<u8>(p) - 0x30;
    if (d > 9) break;
    v = v * 10 + <i64>d;
    p++;
  }
  const digits = <i32>(p - digitsStart);
  if (digits == 0 || digits > 18) return false;
  while (p < end && isSpace(load<u8>(p))) p++;
  if (p != end) return false;
  parsed = negative ? -v : v;
  return true;
}

/** Characters in the UTF-8 text [p, end): its bytes that are not continuation bytes. */
function utf8Chars(p: usize, end: usize): i32 {
  let n: i32 = 0;
  for (; p < end; p++) if ((load<u8>(p) & 0xc0) != 0x80) n++;
  return n;
}

// Set by hashKey().
let keyHash: i32 = 0;

/** Hashes the distribution value [p, end); false when only the JavaScript path can be sure. */
@inline function hashKey(p: usize, end: usize): bool {
  if (keyKind == KEY_TEXT) {
    const len = <i32>(end - p);
    // varchar(n): a longer value is an error, or trailing spaces PostgreSQL trims: JavaScript decides.
    if (maxChars >= 0 && len > maxChars && utf8Chars(p, end) > maxChars) return false;
    keyHash = hashBytes(p, len);
    return true;
  }
  if (!parseInteger(p, end)) return false;
  const v = parsed;
  if (keyKind == KEY_INT8) {
    const hi = <i32>(v >> 32);
    const lo = <u32>v;
    keyHash = hashUint32(lo ^ <u32>(hi < 0 ? ~hi : hi));
    return true;
  }
  if (keyKind == KEY_INT4) {
    if (v < -2147483648 || v > 2147483647) return false;
  } else if (v < -32768 || v > 32767) return false;
  keyHash = hashUint32(<u32><i32>v);
  return true;
}

/** Target index of the shard whose [min, max] holds h (the ranges tile int32, checked by the caller). */
@inline function targetFor(h: i32): i32 {
  let lo: i32 = 0;
  let hi: i32 = shardCount - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (load<i32>(minsPtr + (<usize>mid << 2)) <= h) lo = mid;
    else hi = mid - 1;
  }
  return load<i32>(orderPtr + (<usize>lo << 2));
}

@inline function isNullMarker(p: usize, end: usize): bool {
  if (<i32>(end - p) != nullLen) return false;
  for (let k: i32 = 0; k < nullLen; k++) {
    if (load<u8>(p + k) != load<u8>(nullPtr + k)) return false;
  }
  return true;
}

/**
 * Routes complete simple rows of [pos, end) into the staging areas; `line` is the input line
 * of the row at pos. Returns the offset where it stopped (see lastStop() for why and
 * lastRows() for how many rows it took). Bytes up to end + 15 must be readable.
 */
export function scan(pos: usize, end: usize, line: i32): usize {
  const vLF = i8x16.splat(LF);
  const vSpecial = i8x16.splat(special);
  const vDelim = i8x16.splat(delim);
  const vCR = i8x16.splat(CR);
  const target = fieldIndex;
  let rows: i32 = 0;
  stopReason = STOP_END;

  while (pos < end) {
    const rowStart = pos;
    if (load<u8>(rowStart) == BACKSLASH) { stopReason = STOP_SLOW; break; } // maybe the end marker \.
    let field: i32 = 0;
    let fieldStart: usize = target == 0 ? rowStart : -1;
    let fieldEnd: usize = -1;
    let lf: usize = -1;
    let p = rowStart;
    let slow = false;
    let incomplete = false;
    // 16 bytes at a time: where the line ends, the delimiters before it, and quoted stretches.
    while (p < end) {
      const v = v128.load(p);
      const avail = end - p;
      const valid: u32 = avail < 16 ? (<u32>1 << <u32>avail) - 1 : 0xffff;
      const mLF = i8x16.bitmask(i8x16.eq(v, vLF)) & valid;
      const mSpecial = i8x16.bitmask(i8x16.eq(v, vSpecial)) & valid;
      let mDelim = i8x16.bitmask(i8x16.eq(v, vDelim)) & valid;
      const mStop = mLF | mSpecial;
      const k: u32 = mStop != 0 ? ctz<u32>(mStop) : 16;
      if (k < 16) mDelim &= (<u32>1 << k) - 1;
      if (field > target) {
        field += popcnt<u32>(mDelim);
      } else {
        while (mDelim != 0) {
          const d = p + ctz<u32>(mDelim);
          field++;
          if (field == target) fieldStart = d + 1;
          else if (field == target + 1) fieldEnd = d;
          mDelim &= mDelim - 1;
        }
      }
      if (k == 16) { p += 16; continue; }
      if ((mLF >> k) & 1) { lf = p + k; break; }
      // A quote (csv) or backslash (text). Only a quoted stretch outside the distribution
      // field, with the quote as its own escape and no newline inside, stays here.
      if (!quotes || field == target) { slow = true; break; }
      let q = p + k + 1;
      let closed: usize = -1;
      while (q < end) {
        const w = v128.load(q);
        const left = end - q;
        const ok: u32 = left < 16 ? (<u32>1 << <u32>left) - 1 : 0xffff;
        const mQuote = i8x16.bitmask(i8x16.eq(w, vSpecial)) & ok;
        const mNewline = i8x16.bitmask(v128.or(i8x16.eq(w, vLF), i8x16.eq(w, vCR))) & ok;
        const j: u32 = mQuote != 0 ? ctz<u32>(mQuote) : 16;
        if ((mNewline & ((<u32>1 << j) - 1)) != 0 || (j == 16 && mNewline != 0)) { slow = true; break; }
        if (j < 16) { closed = q + j; break; }
        q += 16;
      }
      if (slow) break;
      if (closed == -1) { incomplete = true; break; }
      p = closed + 1;
    }
    if (slow) { stopReason = STOP_SLOW; break; }
    if (incomplete || lf == -1) break; // the row continues past the window: STOP_END

    const hasCR = lf > rowStart && load<u8>(lf - 1) == CR;
    if (hasCR != crlf) { stopReason = STOP_SLOW; break; }
    const contentEnd = hasCR ? lf - 1 : lf;
    if (field == target) fieldEnd = contentEnd;
    if (field + 1 != expectedFields) { stopReason = STOP_SLOW; break; }
    if (isNullMarker(fieldStart, fieldEnd) || !hashKey(fieldStart, fieldEnd)) { stopReason = STOP_SLOW; break; }
    const t = targetFor(keyHash);

    const rowLen = <i32>(lf + 1 - rowStart);
    const lenAt = stagedLenPtr + (<usize>t << 2);
    const rowsAt = stagedRowsPtr + (<usize>t << 2);
    const staged = load<i32>(lenAt);
    const stagedRows = load<i32>(rowsAt);
    if (staged + rowLen > stagingCap || stagedRows == metaCap) {
      if (stagedRows == 0) { stopReason = STOP_SLOW; break; } // a row larger than a staging area
      stopReason = STOP_FULL;
      break;
    }
    if (stagedRows == 0) {
      store<i32>(touchedPtr + (<usize>touchedCount << 2), t);
      touchedCount++;
    }
    memory.copy(stagingPtr + <usize>t * <usize>stagingCap + <usize>staged, rowStart, <usize>rowLen);
    const m = metaPtr + ((<usize>t * <usize>metaCap + <usize>stagedRows) << 3);
    store<i32>(m, staged);
    store<i32>(m, line + rows, 4);
    store<i32>(lenAt, staged + rowLen);
    store<i32>(rowsAt, stagedRows + 1);
    rows++;
    pos = lf + 1;
  }
  rowsDone = rows;
  return pos;
}

// Set by hashField().
let fieldOk = false;

/** The kernel's hash of one distribution value (for tests against PostgreSQL's own functions). */
export function hashField(p: usize, len: i32): i32 {
  fieldOk = hashKey(p, p + <usize>len);
  return keyHash;
}
export function lastHashOk(): bool { return fieldOk; }
