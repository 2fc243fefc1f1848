/**
 * Randomized cross-check against real RISC-V semantics: a static, freestanding riscv64 program (generated
 * from the instruction table, compiled with riscv64-linux-gnu-gcc; no cross libc needed) runs every case under qemu-riscv64-static
 * with frm set by `csrw frm`, and reports the destination register and fflags; fpExecute must agree
 * bit for bit. Skipped when the cross tools are not installed. Fixed seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FD_INSNS } from '../../isa/rv-fd.js';
import { FpHarness, f32bits, f64bits, f32of, f64of } from './testing.js';

const GCC = 'riscv64-linux-gnu-gcc', QEMU = 'qemu-riscv64-static';
const haveTools = [GCC, QEMU].every((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).status === 0);

type Kind = { xDest: boolean; xSrc: boolean; nf: number; dbl: boolean };

function kindOf(name: string): Kind {
  const xDest = /^fcvt\.(w|wu|l|lu)\.[sd]$/.test(name) || /^fmv\.x\./.test(name) || /^(feq|flt|fle|fclass)\./.test(name);
  const xSrc = /^fcvt\.[sd]\.(w|wu|l|lu)$/.test(name) || /^fmv\.[wd]\.x$/.test(name);
  const nf = xSrc ? 0 : /^fn?m(add|sub)\./.test(name) ? 3 : /^(fsqrt|fcvt|fclass|fmv)\./.test(name) ? 1 : 2;
  // Format of the f-register sources.
  const dbl = name === 'fcvt.s.d' || (name !== 'fcvt.d.s' && /\.d(\.|$)/.test(name));
  return { xDest, xSrc, nf, dbl };
}

function cProgram(): string {
  const cases = FD_INSNS.map((r, i) => {
    const k = kindOf(r.name);
    const dst = k.xDest ? '%[r]' : 'f0';
    const srcs = k.xSrc ? ['%[a]'] : ['f1', 'f2', 'f3'].slice(0, k.nf);
    const tail = k.xDest ? '' : '"fmv.x.d %[r], f0\\n\\t"';
    return `    case ${i}: asm volatile("fmv.d.x f1, %[a]\\n\\tfmv.d.x f2, %[b]\\n\\tfmv.d.x f3, %[c]\\n\\t"
      "fmv.d.x f0, %[d]\\n\\tcsrw frm, %[rm]\\n\\tcsrw fflags, zero\\n\\t"
      "${r.name} ${[dst, ...srcs].join(', ')}\\n\\t" "csrr %[fl], fflags\\n\\t" ${tail}
      : [r] "=&r"(res), [fl] "=&r"(fl) : [a] "r"(a), [b] "r"(b), [c] "r"(c), [d] "r"(d), [rm] "r"(rm)
      : "f0", "f1", "f2", "f3", "memory"); break;`;
  });
  // Freestanding (no cross libc needed): raw Linux syscalls, static buffers, our own _start.
  return `typedef unsigned long u64; typedef unsigned int u32;
typedef struct { u32 op, rm; u64 a, b, c; } In;
typedef struct { u64 res, fl; } Out;
static In in[${MAX_CASES}]; static Out out[${MAX_CASES}];
static long sys3(long n, long a, long b, long c) {
  register long a0 asm("a0") = a, a1 asm("a1") = b, a2 asm("a2") = c, a7 asm("a7") = n;
  asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
  return a0;
}
__asm__(".globl _start\\n_start:\\n.option push\\n.option norelax\\nla gp, __global_pointer$\\n.option pop\\n"
        "call run\\nli a7, 93\\necall\\n");
int run(void) {
  long n = 0, k;
  while ((k = sys3(63, 0, (long)in + n, sizeof in - n)) > 0) n += k;
  long count = n / sizeof(In);
  for (long i = 0; i < count; i++) {
    u64 a = in[i].a, b = in[i].b, c = in[i].c, d = 0x5555555555555555ull, rm = in[i].rm, res = 0, fl = 0;
    switch (in[i].op) {
${cases.join('\n')}
    }
    out[i].res = res; out[i].fl = fl;
  }
  long total = count * sizeof(Out), done = 0;
  while (done < total) { k = sys3(64, 1, (long)out + done, total - done); if (k <= 0) return 1; done += k; }
  return 0;
}
`;
}

// ---- Operand generation (xorshift128+, fixed seed) ----

/** Cases per instruction and seed; FPU_QEMU_PER_OP / FPU_QEMU_SEED override them for longer soak runs. */
const PER_OP = Number(process.env.FPU_QEMU_PER_OP ?? 320);
const SEED = BigInt(process.env.FPU_QEMU_SEED ?? 1);
const MAX_CASES = Math.max(65536, PER_OP * FD_INSNS.length);

