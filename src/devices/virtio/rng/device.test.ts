import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reg } from '../mmio.js';
import { TestDriver } from '../testing.js';
import { RNG_MAX_REQUEST, VirtioRng } from './device.js';

test('virtio-rng: device id 4, one queue, fills writable buffers with distinct random bytes', () => {
  const rng = new VirtioRng();
  const d = new TestDriver(rng);
  assert.equal(d.reg(Reg.DEVICE_ID), 4);
  d.init();
  const a = d.alloc(64), b = d.alloc(64);
  d.submit(0, [{ addr: a, len: 64, write: true }]);
  d.submit(0, [{ addr: b, len: 64, write: true }]);
  d.kick(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 64 }, { id: 1, len: 64 }]);
  assert.notDeepEqual(d.bytes(a, 64), d.bytes(b, 64));
  // 128 random bytes are not all zero; a byte value shows up at most a few times.
  const counts = new Map<number, number>();
  for (const x of [...d.bytes(a, 64), ...d.bytes(b, 64)]) counts.set(x, (counts.get(x) ?? 0) + 1);
  assert.ok(Math.max(...counts.values()) < 8);
  assert.equal(rng.bytesServed, 128);
});

test('virtio-rng: a huge buffer is filled only up to the per-request cap; readable buffers get nothing', () => {
  const d = new TestDriver(new VirtioRng(), 1 << 20);
  d.init();
  const big = d.alloc(RNG_MAX_REQUEST + 4096);
  const ro = d.alloc(16);
  d.submit(0, [{ addr: ro, len: 16 }]);
  d.submit(0, [{ addr: big, len: RNG_MAX_REQUEST + 4096, write: true }]);
  d.kick(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 0 }, { id: 1, len: RNG_MAX_REQUEST }]);
  assert.deepEqual(d.bytes(ro, 16), new Uint8Array(16));
  assert.deepEqual(d.bytes(big + RNG_MAX_REQUEST, 4096), new Uint8Array(4096));
});
