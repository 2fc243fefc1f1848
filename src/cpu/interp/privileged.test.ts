// Traps, xRET, delegation, privileged-instruction checks and interrupts, from the privileged spec
// (machine.adoc: "Machine Trap Vector", mstatus, medeleg/mideleg, mip/mie, WFI; supervisor.adoc: sstatus, SRET).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Csr, Irq, Priv } from '../csr/numbers.js';
import { boot, csrInsn, INTERRUPT, MS, type Machine } from './privileged-testing.js';

/** M-mode trap handler that stops the run: the test then inspects mcause/mepc/mtval. */
const MTRAP = `
  la t0, mtrap
  csrw mtvec, t0
  pmp_all
  j main
.align 2
mtrap:
  halt
main:
`;
const csr = (m: Machine, n: number): bigint => m.hart.csrRead(n);
const mstatus = (m: Machine): bigint => csr(m, Csr.mstatus);
const mpp = (m: Machine): bigint => (mstatus(m) >> 11n) & 3n;

test('illegal instruction: mcause 2, mepc, mtval = the instruction bits', async () => {
  const m = await boot(`${MTRAP}
    la s1, bad
bad:
    .4byte 0x1234500b      # custom-0: not implemented
    li a0, 1
    halt`);
  assert.equal(m.hart.priv, Priv.M);
  assert.equal(csr(m, Csr.mcause), 2n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(9));
  assert.equal(csr(m, Csr.mtval), 0x1234500bn);
  assert.equal(m.hart.x(10), 0n);
});

test('illegal compressed instruction: mtval holds its 16 bits', async () => {
  // c.fld f8, 0(s0) with mstatus.FS = Off.
  const m = await boot(`${MTRAP}
    li t0, 3 << 13
    csrc mstatus, t0
    la s1, bad
bad:
    .2byte 0x2000
    .2byte 0x0001          # c.nop, keeps alignment
    halt`);
  assert.equal(csr(m, Csr.mcause), 2n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(9));
  assert.equal(csr(m, Csr.mtval), 0x2000n);
});

test('ecall from M, S and U: causes 11, 9, 8 with mepc at the ecall', async () => {
  const m = await boot(`
    la t0, h
    csrw mtvec, t0
    pmp_all
    la s2, e_m
e_m: ecall
    enter 1, smode
    record h, m
smode:
    la s3, e_s
e_s: ecall
    la t0, umode
    csrw sepc, t0
    li t0, 1 << 8
    csrc sstatus, t0       # SPP = U
    sret
umode:
    la s4, e_u
e_u: ecall
    halt`);
  const log = m.log();
  assert.deepEqual(log.map(e => e.cause), [11n, 9n, 8n]);
  assert.deepEqual(log.map(e => e.epc), [m.hart.x(18), m.hart.x(19), m.hart.x(20)]);
  assert.equal(m.hart.priv, Priv.U);
});

test('ebreak: cause 3, mepc at the ebreak, mtval 0 or its address', async () => {
  const m = await boot(`${MTRAP}
    la s1, b
b:  ebreak
    halt`);
  assert.equal(csr(m, Csr.mcause), 3n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(9));
  assert.ok([0n, m.hart.x(9)].includes(csr(m, Csr.mtval)));
});

test('mret: priv from MPP, MIE from MPIE, then MPIE = 1 and MPP = U', async () => {
  for (const mpie of [1n, 0n]) {
    const m = await boot(`${MTRAP}
      li t0, 1 << 3
      csrc mstatus, t0     # MIE = 0
      li t0, ${Number(mpie) << 7}
      csrs mstatus, t0
      enter 1, s
s:    halt`);
    assert.equal(m.hart.priv, Priv.S);
    assert.equal((mstatus(m) & MS.MIE) !== 0n, mpie === 1n);
    assert.equal(mstatus(m) & MS.MPIE, MS.MPIE);
    assert.equal(mpp(m), 0n);
  }
});

test('mret to U clears MPRV', async () => {
  const m = await boot(`${MTRAP}
    li t0, 1 << 17
    csrs mstatus, t0
    enter 0, u
u:  halt`);
  assert.equal(m.hart.priv, Priv.U);
  assert.equal(mstatus(m) & MS.MPRV, 0n);
});

