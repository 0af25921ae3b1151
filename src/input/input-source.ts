import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputFileError } from '../errors.js';

export interface InputSource {
  /** How messages name it: the path, or `stdin`. */
  readonly name: string;
  /** Where it is on disk, when it is a file (spooled stdin included). */
  readonly path: string | undefined;
  /** Bytes on disk when known (plain files), for progress. */
  readonly size: number | undefined;
  readonly compressed: boolean;
  /**
   * The input's bytes in chunks. A chunk stays valid only until the next-but-one chunk is
   * requested (plain files are read into a small ring of reused buffers): consumers copy what
   * they keep. `start`: the offset to begin at (a resumed load), in the bytes the loader sees,
   * so decompressed bytes for `.gz`: those are decompressed from the start and skipped (gzip
   * cannot be entered in the middle). Default 0. Stdin cannot start anywhere but at 0.
   */
  open(start?: number): AsyncIterable<Buffer> & { destroy(): void };
}

const CHUNK = 1 << 20;

/** A file path, `-` for standard input; `.gz` files are decompressed as they stream. */
export function inputSource(path: string): InputSource {
  if (path === '-') {
    return {
      name: 'stdin', path: undefined, size: undefined, compressed: false,
      open: (start = 0) => {
        if (start !== 0) throw new InputFileError('stdin cannot be read from an offset (a resumed load needs a file)');
        return process.stdin as Readable;
      },
    };
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
    path,
    size,
    compressed,
    open(start = 0) {
      if (!compressed) return ringReader(path, start);
      const file = createReadStream(path, { highWaterMark: CHUNK });
      const gunzip = createGunzip({ chunkSize: CHUNK });
      file.on('error', (e) => gunzip.destroy(e));
      const stream = file.pipe(gunzip);
      return start > 0 ? skipBytes(stream, start) : stream;
    },
  };
}

const RING = 3;

/**
 * Reads a file into RING reused buffers with one read ahead. Allocating a fresh 1 MiB buffer
 * per read made the garbage collector a tenth of the loader's CPU time.
 */
function ringReader(path: string, start: number): AsyncIterable<Buffer> & { destroy(): void } {
  let closed = false;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    handle = await open(path, 'r');
    try {
      const ring = Array.from({ length: RING }, () => Buffer.allocUnsafe(CHUNK));
      let k = 0;
      let position = start;
      let pending = handle.read(ring[0]!, 0, CHUNK, position);
      while (!closed) {
        const { bytesRead } = await pending;
        if (bytesRead === 0) return;
        position += bytesRead;
        const current = ring[k]!;
        k = (k + 1) % RING;
        pending = handle.read(ring[k]!, 0, CHUNK, position);
        yield current.subarray(0, bytesRead);
      }
      await pending.catch(() => {});
    } finally {
      await handle.close().catch(() => {});
    }
  }
  const it = chunks();
  return Object.assign(it, { destroy: () => { closed = true; void it.return(undefined); } });
}

/** A decompressed stream without its first `count` bytes. */
function skipBytes(stream: Readable, count: number): AsyncIterable<Buffer> & { destroy(): void } {
  let left = count;
  async function* rest(): AsyncGenerator<Buffer> {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (left >= chunk.length) {
        left -= chunk.length;
        continue;
      }
      const out = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      yield out;
    }
    if (left > 0) throw new InputFileError(`the input is ${count - left} bytes long, shorter than the ${count} bytes a resumed load skips`);
  }
  return Object.assign(rest(), { destroy: () => stream.destroy() });
}
