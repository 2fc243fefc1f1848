/**
 * fpExecute against the unpriv spec's F and D chapters and IEEE 754-2008, case by case: rounding
 * modes on ties and near-ties, overflow and underflow (tininess after rounding), the five flags,
 * NaN boxing and canonical NaNs, conversions and their saturation, min/max, compares, classify,
 * fused multiply-add, and the hart-state side effects (fcsr, mstatus.FS, x0, illegal rm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FpHarness, MSTATUS, encode, f32bits, f64bits } from './testing.js';
import { fpExecute } from './execute.js';
import { FpOp } from '../../isa/rv-fd.js';

const RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4, DYN = 7;
const NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16;
const MODES = [RNE, RTZ, RDN, RUP, RMM];

const h = new FpHarness();

/** Binary32 bits of an exactly representable value. */
function F(v: number): number {
  assert.ok(Number.isNaN(v) || Math.fround(v) === v, `${v} is not a binary32 value`);
  return f32bits(v);
}
const D = f64bits;

const QNAN32 = 0x7fc0_0000, SNAN32 = 0x7f80_0001, MAX32 = 0x7f7f_ffff, MINSUB32 = 0x0000_0001, MINNORM32 = 0x0080_0000;
const QNAN64 = 0x7ff8_0000_0000_0000n, SNAN64 = 0x7ff0_0000_0000_0001n, MAX64 = 0x7fef_ffff_ffff_ffffn;
const INF32 = 0x7f80_0000, NINF32 = 0xff80_0000, INF64 = 0x7ff0_0000_0000_0000n, NINF64 = 0xfff0_0000_0000_0000n;
const BOX = 0xffff_ffff_0000_0000n;

/** Runs a binary32 op (f1, f2, f3 = NaN-boxed args) writing f0; checks the result is NaN-boxed. */
function opS(name: string, rm: number, ...args: number[]): [number, number] {
  h.clearFlags(); h.setF(0, 0n);
  args.forEach((b, i) => h.setS(i + 1, b));
  assert.equal(h.exec(name, { rd: 0, rs1: 1, rs2: 2, rs3: 3, rm }), 0, `${name} illegal`);
  const f = h.f(0);
  assert.equal(f >> 32n, 0xffff_ffffn, `${name} result not NaN-boxed`);
  return [Number(f & 0xffff_ffffn), h.fflags];
}

/** Runs a binary64 op (f1, f2, f3 = args) writing f0. */
function opD(name: string, rm: number, ...args: bigint[]): [bigint, number] {
  h.clearFlags(); h.setF(0, 0n);
  args.forEach((b, i) => h.setF(i + 1, b));
  assert.equal(h.exec(name, { rd: 0, rs1: 1, rs2: 2, rs3: 3, rm }), 0, `${name} illegal`);
  return [h.f(0), h.fflags];
}

/** Runs an op with f-register sources (raw 64-bit register contents) writing x10. */
function opX(name: string, rm: number, ...regs: bigint[]): [bigint, number] {
  h.clearFlags(); h.setX(10, 0x5555n);
  regs.forEach((b, i) => h.setF(i + 1, b));
  assert.equal(h.exec(name, { rd: 10, rs1: 1, rs2: 2, rm }), 0, `${name} illegal`);
  return [h.x(10), h.fflags];
}
const bs = (bits: number): bigint => BOX | BigInt(bits >>> 0);

/** Runs an op reading x11 and writing f0; returns the raw f0 contents. */
function opFromX(name: string, rm: number, x: bigint): [bigint, number] {
  h.clearFlags(); h.setF(0, 0n); h.setX(11, x);
  assert.equal(h.exec(name, { rd: 0, rs1: 11, rm }), 0, `${name} illegal`);
  return [h.f(0), h.fflags];
}

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** Expects per-mode results [RNE, RTZ, RDN, RUP, RMM] with the given flags in every mode. */
function eachMode<T>(run: (rm: number) => [T, number], want: T[], flags: number | number[], what: string): void {
  MODES.forEach((rm, i) => {
    const [r, f] = run(rm);
    assert.equal(r, want[i], `${what} rm=${rm}`);
    assert.equal(f, typeof flags === 'number' ? flags : flags[i], `${what} flags rm=${rm}`);
  });
}

// ---- Rounding modes -------------------------------------------------------------------------

test('fadd.s: an exact tie rounds per mode (RNE to even, RMM away)', () => {
  const up = F(1 + 2 ** -23), dn = F(1);
  eachMode((rm) => opS('fadd.s', rm, F(1), F(2 ** -24)), [dn, dn, dn, up, up], NX, '1 + 2^-24');
  const nup = F(-1 - 2 ** -23), ndn = F(-1);
  eachMode((rm) => opS('fadd.s', rm, F(-1), F(-(2 ** -24))), [ndn, ndn, nup, ndn, nup], NX, '-1 - 2^-24');
  // A tie whose lower neighbour is odd: RNE goes up to the even one.
  const odd = 1 + 2 ** -23, even = 1 + 2 ** -22;
  eachMode((rm) => opS('fadd.s', rm, F(odd), F(2 ** -24)), [F(even), F(odd), F(odd), F(even), F(even)], NX, 'odd tie');
});

test('fadd.s: just above and just below a tie', () => {
  const lo = F(1), hi = F(1 + 2 ** -23);
  eachMode((rm) => opS('fadd.s', rm, F(1), F(2 ** -24 + 2 ** -40)), [hi, lo, lo, hi, hi], NX, 'above tie');
  eachMode((rm) => opS('fadd.s', rm, F(1), F(2 ** -24 - 2 ** -40)), [lo, lo, lo, hi, lo], NX, 'below tie');
  // Far below the last place: only the sticky bit remains.
  eachMode((rm) => opS('fadd.s', rm, F(1), F(2 ** -100)), [lo, lo, lo, hi, lo], NX, 'sticky');
  eachMode((rm) => opS('fsub.s', rm, F(1), F(2 ** -100)), [lo, F(1 - 2 ** -24), F(1 - 2 ** -24), lo, lo], NX, '1 - tiny');
});

test('fadd.d / fsub.d: ties and exactness at binary64 precision', () => {
  const one = D(1), up = D(1 + 2 ** -52);
  eachMode((rm) => opD('fadd.d', rm, D(1), D(2 ** -53)), [one, one, one, up, up], NX, '1 + 2^-53');
  eachMode((rm) => opD('fadd.d', rm, D(1), D(2 ** -53 + 2 ** -105)), [up, one, one, up, up], NX, 'above tie');
  eachMode((rm) => opD('fsub.d', rm, D(1), D(2 ** -200)), [one, D(1 - 2 ** -53), D(1 - 2 ** -53), one, one], NX, '1 - tiny');
  eachMode((rm) => opD('fadd.d', rm, D(1.5), D(2.25)), Array(5).fill(D(3.75)), 0, 'exact');
});

