// A mirrored volume (`gasang run --volume mode=mirror,files=A:B:C`, raw members holding the same
// data) loses members under the guest while the guest reads the whole device in a loop: member A
// is deleted, then member B (the one being read from by then) is truncated. The guest must go on
// reading the right data; gasang names the failed member and the survivor on stderr; writes made
// afterwards reach the survivor only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { READY } from './guest.js';
import { CliSession } from './cli-session.js';
import { randomBytes } from '../../src/storage/qemu-testing.js';

const SIZE = 4 << 20;
const tmp = mkdtempSync(join(tmpdir(), 'gasang-mirror-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex');
const SUM = /SUM (\d+) ([0-9a-f]{32}) {2}-\r?\n/g;
/** The checksum lines the guest's read loop has printed so far. */
const sums = (out: string): { n: number; sum: string }[] => [...out.matchAll(SUM)].map(m => ({ n: Number(m[1]), sum: m[2]! }));

test('mirror volume: a member deleted, then the member being read truncated, while the guest reads; the survivor serves', { timeout: 300_000 }, async t => {
  const data = randomBytes(SIZE, 0x5eed);
  const expected = md5(data);
  const [a, b, c] = ['a.img', 'b.img', 'c.img'].map(f => join(tmp, f)) as [string, string, string];
  for (const f of [a, b, c]) writeFileSync(f, data);

  const s = new CliSession(['--volume', `mode=mirror,files=${a}:${b}:${c}`]);
  t.after(() => s.kill('SIGKILL'));
  await s.waitFor(READY);
  assert.equal((await s.run('cat /sys/block/vda/size')).trim(), String(SIZE / 512));

  // The guest checksums the whole device, bypassing its page cache, pass after pass, in the
  // background until /tmp/stop exists. (Not stopped with Ctrl-C: the guest shell's children
  // ignore SIGINT, see the report.) Each line is one write, so typed echoes cannot split it.
  s.send('rm -f /tmp/stop; n=0; while [ ! -e /tmp/stop ]; do s=$(dd if=/dev/vda bs=64k iflag=direct 2>/dev/null | md5sum); echo "SUM $n $s"; n=$((n+1)); done &\n');
  const passes = (k: number, what: string): Promise<void> => {
    const from = sums(s.out).length;
    return s.until(out => sums(out).length >= from + k, 60_000, `${k} more read passes ${what}`);
  };
  await passes(2, 'from all three members');

  // A is deleted: its open descriptor would go on reading the unlinked file; the watch fails it.
  rmSync(a);
  const aLine = `gasang: Mirror member #0 (${a}) failed (${a} has disappeared); continuing on member #1 (${b})\n`;
  await s.until((_, err) => err.includes(aLine), 30_000, 'the report of member A');
  await passes(3, 'from B and C');

  // B, now the member reads come from, loses its second half mid-pass.
  truncateSync(b, SIZE / 2);
  const bLine = new RegExp(`^gasang: Mirror member #1 \\(${escape(b)}\\) failed \\(.*\\); continuing on member #2 \\(${escape(c)}\\)$`, 'm');
  await s.until((_, err) => bLine.test(err), 30_000, 'the report of member B');
  await passes(3, 'from C');

  await s.run('touch /tmp/stop; wait');
  const seen = sums(s.out);
  t.diagnostic(`${seen.length} read passes of ${SIZE >> 20} MiB in ${s.seconds.toFixed(1)} s; gasang said: ${s.err.trim().split('\n').join(' | ')}`);
  const wrong = seen.filter(x => x.sum !== expected);
  assert.deepEqual(wrong, [], `every pass reads the mirror's data (${expected})`);
  assert.deepEqual(seen.map(x => x.n), seen.map((_, i) => i), 'no pass failed to print');

  // Writes now reach the survivor only.
  const guestSum = (await s.run('dd if=/dev/urandom of=/dev/vda bs=64k count=16 seek=8 oflag=direct conv=fsync 2>/dev/null; dd if=/dev/vda bs=64k iflag=direct 2>/dev/null | md5sum')).trim().split(/\s+/)[0];
  s.send('poweroff\n');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.equal(md5(readFileSync(c)), guestSum, 'the survivor holds what the guest wrote');
  assert.equal(md5(readFileSync(b)), md5(data.subarray(0, SIZE / 2)), 'the failed member B was not written');
  assert.equal(s.err.split('\n').filter(l => l.startsWith('gasang:')).length, 2, 'two reports, nothing else');
});
