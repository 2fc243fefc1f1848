// The bundled guest's own drivers (virtio_mmio, virtio_blk, virtio_console, virtio_rng) against
// gasang's virtio devices: an ext4 disk made on the host is mounted and written by the guest and
// checked on the host with e2fsprogs; discards reach the image; the entropy device feeds
// /dev/hwrng; hvc1 carries text both ways.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED, Guest, READY, drive } from './guest.js';

const tmp = mkdtempSync(join(tmpdir(), 'gasang-virtio-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** An ext4 image of `sizeMiB` holding `files`, made by mkfs.ext4 -d. */
function ext4Image(name: string, sizeMiB: number, files: Record<string, string>): string {
  const root = join(tmp, `${name}-root`);
  mkdirSync(root);
  for (const [path, text] of Object.entries(files)) writeFileSync(join(root, path), text);
  const img = join(tmp, `${name}.img`);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, img, `${sizeMiB}M`]);
  return img;
}

const debugfsCat = (img: string, path: string): string => execFileSync('debugfs', ['-R', `cat ${path}`, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

/** Transport state of every virtio device, for failure messages. */
const virtioState = (g: Guest): string => JSON.stringify(g.vm.virtio.map(v => {
  const s = v.save();
  return { name: v.name, status: s.status, isr: s.isr, errors: v.errors, queues: s.queues.map(q => ({ size: q.size, ready: q.ready, lastAvail: q.lastAvail, nextUsed: q.nextUsed })) };
}));

test('bundled guest: ext4 on virtio-blk written by the guest, read on the host; hwrng; hvc1 both ways', { timeout: 300_000 }, async t => {
  const img = ext4Image('rw', 64, { 'hello.txt': 'hello from the host\n' });
  const roImg = ext4Image('ro', 8, { 'ro.txt': 'read-only disk\n' });
  const scratch = join(tmp, 'scratch.img');
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', scratch, '4M']);
  const g = await Guest.boot({ ...BUNDLED, drives: [drive(img, { format: 'raw' }), drive(roImg, { readOnly: true }), drive(scratch)], consoles: 1, rng: true });
  t.after(() => g.kill()); // a failed assertion must not leave the VM running
  try {
    await session(g, img, roImg, scratch, t);
  } catch (e) {
    t.diagnostic(`console tail:\n${g.console.slice(-3000)}`);
    throw e;
  }
});

async function session(g: Guest, img: string, roImg: string, scratch: string, t: TestContext): Promise<void> {
  g.onTimeout = () => `virtio: ${virtioState(g)}`;
  await g.waitFor(READY);
  assert.match(g.console, /virtio_blk virtio0: \[vda\] 131072 512-byte logical blocks/);
  assert.match(g.console, /virtio_blk virtio1: \[vdb\] 16384 512-byte logical blocks/);

  // The disk: read what the host put there, write, sync, unmount.
  assert.equal((await g.run('cat /sys/block/vda/serial; echo; cat /sys/block/vdb/ro')).trim().split(/\r?\n/).join(' '), 'gasang-vda 1');
  await g.run('mount -t ext4 /dev/vda /mnt');
  assert.equal((await g.run('cat /mnt/hello.txt')).trim(), 'hello from the host');
  await g.run('echo "written by the guest" > /mnt/guest.txt && dd if=/dev/urandom of=/mnt/blob bs=64k count=16 2>/dev/null && md5sum /mnt/blob > /mnt/blob.md5 && sync');
  const blobSum = (await g.run('cat /mnt/blob.md5')).trim().split(/\s+/)[0];
  await g.run('umount /mnt');
  // The read-only disk mounts read-only; writing to the device fails.
  await g.run('mount -t ext4 -o ro /dev/vdb /media 2>/dev/null || (mkdir -p /media && mount -t ext4 -o ro /dev/vdb /media)');
  assert.equal((await g.run('cat /media/ro.txt')).trim(), 'read-only disk');
  assert.match(await g.run('dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>&1; echo status=$?'), /status=1/);
  await g.run('umount /media');

  // Discard: the guest fills 256 KiB of the scratch disk, then discards the first half of it.
  await g.run('dd if=/dev/urandom of=/dev/vdc bs=64k count=4 seek=16 oflag=direct 2>/dev/null; blkdiscard -o 1048576 -l 131072 /dev/vdc');

  // Entropy: the virtio-rng device is the current hw_random source and produces bytes.
  assert.equal((await g.run('cat /sys/class/misc/hw_random/rng_current')).trim(), 'virtio_rng.0');
  const random = (await g.run('head -c 4096 /dev/hwrng | od -An -v -tx1 | tr -s " " "\\n" | grep . | sort -u | wc -l')).trim();
  assert.ok(Number(random) > 200, `4 KiB from /dev/hwrng has ${random} distinct byte values`);

  // The virtio console is hvc1 (hvc0 is the SBI console in this kernel): out to the host sink, and back in.
  await g.run('echo "to the host over virtio" > /dev/hvc1');
  assert.match(g.hvc[0] ?? '', /to the host over virtio/);
  await g.run('stty -F /dev/hvc1 -echo; (head -n 1 /dev/hvc1 > /tmp/hvc-in.txt &)');
  await new Promise(r => setTimeout(r, 500));
  g.vm.consoleInput(0, Buffer.from('typed on the host\n'));
  await new Promise(r => setTimeout(r, 500));
  assert.equal((await g.run('cat /tmp/hvc-in.txt')).trim(), 'typed on the host');

  // Sequential read throughput (reported, not asserted: shared machines vary).
  const buffered = await g.run('echo 3 > /proc/sys/vm/drop_caches; time dd if=/dev/vda of=/dev/null bs=1M 2>&1');
  const direct = await g.run('time dd if=/dev/vda of=/dev/null bs=1M iflag=direct 2>&1');
  const secs = (s: string): number => Number(/real\s+(?:(\d+)m\s*)?([\d.]+)s/.exec(s)?.slice(1).reduce((m, x, i) => (i === 0 ? Number(x ?? 0) * 60 : m + Number(x)), 0));
  t.diagnostic(`dd 64 MiB from /dev/vda: buffered ${(64 / secs(buffered)).toFixed(0)} MiB/s, iflag=direct ${(64 / secs(direct)).toFixed(0)} MiB/s`);

  assert.deepEqual(await g.powerOff(), { kind: 'poweroff', code: 0 });
  assert.deepEqual(g.log, [], 'no virtio errors');
  const blk = g.vm.drives[0]!.stats;
  assert.ok(blk.flushes > 0 && blk.writes > 0 && blk.reads > 0);

  // On the host: the guest's files are there and the file system is clean.
  assert.equal(debugfsCat(img, '/guest.txt'), 'written by the guest\n');
  assert.equal(debugfsCat(img, '/hello.txt'), 'hello from the host\n');
  const blob = join(tmp, 'blob');
  execFileSync('debugfs', ['-R', `dump /blob ${blob}`, img], { stdio: 'ignore' });
  assert.equal(execFileSync('md5sum', [blob], { encoding: 'utf8' }).split(/\s+/)[0], blobSum);
  execFileSync('e2fsck', ['-fn', img], { stdio: 'ignore' }); // throws unless the file system is clean
  const disk = readFileSync(scratch);
  assert.ok(disk.subarray(1 << 20, (1 << 20) + 131072).every(b => b === 0), 'the discarded range reads as zeroes');
  assert.ok(!disk.subarray((1 << 20) + 131072, (1 << 20) + 262144).every(b => b === 0), 'the rest keeps what the guest wrote');
  assert.ok(g.vm.drives[2]!.stats.discards >= 1);
}
