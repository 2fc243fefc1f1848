/** Corrupt and hostile images: a StorageError naming the problem, never a crash or a hang. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, type StorageErrorKind } from '../block.js';
import { openDisk } from '../open.js';
import { prng, qemuImg, qemuIo, tempDir } from '../qemu-testing.js';
import { checkQcow2 } from './check.js';
import { createQcow2 } from './create.js';

function patch(file: string, offset: number, bytes: number[]): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

const be32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const be64 = (v: number): number[] => [...be32(Math.floor(v / 2 ** 32)), ...be32(v >>> 0)];

function refused(fn: () => unknown, kind: StorageErrorKind, words: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    if (!(e instanceof StorageError)) throw e;
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, words);
    return true;
  });
}

/** A 4 MiB image (64 KiB clusters: header, refcount table, refcount block, L1, then data). */
function sample(dir: string, name = 'img.qcow2'): string {
  const file = join(dir, name);
  qemuImg('create', '-f', 'qcow2', file, '4M');
  qemuIo(file, 'qcow2', 'write -P 0x11 0 128k');
  return file;
}

test('broken headers are refused with the reason and the file name', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = sample(dir);
    const whole = readFileSync(file);
    const fresh = (): string => { writeFileSync(file, whole); return file; };
    writeFileSync(join(dir, 'short.qcow2'), whole.subarray(0, 50));
    refused(() => openDisk({ file: join(dir, 'short.qcow2') }), 'corrupt', /short\.qcow2: Truncated/);
    refused(() => openDisk({ file: join(dir, 'short.qcow2'), format: 'qcow2' }), 'corrupt', /Truncated/);
    patch(fresh(), 20, be32(30));
    refused(() => openDisk({ file }), 'unsupported', /img\.qcow2: Unsupported cluster size/);
    patch(fresh(), 4, be32(1));
    refused(() => openDisk({ file }), 'unsupported', /version 1/);
    patch(fresh(), 48, be64(0));
    refused(() => openDisk({ file }), 'corrupt', /Refcount table overlaps the image header/);
    patch(fresh(), 48, be64(0x30000));
    refused(() => openDisk({ file }), 'corrupt', /overlaps the L1 table/);
    patch(fresh(), 40, be64(0x10000000));
    refused(() => openDisk({ file }), 'corrupt', /L1 table extends past the end/);
    patch(fresh(), 24, be64(2 ** 62));
    refused(() => openDisk({ file }), 'unsupported', /Virtual size is too large/);
    patch(fresh(), 24, be64(2 ** 40));
    refused(() => openDisk({ file }), 'corrupt', /L1 table has 1 entries/);
    patch(fresh(), 36, be32(0xffffffff));
    refused(() => openDisk({ file }), 'unsupported', /L1 table is too large/);
    patch(fresh(), 56, be32(0x7fffffff));
    refused(() => openDisk({ file }), 'unsupported', /Refcount table is too large/);
    patch(fresh(), 60, be32(0xffffffff));
    refused(() => openDisk({ file }), 'corrupt', /Too many snapshots/);
    patch(fresh(), 100, be32(9));
    refused(() => openDisk({ file }), 'corrupt', /Invalid header length/);
    patch(fresh(), 76, be32(1 << 10));
    refused(() => openDisk({ file }), 'unsupported', /incompatible feature.*bit 10/);
    patch(fresh(), 76, be32(1 << 0)); // dirty bit: only reading is safe
    refused(() => openDisk({ file }), 'unsupported', /dirty/);
    openDisk({ file, readOnly: true }).close();
    patch(fresh(), 32, be32(2));
    refused(() => openDisk({ file }), 'unsupported', /Encrypted/);
  } finally {
    cleanup();
  }
});

test('L1 and L2 entries pointing past the end of the file or into metadata', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = sample(dir);
    // L1 entry 0 → an L2 table far past the end of the file.
    patch(file, 0x30000, be64(2 ** 63 + 0x7000000));
    const disk = openDisk({ file });
    refused(() => disk.read(0, new Uint8Array(512)), 'corrupt', /L2 table at 0x7000000 .* past the end/);
    refused(() => disk.write(0, new Uint8Array(512)), 'corrupt', /L2 table/);
    disk.close();
    assert.ok(checkQcow2(file).corruptions > 0);

    // An L2 entry claiming the L1 table's cluster as data (with COPIED): writing there would
    // overwrite the L1 table, so it is refused.
    const other = sample(dir, 'other.qcow2');
    const l2 = 0x40000; // qemu-img put the first L2 table right after the L1 table
    patch(other, l2, be64(2 ** 63 + 0x30000));
    const d2 = openDisk({ file: other });
    refused(() => d2.write(0, new Uint8Array(512).fill(1)), 'corrupt', /overlaps image metadata/);
    d2.close();
    assert.equal(readFileSync(other).readUInt32BE(0x30000 + 4), 0x40000, 'The L1 table was overwritten');

    // Garbage where a compressed cluster should be.
    const comp = join(dir, 'comp.qcow2');
    qemuImg('create', '-f', 'qcow2', comp, '1M');
    qemuIo(comp, 'qcow2', 'write -c -P 0x5 0 64k');
    const bytes = readFileSync(comp);
    const entryHi = bytes.readUInt32BE(0x40000);
    const entryLo = bytes.readUInt32BE(0x40004);
    const coff = (entryHi & ((1 << 22) - 1)) * 2 ** 32 + entryLo;
    patch(comp, coff, Array.from({ length: 64 }, (_, i) => (i * 37) & 255));
    const d3 = openDisk({ file: comp, readOnly: true });
    refused(() => d3.read(0, new Uint8Array(512)), 'corrupt', /compressed cluster .* inflate/i);
    d3.close();
  } finally {
    cleanup();
  }
});

