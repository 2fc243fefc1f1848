/**
 * The snapshot file, version 2 (1 checked RAM as one section; 2 checks each page, ram.ts). All integers little-endian; u64 fields are written as two u32
 * halves (lo, hi) and must stay below 2^53.
 *
 *   file header, HEADER_SIZE bytes
 *     0  magic "GASANGSS"                          8
 *     8  version u32 (FORMAT_VERSION)
 *    12  section count u32
 *    16  file length u64                           a truncated file shows here
 *    24  CRC-32 of bytes 0..24 u32
 *    28  reserved u32 (0)
 *   then the sections, back to back, each:
 *     0  tag, 4 ASCII bytes
 *     4  flags u32 (0)
 *     8  payload length u64
 *    16  CRC-32 of the payload u32
 *    20  reserved u32 (0)
 *    24  payload
 *
 * Sections, in this order: META and SPEC (JSON), MACH (JSON: the board's state and the disks'
 * snapshots), HART (the harts' architectural bytes, hart 0 first), RAM (ram.ts).
 */
import { crc32 } from 'node:zlib';

export const MAGIC = 'GASANGSS';
export const FORMAT_VERSION = 2;
export const HEADER_SIZE = 32;
export const SECTION_HEADER_SIZE = 24;

export const enum Hdr { MAGIC = 0, VERSION = 8, SECTIONS = 12, LENGTH = 16, CRC = 24 }
export const enum Sec { TAG = 0, FLAGS = 4, LENGTH = 8, CRC = 16 }

export type SectionTag = 'META' | 'SPEC' | 'MACH' | 'HART' | 'RAM ';
export const SECTION_ORDER: readonly SectionTag[] = ['META', 'SPEC', 'MACH', 'HART', 'RAM '];

/** Largest JSON or HART section accepted (a hostile length must not make us allocate gigabytes). */
export const MAX_SMALL_SECTION = 64 << 20;

export const TWO32 = 0x1_0000_0000;

export function putU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v >>> 0, true);
  dv.setUint32(at + 4, Math.floor(v / TWO32), true);
}

export function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * TWO32 + dv.getUint32(at, true);
}

export function encodeHeader(sections: number, fileLength: number): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE), dv = new DataView(b.buffer);
  b.set(Buffer.from(MAGIC, 'latin1'), Hdr.MAGIC);
  dv.setUint32(Hdr.VERSION, FORMAT_VERSION, true);
  dv.setUint32(Hdr.SECTIONS, sections, true);
  putU64(dv, Hdr.LENGTH, fileLength);
  dv.setUint32(Hdr.CRC, crc32(b.subarray(0, Hdr.CRC)), true);
  return b;
}

export interface FileHeader { magic: string; version: number; sections: number; fileLength: number; crcOk: boolean }

export function decodeHeader(b: Uint8Array): FileHeader {
  const dv = new DataView(b.buffer, b.byteOffset, HEADER_SIZE);
  return {
    magic: Buffer.from(b.subarray(0, 8)).toString('latin1'),
    version: dv.getUint32(Hdr.VERSION, true),
    sections: dv.getUint32(Hdr.SECTIONS, true),
    fileLength: getU64(dv, Hdr.LENGTH),
    crcOk: dv.getUint32(Hdr.CRC, true) === crc32(b.subarray(0, Hdr.CRC)),
  };
}

export function encodeSectionHeader(tag: SectionTag, length: number, crc: number): Uint8Array {
  const b = new Uint8Array(SECTION_HEADER_SIZE), dv = new DataView(b.buffer);
  b.set(Buffer.from(tag, 'latin1'), Sec.TAG);
  putU64(dv, Sec.LENGTH, length);
  dv.setUint32(Sec.CRC, crc >>> 0, true);
  return b;
}

export interface SectionHeader { tag: string; flags: number; length: number; crc: number }

export function decodeSectionHeader(b: Uint8Array): SectionHeader {
  const dv = new DataView(b.buffer, b.byteOffset, SECTION_HEADER_SIZE);
  return { tag: Buffer.from(b.subarray(0, 4)).toString('latin1'), flags: dv.getUint32(Sec.FLAGS, true), length: getU64(dv, Sec.LENGTH), crc: dv.getUint32(Sec.CRC, true) };
}

export { crc32 };