test('sret: priv from SPP, SIE from SPIE, then SPIE = 1 and SPP = U', async () => {
  const m = await boot(`${MTRAP}
    li t0, (1 << 8) | (1 << 5)
    csrs sstatus, t0       # SPP = S, SPIE = 1
    li t0, 1 << 1
    csrc sstatus, t0       # SIE = 0
    la t0, s
    csrw sepc, t0
    sret                   # legal in M: to S
s:  csrr s1, sstatus
    la t0, u
    csrw sepc, t0
    li t0, 1 << 5
    csrc sstatus, t0       # SPIE = 0 (SIE is 1 now)
    sret                   # to U (SPP was cleared)
u:  halt`);
  const s1 = m.hart.x(9);
  assert.equal(s1 & MS.SIE, MS.SIE, 'SIE <- SPIE (1)');
  assert.equal(s1 & MS.SPIE, MS.SPIE);
  assert.equal(s1 & MS.SPP, 0n);
  assert.equal(m.hart.priv, Priv.U);
  assert.equal(mstatus(m) & (MS.SIE | MS.SPIE | MS.SPP), MS.SPIE, 'SIE <- SPIE (0), SPIE = 1, SPP = U');
});

const DELEG = (medeleg: number, from: 0 | 1) => `
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    pmp_all
    li t0, ${medeleg}
    csrw medeleg, t0
    li t0, 1 << 1
    csrs sstatus, t0       # SIE = 1: becomes SPIE
    enter ${from}, lower
.align 2
mtrap:
    li s2, 3
    halt
.align 2
strap:
    li s2, 1
    halt
lower:
    la s1, e
e:  ecall`;

test('medeleg: ecall from U delegated to S lands at stvec with scause 8, SPP = U', async () => {
  const m = await boot(DELEG(1 << 8, 0));
  assert.equal(m.hart.x(18), 1n);
  assert.equal(m.hart.priv, Priv.S);
  assert.equal(csr(m, Csr.scause), 8n);
  assert.equal(csr(m, Csr.sepc), m.hart.x(9));
  assert.equal(csr(m, Csr.stval), 0n);
  assert.equal(mstatus(m) & (MS.SPP | MS.SIE | MS.SPIE), MS.SPIE);
  assert.equal(csr(m, Csr.mcause), 0n, 'M-mode trap CSRs untouched');
});

test('medeleg: ecall from S delegated to S sets SPP = S', async () => {
  const m = await boot(DELEG(1 << 9, 1));
  assert.equal(m.hart.priv, Priv.S);
  assert.equal(csr(m, Csr.scause), 9n);
  assert.equal(mstatus(m) & MS.SPP, MS.SPP);
});

test('medeleg: a non-delegated ecall from U goes to M with MPP = U', async () => {
  const m = await boot(DELEG(1 << 9, 0));
  assert.equal(m.hart.x(18), 3n);
  assert.equal(m.hart.priv, Priv.M);
  assert.equal(csr(m, Csr.mcause), 8n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(9));
  assert.equal(mpp(m), 0n);
  assert.equal(csr(m, Csr.scause), 0n);
});

test('medeleg: traps from M-mode are never delegated', async () => {
  const m = await boot(`
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    li t0, 1 << 2
    csrw medeleg, t0
    .4byte 0x1234500b
.align 2
mtrap:
    li s2, 3
    halt
.align 2
strap:
    li s2, 1
    halt`);
  assert.equal(m.hart.x(18), 3n);
  assert.equal(csr(m, Csr.mcause), 2n);
});

const VECTORS = Array.from({ length: 12 }, (_, i) => `  j v${i}`).join('\n') + '\n' +
  Array.from({ length: 12 }, (_, i) => `v${i}: li s1, ${i}\n  halt`).join('\n');

