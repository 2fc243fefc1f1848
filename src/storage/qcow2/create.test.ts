import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StorageError } from '../block.js';
import { qemuCheck, qemuImg, qemuInfo, tempDir } from '../qemu-testing.js';
import { createRaw } from '../raw.js';
import { createQcow2 } from './create.js';

test('created images pass qemu-img check and qemu-img info shows size, cluster size and version', () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases: Array<[number, number | undefined, number | undefined]> = [
      [1 << 30, undefined, undefined], // qemu-img's defaults: 64 KiB clusters, 16-bit refcounts
      [10 << 20, 9, 4],
      [3 * (1 << 30) + 512, 12, 0],
      [100 << 20, 21, 6],
      [5 * 2 ** 40, 16, 4], // 5 TiB: a multi-cluster L1 table
      [(1 << 30) * 64, 9, 3], // 512-byte clusters: several refcount blocks at creation
    ];
    for (const [size, clusterBits, refcountOrder] of cases) {
      const file = join(dir, `c${size}-${clusterBits}.qcow2`);
      createQcow2(file, { size, clusterBits, refcountOrder });
      const check = qemuCheck(file);
      assert.equal(check.status, 0, check.output);
      const info = qemuInfo(file);
      assert.equal(info['format'], 'qcow2');
      assert.equal(info['virtual-size'], size);
      assert.equal(info['cluster-size'], 2 ** (clusterBits ?? 16));
      const data = (info['format-specific'] as { data: Record<string, unknown> }).data;
      assert.equal(data['compat'], '1.1');
      assert.equal(data['refcount-bits'], 2 ** (refcountOrder ?? 4));
      assert.equal(data['compression-type'], 'zlib');
      assert.equal(data['corrupt'], false);
    }
  } finally {
    cleanup();
  }
});

test('created overlays name their backing file and format as qemu-img does', () => {
  const { dir, cleanup } = tempDir();
  try {
    createRaw(join(dir, 'base.raw'), 32 << 20);
    const top = join(dir, 'top.qcow2');
    createQcow2(top, { size: 32 << 20, backing: 'base.raw', backingFormat: 'raw' });
    assert.equal(qemuCheck(top).status, 0);
    const info = qemuInfo(top);
    assert.equal(info['backing-filename'], 'base.raw');
    assert.equal(info['backing-filename-format'], 'raw');
    assert.equal(info['full-backing-filename'], join(dir, 'base.raw'));
    // qemu-img opens the whole chain, so the relative name resolved.
    assert.match(qemuImg('info', '--backing-chain', top), /base\.raw/);
    const top2 = join(dir, 'top2.qcow2');
    createQcow2(top2, { size: 32 << 20, backing: 'top.qcow2', backingFormat: 'qcow2', clusterBits: 9 });
    assert.equal(qemuCheck(top2).status, 0);
    assert.equal(qemuInfo(top2)['backing-filename-format'], 'qcow2');
  } finally {
    cleanup();
  }
});

test('bad creation parameters are refused', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'x.qcow2');
    const bad = (opts: Parameters<typeof createQcow2>[1], words: RegExp): void => {
      assert.throws(() => createQcow2(file, opts), (e: unknown) => e instanceof StorageError && e.kind === 'bad-spec' && words.test(e.message));
    };
    bad({ size: 0 }, /size/);
    bad({ size: 1 << 20, clusterBits: 8 }, /Cluster size/);
    bad({ size: 1 << 20, clusterBits: 22 }, /Cluster size/);
    bad({ size: 2 ** 52, clusterBits: 9 }, /too large/);
    bad({ size: 1 << 20, backing: 'x'.repeat(1024) }, /Backing file name/);
    bad({ size: 1 << 20, clusterBits: 9, backing: 'y'.repeat(400), backingFormat: 'raw' }, /does not fit/);
  } finally {
    cleanup();
  }
});