test('fmul.d: a product that is an exact tie, and one just above half an ulp', () => {
  // 3 * (1 + 2^-52) = 3 + 1.5 * 2^-51: halfway between 3 + 2^-51 (odd) and 3 + 2^-50 (even).
  const odd = D(3 + 2 ** -51), even = D(3 + 2 ** -50);
  eachMode((rm) => opD('fmul.d', rm, D(3), D(1 + 2 ** -52)), [even, odd, odd, even, even], NX, 'tie');
  eachMode((rm) => opD('fmul.d', rm, D(-3), D(1 + 2 ** -52)), [D(-(3 + 2 ** -50)), D(-(3 + 2 ** -51)), D(-(3 + 2 ** -50)), D(-(3 + 2 ** -51)), D(-(3 + 2 ** -50))], NX, '-tie');
  // (1 + 2^-52)^2 = 1 + 2^-51 + 2^-104
  const r = D(1 + 2 ** -51), r1 = D(1 + 2 ** -51 + 2 ** -52);
  eachMode((rm) => opD('fmul.d', rm, D(1 + 2 ** -52), D(1 + 2 ** -52)), [r, r, r, r1, r], NX, 'square');
});

test('fdiv and fsqrt round per mode (1/3, sqrt 2) and are exact when they can be', () => {
  eachMode((rm) => opD('fdiv.d', rm, D(1), D(3)),
    [0x3fd5_5555_5555_5555n, 0x3fd5_5555_5555_5555n, 0x3fd5_5555_5555_5555n, 0x3fd5_5555_5555_5556n, 0x3fd5_5555_5555_5555n], NX, '1/3 d');
  eachMode((rm) => opS('fdiv.s', rm, F(1), F(3)), [0x3eaa_aaab, 0x3eaa_aaaa, 0x3eaa_aaaa, 0x3eaa_aaab, 0x3eaa_aaab], NX, '1/3 s');
  eachMode((rm) => opS('fdiv.s', rm, F(-1), F(3)), [0xbeaa_aaab, 0xbeaa_aaaa, 0xbeaa_aaab, 0xbeaa_aaaa, 0xbeaa_aaab], NX, '-1/3 s');
  // sqrt(2) = 1.41421356237309504880...; RN(binary64) = 0x3ff6a09e667f3bcd is above it, RN(binary32) below.
  eachMode((rm) => opD('fsqrt.d', rm, D(2)), [0x3ff6_a09e_667f_3bcdn, 0x3ff6_a09e_667f_3bccn, 0x3ff6_a09e_667f_3bccn, 0x3ff6_a09e_667f_3bcdn, 0x3ff6_a09e_667f_3bcdn], NX, 'sqrt 2 d');
  eachMode((rm) => opS('fsqrt.s', rm, F(2)), [0x3fb5_04f3, 0x3fb5_04f3, 0x3fb5_04f3, 0x3fb5_04f4, 0x3fb5_04f3], NX, 'sqrt 2 s');
  eachMode((rm) => opD('fsqrt.d', rm, D(2.25)), Array(5).fill(D(1.5)), 0, 'sqrt 2.25');
  eachMode((rm) => opS('fdiv.s', rm, F(1), F(4)), Array(5).fill(F(0.25)), 0, '1/4');
  eachMode((rm) => opD('fsqrt.d', rm, 1n), Array(5).fill(D(2 ** -537)), 0, 'sqrt of the smallest subnormal');
});

test('the static rm field overrides frm, and rm=7 uses frm', () => {
  h.frm = RNE;
  assert.deepEqual(opS('fadd.s', RUP, F(1), F(2 ** -100)), [F(1 + 2 ** -23), NX]);
  h.frm = RUP;
  assert.deepEqual(opS('fadd.s', DYN, F(1), F(2 ** -100)), [F(1 + 2 ** -23), NX]);
  h.frm = RTZ;
  assert.deepEqual(opD('fdiv.d', DYN, D(2), D(3)), [0x3fe5_5555_5555_5555n, NX]);
  h.frm = RNE;
  assert.deepEqual(opD('fdiv.d', DYN, D(2), D(3)), [0x3fe5_5555_5555_5555n, NX]);
  h.frm = RUP;
  assert.deepEqual(opD('fdiv.d', DYN, D(2), D(3)), [0x3fe5_5555_5555_5556n, NX]);
  h.frm = RNE;
});

// ---- Overflow and underflow -----------------------------------------------------------------

test('overflow: infinity or the largest finite value depending on mode and sign', () => {
  const pos = [INF64, MAX64, MAX64, INF64, INF64], neg = [NINF64, MAX64 | 1n << 63n, NINF64, MAX64 | 1n << 63n, NINF64];
  eachMode((rm) => opD('fmul.d', rm, MAX64, D(2)), pos, OF | NX, 'MAX*2');
  eachMode((rm) => opD('fmul.d', rm, MAX64, D(-2)), neg, OF | NX, '-MAX*2');
  eachMode((rm) => opD('fadd.d', rm, MAX64, MAX64), pos, OF | NX, 'MAX+MAX');
  eachMode((rm) => opS('fadd.s', rm, MAX32, MAX32), [INF32, MAX32, MAX32, INF32, INF32], OF | NX, 'MAX32+MAX32');
  const NMAX32 = (MAX32 | 0x8000_0000) >>> 0;
  eachMode((rm) => opS('fdiv.s', rm, F(-(2 ** 127)), F(2 ** -10)), [NINF32, NMAX32, NINF32, NMAX32, NINF32], OF | NX, '-2^127/2^-10');
});

test('overflow is judged on the rounded result: MAX + half an ulp', () => {
  // MAX64 + 2^970 is a tie between MAX (odd) and 2^1024: RNE/RMM overflow, RTZ/RDN give MAX without OF.
  eachMode((rm) => opD('fadd.d', rm, MAX64, D(2 ** 970)), [INF64, MAX64, MAX64, INF64, INF64],
    [OF | NX, NX, NX, OF | NX, OF | NX], 'MAX + half ulp');
  // Below the tie RNE stays finite; RUP still overflows.
  eachMode((rm) => opD('fadd.d', rm, MAX64, D(2 ** 969)), [MAX64, MAX64, MAX64, INF64, MAX64],
    [NX, NX, NX, OF | NX, NX], 'MAX + quarter ulp');
  eachMode((rm) => opS('fadd.s', rm, MAX32, F(2 ** 103)), [INF32, MAX32, MAX32, INF32, INF32],
    [OF | NX, NX, NX, OF | NX, OF | NX], 'MAX32 + half ulp');
});

