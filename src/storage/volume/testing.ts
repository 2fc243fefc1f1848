/**
 * Helpers for the volume tests: raw member files in a temporary folder, opened with the real raw
 * format, and checked by reading the host files directly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageError, type BlockDevice, type StorageErrorKind } from '../block.js';
import { RawDisk, createRaw } from '../raw.js';
import type { Volume } from './volume.js';

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

/** For assert.throws: a StorageError of this kind. */
export function storageError(kind: StorageErrorKind): (e: unknown) => boolean {
  return (e) => e instanceof StorageError && e.kind === kind;
}

/** Runs `fn` over fresh member files, then removes them (closing their disks) whatever happens. */
export function withMembers(sizes: number[], fn: (f: MemberFiles) => void, opts: { readOnly?: boolean } = {}): void {
  const f = new MemberFiles(sizes, opts);
  try {
    fn(f);
  } finally {
    f.remove();
  }
}

/**
 * withMembers with a volume opened over the members by `open`. The volume is closed once `fn`
 * returns, outside any catch, so a close that throws fails the test.
 */
export function withVolume(sizes: number[], open: (f: MemberFiles) => Volume, fn: (vol: Volume, f: MemberFiles) => void,
  opts: { readOnly?: boolean } = {}): void {
  withMembers(sizes, (f) => {
    const vol = open(f);
    fn(vol, f);
    vol.close();
  }, opts);
}

/** Writes all of `data` from offset 0 in pieces of 1 to `maxSectors` sectors, sized by `next`. */
export function writeInPieces(vol: BlockDevice, data: Uint8Array, next: (below: number) => number, maxSectors: number): void {
  for (let pos = 0; pos < data.length;) {
    const len = Math.min(data.length - pos, 512 * (1 + next(maxSectors)));
    vol.write(pos, data.subarray(pos, pos + len));
    pos += len;
  }
}

/** Each [offset, length] read through the volume equals the same range of `data`. */
export function assertReads(vol: BlockDevice, data: Uint8Array, ranges: readonly (readonly [number, number])[]): void {
  for (const [off, len] of ranges) {
    const got = new Uint8Array(len);
    vol.read(off, got);
    assert.deepEqual(got, data.subarray(off, off + len), `read at ${off}+${len}`);
  }
}

/** The whole volume, read back in one request, equals `expected`. */
export function assertVolumeHolds(vol: BlockDevice, expected: Uint8Array): void {
  const back = new Uint8Array(vol.size);
  vol.read(0, back);
  assert.deepEqual(back, expected);
}

/**
 * Member m's host file holds expected[m], one expectation per member: the whole file, or (with
 * `length`) its first `length` bytes, zero-padded if the file is shorter.
 */
export function assertMembersHold(f: MemberFiles, expected: readonly Uint8Array[], length?: number): void {
  assert.equal(expected.length, f.paths.length, 'one expectation per member');
  expected.forEach((bytes, m) => assert.deepEqual(f.fileBytes(m, 0, length), bytes, `member ${m}`));
}