let s0 = 0x9e3779b97f4a7c15n * SEED & ((1n << 64n) - 1n), s1 = 0x1234_5678_9abc_def1n;
const M64 = (1n << 64n) - 1n;
function rnd64(): bigint {
  let x = s0; const y = s1;
  s0 = y; x ^= (x << 23n) & M64; s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
  return (s1 + y) & M64;
}
const rnd = (n: number): number => Number(rnd64() % BigInt(n));
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;

const SPECIAL32 = [
  0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0x7fa0_0000, 0xffbf_ffff, 0x7fc0_0001,
  1, 0x8000_0001, 0x007f_ffff, 0x807f_ffff, 0x0080_0000, 0x8080_0000, 0x0080_0001, 0x7f7f_ffff, 0xff7f_ffff, 0x7f7f_fffe,
  0x3f80_0000, 0xbf80_0000, 0x3f00_0000, 0xbf00_0000, 0x3fc0_0000, 0x4020_0000, 0xc020_0000, 0x3f7f_ffff, 0x3f80_0001,
  0x4f00_0000, 0xcf00_0000, 0x4f80_0000, 0x4eff_ffff, 0xcf00_0001, 0x5f00_0000, 0xdf00_0000, 0x5f80_0000, 0x5f7f_ffff,
  0xdf00_0001, 0x4f32_d05e /* 3e9 */, 0x0040_0000, 0x0000_0002, 0x0100_0000, 0x3400_0000, 0x3380_0000,
];
const SPECIAL64 = [
  0n, 0x8000_0000_0000_0000n, 0x7ff0_0000_0000_0000n, 0xfff0_0000_0000_0000n, 0x7ff8_0000_0000_0000n, 0xfff8_0000_0000_0000n,
  0x7ff0_0000_0000_0001n, 0x7ff4_0000_0000_0000n, 0xfff7_ffff_ffff_ffffn, 0x7ff8_0000_0000_0001n,
  1n, 0x8000_0000_0000_0001n, 0x000f_ffff_ffff_ffffn, 0x0010_0000_0000_0000n, 0x8010_0000_0000_0000n, 0x0010_0000_0000_0001n,
  0x7fef_ffff_ffff_ffffn, 0xffef_ffff_ffff_ffffn, 0x7fef_ffff_ffff_fffen, 0x3ff0_0000_0000_0000n, 0xbff0_0000_0000_0000n,
  0x3fe0_0000_0000_0000n, 0xbfe0_0000_0000_0000n, 0x3ff8_0000_0000_0000n, 0x4004_0000_0000_0000n, 0x3fef_ffff_ffff_ffffn,
  0x3ff0_0000_0000_0001n, 0x41e0_0000_0000_0000n, 0xc1e0_0000_0000_0000n, 0x41df_ffff_ffc0_0000n, 0x41df_ffff_ffe0_0000n,
  0x41ef_ffff_ffe0_0000n, 0x41ef_ffff_fff0_0000n, 0x41f0_0000_0000_0000n, 0x43e0_0000_0000_0000n, 0xc3e0_0000_0000_0000n,
  0x43df_ffff_ffff_ffffn, 0xc3e0_0000_0000_0001n, 0x43f0_0000_0000_0000n, 0x43ef_ffff_ffff_ffffn, 0xbff0_0000_0000_0000n,
  0x3810_0000_0000_0000n /* 2^-126 */, 0x380f_ffff_f000_0000n, 0x36a0_0000_0000_0000n /* 2^-149 */, 0x3690_0000_0000_0000n,
  0x47ef_ffff_e000_0000n /* max f32 */, 0x47ef_ffff_f000_0000n, 0x47f0_0000_0000_0000n,
];

