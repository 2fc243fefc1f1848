/** Semantics of the integer, M, A and FP-memory instructions, as WebAssembly emission (see emit.ts). */
import { Op } from '../wasm/opcodes.js';
import { Access, LoadKind, type Emit } from './emit.js';
import { H } from '../cpu/layout.js';

export type Sem = (e: Emit) => void;

const NAN_BOX = -0x1_0000_0000n; // upper 32 bits all ones

const addr = (e: Emit) => (): void => { e.x('rs1'); e.imm(); e.b.op(Op.I64Add); };

export const rr = (op: Op): Sem => e => e.setX('rd', () => { e.x('rs1'); e.x('rs2'); e.b.op(op); });
export const ri = (op: Op): Sem => e => e.setX('rd', () => { e.x('rs1'); e.imm(); e.b.op(op); });
/** W forms: 32-bit operation, result sign-extended. */
export const rrw = (op: Op): Sem => e => e.setX('rd', () => {
  e.x('rs1'); e.b.op(Op.I32WrapI64); e.x('rs2'); e.b.op(Op.I32WrapI64, op, Op.I64ExtendI32S);
});
export const riw = (op: Op): Sem => e => e.setX('rd', () => {
  e.x('rs1'); e.b.op(Op.I32WrapI64); e.imm(); e.b.op(Op.I32WrapI64, op, Op.I64ExtendI32S);
});
export const setLess = (op: Op, withImm: boolean): Sem => e => e.setX('rd', () => {
  e.x('rs1'); if (withImm) e.imm(); else e.x('rs2'); e.b.op(op, Op.I64ExtendI32U);
});

export const lui: Sem = e => e.setX('rd', () => e.imm());
export const auipc: Sem = e => e.setX('rd', () => { e.pc(); e.imm(); e.b.op(Op.I64Add); });
const link = (e: Emit): void => { e.pc(); e.b.i64(e.len).op(Op.I64Add); };
export const jal: Sem = e => {
  e.setX('rd', () => link(e));
  e.jump(() => { e.pc(); e.imm(); e.b.op(Op.I64Add); });
};
export const jalr: Sem = e => {
  const [t] = e.t64;
  e.x('rs1'); e.imm(); e.b.op(Op.I64Add).i64(-2).op(Op.I64And).set(t);
  e.setX('rd', () => link(e));
  e.jump(() => e.b.get(t));
};
export const branch = (cmp: Op): Sem => e => {
  e.x('rs1'); e.x('rs2'); e.b.op(cmp).if();
  e.jump(() => { e.pc(); e.imm(); e.b.op(Op.I64Add); });
  e.b.end();
};

export const load = (kind: LoadKind): Sem => e => {
  const [t] = e.t64;
  e.load(kind, addr(e)); e.b.set(t);
  e.setX('rd', () => e.b.get(t));
};
export const store = (size: 1 | 2 | 4 | 8): Sem => e => e.store(size, addr(e), () => e.x('rs2'));

export const floadW: Sem = e => {
  const [t] = e.t64;
  e.requireFp();
  e.load(LoadKind.WU, addr(e)); e.b.set(t);
  e.setF('rd', () => e.b.get(t).i64(NAN_BOX).op(Op.I64Or));
};
export const floadD: Sem = e => {
  const [t] = e.t64;
  e.requireFp();
  e.load(LoadKind.D, addr(e)); e.b.set(t);
  e.setF('rd', () => e.b.get(t));
};
export const fstore = (size: 4 | 8): Sem => e => { e.requireFp(); e.store(size, addr(e), () => e.f('rs2')); };

// M extension. Division by zero and overflow give the results the spec tabulates, never a wasm trap.
export const mulh = (signedA: boolean, signedB: boolean): Sem => e => {
  const [a, b, r] = e.t64;
  e.x('rs1'); e.b.set(a); e.x('rs2'); e.b.set(b);
  e.b.get(a).get(b); e.helper('mulhu'); e.b.set(r);
  // Signed corrections: hi(a*b) = hiu(a,b) - (a<0 ? b : 0) - (b<0 ? a : 0).
  if (signedA) e.b.get(r).get(b).i64(0).get(a).i64(0).op(Op.I64LtS, Op.Select, Op.I64Sub).set(r);
  if (signedB) e.b.get(r).get(a).i64(0).get(b).i64(0).op(Op.I64LtS, Op.Select, Op.I64Sub).set(r);
  e.setX('rd', () => e.b.get(r));
};

