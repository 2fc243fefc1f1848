import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Feature } from './device.js';
import { Reg, Status } from './mmio.js';
import { Avail, DescChain, DescFlag, Used } from './queue.js';
import { VirtioRng } from './rng/device.js';
import { TEST_RAM_BASE, TestDriver } from './testing.js';

/** A driver with an activated rng device whose queue 0 the test pops itself (no kick, so the device never looks). */
function setup(opts: { without?: number; size?: number } = {}): { d: TestDriver; chain: DescChain } {
  const d = new TestDriver(new VirtioRng(), 1 << 20);
  d.init({ without: opts.without, sizes: [opts.size ?? 16] });
  return { d, chain: new DescChain(64) };
}

const needsReset = (d: TestDriver): boolean => (d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET) !== 0;

test('pop: a direct chain, readable then writable segments, in order', () => {
  const { d, chain } = setup();
  const q = d.transport.queues[0]!;
  assert.equal(q.pop(chain), false, 'empty');
  const a = d.alloc(16), b = d.alloc(100), c = d.alloc(1);
  const head = d.submit(0, [{ addr: a, len: 16 }, { addr: b, len: 100, write: true }, { addr: c, len: 1, write: true }]);
  assert.equal(q.hasAvailable(), true);
  assert.equal(q.pop(chain), true);
  assert.equal(chain.head, head);
  assert.equal(chain.count, 3);
  assert.equal(chain.readable, 1);
  assert.equal(chain.readableBytes, 16);
  assert.equal(chain.writableBytes, 101);
  assert.deepEqual([...chain.addr.subarray(0, 3)], [a, b, c]);
  assert.deepEqual([...chain.len.subarray(0, 3)], [16, 100, 1]);
  assert.equal(q.pop(chain), false);
  q.push(chain.head, 101);
  assert.deepEqual(d.takeUsed(0), [{ id: head, len: 101 }]);
});

test('DescChain.read and write cross segment boundaries and stay inside their part', () => {
  const { d, chain } = setup();
  const q = d.transport.queues[0]!;
  const r1 = d.alloc(3, Uint8Array.of(1, 2, 3)), r2 = d.alloc(2, Uint8Array.of(4, 5));
  const w1 = d.alloc(2), w2 = d.alloc(4);
  d.submit(0, [{ addr: r1, len: 3 }, { addr: r2, len: 2 }, { addr: w1, len: 2, write: true }, { addr: w2, len: 4, write: true }]);
  assert.ok(q.pop(chain));
  const into = new Uint8Array(4);
  assert.equal(chain.read(d.mem, 2, into), 3, 'only 3 readable bytes after offset 2');
  assert.deepEqual([...into], [3, 4, 5, 0]);
  assert.equal(chain.write(d.mem, 1, Uint8Array.of(9, 8, 7, 6, 5, 4)), 5);
  assert.deepEqual([...d.bytes(w1, 2)], [0, 9]);
  assert.deepEqual([...d.bytes(w2, 4)], [8, 7, 6, 5]);
});

test('indirect descriptors: a table of buffers behind one ring descriptor', () => {
  const { d, chain } = setup();
  const q = d.transport.queues[0]!;
  const bufs = [d.alloc(8), d.alloc(8), d.alloc(8)];
  const head = d.submit(0, [{ addr: bufs[0]!, len: 8 }, { addr: bufs[1]!, len: 8, write: true }, { addr: bufs[2]!, len: 8, write: true }], { indirect: true });
  assert.ok(q.pop(chain));
  assert.equal(chain.head, head);
  assert.equal(chain.count, 3);
  assert.equal(chain.readable, 1);
  assert.deepEqual([...chain.addr.subarray(0, 3)], bufs);
  assert.equal(d.queues[0]!.nextDesc, 1, 'one ring descriptor used');
});

test('the rng device fills indirect writable buffers', () => {
  const { d } = setup();
  const bufs = [d.alloc(64), d.alloc(64)];
  d.submit(0, [{ addr: bufs[0]!, len: 64, write: true }, { addr: bufs[1]!, len: 64, write: true }], { indirect: true });
  d.kick(0);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 128 }]);
  for (const b of bufs) assert.notDeepEqual(d.bytes(b, 64), new Uint8Array(64));
  assert.ok(d.guardsIntact());
});