/** A random binary32 pattern drawn from several distributions. */
function gen32(): number {
  switch (rnd(8)) {
    case 0: return pick(SPECIAL32);
    case 1: return (pick(SPECIAL32) + rnd(5) - 2) >>> 0;
    case 2: return Number(rnd64() & 0xffff_ffffn);
    case 3: return ((rnd(2) << 31) | ((rnd(24) + 115) << 23) | rnd(1 << 23)) >>> 0; // near 1
    case 4: return ((rnd(2) << 31) | (rnd(3) << 23) | rnd(1 << 23)) >>> 0;          // subnormal boundary
    case 5: return ((rnd(2) << 31) | ((252 + rnd(3)) << 23) | rnd(1 << 23)) >>> 0;  // near overflow
    case 6: return f32bits((rnd(2) ? -1 : 1) * (rnd(1 << 12) / (1 << rnd(4)))); // small ints and halves
    default: return ((rnd(2) << 31) | ((rnd(60) + 100) << 23) | (rnd(2) ? 0 : rnd(1 << 23))) >>> 0;
  }
}

function gen64(): bigint {
  const sign = BigInt(rnd(2)) << 63n, frac = rnd64() & 0xf_ffff_ffff_ffffn;
  switch (rnd(8)) {
    case 0: return pick(SPECIAL64);
    case 1: return (pick(SPECIAL64) + BigInt(rnd(5)) - 2n) & M64;
    case 2: return rnd64();
    case 3: return sign | (BigInt(rnd(64) + 991) << 52n) | frac;
    case 4: return sign | (BigInt(rnd(3)) << 52n) | frac;
    case 5: return sign | (BigInt(2044 + rnd(3)) << 52n) | frac;
    case 6: return f64bits((rnd(2) ? -1 : 1) * (rnd(1 << 20) / (1 << rnd(4))));
    default: return sign | (BigInt(rnd(1200) + 400) << 52n) | (rnd(2) ? 0n : frac >> BigInt(rnd(52)));
  }
}

function genInt(): bigint {
  switch (rnd(5)) {
    case 0: return rnd64();
    case 1: { const bits = BigInt(rnd(64) + 1); return (rnd64() & ((1n << bits) - 1n)) | (1n << (bits - 1n)); }
    case 2: return (-(rnd64() & ((1n << BigInt(rnd(63) + 1)) - 1n))) & M64;
    case 3: { // rounding ties for 24 and 53 bits: m * 2^k + 2^(k-1) (+-1)
      const p = rnd(2) ? 24 : 53, m = (rnd64() & ((1n << BigInt(p)) - 1n)) | (1n << BigInt(p - 1));
      const k = BigInt(rnd(64 - p) + 1), v = (m << k) + (1n << (k - 1n)) + BigInt(rnd(3)) - 1n;
      return (rnd(2) ? v : -v) & M64;
    }
    default: return pick([0n, 1n, M64, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, 0x8000_0000_0000_0000n,
      0x7fff_ffff_ffff_ffffn, 0xffff_ffff_8000_0000n, 0xffff_ffffn, 0x0100_0001n, 0x0020_0000_0000_0001n]);
  }
}

