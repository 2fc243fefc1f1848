/**
 * Guest RAM in a snapshot (the RAM section), zero pages elided:
 *
 *     0  page size u32 (PAGE)
 *     4  page count u32
 *     8  bitmap, ceil(count / 8) bytes: bit (i & 7) of byte (i >> 3) set = page i is stored
 *     …  the stored pages, in page order
 *
 * A page that is all zeroes is neither written nor read: a fresh WebAssembly.Memory is zeroed.
 * Runs of stored pages go to and from the file in one system call each, straight from and into
 * the guest's memory.
 */
import { readSync, writeSync } from 'node:fs';
import { crc32 } from './format.js';

export const PAGE = 4096;
const RAM_HEADER = 8;
const WORDS = PAGE / 4;

/** Which pages hold anything but zeroes. */
export function scanPages(ram: Uint8Array): { bitmap: Uint8Array; stored: number } {
  const pages = Math.ceil(ram.length / PAGE);
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  const words = new Int32Array(ram.buffer, ram.byteOffset, Math.floor(ram.length / 4));
  let stored = 0;
  for (let p = 0; p < pages; p++) {
    let w = p * WORDS;
    const end = Math.min(w + WORDS, words.length);
    let any = 0;
    for (; w < end && any === 0; w += 8) {
      any = words[w]! | words[w + 1]! | words[w + 2]! | words[w + 3]! | words[w + 4]! | words[w + 5]! | words[w + 6]! | words[w + 7]!;
    }
    if (any !== 0) { bitmap[p >> 3]! |= 1 << (p & 7); stored++; }
  }
  return { bitmap, stored };
}

export const ramSectionLength = (pages: number, stored: number): number => RAM_HEADER + Math.ceil(pages / 8) + stored * PAGE;

/** Runs [first, first + count) of stored pages, in order. */
function* runs(bitmap: Uint8Array, pages: number): Generator<[number, number]> {
  let p = 0;
  while (p < pages) {
    if ((bitmap[p >> 3]! & (1 << (p & 7))) === 0) { p++; continue; }
    const first = p;
    while (p < pages && (bitmap[p >> 3]! & (1 << (p & 7))) !== 0) p++;
    yield [first, p - first];
  }
}

/** Writes the RAM section's payload at `pos`; returns its length and CRC-32. */
export function writeRam(fd: number, pos: number, ram: Uint8Array, scan = scanPages(ram)): { length: number; crc: number } {
  const pages = Math.ceil(ram.length / PAGE);
  const head = new Uint8Array(RAM_HEADER), dv = new DataView(head.buffer);
  dv.setUint32(0, PAGE, true);
  dv.setUint32(4, pages, true);
  let at = pos, crc = 0;
  const put = (b: Uint8Array): void => {
    for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off, at + off);
    at += b.length;
    crc = crc32(b, crc);
  };
  put(head);
  put(scan.bitmap);
  for (const [first, count] of runs(scan.bitmap, pages)) {
    const start = first * PAGE;
    put(ram.subarray(start, Math.min(start + count * PAGE, ram.length)));
  }
  return { length: at - pos, crc };
}

/** Why a RAM section cannot be loaded (the caller words the error). */
export type RamProblem = 'shape' | 'length' | 'crc';

/**
 * Reads the RAM section at `pos` (`length` bytes, CRC `crc`) into `ram`, which must be zeroed.
 * Returns undefined when it loaded and checked, else what is wrong.
 */
export function loadRam(fd: number, pos: number, length: number, crc: number, ram: Uint8Array): RamProblem | undefined {
  const pages = Math.ceil(ram.length / PAGE);
  if (length < RAM_HEADER) return 'length';
  const head = new Uint8Array(RAM_HEADER);
  if (readSync(fd, head, 0, RAM_HEADER, pos) !== RAM_HEADER) return 'length';
  const dv = new DataView(head.buffer);
  if (dv.getUint32(0, true) !== PAGE || dv.getUint32(4, true) !== pages) return 'shape';
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  if (length < RAM_HEADER + bitmap.length || readSync(fd, bitmap, 0, bitmap.length, pos + RAM_HEADER) !== bitmap.length) return 'length';
  let stored = 0;
  for (const [, count] of runs(bitmap, pages)) stored += count;
  if (length !== ramSectionLength(pages, stored)) return 'length';
  let sum = crc32(bitmap, crc32(head));
  let at = pos + RAM_HEADER + bitmap.length;
  for (const [first, count] of runs(bitmap, pages)) {
    const start = first * PAGE;
    const into = ram.subarray(start, Math.min(start + count * PAGE, ram.length));
    for (let off = 0; off < into.length;) {
      const n = readSync(fd, into, off, into.length - off, at + off);
      if (n === 0) return 'length';
      off += n;
    }
    sum = crc32(into, sum);
    at += into.length;
  }
  return sum === crc ? undefined : 'crc';
}
