/**
 * Ten VMs from one base image, each on its own qcow2 overlay made by gasang's storage code: the
 * host is closed and reopened in between (its SQLite store still lists them), each VM reads the
 * base and writes its own disk through its console, and all stop on the power button. The base
 * is never written; qemu-img checks the overlays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Host } from './host.js';
import { ConsoleText, tempDir } from './testing.js';

const N = 10;
const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

test('10 VMs on overlays of one base, across a host restart', async t => {
  const { dir, cleanup } = tempDir('fleet');
  const stateDir = join(dir, 'state');
  const base = join(dir, 'base.img');
  const disk = Buffer.alloc(4 << 20);
  disk.write('GASANG-BASE-DISK', 0);
  writeFileSync(base, disk);
  const baseSha = sha(base);
  const names = Array.from({ length: N }, (_, i) => `vm${i}`);
  let host: Host | undefined;
  try {
    host = new Host({ stateDir });
    for (const name of names) await host.create({ name, memoryMiB: 128, drives: [{ file: base, format: 'raw', overlay: true }] });
    await host.close();

    host = new Host({ stateDir });
    assert.deepEqual(host.list().map(v => [v.spec.name, v.state]), names.map(n => [n, 'created']));
    const t0 = performance.now();
    const fleet = host;
    await Promise.all(names.map(async (name, i) => {
      const vm = fleet.get(name);
      await vm.start();
      const con = new ConsoleText(vm, true);
      await con.waitFor('GASANG-READY', 300_000);
      await con.run('head -c 16 /dev/vda; echo', 'GASANG-BASE-DISK', 30_000);
      await con.run(`printf vm-${i}-disk | dd of=/dev/vda conv=notrunc 2>/dev/null; sync; head -c 9 /dev/vda; echo ' read back'`, `vm-${i}-disk read back`, 30_000);
    }));
    t.diagnostic(`${N} VMs booted and answered in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await Promise.all(names.map(n => fleet.get(n).stop({ timeoutMs: 30_000 })));
    for (const v of host.list()) assert.deepEqual([v.spec.name, v.state, v.exit], [v.spec.name, 'stopped', { reason: 'poweroff', code: 0 }]);
    await host.close();

    assert.equal(sha(base), baseSha, 'the base is never written');
    host = new Host({ stateDir });
    {
      for (const [i, v] of host.list().entries()) {
        assert.equal(v.state, 'stopped');
        const overlay = join(stateDir, 'vms', v.id, 'drive0.qcow2');
        const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' })) as Record<string, unknown>;
        assert.equal(info['format'], 'qcow2');
        assert.equal(resolve(String(info['full-backing-filename'])), base, 'backed by the base (stored relative to the overlay)');
        execFileSync('qemu-img', ['check', overlay]); // exits non-zero on any inconsistency
        const head = execFileSync('qemu-io', ['-r', '-c', 'read -v 0 16', overlay], { encoding: 'utf8' });
        assert.match(head, new RegExp(`vm.${i}.disk`), `${v.spec.name}'s own write is in its overlay`);
      }
      for (const name of names) await host.remove(name);
      assert.deepEqual(host.list(), []);
    }
  } finally {
    await host?.close({ timeoutMs: 1000 });
    cleanup();
  }
});
