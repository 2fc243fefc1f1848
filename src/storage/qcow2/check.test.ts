/** gasang's check finds the same leaks and corruptions as qemu-img check. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { qemuCheck, qemuImg, qemuIo, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';

function patch(file: string, offset: number, bytes: number[]): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

test('check agrees with qemu-img check on clean, leaking and corrupt images', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'c.qcow2');
    qemuImg('create', '-f', 'qcow2', file, '16M');
    qemuIo(file, 'qcow2', 'write -P 1 0 200k', 'write -c -P 2 1M 64k', 'write -P 3 8M 64k', 'write -z 9M 64k');
    qemuImg('snapshot', '-c', 'snap', file);
    qemuIo(file, 'qcow2', 'write -P 4 0 64k');
    const original = readFileSync(file);
    const compare = (what: string): void => {
      const q = qemuCheck(file);
      const ours = checkQcow2(file);
      assert.equal(ours.corruptions, q.corruptions, `${what}: corruptions\n${q.output}\n${ours.messages.join('\n')}`);
      assert.equal(ours.leaks, q.leaks, `${what}: leaks\n${q.output}\n${ours.messages.join('\n')}`);
    };
    compare('clean');
    const clean = checkQcow2(file);
    const q = qemuCheck(file);
    assert.equal(clean.corruptions + clean.leaks + clean.checkErrors, 0);
    assert.equal(clean.totalClusters, 256);
    assert.deepEqual(
      [clean.allocatedClusters, clean.compressedClusters, clean.fragmentedClusters, clean.imageEndOffset],
      [q.allocatedClusters, q.compressedClusters, q.fragmentedClusters, q.imageEndOffset],
    );

    // Refcount block: raise one cluster's count (leak), lower another's (corruption).
    const rb = 0x20000;
    patch(file, rb + 2 * 3, [0, 9]); // L1 table cluster: 9 references stored, 1 real
    compare('leak');
    assert.equal(checkQcow2(file).leaks, 1);
    writeFileSync(file, original);
    patch(file, rb + 2 * 4, [0, 0]); // first L2 table: stored 0, referenced twice (active + snapshot)
    compare('refcount too low');
    writeFileSync(file, original);
    // A cluster nobody references with a refcount: leak past the last used cluster.
    const fileClusters = Math.ceil(original.length / 65536);
    patch(file, rb + 2 * (fileClusters - 1), [0, 1]);
    compare('tail');
    writeFileSync(file, original);
    // COPIED flag set on an active L2 entry whose cluster the snapshot shares (refcount 2).
    const l1 = 0x30000;
    const l2 = readFileSync(file).readUInt32BE(l1 + 4);
    const entryHi = readFileSync(file).readUInt32BE(l2 + 8 * 128); // guest 8 MiB
    patch(file, l2 + 8 * 128, [(entryHi >>> 24) ^ 0x80, (entryHi >>> 16) & 255, (entryHi >>> 8) & 255, entryHi & 255]);
    compare('copied flag');
    assert.ok(checkQcow2(file).corruptions >= 1);
  } finally {
    cleanup();
  }
});

test('check reports progress and terminates on an image whose L1 entries all point to one table', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'alias.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', file, '1G');
    qemuIo(file, 'qcow2', 'write -P 7 0 4k');
    const bytes = readFileSync(file);
    const l1 = bytes.readUInt32BE(44);
    const entry = [...bytes.subarray(l1, l1 + 8)];
    const l1Size = bytes.readUInt32BE(36);
    const all: number[] = [];
    for (let i = 0; i < l1Size; i++) all.push(...entry);
    patch(file, l1, all);
    const seen: number[] = [];
    const r = checkQcow2(file, done => seen.push(done));
    assert.ok(r.corruptions > 0, 'Shared L2 table without refcounts is a corruption');
    assert.ok(seen.length > 2 && seen[seen.length - 1] === l1Size);
  } finally {
    cleanup();
  }
});
