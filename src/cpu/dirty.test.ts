/**
 * The dirty log (Cpu.takeDirty): every RAM page written is marked, whether the write came
 * through the inline store TLB (filled once, then hit many times), a slow store, an AMO, or a
 * device; pages only read are not; taking the log starts a fresh one that sees later writes to
 * pages already written. Runs with the JIT forced on too (npm run test:jit-forced).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../memory/bus.js';
import { Cpu } from './cpu.js';
import { assemble, CODE_BASE, DATA_BASE } from './testing/asm.js';

const dirtyPages = (d: Uint8Array): number[] => [...d.keys()].filter(i => d[i] === 1);
const DATA_PAGE = (DATA_BASE - CODE_BASE) / 4096;

test('every written page is marked, however it was written; read pages are not', async () => {
  const cpu = await Cpu.create({ ramBytes: 4 * 1024 * 1024, harts: 1, bus: new Bus() });
  // Round 1: pages 0, 3 and 7 of the data area stored to 200 times each (TLB hits after the first),
  // an AMO to page 9, a misaligned store across pages 11/12, a load from page 5. Round 2: page 3 again.
  cpu.ram.set(assemble(`
    li t0, ${DATA_BASE}
    li t1, 200
  1:
    sd t1, 0(t0)
    li t2, ${3 * 4096}
    add t2, t2, t0
    sw t1, 8(t2)
    li t2, ${7 * 4096}
    add t2, t2, t0
    sb t1, 100(t2)
    addi t1, t1, -1
    bnez t1, 1b
    li t2, ${9 * 4096}
    add t2, t2, t0
    amoadd.d zero, t1, (t2)
    li t2, ${12 * 4096 - 4}
    add t2, t2, t0
    sd t1, 0(t2)
    li t2, ${5 * 4096}
    add t2, t2, t0
    ld t3, 0(t2)
    ecall
    li t1, 200
  2:
    li t2, ${3 * 4096}
    add t2, t2, t0
    sw t1, 16(t2)
    addi t1, t1, -1
    bnez t1, 2b
    ecall
  `), 0);
  const hart = cpu.hart(0);
  hart.pc = CODE_BASE;
  cpu.onEcall = () => { cpu.stopped = true; return true; };
  assert.equal(cpu.takeDirty(), undefined, 'the first take starts the log');
  cpu.run(100_000);
  const first = cpu.takeDirty()!;
  assert.deepEqual(dirtyPages(first), [0, 3, 7, 9, 11, 12].map(p => DATA_PAGE + p));
  cpu.stopped = false;
  hart.pc = hart.pc + 4;
  cpu.run(100_000);
  // A device writes page 20 (DMA) while the log runs.
  assert.ok(cpu.guestMemory().write(DATA_BASE + 20 * 4096 + 10, new Uint8Array([1, 2, 3])));
  const second = cpu.takeDirty()!;
  assert.deepEqual(dirtyPages(second), [3, 20].map(p => DATA_PAGE + p), 'page 3 is marked again after the take emptied the TLB');
  cpu.stopDirty();
  assert.equal(cpu.views.dirty, undefined);
});
