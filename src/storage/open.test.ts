import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from './block.js';
import { imageInfo, openDisk, openQcow2, overlay, probeFormat } from './open.js';
import { Qcow2Image } from './qcow2/image.js';
import { qemuCheck, qemuImg, qemuInfo, qemuRead, randomBytes, tempDir } from './qemu-testing.js';
import { RawDisk, createRaw } from './raw.js';

test('the format is probed from the magic unless given', () => {
  const { dir, cleanup } = tempDir();
  try {
    qemuImg('create', '-f', 'qcow2', join(dir, 'a.qcow2'), '1M');
    createRaw(join(dir, 'b.img'), 1 << 20);
    assert.equal(probeFormat(join(dir, 'a.qcow2')), 'qcow2');
    assert.equal(probeFormat(join(dir, 'b.img')), 'raw');
    const q = openDisk({ file: join(dir, 'a.qcow2') });
    assert.ok(q instanceof Qcow2Image);
    q.close();
    const r = openDisk({ file: join(dir, 'b.img') });
    assert.ok(r instanceof RawDisk);
    r.close();
    // Forced raw: the qcow2 file's bytes themselves.
    const forced = openDisk({ file: join(dir, 'a.qcow2'), format: 'raw', readOnly: true });
    assert.equal(forced.size, Math.ceil(readFileSync(join(dir, 'a.qcow2')).length / 512) * 512);
    forced.close();
    assert.throws(() => openQcow2(join(dir, 'b.img'), true), (e: unknown) => e instanceof StorageError && /not a qcow2 image/.test(e.message));
    assert.throws(() => openDisk({ file: join(dir, 'none') }), (e: unknown) => e instanceof StorageError && e.kind === 'not-found' && e.message.includes('none'));
    assert.throws(() => openDisk({ file: dir }), (e: unknown) => e instanceof StorageError && /not a regular file/.test(e.message));
  } finally {
    cleanup();
  }
});

test('overlay(): one read-only base, several overlays, the base never changes', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'base'));
    mkdirSync(join(dir, 'vms'));
    const base = join(dir, 'base', 'disk.raw');
    const content = randomBytes(4 << 20, 1);
    writeFileSync(base, content);
    const disks = [overlay(base, join(dir, 'vms', 'one.qcow2')), overlay(base, join(dir, 'vms', 'two.qcow2'), { clusterBits: 12 })];
    disks[0]!.write(0, new Uint8Array(1000).fill(1));
    disks[1]!.write(4096, new Uint8Array(1000).fill(2));
    for (const d of disks) d.close();
    assert.deepEqual(new Uint8Array(readFileSync(base)), content, 'The base was written');
    for (const name of ['one', 'two']) {
      const file = join(dir, 'vms', `${name}.qcow2`);
      assert.equal(qemuCheck(file).status, 0);
      const info = qemuInfo(file);
      assert.equal(info['backing-filename'], '../base/disk.raw'); // relative: the pair can move
      assert.equal(info['backing-filename-format'], 'raw');
      assert.equal(info['virtual-size'], 4 << 20);
    }
    const one = qemuRead(join(dir, 'vms', 'one.qcow2'), dir);
    assert.ok(one.subarray(0, 1000).every(b => b === 1));
    assert.deepEqual(new Uint8Array(one.subarray(1000)), content.subarray(1000));
    assert.throws(() => overlay(base, base), (e: unknown) => e instanceof StorageError && /own backing file/.test(e.message));
  } finally {
    cleanup();
  }
});

test('imageInfo describes the whole chain as qemu-img info does', () => {
  const { dir, cleanup } = tempDir();
  try {
    createRaw(join(dir, 'a.raw'), 2 << 20);
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'a.raw', '-F', 'raw', join(dir, 'b.qcow2'));
    qemuImg('create', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', join(dir, 'c.qcow2'), '3M');
    qemuImg('snapshot', '-c', 'first', join(dir, 'c.qcow2'));
    const chain = imageInfo(join(dir, 'c.qcow2'));
    assert.deepEqual(chain.map(i => [i.format, i.virtualSize, i.clusterSize]), [
      ['qcow2', 3 << 20, 65536],
      ['qcow2', 2 << 20, 4096],
      ['raw', 2 << 20, undefined],
    ]);
    assert.equal(chain[0]!.backingFile, 'b.qcow2');
    assert.equal(chain[0]!.backingFormat, 'qcow2');
    assert.equal(chain[0]!.fullBackingFile, join(dir, 'b.qcow2'));
    assert.deepEqual(chain[0]!.snapshots.map(s => s.name), ['first']);
    assert.equal(chain[0]!.diskSize, qemuInfo(join(dir, 'c.qcow2'))['actual-size']);
    assert.equal(chain[0]!.qcow2?.refcountBits, 16);
  } finally {
    cleanup();
  }
});
