import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputFileError } from '../errors.js';

export interface InputSource {
  /** How messages name it: the path, or `stdin`. */
  readonly name: string;
  /** Bytes on disk when known (plain files), for progress. */
  readonly size: number | undefined;
  readonly compressed: boolean;
  open(): Readable;
}

const CHUNK = 1 << 20;

/** A file path, `-` for standard input; `.gz` files are decompressed as they stream. */
export function inputSource(path: string): InputSource {
  if (path === '-') {
    return { name: 'stdin', size: undefined, compressed: false, open: () => process.stdin };
  }
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new InputFileError(`${path} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputFileError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? String(err)})`, { cause: err });
  }
  if (size === 0) throw new InputFileError(`${path} is empty: there is nothing to load`);
  const compressed = path.endsWith('.gz');
  return {
    name: path,
    size,
    compressed,
    open(): Readable {
      const file = createReadStream(path, { highWaterMark: CHUNK });
      if (!compressed) return file;
      const gunzip = createGunzip({ chunkSize: CHUNK });
      file.on('error', (e) => gunzip.destroy(e));
      return file.pipe(gunzip);
    },
  };
}
