/**
 * A disk whose image can be replaced under the device using it: a VM arriving by block migration
 * is built on a fresh overlay, and the overlay copied from the source takes its place once the
 * whole stream has arrived (migration/disks.ts), before the guest runs.
 */
import { StorageError, type BlockDevice } from './block.js';

export class SwappableDisk implements BlockDevice {
  constructor(private inner: BlockDevice) {}

  /** The image in use now. */
  get current(): BlockDevice { return this.inner; }
  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }
  read(offset: number, into: Uint8Array): void { this.inner.read(offset, into); }
  write(offset: number, data: Uint8Array): void { this.inner.write(offset, data); }
  flush(): void { this.inner.flush(); }
  discard(offset: number, length: number): void { this.inner.discard(offset, length); }
  writeZeroes(offset: number, length: number, unmap: boolean): void { this.inner.writeZeroes(offset, length, unmap); }
  close(): void { this.inner.close(); }

  /** Puts `next` in place of the current image (closed); refused if the guest would see another size. */
  swap(next: BlockDevice): void {
    if (next.size !== this.inner.size || next.readOnly !== this.inner.readOnly) {
      next.close();
      throw new StorageError('bad-spec', `The copied image has ${next.size} bytes${next.readOnly ? ' (read-only)' : ''}, the VM's ${this.inner.size}`);
    }
    this.inner.close();
    this.inner = next;
  }
}
