// The block JIT against the interpreter: every test runs with every block translated before its first
// execution (threshold 1, synchronous compilation) and with the interpreter alone; results must agree,
// and H.JIT_INSNS shows the code under test really ran translated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, type MmioDevice } from '../../memory/bus.js';
import { Csr, Irq, Priv } from '../csr/numbers.js';
import { H } from '../layout.js';
import type { Hart } from '../hart.js';
import {
  boot, leaf, MODES, PageTables, PTE, RAM_END, regs, DATA_BASE as DATA, type Guest,
} from './jit-testing.js';

const S = { s1: 9, s2: 18, s3: 19, s4: 20, s5: 21, s6: 22, s7: 23, s8: 24, s9: 25, a0: 10, a1: 11, a2: 12, a3: 13, a4: 14, a5: 15, a6: 16 } as const;
const INTERRUPT = 1n << 63n;
/** `addi rd, rs1, imm` encoded. */
const addi = (rd: number, rs1: number, imm: number): number => ((imm & 0xfff) << 20 | rs1 << 15 | rd << 7 | 0x13) >>> 0;
const le32 = (w: number): Uint8Array => new Uint8Array(new Uint32Array([w]).buffer);
const jitFraction = (g: Guest): number => g.jitInsns() / g.hart.instret();

/**
 * Runs `scenario` both ways; asserts the JIT run really ran translated (at least `minJit` of its
 * instructions) and, unless `compare` is off (runs that may legitimately stop at other points),
 * that both results are equal. Returns [jit, interpreter].
 */
async function bothWays<T>(scenario: (jit: boolean) => Promise<{ g: Guest; result: T }>,
  { minJit = 0.5, compare = true } = {}): Promise<[T, T]> {
  const out: T[] = [];
  for (const { jit } of MODES) {
    const { g, result } = await scenario(jit);
    if (jit) assert.ok(jitFraction(g) >= minJit, `only ${g.jitInsns()} of ${g.hart.instret()} instructions ran translated`);
    else assert.equal(g.jitInsns(), 0);
    out.push(result);
  }
  if (compare) assert.deepEqual(out[0], out[1], 'the JIT and the interpreter agree');
  return [out[0], out[1]];
}

// ---- 1. self-modifying code ----

test('code stored by the guest (same page and another page) runs after fence.i', async () => {
  const src = `
    la t0, trap
    csrw mtvec, t0
    li s2, 40
    la s3, near_insn
    la s4, far_insn
    li t2, (10 << 7) | 0x13          # addi a0, zero, 0
loop:
    slli t1, s5, 20
    or t1, t1, t2
    sw t1, 0(s3)                     # near: addi a0, zero, i
    fence.i
    jal ra, near
    add s1, s1, a0
    addi t3, s5, 1000
    slli t3, t3, 20
    or t3, t3, t2
    sw t3, 0(s4)                     # far: addi a0, zero, 1000 + i
    fence.i
    jal ra, far
    add s6, s6, a0
    addi s5, s5, 1
    blt s5, s2, loop
    halt
near:
near_insn:
    addi a0, zero, -1
    ret
trap:
    csrr s8, mcause
    halt
.align 12
far:
far_insn:
    addi a0, zero, -1
    ret`;
  const [r] = await bothWays(async jit => {
    const g = await boot(src, { jit });
    g.run(1_000_000);
    // Every store but the first to each page hits translated code (the first pass over a page runs
    // interpreted: blocks are looked up only once the fetch TLB maps their page).
    if (jit) assert.ok(g.cpu.jit!.stats.invalidations >= 2 * 40 - 3, `${g.cpu.jit!.stats.invalidations} invalidations`);
    return { g, result: { s1: g.x(S.s1), s6: g.x(S.s6), s8: g.x(S.s8), instret: g.hart.instret(), regs: regs(g.hart) } };
  });
  assert.equal(r.s8, 0n, 'no trap');
  assert.equal(r.s1, 780n);       // sum of 0..39
  assert.equal(r.s6, 40_780n);    // sum of 1000..1039
});

