import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ShardInfo } from '../catalog/catalog.js';
import type { CopyFormat } from '../input/copy-format.js';
import type { BulkRows } from '../input/row-scanner.js';
import * as abi from '../../native/abi.js';

/**
 * The WebAssembly kernel (native/fast-router.ts) behind the row scanner's bulk hook: it takes
 * the simple rows of a chunk (no quote or backslash before the line end, the right field count,
 * an integer or plain-text distribution value), hashes and routes them, and stages their bytes
 * per shard; the JavaScript scanner takes every row it leaves. Staged rows reach the loader
 * one shard's worth at a time, so the per-row work never touches the JavaScript heap.
 */

/** Receives the rows staged for one target: their bytes and, per row, (offset in bytes, input line). */
export interface StagedRowsSink {
  staged(target: number, bytes: Buffer, meta: Int32Array, rows: number): void;
}

interface Kernel {
  configure(block: number): void;
  scan(pos: number, end: number, line: number): number;
  lastRows(): number;
  lastStop(): number;
  touched(): number;
  resetTouched(): void;
  hashField(p: number, len: number): number;
  lastHashOk(): number;
}

const KEY_KINDS: Record<string, number> = { int2: abi.KEY_INT2, int4: abi.KEY_INT4, int8: abi.KEY_INT8, text: abi.KEY_TEXT, varchar: abi.KEY_TEXT };

/** Whether the kernel hashes this distribution column type. */
export function fastPathSupports(typeName: string): boolean {
  return typeName in KEY_KINDS;
}

let compiled: WebAssembly.Module | undefined;

function kernelModule(): WebAssembly.Module {
  if (compiled) return compiled;
  // Built by `npm run build` (asc) next to the compiled JavaScript: dist/native/.
  const file = new URL('../../native/fast-router.wasm', import.meta.url);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err) {
    throw new Error(`${fileURLToPath(file)} is missing (${(err as NodeJS.ErrnoException).code}): run npm run build`, { cause: err });
  }
  compiled = new WebAssembly.Module(bytes);
  return compiled;
}

const PAGE = 65536;
/** Below this the kernel's own (empty) static data would live. */
const LAYOUT_BASE = PAGE;
/** Input bytes copied into the kernel's memory per call. */
const WINDOW = 1024 * 1024;
/** The SIMD loop reads up to 15 bytes past the window's end. */
const PADDING = 16;

export interface FastRouterSpec {
  format: CopyFormat;
  /** 0-based index of the distribution field and the number of fields per row. */
  fieldIndex: number;
  expectedFields: number;
  typeName: string;
  maxChars: number | undefined;
  /** The shards, in target order (target i is shards[i]). */
  shards: readonly ShardInfo[];
  /** Upper bound for one target's staging area (the loader's batch size). */
  maxStagingBytes: number;
}

export class FastRouter implements BulkRows {
  taken = 0;
  private readonly kernel: Kernel;
  private readonly bytes: Uint8Array;
  private readonly ints: Int32Array;
  private readonly stagedLenAt: number;
  private readonly stagedRowsAt: number;
  private readonly touchedAt: number;
  private readonly stagingAt: number;
  private readonly stagingCap: number;
  private readonly metaAt: number;
  private readonly metaCap: number;
  private readonly windowAt: number;
  private readonly spec: FastRouterSpec;
  /** Where configure() finds the shard ranges and the NULL marker in the kernel's memory. */
  private readonly layout: { minsAt: number; orderAt: number; nullAt: number; nullLen: number; configAt: number };
  private configuredCrlf: boolean | undefined;
  private windowBuf: Buffer | undefined;
  private windowFrom = 0;
  private windowTo = 0;
  private calls = 0;
  /** Rows taken since the router was made. */
  rowsTotal = 0;
  private disabled = false;

  constructor(spec: FastRouterSpec, private readonly sink: StagedRowsSink) {
    if (!fastPathSupports(spec.typeName)) throw new Error(`the fast path does not hash ${spec.typeName}`);
    this.spec = spec;
    const targets = spec.shards.length;
    // Enough staging to make flushes rare, bounded in total whatever the shard count.
    this.stagingCap = align(Math.max(4 * 1024, Math.min(256 * 1024, spec.maxStagingBytes, Math.floor(8 * 1024 * 1024 / targets))));
    this.metaCap = this.stagingCap >>> 4;
    const nullBytes = Buffer.from(spec.format.nullString, 'utf8');
    let at = LAYOUT_BASE;
    const take = (n: number) => { const p = at; at += align(n); return p; };
    const minsAt = take(targets * 4);
    const orderAt = take(targets * 4);
    const nullAt = take(nullBytes.length + 1);
    const configAt = take(abi.CFG_SLOTS * 4);
    this.stagedLenAt = take(targets * 4);
    this.stagedRowsAt = take(targets * 4);
    this.touchedAt = take(targets * 4);
    this.stagingAt = take(targets * this.stagingCap);
    this.metaAt = take(targets * this.metaCap * 8);
    this.windowAt = take(WINDOW + PADDING);
    // Never grown: views on the memory stay valid.
    const memory = new WebAssembly.Memory({ initial: Math.ceil(at / PAGE), maximum: Math.ceil(at / PAGE) });
    this.kernel = new WebAssembly.Instance(kernelModule(), { env: { memory } }).exports as unknown as Kernel;
    this.bytes = new Uint8Array(memory.buffer);
    this.ints = new Int32Array(memory.buffer);

    const sorted = spec.shards.map((s, target) => ({ min: s.min!, target })).sort((a, b) => a.min - b.min);
    sorted.forEach((s, k) => {
      this.ints[(minsAt >> 2) + k] = s.min;
      this.ints[(orderAt >> 2) + k] = s.target;
    });
    this.bytes.set(nullBytes, nullAt);
    this.layout = { minsAt, orderAt, nullAt, nullLen: nullBytes.length, configAt };
  }

