/**
 * Random instruction units for the differential tests. A unit is a few lines of assembly that must
 * stay together (operand set-up + the instruction under test, a branch and what it skips, an LR/SC
 * pair). Units never nest, so each may use the local label `1:`; a sequence is a list of units and
 * any prefix of it is a valid program (the bisection in compare.ts relies on this).
 *
 * Register conventions: s11 holds the data block base and sp points at the same block; neither is
 * ever written except by a c.addi16sp pair that restores sp. Every other register is fair game.
 */
import type { Rng } from './prng.js';
import { D_TRICKY, F_TRICKY, INT_CORNERS, doubleValue, floatValue, intValue, u64 } from './values.js';

export const X_NAMES = [
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
] as const;
export const F_NAMES = [
  'ft0', 'ft1', 'ft2', 'ft3', 'ft4', 'ft5', 'ft6', 'ft7', 'fs0', 'fs1', 'fa0', 'fa1', 'fa2', 'fa3', 'fa4', 'fa5',
  'fa6', 'fa7', 'fs2', 'fs3', 'fs4', 'fs5', 'fs6', 'fs7', 'fs8', 'fs9', 'fs10', 'fs11', 'ft8', 'ft9', 'ft10', 'ft11',
] as const;
/** Registers a unit may never write. */
export const RESERVED = new Set([2, 27]);
/** Size of the data block every load/store/AMO stays inside. */
export const DATA_BYTES = 256;

export type Unit = string[];
export type UnitGen = (g: Gen) => Unit;

export class Gen {
  constructor(readonly r: Rng) {}

  /** A destination x register: never sp/s11, rarely x0. */
  xd(): string {
    if (this.r.chance(0.03)) return 'zero';
    return X_NAMES[this.xIndex()];
  }
  /** A writable register other than x0 (temporaries: addresses, injected operands). */
  xt(): string { return X_NAMES[this.xIndex()]; }
  /** Any x register as a source. */
  xs(): string { return X_NAMES[this.r.below(32)]; }
  /** x8..x15, the registers compressed forms can name (all writable). */
  xc(): string { return X_NAMES[8 + this.r.below(8)]; }
  f(): string { return F_NAMES[this.r.below(32)]; }
  fc(): string { return F_NAMES[8 + this.r.below(8)]; }
  private xIndex(): number {
    for (;;) {
      const i = 1 + this.r.below(31);
      if (!RESERVED.has(i)) return i;
    }
  }
  /** A different writable non-zero register than those given. */
  xtExcept(...not: string[]): string {
    for (;;) { const x = this.xt(); if (!not.includes(x)) return x; }
  }

  imm12(): number {
    const r = this.r;
    switch (r.below(5)) {
      case 0: return r.pick([0, 1, -1, 2047, -2048, 0x7ff, -0x800 + 1, 0x555, -0x556]);
      case 1: return r.range(-16, 16);
      default: return r.range(-2048, 2047);
    }
  }
  shamt(max: 31 | 63): number {
    if (this.r.chance(0.5)) return this.r.pick(max === 63 ? [0, 1, 31, 32, 63] : [0, 1, 15, 16, 31]);
    return this.r.range(0, max);
  }
  /** `li reg, value` for a 64-bit value given as bits. */
  li(reg: string, v: bigint): string { return `li ${reg}, ${BigInt.asIntN(64, v)}`; }

  /**
   * An address inside the data block for an access of `size` bytes: the lines that set up a base
   * register and the `off(base)` operand. Misaligned offsets (possibly across the block's page
   * boundary) unless `align` says otherwise.
   */
  addr(size: number, align: 'any' | 'natural', lim = DATA_BYTES): { pre: string[]; mem: string; base: string } {
    const r = this.r;
    const natural = align === 'natural' || r.chance(0.6);
    let t = r.below(lim - size + 1);
    if (natural) t -= t % size;
    switch (r.below(3)) {
      case 0: return { pre: [], mem: `${t}(s11)`, base: 's11' };
      case 1: return { pre: [], mem: `${t}(sp)`, base: 'sp' };
      default: {
        const b = this.xt();
        const a = r.chance(0.3) ? t : r.range(-1700, 1700);
        return { pre: [`addi ${b}, s11, ${a}`], mem: `${t - a}(${b})`, base: b };
      }
    }
  }
}

