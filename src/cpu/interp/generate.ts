/**
 * Generates the interpreter: one WebAssembly function `run(hart, budget)` whose decoder is built from
 * the instruction table (mask/match rows) and whose cases are the rows' own semantics. Guest state is
 * read and written in place in the shared memory; slow paths (TLB misses, MMIO, CSRs, traps) call
 * the host.
 */
import { Code, ModuleBuilder, T } from '../../wasm/builder.js';
import { Op } from '../../wasm/opcodes.js';
import type { Field, HostSemantics } from '../../isa/types.js';
import { Access, type Emit, type RegOperand } from '../../isa/emit.js';
import type { Row } from '../../isa/rv64.js';
import { H } from '../layout.js';
import { BLOCK_TYPE, HOST_IMPORTS, HostFn, emitHelpers } from '../host-abi.js';
import { EMIT_LOCALS, WasmEmit } from '../wasm-emit.js';

/** Emits the i32 value of an operand field cut from local `insn`. */
export function emitField(b: Code, f: Field): void {
  if (f.slices.length === 0) { b.i32(f.add ?? 0); return; }
  f.slices.forEach(([hi, lo, to], i) => {
    b.get('insn');
    if (lo) b.i32(lo).op(Op.I32ShrU);
    b.i32(hi - lo === 31 ? -1 : (1 << (hi - lo + 1)) - 1).op(Op.I32And);
    if (to) b.i32(to).op(Op.I32Shl);
    if (i) b.op(Op.I32Or);
  });
  if (f.sign !== undefined && f.sign < 31) b.i32(31 - f.sign).op(Op.I32Shl).i32(31 - f.sign).op(Op.I32ShrS);
  if (f.add) b.i32(f.add).op(Op.I32Add);
}

const popcount = (m: number): number => { let n = 0; for (let x = m >>> 0; x; x &= x - 1) n++; return n; };

class InterpEmit extends WasmEmit {
  x(op: RegOperand): void { this.b.get(op).mem(Op.I64Load, H.X); }
  setX(op: RegOperand, value: () => void): void { this.b.get(op); value(); this.b.mem(Op.I64Store, H.X); }
  f(op: RegOperand): void { this.b.get(op).mem(Op.I64Load, H.F); }
  protected fAddr(op: RegOperand): void { this.b.get(op); }
  imm(): void { this.b.get('imm'); }
  word(): void { this.b.get('insn').op(Op.I64ExtendI32U); }
  protected insnI32(): void { this.b.get('insn'); }
  pc(): void { this.b.get('pc'); }
  jump(target: () => void): void { target(); this.b.set('npc'); }

  protected syncOut(): void { this.syncState(); }
  syncState(): void {
    this.b.get('hb').get('pc').mem(Op.I64Store, H.PC);
    this.b.get('hb').get('icount').mem(Op.I64Store, H.INSTRET);
  }
  protected override afterHostOk(): void { this.b.get('hb').mem(Op.I64Load, H.INSTRET).set('icount'); }
  protected redirected(): void {
    this.b.get('hb').mem(Op.I64Load, H.PC).set('pc');
    this.b.i32(1).set('fresh');
    this.b.br('top');
  }
  /** Probes the fetch TLB for `a` (2 bytes): pushes hit (i32), sets `ent`. */
  probeFetch(): void { this.tlbProbe(Access.Fetch, 2); }
  fetch(): void {
    this.b.get('pc').set('a');
    this.tlbProbe(Access.Fetch, 4);
    this.b.if();
    this.b.get('pc').op(Op.I32WrapI64).get('ent').mem(Op.I32Load, 8).op(Op.I32Add).mem(Op.I32Load).set('insn');
    this.b.else();
    this.callHost(HostFn.FetchSlow, () => {});
    this.b.get('hb').mem(Op.I32Load, H.SCRATCH_VAL).set('insn');
    this.b.end();
  }
}

/** Emits one row: operand extraction, semantics, then on to the next instruction. */
function emitRow(e: InterpEmit, row: Row): void {
  const b = e.b;
  e.len = row.len;
  const ops = row.operands;
  for (const r of ['rd', 'rs1', 'rs2', 'rs3'] as const) {
    const f = ops[r];
    if (!f) continue;
    emitField(b, f); b.i32(3).op(Op.I32Shl).get('hb').op(Op.I32Add).set(r);
  }
  if (ops.imm) { emitField(b, ops.imm); b.op(Op.I64ExtendI32S).set('imm'); }
  if ('kind' in (row.sem as object) && (row.sem as HostSemantics).kind === 'host') e.host(row.sem as HostSemantics);
  else (row.sem as (e: Emit) => void)(e);
  b.br('done');
}

