/**
 * Consistency check, like `qemu-img check`: recomputes every host cluster's refcount from the
 * metadata (header, L1/L2 tables of the active state and of every snapshot, refcount structures,
 * snapshot table, bitmaps), compares with the stored refcounts, and checks COPIED flags against
 * them. Stored > computed is a leak (wasted space); stored < computed, or a broken reference,
 * is a corruption.
 *
 * Hostile images: every offset is checked against the file before it is read, computed
 * refcounts live in chunks allocated only where clusters are referenced, and the walk stops
 * (as a check error) after a fixed budget of L2 entries.
 */
import { HostFile } from '../host-file.js';
import { readHeader } from './image.js';
import {
  COPIED_HI, ClusterKind, L1_RESERVED_HI, L1_RESERVED_LO, L2_RESERVED_HI, L2_RESERVED_LO, OFFSET_HI_MASK,
  clusterKind, compressedGeometry, compressedLength, compressedOffset, entryOffset, type CompressedGeometry, type Qcow2Header,
} from './layout.js';
import { refcountEntry } from './refcounts.js';
import { readSnapshotTable } from './snapshot-table.js';
import type { Progress } from './commit.js';

export interface CheckResult {
  corruptions: number;
  leaks: number;
  /** Problems that stopped part of the check. */
  checkErrors: number;
  /** Guest clusters of the active state that are allocated, compressed, or not host-contiguous. */
  allocatedClusters: number;
  compressedClusters: number;
  fragmentedClusters: number;
  /** Guest clusters of the virtual disk. */
  totalClusters: number;
  /** End of the last cluster in use. */
  imageEndOffset: number;
  /** One line per problem (at most MAX_MESSAGES; `corruptions`/`leaks` count them all). */
  messages: string[];
}

const MAX_MESSAGES = 200;
const CHUNK_BITS = 16;
const CHUNK = 1 << CHUNK_BITS;
/** At most this many L2 entries are visited (a hostile image can point every L1 entry at one table). */
const ENTRY_BUDGET = 2 ** 28;

/** Checks the qcow2 image at `path` (opened read-only). */
export function checkQcow2(path: string, progress?: Progress): CheckResult {
  const file = HostFile.open(path, true);
  try {
    return new Checker(file, readHeader(file), progress).run();
  } finally {
    file.close();
  }
}

class Checker {
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly compressed: CompressedGeometry;
  private readonly computed = new Map<number, Uint32Array>();
  private readonly rt: DataView;
  private readonly rtEntries: number;
  private readonly perBlock: number;
  private readonly blockCache = new Map<number, DataView>();
  private readonly l2Buf: Uint8Array;
  private readonly l2View: DataView;
  private budget = ENTRY_BUDGET;
  private highest = -1;
  private lastHost = -1;
  private progressDone = 0;
  private progressTotal = 0;
  readonly r: CheckResult;

  constructor(private readonly file: HostFile, private readonly h: Qcow2Header, private readonly progress?: Progress) {
    this.cs = 2 ** h.clusterBits;
    this.l2Entries = this.cs / 8;
    this.compressed = compressedGeometry(h.clusterBits);
    this.perBlock = 2 ** (h.clusterBits + 3 - h.refcountOrder);
    const rt = new Uint8Array(h.refcountTableClusters * this.cs);
    file.read(h.refcountTableOffset, rt);
    this.rt = new DataView(rt.buffer);
    this.rtEntries = rt.length / 8;
    this.l2Buf = new Uint8Array(this.cs);
    this.l2View = new DataView(this.l2Buf.buffer);
    this.r = {
      corruptions: 0, leaks: 0, checkErrors: 0, allocatedClusters: 0, compressedClusters: 0, fragmentedClusters: 0,
      totalClusters: Math.ceil(h.size / this.cs), imageEndOffset: 0, messages: [],
    };
  }

