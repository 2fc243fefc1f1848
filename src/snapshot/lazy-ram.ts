/**
 * Restored RAM that arrives while the guest runs (memory/residency.ts): a page the guest or a
 * device touches first is read at once with its neighbours (one read per CLUSTER pages), and the
 * rest streams in from libuv's thread pool in the background, so the guest runs as soon as its
 * board state is back. Each page is checked against its CRC before anyone can see it: a page that
 * fails is never served: the VM stops with a SnapshotError (residency.failure) as soon as it is
 * found, whether the guest touched it or not. Zero pages were never
 * stored and need nothing: the new memory is zeroed.
 */
import { closeSync, read, readSync } from 'node:fs';
import type { RamPager, Residency } from '../memory/residency.js';
import { SnapshotError } from './errors.js';
import { crc32 } from './format.js';
import { PAGE, type RamIndex } from './ram.js';

/** Pages brought in by one fault: a guest touching a page soon touches its neighbours. */
const CLUSTER = 16;
/** Stored pages per background read (1 MiB): short enough not to hold the guest up when it is checked. */
const BACKGROUND_SLOTS = 256;

export interface LazyRamStats {
  stored: number;
  /** Pages brought in because the guest or a device touched them (or a snapshot needed all). */
  onDemand: number;
  background: number;
  /** From restore to the last page in, ms. */
  ms: number;
}

export class LazyRam implements RamPager {
  /** 1 = page stored in the file and not yet in RAM. */
  private readonly missing: Uint8Array;
  private left: number;
  /** Next slot the background loader looks at. */
  private next = 0;
  private reading = false;
  private closed = false;
  private readonly scratch = new Uint8Array(CLUSTER * PAGE);
  private readonly bulk = new Uint8Array(BACKGROUND_SLOTS * PAGE);
  /** Counts so far (final once onDone is called). */
  readonly stats: LazyRamStats;
  private readonly t0 = performance.now();

  constructor(
    private readonly path: string,
    private fd: number,
    private readonly index: RamIndex,
    private readonly ram: Uint8Array,
    private readonly residency: Residency,
    private readonly onDone?: (stats: LazyRamStats) => void,
  ) {
    this.missing = new Uint8Array(index.pages);
    for (let s = 0; s < index.stored; s++) this.missing[index.pageOf[s]!] = 1;
    this.left = index.stored;
    this.stats = { stored: index.stored, onDemand: 0, background: 0, ms: 0 };
    residency.pager = this;
    if (this.left === 0) this.done();
  }

  /** Starts streaming the pages nobody asked for yet. */
  start(): void { this.pump(); }

  ensure(off: number, length: number): void {
    const m = this.missing;
    for (let p = Math.floor(off / PAGE), last = Math.floor((off + length - 1) / PAGE); p <= last; p++) {
      if (m[p] === 1) this.fault(p);
    }
  }

  finish(): void {
    const { pageOf, stored } = this.index;
    for (let s = 0; s < stored && this.left > 0; s++) if (this.missing[pageOf[s]!] === 1) this.fault(pageOf[s]!);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.residency.pager === this) this.residency.pager = undefined;
    if (!this.reading) this.release();
  }

  /** Reads the missing stored pages of `page`'s cluster, which lie back to back in the file. */
  private fault(page: number): void {
    const { slotOf, pageOf, dataPos } = this.index;
    const c0 = page - (page % CLUSTER), c1 = Math.min(c0 + CLUSTER, this.index.pages);
    let first = -1, last = -1;
    for (let q = c0; q < c1; q++) {
      if (this.missing[q] !== 1) continue;
      if (first < 0) first = slotOf[q]!;
      last = slotOf[q]!;
    }
    const into = this.scratch.subarray(0, (last - first + 1) * PAGE);
    for (let off = 0; off < into.length;) {
      let n: number;
      try {
        n = readSync(this.fd, into, off, into.length - off, dataPos + first * PAGE + off);
      } catch (err) {
        throw new SnapshotError('io', `Cannot read guest RAM from ${this.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
      }
      if (n === 0) throw new SnapshotError('truncated', `${this.path} is truncated in its RAM section`);
      off += n;
    }
    for (let s = first; s <= last; s++) {
      const q = pageOf[s]!;
      if (this.missing[q] !== 1) continue;
      const bytes = into.subarray((s - first) * PAGE, (s - first + 1) * PAGE);
      if (!this.place(q, s, bytes, true)) throw this.corrupt(q);
    }
  }

  private corrupt(page: number): SnapshotError {
    return new SnapshotError('corrupt', `${this.path} is corrupt: guest RAM page 0x${(page * PAGE).toString(16)} fails its checksum (not loaded)`);
  }

  /** Puts a page in RAM if it checks; false (and the page still missing) if not. */
  private place(page: number, slot: number, bytes: Uint8Array, onDemand: boolean): boolean {
    if ((crc32(bytes) >>> 0) !== this.index.crcs[slot]) return false;
    this.ram.set(bytes, page * PAGE);
    this.missing[page] = 0;
    if (onDemand) this.stats.onDemand++;
    else this.stats.background++;
    if (--this.left === 0) this.done();
    return true;
  }

  private pump(): void {
    const { pageOf, stored, dataPos } = this.index;
    if (this.closed || this.reading || this.left === 0) return;
    while (this.next < stored && this.missing[pageOf[this.next]!] !== 1) this.next++;
    if (this.next >= stored) return;
    const first = this.next, count = Math.min(BACKGROUND_SLOTS, stored - first);
    this.next = first + count;
    this.reading = true;
    read(this.fd, this.bulk, 0, count * PAGE, dataPos + first * PAGE, (err, n) => {
      this.reading = false;
      if (this.closed) { this.release(); return; }
      if (err || n !== count * PAGE) {
        this.residency.failure ??= err
          ? new SnapshotError('io', `Cannot read guest RAM from ${this.path} (${err.code ?? err.message})`, { cause: err })
          : new SnapshotError('truncated', `${this.path} is truncated in its RAM section`);
        return;
      }
      for (let s = first; s < first + count; s++) {
        const q = pageOf[s]!;
        if (this.missing[q] === 1 && !this.place(q, s, this.bulk.subarray((s - first) * PAGE, (s - first + 1) * PAGE), false)) {
          this.residency.failure ??= this.corrupt(q);
          return;
        }
      }
      if (this.left === 0) this.release();
      else this.pump();
    });
  }

  private done(): void {
    this.stats.ms = performance.now() - this.t0;
    if (this.residency.pager === this) this.residency.pager = undefined;
    if (!this.reading) this.release();
    this.onDone?.(this.stats);
  }

  private release(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
