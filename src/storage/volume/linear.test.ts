import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openVolume } from './index.js';
import {
  assertMembersHold, assertReads, assertVolumeHolds, pattern, rng, storageError, withMembers, withVolume, writeInPieces, type MemberFiles,
} from './testing.js';

const KiB = 1024, MiB = 1024 * KiB;

const linear = (f: MemberFiles) => openVolume({ mode: 'linear', members: f.disks });

test('linear: size is the sum; data written through the volume lands at the right offset of each member file', () => {
  withVolume([1 * MiB, 512 * KiB, 2 * MiB], linear, (vol, f) => {
    assert.equal(vol.size, 3.5 * MiB);
    assert.equal(vol.readOnly, false);
    assert.deepEqual(vol.liveMembers(), [0, 1, 2]);
    // The whole volume in random-sized writes (many straddle a member boundary).
    const data = pattern(vol.size, 7);
    writeInPieces(vol, data, rng(1), 300);
    vol.flush();
    assertMembersHold(f, [data.subarray(0, MiB), data.subarray(MiB, 1.5 * MiB), data.subarray(1.5 * MiB, 3.5 * MiB)]);
    // Reads that straddle boundaries (one straddles all three members).
    assertReads(vol, data, [[MiB - 512, 1024], [1.5 * MiB - 4096, 8192], [MiB - 512, 512 * KiB + 1024], [0, vol.size], [vol.size - 512, 512]]);
  });
});

test('linear: discard and write-zeroes across member boundaries zero exactly the range in each file', () => {
  withVolume([64 * KiB, 64 * KiB, 64 * KiB], linear, (vol, f) => {
    const data = pattern(vol.size, 3);
    vol.write(0, data);
    vol.discard(60 * KiB, 8 * KiB);             // 4 KiB at the end of member 0, 4 KiB at the start of member 1
    vol.writeZeroes(100 * KiB, 80 * KiB, false);  // member 1 from 36 KiB to its end, member 2 up to 52 KiB
    const expected = data.slice();
    expected.fill(0, 60 * KiB, 68 * KiB);
    expected.fill(0, 100 * KiB, 180 * KiB);
    assertMembersHold(f, [expected.subarray(0, 64 * KiB), expected.subarray(64 * KiB, 128 * KiB), expected.subarray(128 * KiB)], 64 * KiB);
    assertVolumeHolds(vol, expected);
  });
});

test('linear: requests past the end are refused; a read-only member makes the volume read-only', () => {
  withVolume([64 * KiB, 64 * KiB], linear, (vol) => {
    assert.throws(() => vol.read(128 * KiB - 512, new Uint8Array(1024)), storageError('out-of-range'));
    assert.throws(() => vol.write(-512, new Uint8Array(512)), storageError('out-of-range'));
    assert.throws(() => vol.discard(Number.NaN, 512), storageError('out-of-range'));
    vol.read(128 * KiB, new Uint8Array(0)); // an empty read at the very end is fine
  });
  withVolume([64 * KiB, 64 * KiB], linear, (vol) => {
    assert.equal(vol.readOnly, true);
    assert.throws(() => vol.write(0, new Uint8Array(512)), storageError('read-only'));
    assert.throws(() => vol.writeZeroes(0, 512, true), storageError('read-only'));
  }, { readOnly: true });
  withVolume([64 * KiB], (f) => openVolume({ mode: 'linear', members: f.disks, readOnly: true }), (vol) => {
    assert.equal(vol.readOnly, true);
    assert.throws(() => vol.write(0, new Uint8Array(512)), storageError('read-only'));
  });
});

test('volume specs that cannot work are refused with bad-spec', () => {
  withMembers([64 * KiB], (f) => {
    const bad = (fn: () => unknown) => assert.throws(fn, storageError('bad-spec'));
    bad(() => openVolume({ mode: 'linear', members: [] }));
    bad(() => openVolume({ mode: 'linear', members: f.disks, stripeBytes: 4096 }));
    bad(() => openVolume({ mode: 'mirror', members: f.disks, memberPaths: [] }));
    bad(() => openVolume({ mode: 'raid5' as 'linear', members: f.disks }));
  });
});
