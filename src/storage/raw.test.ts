import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from './block.js';
import { RawDisk, createRaw } from './raw.js';
import { qemuImg, qemuInfo, randomBytes, tempDir } from './qemu-testing.js';

test('createRaw makes a sparse file qemu-img sees as a raw disk of that size', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'disk.raw');
    createRaw(file, 64 << 20);
    const info = qemuInfo(file);
    assert.equal(info['format'], 'raw');
    assert.equal(info['virtual-size'], 64 << 20);
    assert.ok(statSync(file).blocks * 512 < 1 << 20, 'Not sparse');
    createRaw(file, 1000); // rounded up to a whole sector
    assert.equal(statSync(file).size, 1024);
  } finally {
    cleanup();
  }
});

test('raw reads and writes go to the same bytes of the host file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'disk.raw');
    createRaw(file, 1 << 20);
    const disk = RawDisk.open(file);
    const data = randomBytes(10_000, 1);
    disk.write(4096 + 7, data);
    const back = new Uint8Array(10_000);
    disk.read(4096 + 7, back);
    assert.deepEqual(back, data);
    disk.flush();
    disk.close();
    assert.deepEqual(new Uint8Array(readFileSync(file).subarray(4103, 4103 + 10_000)), data);
    assert.equal(qemuImg('compare', '-f', 'raw', '-F', 'raw', file, file).includes('identical'), true);
  } finally {
    cleanup();
  }
});

test('raw write-zeroes zeroes the middle and truncation deallocates the tail', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'disk.raw');
    const original = randomBytes(4 << 20, 2);
    writeFileSync(file, original);
    const disk = RawDisk.open(file);
    disk.writeZeroes(1000, 5000, false);
    const before = statSync(file).blocks;
    disk.discard(2 << 20, 2 << 20); // reaches the end: punched by truncation
    disk.close();
    const bytes = readFileSync(file);
    assert.equal(bytes.length, 4 << 20);
    assert.ok(bytes.subarray(1000, 6000).every(b => b === 0));
    assert.deepEqual(new Uint8Array(bytes.subarray(0, 1000)), original.subarray(0, 1000));
    assert.deepEqual(new Uint8Array(bytes.subarray(6000, 2 << 20)), original.subarray(6000, 2 << 20));
    assert.ok(bytes.subarray(2 << 20).every(b => b === 0));
    assert.ok(statSync(file).blocks < before, 'Tail not deallocated');
  } finally {
    cleanup();
  }
});

test('raw read-only disks refuse writes; sizes round up to a sector and read zeroes past the end', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'odd.raw');
    writeFileSync(file, new Uint8Array(1000).fill(9));
    const disk = RawDisk.open(file, { readOnly: true });
    assert.equal(disk.size, 1024);
    const buf = new Uint8Array(1024);
    disk.read(0, buf);
    assert.ok(buf.subarray(0, 1000).every(b => b === 9) && buf.subarray(1000).every(b => b === 0));
    assert.throws(() => disk.write(0, buf), (e: unknown) => e instanceof StorageError && e.kind === 'read-only');
    assert.throws(() => disk.read(1000, buf), (e: unknown) => e instanceof StorageError && e.kind === 'out-of-range');
    disk.close();
    assert.throws(() => RawDisk.open(join(dir, 'missing.raw')), (e: unknown) => e instanceof StorageError && e.kind === 'not-found' && e.message.includes('missing.raw'));
  } finally {
    cleanup();
  }
});