test('vectored mtvec: interrupts go to base + 4 * cause, exceptions to base', async () => {
  const src = (body: string): string => `
    la t0, vec
    ori t0, t0, 1
    csrw mtvec, t0
    li s1, -1
    ${body}
    halt
.align 8
vec:
${VECTORS}`;
  const e = await boot(src('ebreak'));
  assert.equal(e.hart.x(9), 0n);
  assert.equal(csr(e, Csr.mcause), 3n);
  // Machine timer interrupt (7) from the device line; supervisor software interrupt (1) written to mip.
  const t = await boot(src(`li t0, 1 << 7
    csrw mie, t0
    csrsi mstatus, 8`), m => m.hart.setPending(Irq.MTI, true));
  assert.equal(t.hart.x(9), 7n);
  assert.equal(csr(t, Csr.mcause), INTERRUPT | 7n);
  const s = await boot(src(`li t0, 1 << 1
    csrw mie, t0
    csrsi mstatus, 8
    csrsi mip, 2`));
  assert.equal(s.hart.x(9), 1n);
});

test('CSR privilege: M CSRs from S and S CSRs from U are illegal', async () => {
  const m = await boot(`${MTRAP}
    enter 1, s
s:  csrr a0, mstatus
    halt`);
  assert.equal(csr(m, Csr.mcause), 2n);
  assert.equal(csr(m, Csr.mtval), csrInsn(2, 10, Csr.mstatus, 0));
  assert.equal(mpp(m), 1n);
  const u = await boot(`${MTRAP}
    enter 0, u
u:  csrr a0, sstatus
    halt`);
  assert.equal(csr(u, Csr.mcause), 2n);
  assert.equal(mpp(u), 0n);
});

test('read-only CSRs: csrw mhartid is illegal, reads (rs1 = x0 / uimm = 0) are legal', async () => {
  const m = await boot(`${MTRAP}
    li a0, 7
    csrr a0, mhartid
    csrrs a1, mhartid, x0
    csrrci a2, mhartid, 0
    csrrs a3, mvendorid, zero
    li s1, 1
    csrw mhartid, zero
    li s1, 2
    halt`);
  assert.deepEqual([10, 11, 12, 13].map(i => m.hart.x(i)), [0n, 0n, 0n, 0n]);
  assert.equal(m.hart.x(9), 1n);
  assert.equal(csr(m, Csr.mcause), 2n);
  assert.equal(csr(m, Csr.mtval), csrInsn(1, 0, Csr.mhartid, 0));
});

test('csrrs with a zero-valued but non-x0 rs1 on a read-only CSR is illegal', async () => {
  const m = await boot(`${MTRAP}
    li s1, 1
    csrrs a0, mhartid, zero
    li t1, 0
    csrrs a0, mhartid, t1
    li s1, 2
    halt`);
  assert.equal(m.hart.x(9), 1n);
  assert.equal(csr(m, Csr.mcause), 2n);
});

/** Runs `body` in S-mode with mstatus bits `set`; returns the machine (trap CSRs set if it trapped). */
const inS = (set: bigint, body: string): Promise<Machine> => boot(`${MTRAP}
    li t0, ${set}
    csrs mstatus, t0
    enter 1, s
s:  li s1, 1
    ${body}
    li s1, 2
    halt`);

test('TSR: sret in S is illegal when set, legal when clear', async () => {
  const t = await inS(MS.TSR, 'sret');
  assert.equal(t.hart.x(9), 1n);
  assert.equal(csr(t, Csr.mcause), 2n);
  assert.equal(csr(t, Csr.mtval), 0x10200073n);
  const ok = await inS(0n, `la t0, 1f
    csrw sepc, t0
    li t0, 1 << 8
    csrs sstatus, t0
    sret
1:`);
  assert.equal(ok.hart.x(9), 2n);
  assert.equal(ok.hart.priv, Priv.S);
});

test('TW: wfi in S is illegal when set', async () => {
  const t = await inS(MS.TW, 'wfi');
  assert.equal(t.hart.x(9), 1n);
  assert.equal(csr(t, Csr.mcause), 2n);
  assert.equal(csr(t, Csr.mtval), 0x10500073n);
});

