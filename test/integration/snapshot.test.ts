// Whole-VM snapshots through `gasang run`: --snapshot-on-exit on SIGTERM, --restore in a new
// process; the guest's counter goes on exactly, its qcow2 disk is at the snapshot's instant, and
// files that are not good snapshots are refused with one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, CliSession } from './cli-session.js';
import { DEBIAN, debianAvailable, READY } from './guest.js';
import { tempDir } from '../../src/vm/testing.js';
import { crc32 } from 'node:zlib';
import { FORMAT_VERSION } from '../../src/snapshot/index.js';

/** Every `NAME=n` in `text`, in order. */
const counts = (text: string, name: string): number[] => [...text.matchAll(new RegExp(`${name}=(\\d+)`, 'g'))].map(m => Number(m[1]));
const debugfs = (image: string, cmd: string): string =>
  execFileSync('debugfs', ['-R', cmd, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('a Debian guest writing and fsyncing files: snapshot on SIGTERM, restore in a new process; the count goes on exactly and the disk checks clean', {
  timeout: 600_000, skip: debianAvailable() ? false : 'run scripts/fetch-debian-guest.sh first',
}, async t => {
  const { dir, cleanup } = tempDir('snapshot-cli');
  t.after(cleanup);
  const root = join(dir, 'root'), raw = join(dir, 'fs.img'), qcow = join(dir, 'disk.qcow2'), snap = join(dir, 'vm.snap');
  mkdirSync(root);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, raw, '32M']);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow]);
  const TOTAL = 200;

  const first = new CliSession(['--kernel', DEBIAN.kernel, '--initrd', DEBIAN.initrd, '--append', 'console=ttyS0 gasang.modules=1',
    '--drive', `file=${qcow}`, '--nic', 'none', '--snapshot-on-exit', snap]);
  t.after(() => first.kill('SIGKILL'));
  await first.waitFor(READY, 300_000);
  await first.run('mount -t ext4 /dev/vda /mnt');
  // Each file is written and fsynced before its ACK: an acknowledged write.
  first.send(`i=0; while [ $i -lt ${TOTAL} ]; do i=$((i+1)); echo $i > /mnt/f$i; sync /mnt/f$i; echo ACK=$i; done; echo LOOP""DONE\n`);
  await first.until(out => counts(out, 'ACK').length >= 20, 120_000, '20 acknowledged writes');
  first.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);
  assert.match(first.err, /^gasang: snapshot written to .*vm\.snap: [\d.]+ MiB, \d+ of 65536 RAM pages stored, the VM held \d+ ms\n$/);
  const acked = Math.max(...counts(first.out, 'ACK'));
  t.diagnostic(`snapshot after ACK=${acked}: ${first.err.trim()}`);
  const diskSnapshot = /gasang-vm\.snap-[0-9a-z]+/.exec(execFileSync('qemu-img', ['snapshot', '-l', qcow], { encoding: 'utf8' }))?.[0];
  assert.ok(diskSnapshot, 'the qcow2 image holds an internal snapshot of the same instant');

  const t0 = Date.now();
  const second = new CliSession(['--restore', snap]);
  t.after(() => second.kill('SIGKILL'));
  await second.until(out => /ACK=\d+\r?\n/.test(out), 60_000, 'the loop going on');
  t.diagnostic(`restored process printed its first ACK after ${Date.now() - t0} ms`);
  await second.waitFor('LOOPDONE', 300_000);
  // A line cut by the snapshot continues in the new process: read both outputs as one.
  assert.deepEqual(counts(first.out + second.out, 'ACK'), Array.from({ length: TOTAL }, (_, i) => i + 1), 'every count once, in order');
  assert.equal(await second.run(`ls /mnt | grep -c '^f'`), String(TOTAL));
  assert.equal(await second.run(`cat /mnt/f${acked} /mnt/f${TOTAL}`), `${acked}\n${TOTAL}`);
  await second.run('umount /mnt');
  second.send('poweroff\n');
  assert.equal((await second.exited).code, 0);
  assert.doesNotMatch(second.err, /gasang:/);

  execFileSync('qemu-img', ['check', '-q', qcow]);
  const after = join(dir, 'after.img');
  execFileSync('qemu-img', ['convert', '-O', 'raw', qcow, after]);
  execFileSync('e2fsck', ['-fn', after], { stdio: 'ignore' });
  assert.equal(debugfs(after, `cat /f${TOTAL}`), `${TOTAL}\n`);

  // The disk as the snapshot left it: every acknowledged file there, none written after it.
  execFileSync(process.execPath, [CLI, 'image', 'snapshot', '-a', diskSnapshot, qcow]);
  const then = join(dir, 'then.img');
  execFileSync('qemu-img', ['convert', '-O', 'raw', qcow, then]);
  const fsck = spawnSync('e2fsck', ['-fy', then], { stdio: 'ignore' }); // replays the journal of a mounted file system
  assert.ok(fsck.status === 0 || fsck.status === 1, `e2fsck status ${fsck.status}`);
  assert.equal(debugfs(then, `cat /f${acked}`), `${acked}\n`);
  assert.equal(debugfs(then, `cat /f${acked + 2}`), '', 'no file from after the snapshot');
});

test('gasang run --restore refuses files that are not good snapshots, and hardware options beside it, with one line', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('snapshot-refused');
  t.after(cleanup);
  const snap = join(dir, 'vm.snap');
  const s = new CliSession(['--nic', 'none', '--snapshot-on-exit', snap]);
  t.after(() => s.kill('SIGKILL'));
  await s.waitFor(READY);
  s.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
  const good = readFileSync(snap);
  const variant = (name: string, bytes: Uint8Array): string => { const f = join(dir, name); writeFileSync(f, bytes); return f; };
  const flipped = Buffer.from(good);
  flipped[Math.floor(good.length / 2)]! ^= 0x40;
  const v9 = Buffer.from(good);
  v9.writeUInt32LE(9, 8);
  v9.writeUInt32LE(crc32(v9.subarray(0, 24)), 24);
  const cases: [string[], RegExp][] = [
    [['--restore', variant('short.snap', good.subarray(0, good.length >> 1))], /^gasang: --restore: .*short\.snap is truncated: \d+ of \d+ bytes\n$/],
    // A page is checked as it is paged in, behind the running guest: the VM stops as soon as one fails.
    [['--restore', variant('flipped.snap', flipped)], /^gasang: --restore: .*flipped\.snap is corrupt: guest RAM page 0x[0-9a-f]+ fails its checksum \(not loaded\)\n$/],
    [['--restore', variant('v9.snap', v9)], new RegExp(`^gasang: --restore: .*v9\\.snap is a snapshot of format version 9; this gasang reads version ${FORMAT_VERSION}\n$`)],
    [['--restore', variant('other.snap', Buffer.from('#!/bin/sh\necho not a snapshot\n'))], /^gasang: --restore: .*other\.snap is not a gasang snapshot\n$/],
    [['--restore', join(dir, 'missing.snap')], /^gasang: --restore: .*missing\.snap: No such file\n$/],
    [['--restore', snap, '--memory', '512'], /^gasang: --memory cannot be given with --restore: the snapshot holds the VM's hardware/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
