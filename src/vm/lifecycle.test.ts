/**
 * One VM's life on a host: boot the bundled guest, use its console, pause and resume, the power
 * button (graceful stop), a forced stop after the timeout, kill, restart, remove.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from './host.js';
import { ConsoleText, sleep, tempDir } from './testing.js';

const BOOT_MS = 60_000;

test('the power button powers the guest off; pause holds it; restart and remove', async t => {
  const { dir, cleanup } = tempDir('life');
  const host = new Host({ stateDir: dir });
  try {
    const created = performance.now();
    const vm = await host.create({ name: 'life', memoryMiB: 128 });
    await vm.start();
    assert.equal(vm.info().state, 'running');
    const con = new ConsoleText(vm, true);
    await con.waitFor('GASANG-READY', BOOT_MS);
    t.diagnostic(`create to shell: ${((performance.now() - created) / 1000).toFixed(2)} s`);
    await con.run('echo answer=$((6*7))', 'answer=42', 10_000);

    await vm.pause();
    assert.equal(vm.info().state, 'paused');
    // Typing wakes the held thread, which publishes its counters (an idle thread publishes them
    // only now and then) and holds again: measure from there.
    con.client.write('echo during-pause\n');
    await sleep(300);
    const held = vm.info().usage;
    await sleep(1000);
    const still = vm.info().usage;
    assert.equal(still.instructions, held.instructions, 'a paused guest runs no instructions');
    assert.ok(still.cpuSeconds - held.cpuSeconds < 0.02, `a paused VM uses no CPU (${still.cpuSeconds - held.cpuSeconds} s)`);
    assert.doesNotMatch(con.text, /\r\nduring-pause/);
    await vm.resume();
    await con.waitFor(/\r\nduring-pause/, 10_000);

    const info = vm.info();
    assert.ok(info.usage.instructions > 1e7 && info.usage.mmioExits > 1000 && info.usage.cpuSeconds > 0.5, JSON.stringify(info.usage));
    assert.equal(info.usage.guestRamBytes, 128 * 2 ** 20);
    assert.ok(info.usage.hostOverheadBytes > 0, 'overhead is measured');
    assert.equal(host.resources().memoryCommittedBytes, 128 * 2 ** 20);

    const t0 = performance.now();
    await vm.stop({ timeoutMs: 20_000 });
    const took = performance.now() - t0;
    const end = vm.info();
    assert.equal(end.state, 'stopped');
    assert.deepEqual(end.exit, { reason: 'poweroff', code: 0 }, 'the guest powered itself off');
    assert.ok(took < 10_000, `graceful stop took ${took} ms`);
    assert.match(con.text, /reboot: Power down/);
    assert.ok(end.stoppedAt! >= end.startedAt!);
    assert.equal(host.resources().memoryCommittedBytes, 0);

    await vm.start(); // a stopped VM starts again
    const again = new ConsoleText(vm);
    await again.waitFor('GASANG-READY', BOOT_MS);
    await vm.kill();
    assert.equal(vm.info().state, 'stopped');
    assert.deepEqual(vm.info().exit, { reason: 'killed' });

    await host.remove('life');
    assert.equal(existsSync(join(dir, 'vms', vm.id)), false);
  } finally {
    await host.close({ timeoutMs: 1000 });
    cleanup();
  }
});

test('a guest that ignores the power button is stopped by force after the timeout; 4 harts on 2 cores', async () => {
  const { dir, cleanup } = tempDir('forced');
  const host = new Host({ stateDir: dir });
  try {
    // rdinit=/bin/sh: a bare shell as init, with no listener for the button. Four harts on
    // this two-core host: a VM's harts share its one thread, so overcommit just works.
    const vm = await host.create({ name: 'deaf', memoryMiB: 128, cpus: 4, append: 'console=ttyS0 rdinit=/bin/sh' });
    await vm.start();
    const con = new ConsoleText(vm, true);
    await con.waitFor(/~ # /, BOOT_MS);
    await con.run('busybox mount -t proc proc /proc; busybox grep -c ^processor /proc/cpuinfo', /\r\n4\r\n/, 20_000);
    const t0 = performance.now();
    await vm.stop({ timeoutMs: 1500 });
    const took = performance.now() - t0;
    assert.ok(took >= 1500 && took < 8000, `forced stop took ${took} ms`);
    assert.equal(vm.info().state, 'stopped');
    assert.equal(vm.info().exit?.reason, 'stopped');
  } finally {
    await host.close({ timeoutMs: 1000 });
    cleanup();
  }
});