let labelSeq = 0;

/** br_table over `index` (0..n-1); every case must leave by a branch; falls out after the default. */
function emitSwitch(b: Code, index: () => void, cases: ((() => void) | undefined)[], dflt: () => void): void {
  const id = labelSeq++;
  const name = (i: number): string => `s${id}_${i}`;
  b.block(`s${id}_d`);
  for (let i = cases.length - 1; i >= 0; i--) b.block(name(i));
  index();
  b.brTable(cases.map((c, i) => (c ? name(i) : `s${id}_d`)), `s${id}_d`);
  cases.forEach((c, i) => { b.end(); if (c) c(); else b.op(Op.Unreachable); });
  b.end();
  dflt();
}

function emitChain(e: InterpEmit, rows: Row[]): void {
  const sorted = [...rows].sort((a, b) => popcount(b.mask) - popcount(a.mask));
  for (const r of sorted) {
    e.b.get('insn').i32(r.mask).op(Op.I32And).i32(r.match).op(Op.I32Eq).if();
    emitRow(e, r);
    e.b.end();
  }
  e.trap(2, () => e.word());
}

/** Groups rows by a bit field and dispatches on it; rows not fully determined by the field fall into chains. */
function emitDecode(e: InterpEmit, rows: Row[], key: (w: number) => number, keyBits: number, emitKey: () => void, sub?: { shift: number; mask: number }): void {
  const groups: Row[][] = Array.from({ length: 1 << keyBits }, () => []);
  for (const r of rows) groups[key(r.match)].push(r);
  emitSwitch(e.b, emitKey, groups.map(g => {
    if (!g.length) return undefined;
    return () => {
      const subMask = sub ? sub.mask << sub.shift : 0;
      if (sub && g.length > 2 && g.every(r => (r.mask & subMask) === subMask)) {
        emitDecode(e, g, w => (w >>> sub.shift) & sub.mask, popcount(sub.mask),
          () => e.b.get('insn').i32(sub.shift).op(Op.I32ShrU).i32(sub.mask).op(Op.I32And));
      } else emitChain(e, g);
    };
  }), () => e.trap(2, () => e.word()));
}


export interface InterpOptions {
  /** Look up translated blocks in the jump cache and ask the host to translate pcs this hot (0 = no JIT). */
  jitThreshold: number;
}

/**
 * Before interpreting pc: run its translated block if the jump cache has one, else count visits of
 * this pc and ask the host to translate it once it is hot (the host fills the entry's table index
 * when the translation is ready, possibly later: compilation may run in the background).
 */
function emitJitDispatch(e: InterpEmit, threshold: number, blockType: number): void {
  const b = e.b;
  e.jumpCacheLookup('pc', () => {
    b.op(Op.I32Eqz).if();
    // A new pc takes the entry over and starts counting.
    b.get('jce').get('pc').mem(Op.I64Store, H.JC);
    b.get('jce').i32(-1).mem(Op.I32Store, H.JC + 8);
    b.get('jce').get('hb').mem(Op.I32Load, H.PRIV).mem(Op.I32Store, H.JC + 12);
    b.get('jce').i32(0).mem(Op.I32Store, H.JC + 16);
    b.get('jce').get('u1').mem(Op.I32Store, H.JC + 20);
    b.end();
    b.get('jce').mem(Op.I32Load, H.JC + 8).i32(0).op(Op.I32LtS).if();
    b.get('jce').get('jce').mem(Op.I32Load, H.JC + 16).i32(1).op(Op.I32Add).tee('u0').mem(Op.I32Store, H.JC + 16);
    b.get('u0').i32(threshold).op(Op.I32Eq).if();
    e.syncState();
    b.get('hb').get('jce').i32(H.JC).op(Op.I32Add).call(HostFn.Compile).op(Op.Drop);
    b.end();
    b.end();
    b.get('jce').mem(Op.I32Load, H.JC + 8).tee('u0').i32(0).op(Op.I32GeS).if();
    e.syncState();
    b.get('hb').get('u0').callIndirect(blockType).op(Op.Drop);
    b.get('hb').mem(Op.I64Load, H.PC).set('pc');
    b.get('hb').mem(Op.I64Load, H.INSTRET).tee('t0').get('icount').op(Op.I64Sub).set('t1');
    b.get('hb').get('hb').mem(Op.I64Load, H.JIT_INSNS).get('t1').op(Op.I64Add).mem(Op.I64Store, H.JIT_INSNS);
    b.get('t1').op(Op.I32WrapI64).get('steps').op(Op.I32Add).set('steps');
    b.get('t0').set('icount');
    b.i32(1).set('fresh');
    b.br('top');
    b.end();
  });
}