/** op(rs1, rs2) with the zero-divisor result `onZero` (pushes) and signed overflow guarded. */
function divide(e: Emit, wide: boolean, op: Op, onZero: 'ones' | 'dividend', overflow: 'dividend' | 'zero' | null): void {
  const [a, b] = e.t64;
  const b_ = e.b;
  e.x('rs1'); if (!wide) b_.op(Op.I32WrapI64, Op.I64ExtendI32S); b_.set(a);
  e.x('rs2'); if (!wide) b_.op(Op.I32WrapI64, Op.I64ExtendI32S); b_.set(b);
  e.setX('rd', () => {
    b_.get(b).op(Op.I64Eqz).if(undefined, 0x7e /* i64 */);
    if (onZero === 'ones') b_.i64(-1); else b_.get(a);
    b_.else();
    if (overflow) {
      const min = wide ? -(1n << 63n) : -(1n << 31n);
      b_.get(a).i64(min).op(Op.I64Eq).get(b).i64(-1).op(Op.I64Eq, Op.I32And).if(undefined, 0x7e);
      if (overflow === 'dividend') b_.get(a); else b_.i64(0);
      b_.else();
    }
    if (wide) b_.get(a).get(b).op(op);
    else b_.get(a).op(Op.I32WrapI64).get(b).op(Op.I32WrapI64, op, Op.I64ExtendI32S);
    if (overflow) b_.end();
    b_.end();
  });
}
export const div: Sem = e => divide(e, true, Op.I64DivS, 'ones', 'dividend');
export const divu: Sem = e => divide(e, true, Op.I64DivU, 'ones', null);
export const rem: Sem = e => divide(e, true, Op.I64RemS, 'dividend', 'zero');
export const remu: Sem = e => divide(e, true, Op.I64RemU, 'dividend', null);
export const divw: Sem = e => divide(e, false, Op.I32DivS, 'ones', 'dividend');
export const divuw: Sem = e => divide(e, false, Op.I32DivU, 'ones', null);
export const remw: Sem = e => divide(e, false, Op.I32RemS, 'dividend', 'zero');
export const remuw: Sem = e => divide(e, false, Op.I32RemU, 'dividend', null);

// A extension. Harts are interleaved on one host thread, so an AMO is naturally atomic.
export const lr = (size: 4 | 8): Sem => e => {
  const [a, , v] = e.t64;
  const [h] = e.t32;
  e.x('rs1'); e.b.set(a);
  e.ramAddr(Access.Load, size, () => e.b.get(a)); e.b.set(h);
  e.b.get(h).mem(size === 4 ? Op.I64Load32S : Op.I64Load).set(v);
  e.hart(); e.b.get(a).mem(Op.I64Store, H.RESV_ADDR);
  e.hart(); e.b.i32(1).mem(Op.I32Store, H.RESV_VALID);
  e.setX('rd', () => e.b.get(v));
};
export const sc = (size: 4 | 8): Sem => e => {
  const [a, v] = e.t64;
  const [h, ok] = e.t32;
  e.x('rs1'); e.b.set(a);
  e.x('rs2'); e.b.set(v);
  e.ramAddr(Access.Store, size, () => e.b.get(a)); e.b.set(h);
  e.hart(); e.b.mem(Op.I32Load, H.RESV_VALID);
  e.hart(); e.b.mem(Op.I64Load, H.RESV_ADDR).get(a).op(Op.I64Eq, Op.I32And).tee(ok).if();
  e.b.get(h).get(v).mem(size === 4 ? Op.I64Store32 : Op.I64Store);
  e.b.end();
  e.hart(); e.b.i32(0).mem(Op.I32Store, H.RESV_VALID);
  e.setX('rd', () => e.b.get(ok).op(Op.I32Eqz, Op.I64ExtendI32U));
};
/** new = f(old, src); rd = old (sign-extended for .w). `combine` sees old then src on the stack (i64). */
export const amo = (size: 4 | 8, combine: (e: Emit) => void): Sem => e => {
  const [a, old, src] = e.t64;
  const [h] = e.t32;
  e.x('rs1'); e.b.set(a);
  e.x('rs2'); e.b.set(src);
  e.ramAddr(Access.Store, size, () => e.b.get(a), true); e.b.set(h);
  e.b.get(h).mem(size === 4 ? Op.I64Load32S : Op.I64Load).set(old);
  e.b.get(h).get(old).get(src); combine(e);
  e.b.mem(size === 4 ? Op.I64Store32 : Op.I64Store);
  e.setX('rd', () => e.b.get(old));
};
const pick = (size: 4 | 8, cmp: Op) => (e: Emit): void => {
  // stack: old src -> select(old, src, cmp(old, src)); .w compares the low 32 bits.
  const [, old, src] = e.t64;
  e.b.op(Op.Drop, Op.Drop).get(old).get(src).get(old);
  if (size === 4) e.b.op(Op.I32WrapI64); e.b.get(src); if (size === 4) e.b.op(Op.I32WrapI64);
  e.b.op(size === 4 ? i32Of(cmp) : cmp, Op.Select);
};
function i32Of(cmp: Op): Op {
  switch (cmp) {
    case Op.I64LtS: return Op.I32LtS;
    case Op.I64LtU: return Op.I32LtU;
    case Op.I64GtS: return Op.I32GtS;
    default: return Op.I32GtU;
  }
}
export const amoOps = (size: 4 | 8) => ({
  swap: amo(size, e => { e.b.op(Op.Drop, Op.Drop).get(e.t64[2]); }),
  add: amo(size, e => { e.b.op(Op.I64Add); }),
  xor: amo(size, e => { e.b.op(Op.I64Xor); }),
  and: amo(size, e => { e.b.op(Op.I64And); }),
  or: amo(size, e => { e.b.op(Op.I64Or); }),
  min: amo(size, pick(size, Op.I64LtS)),
  max: amo(size, pick(size, Op.I64GtS)),
  minu: amo(size, pick(size, Op.I64LtU)),
  maxu: amo(size, pick(size, Op.I64GtU)),
});

export const nop: Sem = () => {};
export const illegal: Sem = e => e.trap(2, () => e.word());
