/**
 * Guests that misbehave harm only themselves: one spins with interrupts off, one traps forever in
 * M-mode through a broken trap vector, one floods its console, and one's emulation throws. A
 * normal guest beside them still boots and answers on its console.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.js';
import { ConsoleText, hostileGuest, sleep, tempDir } from './testing.js';

const HOSTILE = {
  // Machine interrupts off, then a tight loop: nothing but the host can take the hart back.
  spin: 'csrci mstatus, 8\n1: j 1b',
  // mtvec points at unmapped memory: ebreak traps there, fetching it faults, and so on forever.
  trap: 'li t0, 0x1000\ncsrw mtvec, t0\nebreak',
  // Writes to the UART's transmit register as fast as it can, never checking LSR.
  flood: 'li t0, 0x10000000\nli t1, 0x78\n1: sb t1, 0(t0)\nj 1b',
};

test('hostile guests do not disturb a normal one, and a crash ends only its VM', async t => {
  const { dir, cleanup } = tempDir('hostile');
  const host = new Host({ stateDir: `${dir}/state` });
  try {
    const bad = await Promise.all(Object.entries(HOSTILE).map(async ([name, source]) => {
      const g = hostileGuest(dir, name, source);
      const vm = await host.create({ name, firmware: g.firmware, kernel: g.kernel, memoryMiB: 16 });
      await vm.start();
      return vm;
    }));
    let floodBytes = 0, floodTail = '';
    host.get('flood').attachConsole().onData(b => { floodBytes += b.length; floodTail = Buffer.from(b.subarray(-100)).toString('latin1'); });
    const good = await host.create({ name: 'good', memoryMiB: 128 });
    const t0 = performance.now();
    await good.start();
    const con = new ConsoleText(good, true);
    await con.waitFor('GASANG-READY', 120_000);
    const bootMs = performance.now() - t0;
    const r0 = performance.now();
    await con.run('echo still-$((1+1))-here', 'still-2-here', 10_000);
    const replyMs = performance.now() - r0;
    t.diagnostic(`beside 3 hostile guests: boot to shell ${(bootMs / 1000).toFixed(1)} s, command answered in ${replyMs.toFixed(0)} ms`);

    for (const vm of bad) assert.equal(vm.info().state, 'running', `${vm.name} still runs (contained, not crashed)`);
    assert.ok(host.get('spin').info().usage.instructions > 1e6, 'the spinner did spin');
    assert.ok(host.get('trap').info().usage.cpuSeconds > 0.1, 'the trapper used CPU');
    assert.ok(floodBytes > 10_000 && /^x+$/.test(floodTail), `the flood reached the console (${floodBytes} bytes)`);
    t.diagnostic(`the flooding guest wrote ${(floodBytes / 2 ** 20).toFixed(1)} MiB to its console meanwhile`);

    host.get('spin').injectFault(); // an exception inside the VM thread
    const crashed = await host.get('spin').waitStopped();
    assert.equal(crashed.state, 'crashed');
    assert.match(crashed.exit?.message ?? '', /Injected fault/);
    await sleep(500);
    await con.run('echo after-crash', 'after-crash', 10_000);
    assert.equal(host.get('trap').info().state, 'running');

    // None of them listens for the power button: forced stops after the timeout.
    await Promise.all(['trap', 'flood'].map(n => host.get(n).stop({ timeoutMs: 500 })));
    for (const n of ['trap', 'flood']) assert.equal(host.get(n).info().exit?.reason, 'stopped');
    await good.stop({ timeoutMs: 20_000 });
    assert.equal(good.info().exit?.reason, 'poweroff');
  } finally {
    await host.close({ timeoutMs: 500 });
    cleanup();
  }
});

test('a VM thread that hangs in emulation is ended by the watchdog; the guest beside it carries on', async t => {
  const { dir, cleanup } = tempDir('hang');
  const host = new Host({ stateDir: `${dir}/state` });
  try {
    const [victim, good] = await Promise.all(['victim', 'good'].map(async name => {
      const vm = await host.create({ name, memoryMiB: 128 });
      await vm.start();
      const con = new ConsoleText(vm, true);
      await con.waitFor('GASANG-READY', 120_000);
      return { vm, con };
    }));
    // The victim idles at its shell (its thread last said "idle") when its emulation starts looping.
    await sleep(500);
    const t0 = performance.now();
    host.get('victim').injectFault('hang');
    await good!.con.run('echo while-it-hangs', 'while-it-hangs', 10_000);
    const end = await victim!.vm.waitStopped();
    const s = (performance.now() - t0) / 1000;
    t.diagnostic(`hung thread ended after ${s.toFixed(1)} s`);
    assert.equal(end.state, 'crashed');
    assert.match(end.exit?.message ?? '', /Emulation hung/);
    assert.ok(s < 20, `ended within 20 s (5 s of CPU time without progress, then the next watchdog tick): ${s.toFixed(1)} s`);
    await good!.con.run('echo after-the-hang', 'after-the-hang', 10_000);
    await good!.vm.stop({ timeoutMs: 20_000 });
    assert.equal(good!.vm.info().exit?.reason, 'poweroff');
  } finally {
    await host.close({ timeoutMs: 500 });
    cleanup();
  }
});
