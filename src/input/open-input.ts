/**
 * Opening an input for a load: the first line is read ahead (header detection and the node
 * shares need it before any row is routed), and stdin, which can be read only once, is spooled
 * to a temporary file when it must be sampled first. Everything here reads bytes; nothing here
 * knows about tables or the cluster.
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InputFileError } from '../errors.js';
import { inputSource, type InputSource } from './input-source.js';

export interface OpenedInput {
  /** The first bytes of the input (at least its first line, when it has one). */
  head: Buffer;
  rest: AsyncIterator<Buffer>;
  close(): void;
}

/** Beyond this, a first line is not waited for: the scanner's row limit reports it. */
const MAX_HEAD_BYTES = 16 * 1024 * 1024;

/** Reads ahead until the first line (from `start`: a resumed load) is complete, for header detection. */
export async function openInput(source: InputSource, start = 0): Promise<OpenedInput> {
  const stream = source.open(start);
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      parts.push(Buffer.from(next.value)); // chunks are reused buffers: keep copies
      size += next.value.length;
      if (next.value.includes(0x0a) || size > MAX_HEAD_BYTES) break;
    }
  } catch (err) {
    throw new InputFileError(`${source.name}: cannot read (${(err as Error).message})`, { cause: err });
  }
  return { head: Buffer.concat(parts), rest: it, close: () => stream.destroy() };
}

/**
 * Stdin can be read once: spool it to a temporary file when it must be sampled before loading.
 * The spool goes when the process exits (the load may still be reading it until then).
 */
export async function seekable(source: InputSource): Promise<InputSource> {
  if (source.size !== undefined) return source;
  const dir = mkdtempSync(join(tmpdir(), 'citus-adaptive-load-'));
  const path = join(dir, 'stdin');
  await pipeline(source.open(), createWriteStream(path));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const spooled = inputSource(path);
  return { ...spooled, name: source.name };
}
