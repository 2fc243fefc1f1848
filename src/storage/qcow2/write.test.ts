/**
 * gasang writes (random writes, partial clusters, L2 boundaries, refcount growth, discard,
 * write-zeroes, copy-on-write from backing chains and compressed clusters) checked by QEMU:
 * qemu-img check is clean and qemu-img reads exactly what a byte model says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDisk } from '../open.js';
import { prng, qemuCheck, qemuImg, qemuIo, qemuRead, randomBytes, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';
import { createQcow2 } from './create.js';

/** Applies `ops` random operations to the image and to `model`, then has QEMU verify both. */
function fuzz(file: string, model: Uint8Array, seed: number, ops: number, maxLength: number, tmp: string): void {
  const rnd = prng(seed);
  const size = model.length;
  const disk = openDisk({ file });
  for (let k = 0; k < ops; k++) {
    const r = rnd();
    let len = Math.max(1, Math.floor(rnd() * maxLength));
    let off = Math.floor(rnd() * (size - len));
    if (rnd() < 0.7) {
      len = Math.max(512, len - (len % 512));
      off = Math.min(off - (off % 512), size - len);
    }
    if (r < 0.75) {
      const data = randomBytes(len, seed * 100_000 + k);
      disk.write(off, data);
      model.set(data, off);
    } else if (r < 0.87) {
      disk.discard(off, len);
      model.fill(0, off, off + len);
    } else {
      disk.writeZeroes(off, len, rnd() < 0.5);
      model.fill(0, off, off + len);
    }
    if (k % 16 === 0) {
      const back = new Uint8Array(len);
      disk.read(off, back);
      assert.deepEqual(back, model.subarray(off, off + len), `Read-back after op ${k}`);
    }
  }
  disk.close();
  const check = qemuCheck(file);
  assert.equal(check.status, 0, check.output);
  const ours = checkQcow2(file);
  assert.equal(ours.corruptions + ours.leaks, 0, ours.messages.join('\n'));
  const actual = qemuRead(file, tmp);
  const diff = actual.findIndex((b, i) => b !== model[i]);
  assert.equal(diff, -1, `qemu-img reads something else at byte ${diff}`);
  // The same through qemu-img compare against a raw file of the model.
  const raw = join(tmp, 'model.raw');
  writeFileSync(raw, model);
  assert.match(qemuImg('compare', '-F', 'raw', file, raw), /identical/);
}

test('random writes, discards and write-zeroes on a gasang-created image', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'a.qcow2');
    createQcow2(file, { size: 16 << 20 });
    fuzz(file, new Uint8Array(16 << 20), 1, 300, 300_000, dir);
  } finally {
    cleanup();
  }
});

test('512-byte clusters: L2 tables every 32 KiB and refcount-table growth', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'small.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=512', file, '20M');
    fuzz(file, new Uint8Array(20 << 20), 2, 250, 1 << 20, dir);
    // qemu-img put the refcount table at cluster 1; covering 20 MiB of data took a larger one.
    const header = readFileSync(file).subarray(0, 72);
    const view = new DataView(header.buffer, header.byteOffset);
    assert.notEqual(view.getUint32(52), 512);
    assert.ok(view.getUint32(56) > 1);
  } finally {
    cleanup();
  }
});

test('overlay over a qcow2 base: copy-on-write of partial clusters across different cluster sizes', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'base.qcow2');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', base, '8M');
    qemuIo(base, 'qcow2', 'write -P 0x5a 0 3M', 'write -P 0x33 5M 1M', 'write -z 5500k 100k');
    qemuImg('create', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top);
    fuzz(top, new Uint8Array(qemuRead(base, dir)), 3, 250, 200_000, dir);
    assert.equal(qemuCheck(base).status, 0, 'The base must stay untouched and clean');
  } finally {
    cleanup();
  }
});

test('version 2 overlay over raw: discard without a zero flag writes zeroes', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = join(dir, 'base.raw');
    const top = join(dir, 'top.qcow2');
    qemuImg('create', '-f', 'raw', base, '8M');
    qemuIo(base, 'raw', 'write -P 0x77 0 8M');
    qemuImg('create', '-f', 'qcow2', '-o', 'compat=0.10,cluster_size=16384', '-b', 'base.raw', '-F', 'raw', top);
    fuzz(top, new Uint8Array(qemuRead(base, dir)), 4, 200, 100_000, dir);
  } finally {
    cleanup();
  }
});

test('refcount widths of 1, 8 and 64 bits', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const bits of [1, 8, 64]) {
      const file = join(dir, `rc${bits}.qcow2`);
      qemuImg('create', '-f', 'qcow2', '-o', `refcount_bits=${bits},cluster_size=1024`, file, '6M');
      fuzz(file, new Uint8Array(6 << 20), 5 + bits, 150, 100_000, dir);
    }
  } finally {
    cleanup();
  }
});

test('writes over compressed clusters copy them out and free the compressed data', () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = join(dir, 'src.raw');
    const file = join(dir, 'c.qcow2');
    qemuImg('create', '-f', 'raw', src, '4M');
    qemuIo(src, 'raw', 'write -P 0x11 0 1M', 'write -P 0x22 2M 1M', 'write -P 0x01 3M 64k');
    qemuImg('convert', '-c', '-O', 'qcow2', src, file);
    fuzz(file, new Uint8Array(qemuRead(file, dir)), 6, 150, 100_000, dir);
  } finally {
    cleanup();
  }
});

test('three-deep chain raw ← qcow2 ← qcow2 with mixed cluster sizes', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = join(dir, 'a.raw');
    const b = join(dir, 'b.qcow2');
    const c = join(dir, 'c.qcow2');
    qemuImg('create', '-f', 'raw', a, '6M');
    qemuIo(a, 'raw', 'write -P 1 0 6M');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=2048', '-b', 'a.raw', '-F', 'raw', b);
    qemuIo(b, 'qcow2', 'write -P 2 1M 2M', 'write -z 4M 1M');
    qemuImg('create', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', c);
    fuzz(c, new Uint8Array(qemuRead(c, dir)), 7, 200, 300_000, dir);
    assert.equal(qemuCheck(b).status, 0);
  } finally {
    cleanup();
  }
});

test('edge writes: one byte, cluster boundaries, an L2 table boundary, the last sector', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'edge.qcow2');
    createQcow2(file, { size: 9 << 20, clusterBits: 12 }); // L2 table covers 2 MiB
    const model = new Uint8Array(9 << 20);
    const disk = openDisk({ file });
    const put = (off: number, data: Uint8Array): void => { disk.write(off, data); model.set(data, off); };
    put(0, new Uint8Array([1]));
    put(4095, new Uint8Array([2, 3]));
    put((2 << 20) - 1000, randomBytes(3000, 1)); // across the first L2 boundary
    put((4 << 20) - 4096, randomBytes(8192, 2)); // two whole clusters in two L2 tables
    put((9 << 20) - 512, randomBytes(512, 3));
    disk.writeZeroes(4094, 4, false);
    model.fill(0, 4094, 4098);
    disk.close();
    assert.equal(qemuCheck(file).status, 0);
    assert.deepEqual(new Uint8Array(qemuRead(file, dir)), model);
  } finally {
    cleanup();
  }
});
