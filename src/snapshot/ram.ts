/**
 * Guest RAM in a snapshot (the RAM section), zero pages elided, each stored page checked on its own
 * so pages can be loaded one at a time while the restored guest runs (lazy-ram.ts):
 *
 *     0  page size u32 (PAGE)
 *     4  page count u32
 *     8  bitmap, ceil(count / 8) bytes: bit (i & 7) of byte (i >> 3) set = page i is stored
 *     …  CRC-32 of each stored page, u32 each, in page order
 *     …  the stored pages, in page order
 *
 * The section's CRC (format.ts) covers everything before the pages: the index. A page that is all
 * zeroes is neither written nor read: a fresh WebAssembly.Memory is zeroed. Runs of stored pages
 * are written in one system call each, straight from the guest's memory.
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

const isStored = (bitmap: Uint8Array, p: number): boolean => (bitmap[p >> 3]! & (1 << (p & 7))) !== 0;

export const ramSectionLength = (pages: number, stored: number): number => RAM_HEADER + Math.ceil(pages / 8) + stored * (4 + PAGE);

/** Runs [first, first + count) of stored pages, in order. */
function* runs(bitmap: Uint8Array, pages: number): Generator<[number, number]> {
  let p = 0;
  while (p < pages) {
    if (!isStored(bitmap, p)) { p++; continue; }
    const first = p;
    while (p < pages && isStored(bitmap, p)) p++;
    yield [first, p - first];
  }
}

const pageOf = (ram: Uint8Array, p: number): Uint8Array => ram.subarray(p * PAGE, Math.min((p + 1) * PAGE, ram.length));

/** Writes the RAM section's payload at `pos`; returns its length and the CRC-32 of its index. */
export function writeRam(fd: number, pos: number, ram: Uint8Array, scan = scanPages(ram)): { length: number; crc: number } {
  const pages = Math.ceil(ram.length / PAGE);
  const index = new Uint8Array(RAM_HEADER + scan.bitmap.length + 4 * scan.stored), dv = new DataView(index.buffer);
  dv.setUint32(0, PAGE, true);
  dv.setUint32(4, pages, true);
  index.set(scan.bitmap, RAM_HEADER);
  let at = RAM_HEADER + scan.bitmap.length;
  for (const [first, count] of runs(scan.bitmap, pages)) {
    for (let p = first; p < first + count; p++, at += 4) dv.setUint32(at, crc32(pageOf(ram, p)), true);
  }
  const put = (b: Uint8Array): void => {
    for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off, at + off);
    at += b.length;
  };
  at = pos;
  put(index);
  for (const [first, count] of runs(scan.bitmap, pages)) put(ram.subarray(first * PAGE, Math.min((first + count) * PAGE, ram.length)));
  return { length: at - pos, crc: crc32(index) };
}

/** Where each stored page lies in the file, and the CRC it must have. */
export interface RamIndex {
  pages: number;
  /** Stored pages. */
  stored: number;
  /** Page → its number among the stored pages (its slot), or -1 for a zero page. */
  slotOf: Int32Array;
  /** Slot → page. */
  pageOf: Uint32Array;
  /** Slot → CRC-32 of the page. */
  crcs: Uint32Array;
  /** File position of slot 0. */
  dataPos: number;
}

/** Why a RAM section cannot be loaded (the caller words the error). */
export type RamProblem = 'shape' | 'length' | 'crc';

const readFully = (fd: number, into: Uint8Array, pos: number): boolean => {
  for (let off = 0; off < into.length;) {
    const n = readSync(fd, into, off, into.length - off, pos + off);
    if (n === 0) return false;
    off += n;
  }
  return true;
};

/** Reads and checks the index of the RAM section at `pos` (`length` bytes, CRC `crc`) for a RAM of `ramBytes`. */
export function readRamIndex(fd: number, pos: number, length: number, crc: number, ramBytes: number): RamIndex | RamProblem {
  const pages = Math.ceil(ramBytes / PAGE);
  const bitmapBytes = Math.ceil(pages / 8);
  const head = new Uint8Array(RAM_HEADER);
  if (length < RAM_HEADER || !readFully(fd, head, pos)) return 'length';
  const dv = new DataView(head.buffer);
  if (dv.getUint32(0, true) !== PAGE || dv.getUint32(4, true) !== pages) return 'shape';
  const bitmap = new Uint8Array(bitmapBytes);
  if (length < RAM_HEADER + bitmapBytes || !readFully(fd, bitmap, pos + RAM_HEADER)) return 'length';
  const slotOf = new Int32Array(pages).fill(-1);
  let stored = 0;
  for (let p = 0; p < pages; p++) if (isStored(bitmap, p)) slotOf[p] = stored++;
  if (length !== ramSectionLength(pages, stored)) return 'length';
  const table = new Uint8Array(4 * stored);
  if (!readFully(fd, table, pos + RAM_HEADER + bitmapBytes)) return 'length';
  if (crc32(table, crc32(bitmap, crc32(head))) !== crc) return 'crc';
  const pageOf = new Uint32Array(stored);
  for (let p = 0; p < pages; p++) if (slotOf[p]! >= 0) pageOf[slotOf[p]!] = p;
  const crcs = new Uint32Array(stored), tv = new DataView(table.buffer);
  for (let s = 0; s < stored; s++) crcs[s] = tv.getUint32(4 * s, true);
  return { pages, stored, slotOf, pageOf, crcs, dataPos: pos + RAM_HEADER + bitmapBytes + 4 * stored };
}
