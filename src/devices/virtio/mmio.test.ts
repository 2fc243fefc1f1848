import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Feature } from './device.js';
import { Isr, MAGIC, Reg, Status, VENDOR_ID, VirtioMmio } from './mmio.js';
import { VirtioRng, RNG_QUEUE_SIZE } from './rng/device.js';
import { VirtioConsole } from './console/device.js';
import { TestDriver } from './testing.js';

const ALL = Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK;

test('identification registers: magic, version 2, device id, vendor; no shared memory', () => {
  const d = new TestDriver(new VirtioRng());
  assert.equal(d.reg(Reg.MAGIC), MAGIC);
  assert.equal(d.reg(Reg.MAGIC), 0x74726976);
  assert.equal(d.reg(Reg.VERSION), 2);
  assert.equal(d.reg(Reg.DEVICE_ID), 4);
  assert.equal(d.reg(Reg.VENDOR_ID), VENDOR_ID);
  assert.equal(d.reg(Reg.SHM_LEN_LOW), 0xffffffff);
  assert.equal(d.reg(Reg.SHM_LEN_HIGH), 0xffffffff);
  // Narrow reads of a register see its bytes (Linux never does them, but they must not throw).
  assert.equal(d.transport.read(Reg.MAGIC, 1), 0x76);
  assert.equal(d.transport.read(Reg.MAGIC + 2, 2), 0x7472);
});

test('features: the device bits plus VERSION_1, INDIRECT_DESC, EVENT_IDX, in two selectable words', () => {
  const d = new TestDriver(new VirtioRng());
  const [lo, hi] = d.offered();
  assert.equal(lo, (Feature.INDIRECT_DESC | Feature.EVENT_IDX) >>> 0);
  assert.equal(hi, Feature.VERSION_1_HI);
  d.setReg(Reg.DEVICE_FEATURES_SEL, 2);
  assert.equal(d.reg(Reg.DEVICE_FEATURES), 0, 'words beyond 1 are 0');
});

test('FEATURES_OK is refused for features not offered and without VERSION_1, accepted otherwise', () => {
  const d = new TestDriver(new VirtioRng());
  const negotiate = (lo: number, hi: number): number => {
    d.setReg(Reg.STATUS, 0);
    d.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    d.setReg(Reg.DRIVER_FEATURES_SEL, 0);
    d.setReg(Reg.DRIVER_FEATURES, lo);
    d.setReg(Reg.DRIVER_FEATURES_SEL, 1);
    d.setReg(Reg.DRIVER_FEATURES, hi);
    d.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    return d.reg(Reg.STATUS);
  };
  assert.equal(negotiate(1 << 5, 1) & Status.FEATURES_OK, 0, 'bit 5 was not offered');
  assert.equal(negotiate(0, 0) & Status.FEATURES_OK, 0, 'legacy (no VERSION_1) is not supported');
  assert.equal(negotiate(0, 1 << 3) & Status.FEATURES_OK, 0, 'high bit not offered');
  assert.equal(negotiate(Feature.EVENT_IDX, 1) & Status.FEATURES_OK, Status.FEATURES_OK);
  assert.equal(d.transport.queues[0]!.eventIdx, true);
  assert.equal(d.transport.queues[0]!.indirect, false);
  // DriverFeatures cannot change once FEATURES_OK is set.
  d.setReg(Reg.DRIVER_FEATURES_SEL, 0);
  d.setReg(Reg.DRIVER_FEATURES, 0);
  assert.equal(d.transport.errors, 1);
  assert.equal(d.transport.queues[0]!.eventIdx, true);
});

test('queue registers: max size, size, addresses, ready; changes while ready are refused', () => {
  const d = new TestDriver(new VirtioRng());
  d.setReg(Reg.QUEUE_SEL, 0);
  assert.equal(d.reg(Reg.QUEUE_NUM_MAX), RNG_QUEUE_SIZE);
  d.setReg(Reg.QUEUE_SEL, 1);
  assert.equal(d.reg(Reg.QUEUE_NUM_MAX), 0, 'a queue that does not exist has max size 0');
  assert.equal(d.reg(Reg.QUEUE_READY), 0);
  d.init({ sizes: [16] });
  d.setReg(Reg.QUEUE_SEL, 0);
  assert.equal(d.reg(Reg.QUEUE_READY), 1);
  const q = d.transport.queues[0]!;
  assert.equal(q.size, 16);
  assert.equal(q.descAddr, d.queues[0]!.desc);
  assert.equal(q.driverAddr, d.queues[0]!.avail);
  assert.equal(q.deviceAddr, d.queues[0]!.used);
  d.setReg(Reg.QUEUE_NUM, 8);
  assert.equal(q.size, 16, 'QueueNum ignored while ready');
  assert.equal(d.transport.errors, 1);
  assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
});

test('a ring outside RAM or a size above the maximum is refused with DEVICE_NEEDS_RESET', () => {
  for (const bad of ['size', 'address', 'misaligned'] as const) {
    const d = new TestDriver(new VirtioRng());
    d.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    d.setReg(Reg.QUEUE_SEL, 0);
    d.setReg(Reg.QUEUE_NUM, bad === 'size' ? RNG_QUEUE_SIZE * 2 : 8);
    d.setReg(Reg.QUEUE_DESC_LOW, bad === 'address' ? 0x1000 : bad === 'misaligned' ? 0x8000_1008 : 0x8000_1000);
    d.setReg(Reg.QUEUE_DRIVER_LOW, 0x8000_2000);
    d.setReg(Reg.QUEUE_DEVICE_LOW, 0x8000_3000);
    d.setReg(Reg.QUEUE_READY, 1);
    assert.equal(d.reg(Reg.QUEUE_READY), 0, bad);
    assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET, bad);
    assert.equal(d.logged.length, 1, bad);
  }
});