test('underflow: exact subnormal results raise nothing; inexact tiny ones raise UF and NX', () => {
  assert.deepEqual(opS('fmul.s', RNE, MINNORM32, F(0.5)), [F(2 ** -127), 0]);
  assert.deepEqual(opD('fmul.d', RNE, D(2 ** -1022), D(0.5)), [D(2 ** -1023), 0]);
  assert.deepEqual(opD('fadd.d', RNE, 1n, 1n), [2n, 0]);
  // Half the smallest subnormal: a tie between 0 (even) and 2^-149.
  eachMode((rm) => opS('fmul.s', rm, MINSUB32, F(0.5)), [0, 0, 0, MINSUB32, MINSUB32], UF | NX, '2^-150');
  eachMode((rm) => opS('fmul.s', rm, MINSUB32, F(-0.5)), [0x8000_0000, 0x8000_0000, 0x8000_0001, 0x8000_0000, 0x8000_0001], UF | NX, '-2^-150');
  eachMode((rm) => opD('fmul.d', rm, 1n, D(0.5)), [0n, 0n, 0n, 1n, 1n], UF | NX, '2^-1075');
  eachMode((rm) => opD('fmul.d', rm, 1n, D(0.25)), [0n, 0n, 0n, 1n, 0n], UF | NX, '2^-1076');
});

test('underflow: tininess is detected after rounding (unpriv spec, "Subnormal Arithmetic")', () => {
  // v = (1 - 2^-24) * 2^-126: representable in 24 bits, so tiny; rounds (tie, RNE) to 2^-126: UF.
  assert.deepEqual(opS('fmul.s', RNE, F(2 - 2 ** -23), F(2 ** -127)), [MINNORM32, UF | NX]);
  // v = (1 - 2^-25) * 2^-126 rounds to 2^-126 even with an unbounded exponent: not tiny, no UF.
  assert.deepEqual(opXd('fcvt.s.d', RNE, D((1 - 2 ** -25) * 2 ** -126)), [MINNORM32, NX]);
  // Just below that: tiny (rounds to 1 - 2^-24 at 24 bits) but the result is still 2^-126.
  assert.deepEqual(opXd('fcvt.s.d', RNE, D((1 - 2 ** -25 - 2 ** -40) * 2 ** -126)), [MINNORM32, UF | NX]);
  // RUP: (1 - 2^-30) * 2^-126 rounds up to 2^-126 at 24 bits: not tiny; RTZ gives the largest subnormal: UF.
  assert.deepEqual(opXd('fcvt.s.d', RUP, D((1 - 2 ** -30) * 2 ** -126)), [MINNORM32, NX]);
  assert.deepEqual(opXd('fcvt.s.d', RTZ, D((1 - 2 ** -30) * 2 ** -126)), [0x007f_ffff, UF | NX]);
  // binary64: (1 - 2^-53) * 2^-1022 has 53 bits, so it is tiny, and rounds to 2^-1022 (tie, even).
  assert.deepEqual(opD('fmul.d', RNE, D(1 - 2 ** -53), D(2 ** -1022)), [D(2 ** -1022), UF | NX]);
  assert.deepEqual(opD('fmul.d', RTZ, D(1 - 2 ** -53), D(2 ** -1022)), [D(2 ** -1022) - 1n, UF | NX]);
  // ... while (1 - 2^-27)(1 + 2^-27) * 2^-1022 = (1 - 2^-54) * 2^-1022 rounds to 2^-1022 at 53 bits: no UF.
  const a = D(1 - 2 ** -27), b = D((1 + 2 ** -27) * 2 ** -1022);
  assert.deepEqual(opD('fmul.d', RNE, a, b), [D(2 ** -1022), NX]);
  assert.deepEqual(opD('fmadd.d', RNE, a, b, D(-0)), [D(2 ** -1022), NX]);
  // fmadd: (1 - 2^-54 - 2^-52) * 2^-1022 is tiny (a tie that rounds to 1 - 2^-52 at 53 bits).
  assert.deepEqual(opD('fmadd.d', RNE, a, b, 0x8000_0000_0000_0001n), [D(2 ** -1022) - 1n, UF | NX]);
  assert.deepEqual(opD('fmadd.d', RDN, a, b, 0x8000_0000_0000_0001n), [D(2 ** -1022) - 2n, UF | NX]);
});

/** fcvt.s.d of a binary64 register value; returns the binary32 bits. */
function opXd(name: string, rm: number, v: bigint): [number, number] {
  h.clearFlags(); h.setF(0, 0n); h.setF(1, v);
  assert.equal(h.exec(name, { rd: 0, rs1: 1, rm }), 0);
  const f = h.f(0);
  assert.equal(f >> 32n, 0xffff_ffffn);
  return [Number(f & 0xffff_ffffn), h.fflags];
}

// ---- Exceptions and NaNs ---------------------------------------------------------------------

test('division by zero raises DZ only for finite non-zero dividends', () => {
  assert.deepEqual(opS('fdiv.s', RNE, F(1), F(0)), [INF32, DZ]);
  assert.deepEqual(opS('fdiv.s', RNE, F(-1), F(0)), [NINF32, DZ]);
  assert.deepEqual(opS('fdiv.s', RNE, F(1), F(-0)), [NINF32, DZ]);
  assert.deepEqual(opD('fdiv.d', RNE, D(1e-300), D(-0)), [NINF64, DZ]);
  assert.deepEqual(opD('fdiv.d', RNE, INF64, D(0)), [INF64, 0]);
  assert.deepEqual(opD('fdiv.d', RNE, D(0), D(0)), [QNAN64, NV]);
  assert.deepEqual(opD('fdiv.d', RNE, D(5), INF64), [D(0), 0]);
  assert.deepEqual(opD('fdiv.d', RNE, D(-5), INF64), [D(-0), 0]);
});