// ---------------- RV64I ----------------

const ALU_R = ['add', 'sub', 'sll', 'slt', 'sltu', 'xor', 'srl', 'sra', 'or', 'and', 'addw', 'subw', 'sllw', 'srlw', 'sraw'];
const ALU_I = ['addi', 'slti', 'sltiu', 'xori', 'ori', 'andi', 'addiw'];
const SHIFT_I = ['slli', 'srli', 'srai'];
const SHIFT_IW = ['slliw', 'srliw', 'sraiw'];
const LOADS: readonly [string, number][] = [['lb', 1], ['lh', 2], ['lw', 4], ['ld', 8], ['lbu', 1], ['lhu', 2], ['lwu', 4]];
const STORES: readonly [string, number][] = [['sb', 1], ['sh', 2], ['sw', 4], ['sd', 8]];

/** Optionally loads a corner value into a source register first. */
function srcInt(g: Gen, p: number, pre: string[]): string {
  if (g.r.chance(p)) {
    const reg = g.xt();
    pre.push(g.li(reg, g.r.chance(0.7) ? g.r.pick(INT_CORNERS) : intValue(g.r)));
    return reg;
  }
  return g.xs();
}

export const aluR: UnitGen = g => {
  const pre: string[] = [];
  const a = srcInt(g, 0.2, pre), b = srcInt(g, 0.2, pre);
  return [...pre, `${g.r.pick(ALU_R)} ${g.xd()}, ${a}, ${g.r.chance(0.1) ? a : b}`];
};
export const aluI: UnitGen = g => {
  const pre: string[] = [];
  const a = srcInt(g, 0.2, pre);
  return [...pre, `${g.r.pick(ALU_I)} ${g.xd()}, ${a}, ${g.imm12()}`];
};
export const shiftI: UnitGen = g => {
  const pre: string[] = [];
  const a = srcInt(g, 0.2, pre);
  return g.r.chance(0.5)
    ? [...pre, `${g.r.pick(SHIFT_I)} ${g.xd()}, ${a}, ${g.shamt(63)}`]
    : [...pre, `${g.r.pick(SHIFT_IW)} ${g.xd()}, ${a}, ${g.shamt(31)}`];
};
export const upper: UnitGen = g => {
  const r = g.r;
  const imm = r.chance(0.4) ? r.pick([0, 1, 0x7ffff, 0x80000, 0xfffff, 0x80001]) : r.below(0x10_0000);
  return [`${r.chance(0.5) ? 'lui' : 'auipc'} ${g.xd()}, 0x${imm.toString(16)}`];
};
export const liValue: UnitGen = g => [g.li(g.xd(), intValue(g.r))];
export const load: UnitGen = g => {
  const [op, size] = g.r.pick(LOADS);
  const a = g.addr(size, 'any');
  return [...a.pre, `${op} ${g.xd()}, ${a.mem}`];
};
export const store: UnitGen = g => {
  const [op, size] = g.r.pick(STORES);
  const a = g.addr(size, 'any');
  return [...a.pre, `${op} ${g.xs()}, ${a.mem}`];
};
export const fence: UnitGen = g => [g.r.pick(['fence', 'fence rw, rw', 'fence iorw, iorw', 'fence r, w', 'fence.tso', 'fence.i'])];

/** Straight-line integer instructions without memory access: what branches skip over. */
export function simple(g: Gen): Unit {
  return g.r.pick([aluR, aluI, shiftI, upper])(g);
}

// ---------------- M ----------------

const MULDIV = ['mul', 'mulh', 'mulhsu', 'mulhu', 'div', 'divu', 'rem', 'remu', 'mulw', 'divw', 'divuw', 'remw', 'remuw'];
export const mulDiv: UnitGen = g => {
  const pre: string[] = [];
  const a = srcInt(g, 0.5, pre), b = srcInt(g, 0.5, pre);
  const rd = g.r.chance(0.2) ? a : g.xd();
  const dst = rd === 'sp' || rd === 's11' ? g.xd() : rd;
  return [...pre, `${g.r.pick(MULDIV)} ${dst}, ${a}, ${g.r.chance(0.08) ? a : b}`];
};

