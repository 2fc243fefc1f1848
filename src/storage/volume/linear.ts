/**
 * Linear volume: the members one after the other (size = the sum of their sizes). A request that
 * crosses from one member into the next is split at the boundary.
 */
import type { BlockDevice } from '../block.js';
import { VolumeBase, type VolumeMode } from './volume.js';

export class LinearVolume extends VolumeBase {
  readonly mode: VolumeMode = 'linear';
  readonly size: number;
  /** starts[i] = volume offset of member i's first byte; starts[n] = size. */
  private readonly starts: Float64Array;

  constructor(members: readonly BlockDevice[], readOnly: boolean) {
    super(members, readOnly);
    this.starts = new Float64Array(members.length + 1);
    for (let i = 0; i < members.length; i++) this.starts[i + 1] = this.starts[i]! + members[i]!.size;
    this.size = this.starts[members.length]!;
  }

  read(offset: number, into: Uint8Array): void {
    this.checkRange(offset, into.length);
    let i = this.memberAt(offset);
    const end = offset + into.length;
    // Common case: the whole request is inside one member, so no subarray is made.
    if (end <= this.starts[i + 1]!) {
      this.members[i]!.read(offset - this.starts[i]!, into);
      return;
    }
    for (let pos = offset; pos < end; i++) {
      const stop = Math.min(end, this.starts[i + 1]!);
      this.members[i]!.read(pos - this.starts[i]!, into.subarray(pos - offset, stop - offset));
      pos = stop;
    }
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWrite(offset, data.length);
    let i = this.memberAt(offset);
    const end = offset + data.length;
    if (end <= this.starts[i + 1]!) {
      this.members[i]!.write(offset - this.starts[i]!, data);
      return;
    }
    for (let pos = offset; pos < end; i++) {
      const stop = Math.min(end, this.starts[i + 1]!);
      this.members[i]!.write(pos - this.starts[i]!, data.subarray(pos - offset, stop - offset));
      pos = stop;
    }
  }

  flush(): void {
    for (const m of this.members) m.flush();
  }

  discard(offset: number, length: number): void {
    this.checkWrite(offset, length);
    this.forEachPiece(offset, length, false, true);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.checkWrite(offset, length);
    this.forEachPiece(offset, length, unmap, false);
  }

  private forEachPiece(offset: number, length: number, unmap: boolean, discard: boolean): void {
    const end = offset + length;
    for (let i = this.memberAt(offset), pos = offset; pos < end; i++) {
      const stop = Math.min(end, this.starts[i + 1]!);
      const m = this.members[i]!;
      if (discard) m.discard(pos - this.starts[i]!, stop - pos);
      else m.writeZeroes(pos - this.starts[i]!, stop - pos, unmap);
      pos = stop;
    }
  }

  /** Index of the member holding volume byte `offset` (binary search; offset < size). */
  private memberAt(offset: number): number {
    let lo = 0, hi = this.members.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