test('invalid operations give the canonical NaN and NV', () => {
  assert.deepEqual(opD('fadd.d', RNE, INF64, NINF64), [QNAN64, NV]);
  assert.deepEqual(opD('fsub.d', RNE, INF64, INF64), [QNAN64, NV]);
  assert.deepEqual(opS('fsub.s', RNE, INF32, INF32), [QNAN32, NV]);
  assert.deepEqual(opS('fmul.s', RNE, F(0), NINF32), [QNAN32, NV]);
  assert.deepEqual(opD('fmul.d', RNE, INF64, D(-0)), [QNAN64, NV]);
  assert.deepEqual(opD('fdiv.d', RNE, NINF64, INF64), [QNAN64, NV]);
  assert.deepEqual(opD('fsqrt.d', RNE, D(-1)), [QNAN64, NV]);
  assert.deepEqual(opS('fsqrt.s', RNE, F(Math.fround(-1e-30))), [QNAN32, NV]);
  assert.deepEqual(opS('fsqrt.s', RNE, NINF32), [QNAN32, NV]);
  assert.deepEqual(opD('fsqrt.d', RNE, D(-0)), [D(-0), 0]);
  assert.deepEqual(opD('fsqrt.d', RNE, INF64), [INF64, 0]);
  assert.deepEqual(opD('fmadd.d', RNE, INF64, D(0), D(1)), [QNAN64, NV]);
  assert.deepEqual(opD('fmadd.d', RNE, INF64, D(1), NINF64), [QNAN64, NV]);
  assert.deepEqual(opS('fnmsub.s', RNE, INF32, F(1), INF32), [QNAN32, NV]);
});

test('NaN operands: quiet ones propagate silently as the canonical NaN, signalling ones raise NV', () => {
  const payload32 = 0xffc1_2345, payload64 = 0xfff8_0000_dead_beefn;
  assert.deepEqual(opS('fadd.s', RNE, payload32, F(1)), [QNAN32, 0]);
  assert.deepEqual(opS('fadd.s', RNE, F(1), SNAN32), [QNAN32, NV]);
  assert.deepEqual(opS('fmul.s', RNE, SNAN32, F(0)), [QNAN32, NV]);
  assert.deepEqual(opD('fdiv.d', RNE, payload64, D(2)), [QNAN64, 0]);
  assert.deepEqual(opD('fsqrt.d', RNE, SNAN64), [QNAN64, NV]);
  assert.deepEqual(opD('fmadd.d', RNE, D(1), D(2), SNAN64), [QNAN64, NV]);
  assert.deepEqual(opD('fmadd.d', RNE, D(1), QNAN64, D(2)), [QNAN64, 0]);
  // The spec requires NV for inf * 0 even when the addend is a quiet NaN.
  assert.deepEqual(opD('fmadd.d', RNE, INF64, D(0), QNAN64), [QNAN64, NV]);
  assert.deepEqual(opS('fmsub.s', RNE, F(0), NINF32, QNAN32), [QNAN32, NV]);
  assert.deepEqual(opD('fcvt.d.s', RNE, bs(SNAN32)), [QNAN64, NV]);
  assert.deepEqual(opD('fcvt.d.s', RNE, bs(0xffc0_0001)), [QNAN64, 0]);
  assert.deepEqual(opXd('fcvt.s.d', RNE, SNAN64), [QNAN32, NV]);
  assert.deepEqual(opXd('fcvt.s.d', RNE, 0xfff8_0000_0000_1234n), [QNAN32, 0]);
});

test('NaN boxing: improperly boxed binary32 operands read as the canonical NaN', () => {
  const unboxed = 0x0000_0000_3f80_0000n; // 1.0f without the upper ones
  const run = (name: string, ...regs: bigint[]): [bigint, number] => {
    h.clearFlags(); h.setF(0, 0n); regs.forEach((v, i) => h.setF(i + 1, v));
    assert.equal(h.exec(name, { rd: 0, rs1: 1, rs2: 2, rs3: 3, rm: RNE }), 0);
    return [h.f(0), h.fflags];
  };
  assert.deepEqual(run('fadd.s', unboxed, bs(F(1))), [BOX | BigInt(QNAN32), 0]);
  assert.deepEqual(run('fmadd.s', bs(F(1)), bs(F(1)), 0xffff_fffe_3f80_0000n), [BOX | BigInt(QNAN32), 0]);
  assert.deepEqual(run('fcvt.d.s', unboxed), [QNAN64, 0]);
  // Sign injection is not a transfer: the canonical NaN is its input, and the result is boxed.
  assert.deepEqual(run('fsgnjn.s', unboxed, unboxed), [BOX | 0xffc0_0000n, 0]);
  assert.deepEqual(run('fsgnj.s', bs(F(2)), unboxed), [BOX | BigInt(F(2)), 0]);
  assert.deepEqual(run('fmin.s', unboxed, bs(F(-3))), [BOX | BigInt(F(-3)), 0]);
  assert.deepEqual(opX('fclass.s', RNE, unboxed), [1n << 9n, 0]);
  assert.deepEqual(opX('feq.s', RNE, unboxed, unboxed), [0n, 0]);
  assert.deepEqual(opX('flt.s', RNE, unboxed, bs(F(1))), [0n, NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, unboxed), [0x7fff_ffffn, NV]);
  // fmv.x.w is a transfer: it moves the low 32 bits as they are, sign-extended.
  assert.deepEqual(opX('fmv.x.w', RNE, 0x1234_5678_bf80_0000n), [0xffff_ffff_bf80_0000n, 0]);
  assert.deepEqual(opX('fmv.x.w', RNE, 0x1234_5678_3f80_0000n), [0x3f80_0000n, 0]);
});

test('results of binary32 operations are always NaN-boxed; fmv.w.x boxes the low word', () => {
  assert.deepEqual(opS('fadd.s', RNE, F(1), F(2)), [F(3), 0]); // opS checks the boxing
  assert.deepEqual(opFromX('fmv.w.x', RNE, 0xdead_beef_7f80_0001n), [BOX | 0x7f80_0001n, 0]);
  assert.deepEqual(opFromX('fmv.d.x', RNE, 0x7ff0_0000_0000_0001n), [0x7ff0_0000_0000_0001n, 0]); // payload kept
  assert.deepEqual(opX('fmv.x.d', RNE, 0xfff4_0000_0000_0001n), [0xfff4_0000_0000_0001n, 0]);
  assert.deepEqual(opFromX('fcvt.s.w', RNE, 7n), [BOX | BigInt(F(7)), 0]);
  assert.deepEqual(opD('fcvt.d.s', RNE, bs(F(1.5))), [D(1.5), 0]);
});