// ---------------- Zba, Zbb, Zbs ----------------
// Zicond is not here: QEMU 7.2 has no Zicond (src/cpu/interp/bitmanip.test.ts checks it against a table).

const ZB_R = ['add.uw', 'sh1add', 'sh2add', 'sh3add', 'sh1add.uw', 'sh2add.uw', 'sh3add.uw', 'andn', 'orn', 'xnor',
  'max', 'maxu', 'min', 'minu'];
/** Register forms whose rs2 is a bit index or rotate amount (only its low 5 or 6 bits count). */
const ZB_AMOUNT = ['rol', 'ror', 'rolw', 'rorw', 'bclr', 'bext', 'binv', 'bset'];
const ZB_UNARY = ['clz', 'clzw', 'ctz', 'cpop', 'cpopw', 'sext.b', 'sext.h', 'zext.h', 'orc.b', 'rev8'];
const ZB_SHIFT6 = ['slli.uw', 'rori', 'bclri', 'bexti', 'binvi', 'bseti'];
/** Amounts around the 32- and 64-bit boundaries, and beyond them (masked). */
const AMOUNTS = [0n, 1n, 31n, 32n, 33n, 63n, 64n, 95n, u64(-1n)];

/**
 * ctzw on a freshly loaded operand: QEMU 7.2 counts the trailing zeros of the whole register when
 * its low word is zero (ctzw of 1 << 40 gives 40, not 32), so such values are left out here;
 * src/cpu/interp/bitmanip.test.ts checks them against the spec.
 */
function ctzw(g: Gen): Unit {
  const a = g.xt();
  let v = g.r.chance(0.7) ? g.r.pick(INT_CORNERS) : intValue(g.r);
  if ((v & 0xffff_ffffn) === 0n) v = 0n;
  return [g.li(a, v), `ctzw ${g.xd()}, ${a}`];
}

export const bitmanip: UnitGen = g => {
  const r = g.r;
  if (r.chance(0.05)) return ctzw(g);
  const pre: string[] = [];
  const a = srcInt(g, 0.5, pre);
  switch (r.below(5)) {
    case 0: { const b = srcInt(g, 0.5, pre); return [...pre, `${r.pick(ZB_R)} ${g.xd()}, ${a}, ${r.chance(0.08) ? a : b}`]; }
    case 1: {
      let b = g.xs();
      if (r.chance(0.5)) { b = g.xtExcept(a); pre.push(g.li(b, r.pick(AMOUNTS))); }
      return [...pre, `${r.pick(ZB_AMOUNT)} ${g.xd()}, ${a}, ${b}`];
    }
    case 2: return [...pre, `${r.pick(ZB_UNARY)} ${g.xd()}, ${a}`];
    case 3: return [...pre, `${r.pick(ZB_SHIFT6)} ${g.xd()}, ${a}, ${g.shamt(63)}`];
    default: return [...pre, `roriw ${g.xd()}, ${a}, ${g.shamt(31)}`];
  }
};

// ---------------- A ----------------

const AMO_OPS = ['amoswap', 'amoadd', 'amoxor', 'amoand', 'amoor', 'amomin', 'amomax', 'amominu', 'amomaxu'];
const ORDER = ['', '.aq', '.rl', '.aqrl'];

export const amo: UnitGen = g => {
  const r = g.r;
  const w = r.chance(0.5) ? 'w' : 'd';
  const size = w === 'w' ? 4 : 8;
  const pre: string[] = [];
  const src = srcInt(g, 0.4, pre);
  const b = g.xtExcept(src);
  pre.push(`addi ${b}, s11, ${r.below(DATA_BYTES / size) * size}`);
  return [...pre, `${r.pick(AMO_OPS)}.${w}${r.pick(ORDER)} ${g.xd()}, ${src}, (${b})`];
};

