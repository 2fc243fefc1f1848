/**
 * WebAssembly emission shared by the interpreter and the JIT: the inline TLB fast paths for memory
 * access and the calls to the host. Subclasses say where operands come from (decoded at run time,
 * or constants) and how to leave after the host redirected pc.
 */
import type { Code } from '../wasm/builder.js';
import { T } from '../wasm/builder.js';
import { Op } from '../wasm/opcodes.js';
import type { HostSemantics } from '../isa/types.js';
import { Access, type Emit, type Helper, type LoadKind, type RegOperand } from '../isa/emit.js';
import { H, JC_ENTRIES, JC_ENTRY } from './layout.js';
import { TLB_ENTRIES } from './mmu/mmu.js';
import { HostFn, RAM_ADDR_READS, UNIT_NUMBER } from './host-abi.js';

export const MSTATUS_SLOT = H.CSR + 0x300 * 8;
export const FS_DIRTY_SD = (3n << 13n) | (1n << 63n);
const LOAD_OP = [Op.I64Load8S, Op.I64Load16S, Op.I64Load32S, Op.I64Load, Op.I64Load8U, Op.I64Load16U, Op.I64Load32U];
const STORE_OP: Record<number, Op> = { 1: Op.I64Store8, 2: Op.I64Store16, 4: Op.I64Store32, 8: Op.I64Store };
const TLB_SET = [H.TLB_FETCH, H.TLB_LOAD, H.TLB_STORE];

/** Locals every emitter's function must declare. */
export const EMIT_LOCALS: readonly (readonly [string, T])[] = [
  ['a', T.I64], ['v', T.I64], ['vpn', T.I64], ['t0', T.I64], ['t1', T.I64], ['t2', T.I64], ['ent', T.I32], ['u0', T.I32], ['u1', T.I32],
  ['jce', T.I32],
];

export abstract class WasmEmit implements Emit {
  len: 2 | 4 = 4;
  readonly t64 = ['t0', 't1', 't2'] as const;
  readonly t32 = ['u0', 'u1'] as const;

  constructor(readonly b: Code, private readonly helpers: Record<Helper, number>) {}

  abstract x(op: RegOperand): void;
  abstract setX(op: RegOperand, value: () => void): void;
  abstract f(op: RegOperand): void;
  abstract imm(): void;
  abstract word(): void;
  /** Pushes the instruction word as i32. */
  protected abstract insnI32(): void;
  abstract pc(): void;
  abstract jump(target: () => void): void;
  /** Stores pc and the instruction count where the host reads them. */
  protected abstract syncOut(): void;
  /** Emitted where the host has redirected pc (a trap was taken): leave this instruction. */
  protected abstract redirected(): void;
  /** Emitted after every host call returns 0 (e.g. reload state the host may have changed). */
  protected afterHostOk(): void {}

  setF(op: RegOperand, value: () => void): void {
    this.fAddr(op); value(); this.b.mem(Op.I64Store, H.F);
    this.b.get('hb').get('hb').mem(Op.I64Load, MSTATUS_SLOT).i64(FS_DIRTY_SD).op(Op.I64Or).mem(Op.I64Store, MSTATUS_SLOT);
  }
  /** Pushes the address base for f[op] (the H.F offset is added by the access). */
  protected abstract fAddr(op: RegOperand): void;
  hart(): void { this.b.get('hb'); }
  helper(name: Helper): void { this.b.call(this.helpers[name]); }

  protected callHost(fn: HostFn, args: () => void): void {
    this.syncOut();
    this.b.get('hb'); args(); this.b.call(fn);
    this.afterHostOk();
    this.b.if();
    this.redirected();
    this.b.end();
  }

  /** Leaves on the stack: (tlb entry hit) as i32, with local `ent` = entry address; needs `a` = vaddr. */
  protected tlbProbe(access: Access, size: number): void {
    const b = this.b;
    b.get('a').i64(12).op(Op.I64ShrU).set('vpn');
    b.get('hb').get('hb').mem(Op.I32Load, TLB_SET[access]).op(Op.I32Add)
      .get('vpn').op(Op.I32WrapI64).i32(TLB_ENTRIES - 1).op(Op.I32And).i32(4).op(Op.I32Shl).op(Op.I32Add).tee('ent')
      .mem(Op.I64Load).get('vpn').op(Op.I64Eq);
    b.get('a').op(Op.I32WrapI64).i32(0xfff).op(Op.I32And).i32(4096 - size).op(Op.I32LeU).op(Op.I32And);
  }
  protected hostAddr(): void { this.b.get('a').op(Op.I32WrapI64).get('ent').mem(Op.I32Load, 8).op(Op.I32Add); }

