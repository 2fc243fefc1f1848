/**
 * Raw disk images: the virtual disk is the host file byte for byte, created sparse.
 *
 * Discard and write-zeroes: Node has no fallocate(PUNCH_HOLE), so a range that reaches the end of
 * the file is deallocated by truncating the file to the range start and back to its size; any
 * other range gets zeroes written (correct, but it allocates host space instead of freeing it).
 */
import { StorageError, type BlockDevice } from './block.js';
import { HostFile } from './host-file.js';

/** Zeroes are written from this buffer in chunks (shared, never written to). */
const ZERO_CHUNK = new Uint8Array(1 << 20);

export class RawDisk implements BlockDevice {
  readonly size: number;
  private constructor(private readonly file: HostFile, readonly readOnly: boolean) {
    // The block layer works in 512-byte sectors; a trailing partial sector reads as zeroes.
    this.size = Math.ceil(file.length / 512) * 512;
  }

  static open(path: string, opts: { readOnly?: boolean } = {}): RawDisk {
    const readOnly = opts.readOnly ?? false;
    return new RawDisk(HostFile.open(path, readOnly), readOnly);
  }

  get path(): string { return this.file.path; }

  read(offset: number, into: Uint8Array): void {
    this.check(offset, into.length);
    this.file.read(offset, into);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWrite(offset, data.length);
    this.file.write(offset, data);
  }

  flush(): void {
    if (!this.readOnly) this.file.sync();
  }

  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length, true);
  }

  writeZeroes(offset: number, length: number, _unmap: boolean): void {
    this.checkWrite(offset, length);
    const fileEnd = this.file.length;
    if (offset + length >= fileEnd && offset < fileEnd) {
      this.file.truncate(offset);
      this.file.truncate(fileEnd);
      return;
    }
    for (let done = 0; done < length;) {
      const n = Math.min(length - done, ZERO_CHUNK.length);
      this.file.write(offset + done, ZERO_CHUNK, 0, n);
      done += n;
    }
  }

  /** Bytes the host file really occupies. */
  allocatedBytes(): number { return this.file.allocatedBytes(); }

  close(): void {
    this.flush();
    this.file.close();
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new StorageError('out-of-range', `Access at ${offset}+${length} is past the end of ${this.file.path} (${this.size} bytes)`);
    }
  }

  private checkWrite(offset: number, length: number): void {
    if (this.readOnly) throw new StorageError('read-only', `${this.file.path} is open read-only`);
    this.check(offset, length);
  }
}

/** Creates (or truncates) a sparse raw image of `size` bytes (rounded up to 512). */
export function createRaw(path: string, size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0) throw new StorageError('bad-spec', `Invalid image size ${size}`);
  const file = HostFile.create(path);
  try {
    file.truncate(Math.ceil(size / 512) * 512);
  } finally {
    file.close();
  }
}