test('a self-looping translated block sees its own instruction rewritten between runs', async () => {
  const src = `
    li s2, 20
    la s3, inner_insn
    li t2, (10 << 15) | (10 << 7) | 0x13   # addi a0, a0, 0
outer:
    addi t1, s5, 1
    slli t1, t1, 20
    or t1, t1, t2
    sw t1, 0(s3)                           # addi a0, a0, i + 1
    fence.i
    li t4, 100
inner:
inner_insn:
    addi a0, a0, 0
    addi t4, t4, -1
    bnez t4, inner
    addi s5, s5, 1
    blt s5, s2, outer
    halt`;
  const [r] = await bothWays(async jit => {
    const g = await boot(src, { jit });
    g.run(1_000_000);
    return { g, result: { a0: g.x(S.a0), instret: g.hart.instret() } };
  });
  assert.equal(r.a0, 100n * 210n); // 100 × (1 + … + 20)
});

test('code written by a device (GuestMemory DMA) replaces translated code, same page and another page', async () => {
  const src = `
    la s7, near
    la s8, far
    li s3, 2
round:
    li s2, 100
spin:
    jal ra, near
    add s1, s1, a0
    jal ra, far
    add s6, s6, a0
    addi s2, s2, -1
    bnez s2, spin
    halt                    # the host rewrites near and far here
    addi s3, s3, -1
    bnez s3, round
    halt
near:
    addi a0, zero, 1
    ret
.align 12
far:
    addi a0, zero, 2
    ret`;
  await bothWays(async jit => {
    const g = await boot(src, { jit });
    g.run(100_000);
    assert.deepEqual([g.x(S.s1), g.x(S.s6)], [100n, 200n]);
    const before = g.cpu.jit?.stats.invalidations ?? 0;
    const mem = g.cpu.guestMemory();
    assert.ok(mem.write(Number(g.x(S.s7)), le32(addi(10, 0, 7))));
    assert.ok(mem.write(Number(g.x(S.s8)), le32(addi(10, 0, 9))));
    if (jit) assert.equal(g.cpu.jit!.stats.invalidations - before, 2, 'both code pages dropped');
    g.resume(100_000);
    const result = { s1: g.x(S.s1), s6: g.x(S.s6), instret: g.hart.instret() };
    assert.deepEqual([result.s1, result.s6], [800n, 1100n]);
    return { g, result };
  });
});

// ---- 2. code pages remapped ----

test('Sv39: one virtual code address mapped to different pages by satp, then by a PTE rewrite + sfence.vma', async () => {
  const FN = 0x1000_0000;
  // fa, fb, fc sit at fixed physical pages; each adds 50 × (1, 100, 1000) to a0 in a self-loop.
  const fn = (at: number, step: number): string => `
.org ${at}
    li t0, 50
1:  addi a0, a0, ${step}
    addi t0, t0, -1
    bnez t0, 1b
    ret`;
  const src = (satpA: bigint, satpB: bigint, pte: number, pteC: number): string => `
    la t0, trap
    csrw mtvec, t0
    pmp_all
    li t0, ${satpA}
    csrw satp, t0
    sfence.vma
    enter 1, body
trap:
    csrr s8, mcause
    halt
body:
    li s2, 10
    li s3, ${satpA}
    li s4, ${satpB}
    li s5, ${FN}
round:
    csrw satp, s3
    sfence.vma
    jalr ra, 0(s5)
    csrw satp, s4
    sfence.vma
    jalr ra, 0(s5)
    addi s2, s2, -1
    bnez s2, round
    mv s6, a0
    csrw satp, s3
    sfence.vma
    jalr ra, 0(s5)
    li t1, ${pte}
    li t2, ${pteC}
    sd t2, 0(t1)                 # FN now maps fc under satp A
    sfence.vma s5, zero
    jalr ra, 0(s5)
    mv s7, a0
    halt
${fn(0x2000, 1)}
${fn(0x3000, 100)}
${fn(0x4000, 1000)}`;
  const pt = new PageTables(0x8040_0000);
  const a = pt.root(), b = pt.root();
  const code = PTE.V | PTE.R | PTE.X | PTE.A;
  for (const root of [a, b]) pt.map(root.base, 0x8000_0000, 0x8000_0000, code | PTE.W | PTE.D, 2);
  const pte = pt.map(a.base, FN, 0x8000_2000, code);
  pt.map(b.base, FN, 0x8000_3000, code);
  const [r] = await bothWays(async jit => {
    const g = await boot(src(a.satp, b.satp, pte, leaf(0x8000_4000, code)), { jit, setup: g => pt.apply(g) });
    g.run(1_000_000);
    assert.equal(g.hart.priv, Priv.S);
    return { g, result: { s6: g.x(S.s6), s7: g.x(S.s7), s8: g.x(S.s8), instret: g.hart.instret() } };
  });
  assert.equal(r.s8, 0n, 'no trap');
  assert.equal(r.s6, 10n * (50n + 5000n));
  assert.equal(r.s7, r.s6 + 50n + 50_000n);
});