const boxed = (b: number): bigint => (rnd(40) === 0 ? rnd64() & 0xffff_fffe_0000_0000n : 0xffff_ffff_0000_0000n) | BigInt(b);

/** Operands related to each other so that cancellation, ties, exact and boundary cases are frequent. */
function genCase(name: string, k: Kind): [bigint, bigint, bigint] {
  const dbl = k.dbl, nf = k.nf;
  const toBits = (v: number): bigint => (dbl ? f64bits(v) : boxed(f32bits(Math.fround(v))));
  const nudge = (bits: bigint, n: number): bigint =>
    dbl ? (bits + BigInt(n)) & M64 : (bits & 0xffff_ffff_0000_0000n) | (((bits & 0xffff_ffffn) + BigInt(n)) & 0xffff_ffffn);
  const val = (bits: bigint): number => (dbl ? f64of(bits) : f32of(Number(bits & 0xffff_ffffn)));
  const r = (): bigint => (dbl ? gen64() : boxed(gen32()));
  const small = (): number => rnd(5) - 2;
  const moderate = (): number => (rnd(2) ? -1 : 1) * (1 + rnd(1 << 30) / 2 ** 30) * 2 ** (rnd(80) - 40);
  // Results landing on the underflow threshold, the largest finite value, or a few subnormal quanta.
  const targets = dbl ? [2 ** -1022, 2 ** -1022 * (1 - 2 ** -53), Number.MAX_VALUE, 2 ** -1074 * (1 + rnd(9)), 2 ** -1023]
    : [2 ** -126, 2 ** -126 * (1 - 2 ** -24), 3.4028234663852886e38, 2 ** -149 * (1 + rnd(9)), 2 ** -127];
  const mode = rnd(6);
  let a = r(), b = r(), c = r();
  if (mode === 0) return [a, b, c];
  if (mode <= 2) {
    const t = (rnd(2) ? -1 : 1) * pick(targets), m = moderate();
    if (/^fdiv/.test(name)) { b = toBits(m); a = nudge(toBits(t * m), small()); }
    else if (/^fsqrt/.test(name)) { const q = moderate(); a = nudge(toBits(q * q), small()); }
    else if (/^f(add|sub)/.test(name)) { a = nudge(toBits(t), small()); b = toBits((rnd(2) ? -t : t) * 2 ** -rnd(60)); }
    else {
      a = toBits(m); b = nudge(toBits(t / m), small());
      if (nf === 3) c = rnd(2) ? toBits((rnd(2) ? -t : t) * 2 ** -rnd(80)) : nudge(toBits(-(val(a) * val(b)) + t), small());
    }
    return [a, b, c];
  }
  if (nf === 3) c = nudge(toBits(-(val(a) * val(b))), small()); // cancellation in fma
  if (nf === 2 && mode === 3) b = nudge(toBits(-val(a) * (rnd(2) ? 1 : 2 ** -rnd(dbl ? 60 : 30))), small());
  return [a, b, c];
}

/** fcvt.s.d inputs: binary32 midpoints and their neighbours, in every binade incl. subnormal/overflow. */
function genNarrow(): bigint {
  if (rnd(3) === 0) return gen64();
  const e = pick([rnd(254) + 1, rnd(4), 253, 254, 255 - 0]); // single exponent field
  const base = ((e === 255 ? 254n : BigInt(e)) + 1023n - 127n) << 52n | (rnd64() & 0xf_ffff_e000_0000n);
  const half = e === 0 ? 0n : 1n << 28n; // half an ulp of binary32 at 29 low bits
  return (BigInt(rnd(2)) << 63n) | (base + half + BigInt(rnd(3)) - 1n);
}


