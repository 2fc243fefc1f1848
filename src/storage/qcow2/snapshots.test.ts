/** Internal snapshots made, applied and deleted by gasang, checked by qemu-img (and the reverse). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StorageError } from '../block.js';
import { openQcow2 } from '../open.js';
import { prng, qemuCheck, qemuImg, qemuIo, qemuRead, randomBytes, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';
import { createQcow2 } from './create.js';
import { applySnapshot, createSnapshot, deleteSnapshot, listSnapshots } from './snapshots.js';

function assertClean(file: string): void {
  const check = qemuCheck(file);
  assert.equal(check.status, 0, check.output);
  const ours = checkQcow2(file);
  assert.equal(ours.corruptions + ours.leaks, 0, ours.messages.join('\n'));
}

test('a gasang snapshot is listed by qemu-img, keeps its data across writes, and is clean', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 's.qcow2');
    createQcow2(file, { size: 16 << 20, clusterBits: 12 });
    const first = randomBytes(3 << 20, 1);
    let img = openQcow2(file, false);
    img.write(0, first);
    const info = createSnapshot(img, 'before');
    assert.equal(info.id, '1');
    // Overwrite part of the snapshotted data (copy-on-write of shared clusters and L2 tables).
    img.write(1 << 20, randomBytes(1 << 20, 2));
    img.write(10 << 20, randomBytes(5000, 3));
    img.discard(0, 64 << 10);
    img.close();
    assertClean(file);
    assert.match(qemuImg('snapshot', '-l', file), /1\s+before\s/);
    const snap = qemuRead(file, dir, ['-l', 'snapshot.name=before']);
    assert.deepEqual(new Uint8Array(snap.subarray(0, 3 << 20)), first);
    assert.ok(snap.subarray(3 << 20).every(b => b === 0));

    // Apply restores it; the snapshot stays.
    img = openQcow2(file, false);
    createSnapshot(img, 'after');
    applySnapshot(img, 'before');
    const back = new Uint8Array(16 << 20);
    img.read(0, back);
    assert.deepEqual(back, new Uint8Array(snap));
    assert.deepEqual(listSnapshots(img).map(s => s.name), ['before', 'after']);
    img.write(2 << 20, randomBytes(4096, 4)); // writing after apply copies again
    img.close();
    assertClean(file);
    const want = new Uint8Array(snap);
    want.set(randomBytes(4096, 4), 2 << 20);
    assert.deepEqual(new Uint8Array(qemuRead(file, dir)), want);

    // Deleting both frees every cluster only they used: no leaks, and the file's data clusters
    // are back to what the active state needs.
    img = openQcow2(file, false);
    deleteSnapshot(img, 'before');
    deleteSnapshot(img, '2');
    assert.deepEqual(listSnapshots(img), []);
    img.close();
    assertClean(file);
    assert.match(qemuImg('snapshot', '-l', file), /^$/);
    const check = checkQcow2(file);
    assert.equal(check.allocatedClusters, (3 << 20) / 4096);
    assert.deepEqual(new Uint8Array(qemuRead(file, dir)), want);
  } finally {
    cleanup();
  }
});

test('snapshots qemu-img made are applied and deleted by gasang, and gasang snapshots by qemu-img', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'q.qcow2');
    qemuImg('create', '-f', 'qcow2', file, '8M');
    qemuIo(file, 'qcow2', 'write -P 0x42 0 1M', 'write -c -P 0x43 2M 64k');
    qemuImg('snapshot', '-c', 'q1', file);
    qemuIo(file, 'qcow2', 'write -P 0x44 0 512k', 'write -P 0x45 2M 4k');
    let img = openQcow2(file, false);
    applySnapshot(img, 'q1');
    const buf = new Uint8Array(64 << 10);
    img.read(2 << 20, buf);
    assert.ok(buf.every(b => b === 0x43));
    createSnapshot(img, 'g1');
    img.write(0, new Uint8Array(4096).fill(0x46));
    img.close();
    assertClean(file);
    qemuImg('snapshot', '-a', 'g1', file);
    assertClean(file);
    const data = qemuRead(file, dir);
    assert.ok(data.subarray(0, 1 << 20).every(b => b === 0x42));
    img = openQcow2(file, false);
    deleteSnapshot(img, 'q1');
    img.close();
    qemuImg('snapshot', '-d', 'g1', file);
    assertClean(file);
  } finally {
    cleanup();
  }
});

test('snapshot mistakes: duplicate names, unknown names, read-only images', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'm.qcow2');
    createQcow2(file, { size: 1 << 20 });
    const img = openQcow2(file, false);
    createSnapshot(img, 'a');
    assert.throws(() => createSnapshot(img, 'a'), (e: unknown) => e instanceof StorageError && /already exists/.test(e.message));
    assert.throws(() => applySnapshot(img, 'nope'), (e: unknown) => e instanceof StorageError && e.kind === 'not-found');
    assert.throws(() => deleteSnapshot(img, 'nope'), (e: unknown) => e instanceof StorageError && e.kind === 'not-found');
    img.close();
    const ro = openQcow2(file, true);
    assert.deepEqual(listSnapshots(ro).map(s => s.name), ['a']);
    assert.throws(() => createSnapshot(ro, 'b'), (e: unknown) => e instanceof StorageError && e.kind === 'read-only');
    ro.close();
    assertClean(file);
  } finally {
    cleanup();
  }
});

test('narrow refcounts: a snapshot that would overflow one is refused before anything changes', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'narrow.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'refcount_bits=2', file, '4M');
    qemuIo(file, 'qcow2', 'write -P 1 0 256k');
    const img = openQcow2(file, false);
    createSnapshot(img, 'one');
    createSnapshot(img, 'two'); // every cluster now counts 3, the most 2 bits hold
    assert.throws(() => createSnapshot(img, 'three'), (e: unknown) => e instanceof StorageError && e.kind === 'unsupported' && /exceed 3/.test(e.message));
    img.write(0, new Uint8Array(4096).fill(2)); // still writable: copy-on-write
    assert.deepEqual(listSnapshots(img).map(s => s.name), ['one', 'two']);
    img.close();
    assertClean(file);
  } finally {
    cleanup();
  }
});

test('writes, discards and snapshot create/apply/delete interleaved at random stay consistent', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [seed, clusterBits, refcountOrder] of [[1, 12, 3], [2, 16, 6], [3, 9, 4]] as const) {
      const rnd = prng(seed);
      const file = join(dir, `mix${seed}.qcow2`);
      const size = 4 << 20;
      createQcow2(file, { size, clusterBits, refcountOrder });
      let model = new Uint8Array(size);
      const snaps = new Map<string, Uint8Array>();
      const img = openQcow2(file, false);
      const pick = (): string => [...snaps.keys()][Math.floor(rnd() * snaps.size)]!;
      for (let k = 0; k < 150; k++) {
        const r = rnd();
        const len = Math.max(1, Math.floor(rnd() * 200_000));
        const off = Math.floor(rnd() * (size - len));
        if (r < 0.7) {
          const data = randomBytes(len, seed * 1000 + k);
          img.write(off, data);
          model.set(data, off);
        } else if (r < 0.8) {
          if (rnd() < 0.5) img.discard(off, len); else img.writeZeroes(off, len, rnd() < 0.5);
          model.fill(0, off, off + len);
        } else if (r < 0.88 && snaps.size < 5) {
          createSnapshot(img, `s${k}`);
          snaps.set(`s${k}`, model.slice());
        } else if (r < 0.94 && snaps.size > 0) {
          const name = pick();
          applySnapshot(img, name);
          model = snaps.get(name)!.slice();
        } else if (snaps.size > 0) {
          const name = pick();
          deleteSnapshot(img, name);
          snaps.delete(name);
        }
      }
      img.close();
      assertClean(file);
      assert.deepEqual(new Uint8Array(qemuRead(file, dir)), model);
      for (const [name, want] of snaps) assert.deepEqual(new Uint8Array(qemuRead(file, dir, ['-l', `snapshot.name=${name}`])), want, name);
    }
  } finally {
    cleanup();
  }
});
