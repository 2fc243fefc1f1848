// A VM of the host (src/vm) with every kind of storage a spec can name: Debian's kernel boots the
// Debian root filesystem from a qcow2 overlay the host made over the cached image, a striped volume
// of two host files is its second disk, and a host directory is shared read-only over 9p. The
// guest uses all three through its console; `stop` presses the power button, which the Debian
// root filesystem's init acts on (a clean power-off, no forced stop), leaving the overlay clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from '../../src/vm/host.js';
import { ConsoleText, tempDir } from '../../src/vm/testing.js';
import { qemuCheck } from '../../src/storage/qemu-testing.js';
import { DEBIAN, DEBIAN_ROOTFS, READY, debianRootfsMissing } from './guest.js';

const STRIPE_MEMBER_BYTES = 4 << 20;

test('a host VM boots the Debian rootfs from an overlay, uses a striped volume and a 9p share, stops on the power button', {
  timeout: 900_000, skip: !process.env.CI && debianRootfsMissing(),
}, async t => {
  const { dir, cleanup } = tempDir('host-devices');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const members = [join(dir, 'stripe0.img'), join(dir, 'stripe1.img')];
  for (const m of members) writeFileSync(m, Buffer.alloc(STRIPE_MEMBER_BYTES));
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  writeFileSync(join(shared, 'hello.txt'), 'from the host\n');
  const base = statSync(DEBIAN_ROOTFS);

  const vm = await host.create({
    name: 'debian', memoryMiB: 256, kernel: DEBIAN.kernel, initrd: DEBIAN.initrd, append: 'console=ttyS0 root=/dev/vda',
    drives: [{ file: DEBIAN_ROOTFS, format: 'raw', overlay: true }],
    volumes: [{ mode: 'stripe', files: members }],
    shares: [{ host: shared, tag: 'shared', readonly: true }],
  });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor(READY, 600_000);
  await con.run('cat /etc/debian_version; stty cols 1000', /^\d+\.\d+\r?$/m, 60_000);

  // The volume: 8 MiB (two 4 MiB members); 1 MiB written at 3.5 MiB spans both members' chunks.
  await con.run('echo vdb=$(cat /sys/block/vdb/size)', `vdb=${(2 * STRIPE_MEMBER_BYTES) / 512}`, 60_000);
  await con.run('head -c 1048576 /dev/urandom > /tmp/blob && dd if=/tmp/blob of=/dev/vdb bs=512 seek=7168 conv=fsync 2>/dev/null && dd if=/dev/vdb bs=512 skip=7168 count=2048 2>/dev/null | cmp - /tmp/blob && echo volume-ok',
    /^volume-ok\r?$/m, 120_000);

  // The share: read-only 9P2000.L.
  await con.run('mkdir -p /mnt/shared && mount -t 9p -o trans=virtio,version=9p2000.L,ro shared /mnt/shared && cat /mnt/shared/hello.txt', 'from the host', 60_000);
  await con.run('touch /mnt/shared/nope || echo share-read-only', /^share-read-only\r?$/m, 60_000);
  await con.run('echo written-on-the-rootfs > /root/probe.txt && sync && echo synced', /^synced\r?$/m, 60_000);

  // Graceful stop: the power button; the guest's init syncs, remounts / read-only and powers off.
  const t0 = performance.now();
  await vm.stop({ timeoutMs: 60_000 });
  t.diagnostic(`power button to power-off: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.deepEqual(vm.info().exit, { reason: 'poweroff', code: 0 }, 'the guest powered itself off');
  assert.match(con.text, /gasang: \/ is read-only\r?\n/, 'init remounted / read-only first');

  // Host side: overlay clean and holding the guest's file; the base untouched; the volume striped.
  const overlay = join(dir, 'state', 'vms', vm.info().id, 'drive0.qcow2');
  const check = qemuCheck(overlay);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.leaks + check.corruptions + check.checkErrors, 0, check.output);
  const raw = join(dir, 'rootfs.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', overlay, raw]);
  assert.equal(execFileSync('debugfs', ['-R', 'cat /root/probe.txt', raw], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] }), 'written-on-the-rootfs\n');
  execFileSync('e2fsck', ['-fn', raw], { stdio: 'ignore' }); // throws unless the file system is clean
  assert.equal(statSync(DEBIAN_ROOTFS).mtimeMs, base.mtimeMs, 'the base image was not written');
  const written = members.map(m => readFileSync(m));
  assert.ok(written.every(b => b.some(x => x !== 0)), 'the 1 MiB write reached both members of the stripe');
});
