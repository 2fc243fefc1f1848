/**
 * Clones of a host's VMs: ten clones of one running VM each continue its snapshot under their own
 * name and MAC address (set by the guest agent) with their own copy of its disk, the source
 * running on; a stopped source clones from its own snapshot; a VM whose writable disk is not an
 * overlay cannot be cloned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from './host.js';
import { vmMac } from './spec.js';
import { HostError, type VmHandle } from './types.js';
import { ConsoleText, tempDir } from './testing.js';

const CLONES = 10;
/** The first 16 bytes of the guest's disk, as text. */
const READ_DISK = 'dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -dc a-z0-9-; echo';
const writeDisk = (text: string): string => `printf '%-16s' ${text} | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null; echo wrote`;

async function identity(vm: VmHandle, name: string): Promise<ConsoleText> {
  const con = new ConsoleText(vm, true);
  await con.run('echo "id=$(hostname)/$(cat /sys/class/net/eth0/address)"', `id=${name}/${vmMac(name, 0)}`, 20_000);
  return con;
}

test('ten clones of a running VM each answer with their own name, MAC and disk; the source runs on', { timeout: 600_000 }, async t => {
  const { dir, cleanup } = tempDir('vm-clone');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const base = join(dir, 'base.raw');
  writeFileSync(base, new Uint8Array(1 << 20));
  const src = await host.create({ name: 'src', memoryMiB: 128, drives: [{ file: base, overlay: true }], nics: [{ type: 'user' }] });
  await src.start();
  const con = new ConsoleText(src, true);
  await con.waitFor('GASANG-READY', 60_000);
  await con.run(writeDisk('from-src'), 'wrote', 10_000);

  const t0 = performance.now();
  const clones = [];
  for (let k = 0; k < CLONES; k++) {
    const c = await host.clone('src', { name: `clone-${k}` });
    assert.equal(c.identity, true, `clone-${k} took its identity`);
    assert.equal(c.vm.state, 'running');
    clones.push(c);
  }
  const seconds = (performance.now() - t0) / 1000;
  t.diagnostic(`${CLONES} clones in ${seconds.toFixed(2)} s (${(CLONES / seconds).toFixed(1)}/s); start ${clones.map(c => c.startMs.toFixed(0)).join(' ')} ms; identity ${clones.map(c => c.identityMs!.toFixed(0)).join(' ')} ms`);

  const consoles: ConsoleText[] = [];
  for (let k = 0; k < CLONES; k++) {
    const name = `clone-${k}`;
    const c = await identity(host.get(name), name);
    await c.run(READ_DISK, 'from-src', 10_000); // the source's disk as the snapshot saw it
    await c.run(writeDisk(`from-${k}`), 'wrote', 10_000);
    consoles.push(c);
  }
  // Each disk is its own: the source and every clone read what they wrote last.
  await con.run(READ_DISK, /\nfrom-src\r\n/, 10_000);
  await con.run('echo "id=$(hostname)"', 'id=gasang', 10_000);
  for (const [k, c] of consoles.entries()) await c.run(READ_DISK, new RegExp(`\\nfrom-${k}\\r\\n`), 10_000);

  // A stopped source clones from its own snapshot.
  await src.snapshot({ stop: true });
  const late = await host.clone('src', { name: 'late' });
  assert.equal(late.file, join(dir, 'state', 'vms', src.id, 'snapshot.gsnap'));
  await identity(host.get('late'), 'late');
  await assert.rejects(host.clone('src', { name: 'late' }), (e: unknown) => e instanceof HostError && e.kind === 'conflict');
  for (const vm of host.list()) await host.get(vm.id).kill();

  const inPlace = await host.create({ name: 'in-place', memoryMiB: 128, drives: [{ file: base }] });
  await assert.rejects(host.clone(inPlace.name, { name: 'x' }), (e: unknown) => e instanceof HostError && e.kind === 'invalid' && /drives\[0\] .* is written in place/.test(e.message));
  await assert.rejects(host.clone('src', { name: 'x', file: join(dir, 'none.snap') }), /none\.snap: No such file/);
  assert.deepEqual(host.list().map(v => v.spec.name).sort(), ['clone-0', 'clone-1', 'clone-2', 'clone-3', 'clone-4', 'clone-5', 'clone-6', 'clone-7', 'clone-8', 'clone-9', 'in-place', 'late', 'src'], 'no VM left from a failed clone');
});