// ---- 3. precise traps in the middle of a translated block ----

/** A block whose 3rd instruction loads from s9; the 10th time round s9 is a faulting address. */
const FAULTING_LOOP = `
    li s10, 4096
    li s1, 10
    halt                    # the host notes instret here
blk:
    addi a1, a1, 1
    addi a2, a2, 2
    ld a3, 0(s9)
    addi a4, a4, 4
    addi a5, a5, 5
    add s9, s9, s10
    addi s1, s1, -1
    bnez s1, blk
    halt`;

interface FaultResult { cause: bigint; epc: bigint; tval: bigint; a: bigint[]; s1: bigint; retired: number; jitRetired: number }

/** Runs to the first halt, then to the trap handler's halt; what the handler saw. */
function faultResult(g: Guest, causeCsr: Csr, epcCsr: Csr, tvalCsr: Csr): FaultResult {
  g.run(100_000);
  const i0 = g.hart.instret(), j0 = g.jitInsns();
  g.resume(100_000);
  return {
    cause: g.hart.csrRead(causeCsr), epc: g.hart.csrRead(epcCsr), tval: g.hart.csrRead(tvalCsr),
    a: [11, 12, 13, 14, 15].map(i => g.x(i)), s1: g.x(S.s1),
    retired: g.hart.instret() - i0, jitRetired: g.jitInsns() - j0,
  };
}

function checkFault(r: FaultResult, jit: boolean, blk: bigint, addr: number, cause: bigint): void {
  assert.equal(r.cause, cause);
  assert.equal(r.epc, blk + 8n, 'epc = the load');
  assert.equal(r.tval, BigInt(addr));
  // a1, a2 (before the load) counted 10 times; a4, a5 (after it) 9 times; a3 from the 9th page.
  assert.deepEqual(r.a, [10n, 20n, 108n, 36n, 45n]);
  assert.equal(r.s1, 1n);
  // 9 loops of 8, 2 before the fault, then the handler's halt (li a7 = 2 instructions, ecall).
  assert.equal(r.retired, 9 * 8 + 2 + 3);
  assert.equal(r.jitRetired, jit ? r.retired : 0, 'all of it translated');
}

test('M-mode: an access fault at the 3rd instruction of a translated block is precise', async () => {
  const base = RAM_END - 9 * 4096;
  const src = `
    la t0, trap
    csrw mtvec, t0
    li s9, ${base}
    la s7, blk
    ${FAULTING_LOOP}
.align 2
trap:
    halt`;
  await bothWays(async jit => {
    const g = await boot(src, { jit, setup: g => { for (let k = 0; k < 9; k++) g.wr64(base + k * 4096, BigInt(100 + k)); } });
    const r = faultResult(g, Csr.mcause, Csr.mepc, Csr.mtval);
    checkFault(r, jit, g.x(S.s7), RAM_END, 5n);
    return { g, result: { r: { ...r, jitRetired: 0 }, regs: regs(g.hart), instret: g.hart.instret() } };
  });
});

test('Sv39 S-mode: a page fault at the 3rd instruction of a translated block is precise (delegated to S)', async () => {
  const VA = 0x2000_0000;
  const src = (satp: bigint): string => `
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    pmp_all
    li t0, 1 << 13
    csrw medeleg, t0
    li t0, ${satp}
    csrw satp, t0
    sfence.vma
    li s9, ${VA}
    enter 1, body
mtrap:
    csrr s8, mcause
    halt
.align 2
strap:
    halt
body:
    la s7, blk
    ${FAULTING_LOOP}`;
  const pt = new PageTables(0x8040_0000);
  const root = pt.root();
  pt.map(root.base, 0x8000_0000, 0x8000_0000, PTE.V | PTE.R | PTE.W | PTE.X | PTE.A | PTE.D, 2);
  for (let k = 0; k < 9; k++) pt.map(root.base, VA + k * 4096, DATA + k * 4096, PTE.V | PTE.R | PTE.W | PTE.A | PTE.D);
  await bothWays(async jit => {
    const g = await boot(src(root.satp), {
      jit, setup: g => { pt.apply(g); for (let k = 0; k < 9; k++) g.wr64(DATA + k * 4096, BigInt(100 + k)); },
    });
    const r = faultResult(g, Csr.scause, Csr.sepc, Csr.stval);
    assert.equal(g.hart.priv, Priv.S);
    assert.equal(g.x(S.s8), 0n, 'nothing reached M');
    checkFault(r, jit, g.x(S.s7), VA + 9 * 4096, 13n);
    return { g, result: { r: { ...r, jitRetired: 0 }, regs: regs(g.hart), instret: g.hart.instret() } };
  });
});

