/**
 * Host cluster reference counts ("== Host cluster management =="): the refcount table (kept in
 * memory) points to refcount blocks (cached); every host cluster in use has a count >= 1.
 *
 * Allocation is reserve → (caller writes the data) → claim: a reserved run is invisible to other
 * allocations and gets its refcounts only once its contents are on disk, so a crash before the
 * claim leaves unreferenced clusters with refcount 0 (clean), and a crash after it but before the
 * L2/L1 entry is written leaves a leak, never a corruption.
 *
 * New refcount blocks describe themselves (they sit inside the range they count), and the
 * refcount table grows by writing a complete new table plus the block that counts it in a fresh
 * range past the end of the file, then switching the header with one 12-byte write.
 */
import { StorageError } from '../block.js';
import type { HostFile } from '../host-file.js';
import { H, MAX_REFCOUNT_TABLE_BYTES, OFFSET_HI_MASK, OFFSET_LO_MASK } from './layout.js';
import { TableCache, type Table } from './table-cache.js';

/** Give up looking for a hole after this many clusters and append at the end of the file instead. */
const SCAN_BUDGET = 1 << 24;

export interface RefcountGeometry {
  clusterBits: number;
  refcountOrder: number;
  tableOffset: number;
  tableClusters: number;
}

export class Refcounts {
  readonly clusterSize: number;
  /** Entries per refcount block, and its log2. */
  readonly perBlock: number;
  private readonly perBlockBits: number;
  private readonly order: number;
  readonly maxRefcount: number;
  /** The longest run handed out at once: a new block always finds room for itself beside it. */
  readonly maxRun: number;
  tableOffset: number;
  tableClusters: number;
  private tableEntries: number;
  private table: Uint8Array;
  private tableView: DataView;
  readonly blocks: TableCache;
  /** Lowest cluster index that may be free. */
  private freeHint = 1;
  private reservedStart = 0;
  private reservedEnd = 0;
  /** Host cluster ranges [start, end) that hold metadata: never handed out, whatever the refcounts say. */
  protectedRanges: Array<[number, number]> = [];

  constructor(private readonly file: HostFile, g: RefcountGeometry, cacheBytes: number) {
    this.clusterSize = 2 ** g.clusterBits;
    this.order = g.refcountOrder;
    this.perBlockBits = g.clusterBits + 3 - g.refcountOrder;
    this.perBlock = 2 ** this.perBlockBits;
    this.maxRefcount = g.refcountOrder === 6 ? Number.MAX_SAFE_INTEGER : 2 ** (2 ** g.refcountOrder) - 1;
    this.maxRun = Math.max(1, Math.min(this.perBlock >>> 1, this.clusterSize / 8));
    this.tableOffset = g.tableOffset;
    this.tableClusters = g.tableClusters;
    this.tableEntries = (g.tableClusters * this.clusterSize) / 8;
    this.table = new Uint8Array(this.tableEntries * 8);
    this.tableView = new DataView(this.table.buffer);
    file.read(g.tableOffset, this.table);
    this.blocks = new TableCache(file, this.clusterSize, Math.max(4, Math.floor(cacheBytes / this.clusterSize)));
  }

  /** Host offset of refcount block `index`, or 0 when that block is not allocated. */
  blockOffset(index: number): number {
    if (index >= this.tableEntries) return 0;
    const hi = this.tableView.getUint32(index * 8);
    const lo = this.tableView.getUint32(index * 8 + 4);
    return (hi & OFFSET_HI_MASK) * 0x100000000 + ((lo & OFFSET_LO_MASK) >>> 0);
  }

  get entries(): number { return this.tableEntries; }

  /** Refcount of host cluster `cluster` (an index, not a byte offset). */
  get(cluster: number): number {
    const index = Math.floor(cluster / this.perBlock);
    const off = this.blockOffset(index);
    if (off === 0) return 0;
    return this.entry(this.loadBlock(index, off), cluster - index * this.perBlock);
  }

