import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StorageError } from '../block.js';
import { commitImage, openDisk } from '../open.js';
import { qemuCheck, qemuImg, qemuIo, qemuRead, randomBytes, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';

test('commit writes an overlay into its qcow2 base (data, zeroes, compressed) and empties the overlay', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'base.qcow2');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', base, '8M');
    qemuIo(base, 'qcow2', 'write -P 0x11 0 8M');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
    qemuIo(top, 'qcow2', 'write -c -P 0x33 6M 64k');
    const disk = openDisk({ file: top });
    disk.write(12345 * 512, randomBytes(300_000, 1));
    disk.writeZeroes(3 << 20, 1 << 20, true);
    disk.write((8 << 20) - 4096, randomBytes(4096, 2));
    disk.close();
    const want = qemuRead(top, dir);
    const progress: number[] = [];
    const bytes = commitImage(top, { progress: (done, total) => progress.push(done / total) });
    assert.ok(bytes >= 300_000 + (1 << 20));
    assert.equal(progress[progress.length - 1], 1);
    assert.deepEqual(qemuRead(base, dir), want);
    assert.match(qemuImg('compare', top, base), /identical/);
    for (const f of [base, top]) assert.equal(qemuCheck(f).status, 0, f);
    assert.equal(checkQcow2(top).allocatedClusters, 0, 'The overlay still holds clusters');
  } finally {
    cleanup();
  }
});

test('commit into a raw base, keeping the overlay (-d)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'base.raw');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'raw', base, '4M');
    qemuIo(base, 'raw', 'write -P 0x22 0 4M');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=512', '-b', 'base.raw', '-F', 'raw', top);
    qemuIo(top, 'qcow2', 'write -P 0x44 1000k 100k', 'write -z 2M 64k');
    const want = qemuRead(top, dir);
    commitImage(top, { keep: true });
    assert.deepEqual(qemuRead(base, dir), want);
    assert.ok(checkQcow2(top).allocatedClusters > 0);
    assert.equal(qemuCheck(top).status, 0);
  } finally {
    cleanup();
  }
});

test('commit refuses an image without a backing file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'alone.qcow2');
    qemuImg('create', '-f', 'qcow2', file, '1M');
    assert.throws(() => commitImage(file), (e: unknown) => e instanceof StorageError && /no backing file/.test(e.message));
  } finally {
    cleanup();
  }
});
