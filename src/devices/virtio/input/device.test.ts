import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reg } from '../mmio.js';
import { TestDriver } from '../testing.js';
import { Ev, INPUT_BACKLOG, KEY_POWER, SYN_REPORT, VirtioInput } from './device.js';

const KEY_A = 30;

function setup() {
  const dev = new VirtioInput({ name: 'test keys', serial: 'k0', events: new Map([[Ev.KEY, [KEY_A, KEY_POWER]]]), ids: { vendor: 0x1af4, product: 2, version: 3 } });
  return { dev, d: new TestDriver(dev) };
}

/** What Linux's virtinput_cfg_select + virtio_cread_bytes do: select, subsel, then size and the union. */
function query(d: TestDriver, select: number, subsel: number): Uint8Array {
  d.transport.write(Reg.CONFIG, 1, select);
  d.transport.write(Reg.CONFIG + 1, 1, subsel);
  const size = d.transport.read(Reg.CONFIG + 2, 1);
  return Uint8Array.from({ length: size }, (_, i) => d.transport.read(Reg.CONFIG + 8 + i, 1));
}

/** Posts `n` 8-byte event buffers on the eventq. */
function post(d: TestDriver, n: number): number[] {
  const bufs = Array.from({ length: n }, () => d.alloc(8));
  for (const b of bufs) d.submit(0, [{ addr: b, len: 8, write: true }]);
  d.kick(0);
  return bufs;
}

function event(d: TestDriver, addr: number): [number, number, number] {
  const v = new DataView(d.bytes(addr, 8).buffer);
  return [v.getUint16(0, true), v.getUint16(2, true), v.getInt32(4, true)];
}

test('virtio-input: device id 18, two queues; config answers name, serial, ids and the key bitmap', () => {
  const { d } = setup();
  assert.equal(d.reg(Reg.DEVICE_ID), 18);
  d.init();
  assert.equal(d.queues.length, 2);
  assert.equal(Buffer.from(query(d, 0x01, 0)).toString(), 'test keys');
  assert.equal(Buffer.from(query(d, 0x02, 0)).toString(), 'k0');
  assert.deepEqual([...query(d, 0x03, 0)], [0x06, 0, 0xf4, 0x1a, 2, 0, 3, 0], 'BUS_VIRTUAL, vendor, product, version');
  const keys = query(d, 0x11, Ev.KEY);
  assert.equal(keys.length, (KEY_POWER >> 3) + 1);
  const set = [...keys].flatMap((b, i) => [0, 1, 2, 3, 4, 5, 6, 7].filter(j => b & (1 << j)).map(j => 8 * i + j));
  assert.deepEqual(set, [KEY_A, KEY_POWER]);
  assert.equal(query(d, 0x11, 0x02).length, 0, 'no EV_REL');
  assert.equal(query(d, 0x11, 0x03).length, 0, 'no EV_ABS');
  assert.equal(query(d, 0x12, 0).length, 0, 'no absolute axes');
  assert.equal(query(d, 0x10, 0).length, 0, 'no properties');
  assert.equal(query(d, 0x01, 1).length, 0, 'a name with a subsel is not there');
  assert.equal(query(d, 0x55, 0).length, 0, 'unknown select');
  d.transport.write(Reg.CONFIG + 8, 4, 0xffffffff);
  assert.equal(d.transport.read(Reg.CONFIG + 2, 1), 0, 'writes beyond select/subsel are ignored');
});

test('virtio-input: key updates (with their EV_SYN) wait for buffers and go out whole and in order', () => {
  const { d, dev } = setup();
  dev.send([Ev.KEY, KEY_POWER, 1]);
  d.init();
  const bufs = post(d, 3);
  assert.deepEqual(d.takeUsed(0).map(u => u.len), [8, 8], 'the press and its SYN_REPORT');
  assert.deepEqual(event(d, bufs[0]!), [Ev.KEY, KEY_POWER, 1]);
  assert.deepEqual(event(d, bufs[1]!), [Ev.SYN, SYN_REPORT, 0]);
  d.ack();
  dev.send([Ev.KEY, KEY_POWER, 0]);
  assert.equal(d.takeUsed(0).length, 0, 'one buffer left: the two-event update waits');
  assert.equal(dev.delivered, 2);
  const more = post(d, 1);
  assert.deepEqual(d.takeUsed(0).map(u => u.len), [8, 8]);
  assert.deepEqual(event(d, bufs[2]!), [Ev.KEY, KEY_POWER, 0]);
  assert.deepEqual(event(d, more[0]!), [Ev.SYN, SYN_REPORT, 0]);
  assert.equal(d.irq, true);
});

test('virtio-input: a guest that never reads cannot grow the backlog; status buffers are returned', () => {
  const { d, dev } = setup();
  for (let i = 0; i < INPUT_BACKLOG; i++) dev.send([Ev.KEY, KEY_A, i & 1]);
  assert.equal(dev.dropped, INPUT_BACKLOG, 'half of the updates fit (2 events each)');
  d.init();
  const s = d.alloc(8, Uint8Array.of(0x11, 0, 0, 0, 1, 0, 0, 0)); // EV_LED LED_NUML on
  d.submit(1, [{ addr: s, len: 8 }]);
  d.kick(1);
  assert.deepEqual(d.takeUsed(1), [{ id: 0, len: 0 }]);
});

test('virtio-input: pending updates and the config selection survive save and restore', () => {
  const { d, dev } = setup();
  d.init();
  query(d, 0x01, 0);
  dev.send([Ev.KEY, KEY_POWER, 1]);
  dev.send([Ev.KEY, KEY_POWER, 0]);
  const copy = setup();
  copy.dev.restore(JSON.parse(JSON.stringify(dev.save())));
  assert.deepEqual(copy.dev.save(), dev.save());
  assert.equal(copy.dev.readConfig(2, 1), 'test keys'.length);
  copy.d.init();
  const bufs = post(copy.d, 4);
  assert.deepEqual(bufs.map(b => event(copy.d, b)), [[Ev.KEY, KEY_POWER, 1], [Ev.SYN, 0, 0], [Ev.KEY, KEY_POWER, 0], [Ev.SYN, 0, 0]]);
});