  run(): CheckResult {
    const h = this.h;
    const cs = this.cs;
    this.incRange(0, cs, 'header');
    let snapshots: ReturnType<typeof readSnapshotTable> | null = null;
    try {
      snapshots = h.nbSnapshots > 0 ? readSnapshotTable(this.file, h) : null;
    } catch (err) {
      this.error(`ERROR snapshot table: ${(err as Error).message}`);
    }
    this.progressTotal = h.l1Size + (snapshots?.entries.reduce((n, e) => n + e.l1Size, 0) ?? 0);
    try {
      this.incRange(h.l1TableOffset, h.l1Size * 8, 'L1 table');
      this.walkL1(h.l1TableOffset, h.l1Size, true);
      if (snapshots) {
        this.incRange(h.snapshotsOffset, snapshots.length, 'snapshot table');
        for (const sn of snapshots.entries) {
          this.incRange(sn.l1Offset, sn.l1Size * 8, `L1 table of snapshot ${sn.id}`);
          this.walkL1(sn.l1Offset, sn.l1Size, false);
        }
      }
      this.countBitmaps();
    } catch (err) {
      if (!(err instanceof BudgetExceeded)) throw err;
      this.r.checkErrors++;
      this.note('The check stopped: too many L2 entries to visit');
    }
    this.incRange(h.refcountTableOffset, h.refcountTableClusters * cs, 'refcount table');
    for (let i = 0; i < this.rtEntries; i++) {
      const off = this.rtOffset(i);
      if (off === 0) continue;
      if (off % cs !== 0) this.error(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
      else if (off >= this.file.length) this.error(`ERROR refcount block ${i} is outside image`);
      else this.inc(off / cs);
    }
    this.compare();
    this.r.imageEndOffset = (this.highest + 1) * cs;
    this.progress?.(this.progressTotal, this.progressTotal);
    return this.r;
  }

  private walkL1(l1Offset: number, l1Size: number, active: boolean): void {
    const l1 = new Uint8Array(l1Size * 8);
    this.file.read(l1Offset, l1);
    const view = new DataView(l1.buffer);
    for (let i = 0; i < l1Size; i++, this.progressDone++) {
      if ((this.progressDone & 63) === 0) this.progress?.(this.progressDone, this.progressTotal);
      const hi = view.getUint32(i * 8);
      const lo = view.getUint32(i * 8 + 4);
      const off = entryOffset(hi, lo);
      if (off === 0) continue;
      if ((hi & L1_RESERVED_HI) !== 0 || (lo & L1_RESERVED_LO) !== 0) this.error(`ERROR L1 entry ${i} has reserved bits set`);
      if (off % this.cs !== 0) { this.error(`ERROR l2_offset=${hex(off)}: Table is not cluster aligned; L1 entry corrupted`); continue; }
      if (off + this.cs > this.file.length) { this.error(`ERROR l2_offset=${hex(off)}: L2 table is outside the image`); continue; }
      this.inc(off / this.cs);
      if (active) this.checkCopied(`L2 cluster: l1_index=${i} l1_entry=${hex(off)}`, hi, off);
      this.walkL2(off, active);
    }
  }

  private walkL2(l2Offset: number, active: boolean): void {
    this.budget -= this.l2Entries;
    if (this.budget < 0) throw new BudgetExceeded();
    const cs = this.cs;
    this.file.read(l2Offset, this.l2Buf);
    const view = this.l2View;
    for (let j = 0; j < this.l2Entries; j++) {
      const hi = view.getUint32(j * 8);
      const lo = view.getUint32(j * 8 + 4);
      const where = `l2_offset=${hex(l2Offset)} index ${j}`;
      switch (clusterKind(hi, lo)) {
        case ClusterKind.Compressed: {
          if (hi & COPIED_HI) this.error(`ERROR: coffset=${hex(compressedOffset(this.compressed, hi, lo))}: copied flag must never be set for compressed clusters`);
          const off = compressedOffset(this.compressed, hi, lo);
          const len = compressedLength(this.compressed, hi, lo);
          if (off + len > this.file.length + 511) this.error(`ERROR compressed cluster at ${hex(off)} (${where}) is outside the image`);
          else this.incRange(off, len, 'compressed cluster');
          // Compressed clusters count as fragmented (qemu-img's statistics do the same).
          if (active) { this.r.allocatedClusters++; this.r.compressedClusters++; this.r.fragmentedClusters++; }
          break;
        }
        case ClusterKind.Normal:
        case ClusterKind.ZeroAlloc: {
          const off = entryOffset(hi, lo);
          if ((lo & L2_RESERVED_LO) !== 0 || (hi & L2_RESERVED_HI) !== 0) this.error(`ERROR ${where}: reserved bits set in L2 entry`);
          if (off % cs !== 0) { this.error(`ERROR offset=${hex(off)}: Cluster is not properly aligned; L2 entry corrupted`); break; }
          if (off >= this.file.length) { this.error(`ERROR offset=${hex(off)}: Cluster is beyond the end of the image`); break; }
          this.inc(off / cs);
          if (active) {
            this.checkCopied(`data cluster: l2_entry=${hex((hi & OFFSET_HI_MASK) * 0x100000000 + (lo >>> 0))}`, hi, off);
            this.r.allocatedClusters++;
            if (this.lastHost >= 0 && off !== this.lastHost + cs) this.r.fragmentedClusters++;
            this.lastHost = off;
          }
          break;
        }
        default:
          break;
      }
    }
  }

  /** Bitmap directory, bitmap tables and their data clusters are referenced too. */
  private countBitmaps(): void {
    const b = this.h.bitmaps;
    if (!b || b.directorySize === 0) return;
    if (b.directoryOffset + b.directorySize > this.file.length || b.directorySize > 64 << 20) {
      this.error('ERROR bitmap directory is outside the image');
      return;
    }
    this.incRange(b.directoryOffset, b.directorySize, 'bitmap directory');
    const dir = new Uint8Array(b.directorySize);
    this.file.read(b.directoryOffset, dir);
    const view = new DataView(dir.buffer);
    for (let pos = 0, n = 0; n < b.count && pos + 24 <= dir.length; n++) {
      const tableOffset = view.getUint32(pos) * 0x100000000 + view.getUint32(pos + 4);
      const tableSize = view.getUint32(pos + 8);
      const len = 24 + view.getUint32(pos + 20) + view.getUint16(pos + 18);
      pos += Math.ceil(len / 8) * 8;
      if (tableOffset + tableSize * 8 > this.file.length) { this.error(`ERROR bitmap table ${n} is outside the image`); continue; }
      this.incRange(tableOffset, tableSize * 8, 'bitmap table');
      const table = new Uint8Array(tableSize * 8);
      this.file.read(tableOffset, table);
      const tv = new DataView(table.buffer);
      for (let k = 0; k < tableSize; k++) {
        const off = entryOffset(tv.getUint32(k * 8), tv.getUint32(k * 8 + 4));
        if (off !== 0) this.incRange(off, this.cs, 'bitmap data');
      }
    }
  }

  private checkCopied(what: string, hi: number, off: number): void {
    const stored = this.stored(off / this.cs);
    if ((stored === 1) !== ((hi & COPIED_HI) !== 0)) this.error(`ERROR OFLAG_COPIED ${what} refcount=${stored}`);
  }

  /** Compares computed and stored refcounts over every block range either side knows about. */
  private compare(): void {
    const fileClusters = Math.ceil(this.file.length / this.cs);
    const ranges = new Set<number>();
    for (const chunk of this.computed.keys()) {
      const first = Math.floor((chunk * CHUNK) / this.perBlock);
      const last = Math.floor((chunk * CHUNK + CHUNK - 1) / this.perBlock);
      for (let b = first; b <= last; b++) ranges.add(b);
    }
    for (let i = 0; i < this.rtEntries; i++) if (this.rtOffset(i) !== 0 && i * this.perBlock < fileClusters) ranges.add(i);
    for (const b of [...ranges].sort((x, y) => x - y)) {
      const end = (b + 1) * this.perBlock;
      for (let c = b * this.perBlock; c < end; c++) {
        const computed = this.computedAt(c);
        const stored = c < fileClusters || computed > 0 ? this.stored(c) : 0;
        if (computed > 0 && c > this.highest) this.highest = c;
        if (stored === computed) continue;
        if (stored > computed) {
          this.r.leaks++;
          this.note(`Leaked cluster ${c} refcount=${stored} reference=${computed}`);
        } else {
          this.error(`ERROR cluster ${c} refcount=${stored} reference=${computed}`);
        }
      }
    }
  }

  private stored(c: number): number {
    const index = Math.floor(c / this.perBlock);
    if (index >= this.rtEntries) return 0;
    const off = this.rtOffset(index);
    if (off === 0 || off % this.cs !== 0 || off >= this.file.length) return 0;
    let block = this.blockCache.get(off);
    if (!block) {
      if (this.blockCache.size >= 256) this.blockCache.clear();
      const bytes = new Uint8Array(this.cs);
      this.file.read(off, bytes);
      block = new DataView(bytes.buffer);
      this.blockCache.set(off, block);
    }
    return refcountEntry(block, this.h.refcountOrder, c - index * this.perBlock);
  }

  private rtOffset(i: number): number {
    return entryOffset(this.rt.getUint32(i * 8), this.rt.getUint32(i * 8 + 4));
  }

  private computedAt(c: number): number {
    return this.computed.get(Math.floor(c / CHUNK))?.[c % CHUNK] ?? 0;
  }

  private inc(c: number): void {
    const key = Math.floor(c / CHUNK);
    let chunk = this.computed.get(key);
    if (!chunk) this.computed.set(key, chunk = new Uint32Array(CHUNK));
    chunk[c % CHUNK]!++;
  }

  /** One reference to every cluster touched by a byte range. */
  private incRange(offset: number, length: number, what: string): void {
    if (length <= 0) return;
    if (offset + length > this.file.length + this.cs) {
      this.error(`ERROR ${what} at ${hex(offset)} is outside the image`);
      return;
    }
    const last = Math.floor((offset + length - 1) / this.cs);
    for (let c = Math.floor(offset / this.cs); c <= last; c++) this.inc(c);
  }

  private error(msg: string): void {
    this.r.corruptions++;
    this.note(msg);
  }

  private note(msg: string): void {
    if (this.r.messages.length < MAX_MESSAGES) this.r.messages.push(msg);
  }
}

class BudgetExceeded extends Error {}

function hex(n: number): string {
  return n.toString(16);
}
