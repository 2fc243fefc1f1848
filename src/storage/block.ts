/**
 * What a virtual disk is to the devices that use it. Formats (raw, qcow2, overlays), volumes
 * (linear, stripe, mirror) and throttling all implement it, and devices (virtio-blk) see only it.
 *
 * Calls are synchronous: each is a handful of pread/pwrite system calls on the VM's own thread
 * (Node's sync fs calls go straight to the kernel, with no thread-pool hop, which is what small
 * random I/O needs). Offsets and lengths are in bytes; callers keep them within `size`.
 */
import { GasangError } from '../util/errors.js';

export interface BlockDevice {
  /** Virtual size in bytes (a multiple of 512). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Reads [offset, offset + into.length) into `into`; unallocated ranges read as zeroes. */
  read(offset: number, into: Uint8Array): void;
  /** Writes `data` at `offset`. Durable only after flush(). */
  write(offset: number, data: Uint8Array): void;
  /** Makes every completed write durable (fdatasync, metadata first where the format needs it). */
  flush(): void;
  /** The range may be deallocated; it reads as zeroes afterwards. */
  discard(offset: number, length: number): void;
  /** The range reads as zeroes afterwards; `unmap` allows deallocation. */
  writeZeroes(offset: number, length: number, unmap: boolean): void;
  /** Flushes and releases host files. */
  close(): void;
}

export type StorageErrorKind = 'not-found' | 'corrupt' | 'unsupported' | 'read-only' | 'io' | 'out-of-range' | 'bad-spec';

/** A disk that cannot be opened or an operation that failed; `kind` says which. */
export class StorageError extends GasangError {
  constructor(readonly kind: StorageErrorKind, message: string, options?: { cause?: unknown }) {
    super(`storage-${kind}`, message, options);
  }
}
