/**
 * Guest RAM whose pages may not be there yet: a lazily restored snapshot fills RAM page by page
 * while the guest runs. Every path that touches RAM by address — the CPU's page walks, TLB fills
 * and slow accesses (cpu/state.ts ramOffset) and device DMA (guest-memory.ts) — asks the pager
 * first, so no TLB entry and no device ever sees a page before its contents arrived.
 */
export interface RamPager {
  /** Makes RAM bytes [off, off + length) (offsets from RAM's first byte) hold the guest's data; throws if they cannot. */
  ensure(off: number, length: number): void;
  /** Brings in everything still missing now (before RAM is read as a whole: a snapshot). */
  finish(): void;
  /** The machine is gone: stop paging and release the source. */
  close(): void;
}

/** The machine's pager, shared by the CPU and its GuestMemory; unset once all of RAM is resident. */
export class Residency {
  pager: RamPager | undefined = undefined;
  /** Set when RAM cannot be brought in (a page fails its check while streaming): the machine must stop with it. */
  failure: Error | undefined = undefined;

  ensure(off: number, length: number): void { this.pager?.ensure(off, length); }
  finish(): void { this.pager?.finish(); }
  close(): void {
    const p = this.pager;
    this.pager = undefined;
    p?.close();
  }
}
