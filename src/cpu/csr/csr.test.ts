// CSR WARL fields, restricted views and counter access, from the privileged spec (machine.adoc: misa,
// mstatus, medeleg/mideleg, mie/mip, mcounteren; supervisor.adoc: sstatus, sie/sip, scounteren) and the
// unprivileged "F" chapter (fcsr).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Csr, Priv } from './numbers.js';
import { boot, csrInsn, MS, type Machine } from '../interp/privileged-testing.js';

const x = (m: Machine, ...regs: number[]): bigint[] => regs.map(r => m.hart.x(r));

test('misa reads RV64 with I M A F D C S U, and ignores writes', async () => {
  const m = await boot(`
    csrr a0, misa
    csrw misa, zero
    csrr a1, misa
    halt`);
  const ext = [...'IMAFDCSU'].reduce((v, c) => v | (1n << BigInt(c.charCodeAt(0) - 65)), 0n);
  assert.equal(m.hart.x(10), (2n << 62n) | ext);
  assert.equal(m.hart.x(11), m.hart.x(10));
});

test('mstatus.UXL and SXL read 2 and are not writable; sstatus.UXL reads 2', async () => {
  const m = await boot(`
    csrr a0, mstatus
    csrw mstatus, zero
    csrr a1, mstatus
    li t0, 0xf << 32
    csrs mstatus, t0
    csrr a2, mstatus
    csrr a3, sstatus
    halt`);
  for (const v of x(m, 10, 11, 12)) assert.equal((v >> 32n) & 0xfn, 0xan);
  assert.equal((m.hart.x(13) >> 32n) & 0xfn, 2n);
});

test('mstatus.MPP written with the reserved value 2 reads back a legal mode', async () => {
  const m = await boot(`
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 2 << 11
    csrs mstatus, t0
    csrr a0, mstatus
    li t0, 1 << 11
    csrw mstatus, t0
    csrr a1, mstatus
    halt`);
  assert.ok([0n, 1n, 3n].includes((m.hart.x(10) >> 11n) & 3n));
  assert.equal((m.hart.x(11) >> 11n) & 3n, 1n, 'S is legal and kept');
});

test('mstatus: only implemented fields are writable (no UBE/MBE/SBE, VS, XS)', async () => {
  const m = await boot(`
    li t0, -1
    csrw mstatus, t0
    csrr a0, mstatus
    halt`);
  const v = m.hart.x(10);
  assert.equal(v & (1n << 6n), 0n, 'UBE');
  assert.equal(v & (3n << 9n), 0n, 'VS');
  assert.equal(v & (3n << 15n), 0n, 'XS');
  assert.equal((v >> 36n) & 3n, 0n, 'SBE, MBE');
  assert.equal(v & MS.MPP, MS.MPP);
  assert.equal(v & MS.SD, MS.SD, 'FS = Dirty');
});

test('medeleg: bit 11 (ecall from M) is not writable; others are', async () => {
  const m = await boot(`
    li t0, -1
    csrw medeleg, t0
    csrr a0, medeleg
    li t0, 1 << 11
    csrw medeleg, t0
    csrr a1, medeleg
    halt`);
  assert.equal(m.hart.x(10) & (1n << 11n), 0n);
  const want = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15].reduce((v, b) => v | (1n << BigInt(b)), 0n);
  assert.equal(m.hart.x(10) & want, want);
  assert.equal(m.hart.x(11), 0n);
});

test('mideleg: only the supervisor interrupt bits are writable', async () => {
  const m = await boot(`
    li t0, -1
    csrw mideleg, t0
    csrr a0, mideleg
    halt`);
  assert.equal(m.hart.x(10), 0x222n);
});

test('sstatus is a restricted view of mstatus', async () => {
  const m = await boot(`
    li t0, -1
    csrw mstatus, t0
    csrr a0, sstatus
    csrw mstatus, zero
    li t0, -1
    csrw sstatus, t0
    csrr a1, mstatus
    csrr a2, sstatus
    li t0, 1 << 18
    csrc sstatus, t0
    csrr a3, mstatus
    halt`);
  const [viewAll, mAfter, sAfter, cleared] = x(m, 10, 11, 12, 13);
  const mOnly = MS.MIE | MS.MPIE | MS.MPP | MS.MPRV | MS.TVM | MS.TW | MS.TSR;
  assert.equal(viewAll & mOnly, 0n, 'M-only fields hidden');
  const sFields = MS.SIE | MS.SPIE | MS.SPP | MS.FS | MS.SUM | MS.MXR;
  assert.equal(viewAll & sFields, sFields);
  assert.equal(mAfter & mOnly, 0n, 'writing sstatus leaves M-only fields');
  assert.equal(mAfter & sFields, sFields, 'and writes the S fields of mstatus');
  assert.equal(sAfter, mAfter & sAfter);
  assert.equal(cleared & MS.SUM, 0n);
});

