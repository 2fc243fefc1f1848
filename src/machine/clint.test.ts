import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Clint } from './clint.js';
import { Mip, type HartInterrupts } from './irq.js';

/** Records the latest level of every (hart, bit) and every call. */
function recorder(): HartInterrupts & { level(h: number, bit: number): boolean | undefined; calls: number } {
  const levels = new Map<string, boolean>();
  const r = {
    calls: 0,
    setPending(h: number, bit: number, level: boolean) {
      r.calls++;
      levels.set(`${h}:${bit}`, level);
    },
    level: (h: number, bit: number) => levels.get(`${h}:${bit}`),
  };
  return r;
}

function setup(harts = 2) {
  let now = 1000; // ms
  const irq = recorder();
  const clint = new Clint({ harts, irq, clock: () => now });
  return { clint, irq, advance: (ms: number) => (now += ms) };
}

test('mtime counts at 10 MHz from the host clock', () => {
  const { clint, advance } = setup();
  assert.equal(clint.mtime(), 0);
  advance(1.5);
  assert.equal(clint.mtime(), 15_000);
  assert.equal(clint.read(0xbff8, 4), 15_000);
  assert.equal(clint.read(0xbffc, 4), 0);
  advance(1000);
  assert.equal(clint.mtime(), 10_015_000);
});

test('msip drives MSIP of its hart', () => {
  const { clint, irq } = setup();
  clint.write(4, 4, 1);
  assert.equal(irq.level(1, Mip.MSIP), true);
  assert.equal(clint.read(4, 4), 1);
  assert.equal(clint.read(0, 4), 0);
  clint.write(4, 4, 0xfffffffe);
  assert.equal(irq.level(1, Mip.MSIP), false);
});

test('mtimecmp compares as 64 bits; all-ones never fires', () => {
  const { clint, irq, advance } = setup();
  assert.equal(clint.read(0x4000, 4), 0xffffffff, 'reset value is all-ones');
  clint.update();
  assert.equal(irq.level(0, Mip.MTIP), false);
  // Program hart 0 for mtime 20_000 (2 ms), as OpenSBI does: high word to -1 first, then low, then high.
  clint.write(0x4004, 4, 0xffffffff);
  clint.write(0x4000, 4, 20_000);
  clint.write(0x4004, 4, 0);
  assert.equal(irq.level(0, Mip.MTIP), false);
  assert.equal(clint.nextDeadlineMs(), 2);
  assert.equal(clint.nextDeadlineMs(1), Infinity);
  advance(2);
  clint.update();
  assert.equal(irq.level(0, Mip.MTIP), true);
  assert.equal(irq.level(1, Mip.MTIP), false);
  assert.equal(clint.nextDeadlineMs(), 0);
  // Writing all-ones clears it at once.
  clint.write(0x4000, 4, 0xffffffff);
  clint.write(0x4004, 4, 0xffffffff);
  assert.equal(irq.level(0, Mip.MTIP), false);
  assert.equal(clint.nextDeadlineMs(), Infinity);
});

test('a comparator in the high word compares correctly', () => {
  const { clint, irq } = setup(1);
  clint.setMtime(0x1_0000_0005);
  clint.write(0x4000, 4, 0x10);
  clint.write(0x4004, 4, 0);
  assert.equal(irq.level(0, Mip.MTIP), true, 'hi 1 > cmp hi 0');
  clint.write(0x4004, 4, 1);
  assert.equal(irq.level(0, Mip.MTIP), false, '0x1_00000005 < 0x1_00000010');
  clint.write(0x4000, 4, 5);
  assert.equal(irq.level(0, Mip.MTIP), true);
});

test('a 64-bit mtime read split low-then-high is consistent across a carry', () => {
  let now = 0;
  const clint = new Clint({ harts: 1, irq: recorder(), clock: () => now });
  clint.setMtime(0xffff_fff0);
  const lo = clint.read(0xbff8, 4);
  now += 1; // 10_000 ticks later the low word has wrapped
  const hi = clint.read(0xbffc, 4);
  assert.deepEqual([hi, lo], [0, 0xffff_fff0]);
  assert.equal(clint.read(0xbffc, 4), 1, 'a lone high read is fresh');
});

test('mtime can be written; byte accesses work', () => {
  const { clint } = setup(1);
  clint.write(0xbff8, 4, 0x1234);
  assert.equal(clint.mtime(), 0x1234);
  clint.write(0xbffc, 4, 2);
  assert.equal(clint.mtime(), 2 * 2 ** 32 + 0x1234);
  assert.equal(clint.read(0xbff9, 1), 0x12);
  clint.write(0x4001, 1, 0xab);
  assert.equal(clint.read(0x4000, 4), 0xffffabff);
});

test('pause freezes mtime; resume continues from it', () => {
  const { clint, advance } = setup(1);
  advance(1);
  clint.pause();
  advance(50);
  assert.equal(clint.mtime(), 10_000);
  clint.resume();
  advance(1);
  assert.equal(clint.mtime(), 20_000);
});

test('save → restore → save is stable and re-signals the harts', () => {
  const a = setup(2);
  a.clint.write(0, 4, 1);
  a.clint.write(0x4008, 4, 77);
  a.clint.write(0x400c, 4, 0);
  a.advance(3);
  const saved = a.clint.save();
  const b = setup(2);
  b.advance(12345);
  b.clint.restore(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual(b.clint.save(), saved);
  assert.equal(b.irq.level(0, Mip.MSIP), true);
  assert.equal(b.irq.level(1, Mip.MTIP), true);
  assert.equal(b.irq.level(0, Mip.MTIP), false);
  assert.throws(() => setup(1).clint.restore(saved), /2 harts/);
});