test('TVM: satp access and sfence.vma are illegal in S when set', async () => {
  for (const body of ['csrr a0, satp', 'csrw satp, zero', 'sfence.vma']) {
    const t = await inS(MS.TVM, body);
    assert.equal(t.hart.x(9), 1n, body);
    assert.equal(csr(t, Csr.mcause), 2n, body);
  }
  const ok = await inS(0n, 'csrr a0, satp\n sfence.vma');
  assert.equal(ok.hart.x(9), 2n);
  const m = await boot(`li t0, ${MS.TVM}\n csrs mstatus, t0\n csrr a0, satp\n sfence.vma\n li s1, 2\n halt`);
  assert.equal(m.hart.x(9), 2n, 'TVM does not affect M-mode');
});

test('FS = Off: FP instructions and FP CSRs are illegal', async () => {
  for (const [body, bits] of [['fadd.d f1, f2, f3', 0x023170d3n], ['fld f1, 0(sp)', 0x00013087n],
    ['fmv.x.d a0, f1', 0xe2008553n], ['csrr a0, fcsr', csrInsn(2, 10, Csr.fcsr, 0)]] as const) {
    const m = await boot(`${MTRAP}
      li t0, 3 << 13
      csrc mstatus, t0
      li sp, 0x80100000
      ${body}
      li s1, 2
      halt`);
    assert.equal(m.hart.x(9), 0n, body);
    assert.equal(csr(m, Csr.mcause), 2n, body);
    assert.equal(csr(m, Csr.mtval), bits, body);
  }
});

test('FP writes set FS = Dirty and SD', async () => {
  for (const body of ['fadd.d f1, f2, f3', 'fmv.d.x f1, a0', 'fld f1, 0(sp)', 'csrwi fflags, 1']) {
    const m = await boot(`
      li t0, 3 << 13
      csrc mstatus, t0
      li t0, 1 << 13
      csrs mstatus, t0     # Initial
      li sp, 0x80100000
      csrr s2, mstatus
      ${body}
      halt`);
    assert.equal(m.hart.x(18) & (MS.FS | MS.SD), 1n << 13n, `${body}: Initial, SD clear before`);
    assert.equal(mstatus(m) & (MS.FS | MS.SD), MS.FS | MS.SD, body);
    assert.equal(csr(m, Csr.sstatus) >> 63n, 1n, `${body}: sstatus.SD`);
  }
});

// ---- interrupts ----

/** S-mode with SSIP delegated and enabled; stvec halts with s2 = 1, mtvec with s2 = 3. */
const SSI = (sie: 0 | 1, mode: 0 | 1, body: string, mie = 2) => `
    la t0, mtrap
    csrw mtvec, t0
    la t0, strap
    csrw stvec, t0
    pmp_all
    li t0, 1 << 1
    csrw mideleg, t0
    li t0, ${mie}
    csrw mie, t0
    li t0, 1 << 1
    csr${sie ? 's' : 'c'} mstatus, t0
    enter ${mode}, low
.align 2
mtrap:
    li s2, 3
    halt
.align 2
strap:
    li s2, 1
    halt
low:
    ${body}
    li s1, 1
    halt`;

test('delegated SSIP is taken in S when sstatus.SIE = 1, at the next instruction', async () => {
  const m = await boot(SSI(1, 1, `csrsi sip, 2\nafter:`));
  assert.equal(m.hart.x(18), 1n);
  assert.equal(m.hart.priv, Priv.S);
  assert.equal(csr(m, Csr.scause), INTERRUPT | 1n);
  assert.equal(m.hart.x(9), 0n);
  assert.equal(mstatus(m) & (MS.SPP | MS.SPIE | MS.SIE), MS.SPP | MS.SPIE);
});

test('delegated SSIP is not taken in S when SIE = 0, until SIE is set', async () => {
  const m = await boot(SSI(0, 1, 'csrsi sip, 2\n li s3, 1'));
  assert.equal(m.hart.x(9), 1n, 'ran on');
  assert.equal(m.hart.x(18), 0n);
  assert.equal(csr(m, Csr.sip) & 2n, 2n);
  const t = await boot(SSI(0, 1, 'csrsi sip, 2\n li s3, 1\n csrsi sstatus, 2\n li s4, 1'));
  assert.equal(t.hart.x(19), 1n);
  assert.equal(t.hart.x(20), 0n);
  assert.equal(t.hart.x(18), 1n);
});

