import assert from 'node:assert/strict';
import { rmSync, truncateSync } from 'node:fs';
import { test } from 'node:test';
import { StorageError } from '../block.js';
import { openVolume, type Volume } from './index.js';
import { assertMembersHold, assertVolumeHolds, pattern, withVolume, type MemberFiles } from './testing.js';

const KiB = 1024, MiB = 1024 * KiB;

interface Mirror {
  f: MemberFiles;
  vol: Volume;
  failures: { index: number; message: string }[];
  logs: string[];
}

/** Runs `fn` on a mirror over fresh member files that records its failure reports (withVolume closes it). */
function withMirror(sizes: number[], watch: boolean, fn: (m: Mirror) => void): void {
  const failures: Mirror['failures'] = [];
  const logs: string[] = [];
  const open = (f: MemberFiles) => openVolume({
    mode: 'mirror', members: f.disks,
    memberPaths: watch ? f.paths : undefined, watchIntervalMs: 0,
    onMemberFailed: (index, error) => failures.push({ index, message: error.message }),
    log: (line) => logs.push(line),
  });
  withVolume(sizes, open, (vol, f) => fn({ f, vol, failures, logs }));
}

test('mirror: size is the smallest member; every write lands in every member file', () => {
  withMirror([MiB, MiB + 64 * KiB], false, ({ f, vol, failures }) => {
    assert.equal(vol.size, MiB);
    const data = pattern(MiB, 21);
    vol.write(0, data.subarray(0, 300 * KiB));
    vol.write(300 * KiB, data.subarray(300 * KiB));
    vol.writeZeroes(4 * KiB, 4 * KiB, true);
    vol.discard(MiB - 8 * KiB, 8 * KiB);
    vol.flush();
    const expected = data.slice();
    expected.fill(0, 4 * KiB, 8 * KiB).fill(0, MiB - 8 * KiB);
    assertMembersHold(f, [expected, expected], MiB);
    assertVolumeHolds(vol, expected);
    assert.deepEqual(failures, []);
  });
});

test('mirror: a member whose reads fail (its file closed under it) is failed once; reads come from the survivor', () => {
  withMirror([MiB, MiB], false, ({ f, vol, failures, logs }) => {
    const data = pattern(MiB, 22);
    vol.write(0, data);
    f.disks[0]!.close();                 // the primary's descriptor is gone: its reads throw
    assertVolumeHolds(vol, data);        // retried on member 1
    assert.deepEqual(failures.map((x) => x.index), [0]);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /^Mirror member #0 failed \(.+\); continuing on member #1$/);
    assert.deepEqual(vol.liveMembers(), [1]);
    // Writes go on to the survivor only.
    const more = pattern(64 * KiB, 23);
    vol.write(128 * KiB, more);
    vol.flush();
    assert.deepEqual(f.fileBytes(1, 128 * KiB, 64 * KiB), more);
    assert.deepEqual(f.fileBytes(0, 128 * KiB, 64 * KiB), data.subarray(128 * KiB, 192 * KiB));
    assert.equal(failures.length, 1, 'reported once');
  });
});

test('mirror: a member file deleted mid-run is failed and all data is read from the survivor', () => {
  withMirror([MiB, MiB, MiB], true, ({ f, vol, failures, logs }) => {
    const data = pattern(MiB, 24);
    vol.write(0, data);
    rmSync(f.paths[0]!);                  // the open descriptor would still read the unlinked file
    assertVolumeHolds(vol, data);
    assert.deepEqual(failures, [{ index: 0, message: `${f.paths[0]} has disappeared` }]);
    assert.equal(logs[0], `Mirror member #0 (${f.paths[0]}) failed (${f.paths[0]} has disappeared); continuing on member #1 (${f.paths[1]})`);
    assert.deepEqual(vol.liveMembers(), [1, 2]);
  });
});

test('mirror: a truncated member file is failed instead of reading as zeroes', () => {
  withMirror([MiB, MiB], true, ({ f, vol, failures }) => {
    const data = pattern(MiB, 25);
    vol.write(0, data);
    vol.flush();
    truncateSync(f.paths[0]!, 0);
    assertVolumeHolds(vol, data);
    assert.deepEqual(failures, [{ index: 0, message: `${f.paths[0]} shrank from ${MiB} to 0 bytes` }]);
    // The survivor keeps taking writes; the truncated file is left alone.
    vol.write(0, new Uint8Array(512).fill(0xaa));
    assert.deepEqual(f.fileBytes(1, 0, 512), new Uint8Array(512).fill(0xaa));
    assert.equal(f.fileBytes(0).length, 0);
  });
});

test('mirror: a member whose writes fail is dropped; when every member has failed, requests fail with io', () => {
  withMirror([64 * KiB, 64 * KiB], false, ({ f, vol, failures, logs }) => {
    f.disks[1]!.close();
    vol.write(0, pattern(4096, 26));      // succeeds on member 0
    assert.deepEqual(failures.map((x) => x.index), [1]);
    assert.deepEqual(f.fileBytes(0, 0, 4096), pattern(4096, 26));
    f.disks[0]!.close();
    const io = (e: unknown) => e instanceof StorageError && e.kind === 'io' && e.message === 'Every member of the mirror has failed';
    assert.throws(() => vol.read(0, new Uint8Array(512)), io);
    assert.throws(() => vol.write(0, new Uint8Array(512)), io);
    assert.throws(() => vol.flush(), io);
    assert.deepEqual(failures.map((x) => x.index), [1, 0]);
    assert.match(logs[1]!, /^Mirror member #0 failed .*; no member is left$/);
    assert.deepEqual(vol.liveMembers(), []);
    // withVolume closes the volume next: members that failed may fail to close, which is not an error.
  });
});
