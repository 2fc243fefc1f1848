/** Typed views over the VM's one memory, and 64-bit slot access as (lo, hi) 32-bit halves (no BigInt). */
import { Residency } from '../memory/residency.js';
import { H, RAM_BASE, RAM_OFFSET } from './layout.js';

export class Views {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
  readonly dv: DataView;

  /**
   * While set (a migration's dirty log, cpu.ts): 1 for each RAM page written since the log was
   * last taken. Marked where writes leave the inline fast path: store TLB fills, slow stores,
   * A/D bit updates and device DMA; taking the log empties the TLBs so every page is marked again.
   */
  dirty: Uint8Array | undefined = undefined;

  constructor(readonly memory: WebAssembly.Memory, readonly ramBytes: number, readonly residency = new Residency()) {
    const buf = memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.u32 = new Uint32Array(buf);
    this.f32 = new Float32Array(buf);
    this.f64 = new Float64Array(buf);
    this.dv = new DataView(buf);
  }

  /** Marks the page of guest physical `paddr` (in RAM) written, while the dirty log is on. */
  markDirty(paddr: number): void {
    const d = this.dirty;
    if (d !== undefined) d[Math.floor((paddr - RAM_BASE) / 4096)] = 1;
  }

  /** Host offset of a guest physical address if [paddr, paddr+size) lies in RAM (made resident), else -1. */
  ramOffset(paddr: number, size: number): number {
    const off = paddr - RAM_BASE;
    if (off < 0 || off + size > this.ramBytes) return -1;
    if (this.residency.pager !== undefined) this.residency.pager.ensure(off, size);
    return RAM_OFFSET + off;
  }
}

/** A hart's 64-bit slot at byte offset `off` from its base, read and written as halves. */
export class Slots {
  constructor(readonly v: Views, readonly base: number) {}
  lo(off: number): number { return this.v.i32[(this.base + off) >> 2]; }
  hi(off: number): number { return this.v.i32[(this.base + off + 4) >> 2]; }
  set(off: number, lo: number, hi: number): void {
    const i = (this.base + off) >> 2;
    this.v.i32[i] = lo; this.v.i32[i + 1] = hi;
  }
  csrLo(n: number): number { return this.v.i32[(this.base + H.CSR + n * 8) >> 2]; }
  csrHi(n: number): number { return this.v.i32[(this.base + H.CSR + n * 8 + 4) >> 2]; }
  setCsr(n: number, lo: number, hi: number): void { this.set(H.CSR + n * 8, lo, hi); }
  /** Unsigned value of a slot as a number; exact below 2^53. */
  num(off: number): number { return (this.hi(off) >>> 0) * 0x1_0000_0000 + (this.lo(off) >>> 0); }
  setNum(off: number, v: number): void { this.set(off, v % 0x1_0000_0000 | 0, Math.floor(v / 0x1_0000_0000) | 0); }
}
