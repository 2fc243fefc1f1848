/**
 * Writing a snapshot file (format.ts) in steps, so RAM can be written while the guest runs
 * (live.ts): begin() writes the small sections at once; pages are saved by slot, in any order and
 * each once, straight from guest RAM with their CRC; finish() writes the RAM index and the file
 * header, fsyncs, renames the temporary file over the target and fsyncs the directory. A writer
 * that fails or is aborted leaves the previous snapshot whole and no temporary file.
 */
import { closeSync, fsync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { SnapshotError } from './errors.js';
import { HEADER_SIZE, SECTION_HEADER_SIZE, SECTION_ORDER, crc32, encodeHeader, encodeSectionHeader, type SectionTag } from './format.js';
import { PAGE, RamLayout, type scanPages } from './ram.js';

/** What goes into a snapshot besides RAM. */
export interface SnapshotParts {
  meta: unknown;
  spec: unknown;
  machine: unknown;
  /** The harts' architectural bytes, back to back. */
  harts: Uint8Array;
  ram: Uint8Array;
}

export interface WriteResult { bytes: number; ramPages: number; storedPages: number }

export const ioError = (what: string, err: unknown): SnapshotError =>
  new SnapshotError('io', `${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });

const fsyncAsync = promisify(fsync);

export class SnapshotWriter {
  readonly layout: RamLayout;
  /** Slot → CRC of the page as saved. */
  private readonly crcs: Uint32Array;
  /** Slot → 1 once saved. */
  private readonly saved: Uint8Array;
  private left: number;
  private fd: number;
  private readonly ramPos: number;
  private readonly dataPos: number;

  private constructor(readonly path: string, private readonly tmp: string, fd: number, private readonly ram: Uint8Array, pos: number, scan: ReturnType<typeof scanPages>) {
    this.fd = fd;
    this.layout = new RamLayout(ram.length, scan.bitmap, scan.stored);
    this.crcs = new Uint32Array(scan.stored);
    this.saved = new Uint8Array(scan.stored);
    this.left = scan.stored;
    this.ramPos = pos;
    this.dataPos = pos + SECTION_HEADER_SIZE + this.layout.indexBytes;
  }

  /** Creates the temporary file and writes every section but RAM's pages; `scan` names the pages to store. */
  static begin(path: string, parts: SnapshotParts, scan: ReturnType<typeof scanPages>): SnapshotWriter {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    let fd: number;
    try {
      fd = openSync(tmp, 'w', 0o600);
    } catch (err) {
      throw ioError(`Cannot create ${tmp}`, err);
    }
    try {
      let pos = HEADER_SIZE;
      const section = (tag: SectionTag, payload: Uint8Array): void => {
        put(fd, encodeSectionHeader(tag, payload.length, crc32(payload)), pos);
        put(fd, payload, pos + SECTION_HEADER_SIZE);
        pos += SECTION_HEADER_SIZE + payload.length;
      };
      const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
      section('META', json(parts.meta));
      section('SPEC', json(parts.spec));
      section('MACH', json(parts.machine));
      section('HART', parts.harts);
      return new SnapshotWriter(path, tmp, fd, parts.ram, pos, scan);
    } catch (err) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw ioError(`Cannot write snapshot ${path}`, err);
    }
  }

  /** Stored pages not saved yet. */
  get remaining(): number { return this.left; }

  isSaved(slot: number): boolean { return this.saved[slot] === 1; }

  /** Saves the unsaved pages of slots [first, first + count) as they are in RAM now (runs of neighbours in one write). */
  save(first: number, count: number): void {
    const { pageOf } = this.layout;
    const end = Math.min(first + count, this.layout.stored);
    for (let s = first; s < end;) {
      if (this.saved[s] === 1) { s++; continue; }
      let e = s + 1;
      while (e < end && this.saved[e] !== 1 && pageOf[e] === pageOf[e - 1]! + 1) e++;
      const from = pageOf[s]! * PAGE;
      try {
        put(this.fd, this.ram.subarray(from, from + (e - s) * PAGE), this.dataPos + s * PAGE);
      } catch (err) {
        throw ioError(`Cannot write snapshot ${this.path}`, err);
      }
      for (let k = s; k < e; k++) {
        this.crcs[k] = crc32(this.ram.subarray((pageOf[k]! ) * PAGE, (pageOf[k]! + 1) * PAGE));
        this.saved[k] = 1;
      }
      this.left -= e - s;
      s = e;
    }
  }

  /** Everything saved: writes the index and header and puts the file in place, fsyncing off the thread. */
  async finish(): Promise<WriteResult> {
    const bytes = this.seal();
    try {
      await fsyncAsync(this.fd);
    } catch (err) {
      this.abort();
      throw ioError(`Cannot write snapshot ${this.path}`, err);
    }
    return this.place(bytes);
  }

  /** As finish(), on this thread. */
  finishSync(): WriteResult {
    const bytes = this.seal();
    try {
      fsyncSync(this.fd);
    } catch (err) {
      this.abort();
      throw ioError(`Cannot write snapshot ${this.path}`, err);
    }
    return this.place(bytes);
  }

  /** Drops the temporary file; the previous snapshot stays. */
  abort(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* already closed */ }
      this.fd = -1;
    }
    rmSync(this.tmp, { force: true });
  }

  private seal(): number {
    if (this.left !== 0) throw new Error(`${this.left} pages not saved`);
    const index = this.layout.index(this.crcs);
    const end = this.ramPos + SECTION_HEADER_SIZE + this.layout.length;
    try {
      put(this.fd, index, this.ramPos + SECTION_HEADER_SIZE);
      put(this.fd, encodeSectionHeader('RAM ', this.layout.length, crc32(index)), this.ramPos);
      put(this.fd, encodeHeader(SECTION_ORDER.length, end), 0);
    } catch (err) {
      this.abort();
      throw ioError(`Cannot write snapshot ${this.path}`, err);
    }
    return end;
  }

  private place(bytes: number): WriteResult {
    try {
      closeSync(this.fd);
      this.fd = -1;
      renameSync(this.tmp, this.path);
      syncDir(dirname(this.path));
    } catch (err) {
      this.abort();
      throw ioError(`Cannot write snapshot ${this.path}`, err);
    }
    return { bytes, ramPages: this.layout.pages, storedPages: this.layout.stored };
  }
}

function put(fd: number, b: Uint8Array, at: number): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off, at + off);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