test('sie is mie masked by mideleg', async () => {
  const m = await boot(`
    li t0, 0xaaa
    csrw mie, t0
    csrr a0, sie           # nothing delegated
    li t1, -1
    csrw sie, t1
    csrr a1, mie
    li t0, 0x22
    csrw mideleg, t0
    csrr a2, sie
    csrw sie, zero
    csrr a3, mie
    halt`);
  assert.deepEqual(x(m, 10, 11, 12, 13), [0n, 0xaaan, 0x22n, 0xa88n]);
});

test('sip is mip masked by mideleg; from S only SSIP is writable', async () => {
  const m = await boot(`
    la t0, trap
    csrw mtvec, t0
    pmp_all
    li t0, 0x222
    csrw mip, t0
    csrr a0, sip           # nothing delegated
    csrw mideleg, t0
    csrr a1, sip
    enter 1, s
.align 2
trap:
    halt
s:  csrw sip, zero
    csrr a2, sip
    li t0, 0x222
    csrs sip, t0
    csrr a3, sip
    halt`);
  assert.equal(m.hart.priv, Priv.S);
  assert.deepEqual(x(m, 10, 11, 12, 13), [0n, 0x222n, 0x220n, 0x222n]);
});

test('fflags and frm are views of fcsr', async () => {
  const m = await boot(`
    li t0, 0x1ff
    csrw fcsr, t0
    csrr a0, fcsr          # 8 bits
    csrr a1, fflags
    csrr a2, frm
    csrwi frm, 2
    csrr a3, fcsr
    csrwi fflags, 0x1
    csrr a4, fcsr
    fsflagsi s1, 0x3
    csrr a5, fcsr
    fsrmi s2, 4
    csrr a6, fcsr
    halt`);
  assert.deepEqual(x(m, 10, 11, 12, 13, 14, 15, 16), [0xffn, 0x1fn, 7n, 0x5fn, 0x41n, 0x43n, 0x83n]);
  assert.deepEqual(x(m, 9, 18), [1n, 2n]);
});

test('mtvec MODE >= 2 is not kept; mepc bit 0 reads 0', async () => {
  const m = await boot(`
    li t0, 0x80001002
    csrw mtvec, t0
    csrr a0, mtvec
    li t0, 0x80001235
    csrw mepc, t0
    csrr a1, mepc
    halt`);
  assert.ok((m.hart.x(10) & 3n) < 2n);
  assert.equal(m.hart.x(11), 0x80001234n);
});

/** Reads cycle, time, instret in S or U with the given counter-enables; returns the illegal-instruction log. */
async function counters(priv: 0 | 1, mcounteren: number, scounteren: number): Promise<Machine> {
  return boot(`
    la t0, h
    csrw mtvec, t0
    pmp_all
    li t0, ${mcounteren}
    csrw mcounteren, t0
    li t0, ${scounteren}
    csrw scounteren, t0
    li a0, -1
    li a1, -1
    li a2, -1
    enter ${priv}, low
    record h, m
low:
    rdcycle a0
    rdtime a1
    rdinstret a2
    rdinstret a3
    halt`);
}

/** The four reads `counters` makes (a0..a3), and which counter (0 cycle, 1 time, 2 instret) each reads. */
const READS = [csrInsn(2, 10, Csr.cycle, 0), csrInsn(2, 11, Csr.time, 0), csrInsn(2, 12, Csr.instret, 0), csrInsn(2, 13, Csr.instret, 0)];
const COUNTER = [0, 1, 2, 2];
const deniedReads = (ok: readonly number[]): number[] => [0, 1, 2, 3].filter(i => !ok.includes(COUNTER[i]));

test('counters in S need mcounteren', async () => {
  for (const [men, ok] of [[0, []], [2, [1]], [7, [0, 1, 2]], [5, [0, 2]]] as const) {
    const m = await counters(1, men, 0);
    assert.deepEqual(m.log().map(e => [e.cause, e.tval]), deniedReads(ok).map(i => [2n, READS[i]]), `mcounteren=${men}`);
    for (const i of ok) assert.notEqual(m.hart.x(10 + i), (1n << 64n) - 1n, `mcounteren=${men} reg ${i}`);
  }
});

test('counters in U need both mcounteren and scounteren', async () => {
  for (const [men, sen, ok] of [[7, 0, []], [0, 7, []], [7, 7, [0, 1, 2]], [7, 5, [0, 2]], [2, 7, [1]]] as const) {
    const m = await counters(0, men, sen);
    assert.equal(m.hart.priv, Priv.U);
    assert.deepEqual(m.log().map(e => [e.cause, e.tval]), deniedReads(ok).map(i => [2n, READS[i]]), `m=${men} s=${sen}`);
    for (const i of ok) assert.notEqual(m.hart.x(10 + i), (1n << 64n) - 1n, `m=${men} s=${sen} reg ${i}`);
  }
});

test('instret counts retired instructions as seen from U', async () => {
  const m = await counters(0, 7, 7);
  assert.ok(m.hart.x(13) > m.hart.x(12) && m.hart.x(12) > 0n);
  assert.ok(m.hart.x(13) - m.hart.x(12) <= 2n);
});
