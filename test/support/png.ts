import { inflateSync } from 'node:zlib';

export interface Pixels {
  readonly width: number;
  readonly height: number;
  /** [r, g, b] of the pixel at (x, y). */
  rgb(x: number, y: number): [number, number, number];
}

/** Share of non-white pixels in a PNG screenshot. */
export function inkShare(png: Buffer): number {
  const p = decodePng(png);
  let ink = 0;
  for (let y = 0; y < p.height; y++) for (let x = 0; x < p.width; x++) if (isInk(p.rgb(x, y))) ink++;
  return ink / (p.width * p.height);
}

/** Not (near) white. */
export function isInk([r, g, b]: [number, number, number]): boolean {
  return r < 235 || g < 235 || b < 235;
}

/** Decodes a PNG screenshot (8-bit RGB/RGBA, no interlace: what Chromium writes). */
export function decodePng(png: Buffer): Pixels {
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 4;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      channels = data[9] === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const prev = Buffer.alloc(stride);
  const cur = Buffer.alloc(stride);
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? cur[x - channels]! : 0;
      const b = prev[x]!;
      const c = x >= channels ? prev[x - channels]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      cur[x] = (line[x]! + [0, a, b, (a + b) >> 1, paeth][filter]!) & 0xff;
    }
    cur.copy(out, y * stride);
    cur.copy(prev);
  }
  return { width, height, rgb: (x, y) => { const o = y * stride + x * channels; return [out[o]!, out[o + 1]!, out[o + 2]!]; } };
}