/** LR then SC to the same address with only register ops between: the SC succeeds. Sometimes a second SC follows, which must fail. */
export const lrsc: UnitGen = g => {
  const r = g.r;
  const w = r.chance(0.5) ? 'w' : 'd';
  const size = w === 'w' ? 4 : 8;
  const b = g.xt();
  const out: string[] = [`addi ${b}, s11, ${r.below(DATA_BYTES / size) * size}`];
  out.push(`lr.${w}${r.pick(ORDER)} ${g.xtExcept(b)}, (${b})`);
  for (let i = r.below(3); i > 0; i--) out.push(`${r.pick(ALU_R)} ${g.xtExcept(b)}, ${g.xs()}, ${g.xs()}`);
  if (r.chance(0.3)) { // the reservation is used up: a second SC fails
    out.push(`sc.${w}${r.pick(ORDER)} ${g.xtExcept(b)}, ${g.xs()}, (${b})`);
    out.push(`sc.${w}${r.pick(ORDER)} ${g.xd()}, ${g.xs()}, (${b})`);
  } else {
    out.push(`sc.${w}${r.pick(ORDER)} ${g.xd()}, ${g.xs()}, (${b})`);
  }
  return out;
};

/** An SC with no reservation (the last LR was already paired): fails, writes nothing. */
export const scAlone: UnitGen = g => {
  const w = g.r.chance(0.5) ? 'w' : 'd';
  const size = w === 'w' ? 4 : 8;
  const b = g.xt();
  return [`addi ${b}, s11, ${g.r.below(DATA_BYTES / size) * size}`, `sc.${w}${g.r.pick(ORDER)} ${g.xd()}, ${g.xs()}, (${b})`];
};

// ---------------- branches and jumps ----------------

function skipped(g: Gen): string[] {
  const out: string[] = [];
  for (let i = g.r.range(1, 3); i > 0; i--) out.push(...simple(g));
  return out;
}

const BRANCHES = ['beq', 'bne', 'blt', 'bge', 'bltu', 'bgeu'];
export const branch: UnitGen = g => {
  const r = g.r;
  const pre: string[] = [];
  let a = g.xs(), b = g.xs();
  if (r.chance(0.4)) { // values around the signed/unsigned boundaries, often equal
    a = g.xt(); b = g.xtExcept(a);
    const v = r.pick(INT_CORNERS);
    const d = r.pick([0n, 0n, 1n, -1n, 1n << 63n]);
    pre.push(g.li(a, v), g.li(b, u64(v + d)));
  } else if (r.chance(0.1)) b = a;
  return [...pre, `${r.pick(BRANCHES)} ${a}, ${b}, 1f`, ...skipped(g), '1:'];
};
export const jump: UnitGen = g => {
  const r = g.r;
  const t = g.xt();
  const head = r.pick([
    () => [`jal ${g.xd()}, 1f`],
    () => ['j 1f'],
    () => [`la ${t}, 1f`, `jalr ${g.xd()}, 0(${t})`],
    () => [`la ${t}, 1f-12`, `jalr ${g.xd()}, 12(${t})`],
    () => [`la ${t}, 1f+40`, `jalr ${g.xd()}, -40(${t})`],
    () => [`la ${t}, 1f`, `jalr ${g.xd()}, 1(${t})`], // bit 0 of the target is cleared
    () => [`la ${t}, 1f`, `jalr ${t}, 0(${t})`], // rd == rs1: target from the old value
  ])();
  return [...head, ...skipped(g), '1:'];
};

// ---------------- C (explicit forms; the assembler also compresses plain ones) ----------------

/** A non-zero value in [lo, hi]. */
function nz(g: Gen, lo: number, hi: number): number {
  for (;;) { const v = g.r.range(lo, hi); if (v) return v; }
}
/** Base register x8..x15 pointing into the block, for c.lw & co. (offset `off` scaled by `size`). */
function cAddr(g: Gen, size: number, maxOff: number): { pre: string; mem: string } {
  const b = g.xc();
  const off = g.r.below(Math.min(maxOff, DATA_BYTES - size) / size + 1) * size;
  const room = DATA_BYTES - size - off;
  const base = g.r.below(room + 1);
  return { pre: `addi ${b}, s11, ${g.r.chance(0.7) ? base - (base % size) : base}`, mem: `${off}(${b})` };
}
/** Writable register for c.* forms that name any register: not x0, sp, s11. */
const cRd = (g: Gen): string => g.xt();

