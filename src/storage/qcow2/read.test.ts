/** Images written by QEMU (qemu-img, qemu-io) read back by gasang exactly as qemu-img reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../block.js';
import { openDisk } from '../open.js';
import { qemuImg, qemuIo, qemuRead, randomBytes, tempDir } from '../qemu-testing.js';

/** Reads the whole disk through gasang (in odd-sized pieces, to cross cluster boundaries). */
function gasangRead(file: string): Uint8Array {
  const disk = openDisk({ file, readOnly: true });
  try {
    const out = new Uint8Array(disk.size);
    for (let pos = 0, step = 12_800; pos < disk.size; pos += step, step = step === 12_800 ? 70_144 : 12_800) {
      disk.read(pos, out.subarray(pos, Math.min(disk.size, pos + step)));
    }
    return out;
  } finally {
    disk.close();
  }
}

function assertSameAsQemu(file: string, tmp: string): void {
  const want = qemuRead(file, tmp);
  const got = gasangRead(file);
  assert.equal(got.length, want.length);
  const diff = got.findIndex((b, i) => b !== want[i]);
  assert.equal(diff, -1, `${file}: first difference at byte ${diff}`);
}

/** A pattern of qemu-io writes touching several clusters, partial clusters, zeroes and discards. */
const PATTERN = [
  'write -P 0x11 0 100k',
  'write -P 0x22 300k 1k',
  'write -P 0x33 1M 700k',
  'write -z 1200k 64k',
  'discard 1500k 64k',
  'write -P 0x44 3000k 4k',
  'write -z -u 3M 128k',
];

test('qcow2 images qemu-io wrote, for every cluster size from 512 B to 2 MiB, read identically', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const cs of [512, 4096, 65536, 2 << 20]) {
      const file = join(dir, `c${cs}.qcow2`);
      qemuImg('create', '-f', 'qcow2', '-o', `cluster_size=${cs}`, file, '5M');
      qemuIo(file, 'qcow2', ...PATTERN);
      assertSameAsQemu(file, dir);
    }
  } finally {
    cleanup();
  }
});

test('version 2 (compat=0.10) images and images with random data read identically', () => {
  const { dir, cleanup } = tempDir();
  try {
    const v2 = join(dir, 'v2.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'compat=0.10', v2, '4M');
    qemuIo(v2, 'qcow2', ...PATTERN);
    assertSameAsQemu(v2, dir);
    const src = join(dir, 'random.bin');
    writeFileSync(src, randomBytes(1 << 20, 5));
    const rnd = join(dir, 'rnd.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=8192,refcount_bits=64', rnd, '3M');
    qemuIo(rnd, 'qcow2', `write -s ${src} 12345 1000000`, `write -s ${src} 2M 1M`);
    assertSameAsQemu(rnd, dir);
  } finally {
    cleanup();
  }
});

test('compressed clusters (qemu-img convert -c, qemu-io write -c, compression_type=zlib) read identically', () => {
  const { dir, cleanup } = tempDir();
  try {
    const raw = join(dir, 'src.raw');
    const data = randomBytes(3 << 20, 7);
    data.fill(0x61, 0, 1 << 20); // compressible
    for (let i = 1 << 20; i < 2 << 20; i++) data[i] = data[i]! & 7; // partly compressible
    writeFileSync(raw, data);
    for (const opts of ['cluster_size=65536', 'cluster_size=4096', 'cluster_size=512,compression_type=zlib']) {
      const file = join(dir, 'conv.qcow2');
      qemuImg('convert', '-c', '-O', 'qcow2', '-o', opts, raw, file);
      assert.deepEqual(gasangRead(file), data);
      assertSameAsQemu(file, dir);
    }
    const cw = join(dir, 'cw.qcow2');
    qemuImg('create', '-f', 'qcow2', cw, '2M');
    qemuIo(cw, 'qcow2', 'write -c -P 0x71 0 64k', 'write -c -P 0x72 128k 64k', 'write -P 0x73 64k 64k');
    assertSameAsQemu(cw, dir);
  } finally {
    cleanup();
  }
});

test('backing chains of mixed raw and qcow2 images, any depth, read identically', () => {
  const { dir, cleanup } = tempDir();
  try {
    qemuImg('create', '-f', 'raw', join(dir, 'l0.raw'), '4M');
    qemuIo(join(dir, 'l0.raw'), 'raw', 'write -P 0x01 0 4M');
    let prev = 'l0.raw';
    let prevFmt = 'raw';
    const sizes = ['4096', '65536', '512', '16384'];
    for (let depth = 1; depth <= 6; depth++) {
      const name = depth % 3 === 0 ? `l${depth}.raw` : `l${depth}.qcow2`;
      const file = join(dir, name);
      if (name.endsWith('.raw')) {
        qemuImg('convert', '-O', 'raw', join(dir, prev), file); // raw levels flatten what is below
        qemuIo(file, 'raw', `write -P ${depth + 1} ${depth * 300}k 50k`);
        prevFmt = 'raw';
      } else {
        // Relative backing names resolve against the overlay's directory.
        qemuImg('create', '-f', 'qcow2', '-o', `cluster_size=${sizes[depth % 4]}`, '-b', prev, '-F', prevFmt, file);
        qemuIo(file, 'qcow2', `write -P ${depth + 1} ${depth * 500}k 123k`, `write -z ${depth * 100}k 64k`);
        prevFmt = 'qcow2';
      }
      prev = name;
      assertSameAsQemu(file, dir);
    }
    // A backing file smaller than the overlay: the rest reads as zeroes.
    const big = join(dir, 'big.qcow2');
    qemuImg('create', '-f', 'qcow2', '-b', 'l0.raw', '-F', 'raw', big, '9M');
    assertSameAsQemu(big, dir);
  } finally {
    cleanup();
  }
});

test('images with features gasang does not implement are refused with a clear error', () => {
  const { dir, cleanup } = tempDir();
  try {
    const refused = (file: string, kind: string, words: RegExp): void => {
      assert.throws(() => openDisk({ file }), (e: unknown) => e instanceof StorageError && e.kind === kind && words.test(e.message) && e.message.includes(file));
    };
    const zstd = join(dir, 'zstd.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'compression_type=zstd', zstd, '1M');
    refused(zstd, 'unsupported', /zstd compression/i);
    const ext = join(dir, 'ext.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'extended_l2=on', ext, '1M');
    refused(ext, 'unsupported', /extended L2/i);
    const data = join(dir, 'data.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', `data_file=${join(dir, 'data.raw')}`, data, '1M');
    refused(data, 'unsupported', /external data file/i);
    // Lazy refcounts left dirty by a crash (qemu-io abort): readable, not writable.
    const lazy = join(dir, 'lazy.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'lazy_refcounts=on', lazy, '1M');
    try { qemuIo(lazy, 'qcow2', 'write -P 0x5 0 64k', 'abort'); } catch { /* abort kills qemu-io on purpose */ }
    refused(lazy, 'unsupported', /dirty/i);
    const ro = openDisk({ file: lazy, readOnly: true });
    const buf = new Uint8Array(65536);
    ro.read(0, buf);
    ro.close();
    assert.ok(buf.every(b => b === 5));
  } finally {
    cleanup();
  }
});