test('EVENT_IDX: avail_event asks for the next kick; used_event suppresses interrupts until reached', () => {
  const { d } = setup({ size: 8 });
  const q = d.queues[0]!;
  const availEvent = (): number => d.mem.readU16(q.used + Used.RING + Used.ELEM_SIZE * q.size);
  const setUsedEvent = (v: number): void => { d.mem.writeU16(q.avail + Avail.RING + 2 * q.size, v); };
  const buf = d.alloc(16);
  d.submit(0, [{ addr: buf, len: 16, write: true }]);
  d.kick(0);
  assert.equal(availEvent(), 1, 'device drained the ring: notify me when avail idx passes 1');
  assert.equal(d.irqRaises, 1, 'the first used buffer always interrupts');
  d.ack();
  // Driver asks for an interrupt only after the 3rd further used entry (used_event = 3).
  setUsedEvent(3);
  for (let i = 0; i < 3; i++) {
    d.submit(0, [{ addr: buf, len: 16, write: true }]);
    d.kick(0);
    assert.equal(d.irqRaises, i < 2 ? 1 : 2, `after used idx ${i + 2}`);
  }
  assert.equal(availEvent(), 4);
  assert.equal(d.takeUsed(0).length, 4);
});

test('without EVENT_IDX, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses interrupts', () => {
  const { d } = setup({ without: Feature.EVENT_IDX });
  const q = d.queues[0]!;
  d.mem.writeU16(q.avail + Avail.FLAGS, Avail.F_NO_INTERRUPT);
  const buf = d.alloc(16);
  d.submit(0, [{ addr: buf, len: 16, write: true }]);
  d.kick(0);
  assert.equal(d.irqRaises, 0);
  assert.equal(d.takeUsed(0).length, 1, 'the buffer was still used');
  d.mem.writeU16(q.avail + Avail.FLAGS, 0);
  d.submit(0, [{ addr: buf, len: 16, write: true }]);
  d.kick(0);
  assert.equal(d.irqRaises, 1);
});

test('used and avail indexes wrap at 65536', () => {
  const { d } = setup({ size: 4 });
  const buf = d.alloc(4);
  let used = 0;
  for (let i = 0; i < 70_000; i++) {
    d.submit(0, [{ addr: buf, len: 4, write: true }]);
    d.kick(0);
    used += d.takeUsed(0).length;
  }
  assert.equal(used, 70_000);
  assert.equal(needsReset(d), false);
});

