/**
 * One hart's host-side behaviour: traps and interrupts, CSR instructions, privileged instructions,
 * and the slow paths of memory access (TLB misses, MMIO, page-crossing accesses). Registers and CSRs
 * stay in the shared memory; this class only holds views and device-driven interrupt lines.
 */
import { Access, LoadKind } from '../isa/emit.js';
import { CsrOp, SysOp } from '../isa/rv64.js';
import type { Bus } from '../memory/bus.js';
import { Cause, Csr, Irq, MS, MSTATUS_HI_FIXED, MSTATUS_WRITABLE, Priv } from './csr/numbers.js';
import { out, readCsr, writeCsr } from './csr/csr.js';
import { Triggers } from './csr/triggers.js';
import { RAM_ADDR_READS } from './host-abi.js';
import { H, hartBase } from './layout.js';
import { Mmu, TlbSet, tlbTable } from './mmu/mmu.js';
import { pmpAllows, pmpEntries } from './mmu/pmp.js';
import { Slots, type Views } from './state.js';
import type { Jit } from './jit/jit.js';
import { RAM_BASE } from './layout.js';

/** Interrupts in the order the privileged spec gives them priority. */
const PRIORITY = [Irq.MEI, Irq.MSI, Irq.MTI, Irq.SEI, Irq.SSI, Irq.STI];
const TWO32 = 0x1_0000_0000;

export interface HartEnv {
  readonly v: Views;
  readonly bus: Bus;
  /** mtime in timebase ticks. */
  mtime(): number;
  /** Called for ECALL before trapping; true = handled (pc moves past it). */
  onEcall?: (hart: Hart) => boolean;
  /** Executes an FP arithmetic op; 0 = done, 1 = illegal instruction. */
  fp(hb: number, op: number, insn: number): number;
  /** The JIT, when on. */
  readonly jit?: Jit;
}

export interface HartHostState { waiting: boolean; instretOffset: number }

export class Hart {
  readonly hb: number;
  readonly s: Slots;
  readonly mmu: Mmu;
  readonly triggers: Triggers;
  /** Interrupt lines driven by devices (CLINT, PLIC): MSIP, MTIP, MEIP, SEIP. */
  private hwPending = 0;
  /** Stopped in WFI until an interrupt is pending. */
  waiting = false;
  private instretOffset = 0;

  constructor(readonly index: number, private readonly env: HartEnv) {
    this.hb = hartBase(index);
    this.s = new Slots(env.v, this.hb);
    this.mmu = new Mmu(env.v, this.s);
    this.triggers = new Triggers(this.s, () => this.mmu.flush(true));
    const jit = env.jit;
    if (jit) {
      jit.addHart(this.hb);
      this.mmu.codePages = jit.codePages;
    }
  }

  /** Host offsets of this hart's store-TLB tables (the JIT scrubs code pages out of them). */
  storeTlbTables(): number[] {
    return [TlbSet.M, TlbSet.S, TlbSet.SSum, TlbSet.U].map(set => this.hb + tlbTable(set, Access.Store));
  }

  /** Host call from the interpreter: jump-cache entry `jce` is hot, translate its block. */
  compile(jce: number): number {
    this.env.jit?.request(jce);
    return 0;
  }

  /** A host-side write to RAM: translated code on that page becomes stale. */
  private wroteRam(pa: number): void {
    this.env.v.markDirty(pa);
    const jit = this.env.jit;
    if (!jit) return;
    const page = Math.floor((pa - RAM_BASE) / 4096);
    if (jit.codePages[page]) jit.invalidatePage(page);
  }