// ---- Signed zeros ---------------------------------------------------------------------------

test('exact zero sums are +0, except -0 in RDN; zeros of equal sign keep it', () => {
  eachMode((rm) => opD('fadd.d', rm, D(1), D(-1)), [D(0), D(0), D(-0), D(0), D(0)], 0, 'x + -x');
  eachMode((rm) => opS('fsub.s', rm, F(2.5), F(2.5)), [0, 0, 0x8000_0000, 0, 0], 0, 'x - x');
  eachMode((rm) => opD('fadd.d', rm, D(-0), D(-0)), Array(5).fill(D(-0)), 0, '-0 + -0');
  eachMode((rm) => opD('fadd.d', rm, D(0), D(-0)), [D(0), D(0), D(-0), D(0), D(0)], 0, '+0 + -0');
  eachMode((rm) => opD('fsub.d', rm, D(-0), D(-0)), [D(0), D(0), D(-0), D(0), D(0)], 0, '-0 - -0');
  assert.deepEqual(opD('fmul.d', RNE, D(-0), D(5)), [D(-0), 0]);
  assert.deepEqual(opS('fdiv.s', RNE, F(-0), F(-5)), [0, 0]);
  eachMode((rm) => opD('fmadd.d', rm, D(1), D(1), D(-1)), [D(0), D(0), D(-0), D(0), D(0)], 0, '1*1 - 1');
  eachMode((rm) => opD('fmadd.d', rm, D(-0), D(1), D(-0)), Array(5).fill(D(-0)), 0, '-0*1 + -0');
  eachMode((rm) => opS('fmadd.s', rm, F(0), F(1), F(-0)), [0, 0, 0x8000_0000, 0, 0], 0, '0*1 + -0');
  assert.deepEqual(opD('fnmadd.d', RNE, D(0), D(1), D(0)), [D(-0), 0]); // -(0*1) - 0
});

// ---- Fused multiply-add ---------------------------------------------------------------------

test('fmadd rounds once: a case where multiply-then-add gives a different answer', () => {
  // (1 + 2^-27)(1 - 2^-27) - 1 = -2^-54 exactly; a rounded product would be 1, giving 0.
  const a = D(1 + 2 ** -27), b = D(1 - 2 ** -27);
  assert.deepEqual(opD('fmul.d', RNE, a, b), [D(1), NX]);
  assert.deepEqual(opD('fmadd.d', RNE, a, b, D(-1)), [D(-(2 ** -54)), 0]);
  assert.deepEqual(opS('fmadd.s', RNE, F(1 + 2 ** -12), F(1 - 2 ** -12), F(-1)), [F(-(2 ** -24)), 0]);
  // A sticky product below the addend's last place still steers directed rounding.
  eachMode((rm) => opD('fmadd.d', rm, D(2 ** -600), D(2 ** -600), D(1)), [D(1), D(1), D(1), D(1 + 2 ** -52), D(1)], NX, '1 + tiny');
  eachMode((rm) => opD('fnmsub.d', rm, D(2 ** -600), D(2 ** -600), D(1)), [D(1), D(1 - 2 ** -53), D(1 - 2 ** -53), D(1), D(1)], NX, '1 - tiny');
  // A tiny addend decides a product that is exactly a tie.
  const t = D(1 + 2 ** -52);
  eachMode((rm) => opD('fmadd.d', rm, D(3), t, D(0)), [D(3 + 2 ** -50), D(3 + 2 ** -51), D(3 + 2 ** -51), D(3 + 2 ** -50), D(3 + 2 ** -50)], NX, 'tie');
  eachMode((rm) => opD('fmadd.d', rm, D(3), t, D(-(2 ** -900))), [D(3 + 2 ** -51), D(3 + 2 ** -51), D(3 + 2 ** -51), D(3 + 2 ** -50), D(3 + 2 ** -51)], NX, 'tie - tiny');
  // binary32: (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 is a binary32 tie; a tiny addend decides it.
  const q = F(1 + 2 ** -12), lo = F(1 + 2 ** -11), hi = F(1 + 2 ** -11 + 2 ** -23);
  eachMode((rm) => opS('fmadd.s', rm, q, q, F(0)), [lo, lo, lo, hi, hi], NX, 's tie');
  eachMode((rm) => opS('fmadd.s', rm, q, q, F(2 ** -100)), [hi, lo, lo, hi, hi], NX, 's tie + tiny');
  eachMode((rm) => opS('fmadd.s', rm, q, q, F(-(2 ** -100))), [lo, lo, lo, hi, lo], NX, 's tie - tiny');
});

test('the four fused forms compute (±a*b) ± c', () => {
  assert.deepEqual(opD('fmadd.d', RNE, D(2), D(3), D(1)), [D(7), 0]);
  assert.deepEqual(opD('fmsub.d', RNE, D(2), D(3), D(1)), [D(5), 0]);
  assert.deepEqual(opD('fnmsub.d', RNE, D(2), D(3), D(1)), [D(-5), 0]);
  assert.deepEqual(opD('fnmadd.d', RNE, D(2), D(3), D(1)), [D(-7), 0]);
  assert.deepEqual(opS('fmadd.s', RNE, F(2), F(3), F(1)), [F(7), 0]);
  assert.deepEqual(opS('fmsub.s', RNE, F(2), F(3), F(1)), [F(5), 0]);
  assert.deepEqual(opS('fnmsub.s', RNE, F(2), F(3), F(1)), [F(-5), 0]);
  assert.deepEqual(opS('fnmadd.s', RNE, F(2), F(3), F(1)), [F(-7), 0]);
  assert.deepEqual(opD('fmadd.d', RNE, MAX64, D(2), D(-Infinity)), [NINF64, 0]);
  assert.deepEqual(opD('fmadd.d', RNE, MAX64, D(2), MAX64 | 1n << 63n), [MAX64, 0]); // exact: 2M - M
});

// ---- Conversions ----------------------------------------------------------------------------