// ---- 4. interrupts during long translated loops ----

const SPIN = `
    la t0, trap
    csrw mtvec, t0
    li t0, 1 << 7
    csrw mie, t0              # MTIE
    csrsi mstatus, 8          # MIE
    la s7, spin
    j spin
spin:
    addi s1, s1, 1
    j spin
.align 2
trap:
    halt`;

test('a timer interrupt raised between runs stops a self-looping block within the budget', async () => {
  const Q = 100_003;
  await bothWays(async jit => {
    const g = await boot(SPIN, { jit });
    const h = g.hart;
    for (let i = 0; i < 20; i++) {
      const before = h.instret();
      assert.equal(h.takeInterrupt(), false);
      g.cpu.step(0, Q);
      const ran = h.instret() - before;
      assert.ok(ran >= Q && ran <= (jit ? Q + 1 : Q), `step ${i} ran ${ran} instructions for a budget of ${Q}`);
    }
    const raised = h.instret();
    h.setPending(Irq.MTI, true);
    assert.equal(h.takeInterrupt(), true);
    g.cpu.step(0, Q);
    assert.ok(g.cpu.stopped, 'the handler ran');
    assert.equal(h.csrRead(Csr.mcause), INTERRUPT | 7n);
    const epc = h.csrRead(Csr.mepc) - g.x(S.s7);
    assert.ok(epc === 0n || epc === 4n, 'mepc inside the loop');
    assert.equal(h.instret() - raised, 3, 'only the handler ran after the interrupt');
    // The loop counter moved once per two instructions, up to the interrupt.
    assert.ok(g.x(S.s1) >= BigInt(Math.floor((raised - 20) / 2)));
    return { g, result: { cause: h.csrRead(Csr.mcause), epc } };
  }, { minJit: 0.99 });
});

/** An MMIO register whose reads count up; the `after`-th read raises the hart's timer interrupt line. */
class Alarm implements MmioDevice {
  readonly name = 'alarm';
  reads = 0;
  /** Instructions the hart had retired when the line rose (before the reading load). */
  raisedAt = -1;
  hart: Hart | undefined;
  constructor(private readonly after: number) {}
  read(): number {
    if (++this.reads === this.after) { this.raisedAt = this.hart!.instret(); this.hart!.setPending(Irq.MTI, true); }
    return this.reads;
  }
  write(): void {}
}

const ALARM = 0x1000_0000;

for (const [name, loop, rest] of [
  ['a self-looping block', `
poll:
    lw t1, 0(s5)
    addi s1, s1, 1
    j poll`, 3],
  ['a loop of chained blocks', `
poll:
    lw t1, 0(s5)
    andi t2, s1, 1
    addi s1, s1, 1
    bnez t2, 1f
    addi s6, s6, 1
1:
    j poll`, 4],
] as const) {
  test(`an interrupt raised by a device during ${name} is taken when that block ends`, async () => {
    const src = `
    la t0, trap
    csrw mtvec, t0
    li t0, 1 << 7
    csrw mie, t0
    csrsi mstatus, 8
    li s5, ${ALARM}
    la s7, poll
    j poll
${loop}
.align 2
trap:
    halt`;
    await bothWays(async jit => {
      const alarm = new Alarm(50_000);
      const bus = new Bus();
      bus.map(ALARM, 0x1000, alarm);
      const g = await boot(src, { jit, bus });
      const h = g.hart;
      alarm.hart = h;
      let steps = 0;
      while (alarm.raisedAt < 0) { assert.equal(h.takeInterrupt(), false); g.cpu.step(0, 1_000_000); steps++; }
      // The run returned as soon as the block holding the load ended, well before its budget.
      const after = h.instret() - alarm.raisedAt;
      assert.ok(after >= 1 && after <= (jit ? rest : 1), `${after} instructions ran after the line rose`);
      assert.equal(h.takeInterrupt(), true);
      g.cpu.step(0, 1000);
      assert.ok(g.cpu.stopped, 'the handler ran');
      assert.equal(h.csrRead(Csr.mcause), INTERRUPT | 7n);
      assert.ok(h.csrRead(Csr.mepc) >= g.x(S.s7) && h.csrRead(Csr.mepc) < g.x(S.s7) + 32n);
      assert.equal(alarm.reads, 50_000, 'no load after the interrupt');
      return { g, result: { cause: h.csrRead(Csr.mcause), steps, reads: alarm.reads } };
    }, { minJit: 0.99 });
  });
}