export const compressed: UnitGen = g => {
  const r = g.r;
  const k = r.below(33);
  switch (k) {
    case 0: return [`c.addi4spn ${g.xc()}, sp, ${r.range(1, 255) * 4}`];
    case 1: { const a = cAddr(g, 8, 248); return [a.pre, `c.fld ${g.fc()}, ${a.mem}`]; }
    case 2: { const a = cAddr(g, 4, 124); return [a.pre, `c.lw ${g.xc()}, ${a.mem}`]; }
    case 3: { const a = cAddr(g, 8, 248); return [a.pre, `c.ld ${g.xc()}, ${a.mem}`]; }
    case 4: { const a = cAddr(g, 8, 248); return [a.pre, `c.fsd ${g.fc()}, ${a.mem}`]; }
    case 5: { const a = cAddr(g, 4, 124); return [a.pre, `c.sw ${g.xc()}, ${a.mem}`]; }
    case 6: { const a = cAddr(g, 8, 248); return [a.pre, `c.sd ${g.xc()}, ${a.mem}`]; }
    case 7: return ['c.nop'];
    case 8: return [`c.addi ${cRd(g)}, ${nz(g, -32, 31)}`];
    case 9: return [`c.addiw ${cRd(g)}, ${r.range(-32, 31)}`];
    case 10: return [`c.li ${cRd(g)}, ${r.range(-32, 31)}`];
    case 11: { // sp moves and comes back; an sp-relative access in between stays in the block
      const d = nz(g, -31, 31) * 16;
      const out = [`c.addi16sp sp, ${d}`];
      if (d > 0 && d < DATA_BYTES) {
        const off = r.below((DATA_BYTES - d) / 8) * 8;
        out.push(r.chance(0.5) ? `c.ldsp ${cRd(g)}, ${off}(sp)` : `c.sdsp ${g.xs()}, ${off}(sp)`);
      }
      out.push(`c.addi16sp sp, ${-d}`);
      return out;
    }
    case 12: {
      const imm = r.chance(0.5) ? r.range(1, 0x1f) : r.range(0xfffe0, 0xfffff);
      const rd = cRd(g);
      return [`c.lui ${rd}, 0x${imm.toString(16)}`];
    }
    case 13: return [`c.srli ${g.xc()}, ${r.chance(0.4) ? r.pick([1, 31, 32, 63]) : r.range(1, 63)}`];
    case 14: return [`c.srai ${g.xc()}, ${r.chance(0.4) ? r.pick([1, 31, 32, 63]) : r.range(1, 63)}`];
    case 15: return [`c.andi ${g.xc()}, ${r.range(-32, 31)}`];
    case 16: case 17: case 18: case 19: case 20: case 21:
      return [`c.${['sub', 'xor', 'or', 'and', 'subw', 'addw'][k - 16]} ${g.xc()}, ${g.xc()}`];
    case 22: return ['c.j 1f', ...skipped(g), '1:'];
    case 23: case 24: {
      const pre: string[] = [];
      const a = g.xc();
      if (r.chance(0.5)) pre.push(r.chance(0.5) ? `li ${a}, 0` : g.li(a, intValue(r)));
      return [...pre, `${k === 23 ? 'c.beqz' : 'c.bnez'} ${a}, 1f`, ...skipped(g), '1:'];
    }
    case 25: return [`c.slli ${cRd(g)}, ${r.chance(0.4) ? r.pick([1, 31, 32, 63]) : r.range(1, 63)}`];
    case 26: return [`c.fldsp ${g.f()}, ${r.below(32) * 8}(sp)`];
    case 27: return [r.chance(0.5) ? `c.lwsp ${cRd(g)}, ${r.below(64) * 4}(sp)` : `c.ldsp ${cRd(g)}, ${r.below(32) * 8}(sp)`];
    case 28: {
      const t = cRd(g);
      return [`la ${t}, 1f`, `${r.chance(0.5) ? 'c.jr' : 'c.jalr'} ${t}`, ...skipped(g), '1:'];
    }
    case 29: { const s = g.xs(); return [`c.mv ${cRd(g)}, ${s === 'zero' ? 'ra' : s}`]; }
    case 30: { const s = g.xs(); return [`c.add ${cRd(g)}, ${s === 'zero' ? 'ra' : s}`]; }
    case 31: return [`c.fsdsp ${g.f()}, ${r.below(32) * 8}(sp)`];
    default: return [r.chance(0.5) ? `c.swsp ${g.xs()}, ${r.below(64) * 4}(sp)` : `c.sdsp ${g.xs()}, ${r.below(32) * 8}(sp)`];
  }
};

