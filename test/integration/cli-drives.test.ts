// `gasang run` with disks as a user gives them: a qcow2 image made by qemu-img (--drive), a linear
// volume over two raw files (--volume), a throttled drive; checked on the host with qemu-img and
// e2fsprogs after the guest powers off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, CliSession } from './cli-session.js';
const tmp = mkdtempSync(join(tmpdir(), 'gasang-cli-drives-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

for (const [args, message] of [
  [['--drive', 'file=/no/such.img'], /^gasang: --drive: \/no\/such.img: No such file\n$/],
  [['--drive', 'file=x,format=vmdk'], /^gasang: --drive: format=vmdk: expected raw or qcow2\n$/],
  [['--volume', 'mode=mirror,files=/no/a:/no/b'], /^gasang: --volume: \/no\/a: No such file\n$/],
  [['--share', 'host=/no/such/dir,tag=x'], /^gasang: --share: .*\/no\/such\/dir.*\n$/],
] as const) {
  test(`gasang run ${args.join(' ')}: one line, status 2`, () => {
    const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, message);
  });
}

test('gasang run --drive qcow2 --volume linear --drive throttled: guest I/O lands in the images', { timeout: 300_000 }, async t => {
  // A qcow2 image with an ext4 file system holding one file, converted by qemu-img from mkfs.ext4 -d.
  const root = join(tmp, 'root');
  mkdirSync(root);
  writeFileSync(join(root, 'hello.txt'), 'hello from the host\n');
  const raw = join(tmp, 'fs.img'), qcow = join(tmp, 'disk.qcow2');
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, raw, '32M']);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]);
  // Two raw members of a linear volume, and a throttled scratch disk.
  const m0 = join(tmp, 'm0.img'), m1 = join(tmp, 'm1.img'), slow = join(tmp, 'slow.img');
  for (const f of [m0, m1]) execFileSync('qemu-img', ['create', '-q', '-f', 'raw', f, '4M']);
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', slow, '4M']);

  const s = new CliSession([
    '--drive', `file=${qcow},format=qcow2`,
    '--volume', `mode=linear,files=${m0}:${m1}`,
    '--drive', `file=${slow},bps=512K,serial=slow-disk`,
  ]);
  t.after(() => s.kill());
  await s.waitFor('GASANG-READY');

  assert.match(await s.run('cat /sys/block/vdc/serial'), /slow-disk/);
  assert.match(await s.run('cat /sys/block/vdb/size'), /^\s*16384\s*$/m, 'the volume is 8 MiB');
  await s.run('mount -t ext4 /dev/vda /mnt');
  assert.match(await s.run('cat /mnt/hello.txt'), /hello from the host/);
  await s.run('echo "written by the guest into qcow2" > /mnt/guest.txt && sync && umount /mnt');

  // The volume: the guest fills it; the host finds the bytes split across the members.
  const guestSum = /([0-9a-f]{32})/.exec(await s.run('dd if=/dev/urandom of=/dev/vdb bs=1M count=8 2>/dev/null; sync; md5sum /dev/vdb'))?.[1];
  assert.ok(guestSum);

  // The throttle: 1 MiB at 512 KiB/s takes about two seconds (the guest's own clock).
  const timed = await s.run('time dd if=/dev/vdc of=/dev/null bs=64k count=16 iflag=direct 2>&1');
  const secs = Number(/real\s+(?:0m\s*)?([\d.]+)s/.exec(timed)?.[1]);
  t.diagnostic(`1 MiB through a 512 KiB/s throttle: ${secs} s`);
  assert.ok(secs >= 1.6, `throttled read took ${secs} s`);

  s.send('poweroff\n');
  assert.equal((await s.exited).code, 0);
  assert.doesNotMatch(s.err, /gasang:/, 'no errors reported');

  // Host side: qemu-img finds the qcow2 image consistent, and the guest's file is in it.
  execFileSync('qemu-img', ['check', '-q', qcow]);
  const back = join(tmp, 'back.img');
  execFileSync('qemu-img', ['convert', '-O', 'raw', qcow, back]);
  assert.equal(execFileSync('debugfs', ['-R', 'cat /guest.txt', back], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), 'written by the guest into qcow2\n');
  execFileSync('e2fsck', ['-fn', back], { stdio: 'ignore' });
  const hostSum = createHash('md5').update(readFileSync(m0)).update(readFileSync(m1)).digest('hex');
  assert.equal(hostSum, guestSum);
});