test('fcvt float to integer: rounding per mode, NX when inexact', () => {
  const w = (v: number, rm: number): [bigint, number] => opX('fcvt.w.d', rm, D(v));
  eachMode((rm) => w(2.5, rm), [2n, 2n, 2n, 3n, 3n], NX, '2.5');
  eachMode((rm) => w(-2.5, rm), [u64(-2n), u64(-2n), u64(-3n), u64(-2n), u64(-3n)], NX, '-2.5');
  eachMode((rm) => w(3.5, rm), [4n, 3n, 3n, 4n, 4n], NX, '3.5');
  eachMode((rm) => w(-7, rm), Array(5).fill(u64(-7n)), 0, '-7');
  assert.deepEqual(opX('fcvt.w.s', RTZ, bs(F(-0.5))), [0n, NX]);
  assert.deepEqual(opX('fcvt.wu.d', RTZ, D(-0.5)), [0n, NX]);
  assert.deepEqual(opX('fcvt.wu.d', RNE, D(-0.5)), [0n, NX]); // rounds to -0, which is in range
  assert.deepEqual(opX('fcvt.wu.d', RMM, D(-0.5)), [0n, NV]); // rounds to -1: out of range
  assert.deepEqual(opX('fcvt.l.d', RNE, D(-0)), [0n, 0]);
});

test('fcvt float to integer: saturation and NV (unpriv spec, "Domains of float-to-integer conversions")', () => {
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(F(3e9))), [0x7fff_ffffn, NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(F(-3e9))), [u64(-(2n ** 31n)), NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(INF32)), [0x7fff_ffffn, NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(NINF32)), [u64(-(2n ** 31n)), NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(QNAN32)), [0x7fff_ffffn, NV]);
  assert.deepEqual(opX('fcvt.w.s', RNE, bs(0xffc0_0000)), [0x7fff_ffffn, NV]); // negative NaN: still the maximum
  assert.deepEqual(opX('fcvt.wu.d', RNE, D(-1)), [0n, NV]);
  assert.deepEqual(opX('fcvt.wu.d', RNE, D(2 ** 32)), [u64(-1n), NV]); // 2^32 - 1, sign-extended
  assert.deepEqual(opX('fcvt.wu.d', RNE, QNAN64), [u64(-1n), NV]);
  assert.deepEqual(opX('fcvt.wu.s', RNE, bs(F(4e9))), [0xffff_ffff_ee6b_2800n, 0]); // valid, sign-extended
  assert.deepEqual(opX('fcvt.w.d', RNE, D(2147483647.5)), [0x7fff_ffffn, NV]); // rounds to 2^31
  assert.deepEqual(opX('fcvt.w.d', RTZ, D(2147483647.5)), [0x7fff_ffffn, NX]);
  assert.deepEqual(opX('fcvt.w.d', RNE, D(-2147483648.5)), [u64(-(2n ** 31n)), NX]);
  assert.deepEqual(opX('fcvt.w.d', RDN, D(-2147483648.5)), [u64(-(2n ** 31n)), NV]);
  assert.deepEqual(opX('fcvt.l.d', RNE, D(2 ** 63)), [0x7fff_ffff_ffff_ffffn, NV]);
  assert.deepEqual(opX('fcvt.l.d', RNE, D(-(2 ** 63))), [0x8000_0000_0000_0000n, 0]);
  assert.deepEqual(opX('fcvt.l.s', RNE, bs(NINF32)), [0x8000_0000_0000_0000n, NV]);
  assert.deepEqual(opX('fcvt.l.s', RNE, bs(SNAN32)), [0x7fff_ffff_ffff_ffffn, NV]);
  assert.deepEqual(opX('fcvt.lu.d', RNE, D(2 ** 64)), [u64(-1n), NV]);
  assert.deepEqual(opX('fcvt.lu.d', RNE, D(2 ** 64 - 2048)), [0xffff_ffff_ffff_f800n, 0]);
  assert.deepEqual(opX('fcvt.lu.s', RNE, bs(NINF32)), [0n, NV]);
  assert.deepEqual(opX('fcvt.lu.d', RUP, D(-1e-300)), [0n, NX]); // RUP: -0
  assert.deepEqual(opX('fcvt.lu.d', RDN, D(-1e-300)), [0n, NV]); // RDN: -1
  assert.deepEqual(opX('fcvt.l.d', RNE, D(-123456789012345)), [u64(-123456789012345n), 0]);
});

test('fcvt integer to float: rounding per mode, including int64 to binary32 without double rounding', () => {
  eachMode((rm) => opFromX('fcvt.s.w', rm, 16777217n), [16777216, 16777216, 16777216, 16777218, 16777218].map((v) => BOX | BigInt(F(v))), NX, '2^24+1');
  eachMode((rm) => opFromX('fcvt.s.w', rm, u64(-16777217n)), [-16777216, -16777216, -16777218, -16777216, -16777218].map((v) => BOX | BigInt(F(v))), NX, '-(2^24+1)');
  // 2^62 + 2^38 + 1: rounding to 53 bits first would make a false tie and give 2^62 in RNE.
  assert.deepEqual(opFromX('fcvt.s.l', RNE, 2n ** 62n + 2n ** 38n + 1n), [BOX | BigInt(F(2 ** 62 + 2 ** 39)), NX]);
  assert.deepEqual(opFromX('fcvt.s.l', RNE, 2n ** 62n + 2n ** 38n), [BOX | BigInt(F(2 ** 62)), NX]);
  assert.deepEqual(opFromX('fcvt.s.lu', RNE, 2n ** 63n + 2n ** 39n + 1n), [BOX | BigInt(F(2 ** 63 + 2 ** 40)), NX]);
  assert.deepEqual(opFromX('fcvt.s.l', RNE, 2n ** 63n + 2n ** 39n), [BOX | BigInt(F(-(2 ** 63) + 2 ** 39)), 0]); // signed: exact
  eachMode((rm) => opFromX('fcvt.d.l', rm, 2n ** 53n + 1n), [D(2 ** 53), D(2 ** 53), D(2 ** 53), D(2 ** 53 + 2), D(2 ** 53 + 2)], NX, '2^53+1');
  eachMode((rm) => opFromX('fcvt.d.lu', rm, u64(-1n)), [D(2 ** 64), D(2 ** 64 - 2048), D(2 ** 64 - 2048), D(2 ** 64), D(2 ** 64)], NX, '2^64-1');
  assert.deepEqual(opFromX('fcvt.d.l', RNE, u64(-1n)), [D(-1), 0]);
  assert.deepEqual(opFromX('fcvt.d.l', RNE, 2n ** 63n), [D(-(2 ** 63)), 0]);
  assert.deepEqual(opFromX('fcvt.d.w', RNE, 0xffff_ffff_8000_0000n), [D(-(2 ** 31)), 0]);
  assert.deepEqual(opFromX('fcvt.d.w', RNE, 0x1234_5678_0000_0005n), [D(5), 0]); // only the low word counts
  assert.deepEqual(opFromX('fcvt.d.wu', RNE, 0xffff_ffff_ffff_ffffn), [D(2 ** 32 - 1), 0]);
  assert.deepEqual(opFromX('fcvt.s.wu', RDN, 0xffff_ffffn), [BOX | BigInt(F(2 ** 32 - 256)), NX]);
  // fcvt.s.w rd, x0 gives +0 with no flags.
  h.clearFlags(); h.setF(4, 0n);
  assert.equal(h.exec('fcvt.s.w', { rd: 4, rs1: 0, rm: RDN }), 0);
  assert.deepEqual([h.f(4), h.fflags], [BOX, 0]);
});

