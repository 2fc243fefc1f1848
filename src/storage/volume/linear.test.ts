import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError } from '../block.js';
import { openVolume } from './index.js';
import { MemberFiles, pattern, rng } from './testing.js';

const KiB = 1024, MiB = 1024 * KiB;

test('linear: size is the sum; data written through the volume lands at the right offset of each member file', () => {
  const sizes = [1 * MiB, 512 * KiB, 2 * MiB];
  const f = new MemberFiles(sizes);
  try {
    const vol = openVolume({ mode: 'linear', members: f.disks });
    assert.equal(vol.size, 3.5 * MiB);
    assert.equal(vol.readOnly, false);
    assert.deepEqual(vol.liveMembers(), [0, 1, 2]);
    // The whole volume in random-sized writes (many straddle a member boundary).
    const data = pattern(vol.size, 7);
    const next = rng(1);
    for (let pos = 0; pos < vol.size;) {
      const len = Math.min(vol.size - pos, 512 * (1 + next(300)));
      vol.write(pos, data.subarray(pos, pos + len));
      pos += len;
    }
    vol.flush();
    assert.deepEqual(f.fileBytes(0), data.subarray(0, MiB));
    assert.deepEqual(f.fileBytes(1), data.subarray(MiB, 1.5 * MiB));
    assert.deepEqual(f.fileBytes(2), data.subarray(1.5 * MiB, 3.5 * MiB));
    // Reads that straddle boundaries (one straddles all three members).
    for (const [off, len] of [[MiB - 512, 1024], [1.5 * MiB - 4096, 8192], [MiB - 512, 512 * KiB + 1024], [0, vol.size], [vol.size - 512, 512]] as const) {
      const got = new Uint8Array(len);
      vol.read(off, got);
      assert.deepEqual(got, data.subarray(off, off + len), `read at ${off}+${len}`);
    }
    vol.close();
  } finally {
    f.remove();
  }
});

test('linear: discard and write-zeroes across member boundaries zero exactly the range in each file', () => {
  const f = new MemberFiles([64 * KiB, 64 * KiB, 64 * KiB]);
  try {
    const vol = openVolume({ mode: 'linear', members: f.disks });
    const data = pattern(vol.size, 3);
    vol.write(0, data);
    vol.discard(60 * KiB, 8 * KiB);             // 4 KiB at the end of member 0, 4 KiB at the start of member 1
    vol.writeZeroes(100 * KiB, 80 * KiB, false);  // member 1 from 36 KiB to its end, member 2 up to 52 KiB
    const expected = data.slice();
    expected.fill(0, 60 * KiB, 68 * KiB);
    expected.fill(0, 100 * KiB, 180 * KiB);
    assert.deepEqual(f.fileBytes(0, 0, 64 * KiB), expected.subarray(0, 64 * KiB));
    assert.deepEqual(f.fileBytes(1, 0, 64 * KiB), expected.subarray(64 * KiB, 128 * KiB));
    assert.deepEqual(f.fileBytes(2, 0, 64 * KiB), expected.subarray(128 * KiB));
    const back = new Uint8Array(vol.size);
    vol.read(0, back);
    assert.deepEqual(back, expected);
    vol.close();
  } finally {
    f.remove();
  }
});

test('linear: requests past the end are refused; a read-only member makes the volume read-only', () => {
  const f = new MemberFiles([64 * KiB, 64 * KiB]);
  try {
    const vol = openVolume({ mode: 'linear', members: f.disks });
    assert.throws(() => vol.read(128 * KiB - 512, new Uint8Array(1024)), (e: unknown) => e instanceof StorageError && e.kind === 'out-of-range');
    assert.throws(() => vol.write(-512, new Uint8Array(512)), (e: unknown) => e instanceof StorageError && e.kind === 'out-of-range');
    assert.throws(() => vol.discard(Number.NaN, 512), (e: unknown) => e instanceof StorageError && e.kind === 'out-of-range');
    vol.read(128 * KiB, new Uint8Array(0)); // an empty read at the very end is fine
    vol.close();
  } finally {
    f.remove();
  }
  const ro = new MemberFiles([64 * KiB, 64 * KiB], { readOnly: true });
  try {
    const vol = openVolume({ mode: 'linear', members: ro.disks });
    assert.equal(vol.readOnly, true);
    assert.throws(() => vol.write(0, new Uint8Array(512)), (e: unknown) => e instanceof StorageError && e.kind === 'read-only');
    assert.throws(() => vol.writeZeroes(0, 512, true), (e: unknown) => e instanceof StorageError && e.kind === 'read-only');
    vol.close();
  } finally {
    ro.remove();
  }
  const asked = new MemberFiles([64 * KiB]);
  try {
    const vol = openVolume({ mode: 'linear', members: asked.disks, readOnly: true });
    assert.equal(vol.readOnly, true);
    assert.throws(() => vol.write(0, new Uint8Array(512)), (e: unknown) => e instanceof StorageError && e.kind === 'read-only');
    vol.close();
  } finally {
    asked.remove();
  }
});

test('volume specs that cannot work are refused with bad-spec', () => {
  const f = new MemberFiles([64 * KiB]);
  try {
    const bad = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof StorageError && e.kind === 'bad-spec');
    bad(() => openVolume({ mode: 'linear', members: [] }));
    bad(() => openVolume({ mode: 'linear', members: f.disks, stripeBytes: 4096 }));
    bad(() => openVolume({ mode: 'mirror', members: f.disks, memberPaths: [] }));
    bad(() => openVolume({ mode: 'raid5' as 'linear', members: f.disks }));
  } finally {
    f.remove();
  }
});