test('backing chains: loops, missing files, excessive depth, non-file names', () => {
  const { dir, cleanup } = tempDir();
  try {
    createQcow2(join(dir, 'a.qcow2'), { size: 1 << 20, backing: 'b.qcow2', backingFormat: 'qcow2' });
    createQcow2(join(dir, 'b.qcow2'), { size: 1 << 20, backing: 'a.qcow2', backingFormat: 'qcow2' });
    refused(() => openDisk({ file: join(dir, 'a.qcow2') }), 'corrupt', /Backing chain loop: .*a\.qcow2 → .*b\.qcow2 → .*a\.qcow2/);
    createQcow2(join(dir, 'self.qcow2'), { size: 1 << 20, backing: 'self.qcow2' });
    refused(() => openDisk({ file: join(dir, 'self.qcow2') }), 'corrupt', /loop/);
    createQcow2(join(dir, 'orphan.qcow2'), { size: 1 << 20, backing: 'gone.raw', backingFormat: 'raw' });
    refused(() => openDisk({ file: join(dir, 'orphan.qcow2') }), 'not-found', /orphan\.qcow2: Backing file .*gone\.raw does not exist/);
    createQcow2(join(dir, 'url.qcow2'), { size: 1 << 20, backing: 'nbd://host/x' });
    refused(() => openDisk({ file: join(dir, 'url.qcow2') }), 'unsupported', /not a plain file name/);
    createQcow2(join(dir, 'vmdk.qcow2'), { size: 1 << 20, backing: 'a.qcow2', backingFormat: 'qcow2' });
    patch(join(dir, 'vmdk.qcow2'), 112 + 8, [...Buffer.from('vmdk2')]);
    refused(() => openDisk({ file: join(dir, 'vmdk.qcow2') }), 'unsupported', /backing format 'vmdk2'/i);
    createQcow2(join(dir, 'd0.qcow2'), { size: 1 << 20 });
    for (let i = 1; i <= 257; i++) createQcow2(join(dir, `d${i}.qcow2`), { size: 1 << 20, backing: `d${i - 1}.qcow2`, backingFormat: 'qcow2' });
    refused(() => openDisk({ file: join(dir, 'd257.qcow2') }), 'unsupported', /deeper than 256/);
    openDisk({ file: join(dir, 'd200.qcow2') }).close(); // deep but within the limit
  } finally {
    cleanup();
  }
});

test('randomly damaged metadata: only StorageErrors, and the check terminates', () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, 'fuzz.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', 'cluster_size=4096', file, '2M');
    qemuIo(file, 'qcow2', 'write -P 0x11 0 300k', 'write -c -P 0x22 1M 16k');
    qemuImg('snapshot', '-c', 's', file);
    qemuIo(file, 'qcow2', 'write -P 0x33 100k 8k');
    const original = readFileSync(file);
    const metadataEnd = Math.min(original.length, 12 * 4096);
    const rnd = prng(99);
    const buf = new Uint8Array(64 << 10);
    let errors = 0;
    for (let round = 0; round < 150; round++) {
      const damaged = Buffer.from(original);
      // Half the damage in the header, half anywhere in the metadata clusters.
      for (let k = 0; k < 4; k++) damaged[Math.floor(rnd() * (k < 2 ? 112 : metadataEnd))] = Math.floor(rnd() * 256);
      writeFileSync(file, damaged);
      try {
        const disk = openDisk({ file });
        try {
          for (let pos = 0; pos < disk.size; pos += buf.length) disk.read(pos, buf.subarray(0, Math.min(buf.length, disk.size - pos)));
          disk.write(Math.floor(rnd() * (disk.size - 8192)), buf.subarray(0, 8192));
          disk.discard(0, 4096);
        } finally {
          disk.close();
        }
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
        errors++;
      }
      try {
        checkQcow2(file);
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
      }
    }
    assert.ok(errors > 10, `Only ${errors} of 150 damaged images were refused`);
  } finally {
    cleanup();
  }
});
