/**
 * CPU shares and limits with real guests: busy shell loops in the bundled guest, CPU measured as
 * the VM threads' own CPU time (not wall time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.js';
import type { VmHandle } from './types.js';
import { ConsoleText, sleep, tempDir } from './testing.js';

const WINDOW_MS = 20_000;

async function busyVm(host: Host, name: string, spec: { cpuShares?: number; cpuLimit?: number }): Promise<VmHandle> {
  const vm = await host.create({ name, memoryMiB: 128, ...spec });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor('GASANG-READY', 120_000);
  await con.run('echo looping; while :; do :; done', /\r\nlooping/, 20_000);
  return vm;
}

const cpu = (vm: VmHandle): number => vm.info().usage.cpuSeconds;

test('two busy guests with shares 1:3 on one core get CPU 1:3 (within 10 %)', async t => {
  const { dir, cleanup } = tempDir('fair');
  const host = new Host({ stateDir: dir, cores: 1 });
  try {
    const [a, b] = await Promise.all([busyVm(host, 'one', { cpuShares: 256 }), busyVm(host, 'three', { cpuShares: 768 })]);
    await sleep(2000);
    const [a0, b0] = [cpu(a), cpu(b)];
    await sleep(WINDOW_MS);
    const [da, db] = [cpu(a) - a0, cpu(b) - b0];
    const ratio = db / da;
    t.diagnostic(`over ${WINDOW_MS / 1000} s: shares 256 → ${da.toFixed(2)} CPU s, shares 768 → ${db.toFixed(2)} CPU s, ratio ${ratio.toFixed(3)} (want 3)`);
    assert.ok(Math.abs(ratio - 3) <= 0.3, `ratio ${ratio}`);
    // One VM at a time is let run; one handed over finishes its slice (≤ 8 ms) first, so the
    // two overlap a little at each switch.
    assert.ok(da + db <= (WINDOW_MS / 1000) * 1.3, `about one core in all (${(da + db).toFixed(2)} CPU s)`);
  } finally {
    await host.close({ timeoutMs: 500 });
    cleanup();
  }
});

test('a busy guest with cpuLimit 20 stays under 20 % of a core', async t => {
  const { dir, cleanup } = tempDir('limit');
  const host = new Host({ stateDir: dir });
  try {
    const vm = await busyVm(host, 'limited', { cpuLimit: 20 });
    await sleep(1000);
    const c0 = cpu(vm), w0 = performance.now();
    await sleep(WINDOW_MS / 2);
    const pct = (100 * (cpu(vm) - c0)) / ((performance.now() - w0) / 1000);
    t.diagnostic(`cpuLimit 20: used ${pct.toFixed(2)} % of a core over ${WINDOW_MS / 2000} s`);
    assert.ok(pct <= 20.1 && pct >= 15, `used ${pct} %`); // 0.1: one 8 ms slice at the window's edge
  } finally {
    await host.close({ timeoutMs: 500 });
    cleanup();
  }
});
