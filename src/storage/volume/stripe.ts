/**
 * Striped volume (RAID-0): the volume is cut into chunks of `chunk` bytes dealt round-robin to the
 * members: chunk k lives on member k mod n, at member offset floor(k / n) * chunk. Each member
 * contributes floor(min size / chunk) whole chunks, so size = n * that * chunk.
 */
import { StorageError, type BlockDevice } from '../block.js';
import { VolumeBase, type VolumeMode } from './volume.js';

export class StripeVolume extends VolumeBase {
  readonly mode: VolumeMode = 'stripe';
  readonly size: number;

  constructor(members: readonly BlockDevice[], readonly chunk: number, readOnly: boolean) {
    super(members, readOnly);
    if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % 512 !== 0) {
      throw new StorageError('bad-spec', `Stripe size ${chunk} is not a positive multiple of 512 bytes`);
    }
    let min = Infinity;
    for (const m of members) min = Math.min(min, m.size);
    const perMember = Math.floor(min / chunk) * chunk;
    if (perMember === 0) {
      throw new StorageError('bad-spec', `The smallest stripe member (${min} bytes) is smaller than one ${chunk}-byte chunk`);
    }
    this.size = perMember * members.length;
  }

  read(offset: number, into: Uint8Array): void {
    this.checkRange(offset, into.length);
    this.transfer(offset, into, false);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWrite(offset, data.length);
    this.transfer(offset, data, true);
  }

  flush(): void {
    for (const m of this.members) m.flush();
  }

  discard(offset: number, length: number): void {
    this.checkWrite(offset, length);
    this.forEachMemberRange(offset, length, false, true);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.checkWrite(offset, length);
    this.forEachMemberRange(offset, length, unmap, false);
  }

  /** Splits a read or write at chunk boundaries (data interleaves, so one call per chunk touched). */
  private transfer(offset: number, buf: Uint8Array, write: boolean): void {
    const c = this.chunk, n = this.members.length;
    const end = offset + buf.length;
    for (let pos = offset; pos < end;) {
      const k = Math.floor(pos / c);
      const within = pos - k * c;
      const stop = Math.min(end, (k + 1) * c);
      const member = this.members[k % n]!;
      const memberOffset = Math.floor(k / n) * c + within;
      // The whole buffer when it fits in one chunk: no subarray.
      const piece = pos === offset && stop === end ? buf : buf.subarray(pos - offset, stop - offset);
      if (write) member.write(memberOffset, piece);
      else member.read(memberOffset, piece);
      pos = stop;
    }
  }

  /**
   * Discard / write-zeroes: the chunks of [offset, offset + length) that one member holds are
   * consecutive in that member, so each member gets at most one call, whatever the length.
   */
  private forEachMemberRange(offset: number, length: number, unmap: boolean, discard: boolean): void {
    if (length === 0) return;
    const c = this.chunk, n = this.members.length;
    const last = offset + length - 1;
    const k0 = Math.floor(offset / c), k1 = Math.floor(last / c);
    for (let m = 0; m < n; m++) {
      const first = k0 + (((m - (k0 % n)) % n) + n) % n;   // first chunk >= k0 on member m
      const final = k1 - ((((k1 % n) - m) % n) + n) % n;  // last chunk <= k1 on member m
      if (first > k1 || final < k0) continue;
      const lo = Math.floor(first / n) * c + (first === k0 ? offset - k0 * c : 0);
      const hi = Math.floor(final / n) * c + (final === k1 ? last - k1 * c + 1 : c);
      if (discard) this.members[m]!.discard(lo, hi - lo);
      else this.members[m]!.writeZeroes(lo, hi - lo, unmap);
    }
  }
}
