import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtMachine, type VirtSpec } from './virt.js';
import { virtioBase, virtioIrq, VIRTIO_COUNT } from './memory-map.js';
import { dtcDecompile, hasDtc } from './dtc-testing.js';
import { Reg } from '../devices/virtio/mmio.js';
import { RawDisk } from '../storage/raw.js';
import { GasangError } from '../util/errors.js';

const GUEST = join(import.meta.dirname, '..', '..', '..', 'guest', 'default');
const base: VirtSpec = {
  memoryMiB: 64, cpus: 1, append: '',
  firmware: join(GUEST, 'fw_jump.bin'), kernel: join(GUEST, 'Image.gz'),
};
const dir = mkdtempSync(join(tmpdir(), 'gasang-virt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function disk(name: string): RawDisk {
  const path = join(dir, name);
  writeFileSync(path, new Uint8Array(1 << 20));
  return RawDisk.open(path);
}

test('virtio devices take slots in order: drives, consoles, rng; empty slots stay unmapped', async () => {
  const vm = await VirtMachine.create({ ...base, drives: [{ disk: disk('a') }, { disk: disk('b') }], consoles: 1, rng: true }, { output: () => {} });
  const id = (slot: number): number => vm.bus.read(virtioBase(slot) + Reg.DEVICE_ID, 4);
  assert.deepEqual([0, 1, 2, 3].map(id), [2, 2, 3, 4]);
  assert.equal(vm.bus.read(virtioBase(0) + Reg.MAGIC, 4), 0x74726976);
  assert.equal(vm.bus.read(virtioBase(4), 4), -1, 'slot 4 is empty');
  assert.equal(vm.drives.length, 2);
  assert.equal(vm.consoles.length, 1);
  if (hasDtc) {
    const dts = dtcDecompile(vm.fdt);
    for (let slot = 0; slot < 4; slot++) {
      const node = new RegExp(`virtio_mmio@${virtioBase(slot).toString(16)} \\{[^}]*interrupts = <0x${virtioIrq(slot).toString(16).padStart(2, "0")}>;[^}]*compatible = "virtio,mmio";`);
      assert.match(dts, node, `slot ${slot}`);
    }
    assert.doesNotMatch(dts, new RegExp(`virtio_mmio@${virtioBase(4).toString(16)}`));
  }
  for (const v of vm.virtio) v.close();
});

test('more virtio devices than slots is refused', async () => {
  const drives = Array.from({ length: VIRTIO_COUNT }, (_, i) => ({ disk: disk(`d${i}`) }));
  await assert.rejects(VirtMachine.create({ ...base, drives, rng: true }, { output: () => {} }), (e: unknown) => {
    assert.ok(e instanceof GasangError);
    assert.equal(e.message, '9 virtio devices; the board has 8 slots');
    return true;
  });
  for (const d of drives) d.disk.close();
});

test('a device interrupt reaches the PLIC source of its slot', async () => {
  const vm = await VirtMachine.create({ ...base, rng: true }, { output: () => {} });
  const t = vm.virtio[0]!;
  t.fail('test: raise the configuration interrupt'); // not activated: status only
  assert.equal(vm.plic.isPending(virtioIrq(0)), false);
  // Activate with no queues in use, then fail: the configuration-change interrupt is raised on source 1.
  t.write(Reg.STATUS, 4, 0);
  for (const s of [1, 3]) t.write(Reg.STATUS, 4, s);
  t.write(Reg.DRIVER_FEATURES_SEL, 4, 1);
  t.write(Reg.DRIVER_FEATURES, 4, 1);
  t.write(Reg.STATUS, 4, 11);
  t.write(Reg.STATUS, 4, 15);
  assert.equal(t.activated, true);
  t.fail('test');
  assert.equal(vm.plic.isPending(virtioIrq(0)), true);
  t.write(Reg.INTERRUPT_ACK, 4, 2);
  assert.equal(vm.plic.isPending(virtioIrq(0)), false);
});
