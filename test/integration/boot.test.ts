// Boots real guests on the emulated virt board and uses their shell over the serial console.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUNDLED, DEBIAN, Guest, READY, debianAvailable } from './guest.js';

async function sessionChecks(g: Guest, kernelRelease: RegExp): Promise<void> {
  await g.waitFor(READY);
  const uname = await g.run('uname -a');
  assert.match(uname, kernelRelease);
  assert.match(uname, /riscv64/);
  const cpuinfo = await g.run('cat /proc/cpuinfo');
  assert.match(cpuinfo, /isa\s*: rv64imafdc/);
  assert.match(cpuinfo, /mmu\s*: sv(39|48)/);
  assert.equal((await g.run('echo $(( (1 << 40) / 3 + 7 * -6 ))')).trim(), String(Math.floor(2 ** 40 / 3) - 42));
  await g.run('echo "written by the guest" > /tmp/probe.txt');
  assert.equal((await g.run('cat /tmp/probe.txt')).trim(), 'written by the guest');
  assert.match(await g.run('mount'), /tmpfs on \/tmp/);
  // Kernel notices after boot stay off the console, so they cannot land in a command's output.
  assert.equal(await g.run('cat /proc/sys/kernel/printk'), '4\t4\t1\t7');
  assert.equal(await g.run('echo "<5>a notice from the guest" > /dev/kmsg; dmesg | grep -c "a notice from the guest"'), '1');
  const end = await g.powerOff();
  assert.deepEqual(end, { kind: 'poweroff', code: 0 });
}

test('bundled default guest boots to a shell, runs commands, powers off', { timeout: 300_000 }, async () => {
  const g = await Guest.boot({ ...BUNDLED });
  await sessionChecks(g, /Linux gasang 6\.1\./);
  assert.match(g.console, /OpenSBI v/);
});

test('bundled guest brings up two harts with --cpus 2', { timeout: 300_000 }, async () => {
  const g = await Guest.boot({ ...BUNDLED, cpus: 2 });
  await g.waitFor(READY);
  assert.match(g.console, /Brought up 1 node, 2 CPUs/);
  assert.equal((await g.run('grep -c ^processor /proc/cpuinfo')).trim(), '2');
  assert.deepEqual(await g.powerOff(), { kind: 'poweroff', code: 0 });
});

test("Debian's stock 6.12 kernel boots with OpenSBI and busybox", { timeout: 600_000, skip: !debianAvailable() && !process.env.CI && 'run scripts/fetch-debian-guest.sh first' }, async () => {
  const g = await Guest.boot({ ...DEBIAN });
  await g.waitFor(READY);
  // 6.12 reads riscv,isa-extensions and lists what it recognised (and may now use, e.g. Zbb string routines).
  assert.match(await g.run('grep -m1 ^isa /proc/cpuinfo'), /_zicond_.*_zba_zbb_zbs/);
  await sessionChecks(g, /6\.12\.\d+.*-riscv64/);
});

test("Debian's kernel with two harts", { timeout: 600_000, skip: !debianAvailable() && !process.env.CI && 'run scripts/fetch-debian-guest.sh first' }, async () => {
  const g = await Guest.boot({ ...DEBIAN, cpus: 2 });
  await g.waitFor(READY);
  assert.equal((await g.run('grep -c ^processor /proc/cpuinfo')).trim(), '2');
  assert.deepEqual(await g.powerOff(), { kind: 'poweroff', code: 0 });
});