  /** Power-on state: M-mode at `pc`, a0 = hart id, a1/a2 as the boot loader wants. */
  reset(pc: number, a1 = 0, a2 = 0): void {
    this.env.v.u8.fill(0, this.hb, this.hb + H.TLB);
    this.s.setNum(H.PC, pc);
    this.s.setNum(H.X + 10 * 8, this.index);
    this.s.setNum(H.X + 11 * 8, a1);
    this.s.setNum(H.X + 12 * 8, a2);
    this.s.setCsr(Csr.mstatus, 0, MSTATUS_HI_FIXED);
    this.hwPending = 0;
    this.waiting = false;
    this.setPriv(Priv.M);
    this.triggers.resync();
    this.mmu.flush(true);
    this.syncMstatus();
  }

  /** Host-side state beside the bytes [hb, hb + HART_STATE_BYTES) of the shared memory (interrupt lines come back from the devices). */
  saveHost(): HartHostState { return { waiting: this.waiting, instretOffset: this.instretOffset }; }

  /** After the hart's state bytes are back in memory: its host side, an empty TLB and the views generated code reads. */
  restoreHost(s: HartHostState): void {
    const p = this.priv;
    if (typeof s?.waiting !== 'boolean' || !Number.isFinite(s.instretOffset) || (p !== Priv.M && p !== Priv.S && p !== Priv.U)) {
      throw new RangeError(`Hart ${this.index}: bad saved state`);
    }
    this.waiting = s.waiting;
    this.instretOffset = s.instretOffset;
    this.hwPending = 0;
    this.triggers.resync();
    this.mmu.flush(true);
    this.syncMstatus();
  }

  get priv(): Priv { return this.env.v.i32[(this.hb + H.PRIV) >> 2] as Priv; }
  private setPriv(p: Priv): void { this.env.v.i32[(this.hb + H.PRIV) >> 2] = p; this.updateTlbSets(); }

  mtime(): number { return this.env.mtime(); }
  instret(): number { return this.s.num(H.INSTRET) + this.instretOffset; }
  setInstret(hi: number, lo: number): void { this.instretOffset = (hi >>> 0) * TWO32 + (lo >>> 0) - this.s.num(H.INSTRET); }
  mip(): number { return this.s.csrLo(Csr.mip) | this.hwPending; }
  fpOn(): boolean { return (this.s.csrLo(Csr.mstatus) & MS.FS) !== 0; }
  markFpDirty(): void { this.s.setCsr(Csr.mstatus, this.s.csrLo(Csr.mstatus) | MS.FS, this.s.csrHi(Csr.mstatus) | 0x8000_0000); }

  /** Asks the interpreter to return to the host after the current instruction. */
  requestExit(): void { this.env.v.i32[(this.hb + H.EXIT) >> 2] = 1; }
  clearExit(): void { this.env.v.i32[(this.hb + H.EXIT) >> 2] = 0; }

  /** A device raised or lowered an interrupt line. */
  setPending(bit: number, level: boolean): void {
    const before = this.hwPending;
    this.hwPending = level ? before | (1 << bit) : before & ~(1 << bit);
    if (this.hwPending !== before && level) { this.waiting = false; this.requestExit(); }
  }

  setMstatus(lo: number): void {
    const old = this.s.csrLo(Csr.mstatus);
    let v = (old & ~MSTATUS_WRITABLE) | (lo & MSTATUS_WRITABLE);
    if (((v & MS.MPP) >>> MS.MPP_SHIFT) === 2) v &= ~MS.MPP; // reserved MPP value
    const dirty = (v & MS.FS) === MS.FS;
    this.s.setCsr(Csr.mstatus, v, MSTATUS_HI_FIXED | (dirty ? 0x8000_0000 : 0));
    if ((old ^ v) & MS.MXR) this.mmu.flush(false);
    this.syncMstatus();
  }

  /** Keeps the state the generated code reads (FS_ON, TLB set offsets) in line with mstatus and priv. */
  private syncMstatus(): void {
    const i32 = this.env.v.i32;
    const ms = this.s.csrLo(Csr.mstatus);
    i32[(this.hb + H.FS_ON) >> 2] = ms & MS.FS ? 1 : 0;
    this.updateTlbSets();
  }

