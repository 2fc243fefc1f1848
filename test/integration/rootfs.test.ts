// Debian's own kernel boots a Debian trixie root file system from virtio-blk, through `gasang run
// --drive`: a qcow2 overlay (made by qemu-img) over the cached raw ext4 image of
// scripts/build-debian-rootfs.sh, so the image stays untouched. The guest runs Debian's programs,
// writes files and powers off; on the host qemu-img finds the overlay clean and debugfs finds the
// files in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEBIAN, DEBIAN_ROOTFS as ROOTFS, READY, debianRootfsMissing } from './guest.js';
import { CliSession } from './cli-session.js';
import { qemuCheck } from '../../src/storage/qemu-testing.js';

const missing = debianRootfsMissing();

const tmp = mkdtempSync(join(tmpdir(), 'gasang-rootfs-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const debugfs = (img: string, request: string): string =>
  execFileSync('debugfs', ['-R', request, img], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
const md5 = (data: Uint8Array | string): string => createHash('md5').update(data).digest('hex');

// In CI the image is built by .ci/run, so a missing one is a failure there, not a skip.
test('Debian root file system on a qcow2 overlay: boots, runs Debian programs, writes files that reach the image', {
  timeout: 900_000, skip: !process.env.CI && missing,
}, async t => {
  const manifest = readFileSync(join(dirname(realpathSync(ROOTFS)), 'MANIFEST'), 'utf8');
  const debianVersion = /^debian_version: (.+)$/m.exec(manifest)?.[1];
  const packages = manifest.split('\n').filter(l => l.startsWith('  ')).length;
  assert.ok(debianVersion && packages > 50, 'the MANIFEST names the Debian version and the packages');
  const base = statSync(ROOTFS);

  const overlay = join(tmp, 'overlay.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', ROOTFS, '-F', 'raw', overlay]);
  const s = new CliSession([
    '--kernel', DEBIAN.kernel, '--initrd', DEBIAN.initrd, '--append', 'console=ttyS0 root=/dev/vda',
    '--drive', `file=${overlay},format=qcow2`,
  ]);
  t.after(() => s.kill('SIGKILL'));
  await s.waitFor(READY, 600_000);
  t.diagnostic(`GASANG-READY from the Debian root file system after ${s.seconds.toFixed(1)} s`);
  assert.match(s.out, /EXT4-fs \(vda\): mounted filesystem .* r\/w/);

  // Debian's userland from the disk: its version, its package database, its coreutils.
  assert.equal((await s.run('cat /etc/debian_version')).trim(), debianVersion);
  assert.equal((await s.run("dpkg-query -W -f '${Status}\\n' | grep -c 'install ok installed'")).trim(), String(packages));
  assert.match(await s.run('mount'), /^\/dev\/vda on \/ type ext4 \(rw/m);
  assert.match(await s.run('readlink -f /proc/self/exe; ls /usr/bin | wc -l'), /^\/usr\/bin\/readlink\r?\n\s*\d{3,}\s*$/m);
  // Reads come through the overlay from the base image, byte for byte.
  const guestDpkgSum = (await s.run('md5sum /usr/bin/dpkg')).trim().split(/\s+/)[0];
  assert.equal(guestDpkgSum, md5(Buffer.from(debugfs(ROOTFS, 'cat /usr/bin/dpkg'), 'latin1')));

  // Writes: a text file, 1 MiB of random bytes, a package-database query saved to a file.
  await s.run('echo "written by Debian $(cat /etc/debian_version) on gasang" > /root/probe.txt');
  const blobSum = (await s.run('head -c 1048576 /dev/urandom > /root/blob && md5sum /root/blob')).trim().split(/\s+/)[0];
  await s.run('dpkg -l > /root/dpkg-l.txt && sync');
  s.send('poweroff\n');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  t.diagnostic(`powered off after ${s.seconds.toFixed(1)} s`);
  assert.match(s.out, /gasang: \/ is read-only\r?\n/, 'init remounts / read-only before power-off');
  assert.doesNotMatch(s.err, /gasang:/, 'no errors reported');

  // Host side: the overlay is clean, holds the guest's files, and the base was never written.
  const check = qemuCheck(overlay);
  assert.equal(check.status, 0, check.output);
  assert.equal(check.leaks + check.corruptions + check.checkErrors, 0, check.output);
  const raw = join(tmp, 'rootfs.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', overlay, raw]);
  assert.equal(debugfs(raw, 'cat /root/probe.txt'), `written by Debian ${debianVersion} on gasang\n`);
  assert.equal(md5(Buffer.from(debugfs(raw, 'cat /root/blob'), 'latin1')), blobSum);
  assert.match(debugfs(raw, 'cat /root/dpkg-l.txt'), /^ii {2}bash /m);
  execFileSync('e2fsck', ['-fn', raw], { stdio: 'ignore' }); // throws unless the file system is clean
  const after = statSync(ROOTFS);
  assert.equal(after.mtimeMs, base.mtimeMs, 'the base image was not written');
  assert.equal(after.ctimeMs, base.ctimeMs, 'the base image was not changed');
});
