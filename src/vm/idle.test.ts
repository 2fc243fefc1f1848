/**
 * Fifty idle VMs (the bundled guest at its shell prompt): the host's CPU over 10 s, and the host
 * memory per VM beyond its guest RAM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host } from './host.js';
import { ConsoleText, processCpuOver, sleep, tempDir } from './testing.js';

const N = 50;

test('50 idle VMs cost a few percent of one core', async t => {
  const { dir, cleanup } = tempDir('idle');
  const host = new Host({ stateDir: dir });
  try {
    const t0 = performance.now();
    // Started in waves of 10 so that boots do not starve each other for minutes.
    for (let wave = 0; wave < N; wave += 10) {
      await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const vm = await host.create({ name: `idle${wave + i}`, memoryMiB: 128 });
        await vm.start();
        const con = new ConsoleText(vm);
        await con.waitFor('GASANG-READY', 300_000);
        con.client.detach();
      }));
    }
    const bootS = (performance.now() - t0) / 1000;
    // Just after boot the guests' and V8's own after-boot work (timers, JIT compiles, heap
    // shrinking) still runs; the steady state is what an idle host costs.
    await sleep(10_000);
    const early = (100 * await processCpuOver(10_000)) / 10;
    await sleep(20_000);
    const pct = (100 * await processCpuOver(10_000)) / 10;
    const overhead = host.list()[0]!.usage.hostOverheadBytes / 2 ** 20;
    t.diagnostic(`${N} VMs booted in ${bootS.toFixed(1)} s (${(N / bootS).toFixed(2)} VMs/s); idle: ${early.toFixed(2)} % of one core 10-20 s after the last boot, ${pct.toFixed(2)} % 40-50 s after; host memory per VM beyond guest RAM: ${overhead.toFixed(1)} MiB`);
    assert.ok(host.list().every(v => v.state === 'running'));
    assert.ok(pct <= 5, `${N} idle VMs used ${pct.toFixed(2)} % of a core`);
  } finally {
    await host.close({ timeoutMs: 60_000 });
    cleanup();
  }
});
