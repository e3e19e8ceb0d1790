import { crc32, deflateSync } from 'node:zlib';

/** The looks the simulator's generated photos take; each photo gets one, in its own colour. */
export type Pattern = 'stripes' | 'checks' | 'gradient' | 'rings';

/** How a generated photo looks: a pattern over two colours (RGB, 0-255). */
export interface Look {
  pattern: Pattern;
  colour: readonly [number, number, number];
  background: readonly [number, number, number];
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** True when pixel (x, y) of a `width`×`height` image takes the look's colour rather than its background. */
function inked(pattern: Pattern, x: number, y: number, width: number, height: number): number {
  const u = x / width;
  const v = y / height;
  switch (pattern) {
    case 'stripes':
      return Math.floor((u + v) * 8) % 2;
    case 'checks':
      return (Math.floor(u * 6) + Math.floor(v * 6)) % 2;
    case 'gradient':
      return u;
    case 'rings':
      return Math.floor(Math.hypot(u - 0.5, (v - 0.5) * (height / width)) * 14) % 2;
  }
}

/** A real PNG image (8-bit RGB) of the given size in this look. */
export function renderPng(look: Look, width: number, height: number): Buffer {
  const stride = width * 3 + 1;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y += 1) {
    raw[y * stride] = 0; // filter: none
    for (let x = 0; x < width; x += 1) {
      const mix = inked(look.pattern, x, y, width, height);
      const at = y * stride + 1 + x * 3;
      for (let c = 0; c < 3; c += 1) {
        raw[at + c] = Math.round((look.colour[c] as number) * mix + (look.background[c] as number) * (1 - mix));
      }
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** What an uploaded file is, by its content: a known image format, or undefined when it does not decode as one. */
export interface ImageFacts {
  type: 'image/png' | 'image/jpeg' | 'image/gif';
  ext: 'png' | 'jpg' | 'gif';
  width?: number;
  height?: number;
}

/**
 * Reads an uploaded file as ipernity's processing would: a PNG whose header
 * chunk is whole and checks out, a JPEG that starts and ends with its markers,
 * or a GIF with its signature and trailer. Anything else does not decode.
 */
export function imageFacts(file: Buffer): ImageFacts | undefined {
  if (file.length >= 33 && file.subarray(0, 8).equals(PNG_SIGNATURE) && file.toString('ascii', 12, 16) === 'IHDR') {
    const expected = file.readUInt32BE(29);
    if ((crc32(file.subarray(12, 29)) >>> 0) !== expected) return undefined;
    return { type: 'image/png', ext: 'png', width: file.readUInt32BE(16), height: file.readUInt32BE(20) };
  }
  if (file.length >= 4 && file[0] === 0xff && file[1] === 0xd8 && file[file.length - 2] === 0xff && file[file.length - 1] === 0xd9) {
    return { type: 'image/jpeg', ext: 'jpg' };
  }
  if (file.length >= 14 && /^GIF8[79]a$/.test(file.toString('ascii', 0, 6)) && file[file.length - 1] === 0x3b) {
    return { type: 'image/gif', ext: 'gif', width: file.readUInt16LE(6), height: file.readUInt16LE(8) };
  }
  return undefined;
}