test('fcvt.s.d and fcvt.d.s', () => {
  eachMode((rm) => opXd('fcvt.s.d', rm, D(1 + 2 ** -24)), [F(1), F(1), F(1), F(1 + 2 ** -23), F(1 + 2 ** -23)], NX, 'tie');
  eachMode((rm) => opXd('fcvt.s.d', rm, D(1e300)), [INF32, MAX32, MAX32, INF32, INF32], OF | NX, '1e300');
  eachMode((rm) => opXd('fcvt.s.d', rm, D(-1e-300)), [0x8000_0000, 0x8000_0000, 0x8000_0001, 0x8000_0000, 0x8000_0000], UF | NX, '-1e-300');
  assert.deepEqual(opXd('fcvt.s.d', RNE, D(2 ** -149)), [MINSUB32, 0]);
  assert.deepEqual(opXd('fcvt.s.d', RNE, NINF64), [NINF32, 0]);
  assert.deepEqual(opXd('fcvt.s.d', RNE, D(-0)), [0x8000_0000, 0]);
  assert.deepEqual(opD('fcvt.d.s', RNE, bs(MINSUB32)), [D(2 ** -149), 0]);
  assert.deepEqual(opD('fcvt.d.s', RNE, bs(NINF32)), [NINF64, 0]);
});

// ---- Min/max, compares, classify, sign injection ---------------------------------------------

test('fmin/fmax are minimumNumber/maximumNumber: -0 < +0, NaNs lose, sNaN raises NV', () => {
  const NZ32 = 0x8000_0000;
  assert.deepEqual(opS('fmin.s', RNE, F(0), NZ32), [NZ32, 0]);
  assert.deepEqual(opS('fmin.s', RNE, NZ32, F(0)), [NZ32, 0]);
  assert.deepEqual(opS('fmax.s', RNE, NZ32, F(0)), [F(0), 0]);
  assert.deepEqual(opS('fmax.s', RNE, F(0), NZ32), [F(0), 0]);
  assert.deepEqual(opS('fmin.s', RNE, F(-1), F(2)), [F(-1), 0]);
  assert.deepEqual(opS('fmax.s', RNE, F(-1), F(2)), [F(2), 0]);
  assert.deepEqual(opS('fmin.s', RNE, QNAN32, F(2)), [F(2), 0]);
  assert.deepEqual(opS('fmax.s', RNE, F(2), SNAN32), [F(2), NV]);
  assert.deepEqual(opS('fmin.s', RNE, QNAN32, 0xffc0_1234), [QNAN32, 0]);
  assert.deepEqual(opS('fmax.s', RNE, SNAN32, SNAN32), [QNAN32, NV]);
  assert.deepEqual(opS('fmin.s', RNE, NINF32, F(-3)), [NINF32, 0]);
  assert.deepEqual(opD('fmin.d', RNE, D(0), D(-0)), [D(-0), 0]);
  assert.deepEqual(opD('fmax.d', RNE, D(-0), D(0)), [D(0), 0]);
  assert.deepEqual(opD('fmax.d', RNE, QNAN64, D(-7)), [D(-7), 0]);
  assert.deepEqual(opD('fmin.d', RNE, SNAN64, D(-7)), [D(-7), NV]);
  assert.deepEqual(opD('fmin.d', RNE, 0xfff8_0000_0000_0001n, QNAN64), [QNAN64, 0]);
  assert.deepEqual(opD('fmax.d', RNE, 1n, 2n), [2n, 0]);
});

test('feq is quiet, flt/fle are signalling; NaN compares false; -0 == +0', () => {
  assert.deepEqual(opX('feq.s', RNE, bs(F(1)), bs(F(1))), [1n, 0]);
  assert.deepEqual(opX('feq.s', RNE, bs(F(-0)), bs(F(0))), [1n, 0]);
  assert.deepEqual(opX('feq.s', RNE, bs(QNAN32), bs(QNAN32)), [0n, 0]);
  assert.deepEqual(opX('feq.s', RNE, bs(SNAN32), bs(F(1))), [0n, NV]);
  assert.deepEqual(opX('flt.s', RNE, bs(QNAN32), bs(F(1))), [0n, NV]);
  assert.deepEqual(opX('fle.s', RNE, bs(F(1)), bs(QNAN32)), [0n, NV]);
  assert.deepEqual(opX('flt.s', RNE, bs(F(-0)), bs(F(0))), [0n, 0]);
  assert.deepEqual(opX('fle.s', RNE, bs(F(-0)), bs(F(0))), [1n, 0]);
  assert.deepEqual(opX('flt.d', RNE, D(-1), D(2)), [1n, 0]);
  assert.deepEqual(opX('fle.d', RNE, D(2), D(2)), [1n, 0]);
  assert.deepEqual(opX('flt.d', RNE, D(2), D(2)), [0n, 0]);
  assert.deepEqual(opX('feq.d', RNE, QNAN64, D(1)), [0n, 0]);
  assert.deepEqual(opX('feq.d', RNE, SNAN64, SNAN64), [0n, NV]);
  assert.deepEqual(opX('fle.d', RNE, QNAN64, D(1)), [0n, NV]);
  assert.deepEqual(opX('flt.d', RNE, NINF64, D(-1e308)), [1n, 0]);
});

test('fclass sets exactly one of the ten class bits', () => {
  const s: [number, number][] = [
    [NINF32, 0], [F(-1.5), 1], [0x8000_0001, 2], [0x8000_0000, 3], [0, 4], [0x007f_ffff, 5], [F(Math.fround(1e30)), 6], [INF32, 7],
    [SNAN32, 8], [0x7fbf_ffff, 8], [QNAN32, 9], [0xffc0_0001, 9],
  ];
  for (const [bits, bit] of s) assert.deepEqual(opX('fclass.s', RNE, bs(bits)), [1n << BigInt(bit), 0], bits.toString(16));
  const d: [bigint, number][] = [
    [NINF64, 0], [D(-1e-300), 1], [0x8000_0000_0000_0001n, 2], [D(-0), 3], [0n, 4], [0x000f_ffff_ffff_ffffn, 5],
    [MAX64, 6], [INF64, 7], [SNAN64, 8], [0xfff7_ffff_ffff_ffffn, 8], [QNAN64, 9], [0xfff8_0000_0000_0000n, 9],
  ];
  for (const [bits, bit] of d) assert.deepEqual(opX('fclass.d', RNE, bits), [1n << BigInt(bit), 0], bits.toString(16));
});

