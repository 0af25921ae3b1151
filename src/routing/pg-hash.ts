/**
 * PostgreSQL's 32-bit hash functions (src/common/hashfn.c, Bob Jenkins' lookup3),
 * reimplemented bit for bit so the client can route a row to the shard Citus would choose.
 *
 * All results are returned as signed int32, the way Citus compares them with the
 * shardminvalue/shardmaxvalue bounds in pg_dist_shard.
 *
 * Written by hand rather than taken from a package because the router calls it once per
 * row on the hot path, over byte ranges of the input buffer (no string or subarray allocation).
 */

const INIT_BYTES = 0x9e3779b9 + 3923095;

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** lookup3's final(a, b, c), returning c as a signed int32. */
function finalMix(a: number, b: number, c: number): number {
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c | 0;
}

/** hash_bytes() over buf[start, end): the hash of text, bytea-like and uuid values. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let len = end - start;
  let a = (INIT_BYTES + len) | 0;
  let b = a;
  let c = a;
  let k = start;
  while (len >= 12) {
    a = (a + (buf[k]! | (buf[k + 1]! << 8) | (buf[k + 2]! << 16) | (buf[k + 3]! << 24))) | 0;
    b = (b + (buf[k + 4]! | (buf[k + 5]! << 8) | (buf[k + 6]! << 16) | (buf[k + 7]! << 24))) | 0;
    c = (c + (buf[k + 8]! | (buf[k + 9]! << 8) | (buf[k + 10]! << 16) | (buf[k + 11]! << 24))) | 0;
    // mix(a, b, c)
    a = (a - c) | 0; a ^= rot(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rot(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rot(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rot(b, 4); b = (b + a) | 0;
    k += 12;
    len -= 12;
  }
  // The last 11 bytes, little-endian; the lowest byte of c is reserved for the length.
  switch (len) {
    case 11: c = (c + (buf[k + 10]! << 24)) | 0; // falls through
    case 10: c = (c + (buf[k + 9]! << 16)) | 0; // falls through
    case 9: c = (c + (buf[k + 8]! << 8)) | 0; // falls through
    case 8: b = (b + (buf[k + 7]! << 24)) | 0; // falls through
    case 7: b = (b + (buf[k + 6]! << 16)) | 0; // falls through
    case 6: b = (b + (buf[k + 5]! << 8)) | 0; // falls through
    case 5: b = (b + buf[k + 4]!) | 0; // falls through
    case 4: a = (a + (buf[k + 3]! << 24)) | 0; // falls through
    case 3: a = (a + (buf[k + 2]! << 16)) | 0; // falls through
    case 2: a = (a + (buf[k + 1]! << 8)) | 0; // falls through
    case 1: a = (a + buf[k]!) | 0;
  }
  return finalMix(a, b, c);
}

/** hash_bytes_uint32(): hashint4, hashint2, hashchar (bool) and date all reduce to this. */
export function hashUint32(k: number): number {
  const a = ((INIT_BYTES + 4) | 0) + (k | 0);
  const init = (INIT_BYTES + 4) | 0;
  return finalMix(a | 0, init, init);
}

/**
 * hashint8() of the 64-bit value whose halves are hi (signed) and lo (unsigned):
 * the high half is folded into the low half so that int8 values that fit int4 hash alike.
 */
export function hashInt8Halves(hi: number, lo: number): number {
  const negative = hi < 0;
  const folded = (lo ^ (negative ? ~hi : hi)) >>> 0;
  return hashUint32(folded);
}

const TWO_32 = 4294967296;

/** hashint8() of an integer held exactly in a double (|v| < 2^53). */
export function hashInt8Number(v: number): number {
  const hi = Math.floor(v / TWO_32);
  const lo = v - hi * TWO_32;
  return hashInt8Halves(hi | 0, lo >>> 0);
}

/** hashint8() of any int8 value. */
export function hashInt8BigInt(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  const hi = Number(u >> 32n) | 0;
  const lo = Number(u & 0xffffffffn) >>> 0;
  return hashInt8Halves(hi, lo);
}