  /**
   * Adds `delta` to the refcount of a cluster in use and writes it through; returns the new
   * count. (New clusters get theirs from claim(); a cluster in use with a count of 0 means the
   * image is corrupt.)
   */
  update(cluster: number, delta: number): number {
    const index = Math.floor(cluster / this.perBlock);
    const off = this.blockOffset(index);
    const t = off === 0 ? null : this.loadBlock(index, off);
    const i = cluster - index * this.perBlock;
    const old = t === null ? 0 : this.entry(t, i);
    if (old === 0) throw this.corrupt(`Cluster ${cluster} is in use but its refcount is zero`);
    const value = old + delta;
    if (value > this.maxRefcount) {
      throw new StorageError('unsupported', `${this.file.path}: Refcount of cluster ${cluster} would exceed ${this.maxRefcount}`);
    }
    this.setEntry(t!, i, value);
    this.storeEntries(t!, i, 1);
    if (value === 0 && cluster < this.freeHint) this.freeHint = cluster;
    return value;
  }

  /** Drops one reference from every cluster touched by the byte range (compressed data spans clusters). */
  releaseBytes(offset: number, length: number): void {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + length - 1) / this.clusterSize);
    for (let c = first; c <= last; c++) this.update(c, -1);
  }

  /** Adds one reference to every cluster touched by the byte range. */
  retainBytes(offset: number, length: number): void {
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + length - 1) / this.clusterSize);
    for (let c = first; c <= last; c++) this.update(c, 1);
  }

  /**
   * Reserves the first free run of up to `max` (<= maxRun) clusters and returns its first index;
   * `reservedLength` says how long it is. Taking shorter runs from the lowest hole keeps the
   * search amortized O(1): everything below the hint is known to be in use.
   */
  reserveRun(max: number): number {
    if (max > this.maxRun) throw new Error(`reserveRun(${max}) exceeds maxRun ${this.maxRun}`);
    const end = this.endCluster();
    let start = end;
    for (let c = this.freeHint, budget = SCAN_BUDGET; c < end && budget > 0; c++, budget--) {
      if (this.isFree(c)) { start = c; break; }
    }
    let length = 1;
    while (length < max && (start + length >= end || this.isFree(start + length))) length++;
    this.freeHint = start + length;
    this.reservedStart = start;
    this.reservedEnd = start + length;
    return start;
  }

  /** Length of the run the last reserveRun() returned. */
  get reservedLength(): number { return this.reservedEnd - this.reservedStart; }

  /** Reserves exactly `n` (<= maxRun) contiguous free clusters (for tables); returns the first index. */
  private reserveContiguous(n: number): number {
    const end = this.endCluster();
    let start = -1;
    let firstFree = -1;
    let found = false;
    for (let c = this.freeHint, budget = SCAN_BUDGET; c < end; c++) {
      if (--budget === 0) { start = -1; break; }
      if (this.isFree(c)) {
        if (firstFree < 0) firstFree = c;
        if (start < 0) start = c;
        if (c - start + 1 === n) { found = true; break; }
      } else {
        start = -1;
      }
    }
    // Not found: a run touching the end of the file continues past it (all free); else append.
    if (!found && start < 0) start = end;
    this.freeHint = firstFree >= 0 && firstFree < start ? firstFree : start + n;
    this.reservedStart = start;
    this.reservedEnd = start + n;
    return start;
  }

  /** Sets the refcounts of the reserved run (now written) to 1 and ends the reservation. */
  claim(first: number, n: number): void {
    for (let c = first; c < first + n;) {
      const index = Math.floor(c / this.perBlock);
      this.ensureBlock(index);
      const t = this.loadBlock(index, this.blockOffset(index));
      const i = c - index * this.perBlock;
      const count = Math.min(first + n - c, this.perBlock - i);
      for (let k = 0; k < count; k++) this.setEntry(t, i + k, 1);
      this.storeEntries(t, i, count);
      c += count;
    }
    this.reservedStart = this.reservedEnd = 0;
  }

  /** Ends a reservation whose clusters were not used. */
  cancel(): void {
    if (this.reservedStart < this.freeHint) this.freeHint = this.reservedStart;
    this.reservedStart = this.reservedEnd = 0;
  }

  /**
   * Writes `data` (a metadata table; padded to whole clusters) into newly allocated clusters and
   * claims them; returns its host offset.
   */
  allocateWith(data: Uint8Array): number {
    const cs = this.clusterSize;
    const n = Math.ceil(data.length / cs);
    if (n > this.maxRun) return this.placeFresh(data, n);
    const first = this.reserveContiguous(n);
    this.writePadded(first * cs, data, n);
    this.claim(first, n);
    return first * cs;
  }

  /**
   * Places `n` clusters of `data` too long for one run: in a fresh block range past the end of
   * the file, after the refcount blocks that count them (and themselves).
   */
  private placeFresh(data: Uint8Array, n: number): number {
    let start: number;
    let blocks: number;
    for (;;) {
      start = Math.ceil(this.endCluster() / this.perBlock) * this.perBlock;
      blocks = Math.ceil(n / (this.perBlock - 1));
      const lastIndex = start / this.perBlock + blocks - 1;
      if (lastIndex < this.tableEntries) break;
      this.growTable(lastIndex); // moves the end of the file: place again
    }
    const pos = (start + blocks) * this.clusterSize;
    this.writePadded(pos, data, n);
    this.writeCountingBlocks(start, blocks, blocks + n);
    const index = start / this.perBlock;
    for (let j = 0; j < blocks; j++) this.setTableEntry(this.tableView, index + j, (start + j) * this.clusterSize);
    this.file.write(this.tableOffset + index * 8, this.table, index * 8, blocks * 8);
    return pos;
  }

  /** Writes `blocks` refcount blocks at clusters start.., counting clusters [start, start + used) as 1. */
  private writeCountingBlocks(start: number, blocks: number, used: number): void {
    for (let j = 0; j < blocks; j++) {
      const t = this.blocks.create((start + j) * this.clusterSize);
      const count = Math.min(this.perBlock, used - j * this.perBlock);
      for (let k = 0; k < count; k++) this.setEntry(t, k, 1);
      this.blocks.storeNow(t);
    }
  }

  private writePadded(pos: number, data: Uint8Array, clusters: number): void {
    this.file.write(pos, data);
    // Metadata tables own whole clusters: make the file cover them.
    const end = pos + clusters * this.clusterSize;
    if (end > this.file.length) this.file.truncate(end);
  }

  /** First cluster index past the end of the file and any reservation: free from there on. */
  endCluster(): number {
    return Math.max(Math.ceil(this.file.length / this.clusterSize), this.reservedEnd);
  }

  private isFree(c: number): boolean {
    if (c === 0 || (c >= this.reservedStart && c < this.reservedEnd)) return false;
    for (const [s, e] of this.protectedRanges) if (c >= s && c < e) return false;
    return this.get(c) === 0;
  }

  /** Makes sure refcount block `index` exists, allocating a self-describing one if needed. */
  private ensureBlock(index: number): void {
    if (index >= this.tableEntries) this.growTable(index);
    if (this.blockOffset(index) !== 0) return;
    const first = index * this.perBlock;
    let r = first;
    if (r === 0) r = 1; // cluster 0 is the header
    if (r >= this.reservedStart && r < this.reservedEnd) r = this.reservedEnd;
    for (const [s, e] of this.protectedRanges) {
      if (r >= s && r < e) throw this.corrupt(`Metadata at cluster ${r} has no refcount block`);
    }
    if (r >= first + this.perBlock) throw new Error('no room for a refcount block in its own range');
    const t = this.blocks.create(r * this.clusterSize);
    this.setEntry(t, r - first, 1);
    this.blocks.storeNow(t);
    this.writeTableEntry(index, r * this.clusterSize);
  }

  /**
   * Replaces the refcount table with a larger one that has an entry for block `needed`. The new
   * table and the blocks counting it go to a fresh block range past everything in use; the
   * header switches to it with one 12-byte write once it is durable.
   */
  private growTable(needed: number): void {
    const cs = this.clusterSize;
    const perCluster = cs / 8;
    const start = Math.ceil(this.endCluster() / this.perBlock) * this.perBlock;
    const index = start / this.perBlock;
    let entries = Math.max(needed + 1, this.tableEntries * 2);
    let clusters: number;
    let blocks: number;
    for (;;) {
      entries = Math.ceil(entries / perCluster) * perCluster;
      clusters = entries / perCluster;
      blocks = Math.ceil(clusters / (this.perBlock - 1));
      if (index + blocks <= entries) break;
      entries = index + blocks;
    }
    if (entries * 8 > MAX_REFCOUNT_TABLE_BYTES) {
      throw new StorageError('unsupported', `${this.file.path}: Image is too large for its refcount table`);
    }
    const table = new Uint8Array(entries * 8);
    table.set(this.table);
    const view = new DataView(table.buffer);
    for (let j = 0; j < blocks; j++) this.setTableEntry(view, index + j, (start + j) * cs);
    const tablePos = (start + blocks) * cs;
    this.writeCountingBlocks(start, blocks, blocks + clusters);
    this.file.write(tablePos, table);
    this.file.sync(); // durable before the header points to it
    const header = new DataView(new ArrayBuffer(12));
    header.setUint32(0, Math.floor(tablePos / 0x100000000));
    header.setUint32(4, tablePos >>> 0);
    header.setUint32(8, clusters);
    this.file.write(H.refcountTableOffset[0], new Uint8Array(header.buffer));
    const oldStart = this.tableOffset / cs;
    const oldClusters = this.tableClusters;
    this.table = table;
    this.tableView = view;
    this.tableEntries = entries;
    this.tableOffset = tablePos;
    this.tableClusters = clusters;
    this.replaceProtected(oldStart, oldStart + oldClusters, start + blocks, start + blocks + clusters);
    for (let c = 0; c < oldClusters; c++) this.update(oldStart + c, -1);
  }

  /** Replaces one protected range (a table that moved) by another. */
  replaceProtected(oldStart: number, oldEnd: number, start: number, end: number): void {
    const r = this.protectedRanges.find(([s, e]) => s === oldStart && e === oldEnd);
    if (r) { r[0] = start; r[1] = end; } else this.protectedRanges.push([start, end]);
  }

  private writeTableEntry(index: number, offset: number): void {
    this.setTableEntry(this.tableView, index, offset);
    this.file.write(this.tableOffset + index * 8, this.table, index * 8, 8);
  }

  private setTableEntry(view: DataView, index: number, offset: number): void {
    view.setUint32(index * 8, Math.floor(offset / 0x100000000));
    view.setUint32(index * 8 + 4, offset >>> 0);
  }

  private loadBlock(index: number, off: number): Table {
    if (off % this.clusterSize !== 0 || off >= this.file.length) {
      throw this.corrupt(`Refcount block ${index} at 0x${off.toString(16)} is invalid or past the end of the file`);
    }
    return this.blocks.get(off);
  }

  private entry(t: Table, i: number): number {
    return refcountEntry(t.view, this.order, i);
  }

  private setEntry(t: Table, i: number, v: number): void {
    switch (this.order) {
      case 4: t.view.setUint16(i * 2, v); return;
      case 5: t.view.setUint32(i * 4, v); return;
      case 3: t.bytes[i] = v; return;
      case 6: t.view.setUint32(i * 8, Math.floor(v / 0x100000000)); t.view.setUint32(i * 8 + 4, v >>> 0); return;
      default: {
        const bits = 1 << this.order;
        const perByte = 8 >> this.order;
        const byte = Math.floor(i / perByte);
        const shift = (i % perByte) * bits;
        const mask = ((1 << bits) - 1) << shift;
        t.bytes[byte] = (t.bytes[byte]! & ~mask) | ((v << shift) & mask);
      }
    }
  }

  /** Writes the bytes holding entries [i, i + n) of a block. */
  private storeEntries(t: Table, i: number, n: number): void {
    const bits = 2 ** this.order;
    const start = Math.floor((i * bits) / 8);
    const end = Math.ceil(((i + n) * bits) / 8);
    this.blocks.store(t, start, end);
  }

  private corrupt(msg: string): StorageError {
    return new StorageError('corrupt', `${this.file.path}: ${msg}`);
  }
}

/** Entry `i` of a refcount block with entries of 2^order bits (bit 0 is the least significant in sub-byte widths). */
export function refcountEntry(view: DataView, order: number, i: number): number {
  switch (order) {
    case 4: return view.getUint16(i * 2);
    case 5: return view.getUint32(i * 4);
    case 3: return view.getUint8(i);
    case 6: return view.getUint32(i * 8) * 0x100000000 + view.getUint32(i * 8 + 4);
    default: {
      const bits = 1 << order;
      const perByte = 8 >> order;
      return (view.getUint8(Math.floor(i / perByte)) >>> ((i % perByte) * bits)) & ((1 << bits) - 1);
    }
  }
}