test('fpExecute agrees with qemu-riscv64 on random operands in every rounding mode', { skip: !haveTools && 'cross tools not installed' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-fpu-'));
  try {
    writeFileSync(join(dir, 'fp.c'), cProgram());
    const cc = spawnSync(GCC, ['-O1', '-static', '-nostdlib', '-ffreestanding', '-march=rv64gc', '-mabi=lp64d', '-o', join(dir, 'fp'), join(dir, 'fp.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);

    const cases: { op: number; rm: number; a: bigint; b: bigint; c: bigint }[] = [];
    FD_INSNS.forEach((r, op) => {
      const k = kindOf(r.name);
      for (let i = 0; i < PER_OP; i++) {
        const rm = rnd(5);
        if (k.xSrc) cases.push({ op, rm, a: genInt(), b: 0n, c: 0n });
        else if (r.name === 'fcvt.s.d') cases.push({ op, rm, a: genNarrow(), b: 0n, c: 0n });
        else { const [a, b, c] = genCase(r.name, k); cases.push({ op, rm, a, b, c }); }
      }
    });
    const input = Buffer.alloc(cases.length * 32);
    cases.forEach((c, i) => {
      input.writeUInt32LE(c.op, i * 32); input.writeUInt32LE(c.rm, i * 32 + 4);
      input.writeBigUInt64LE(c.a, i * 32 + 8); input.writeBigUInt64LE(c.b, i * 32 + 16); input.writeBigUInt64LE(c.c, i * 32 + 24);
    });
    const run = spawnSync(QEMU, [join(dir, 'fp')], { input, maxBuffer: 1 << 26 });
    assert.equal(run.status, 0, String(run.stderr));
    const out = run.stdout;
    assert.equal(out.length, cases.length * 16);

    const h = new FpHarness();
    const bad: string[] = [];
    const seen = new Map<string, number>(); // "name flag" -> count, to show the cases reach every flag
    cases.forEach((c, i) => {
      const r = FD_INSNS[c.op]!, k = kindOf(r.name);
      h.setF(0, 0x5555_5555_5555_5555n); h.setF(1, c.a); h.setF(2, c.b); h.setF(3, c.c);
      h.setX(10, c.a); h.setX(11, 0x5555_5555_5555_5555n);
      h.setCsr(0x003, BigInt(c.rm) << 5n);
      const status = h.exec(r.name, { rd: k.xDest ? 11 : 0, rs1: k.xSrc ? 10 : 1, rs2: 2, rs3: 3 });
      const got = k.xDest ? h.x(11) : h.f(0), fl = h.fflags;
      const want = out.readBigUInt64LE(i * 16), wantFl = Number(out.readBigUInt64LE(i * 16 + 8));
      ['NX', 'UF', 'OF', 'DZ', 'NV'].forEach((f, bit) => {
        if (wantFl & (1 << bit)) seen.set(`${r.name} ${f}`, (seen.get(`${r.name} ${f}`) ?? 0) + 1);
      });
      if (status !== 0 || got !== want || fl !== wantFl) {
        const hex = (v: bigint): string => v.toString(16).padStart(16, '0');
        bad.push(`${r.name} rm=${c.rm} a=${hex(c.a)} b=${hex(c.b)} c=${hex(c.c)}: want ${hex(want)} fl=${wantFl}, got ${hex(got)} fl=${fl}${status ? ' ILLEGAL' : ''}`);
      }
    });
    assert.equal(bad.length, 0, `${bad.length} of ${cases.length} mismatches:\n${bad.slice(0, 40).join('\n')}`);
    t.diagnostic(`${cases.length} cases; flags raised: ${[...seen].map(([k, n]) => `${k}=${n}`).join(' ')}`);
    // The generator must keep reaching the hard cases: underflow and overflow in every rounding op.
    for (const op of ['fadd', 'fmul', 'fdiv', 'fmadd', 'fnmsub']) {
      for (const f of op === 'fadd' ? ['NX', 'OF'] : ['NX', 'UF', 'OF']) {
        for (const fmt of ['s', 'd']) assert.ok(seen.get(`${op}.${fmt} ${f}`), `no ${op}.${fmt} case raised ${f}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