test('delegated SSIP is taken from U-mode regardless of SIE', async () => {
  const m = await boot(SSI(0, 0, 'li s3, 1'), h => h.hart.csrWrite(Csr.mip, 2n));
  assert.equal(m.hart.x(18), 1n);
  assert.equal(m.hart.priv, Priv.S);
  assert.equal(csr(m, Csr.scause), INTERRUPT | 1n);
  assert.equal(mstatus(m) & MS.SPP, 0n);
  assert.equal(m.hart.x(19), 0n, 'taken before the first U instruction');
});

test('a delegated interrupt is never taken in M-mode', async () => {
  const m = await boot(`${MTRAP}
    li t0, 2
    csrw mideleg, t0
    csrw mie, t0
    csrsi mstatus, 10      # MIE, SIE
    csrsi mip, 2
    li s1, 1
    halt`);
  assert.equal(m.hart.x(9), 1n);
  assert.equal(csr(m, Csr.mcause), 0n);
});

test('M-mode interrupts are masked by mstatus.MIE in M, taken once it is set', async () => {
  const m = await boot(`${MTRAP}
    li t0, 1 << 1
    csrw mie, t0
    csrsi mip, 2
    li s1, 1
    la s3, 1f
    csrsi mstatus, 8
1:  li s2, 1
    halt`);
  assert.equal(m.hart.x(9), 1n);
  assert.equal(m.hart.x(18), 0n);
  assert.equal(csr(m, Csr.mcause), INTERRUPT | 1n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(19));
  assert.equal(mstatus(m) & (MS.MIE | MS.MPIE), MS.MPIE);
});

test('interrupt priority: MEI > MSI > MTI > SEI > SSI > STI', async () => {
  const order = [Irq.MEI, Irq.MSI, Irq.MTI, Irq.SEI, Irq.SSI, Irq.STI];
  for (let i = 0; i < order.length; i++) {
    const pending = order.slice(i);
    const m = await boot(`${MTRAP}
      li t0, 0xaaa
      csrw mie, t0
      csrsi mstatus, 8
      li s1, 1
      halt`, m => {
      let sw = 0n;
      for (const irq of pending) {
        if (irq === Irq.MEI || irq === Irq.MSI || irq === Irq.MTI) m.hart.setPending(irq, true);
        else sw |= 1n << BigInt(irq);
      }
      m.hart.csrWrite(Csr.mip, sw);
    });
    assert.equal(csr(m, Csr.mcause), INTERRUPT | BigInt(order[i]), `pending ${pending}`);
  }
});

test('interrupts to M take priority over interrupts to S (STI to M before delegated SSI)',
  async () => {
  const m = await boot(SSI(1, 1, 'li s3, 1', 0x22), h => h.hart.csrWrite(Csr.mip, 0x22n));
  assert.equal(m.hart.x(18), 3n, 'trapped to M');
  assert.equal(csr(m, Csr.mcause), INTERRUPT | 5n);
});

test('wfi with an interrupt pending in mie & mip but globally disabled continues', async () => {
  const m = await boot(`${MTRAP}
    li t0, 1 << 1
    csrw mie, t0
    csrsi mip, 2
    wfi
    li s1, 1
    halt`);
  assert.equal(m.hart.waiting, false);
  assert.equal(m.hart.x(9), 1n);
  assert.equal(csr(m, Csr.mcause), 0n);
});

test('wfi with nothing pending waits; a device interrupt wakes it, mepc after the wfi', async () => {
  const m = await boot(`${MTRAP}
    li t0, 1 << 7
    csrw mie, t0
    csrsi mstatus, 8
    la s3, 1f
    wfi
1:  li s1, 1
    halt`);
  assert.equal(m.hart.waiting, true);
  assert.equal(m.cpu.stopped, false);
  m.hart.setPending(Irq.MTI, true);
  assert.equal(m.hart.waiting, false);
  m.run();
  assert.equal(m.cpu.stopped, true);
  assert.equal(csr(m, Csr.mcause), INTERRUPT | 7n);
  assert.equal(csr(m, Csr.mepc), m.hart.x(19));
  assert.equal(m.hart.x(9), 0n);
});