  /**
   * Jump-cache lookup for the pc in local `pcLocal` (i64). When the fetch TLB maps pc, runs
   * `found` with local `jce` = hb + entry offset (add H.JC for the entry), `u1` = host address of
   * pc and, on the stack, whether the entry is this pc's at the current privilege and mapping.
   * Entries match on virtual pc, privilege and host address, so they stay valid across TLB
   * flushes: a remapped pc simply stops matching.
   */
  jumpCacheLookup(pcLocal: string, found: () => void): void {
    const b = this.b;
    b.get(pcLocal).set('a');
    this.tlbProbe(Access.Fetch, 2);
    b.if();
    b.get(pcLocal).op(Op.I32WrapI64).get('ent').mem(Op.I32Load, 8).op(Op.I32Add).set('u1');
    b.get(pcLocal).op(Op.I32WrapI64).tee('u0').i32(1).op(Op.I32ShrU).get('u0').i32(13).op(Op.I32ShrU).op(Op.I32Xor)
      .i32(JC_ENTRIES - 1).op(Op.I32And).i32(Math.log2(JC_ENTRY)).op(Op.I32Shl).get('hb').op(Op.I32Add).tee('jce');
    b.mem(Op.I64Load, H.JC).get(pcLocal).op(Op.I64Eq);
    b.get('jce').mem(Op.I32Load, H.JC + 12).get('hb').mem(Op.I32Load, H.PRIV).op(Op.I32Eq).op(Op.I32And);
    b.get('jce').mem(Op.I32Load, H.JC + 20).get('u1').op(Op.I32Eq).op(Op.I32And);
    found();
    b.end();
  }

  load(kind: LoadKind, addr: () => void): void {
    const b = this.b;
    addr(); b.set('a');
    this.tlbProbe(Access.Load, 1 << (kind & 3));
    b.if(undefined, T.I64);
    this.hostAddr(); b.mem(LOAD_OP[kind]);
    b.else();
    b.get('hb').get('a').mem(Op.I64Store, H.SCRATCH_ADDR);
    this.callHost(HostFn.LoadSlow, () => b.i32(kind));
    b.get('hb').mem(Op.I64Load, H.SCRATCH_VAL);
    b.end();
  }

  store(size: 1 | 2 | 4 | 8, addr: () => void, value: () => void): void {
    const b = this.b;
    addr(); b.set('a');
    value(); b.set('v');
    this.tlbProbe(Access.Store, size);
    b.if();
    this.hostAddr(); b.get('v').mem(STORE_OP[size]);
    b.else();
    b.get('hb').get('a').mem(Op.I64Store, H.SCRATCH_ADDR);
    b.get('hb').get('v').mem(Op.I64Store, H.SCRATCH_VAL);
    this.callHost(HostFn.StoreSlow, () => b.i32(size));
    b.end();
  }

  ramAddr(access: Access.Load | Access.Store, size: 4 | 8, addr: () => void, readsToo = false): void {
    const b = this.b;
    addr(); b.set('a');
    b.get('a').op(Op.I32WrapI64).i32(size - 1).op(Op.I32And).if();
    this.trap(access === Access.Load ? 4 : 6, () => b.get('a'));
    b.end();
    this.tlbProbe(access, size);
    b.if(undefined, T.I32);
    this.hostAddr();
    b.else();
    b.get('hb').get('a').mem(Op.I64Store, H.SCRATCH_ADDR);
    this.callHost(HostFn.RamAddrSlow, () => b.i32(readsToo ? access | RAM_ADDR_READS : access).i32(size));
    b.get('hb').mem(Op.I32Load, H.SCRATCH_VAL);
    b.end();
  }

  requireFp(): void {
    this.b.get('hb').mem(Op.I32Load, H.FS_ON).op(Op.I32Eqz).if();
    this.trap(2, () => this.word());
    this.b.end();
  }

  trap(cause: number, tval: () => void): void {
    const b = this.b;
    b.get('hb'); tval(); b.mem(Op.I64Store, H.SCRATCH_VAL);
    this.syncOut();
    b.get('hb').i32(cause).call(HostFn.Trap).op(Op.Drop);
    this.redirected();
  }

  host(sem: HostSemantics): void {
    this.callHost(HostFn.Exec, () => { this.b.i32(UNIT_NUMBER[sem.unit]).i32(sem.op); this.insnI32(); });
  }
}