test('sign injection copies bits (NaN payloads included) and raises nothing', () => {
  assert.deepEqual(opS('fsgnj.s', RNE, F(3), F(-1)), [F(-3), 0]);
  assert.deepEqual(opS('fsgnjn.s', RNE, F(3), F(-1)), [F(3), 0]);
  assert.deepEqual(opS('fsgnjx.s', RNE, F(-3), F(-1)), [F(3), 0]);
  assert.deepEqual(opS('fsgnj.s', RNE, SNAN32, F(-1)), [(SNAN32 | 0x8000_0000) >>> 0, 0]);
  assert.deepEqual(opD('fsgnj.d', RNE, SNAN64, D(-1)), [SNAN64 | 1n << 63n, 0]);
  assert.deepEqual(opD('fsgnjn.d', RNE, D(2), D(2)), [D(-2), 0]);
  assert.deepEqual(opD('fsgnjx.d', RNE, D(-2), D(-5)), [D(2), 0]);
  assert.deepEqual(opD('fsgnjx.d', RNE, D(-2), D(5)), [D(-2), 0]);
});

// ---- Hart state: fcsr, mstatus, x0, illegal rounding modes -----------------------------------

const FS_DIRTY = 3n << 13n, SD = 1n << 63n;

test('flags accrue into fflags without touching frm; mstatus.FS and SD become Dirty', () => {
  h.setCsr(MSTATUS, 1n << 13n); // FS = Initial
  h.setCsr(0x003, (BigInt(RUP) << 5n) | BigInt(DZ));
  h.setS(1, F(1)); h.setS(2, F(3));
  assert.equal(h.exec('fdiv.s', { rd: 5, rs1: 1, rs2: 2, rm: RNE }), 0);
  assert.equal(h.csr(0x003), (BigInt(RUP) << 5n) | BigInt(DZ | NX));
  assert.equal(h.csr(MSTATUS), FS_DIRTY | SD);
  assert.equal(h.f(5), BOX | 0x3eaa_aaabn);
});

test('mstatus changes only when an f register or fcsr is written', () => {
  h.setCsr(0x003, 0n);
  h.setCsr(MSTATUS, 1n << 13n);
  h.setS(1, F(1)); h.setS(2, F(1));
  assert.equal(h.exec('feq.s', { rd: 10, rs1: 1, rs2: 2 }), 0);
  assert.equal(h.csr(MSTATUS), 1n << 13n, 'feq without flags writes neither f nor fcsr');
  assert.equal(h.x(10), 1n);
  h.setS(2, QNAN32);
  assert.equal(h.exec('flt.s', { rd: 10, rs1: 1, rs2: 2 }), 0);
  assert.equal(h.csr(MSTATUS), (1n << 13n) | FS_DIRTY | SD, 'NV written to fcsr');
  h.setCsr(MSTATUS, 0n);
  assert.equal(h.exec('fmv.w.x', { rd: 3, rs1: 0 }), 0);
  assert.equal(h.csr(MSTATUS), FS_DIRTY | SD);
  assert.equal(h.f(3), BOX);
});

test('writes to x0 are discarded but flags still accrue', () => {
  h.setX(0, 0n); h.setCsr(0x003, 0n);
  h.setS(1, F(3e9));
  assert.equal(h.exec('fcvt.w.s', { rd: 0, rs1: 1, rm: RNE }), 0);
  assert.equal(h.x(0), 0n);
  assert.equal(h.fflags, NV);
  assert.equal(h.exec('fclass.s', { rd: 0, rs1: 1 }), 0);
  assert.equal(h.x(0), 0n);
});

test('reserved rounding modes are illegal and change nothing', () => {
  h.setCsr(0x003, BigInt(RNE) << 5n);
  h.setCsr(MSTATUS, 1n << 13n);
  h.setS(1, F(1)); h.setS(2, F(3)); h.setF(0, 0x1234n);
  for (const rm of [5, 6]) {
    assert.equal(h.exec('fadd.s', { rd: 0, rs1: 1, rs2: 2, rm }), 1, `static rm=${rm}`);
    assert.equal(h.exec('fcvt.d.s', { rd: 0, rs1: 1, rm }), 1, `fcvt.d.s rm=${rm}: rm decodes as usual`);
    assert.equal(h.exec('fcvt.w.s', { rd: 10, rs1: 1, rm }), 1, `fcvt.w.s rm=${rm}`);
    assert.equal(h.exec('fmadd.d', { rd: 0, rs1: 1, rs2: 2, rs3: 2, rm }), 1, `fmadd.d rm=${rm}`);
  }
  for (const frm of [5, 6, 7]) {
    h.setCsr(0x003, BigInt(frm) << 5n);
    assert.equal(h.exec('fdiv.s', { rd: 0, rs1: 1, rs2: 2, rm: DYN }), 1, `frm=${frm}`);
    assert.equal(h.exec('fdiv.s', { rd: 0, rs1: 1, rs2: 2, rm: RTZ }), 0, `static rm with frm=${frm}`);
    assert.equal(h.exec('fsgnj.s', { rd: 0, rs1: 1, rs2: 2 }), 0, 'no rm field');
    h.setF(0, 0x1234n); h.setCsr(MSTATUS, 1n << 13n);
  }
  h.setCsr(0x003, BigInt(6) << 5n);
  assert.equal(h.exec('fadd.s', { rd: 0, rs1: 1, rs2: 2 }), 1);
  assert.equal(h.f(0), 0x1234n);
  assert.equal(h.csr(0x003), 6n << 5n);
  assert.equal(h.csr(MSTATUS), 1n << 13n);
  h.setCsr(0x003, 0n);
});

test('an unknown op number is illegal', () => {
  assert.equal(fpExecute(h.s, h.hb, 99, encode('fsgnj.s')), 1);
  assert.equal(fpExecute(h.s, h.hb, FpOp.FSGNJ_S, encode('fsgnj.s')), 0);
});