// ---- 5. LR/SC ----

test('LR/SC: atomic increment with LR and SC in different blocks; SC fails on another address and after an SC', async () => {
  const src = `
    li s2, ${DATA}
    li s1, 1000
inc:
    lr.d t0, (s2)
    addi t0, t0, 1
    j 1f                    # SC in the next block
1:
    sc.d t1, t0, (s2)
    bnez t1, inc
    addi s1, s1, -1
    bnez s1, inc
    lr.d t0, (s2)
    j 2f
2:
    addi t3, s2, 64
    sc.d a1, t0, (t3)       # not the reserved address: fails, writes nothing
    sc.d a2, t0, (s2)       # the reservation went with the SC before: fails
    lr.w t0, (s2)
    addi t0, t0, 5
    j 3f
3:
    sc.w a3, t0, (s2)       # succeeds
    ld a4, 0(s2)
    ld a5, 64(s2)
    halt`;
  const [r] = await bothWays(async jit => {
    const g = await boot(src, { jit });
    g.run(100_000);
    return { g, result: { regs: regs(g.hart), instret: g.hart.instret() } };
  }, { minJit: 0.9 });
  assert.deepEqual(r.regs.slice(S.a1 - 1, S.a5), [1n, 1n, 0n, 1005n, 0n]);
});

test('LR/SC: a device write to the reserved bytes between LR and SC makes the SC fail', async () => {
  const src = `
    li s2, ${DATA}
    lr.d t0, (s2)
    halt                    # the host (a device) writes the reserved doubleword
    j 1f
1:
    sc.d a1, t0, (s2)
    ld a2, 0(s2)
    halt`;
  await bothWays(async jit => {
    const g = await boot(src, { jit });
    g.run(1000);
    assert.ok(g.cpu.guestMemory().write(DATA, le32(77)));
    g.resume(1000);
    const result = { a1: g.x(S.a1), a2: g.x(S.a2) };
    assert.deepEqual(result, { a1: 1n, a2: 77n }, 'unprivileged spec, zalrsc: "The SC must fail if a write from some other device to the bytes accessed by the LR can be observed"');
    return { g, result };
  }, { minJit: 0 });
});

test('LR/SC: two harts interleaved in small slices increment one counter exactly', async () => {
  const N = 3000;
  const src = `
    li s2, ${DATA}
    li s1, ${N}
inc:
    lr.d t0, (s2)
    addi t0, t0, 1
    j 1f
1:
    sc.d t1, t0, (s2)
    beqz t1, 2f
    addi s3, s3, 1          # failed: count, retry
    j inc
2:
    addi s1, s1, -1
    bnez s1, inc
    halt`;
  const SLICES = [3, 5, 7, 11, 13, 17, 19, 23, 29];
  const [r] = await bothWays(async jit => {
    const g = await boot(src, { jit, harts: 2 });
    const { cpu } = g;
    const done = [false, false];
    cpu.onEcall = h => { done[h.index] = true; h.requestExit(); return true; };
    let k = 0;
    while (!(done[0] && done[1]) && k < 1_000_000) {
      for (const h of cpu.harts) {
        if (done[h.index]) continue;
        // As the board's loop (machine/virt.ts): another hart may have stored to the reservation set.
        for (const o of cpu.harts) cpu.views.i32[(o.hb + H.RESV_VALID) >> 2] = 0;
        cpu.step(h.index, SLICES[k++ % SLICES.length]);
      }
    }
    const jitAll = cpu.harts.reduce((n, h) => n + h.s.num(H.JIT_INSNS), 0);
    const all = cpu.harts.reduce((n, h) => n + h.instret(), 0);
    if (jit) assert.ok(jitAll / all > 0.8, `${jitAll} of ${all} translated`);
    const failures = cpu.hart(0).x(S.s3) + cpu.hart(1).x(S.s3);
    assert.ok(failures > 0n, 'slices ended between LR and SC');
    return { g, result: { count: g.rd64(DATA) } };
  }, { minJit: 0 });
  assert.equal(r.count, BigInt(2 * N));
});