test('used buffers raise the line until InterruptACK; status 0 resets everything', () => {
  const d = new TestDriver(new VirtioRng());
  d.init();
  assert.equal(d.reg(Reg.STATUS), ALL);
  const buf = d.alloc(32);
  d.submit(0, [{ addr: buf, len: 32, write: true }]);
  assert.equal(d.irq, false, 'nothing before the kick');
  d.kick(0);
  assert.equal(d.irq, true);
  assert.equal(d.reg(Reg.INTERRUPT_STATUS), Isr.USED_BUFFER);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 32 }]);
  assert.notDeepEqual(d.bytes(buf, 32), new Uint8Array(32));
  d.setReg(Reg.INTERRUPT_ACK, Isr.USED_BUFFER);
  assert.equal(d.irq, false);
  assert.equal(d.reg(Reg.INTERRUPT_STATUS), 0);
  assert.equal(d.irqRaises, 1);

  d.submit(0, [{ addr: buf, len: 8, write: true }]);
  d.kick(0);
  assert.equal(d.irq, true);
  d.setReg(Reg.STATUS, 0);
  assert.equal(d.irq, false, 'reset clears InterruptStatus');
  assert.equal(d.reg(Reg.STATUS), 0);
  d.setReg(Reg.QUEUE_SEL, 0);
  assert.equal(d.reg(Reg.QUEUE_READY), 0);
  assert.equal(d.transport.activated, false);
  // A kick on a reset device does nothing.
  d.kick(0);
  assert.equal(d.irq, false);
});

test('notifications before DRIVER_OK or for unknown queues are ignored; DRIVER_OK without FEATURES_OK needs reset', () => {
  const d = new TestDriver(new VirtioRng());
  d.kick(0);
  d.kick(7);
  assert.equal(d.transport.errors, 0);
  d.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.DRIVER_OK);
  assert.equal(d.transport.activated, false);
  assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
  // The driver cannot clear DEVICE_NEEDS_RESET except by resetting.
  d.setReg(Reg.STATUS, Status.ACKNOWLEDGE);
  assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
  d.init();
  assert.equal(d.reg(Reg.STATUS), ALL);
});

test('a guest error after DRIVER_OK raises the configuration-change interrupt', () => {
  const d = new TestDriver(new VirtioRng());
  d.init();
  d.makeAvailable(0, 1000); // head outside the queue
  d.kick(0);
  assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
  assert.equal(d.reg(Reg.INTERRUPT_STATUS), Isr.CONFIG_CHANGE);
  assert.match(d.logged[0]!, /^virtio-rng: queue 0: head descriptor 1000 outside queue of 64$/);
});

test('narrow register writes are refused; config space takes any width', () => {
  const d = new TestDriver(new VirtioRng());
  d.transport.write(Reg.STATUS, 1, Status.ACKNOWLEDGE);
  assert.equal(d.reg(Reg.STATUS), Status.DEVICE_NEEDS_RESET);
  assert.equal(d.transport.errors, 1);
  assert.equal(d.transport.read(Reg.CONFIG, 1), 0);
  assert.equal(d.reg(Reg.CONFIG_GENERATION), 0);
});

test('errors are logged a bounded number of times but always counted', () => {
  const d = new TestDriver(new VirtioRng());
  for (let i = 0; i < 100; i++) d.transport.write(Reg.STATUS, 2, 1);
  assert.equal(d.transport.errors, 100);
  assert.equal(d.logged.length, 8);
});

test('save → restore → save is the identity, and the restored device keeps serving', () => {
  const out: number[] = [];
  const d = new TestDriver(new VirtioConsole({ output: b => out.push(...b) }));
  d.init({ sizes: [8, 8] });
  const rx = d.alloc(4);
  d.submit(0, [{ addr: rx, len: 4, write: true }]);
  d.kick(0);
  const msg = d.alloc(3, new TextEncoder().encode('hi\n'));
  d.submit(1, [{ addr: msg, len: 3 }]);
  d.kick(1);
  assert.deepEqual(out, [...Buffer.from('hi\n')]);
  (d.device as VirtioConsole).input(Buffer.from('abcdef'));
  const state = d.transport.save();
  assert.deepEqual(JSON.parse(JSON.stringify(state)), state, 'plain JSON');
  assert.deepEqual(state.device, { pending: [...Buffer.from('ef')] });

  // Restore into a fresh transport + device over the same RAM.
  const out2: number[] = [];
  const console2 = new VirtioConsole({ output: b => out2.push(...b) });
  const t2 = new VirtioMmio({ device: console2, mem: d.mem, irq: () => {} });
  t2.restore(state);
  assert.deepEqual(t2.save(), state);
  assert.equal(t2.activated, true);
  // The restored device continues where the first stopped: a new receive buffer gets the pending "ef".
  const rx2 = d.alloc(4);
  d.submit(0, [{ addr: rx2, len: 4, write: true }]);
  t2.write(Reg.QUEUE_NOTIFY, 4, 0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 4 }, { id: 1, len: 2 }]);
  assert.equal(Buffer.from(d.bytes(rx2, 2)).toString(), 'ef');
});
