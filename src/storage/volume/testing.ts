/**
 * Helpers for the volume tests: raw member files in a temporary folder, opened with the real raw
 * format, and checked by reading the host files directly.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockDevice } from '../block.js';
import { RawDisk, createRaw } from '../raw.js';

export class MemberFiles {
  readonly dir = mkdtempSync(join(tmpdir(), 'gasang-volume-'));
  readonly paths: string[];
  readonly disks: RawDisk[];

  constructor(sizes: number[], opts: { readOnly?: boolean } = {}) {
    this.paths = sizes.map((size, i) => {
      const path = join(this.dir, `member${i}.img`);
      createRaw(path, size);
      return path;
    });
    this.disks = this.paths.map((p) => RawDisk.open(p, opts));
  }

  /** The bytes of member i's host file (zero-padded to `length` if the file is shorter). */
  fileBytes(i: number, offset = 0, length?: number): Uint8Array {
    const all = readFileSync(this.paths[i]!);
    const end = length === undefined ? all.length : offset + length;
    const out = new Uint8Array(end - offset);
    out.set(all.subarray(offset, Math.min(end, all.length)));
    return out;
  }

  remove(): void {
    for (const d of this.disks) {
      try { d.close(); } catch { /* closed already (some tests close members under the volume) */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Deterministic bytes (xorshift32) so that misplaced data cannot look right by accident. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed | 0) || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A small seeded PRNG for random request shapes. */
export function rng(seed: number): (below: number) => number {
  let x = seed >>> 0 || 1;
  return (below) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % below;
  };
}

/** Counts the calls a member receives (wraps a real member; every call goes through). */
export class CountingMember implements BlockDevice {
  calls = { read: 0, write: 0, flush: 0, discard: 0, writeZeroes: 0 };
  constructor(private readonly inner: BlockDevice) {}
  get size(): number { return this.inner.size; }
  get readOnly(): boolean { return this.inner.readOnly; }
  read(offset: number, into: Uint8Array): void { this.calls.read++; this.inner.read(offset, into); }
  write(offset: number, data: Uint8Array): void { this.calls.write++; this.inner.write(offset, data); }
  flush(): void { this.calls.flush++; this.inner.flush(); }
  discard(offset: number, length: number): void { this.calls.discard++; this.inner.discard(offset, length); }
  writeZeroes(offset: number, length: number, unmap: boolean): void { this.calls.writeZeroes++; this.inner.writeZeroes(offset, length, unmap); }
  close(): void { this.inner.close(); }
}
