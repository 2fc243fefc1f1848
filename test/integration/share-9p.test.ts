// A host directory shared with the bundled guest over virtio-9p: Linux's own v9fs client mounts
// it, reads and writes host files, and cannot reach anything outside the shared directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED, Guest, READY } from './guest.js';
import { VirtioNineP } from '../../src/devices/virtio/9p/device.js';

const tmp = mkdtempSync(join(tmpdir(), 'gasang-share-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const MOUNT = 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288';

test('bundled guest: a 9p share read and written by the guest, confined to its directory; a read-only share', { timeout: 300_000 }, async t => {
  const share = join(tmp, 'share'), ro = join(tmp, 'ro');
  mkdirSync(join(share, 'dir'), { recursive: true });
  mkdirSync(ro);
  writeFileSync(join(tmp, 'outside-secret'), 'host secret beside the share\n');
  writeFileSync(join(share, 'hello.txt'), 'hello from the host\n');
  writeFileSync(join(ro, 'ro.txt'), 'read-only share\n');
  symlinkSync('/etc/passwd', join(share, 'passwd-link'));
  symlinkSync('../outside-secret', join(share, 'relative-link'));
  symlinkSync(tmp, join(share, 'absolute-dir-link'));
  const big = randomBytes(64 << 20);
  writeFileSync(join(share, 'big'), big);
  const bigSum = createHash('md5').update(big).digest('hex');

  const rw = new VirtioNineP({ root: share, tag: 'hostshare' });
  const rof = new VirtioNineP({ root: ro, tag: 'roshare', readOnly: true });
  const g = await Guest.boot({ ...BUNDLED, devices: [rw, rof] });
  let off = false;
  t.after(async () => { if (!off) await g.kill(); });
  await g.waitFor(READY);

  await g.run(`mkdir -p /share /ro && ${MOUNT} hostshare /share && ${MOUNT} roshare /ro`);
  assert.match(await g.run('grep 9p /proc/mounts'), /hostshare \/share 9p .*trans=virtio/);
  assert.equal((await g.run('cat /share/hello.txt')).trim(), 'hello from the host');

  // Writes reach the host: a new file, a directory, a rename, a removal, a mode.
  await g.run('echo "written by the guest" > /share/dir/guest.txt && mkdir /share/made && mv /share/dir/guest.txt /share/made/g.txt && chmod 640 /share/made/g.txt && sync');
  assert.equal(readFileSync(join(share, 'made', 'g.txt'), 'utf8'), 'written by the guest\n');
  assert.equal(statSync(join(share, 'made', 'g.txt')).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(join(share, 'dir')), []);
  await g.run('rm -r /share/made');
  assert.ok(!readdirSync(share).includes('made'));
  assert.equal((await g.run('ls /share | sort | tr "\\n" " "; echo')).trim(), 'absolute-dir-link big dir hello.txt passwd-link relative-link');
  // A big directory listed in pages and removed by rm -r while it is listed; appends; hard links; times.
  mkdirSync(join(share, 'many'));
  for (let i = 0; i < 500; i++) writeFileSync(join(share, 'many', `file-${i}`), `${i}\n`);
  assert.equal((await g.run('ls /share/many | wc -l')).trim(), '500');
  assert.equal((await g.run('cat /share/many/file-499')).trim(), '499');
  await g.run('rm -r /share/many');
  assert.ok(!readdirSync(share).includes('many'));
  await g.run('echo one > /share/log && echo two >> /share/log && ln /share/log /share/log2 && touch -d "2001-02-03 04:05:06" /share/log');
  assert.equal(readFileSync(join(share, 'log2'), 'utf8'), 'one\ntwo\n');
  assert.equal(statSync(join(share, 'log')).nlink, 2);
  assert.equal(statSync(join(share, 'log')).mtime.getUTCFullYear(), 2001);
  assert.equal((await g.run('stat -c "%h %s %Y" /share/log')).trim(), `2 8 ${Math.floor(statSync(join(share, 'log')).mtimeMs / 1000)}`);
  await g.run('rm /share/log /share/log2');

  // Symlinks made by the guest are symlinks on the host; it reads them back.
  await g.run('ln -s /etc/hostname /share/guest-link');
  assert.equal(readFileSync(join(share, 'guest-link'), 'utf8').length > 0, true); // host follows it to its own /etc/hostname…
  assert.equal((await g.run('readlink /share/guest-link')).trim(), '/etc/hostname');
  assert.equal((await g.run('cat /share/guest-link')).trim(), (await g.run('cat /etc/hostname')).trim(), '…the guest to its own');

  // Escapes: ".." of the mount is the guest's /, and symlinks resolve in the guest, never on the host.
  const hostPasswd = readFileSync('/etc/passwd', 'utf8');
  const up = await g.run('cd /share && cd .. && pwd && ls; cat /share/../outside-secret 2>&1');
  assert.ok(!up.includes('host secret') && !up.includes('outside-secret\n'), up);
  const passwd = await g.run('cat /share/passwd-link 2>&1');
  assert.ok(!hostPasswd.split('\n').filter(l => l.includes(':')).some(l => passwd.includes(l)), `host /etc/passwd seen: ${passwd}`);
  assert.equal(passwd, await g.run('cat /etc/passwd 2>&1'), "the guest's own /etc/passwd");
  assert.match(await g.run('cat /share/relative-link 2>&1; echo status=$?'), /status=1/);
  assert.match(await g.run('ls /share/absolute-dir-link/ 2>&1; echo status=$?'), /No such file|status=[12]/);

  // The read-only share: readable, and every write refused.
  assert.equal((await g.run('cat /ro/ro.txt')).trim(), 'read-only share');
  for (const cmd of ['touch /ro/new', 'echo x >> /ro/ro.txt', 'mkdir /ro/d', 'rm /ro/ro.txt', 'chmod 777 /ro/ro.txt', 'ln -s x /ro/l']) {
    assert.match(await g.run(`${cmd} 2>&1; echo status=$?`), /Read-only file system[\s\S]*status=1/, cmd);
  }
  assert.deepEqual(readdirSync(ro), ['ro.txt']);
  assert.equal(readFileSync(join(ro, 'ro.txt'), 'utf8'), 'read-only share\n');

  // 64 MiB through the share: the same bytes, and how fast (reported, not asserted).
  assert.ok((await g.run('md5sum /share/big')).includes(bigSum));
  const timed = await g.run('time dd if=/share/big of=/dev/null bs=1M 2>&1');
  const secs = Number(/real\s+(?:(\d+)m\s*)?([\d.]+)s/.exec(timed)?.slice(1).reduce((m, x, i) => (i === 0 ? Number(x ?? 0) * 60 : m + Number(x)), 0));
  t.diagnostic(`dd of a 64 MiB host file over 9p (msize 512000) in the guest: ${(64 / secs).toFixed(0)} MiB/s`);

  await g.run('umount /share && umount /ro');
  assert.deepEqual(await g.powerOff(), { kind: 'poweroff', code: 0 });
  off = true;
  assert.deepEqual(g.log, [], 'no virtio errors');
  assert.equal(rw.server.counters.internal, 0);
  assert.ok(rw.stats.requests > 100);
});