export function generateInterpreter(rows: readonly Row[], memoryPages: number, opts: InterpOptions): Uint8Array {
  const m = new ModuleBuilder(memoryPages);
  if (opts.jitThreshold) m.importTable('env', 'blocks');
  for (const imp of HOST_IMPORTS) m.importFunction('host', imp.name, imp.type);
  const helpers = emitHelpers(m);
  const runIdx = m.declareFunction({ params: [T.I32, T.I32], results: [T.I32] }, 'run');
  const b = new Code({ params: [T.I32, T.I32], results: [T.I32] }, ['hb', 'budget']);
  for (const [n, t] of [['pc', T.I64], ['npc', T.I64], ['icount', T.I64], ['imm', T.I64], ['insn', T.I32],
    ['rd', T.I32], ['rs1', T.I32], ['rs2', T.I32], ['rs3', T.I32], ['steps', T.I32], ['fresh', T.I32], ['seq', T.I64], ...EMIT_LOCALS] as const) b.local(n, t);
  const e = new InterpEmit(b, helpers);

  b.get('hb').mem(Op.I64Load, H.PC).set('pc');
  b.get('hb').mem(Op.I64Load, H.INSTRET).set('icount');
  b.get('hb').get('icount').get('budget').op(Op.I64ExtendI32U).op(Op.I64Add).mem(Op.I64Store, H.BUDGET_END);
  b.i32(1).set('fresh');
  b.loop('top');
  b.block('done');
  // Leave when the budget is spent or the host asked (interrupt, WFI, device event).
  // Traps count against the budget too, so a trap storm still returns to the host.
  b.get('steps').i32(1).op(Op.I32Add).tee('steps').get('budget').op(Op.I32GtU).get('hb').mem(Op.I32Load, H.EXIT).op(Op.I32Or).if();
  b.get('hb').get('pc').mem(Op.I64Store, H.PC);
  b.get('hb').get('icount').mem(Op.I64Store, H.INSTRET);
  b.i32(0).return();
  b.end();
  // Blocks start where control arrives by a jump, branch, trap or return from a block, so only
  // those pcs are looked up and counted; straight-line code in between is just interpreted.
  if (opts.jitThreshold) {
    b.get('fresh').if();
    emitJitDispatch(e, opts.jitThreshold, m.typeOf(BLOCK_TYPE));
    b.end();
  }
  // Fetch through the fetch TLB; a miss, MMIO, or a 4-byte read crossing the page goes to the host.
  e.fetch();

  const full = rows.filter(r => r.len === 4);
  const comp = rows.filter(r => r.len === 2);
  b.get('insn').i32(3).op(Op.I32And).i32(3).op(Op.I32Eq).if();
  b.get('pc').i64(4).op(Op.I64Add).tee('seq').set('npc');
  emitDecode(e, full, w => (w >>> 2) & 31, 5, () => b.get('insn').i32(2).op(Op.I32ShrU).i32(31).op(Op.I32And), { shift: 12, mask: 7 });
  b.else();
  b.get('pc').i64(2).op(Op.I64Add).tee('seq').set('npc');
  b.get('insn').i32(0xffff).op(Op.I32And).set('insn');
  emitDecode(e, comp, w => ((w & 3) << 3) | ((w >>> 13) & 7), 5,
    () => b.get('insn').i32(3).op(Op.I32And).i32(3).op(Op.I32Shl).get('insn').i32(13).op(Op.I32ShrU).op(Op.I32Or));
  b.end();
  b.op(Op.Unreachable);
  b.end(); // done
  if (opts.jitThreshold) b.get('npc').get('seq').op(Op.I64Ne).set('fresh');
  b.get('npc').set('pc');
  b.get('icount').i64(1).op(Op.I64Add).set('icount');
  b.get('hb').i64(0).mem(Op.I64Store, H.X);
  b.br('top');
  b.end(); // loop
  b.op(Op.Unreachable);
  m.define(runIdx, b);
  return m.encode();
}
