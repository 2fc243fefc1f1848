import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtcDecompile, hasDtc } from './dtc-testing.js';
import { buildVirtFdt, isaExtensionsOf } from './virt-fdt.js';
import { fdtFind, fdtProp, fdtValue as v, parseFdt } from './fdt.js';
import { virtioBase, virtioIrq } from './memory-map.js';

const spec = {
  memoryBytes: 512 * 1024 * 1024,
  harts: 2,
  bootargs: 'console=ttyS0 earlycon',
  initrd: { start: 0x8820_0000, end: 0x8830_1234 },
  virtio: [0, 1].map((i) => ({ base: virtioBase(i), irq: virtioIrq(i) })),
  rngSeed: new Uint8Array(0),
};

/** The body of a node (up to its closing brace) in dtc output. */
function nodeText(dts: string, name: string): string {
  const start = dts.indexOf(`\t${name} {`);
  assert.ok(start >= 0, `node ${name} in dts`);
  return dts.slice(start, dts.indexOf('};', start));
}

test('dtc reads the virt tree with the properties Linux and OpenSBI look for', { skip: !hasDtc && 'dtc not installed' }, () => {
  const dts = dtcDecompile(buildVirtFdt(spec));
  const chosen = nodeText(dts, 'chosen');
  assert.match(chosen, /bootargs = "console=ttyS0 earlycon";/);
  assert.match(chosen, /stdout-path = "\/soc\/serial@10000000";/);
  assert.match(chosen, /linux,initrd-start = <0x00 0x88200000>;/);
  assert.match(chosen, /linux,initrd-end = <0x00 0x88301234>;/);
  assert.match(nodeText(dts, 'memory@80000000'), /reg = <0x00 0x80000000 0x00 0x20000000>;/);
  assert.match(dts, /timebase-frequency = <0x989680>;/);
  const cpu1 = nodeText(dts, 'cpu@1');
  assert.match(cpu1, /device_type = "cpu";/);
  assert.match(cpu1, /reg = <0x01>;/);
  assert.match(cpu1, /status = "okay";/);
  assert.match(cpu1, /riscv,isa = "rv64imafdc_zicond_zicsr_zifencei_zba_zbb_zbs";/);
  assert.match(cpu1, /riscv,isa-base = "rv64i";/);
  assert.match(cpu1, /riscv,isa-extensions = "i\\0m\\0a\\0f\\0d\\0c\\0zicsr\\0zifencei\\0zicntr\\0zicond\\0zba\\0zbb\\0zbs";/);
  assert.match(cpu1, /mmu-type = "riscv,sv48";/);
  assert.match(cpu1, /compatible = "riscv,cpu-intc";/);
  assert.match(nodeText(dts, 'core1'), /cpu = <0x04>;/);
  const plic = nodeText(dts, 'plic@c000000');
  assert.match(plic, /riscv,ndev = <0x5f>;/);
  assert.match(plic, /reg = <0x00 0xc000000 0x00 0x600000>;/);
  assert.match(plic, /interrupts-extended = <0x01 0x0b 0x01 0x09 0x02 0x0b 0x02 0x09>;/);
  assert.match(plic, /compatible = "sifive,plic-1.0.0\\0riscv,plic0";/);
  assert.match(plic, /interrupt-controller;/);
  const clint = nodeText(dts, 'clint@2000000');
  assert.match(clint, /interrupts-extended = <0x01 0x03 0x01 0x07 0x02 0x03 0x02 0x07>;/);
  assert.match(clint, /compatible = "sifive,clint0\\0riscv,clint0";/);
  const serial = nodeText(dts, 'serial@10000000');
  assert.match(serial, /interrupts = <0x0a>;/);
  assert.match(serial, /interrupt-parent = <0x05>;/);
  assert.match(serial, /compatible = "ns16550a";/);
  assert.match(nodeText(dts, 'test@100000'), /compatible = "sifive,test1\\0sifive,test0\\0syscon";/);
  assert.match(nodeText(dts, 'poweroff'), /value = <0x5555>;[\s\S]*regmap = <0x06>;[\s\S]*compatible = "syscon-poweroff";/);
  assert.match(nodeText(dts, 'reboot'), /value = <0x7777>;[\s\S]*compatible = "syscon-reboot";/);
  assert.match(nodeText(dts, 'rtc@101000'), /interrupts = <0x0b>;[\s\S]*compatible = "google,goldfish-rtc";/);
  assert.match(nodeText(dts, 'virtio_mmio@10002000'), /interrupts = <0x02>;[\s\S]*reg = <0x00 0x10002000 0x00 0x1000>;[\s\S]*compatible = "virtio,mmio";/);
});

test('the serial clock is 3.6864 MHz and phandles resolve', () => {
  const { root } = parseFdt(buildVirtFdt(spec));
  const serial = fdtFind(root, '/soc/serial@10000000')!;
  assert.deepEqual(fdtProp(serial, 'clock-frequency'), v.u32(3_686_400));
  const plic = fdtFind(root, '/soc/plic@c000000')!;
  assert.deepEqual(fdtProp(serial, 'interrupt-parent'), fdtProp(plic, 'phandle'));
  const intc0 = fdtFind(root, '/cpus/cpu@0/interrupt-controller')!;
  assert.deepEqual(fdtProp(plic, 'interrupts-extended')!.subarray(0, 4), fdtProp(intc0, 'phandle'));
});

test('options: no bootargs, no initrd, a big memory, a custom ISA, an rng seed', () => {
  const { root } = parseFdt(
    buildVirtFdt({ memoryBytes: 5 * 2 ** 30, harts: 1, bootargs: '', isa: 'rv64gc_zba', rngSeed: new Uint8Array(8).fill(7) }),
  );
  const chosen = fdtFind(root, '/chosen')!;
  assert.equal(fdtProp(chosen, 'bootargs'), undefined);
  assert.equal(fdtProp(chosen, 'linux,initrd-start'), undefined);
  assert.deepEqual(fdtProp(chosen, 'rng-seed'), new Uint8Array(8).fill(7));
  assert.deepEqual(fdtProp(fdtFind(root, '/memory@80000000')!, 'reg'), v.u64(0x8000_0000, 5 * 2 ** 30));
  const cpu = fdtFind(root, '/cpus/cpu@0')!;
  assert.deepEqual(fdtProp(cpu, 'riscv,isa'), v.string('rv64gc_zba'));
  assert.deepEqual(fdtProp(cpu, 'riscv,isa-extensions'), v.strings('i', 'm', 'a', 'f', 'd', 'zicsr', 'zifencei', 'c', 'zba'));
  assert.equal(fdtFind(root, '/cpus/cpu@1'), undefined);
  // Default: a fresh 32-byte seed.
  const seeded = parseFdt(buildVirtFdt({ memoryBytes: 2 ** 28, harts: 1, bootargs: '' }));
  assert.equal(fdtProp(fdtFind(seeded.root, '/chosen')!, 'rng-seed')!.length, 32);
});

test('isaExtensionsOf expands g and splits multi-letter extensions', () => {
  assert.deepEqual(isaExtensionsOf('rv64imac_zicsr'), ['i', 'm', 'a', 'c', 'zicsr']);
  assert.throws(() => isaExtensionsOf('x86'), /Invalid ISA/);
});