// ---- 6. budget ----

for (const [name, loop, longest] of [
  ['a self-looping block', `
spin:
    addi s1, s1, 1
    addi s2, s2, 2
    addi s3, s3, 3
    addi s4, s4, 4
    j spin`, 5],
  ['a loop of chained blocks', `
spin:
    addi s1, s1, 1
    andi t0, s1, 1
    beqz t0, 1f
    addi s2, s2, 1
    addi s3, s3, 1
    addi s4, s4, 1
1:
    addi s5, s5, 1
    j spin`, 5],
] as const) {
  test(`${name} stops at the run's budget (at most one block over)`, async () => {
    await bothWays(async jit => {
      const g = await boot(`j spin\n${loop}`, { jit });
      g.cpu.step(0, 10);
      for (const budget of [1, 2, 3, 5, 7, 64, 1000, 12_345, 1_000_000, 4, 999_999]) {
        const i0 = g.hart.instret(), j0 = g.jitInsns();
        g.cpu.step(0, budget);
        const n = g.hart.instret() - i0;
        assert.ok(n >= budget && n <= budget + (jit ? longest - 1 : 0), `budget ${budget}: ran ${n}`);
        if (jit) assert.equal(g.jitInsns() - j0, n, 'all translated');
      }
      return { g, result: null };
    }, { minJit: 0.99, compare: false });
  });
}

// ---- 7. chaining ----

/** xorshift64 steps and a 3-way branch per iteration: 6 blocks, 13 to 15 instructions. */
const CHAIN = (iterations: number, rvc: boolean): string => `
${rvc ? '.option rvc' : ''}
    li s1, ${iterations}
    li a0, 88172645463325252
loop:
    slli t0, a0, 13
    xor a0, a0, t0
    srli t0, a0, 7
    xor a0, a0, t0
    slli t0, a0, 17
    xor a0, a0, t0
    andi t1, a0, 3
    beqz t1, case0
    addi t1, t1, -1
    beqz t1, case1
    add a2, a2, a0
    j join
case0:
    addi a3, a3, 1
    j join
case1:
    sub a4, a4, a0
join:
    addi s1, s1, -1
    bnez s1, loop
    halt`;

function chainModel(iterations: number): bigint[] {
  const M = (1n << 64n) - 1n;
  let x = 88172645463325252n, a2 = 0n, a3 = 0n, a4 = 0n;
  for (let i = 0; i < iterations; i++) {
    x ^= (x << 13n) & M; x ^= x >> 7n; x ^= (x << 17n) & M;
    const k = x & 3n;
    if (k === 0n) a3++; else if (k === 1n) a4 = (a4 - x) & M; else a2 = (a2 + x) & M;
  }
  return [x, a2, a3, a4];
}

for (const [iterations, rvc] of [[1_000_000, false], [200_000, true]] as const) {
  test(`chained blocks: ${iterations} iterations of a branchy loop${rvc ? ' (compressed code)' : ''} match the interpreter`, async () => {
    const [r] = await bothWays(async jit => {
      const g = await boot(CHAIN(iterations, rvc), { jit });
      g.run(50_000_000, 1_000_000);
      assert.ok(g.cpu.stopped);
      if (jit) assert.ok(g.cpu.jit!.stats.blocks >= 6 && g.cpu.jit!.stats.blocks < 20, `${g.cpu.jit!.stats.blocks} blocks`);
      return { g, result: { regs: regs(g.hart), instret: g.hart.instret() } };
    }, { minJit: 0.999 });
    assert.deepEqual([S.a0, S.a2, S.a3, S.a4].map(i => r.regs[i - 1]), chainModel(iterations));
  });
}