  private dataPriv(): Priv {
    const ms = this.s.csrLo(Csr.mstatus);
    return this.priv === Priv.M && ms & MS.MPRV ? ((ms & MS.MPP) >>> MS.MPP_SHIFT) as Priv : this.priv;
  }

  private setOf(p: Priv): TlbSet {
    if (p === Priv.M) return TlbSet.M;
    if (p === Priv.U) return TlbSet.U;
    return this.s.csrLo(Csr.mstatus) & MS.SUM ? TlbSet.SSum : TlbSet.S;
  }

  private updateTlbSets(): void {
    const i32 = this.env.v.i32, hb = this.hb;
    const d = this.setOf(this.dataPriv());
    i32[(hb + H.TLB_FETCH) >> 2] = tlbTable(this.setOf(this.priv), Access.Fetch);
    i32[(hb + H.TLB_LOAD) >> 2] = tlbTable(d, Access.Load);
    i32[(hb + H.TLB_STORE) >> 2] = tlbTable(d, Access.Store);
  }

  // ---- inspection (tests, tools; not the hot path) ----

  get pc(): number { return this.s.num(H.PC); }
  set pc(v: number) { this.s.setNum(H.PC, v); }
  private big(off: number): bigint { return BigInt.asUintN(64, (BigInt(this.s.hi(off)) << 32n) | BigInt(this.s.lo(off) >>> 0)); }
  private setBig(off: number, v: bigint): void { this.s.set(off, Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n))); }
  x(i: number): bigint { return this.big(H.X + i * 8); }
  setX(i: number, v: bigint): void { if (i) this.setBig(H.X + i * 8, v); }
  f(i: number): bigint { return this.big(H.F + i * 8); }
  setF(i: number, v: bigint): void { this.setBig(H.F + i * 8, v); }
  csrRead(n: number): bigint {
    if (!readCsr(this, n)) throw new RangeError(`CSR 0x${n.toString(16)} is not readable here`);
    return BigInt.asUintN(64, (BigInt(out.hi) << 32n) | BigInt(out.lo >>> 0));
  }
  csrWrite(n: number, v: bigint): void {
    if (!writeCsr(this, n, Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)))) {
      throw new RangeError(`CSR 0x${n.toString(16)} is not writable`);
    }
  }

  // ---- traps and interrupts ----

  /** Takes a trap at the pc in the PC slot; tval as halves. */
  trap(cause: number, interrupt: boolean, tvalLo: number, tvalHi: number): void {
    const s = this.s;
    const p = this.priv;
    const deleg = s.csrLo(interrupt ? Csr.mideleg : Csr.medeleg);
    const toS = p <= Priv.S && ((deleg >>> cause) & 1) === 1;
    const [cCause, cEpc, cTval, cTvec] = toS ? [Csr.scause, Csr.sepc, Csr.stval, Csr.stvec] : [Csr.mcause, Csr.mepc, Csr.mtval, Csr.mtvec];
    s.setCsr(cCause, cause, interrupt ? 0x8000_0000 : 0);
    s.setCsr(cEpc, s.lo(H.PC), s.hi(H.PC));
    s.setCsr(cTval, tvalLo, tvalHi);
    let ms = s.csrLo(Csr.mstatus);
    if (toS) {
      ms = (ms & ~(MS.SPIE | MS.SPP | MS.SIE)) | (ms & MS.SIE ? MS.SPIE : 0) | (p === Priv.S ? MS.SPP : 0);
    } else {
      ms = (ms & ~(MS.MPIE | MS.MPP | MS.MIE)) | (ms & MS.MIE ? MS.MPIE : 0) | (p << MS.MPP_SHIFT);
    }
    s.setCsr(Csr.mstatus, ms, s.csrHi(Csr.mstatus));
    const tvecLo = s.csrLo(cTvec), tvecHi = s.csrHi(cTvec);
    const base = tvecLo & ~3;
    const vectored = (tvecLo & 3) === 1 && interrupt;
    this.setPc(vectored ? base + 4 * cause : base, tvecHi);
    this.waiting = false;
    this.setPriv(toS ? Priv.S : Priv.M);
  }

  private setPc(lo: number, hi: number): void {
    // lo may have grown past 32 bits when a vector offset was added.
    const carry = lo >= TWO32 || lo < -0x8000_0000 ? Math.floor(lo / TWO32) : 0;
    this.s.set(H.PC, lo | 0, (hi + carry) | 0);
  }

  /** The highest-priority interrupt that is pending and enabled now, or -1. */
  pendingInterrupt(): number {
    const s = this.s;
    const pend = this.mip() & s.csrLo(Csr.mie);
    if (!pend) return -1;
    const p = this.priv, ms = s.csrLo(Csr.mstatus), deleg = s.csrLo(Csr.mideleg);
    const mOn = p < Priv.M || (ms & MS.MIE) !== 0;
    const sOn = p < Priv.S || (p === Priv.S && (ms & MS.SIE) !== 0);
    // Interrupts bound for M-mode take priority over any bound for S-mode.
    const ready = mOn && pend & ~deleg ? pend & ~deleg : sOn ? pend & deleg : 0;
    if (!ready) return -1;
    for (const irq of PRIORITY) if (ready & (1 << irq)) return irq;
    return -1;
  }

  /** Takes a pending enabled interrupt (pc slot = next instruction); true if one was taken. */
  takeInterrupt(): boolean {
    const irq = this.pendingInterrupt();
    if (irq < 0) return false;
    this.trap(irq, true, 0, 0);
    return true;
  }

  /** Whether WFI may stop waiting: any interrupt pending and locally enabled, regardless of global enables. */
  wakeable(): boolean { return (this.mip() & this.s.csrLo(Csr.mie)) !== 0; }

  private advancePc(by: number): void {
    const lo = this.s.lo(H.PC);
    const n = (lo >>> 0) + by;
    this.s.set(H.PC, n | 0, n >= TWO32 ? (this.s.hi(H.PC) + 1) | 0 : this.s.hi(H.PC));
  }

  /** Raises an exception from host code; returns the status the generated code expects. */
  private raise(cause: number, tvalLo = 0, tvalHi = 0): 1 { this.trap(cause, false, tvalLo, tvalHi); return 1; }
  private illegal(insn: number): 1 { return this.raise(Cause.Illegal, insn, 0); }

  // ---- host units ----

  exec(unit: number, op: number, insn: number): number {
    if (unit === 0) {
      if (!this.fpOn() || this.env.fp(this.hb, op, insn)) return this.illegal(insn);
      return 0;
    }
    return unit === 1 ? this.csr(op, insn) : this.system(op, insn);
  }

  private csr(op: number, insn: number): number {
    const s = this.s;
    const rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, n = insn >>> 20;
    const imm = op >= CsrOp.RWI;
    const srcLo = imm ? rs1 : s.lo(H.X + rs1 * 8), srcHi = imm ? 0 : s.hi(H.X + rs1 * 8);
    const write = op === CsrOp.RW || op === CsrOp.RWI || rs1 !== 0;
    if (this.priv < ((n >>> 8) & 3) || (write && n >>> 10 === 3)) return this.illegal(insn);
    if (!readCsr(this, n)) return this.illegal(insn);
    const oldLo = out.lo, oldHi = out.hi;
    if (write) {
      const kind = op & 3;
      // Read-modify-write of mip/sip acts on the software-written bits, not on device lines (priv spec, mip.SEIP).
      const baseLo = n === Csr.mip || n === Csr.sip ? s.csrLo(Csr.mip) : oldLo;
      const lo = kind === 1 ? srcLo : kind === 2 ? baseLo | srcLo : baseLo & ~srcLo;
      const hi = kind === 1 ? srcHi : kind === 2 ? oldHi | srcHi : oldHi & ~srcHi;
      if (!writeCsr(this, n, lo, hi)) return this.illegal(insn);
    }
    if (rd) s.set(H.X + rd * 8, oldLo, oldHi);
    // A write may have enabled an interrupt: take it before the next instruction.
    if (this.pendingInterrupt() < 0) return 0;
    this.advancePc(4);
    return this.takeInterrupt() ? 1 : 0;
  }

  private system(op: number, insn: number): number {
    const s = this.s, p = this.priv;
    switch (op) {
      case SysOp.ECALL:
        if (this.env.onEcall?.(this)) return 0;
        return this.raise(p === Priv.U ? Cause.EcallU : p === Priv.S ? Cause.EcallS : Cause.EcallM);
      case SysOp.EBREAK: return this.raise(Cause.Breakpoint, s.lo(H.PC), s.hi(H.PC));
      case SysOp.MRET: {
        if (p !== Priv.M) return this.illegal(insn);
        let ms = s.csrLo(Csr.mstatus);
        const mpp = ((ms & MS.MPP) >>> MS.MPP_SHIFT) as Priv;
        ms = (ms & ~(MS.MIE | MS.MPP)) | (ms & MS.MPIE ? MS.MIE : 0) | MS.MPIE;
        if (mpp !== Priv.M) ms &= ~MS.MPRV;
        s.setCsr(Csr.mstatus, ms, s.csrHi(Csr.mstatus));
        s.set(H.PC, s.csrLo(Csr.mepc), s.csrHi(Csr.mepc));
        this.setPriv(mpp);
        this.takeInterrupt();
        return 1;
      }
      case SysOp.SRET: {
        let ms = s.csrLo(Csr.mstatus);
        if (p === Priv.U || (p === Priv.S && ms & MS.TSR)) return this.illegal(insn);
        const spp = ms & MS.SPP ? Priv.S : Priv.U;
        ms = (ms & ~(MS.SIE | MS.SPP | MS.MPRV)) | (ms & MS.SPIE ? MS.SIE : 0) | MS.SPIE;
        s.setCsr(Csr.mstatus, ms, s.csrHi(Csr.mstatus));
        s.set(H.PC, s.csrLo(Csr.sepc), s.csrHi(Csr.sepc));
        this.setPriv(spp);
        this.takeInterrupt();
        return 1;
      }
      case SysOp.WFI:
        if (p === Priv.U || (p === Priv.S && s.csrLo(Csr.mstatus) & MS.TW)) return this.illegal(insn);
        if (!this.wakeable()) { this.waiting = true; this.requestExit(); }
        return 0;
      case SysOp.SFENCE_VMA:
        if (p === Priv.U || (p === Priv.S && s.csrLo(Csr.mstatus) & MS.TVM)) return this.illegal(insn);
        const rs1 = (insn >>> 15) & 31;
        if (rs1) this.mmu.flushPage(s.lo(H.X + rs1 * 8), s.hi(H.X + rs1 * 8));
        else this.mmu.flush(false);
        return 0;
      case SysOp.FENCE_I:
        return 0;
    }
    return this.illegal(insn);
  }

  // ---- memory slow paths ----

  private translateFor(lo: number, hi: number, access: Access, size = 1): number {
    const ms = this.s.csrLo(Csr.mstatus);
    const p = access === Access.Fetch ? this.priv : this.dataPriv();
    const pmp = pmpEntries(this.s);
    const pa = this.mmu.translate(lo, hi, access, p, (ms & MS.SUM) !== 0, (ms & MS.MXR) !== 0, pmp);
    if (pa < 0) return pa;
    if (!pmpAllows(pmp, pa, size, access, p)) { this.mmu.fault = this.mmu.accessFault(access); return -1; }
    if (!this.triggers.keepsOut(access, lo, hi)) this.mmu.fill(this.setOf(p), access, lo, hi, pa, p, pmp);
    return pa;
  }

  /** Reads `size` bytes at physical `pa` (RAM or MMIO) into `out`; false on an access fault. */
  private readPhys(pa: number, size: number): boolean {
    const v = this.env.v;
    const off = v.ramOffset(pa, size);
    if (off >= 0) {
      if (size === 8) { out.lo = v.dv.getInt32(off, true); out.hi = v.dv.getInt32(off + 4, true); }
      else { out.lo = size === 4 ? v.dv.getInt32(off, true) : size === 2 ? v.dv.getUint16(off, true) : v.u8[off]; out.hi = 0; }
      return true;
    }
    if (pa % size) return false;
    const bus = this.env.bus;
    if (size === 8) {
      const lo = bus.read(pa, 4), hi = bus.read(pa + 4, 4);
      if (lo < 0 || hi < 0) return false;
      out.lo = lo | 0; out.hi = hi | 0;
      return true;
    }
    const r = bus.read(pa, size as 1 | 2 | 4);
    if (r < 0) return false;
    out.lo = r | 0; out.hi = 0;
    return true;
  }

  private writePhys(pa: number, size: number, lo: number, hi: number): boolean {
    const v = this.env.v;
    const off = v.ramOffset(pa, size);
    if (off >= 0) {
      this.wroteRam(pa);
      if (size >= 4) v.dv.setInt32(off, lo, true);
      if (size === 8) v.dv.setInt32(off + 4, hi, true);
      else if (size === 2) v.dv.setUint16(off, lo & 0xffff, true);
      else if (size === 1) v.u8[off] = lo;
      return true;
    }
    if (pa % size) return false;
    const bus = this.env.bus;
    if (size === 8) return bus.write(pa, 4, lo) && bus.write(pa + 4, 4, hi);
    const ok = bus.write(pa, size as 1 | 2 | 4, lo);
    // A device write may raise an interrupt or change time: let the run loop look.
    this.requestExit();
    return ok;
  }

  fetchSlow(): number {
    const s = this.s;
    const lo = s.lo(H.PC), hi = s.hi(H.PC);
    // An instruction address breakpoint comes before the fetch's own faults.
    if (this.triggers.fires(Access.Fetch, lo, hi, 1)) return this.raise(Cause.Breakpoint, lo, hi);
    const pa = this.translateFor(lo, hi, Access.Fetch, 2);
    if (pa < 0) return this.raise(this.mmu.fault, lo, hi);
    const off = this.env.v.ramOffset(pa, 2);
    if (off < 0) return this.raise(Cause.InsnAccess, lo, hi);
    let insn = this.env.v.dv.getUint16(off, true);
    if ((insn & 3) === 3) {
      const lo2 = (lo + 2) | 0, hi2 = (lo >>> 0) + 2 >= TWO32 ? (hi + 1) | 0 : hi;
      const pa2 = (lo2 & 0xfff) === 0 ? this.translateFor(lo2, hi2, Access.Fetch) : pa + 2;
      if (pa2 < 0) return this.raise(this.mmu.fault, lo2, hi2);
      const off2 = this.env.v.ramOffset(pa2, 2);
      if (off2 < 0) return this.raise(Cause.InsnAccess, lo2, hi2);
      insn |= this.env.v.dv.getUint16(off2, true) << 16;
    }
    s.set(H.SCRATCH_VAL, insn, 0);
    return 0;
  }

  loadSlow(kind: LoadKind): number {
    const s = this.s;
    const lo = s.lo(H.SCRATCH_ADDR), hi = s.hi(H.SCRATCH_ADDR);
    const size = 1 << (kind & 3);
    if (!this.access(lo, hi, size, Access.Load)) return 1;
    let rlo = out.lo, rhi = out.hi;
    if (size < 8) {
      const sh = 32 - size * 8;
      const signed = kind < LoadKind.BU;
      rlo = sh ? (signed ? (rlo << sh) >> sh : (rlo << sh) >>> sh) : rlo;
      rhi = signed ? rlo >> 31 : 0;
    }
    s.set(H.SCRATCH_VAL, rlo, rhi);
    return 0;
  }

  storeSlow(size: number): number {
    const s = this.s;
    out.lo = s.lo(H.SCRATCH_VAL); out.hi = s.hi(H.SCRATCH_VAL);
    return this.access(s.lo(H.SCRATCH_ADDR), s.hi(H.SCRATCH_ADDR), size, Access.Store) ? 0 : 1;
  }

  /**
   * A load (result in `out`) or store (value from `out`) of 1..8 bytes at a virtual address,
   * including accesses that cross a page; false after raising the fault.
   */
  private access(lo: number, hi: number, size: number, access: Access.Load | Access.Store): boolean {
    // A load/store address breakpoint comes before misalignment and translation faults; the access does not happen.
    if (this.triggers.fires(access, lo, hi, size)) { this.raise(Cause.Breakpoint, lo, hi); return false; }
    const pageLeft = 4096 - (lo & 0xfff);
    const pa = this.translateFor(lo, hi, access, Math.min(size, pageLeft));
    if (pa < 0) { this.raise(this.mmu.fault, lo, hi); return false; }
    if (size <= pageLeft) {
      const ok = access === Access.Load ? this.readPhys(pa, size) : this.writePhys(pa, size, out.lo, out.hi);
      if (!ok) this.raise(this.mmu.accessFault(access), lo, hi);
      return ok;
    }
    // Crosses a page: both halves must translate before anything is written.
    const lo2 = (lo + pageLeft) | 0, hi2 = (lo >>> 0) + pageLeft >= TWO32 ? (hi + 1) | 0 : hi;
    const pa2 = this.translateFor(lo2, hi2, access, size - pageLeft);
    if (pa2 < 0) { this.raise(this.mmu.fault, lo2, hi2); return false; }
    const v = this.env.v;
    const o1 = v.ramOffset(pa, pageLeft), o2 = v.ramOffset(pa2, size - pageLeft);
    if (o1 < 0 || o2 < 0) { this.raise(this.mmu.accessFault(access), lo, hi); return false; }
    const byteAt = (i: number): number => (i < pageLeft ? o1 + i : o2 + i - pageLeft);
    if (access === Access.Load) {
      let rlo = 0, rhi = 0;
      for (let i = 0; i < size; i++) {
        const b = v.u8[byteAt(i)];
        if (i < 4) rlo |= b << (8 * i); else rhi |= b << (8 * (i - 4));
      }
      out.lo = rlo; out.hi = rhi;
    } else {
      this.wroteRam(pa);
      this.wroteRam(pa2);
      for (let i = 0; i < size; i++) v.u8[byteAt(i)] = (i < 4 ? out.lo >>> (8 * i) : out.hi >>> (8 * (i - 4))) & 0xff;
    }
    return true;
  }

  ramAddrSlow(code: number, size: number): number {
    const s = this.s;
    const lo = s.lo(H.SCRATCH_ADDR), hi = s.hi(H.SCRATCH_ADDR);
    const access = (code & ~RAM_ADDR_READS) as Access.Load | Access.Store;
    const t = this.triggers;
    if (t.fires(access, lo, hi, size) || (code & RAM_ADDR_READS && t.fires(Access.Load, lo, hi, size))) return this.raise(Cause.Breakpoint, lo, hi);
    const pa = this.translateFor(lo, hi, access, size);
    if (pa < 0) return this.raise(this.mmu.fault, lo, hi);
    const off = this.env.v.ramOffset(pa, 8);
    if (off < 0) return this.raise(this.mmu.accessFault(access), lo, hi);
    if (access === Access.Store) this.wroteRam(pa);
    s.set(H.SCRATCH_VAL, off, 0);
    return 0;
  }

  trapFromCode(cause: number): number {
    return this.raise(cause, this.s.lo(H.SCRATCH_VAL), this.s.hi(H.SCRATCH_VAL));
  }
}