// ---------------- F and D ----------------

type Prec = 's' | 'd';
const RMS = ['rne', 'rtz', 'rdn', 'rup', 'rmm', 'dyn'];

/** A rounding-mode suffix and, for dyn, maybe an fsrm first. */
function rm(g: Gen, pre: string[]): string {
  const r = g.r;
  if (r.chance(0.15)) return ''; // the assembler's default: dyn
  const m = r.pick(RMS);
  if (m === 'dyn' && r.chance(0.6)) pre.push(r.chance(0.5) ? `fsrmi ${r.below(5)}` : `fsrmi ${g.xd()}, ${r.below(5)}`);
  return `, ${m}`;
}

/**
 * A source f register, sometimes first loaded with a special value (through an x register);
 * `tricky` loads it always, from the rounding-corner palette.
 */
function srcF(g: Gen, prec: Prec, pre: string[], tricky = false): string {
  const r = g.r;
  const f = g.f();
  if (tricky) {
    const t = g.xt();
    pre.push(prec === 'd' ? g.li(t, r.pick(D_TRICKY)) : g.li(t, BigInt(r.pick(F_TRICKY))), `fmv.${prec === 'd' ? 'd' : 'w'}.x ${f}, ${t}`);
    return f;
  }
  if (!r.chance(0.35)) return f;
  const t = g.xt();
  if (prec === 'd') {
    pre.push(g.li(t, doubleValue(r)), `fmv.d.x ${f}, ${t}`);
  } else if (r.chance(0.85)) {
    pre.push(g.li(t, BigInt(floatValue(r))), `fmv.w.x ${f}, ${t}`);
  } else { // not NaN-boxed: single-precision ops must read it as the canonical NaN
    const junk = r.chance(0.5) ? 0n : BigInt(r.u32() & 0xffff_fffe);
    pre.push(g.li(t, (junk << 32n) | BigInt(floatValue(r))), `fmv.d.x ${f}, ${t}`);
  }
  return f;
}

/** Sometimes clears fflags before an FP unit and copies them to an x register after, so each op's flags stay visible. */
function flagged(gen: UnitGen): UnitGen {
  return g => {
    if (!g.r.chance(0.4)) return gen(g);
    const u = gen(g);
    return ['fsflagsi 0', ...u, `frflags ${g.xt()}`];
  };
}

const fArithRaw: UnitGen = g => {
  const r = g.r;
  const p: Prec = r.chance(0.5) ? 's' : 'd';
  const pre: string[] = [];
  const op = r.pick(['fadd', 'fsub', 'fmul', 'fdiv', 'fsqrt', 'fmin', 'fmax', 'fsgnj', 'fsgnjn', 'fsgnjx']);
  const tricky = r.chance(0.25);
  const a = srcF(g, p, pre, tricky);
  if (op === 'fsqrt') { const m = rm(g, pre); return [...pre, `fsqrt.${p} ${g.f()}, ${a}${m}`]; }
  const b = r.chance(0.1) ? a : srcF(g, p, pre, tricky);
  const rounding = ['fadd', 'fsub', 'fmul', 'fdiv'].includes(op) ? rm(g, pre) : '';
  return [...pre, `${op}.${p} ${g.f()}, ${a}, ${b}${rounding}`];
};

const fFmaRaw: UnitGen = g => {
  const r = g.r;
  const p: Prec = r.chance(0.5) ? 's' : 'd';
  const pre: string[] = [];
  const tricky = r.chance(0.25);
  const a = srcF(g, p, pre, tricky), b = srcF(g, p, pre, tricky), c = srcF(g, p, pre, tricky);
  const m = rm(g, pre);
  return [...pre, `${r.pick(['fmadd', 'fmsub', 'fnmsub', 'fnmadd'])}.${p} ${g.f()}, ${a}, ${b}, ${c}${m}`];
};

