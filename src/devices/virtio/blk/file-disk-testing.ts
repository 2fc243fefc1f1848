/**
 * A minimal BlockDevice over a real host file, for device tests (the storage layer's own raw and
 * qcow2 disks are tested in src/storage). Counts flushes so tests can see FLUSH honoured.
 */
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { BlockDevice } from '../../../storage/block.js';

export class FileDisk implements BlockDevice {
  flushes = 0;
  private fd: number;

  constructor(path: string, readonly size: number, readonly readOnly = false) {
    this.fd = openSync(path, readOnly ? 'r' : existsSync(path) ? 'r+' : 'w+');
    if (!readOnly) ftruncateSync(this.fd, size);
  }

  read(offset: number, into: Uint8Array): void {
    let done = 0;
    while (done < into.length) {
      const n = readSync(this.fd, into, done, into.length - done, offset + done);
      if (n === 0) { into.fill(0, done); return; }
      done += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  flush(): void { fdatasyncSync(this.fd); this.flushes++; }
  discard(offset: number, length: number): void { this.writeZeroes(offset, length); }
  writeZeroes(offset: number, length: number): void { this.write(offset, new Uint8Array(length)); }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
