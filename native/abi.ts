// The contract between the routing kernel (native/fast-router.ts, compiled by AssemblyScript)
// and its binding (src/routing/fast-router.ts, compiled by TypeScript). Both compile this one
// file, so the stop codes, key kinds and configuration slots cannot drift apart. Plain integer
// constants only: valid TypeScript and AssemblyScript alike (i32 there, number here).

/** Why scan() returned: no complete row left in the window. */
export const STOP_END = 0;
/** The row at the returned offset needs the JavaScript scanner. */
export const STOP_SLOW = 1;
/** A staging area is full: flush, then call again. */
export const STOP_FULL = 2;

/** Distribution key types the kernel parses and hashes itself. */
export const KEY_INT2 = 1;
export const KEY_INT4 = 2;
export const KEY_INT8 = 3;
export const KEY_TEXT = 4;

/**
 * configure(block) reads CFG_SLOTS i32 values at `block` in the kernel's memory: the input's
 * format, the distribution field, and where the binding laid out the shard ranges, staging
 * areas and bookkeeping.
 */
export const CFG_DELIMITER = 0; // field delimiter byte
export const CFG_SPECIAL = 1; // csv: the quote byte; text: backslash
export const CFG_QUOTED_FIELDS = 2; // 1: csv whose escape is its quote (quoted stretches may be skipped)
export const CFG_CRLF = 3; // 1: lines end with CR LF
export const CFG_FIELD = 4; // 0-based index of the distribution field
export const CFG_FIELDS = 5; // fields per row
export const CFG_KEY_KIND = 6; // one of KEY_*
export const CFG_MAX_CHARS = 7; // varchar(n): n; else -1
export const CFG_NULL_PTR = 8; // the NULL marker's bytes
export const CFG_NULL_LEN = 9;
export const CFG_MINS_PTR = 10; // i32[shards], ascending shardminvalue
export const CFG_ORDER_PTR = 11; // i32[shards], target index of each sorted shard
export const CFG_SHARDS = 12;
export const CFG_STAGED_LEN_PTR = 13; // i32[targets]: bytes staged per target
export const CFG_STAGED_ROWS_PTR = 14; // i32[targets]: rows staged per target
export const CFG_STAGING_PTR = 15; // targets × staging bytes
export const CFG_STAGING_BYTES = 16;
export const CFG_META_PTR = 17; // targets × meta rows × (offset i32, line i32)
export const CFG_META_ROWS = 18;
export const CFG_TOUCHED_PTR = 19; // i32[targets]: targets staged since the last reset
export const CFG_SLOTS = 20;
