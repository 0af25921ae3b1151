/**
 * What a resumed load checks before it trusts its manifest's byte offsets: the source is the same
 * file, unchanged. Path, size and mtime catch most changes for free; hashes of the first and last
 * 64 KiB catch a file rewritten in place with the same size and a restored mtime (the last block
 * is where an append or a truncation shows, the first where a regenerated file does). A change
 * in the middle with everything else kept is not caught: hashing the whole file would cost a full
 * read per resume, and the manifest's offsets would be wrong only in such a file.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

export interface SourceFingerprint {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** sha256 (hex) of the first and of the last FINGERPRINT_BLOCK bytes on disk. */
  readonly firstBlock: string;
  readonly lastBlock: string;
}

export const FINGERPRINT_BLOCK = 64 * 1024;

export function fingerprintFile(path: string): SourceFingerprint {
  const st = statSync(path);
  const fd = openSync(path, 'r');
  try {
    const block = (at: number) => {
      const len = Math.max(0, Math.min(FINGERPRINT_BLOCK, st.size - at));
      const buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, at + got);
        if (n === 0) break;
        got += n;
      }
      return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
    };
    return {
      path: resolve(path), size: st.size, mtimeMs: st.mtimeMs,
      firstBlock: block(0), lastBlock: block(Math.max(0, st.size - FINGERPRINT_BLOCK)),
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the bytes differ, whatever the path and mtime say (a copy, a `touch`, a fresh
 * extraction of the same archive keep them): size and the first and last 64 KiB.
 */
export function contentDifference(stored: unknown, now: SourceFingerprint): string | undefined {
  const s = stored as Partial<SourceFingerprint> | null;
  if (!s || typeof s !== 'object') return 'the job recorded no fingerprint of its source';
  if (s.size !== now.size) return `its size changed from ${s.size} to ${now.size} bytes`;
  if (s.firstBlock !== now.firstBlock) return 'its first 64 KiB differ';
  if (s.lastBlock !== now.lastBlock) return 'its last 64 KiB differ';
  return undefined;
}

/** Why `now` is not the file `stored` describes, or undefined when it is the same. */
export function fingerprintDifference(stored: unknown, now: SourceFingerprint): string | undefined {
  const s = stored as Partial<SourceFingerprint> | null;
  if (!s || typeof s !== 'object') return 'the job recorded no fingerprint of its source';
  if (s.path !== now.path) return `the job read ${s.path}, not ${now.path}`;
  if (s.size === now.size && s.mtimeMs !== now.mtimeMs) {
    return `it was modified (mtime ${new Date(s.mtimeMs ?? 0).toISOString()} then, ${new Date(now.mtimeMs).toISOString()} now)`;
  }
  return contentDifference(s, now);
}
