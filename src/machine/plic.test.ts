import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Plic } from './plic.js';
import { Mip, type HartInterrupts } from './irq.js';

function setup(harts = 2) {
  const levels = new Map<string, boolean>();
  const irq: HartInterrupts = { setPending: (h, bit, level) => levels.set(`${h}:${bit}`, level) };
  const plic = new Plic({ harts, irq });
  const lv = (h: number, bit: number) => levels.get(`${h}:${bit}`) ?? false;
  const ctxBase = (ctx: number) => 0x200000 + 0x1000 * ctx;
  const enable = (ctx: number, src: number) => {
    const off = 0x2000 + 0x80 * ctx + 4 * (src >> 5);
    plic.write(off, 4, plic.read(off, 4) | (1 << (src & 31)));
  };
  return { plic, lv, ctxBase, enable };
}

test('a source is delivered to the enabled context only when priority > threshold', () => {
  const { plic, lv, ctxBase, enable } = setup();
  plic.setIrq(10, true);
  assert.equal(plic.read(0x1000, 4), 1 << 10, 'pending bit visible');
  assert.equal(lv(0, Mip.SEIP), false, 'not enabled');
  enable(1, 10); // hart 0 S-mode
  assert.equal(lv(0, Mip.SEIP), false, 'priority 0 never interrupts');
  plic.write(4 * 10, 4, 1);
  assert.equal(lv(0, Mip.SEIP), true);
  assert.equal(lv(0, Mip.MEIP), false);
  assert.equal(lv(1, Mip.SEIP), false);
  plic.write(ctxBase(1), 4, 1);
  assert.equal(lv(0, Mip.SEIP), false, 'threshold 1 masks priority 1');
  plic.write(ctxBase(1), 4, 0);
  assert.equal(lv(0, Mip.SEIP), true);
  enable(2, 10); // hart 1 M-mode
  assert.equal(lv(1, Mip.MEIP), true);
});

test('claim returns the highest priority (lowest id on ties), clears pending; complete re-arms a held level', () => {
  const { plic, lv, ctxBase, enable } = setup(1);
  for (const s of [3, 5, 40]) {
    enable(1, s);
    plic.setIrq(s, true);
  }
  plic.write(4 * 3, 4, 2);
  plic.write(4 * 5, 4, 2);
  plic.write(4 * 40, 4, 6);
  assert.equal(plic.read(ctxBase(1) + 4, 4), 40);
  assert.equal(plic.isPending(40), false);
  assert.equal(plic.read(ctxBase(1) + 4, 4), 3, 'tie → lowest id');
  assert.equal(plic.read(ctxBase(1) + 4, 4), 5);
  assert.equal(lv(0, Mip.SEIP), false, 'all claimed');
  assert.equal(plic.read(ctxBase(1) + 4, 4), 0, 'nothing left');
  // Levels still high: completion makes them pending again.
  plic.write(ctxBase(1) + 4, 4, 40);
  assert.equal(plic.isPending(40), true);
  assert.equal(lv(0, Mip.SEIP), true);
  // Level dropped while claimed: completion does not re-arm.
  plic.setIrq(3, false);
  plic.write(ctxBase(1) + 4, 4, 3);
  assert.equal(plic.isPending(3), false);
});

test('a claimed source is not re-delivered until completed, even if its line toggles', () => {
  const { plic, lv, ctxBase, enable } = setup(1);
  enable(0, 7);
  plic.write(4 * 7, 4, 1);
  plic.setIrq(7, true);
  assert.equal(lv(0, Mip.MEIP), true);
  assert.equal(plic.read(ctxBase(0) + 4, 4), 7);
  plic.setIrq(7, false);
  plic.setIrq(7, true);
  assert.equal(lv(0, Mip.MEIP), false);
  assert.equal(plic.isPending(7), false);
  plic.write(ctxBase(0) + 4, 4, 7);
  assert.equal(lv(0, Mip.MEIP), true);
});

test('a level that falls before the claim withdraws the request', () => {
  const { plic, lv, enable } = setup(1);
  enable(1, 1);
  plic.write(4, 4, 1);
  plic.setIrq(1, true);
  plic.setIrq(1, false);
  assert.equal(lv(0, Mip.SEIP), false);
});

test('registers: priority masked to 3 bits, source 0 fixed, pending read-only, out of range reads 0', () => {
  const { plic } = setup(1);
  plic.write(4 * 9, 4, 0xff);
  assert.equal(plic.read(4 * 9, 4), 7);
  plic.write(0, 4, 5);
  assert.equal(plic.read(0, 4), 0);
  plic.write(0x2000, 4, 0xffffffff);
  assert.equal(plic.read(0x2000, 4), 0xfffffffe);
  plic.write(0x1000, 4, 0xffffffff);
  assert.equal(plic.read(0x1000, 4), 0);
  assert.equal(plic.read(0x2000 + 0x80 * 2, 4), 0, 'context 2 does not exist with one hart');
  assert.equal(plic.read(0x200000 + 0x1000 * 5 + 4, 4), 0);
  assert.throws(() => plic.setIrq(0, true));
  assert.throws(() => plic.setIrq(96, true));
});

test('completing a source not enabled for the context is ignored', () => {
  const { plic, ctxBase, enable } = setup(1);
  enable(1, 4);
  plic.write(16, 4, 1);
  plic.setIrq(4, true);
  assert.equal(plic.read(ctxBase(1) + 4, 4), 4);
  plic.write(ctxBase(0) + 4, 4, 4); // M context never enabled source 4
  assert.equal(plic.isPending(4), false);
  plic.write(ctxBase(1) + 4, 4, 4);
  assert.equal(plic.isPending(4), true);
});

test('save → restore → save is stable and re-signals', () => {
  const a = setup(2);
  a.enable(3, 33);
  a.plic.write(4 * 33, 4, 3);
  a.plic.write(a.ctxBase(3), 4, 1);
  a.plic.setIrq(33, true);
  a.plic.setIrq(12, true);
  const saved = a.plic.save();
  const b = setup(2);
  b.plic.restore(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual(b.plic.save(), saved);
  assert.equal(b.lv(1, Mip.SEIP), true);
  assert.throws(() => setup(1).plic.restore(saved), /does not match/);
});

test('completing one source does not claim another pending one (regression: complete read the claim register first)', () => {
  const { plic, lv, ctxBase, enable } = setup(1);
  for (const s of [1, 10]) { enable(1, s); plic.write(4 * s, 4, 1); plic.setIrq(s, true); }
  assert.equal(plic.read(ctxBase(1) + 4, 4), 1);
  plic.setIrq(1, false);
  plic.write(ctxBase(1) + 4, 4, 1);
  assert.equal(plic.isPending(10), true, 'source 10 still pending, not silently claimed');
  assert.equal(lv(0, Mip.SEIP), true);
  assert.equal(plic.read(ctxBase(1) + 4, 4), 10);
});
