/**
 * Snapshots of a host's VMs: taken from a running and from a paused VM (its thread held), the
 * VM stopped after one, restored in a new thread where it left off; files that are not its
 * snapshot are refused and the VM stays stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from './host.js';
import { HostError } from './types.js';
import { ConsoleText, tempDir } from './testing.js';

const counts = (text: string): number[] => [...text.matchAll(/N=(\d+)\r\n/g)].map(m => Number(m[1]));

test('snapshot a running and a paused VM, stop after one, restore: the count goes on; a bad file is refused', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('vm-snapshot');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const base = join(dir, 'base.raw');
  writeFileSync(base, new Uint8Array(1 << 20));
  const vm = await host.create({ name: 'snap', memoryMiB: 128, drives: [{ file: base, overlay: true }] });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor('GASANG-READY', 60_000);
  await con.run('echo disk-$(cat /sys/block/vda/size)', 'disk-2048', 10_000);
  con.client.write('i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo N=$i; sleep 0.05; done\n');
  await con.waitFor('N=5\r\n', 30_000);

  // Progress shows in the VM's info while the file is written, and goes when it is done.
  const seen: NonNullable<ReturnType<typeof vm.info>['snapshot']>[] = [];
  const watch = setInterval(() => { const p = vm.info().snapshot; if (p) seen.push(p); }, 2);
  const running = await vm.snapshot({ file: join(dir, 'running.snap') }).finally(() => clearInterval(watch));
  assert.ok(seen.some(p => p.pagesWritten > 0 && p.pagesToWrite === running.storedPages), `progress seen: ${JSON.stringify(seen.at(-1))}`);
  assert.equal(vm.info().snapshot, undefined);
  assert.equal(vm.info().state, 'running');
  assert.ok(running.bytes > 1 << 20 && running.storedPages < running.ramPages && running.pauseMs > 0, JSON.stringify(running));
  t.diagnostic(`running VM: ${JSON.stringify(running)}`);

  await vm.pause();
  const paused = await vm.snapshot({ stop: true });
  assert.equal(paused.file, join(dir, 'state', 'vms', vm.id, 'snapshot.gsnap'));
  const info = vm.info();
  assert.deepEqual([info.state, info.exit?.reason], ['stopped', 'stopped']);
  const before = counts(con.text);
  const last = before[before.length - 1]!;
  assert.ok(last < 60, 'stopped in the middle of the loop');
  // The qcow2 overlay holds an internal snapshot per snapshot file.
  const overlay = join(dir, 'state', 'vms', vm.id, 'drive0.qcow2');
  assert.match(execFileSync('qemu-img', ['snapshot', '-l', overlay], { encoding: 'utf8' }), /gasang-snapshot\.gsnap-.*\n(.*\n)*.*gasang-running\.snap-|gasang-running\.snap-.*\n(.*\n)*.*gasang-snapshot\.gsnap-/);

  const bad = join(dir, 'bad.snap');
  writeFileSync(bad, 'GASANGSS but nothing else');
  await assert.rejects(vm.restore({ file: bad }), (e: unknown) => e instanceof HostError && e.kind === 'invalid' && /Cannot restore snap: .*bad\.snap is truncated/.test(e.message));
  assert.equal(vm.info().state, 'stopped');

  con.client.detach();
  const again = new ConsoleText(vm, true);
  await vm.restore();
  assert.equal(vm.info().state, 'running');
  await again.waitFor('N=60\r\n', 60_000);
  const after = counts(again.text.slice(again.start));
  assert.deepEqual(after, Array.from({ length: 60 - last }, (_, i) => last + 1 + i), 'the count goes on from where the snapshot held it');
  await again.run('echo restored-$((6*7))', 'restored-42', 10_000);
  await vm.kill();

  // The earlier snapshot of the running VM restores too (its disk returns to that instant).
  again.client.detach();
  const third = new ConsoleText(vm, true);
  await vm.restore({ file: running.file });
  await third.waitFor('N=60\r\n', 60_000);
  await vm.kill();
});
