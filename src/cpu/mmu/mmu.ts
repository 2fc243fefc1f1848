/**
 * Sv39/Sv48 address translation with hardware A/D updates, and the software TLB the generated code
 * probes inline (privileged spec, "Supervisor-Level ISA", "Virtual-Memory System").
 *
 * TLB: 4 sets (M; S with SUM=0; S with SUM=1; U) × 3 access types × TLB_ENTRIES direct-mapped entries of
 * 16 bytes: tag = vaddr >> 12 (i64; all-ones when empty), then an i32 addend such that
 * host address = low32(vaddr) + addend. Only RAM pages the access may touch are ever entered.
 */
import { Access } from '../../isa/emit.js';
import { Cause, Csr, Priv } from '../csr/numbers.js';
import { H, RAM_BASE } from '../layout.js';
import type { Slots, Views } from '../state.js';
import { pmpAllows, type PmpEntries } from './pmp.js';

export const enum TlbSet { M = 0, S = 1, SSum = 2, U = 3 }
export const TLB_ENTRIES = 1024;
const TABLE_BYTES = TLB_ENTRIES * 16;
export const tlbTable = (set: TlbSet, access: Access): number => H.TLB + (set * 3 + access) * TABLE_BYTES;

const TWO32 = 0x1_0000_0000;
const vpageOf = (lo: number, hi: number): number => (hi & 0xffff) * 0x10_0000 + (lo >>> 12);
const superpageKey = (span: number, lo: number, hi: number): string => `${span}:${Math.floor(vpageOf(lo, hi) / span)}`;
const SPANS = [512, 512 * 512, 512 * 512 * 512];
const PAGE_FAULT = [Cause.InsnPage, Cause.LoadPage, Cause.StorePage];
const ACCESS_FAULT = [Cause.InsnAccess, Cause.LoadAccess, Cause.StoreAccess];

export class Mmu {
  /** Cause of the last failed translation. */
  fault = 0;
  /** Pages spanned by the leaf of the last successful translation (1 for 4 KiB, 512 for 2 MiB, ...). */
  private lastSpan = 1;
  /**
   * Superpages with 4 KiB slices in the TLB, as "span:number" keys, so sfence.vma of one address
   * inside a superpage can still drop every slice (Linux flushes a huge mapping by its base address).
   */
  private readonly superpages = new Set<string>();
  /** Guest RAM pages holding translated code (jit/): never entered in the store TLB. */
  codePages: Uint8Array | undefined;

  constructor(private readonly v: Views, private readonly s: Slots) {}

  /**
   * Physical address of (lo, hi) for `access` at effective privilege `priv`, or -1 with `fault` set.
   * `sum`/`mxr` are mstatus.SUM/MXR; `pmp` the hart's PMP entries (page-table reads are checked against them).
   */
  translate(lo: number, hi: number, access: Access, priv: Priv, sum: boolean, mxr: boolean, pmp: PmpEntries): number {
    const s = this.s;
    const mode = s.csrHi(Csr.satp) >>> 28;
    this.lastSpan = 1;
    if (priv === Priv.M || mode === 0) return (hi >>> 0) * TWO32 + (lo >>> 0);
    const levels = mode === 8 ? 3 : 4;
    const top = levels === 3 ? hi >> 6 : hi >> 15; // bits above the VA width must copy its top bit
    if (top !== 0 && top !== -1) return this.fail(PAGE_FAULT[access]);
    const vpage = vpageOf(lo, hi);
    let table = ((s.csrHi(Csr.satp) & 0xfff) * TWO32 + (s.csrLo(Csr.satp) >>> 0)) * 4096;
    for (let level = levels - 1; level >= 0; level--) {
      const span = 2 ** (9 * level);
      const pteAddr = table + (Math.floor(vpage / span) % 512) * 8;
      const off = this.v.ramOffset(pteAddr, 8);
      if (off < 0 || !pmpAllows(pmp, pteAddr, 8, Access.Load, Priv.S)) return this.fail(ACCESS_FAULT[access]);
      let pteLo = this.v.i32[off >> 2];
      const pteHi = this.v.i32[(off >> 2) + 1];
      if (!(pteLo & 1) || (pteLo & 6) === 4 || pteHi >>> 22) return this.fail(PAGE_FAULT[access]);
      const ppn = (pteHi & 0x3f_ffff) * 0x40_0000 + (pteLo >>> 10);
      if (!(pteLo & 0xa)) { // pointer to the next level
        if (level === 0) return this.fail(PAGE_FAULT[access]);
        table = ppn * 4096;
        continue;
      }
      if (!this.permits(pteLo, access, priv, sum, mxr) || ppn % span) return this.fail(PAGE_FAULT[access]);
      const want = 0x40 | (access === Access.Store ? 0x80 : 0);
      if ((pteLo & want) !== want) { pteLo |= want; this.v.i32[off >> 2] = pteLo; this.v.markDirty(pteAddr); }
      this.lastSpan = span;
      return (ppn + (vpage % span)) * 4096 + (lo & 0xfff);
    }
    return this.fail(PAGE_FAULT[access]);
  }

