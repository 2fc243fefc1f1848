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
 * zeroes is neither written nor read: a fresh WebAssembly.Memory is zeroed. Pages are written by
 * writer.ts, runs of them in one system call each, straight from the guest's memory.
 */
import { readSync } from 'node:fs';
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

/** Where a RAM section's parts lie for one scan: the index (header, bitmap, page CRCs), then the stored pages by slot. */
export class RamLayout {
  readonly pages: number;
  /** Page → its number among the stored pages (its slot), or -1 for a zero page. */
  readonly slotOf: Int32Array;
  /** Slot → page. */
  readonly pageOf: Uint32Array;
  readonly indexBytes: number;
  /** The section's payload length. */
  readonly length: number;

  constructor(ramBytes: number, readonly bitmap: Uint8Array, readonly stored: number) {
    this.pages = Math.ceil(ramBytes / PAGE);
    this.slotOf = new Int32Array(this.pages).fill(-1);
    this.pageOf = new Uint32Array(stored);
    for (let p = 0, slot = 0; p < this.pages; p++) {
      if (isStored(bitmap, p)) { this.slotOf[p] = slot; this.pageOf[slot++] = p; }
    }
    this.indexBytes = RAM_HEADER + bitmap.length + 4 * stored;
    this.length = ramSectionLength(this.pages, stored);
  }

  /** The index, with each stored page's CRC-32 (by slot). */
  index(crcs: Uint32Array): Uint8Array {
    const b = new Uint8Array(this.indexBytes), dv = new DataView(b.buffer);
    dv.setUint32(0, PAGE, true);
    dv.setUint32(4, this.pages, true);
    b.set(this.bitmap, RAM_HEADER);
    for (let s = 0; s < this.stored; s++) dv.setUint32(RAM_HEADER + this.bitmap.length + 4 * s, crcs[s]!, true);
    return b;
  }
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
