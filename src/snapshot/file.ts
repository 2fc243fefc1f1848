/**
 * Writing and reading snapshot files (format.ts). A snapshot is written to a temporary file
 * beside its target, fsynced and renamed over it, and the directory fsynced (writer.ts): a writer
 * killed at any moment leaves the previous snapshot whole. Reading checks magic, version, length and every
 * section's CRC before anything is used; RAM pages are checked one by one as they are loaded.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SnapshotError } from './errors.js';
import {
  FORMAT_VERSION, HEADER_SIZE, MAGIC, MAX_SMALL_SECTION, SECTION_HEADER_SIZE, SECTION_ORDER, crc32, decodeHeader, decodeSectionHeader, type SectionTag,
} from './format.js';
import type { Residency } from '../memory/residency.js';
import { LazyRam, type LazyRamStats } from './lazy-ram.js';
import { readRamIndex, scanPages } from './ram.js';
import { SnapshotWriter, ioError, type SnapshotParts, type WriteResult } from './writer.js';

export type { SnapshotParts, WriteResult } from './writer.js';

/** Writes `parts` to `path` atomically. RAM is read from `parts.ram` synchronously: the VM must not run meanwhile. */
export function writeSnapshot(path: string, parts: SnapshotParts): WriteResult {
  const w = SnapshotWriter.begin(path, parts, scanPages(parts.ram));
  try {
    w.save(0, w.layout.stored);
  } catch (err) {
    w.abort();
    throw err;
  }
  return w.finishSync();
}

/** A snapshot file whose header and small sections are checked; RAM is loaded on demand (lazy-ram.ts). */
export class SnapshotFile {
  readonly meta: unknown;
  readonly spec: unknown;
  readonly machine: unknown;
  readonly harts: Uint8Array;
  private readonly ram: { pos: number; length: number; crc: number };

  private constructor(readonly path: string, private fd: number) {
    const size = fstatSync(fd).size;
    const head = this.read(0, Math.min(HEADER_SIZE, size));
    if (head.length < 8 || Buffer.from(head.subarray(0, 8)).toString('latin1') !== MAGIC) {
      throw new SnapshotError('not-snapshot', `${path} is not a gasang snapshot`);
    }
    if (head.length < HEADER_SIZE) throw new SnapshotError('truncated', `${path} is truncated (${size} bytes)`);
    const h = decodeHeader(head);
    if (!h.crcOk) throw new SnapshotError('corrupt', `${path} is corrupt: its header fails its checksum`);
    if (h.version !== FORMAT_VERSION) {
      throw new SnapshotError('version', `${path} is a snapshot of format version ${h.version}; this gasang reads version ${FORMAT_VERSION}`);
    }
    if (size < h.fileLength) throw new SnapshotError('truncated', `${path} is truncated: ${size} of ${h.fileLength} bytes`);
    if (size > h.fileLength || h.sections !== SECTION_ORDER.length) throw new SnapshotError('corrupt', `${path} is corrupt: its length or section count is wrong`);
    const found = new Map<string, { pos: number; length: number; crc: number }>();
    let pos = HEADER_SIZE;
    for (const want of SECTION_ORDER) {
      if (pos + SECTION_HEADER_SIZE > size) throw new SnapshotError('truncated', `${path} is truncated before section ${want.trim()}`);
      const s = decodeSectionHeader(this.read(pos, SECTION_HEADER_SIZE));
      if (s.tag !== want || s.flags !== 0) throw new SnapshotError('corrupt', `${path} is corrupt: section ${JSON.stringify(s.tag)} where ${want.trim()} belongs`);
      if (pos + SECTION_HEADER_SIZE + s.length > size) throw new SnapshotError('truncated', `${path} is truncated in section ${want.trim()}`);
      found.set(want, { pos: pos + SECTION_HEADER_SIZE, length: s.length, crc: s.crc });
      pos += SECTION_HEADER_SIZE + s.length;
    }
    const small = (tag: SectionTag): Uint8Array => {
      const s = found.get(tag)!;
      if (s.length > MAX_SMALL_SECTION) throw new SnapshotError('corrupt', `${path} is corrupt: section ${tag.trim()} is ${s.length} bytes`);
      const b = this.read(s.pos, s.length);
      if (crc32(b) !== s.crc) throw new SnapshotError('corrupt', `${path} is corrupt: section ${tag.trim()} fails its checksum`);
      return b;
    };
    const json = (tag: SectionTag): unknown => {
      try {
        return JSON.parse(Buffer.from(small(tag)).toString('utf8'));
      } catch (err) {
        if (err instanceof SnapshotError) throw err;
        throw new SnapshotError('corrupt', `${path} is corrupt: section ${tag.trim()} is not JSON`);
      }
    };
    this.meta = json('META');
    this.spec = json('SPEC');
    this.machine = json('MACH');
    this.harts = small('HART');
    this.ram = found.get('RAM ')!;
  }

  static open(path: string): SnapshotFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new SnapshotError('not-found', `${path}: No such file`, { cause: err });
      throw ioError(`Cannot open ${path}`, err);
    }
    try {
      return new SnapshotFile(path, fd);
    } catch (err) {
      closeSync(fd);
      if (err instanceof SnapshotError) throw err;
      throw ioError(`Cannot read ${path}`, err);
    }
  }

  /**
   * Starts loading RAM into `ram` (zeroed, of the saved size) behind `residency`: the file then
   * belongs to the returned pager, which closes it once every page is in (or the machine is).
   */
  lazyRam(ram: Uint8Array, residency: Residency, onDone?: (stats: LazyRamStats) => void): LazyRam {
    const r = this.ram;
    const index = readRamIndex(this.fd, r.pos, r.length, r.crc, ram.length);
    if (index === 'shape') throw new SnapshotError('mismatch', `${this.path} holds RAM of another size than this VM's ${ram.length / 1048576} MiB`);
    if (typeof index === 'string') throw new SnapshotError('corrupt', `${this.path} is corrupt: its RAM section ${index === 'crc' ? 'fails its checksum' : 'has the wrong length'}`);
    const pager = new LazyRam(this.path, this.fd, index, ram, residency, onDone);
    this.fd = -1;
    return pager;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private read(pos: number, length: number): Uint8Array {
    const b = new Uint8Array(length);
    for (let off = 0; off < length;) {
      const n = readSync(this.fd, b, off, length - off, pos + off);
      if (n === 0) throw new SnapshotError('truncated', `${this.path} is truncated`);
      off += n;
    }
    return b;
  }
}
