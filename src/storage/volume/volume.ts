/**
 * What the volume layouts share: their options, the range checks every request goes through, and
 * the spec type the CLI turns into opened members.
 */
import { StorageError, type BlockDevice } from '../block.js';

export type VolumeMode = 'linear' | 'stripe' | 'mirror';

/** A volume as the CLI or a VM spec names it; the caller opens `files` (openDisk) and passes them as members. */
export interface VolumeSpec {
  mode: VolumeMode;
  /** Image files of the members, in order. */
  files: string[];
  /** Stripe chunk size in bytes (stripe only; default 64 KiB). */
  stripeBytes?: number;
  readOnly?: boolean;
}

export interface VolumeOptions {
  mode: VolumeMode;
  /** Opened members, in order. The volume owns them from now on: close() closes them. */
  members: BlockDevice[];
  /** Stripe chunk size in bytes: a positive multiple of 512 (stripe only; default 64 KiB). */
  stripeBytes?: number;
  /** Refuse writes even if every member is writable. */
  readOnly?: boolean;
  /**
   * Mirror only: host files backing the members (same order). A watched member whose file
   * disappears, is replaced, or shrinks is failed, rather than read from an unlinked file or read
   * as zeroes past a truncation. Checked before a request at most every `watchIntervalMs`.
   */
  memberPaths?: readonly string[];
  /** Default 1000 ms. */
  watchIntervalMs?: number;
  /** Mirror only: called once per member that fails. */
  onMemberFailed?: (index: number, error: Error) => void;
  /** Where the mirror's one-line failure reports go (default: console.warn). */
  log?: (line: string) => void;
}

/** A BlockDevice made of other BlockDevices. */
export interface Volume extends BlockDevice {
  readonly mode: VolumeMode;
  /** Indexes of the members in use: all of them, less the mirror members that failed. */
  liveMembers(): number[];
}

export const DEFAULT_STRIPE_BYTES = 64 * 1024;

/** Range checks shared by the layouts; a subclass implements the data path. */
export abstract class VolumeBase implements Volume {
  abstract readonly mode: VolumeMode;
  abstract readonly size: number;
  readonly readOnly: boolean;

  constructor(protected readonly members: readonly BlockDevice[], readOnly: boolean) {
    this.readOnly = readOnly || members.some((m) => m.readOnly);
  }

  abstract read(offset: number, into: Uint8Array): void;
  abstract write(offset: number, data: Uint8Array): void;
  abstract flush(): void;
  abstract discard(offset: number, length: number): void;
  abstract writeZeroes(offset: number, length: number, unmap: boolean): void;

  liveMembers(): number[] {
    return this.members.map((_, i) => i);
  }

  close(): void {
    let first: unknown;
    for (const m of this.members) {
      try {
        m.close();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  protected checkRange(offset: number, length: number): void {
    // Written so that NaN fails too.
    if (!(offset >= 0 && length >= 0 && offset + length <= this.size)) {
      throw new StorageError('out-of-range', `Access at ${offset}+${length} is past the end of the ${this.mode} volume (${this.size} bytes)`);
    }
  }

  protected checkWrite(offset: number, length: number): void {
    if (this.readOnly) throw new StorageError('read-only', `The ${this.mode} volume is read-only`);
    this.checkRange(offset, length);
  }
}

/** Validates the member list every layout needs. */
export function checkMembers(opts: VolumeOptions): void {
  if (!Array.isArray(opts.members) || opts.members.length === 0) {
    throw new StorageError('bad-spec', `A ${opts.mode} volume needs at least one member`);
  }
  if (opts.memberPaths !== undefined && opts.memberPaths.length !== opts.members.length) {
    throw new StorageError('bad-spec', `memberPaths has ${opts.memberPaths.length} entries for ${opts.members.length} members`);
  }
  for (const [i, m] of opts.members.entries()) {
    if (!(m.size > 0) || m.size % 512 !== 0) {
      throw new StorageError('bad-spec', `Member ${i} has an unusable size (${m.size} bytes)`);
    }
  }
}