  private configure(crlf: boolean): void {
    const { format, fieldIndex, expectedFields, typeName, maxChars } = this.spec;
    const special = format.kind === 'csv' ? format.quote : 0x5c;
    const quotedFields = format.kind === 'csv' && format.escape === format.quote;
    const { minsAt, orderAt, nullAt, nullLen, configAt } = this.layout;
    const slots: [number, number][] = [
      [abi.CFG_DELIMITER, format.delimiter], [abi.CFG_SPECIAL, special], [abi.CFG_QUOTED_FIELDS, quotedFields ? 1 : 0],
      [abi.CFG_CRLF, crlf ? 1 : 0], [abi.CFG_FIELD, fieldIndex], [abi.CFG_FIELDS, expectedFields],
      [abi.CFG_KEY_KIND, KEY_KINDS[typeName]!], [abi.CFG_MAX_CHARS, typeName === 'varchar' && maxChars !== undefined ? maxChars : -1],
      [abi.CFG_NULL_PTR, nullAt], [abi.CFG_NULL_LEN, nullLen], [abi.CFG_MINS_PTR, minsAt], [abi.CFG_ORDER_PTR, orderAt],
      [abi.CFG_SHARDS, this.spec.shards.length], [abi.CFG_STAGED_LEN_PTR, this.stagedLenAt], [abi.CFG_STAGED_ROWS_PTR, this.stagedRowsAt],
      [abi.CFG_STAGING_PTR, this.stagingAt], [abi.CFG_STAGING_BYTES, this.stagingCap], [abi.CFG_META_PTR, this.metaAt],
      [abi.CFG_META_ROWS, this.metaCap], [abi.CFG_TOUCHED_PTR, this.touchedAt],
    ];
    if (slots.length !== abi.CFG_SLOTS) throw new Error('fast-router: configuration slots out of step with native/abi.ts');
    for (const [index, value] of slots) this.ints[(configAt >> 2) + index] = value;
    this.kernel.configure(configAt);
    this.configuredCrlf = crlf;
  }

  /** The scanner starts on a new buffer (input buffers are reused, so identity proves nothing). */
  forget(): void {
    this.windowBuf = undefined;
  }

  take(buf: Buffer, rowStart: number, end: number, line: number, crlf: boolean): number {
    this.taken = 0;
    if (this.disabled) return rowStart;
    if (this.configuredCrlf !== crlf) this.configure(crlf);
    const k = this.kernel;
    let pos = rowStart;
    for (;;) {
      if (buf !== this.windowBuf || pos < this.windowFrom || pos >= this.windowTo) {
        const to = Math.min(end, pos + WINDOW);
        this.bytes.set(buf.subarray(pos, to), this.windowAt);
        this.windowBuf = buf;
        this.windowFrom = pos;
        this.windowTo = to;
      }
      const base = this.windowAt - this.windowFrom;
      const stopped = k.scan(base + pos, base + this.windowTo, line + this.taken) - base;
      const rows = k.lastRows();
      this.taken += rows;
      pos = stopped;
      this.flush();
      const why = k.lastStop();
      if (why === abi.STOP_FULL) continue;
      // A row running past the window: move the window to it, unless it is longer than the window.
      if (why === abi.STOP_END && pos < end && this.windowTo < end && pos > this.windowFrom) continue;
      break;
    }
    this.calls++;
    this.rowsTotal += this.taken;
    // Input where most rows need the JavaScript scanner (quoted keys, say) gains nothing here.
    if (this.calls > 1024 && this.rowsTotal < this.calls * 4) this.disabled = true;
    return pos;
  }

  /** Hands every staged target's rows to the sink and empties the staging areas. */
  private flush(): void {
    const k = this.kernel;
    const count = k.touched();
    if (count === 0) return;
    const ints = this.ints;
    for (let i = 0; i < count; i++) {
      const t = ints[(this.touchedAt >> 2) + i]!;
      const len = ints[(this.stagedLenAt >> 2) + t]!;
      const rows = ints[(this.stagedRowsAt >> 2) + t]!;
      const from = this.stagingAt + t * this.stagingCap;
      const metaFrom = (this.metaAt >> 2) + t * this.metaCap * 2;
      this.sink.staged(t, Buffer.from(this.bytes.buffer, from, len), ints.subarray(metaFrom, metaFrom + rows * 2), rows);
      ints[(this.stagedLenAt >> 2) + t] = 0;
      ints[(this.stagedRowsAt >> 2) + t] = 0;
    }
    k.resetTouched();
  }

  /** The kernel's hash of one value, or undefined where it defers to JavaScript (tests). */
  hash(value: Uint8Array): number | undefined {
    if (this.configuredCrlf === undefined) this.configure(false);
    const at = this.windowAt;
    this.bytes.set(value.subarray(0, WINDOW), at);
    const h = this.kernel.hashField(at, Math.min(value.length, WINDOW));
    return this.kernel.lastHashOk() ? h : undefined;
  }
}

function align(n: number): number {
  return (n + 15) & ~15;
}