/** Hostile descriptor tables: each must end in DEVICE_NEEDS_RESET with one log line, no throw, no write outside RAM. */
const hostile: Record<string, (d: TestDriver) => void> = {
  'a loop in the chain': d => {
    const q = d.queues[0]!, buf = d.alloc(8);
    d.writeDesc(q.desc, 0, buf, 8, DescFlag.NEXT | DescFlag.WRITE, 1);
    d.writeDesc(q.desc, 1, buf, 8, DescFlag.NEXT | DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'a self-loop': d => {
    const q = d.queues[0]!;
    d.writeDesc(q.desc, 3, d.alloc(8), 8, DescFlag.NEXT | DescFlag.WRITE, 3);
    d.makeAvailable(0, 3);
  },
  'next outside the table': d => {
    const q = d.queues[0]!;
    d.writeDesc(q.desc, 0, d.alloc(8), 8, DescFlag.NEXT | DescFlag.WRITE, 16);
    d.makeAvailable(0, 0);
  },
  'head outside the table': d => d.makeAvailable(0, 0xffff),
  'a loop inside an indirect table': d => {
    const q = d.queues[0]!, table = d.alloc(64), buf = d.alloc(8);
    for (let i = 0; i < 4; i++) d.writeDesc(table, i, buf, 8, DescFlag.NEXT | DescFlag.WRITE, (i + 1) % 4);
    d.writeDesc(q.desc, 0, table, 64, DescFlag.INDIRECT, 0);
    d.makeAvailable(0, 0);
  },
  'an indirect table longer than the queue': d => {
    const q = d.queues[0]!, n = 40, table = d.alloc(16 * n), buf = d.alloc(8);
    for (let i = 0; i < n; i++) d.writeDesc(table, i, buf, 8, (i + 1 < n ? DescFlag.NEXT : 0) | DescFlag.WRITE, i + 1);
    d.writeDesc(q.desc, 0, table, 16 * n, DescFlag.INDIRECT, 0);
    d.makeAvailable(0, 0);
  },
  'nested indirect': d => {
    const q = d.queues[0]!, inner = d.alloc(16), outer = d.alloc(16);
    d.writeDesc(inner, 0, d.alloc(8), 8, DescFlag.WRITE, 0);
    d.writeDesc(outer, 0, inner, 16, DescFlag.INDIRECT, 0);
    d.writeDesc(q.desc, 0, outer, 16, DescFlag.INDIRECT, 0);
    d.makeAvailable(0, 0);
  },
  'indirect with NEXT': d => {
    const q = d.queues[0]!, table = d.alloc(16);
    d.writeDesc(table, 0, d.alloc(8), 8, DescFlag.WRITE, 0);
    d.writeDesc(q.desc, 0, table, 16, DescFlag.INDIRECT | DescFlag.NEXT, 1);
    d.writeDesc(q.desc, 1, d.alloc(8), 8, DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'indirect table of odd length': d => {
    d.writeDesc(d.queues[0]!.desc, 0, d.alloc(24), 24, DescFlag.INDIRECT, 0);
    d.makeAvailable(0, 0);
  },
  'indirect table outside RAM': d => {
    d.writeDesc(d.queues[0]!.desc, 0, TEST_RAM_BASE + d.mem.size - 16, 32, DescFlag.INDIRECT, 0);
    d.makeAvailable(0, 0);
  },
  'a buffer below RAM': d => {
    d.writeDesc(d.queues[0]!.desc, 0, TEST_RAM_BASE - 8, 16, DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'a buffer running past the end of RAM': d => {
    d.writeDesc(d.queues[0]!.desc, 0, TEST_RAM_BASE + d.mem.size - 8, 16, DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'a length that overflows 32 bits of address': d => {
    d.writeDesc(d.queues[0]!.desc, 0, TEST_RAM_BASE + 0x1000, 0xffff_ffff, DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'a 64-bit address beyond 2^53': d => {
    d.writeDesc(d.queues[0]!.desc, 0, 0xffff_ffff_ffff_f000, 16, DescFlag.WRITE, 0);
    d.makeAvailable(0, 0);
  },
  'avail idx more than the queue size ahead': d => {
    const q = d.queues[0]!;
    d.mem.writeU16(q.avail + Avail.IDX, q.size + 1);
  },
  'avail idx going backwards (wraps to 65535 ahead)': d => {
    const q = d.queues[0]!;
    d.mem.writeU16(q.avail + Avail.IDX, 0xffff);
  },
  'a readable buffer after a writable one': d => {
    const q = d.queues[0]!;
    d.writeDesc(q.desc, 0, d.alloc(8), 8, DescFlag.WRITE | DescFlag.NEXT, 1);
    d.writeDesc(q.desc, 1, d.alloc(8), 8, 0, 0);
    d.makeAvailable(0, 0);
  },
};

for (const [name, build] of Object.entries(hostile)) {
  test(`hostile ring: ${name} → DEVICE_NEEDS_RESET, one log line, nothing written outside RAM`, () => {
    const { d } = setup();
    build(d);
    assert.doesNotThrow(() => d.kick(0));
    assert.ok(needsReset(d), 'needs reset');
    assert.equal(d.transport.errors, 1);
    assert.equal(d.logged.length, 1);
    assert.ok(d.guardsIntact());
    // The broken queue stays quiet: further kicks neither throw nor log.
    d.kick(0);
    assert.equal(d.logged.length, 1);
    // A reset brings the device back.
    d.init({ sizes: [16] });
    assert.equal(needsReset(d), false);
    const buf = d.alloc(8);
    d.submit(0, [{ addr: buf, len: 8, write: true }]);
    d.kick(0);
    assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 8 }]);
  });
}

test('indirect descriptors are refused when INDIRECT_DESC was not negotiated', () => {
  const { d } = setup({ without: Feature.INDIRECT_DESC });
  d.submit(0, [{ addr: d.alloc(8), len: 8, write: true }], { indirect: true });
  d.kick(0);
  assert.ok(needsReset(d));
  assert.match(d.logged[0]!, /without VIRTIO_F_INDIRECT_DESC/);
});

test('a chain as long as the queue is fine; one longer is not', () => {
  const { d, chain } = setup({ size: 16 });
  const q = d.transport.queues[0]!;
  const buf = d.alloc(8);
  d.submit(0, Array.from({ length: 16 }, () => ({ addr: buf, len: 8, write: true })));
  assert.ok(q.pop(chain));
  assert.equal(chain.count, 16);
  const { d: d2, chain: c2 } = setup({ size: 16 });
  const n = 17, table = d2.alloc(16 * n);
  for (let i = 0; i < n; i++) d2.writeDesc(table, i, buf, 8, (i + 1 < n ? DescFlag.NEXT : 0) | DescFlag.WRITE, i + 1);
  d2.writeDesc(d2.queues[0]!.desc, 0, table, 16 * n, DescFlag.INDIRECT, 0);
  d2.makeAvailable(0, 0);
  assert.equal(d2.transport.queues[0]!.pop(c2), false);
  assert.match(d2.logged[0]!, /longer than the queue/);
});

test('queue save → restore → save equality mid-stream', () => {
  const { d } = setup({ size: 8 });
  const buf = d.alloc(8);
  for (let i = 0; i < 5; i++) { d.submit(0, [{ addr: buf, len: 8, write: true }]); d.kick(0); }
  const q = d.transport.queues[0]!;
  const s = q.save();
  assert.equal(s.lastAvail, 5);
  assert.equal(s.nextUsed, 5);
  q.reset();
  q.restore(s);
  q.indirect = q.eventIdx = true;
  assert.deepEqual(q.save(), s);
  assert.equal(q.ready, true);
});