const fCvtRaw: UnitGen = g => {
  const r = g.r;
  const p: Prec = r.chance(0.5) ? 's' : 'd';
  const pre: string[] = [];
  const int = r.pick(['w', 'wu', 'l', 'lu']);
  switch (r.below(3)) {
    case 0: { // float -> int
      const a = srcF(g, p, pre);
      const m = rm(g, pre);
      return [...pre, `fcvt.${int}.${p} ${g.xd()}, ${a}${m}`];
    }
    case 1: { // int -> float (int -> double of a 32-bit value is exact: no rounding operand)
      const a = srcInt(g, 0.5, pre);
      const m = p === 'd' && (int === 'w' || int === 'wu') ? '' : rm(g, pre);
      return [...pre, `fcvt.${p}.${int} ${g.f()}, ${a}${m}`];
    }
    default: { // between precisions
      if (p === 's') { const a = srcF(g, 'd', pre); const m = rm(g, pre); return [...pre, `fcvt.s.d ${g.f()}, ${a}${m}`]; }
      const a = srcF(g, 's', pre);
      return [...pre, `fcvt.d.s ${g.f()}, ${a}`];
    }
  }
};

const fMiscRaw: UnitGen = g => {
  const r = g.r;
  const p: Prec = r.chance(0.5) ? 's' : 'd';
  const pre: string[] = [];
  switch (r.below(5)) {
    case 0: { const a = srcF(g, p, pre); return [...pre, `fclass.${p} ${g.xd()}, ${a}`]; }
    case 1: {
      const tricky = r.chance(0.25);
      const a = srcF(g, p, pre, tricky), b = r.chance(0.15) ? a : srcF(g, p, pre, tricky);
      return [...pre, `${r.pick(['feq', 'flt', 'fle'])}.${p} ${g.xd()}, ${a}, ${b}`];
    }
    case 2: return [`fmv.x.${p === 's' ? 'w' : 'd'} ${g.xd()}, ${g.f()}`];
    case 3: {
      const a = srcInt(g, 0.3, pre);
      return [...pre, `fmv.${p === 's' ? 'w' : 'd'}.x ${g.f()}, ${a}`];
    }
    default: { // loads and stores, misaligned sometimes
      const size = p === 's' ? 4 : 8;
      const a = g.addr(size, 'any');
      const ld = r.chance(0.5);
      return [...a.pre, `${ld ? 'fl' : 'fs'}${p === 's' ? 'w' : 'd'} ${g.f()}, ${a.mem}`];
    }
  }
};

export const fArith = flagged(fArithRaw);
export const fFma = flagged(fFmaRaw);
export const fCvt = flagged(fCvtRaw);
export const fMisc = flagged(fMiscRaw);

/** The FP CSRs: flags and rounding mode through the pseudo-instructions and plain csr ops. */
export const fCsr: UnitGen = g => {
  const r = g.r;
  const t = g.xt();
  switch (r.below(11)) {
    case 9: // any value: the bits above fcsr[7:0] are dropped; then a valid frm again (dyn must stay legal)
      return [`fscsr ${g.xd()}, ${g.xs()}`, `frcsr ${g.xd()}`, `fsrmi ${r.below(5)}`];
    case 10:
      return [`fsrm ${g.xd()}, ${g.xs()}`, `frrm ${g.xd()}`, `fsrmi ${r.below(5)}`];
    case 0: return [`frflags ${g.xd()}`];
    case 1: return [`fsflags ${g.xd()}, ${g.xs()}`];
    case 2: return [`fsflagsi ${g.xd()}, ${r.below(32)}`];
    case 3: return [`li ${t}, ${r.below(5)}`, `fsrm ${g.xd()}, ${t}`];
    case 4: return [`frrm ${g.xd()}`];
    case 5: return [`frcsr ${g.xd()}`];
    case 6: return [`li ${t}, ${(r.below(5) << 5) | r.below(32)}`, `fscsr ${g.xd()}, ${t}`];
    case 7: return [r.pick([`csrrs ${g.xd()}, fflags, ${g.xs()}`, `csrrc ${g.xd()}, fflags, ${g.xs()}`, `csrrc ${g.xd()}, fcsr, ${g.xs()}`])];
    default: return [r.pick([`csrrsi ${g.xd()}, fflags, ${r.below(32)}`, `csrrci ${g.xd()}, fflags, ${r.below(32)}`, `csrrci ${g.xd()}, frm, ${r.below(32)}`])];
  }
};