  private permits(pte: number, access: Access, priv: Priv, sum: boolean, mxr: boolean): boolean {
    const user = (pte & 0x10) !== 0;
    if (priv === Priv.U ? !user : user && (access === Access.Fetch || !sum)) return false;
    if (access === Access.Fetch) return (pte & 8) !== 0;
    if (access === Access.Load) return (pte & 2) !== 0 || (mxr && (pte & 8) !== 0);
    return (pte & 4) !== 0;
  }

  private fail(cause: number): number { this.fault = cause; return -1; }

  /** Access fault cause for `access`. */
  accessFault(access: Access): number { return ACCESS_FAULT[access]; }

  /**
   * Enters the page of (lo, hi) → paddr into `set` if it is RAM the access may use as a whole.
   * A store entry needs the D bit, which translate() has just set.
   */
  fill(set: TlbSet, access: Access, lo: number, hi: number, paddr: number, priv: Priv, pmp: PmpEntries): void {
    const page = paddr - (lo & 0xfff);
    const off = this.v.ramOffset(page, 4096);
    if (off < 0 || !pmpAllows(pmp, page, 4096, access, priv)) return;
    if (access === Access.Store && this.codePages?.[(page - RAM_BASE) / 4096]) return;
    if (access === Access.Store) this.v.markDirty(page); // later stores to the page hit the entry unseen
    if (this.lastSpan > 1) this.superpages.add(superpageKey(this.lastSpan, lo, hi));
    const e = (this.s.base + tlbTable(set, access) + ((lo >>> 12) & (TLB_ENTRIES - 1)) * 16) >> 2;
    const i32 = this.v.i32;
    i32[e] = (lo >>> 12) | (hi << 20);
    i32[e + 1] = hi >>> 12;
    i32[e + 2] = (off - (lo & ~0xfff)) | 0;
  }

  /** Empties the TLB; the M set (bare, identity) survives unless PMP or the memory map changed. */
  flush(includeM: boolean): void {
    this.superpages.clear();
    const start = (this.s.base + tlbTable(includeM ? TlbSet.M : TlbSet.S, Access.Fetch)) >> 2;
    const end = (this.s.base + tlbTable(TlbSet.U, Access.Store) + TABLE_BYTES) >> 2;
    this.v.i32.fill(-1, start, end);
  }

  /** sfence.vma for one virtual address: drops its entries in the S and U sets (all, if it lies in a cached superpage). */
  flushPage(lo: number, hi: number): void {
    for (const span of SPANS) {
      if (this.superpages.has(superpageKey(span, lo, hi))) { this.flush(false); return; }
    }
    const i32 = this.v.i32;
    const tagLo = (lo >>> 12) | (hi << 20), tagHi = hi >>> 12;
    const idx = ((lo >>> 12) & (TLB_ENTRIES - 1)) * 16;
    for (let set = TlbSet.S; set <= TlbSet.U; set++) {
      for (let a = Access.Fetch; a <= Access.Store; a++) {
        const e = (this.s.base + tlbTable(set, a) + idx) >> 2;
        if (i32[e] === tagLo && i32[e + 1] === tagHi) { i32[e] = -1; i32[e + 1] = -1; }
      }
    }
  }
}
