/**
 * A qcow2 (version 2 or 3) image as a BlockDevice: the header and L1 table in memory, L2 tables
 * and refcount blocks in LRU caches, backing chain below. Reads are here; the write paths
 * (allocation, copy-on-write, zeroing) are in write.ts, whole-image operations in snapshots.ts,
 * commit.ts and check.ts.
 *
 * Crash consistency (kill -9 at any moment leaves an image `qemu-img check` calls clean, and
 * every write done before flush() returned is durable): metadata is written through, in this
 * order, so that a reader never finds a reference to something not yet on disk:
 *   1. data into clusters reserved in memory (their refcount still 0: a crash only wastes space)
 *   2. refcounts of those clusters (a crash now leaks them: reported as leaks, not corruption)
 *   3. the L2 entry (or L1 entry for a new L2 table, written with its contents in step 1)
 *   4. refcounts of what the entry used to point to, decremented last (again leak, never a
 *      cluster still in use with too low a count).
 * flush() is fdatasync of the image file: data and metadata of every completed write.
 */
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { StorageError, type BlockDevice } from '../block.js';
import { HostFile } from '../host-file.js';
import {
  COPIED_HI, ClusterKind, H, HEADER_PROBE_BYTES, Incompat, clusterKind, compressedGeometry, compressedLength,
  compressedOffset, entryOffset, hasBit, parseHeader, peekClusterBits, setBits, V2_HEADER_LENGTH, type CompressedGeometry, type Qcow2Header,
} from './layout.js';
import { Refcounts } from './refcounts.js';
import { readSnapshotTable } from './snapshot-table.js';
import { TableCache, type Table } from './table-cache.js';
import { writeGuest, zeroGuest, ZeroMode } from './write.js';

/** What the header says about the backing file; the opener resolves and opens it. */
export interface BackingRef {
  /** As stored in the image (relative names are relative to the image's directory). */
  name: string;
  format?: string;
}

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  /** Opens the backing file (read-only); required when the image has one. */
  openBacking?: (ref: BackingRef) => BlockDevice;
  /** Bytes of L2 tables to cache (and as much again for refcount blocks). Default 4 MiB. */
  cacheBytes?: number;
}

const DEFAULT_CACHE_BYTES = 4 << 20;
const KNOWN_INCOMPATIBLE = (1 << Incompat.Dirty) | (1 << Incompat.Corrupt) | (1 << Incompat.ExternalData)
  | (1 << Incompat.CompressionType) | (1 << Incompat.ExtendedL2);

export class Qcow2Image implements BlockDevice {
  size: number;
  readonly clusterBits: number;
  readonly clusterSize: number;
  /** Entries per L2 table. */
  readonly l2Entries: number;
  readonly version: 2 | 3;
  // Internal state shared with write.ts, snapshots.ts, commit.ts (not part of the public surface).
  l1: Uint8Array;
  l1View: DataView;
  l1Size: number;
  l1Offset: number;
  readonly l2: TableCache;
  /** null when read-only: refcounts are only needed to allocate. */
  readonly refcounts: Refcounts | null;
  readonly compressed: CompressedGeometry;
  /** Two cluster-sized scratch buffers for copy-on-write and table copies. */
  readonly scratchA: Uint8Array;
  readonly scratchB: Uint8Array;
  /** The L2 entry found by lookup(), as 32-bit halves (no allocation per request). */
  entryHi = 0;
  entryLo = 0;
  private decompressedKeyHi = -1;
  private decompressedKeyLo = -1;
  private decompressed: Uint8Array | null = null;

  private constructor(
    readonly file: HostFile,
    readonly header: Qcow2Header,
    readonly readOnly: boolean,
    readonly backing: BlockDevice | null,
    cacheBytes: number,
  ) {
    this.version = header.version;
    this.clusterBits = header.clusterBits;
    this.clusterSize = 2 ** header.clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.size = Math.floor(header.size / 512) * 512;
    this.l1Size = header.l1Size;
    this.l1Offset = header.l1TableOffset;
    this.l1 = new Uint8Array(this.l1Size * 8);
    this.l1View = new DataView(this.l1.buffer);
    file.read(this.l1Offset, this.l1);
    this.l2 = new TableCache(file, this.clusterSize, Math.max(4, Math.floor(cacheBytes / this.clusterSize)));
    this.compressed = compressedGeometry(this.clusterBits);
    this.scratchA = new Uint8Array(this.clusterSize);
    this.scratchB = new Uint8Array(this.clusterSize);
    this.refcounts = null;
    if (!readOnly) {
      this.refcounts = new Refcounts(file, {
        clusterBits: this.clusterBits,
        refcountOrder: header.refcountOrder,
        tableOffset: header.refcountTableOffset,
        tableClusters: header.refcountTableClusters,
      }, cacheBytes);
      if (header.nbSnapshots > 0) {
        this.snapshotTableSpan = { offset: header.snapshotsOffset, length: readSnapshotTable(file, header).length };
      }
      this.updateProtected();
      if (header.version === 3 && (header.autoclear[0] | header.autoclear[1]) !== 0) {
        // Unknown autoclear features (bitmaps) become stale once we write: clear them first (spec).
        file.write(H.autoclearFeatures[0], new Uint8Array(8));
        header.autoclear = [0, 0];
      }
    }
  }

  /** Opens a qcow2 image; the backing chain comes from `opts.openBacking`. */
  static open(path: string, opts: Qcow2OpenOptions = {}): Qcow2Image {
    const readOnly = opts.readOnly ?? false;
    const file = HostFile.open(path, readOnly);
    let backing: BlockDevice | null = null;
    try {
      const header = readHeader(file);
      checkFeatures(header, readOnly, path);
      if (header.backingFile !== undefined) {
        if (!opts.openBacking) throw new StorageError('bad-spec', `${path} has a backing file; open it with openDisk`);
        backing = opts.openBacking({ name: header.backingFile, format: header.backingFormat });
      }
      return new Qcow2Image(file, header, readOnly, backing, opts.cacheBytes ?? DEFAULT_CACHE_BYTES);
    } catch (err) {
      backing?.close();
      file.close();
      throw err;
    }
  }

  get path(): string { return this.file.path; }
  get backingFile(): string | undefined { return this.header.backingFile; }
  get backingFormat(): string | undefined { return this.header.backingFormat; }

  read(offset: number, into: Uint8Array): void {
    const length = into.length;
    this.checkRange(offset, length);
    const cs = this.clusterSize;
    // Consecutive pieces of the same kind (host-contiguous for data) are merged into one I/O.
    let runKind = -1;
    let runHost = 0;
    let runAt = 0;
    let runLen = 0;
    for (let at = 0; at < length;) {
      const guest = offset + at;
      const cluster = Math.floor(guest / cs);
      const inCluster = guest - cluster * cs;
      const n = Math.min(length - at, cs - inCluster);
      this.lookup(cluster);
      let kind: number = clusterKind(this.entryHi, this.entryLo);
      if (kind === ClusterKind.ZeroAlloc) kind = ClusterKind.ZeroPlain;
      const host = kind === ClusterKind.Normal ? entryOffset(this.entryHi, this.entryLo) + inCluster : 0;
      if (kind === runKind && kind !== ClusterKind.Compressed && (kind !== ClusterKind.Normal || host === runHost + runLen)) {
        runLen += n;
      } else {
        if (runLen > 0) this.readRun(runKind, runHost, offset + runAt, into, runAt, runLen);
        runKind = kind;
        runHost = host;
        runAt = at;
        runLen = n;
        if (kind === ClusterKind.Compressed) {
          into.set(this.decompress(this.entryHi, this.entryLo).subarray(inCluster, inCluster + n), at);
          runLen = 0;
        }
      }
      at += n;
    }
    if (runLen > 0) this.readRun(runKind, runHost, offset + runAt, into, runAt, runLen);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWritable(offset, data.length);
    writeGuest(this, offset, data, 0, data.length);
  }

  discard(offset: number, length: number): void {
    this.checkWritable(offset, length);
    zeroGuest(this, offset, length, ZeroMode.Discard);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.checkWritable(offset, length);
    zeroGuest(this, offset, length, unmap ? ZeroMode.Unmap : ZeroMode.Keep);
  }

  flush(): void {
    if (!this.readOnly) this.file.sync();
  }

  close(): void {
    try {
      if (!this.readOnly) {
        this.l2.clear();
        this.refcounts!.blocks.clear();
        this.file.sync();
      }
    } finally {
      this.file.close();
      this.backing?.close();
    }
  }

  /** Bytes the image file occupies on the host. */
  allocatedBytes(): number { return this.file.allocatedBytes(); }

  // ---- Internal: mapping -------------------------------------------------------------------

  /** Loads the L2 entry of guest cluster `cluster` into entryHi/entryLo (zero when unmapped). */
  lookup(cluster: number): void {
    const l1Index = Math.floor(cluster / this.l2Entries);
    const l2Offset = this.l1Entry(l1Index);
    if (l2Offset === 0) {
      this.entryHi = this.entryLo = 0;
      return;
    }
    const t = this.l2Table(l2Offset, l1Index);
    const i = (cluster - l1Index * this.l2Entries) * 8;
    this.entryHi = t.view.getUint32(i);
    this.entryLo = t.view.getUint32(i + 4);
  }

  /** Host offset of the L2 table for L1 index `l1Index` (0: none). */
  l1Entry(l1Index: number): number {
    return entryOffset(this.l1View.getUint32(l1Index * 8), this.l1View.getUint32(l1Index * 8 + 4));
  }

  l1Copied(l1Index: number): boolean {
    return (this.l1View.getUint32(l1Index * 8) & COPIED_HI) !== 0;
  }

  /** The cached L2 table at `offset`, checked to lie inside the file. */
  l2Table(offset: number, l1Index: number): Table {
    if (offset % this.clusterSize !== 0 || offset + this.clusterSize > this.file.length) {
      throw new StorageError('corrupt', `${this.path}: L2 table at 0x${offset.toString(16)} (L1 entry ${l1Index}) is misaligned or past the end of the file`);
    }
    return this.l2.get(offset);
  }

  /** Writes L1 entry `l1Index` (an L2 table offset with flags) to memory and disk. */
  setL1Entry(l1Index: number, hi: number, lo: number): void {
    this.l1View.setUint32(l1Index * 8, hi);
    this.l1View.setUint32(l1Index * 8 + 4, lo);
    this.file.write(this.l1Offset + l1Index * 8, this.l1, l1Index * 8, 8);
  }

  /** Fills `into[at, at+length)` with the backing file's data at guest `offset` (zeroes past its end). */
  readBacking(offset: number, into: Uint8Array, at: number, length: number): void {
    const b = this.backing;
    const avail = b === null ? 0 : Math.max(0, Math.min(length, b.size - offset));
    if (avail > 0) b!.read(offset, at === 0 && avail === into.length ? into : into.subarray(at, at + avail));
    if (avail < length) into.fill(0, at + avail, at + length);
  }

  /** Does the backing file have data at guest `offset` (so an unallocated cluster is not zero)? */
  backedAt(offset: number): boolean {
    return this.backing !== null && offset < this.backing.size;
  }

  /** The whole guest cluster `cluster` as it reads now, given its L2 entry, into `into`. */
  readCluster(cluster: number, hi: number, lo: number, into: Uint8Array): void {
    switch (clusterKind(hi, lo)) {
      case ClusterKind.Normal:
        this.file.read(entryOffset(hi, lo), into, 0, this.clusterSize);
        return;
      case ClusterKind.Compressed:
        into.set(this.decompress(hi, lo));
        return;
      case ClusterKind.Unallocated:
        this.readBacking(cluster * this.clusterSize, into, 0, this.clusterSize);
        return;
      default:
        into.fill(0);
    }
  }

  /** Inflates a compressed cluster (raw deflate, as QEMU writes it); the last one is cached. */
  decompress(hi: number, lo: number): Uint8Array {
    if (hi === this.decompressedKeyHi && lo === this.decompressedKeyLo && this.decompressed) return this.decompressed;
    if (this.header.compressionType !== 0) {
      throw new StorageError('unsupported', `${this.path}: Compression type ${this.header.compressionType} is not supported`);
    }
    const off = compressedOffset(this.compressed, hi, lo);
    const len = Math.min(compressedLength(this.compressed, hi, lo), this.file.length - off);
    if (len <= 0) throw new StorageError('corrupt', `${this.path}: Compressed cluster at 0x${off.toString(16)} is past the end of the file`);
    const src = new Uint8Array(len);
    this.file.read(off, src);
    let out: Uint8Array;
    try {
      out = inflateRawSync(src, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: this.clusterSize });
    } catch (err) {
      throw new StorageError('corrupt', `${this.path}: Compressed cluster at 0x${off.toString(16)} does not inflate`, { cause: err });
    }
    if (out.length !== this.clusterSize) {
      throw new StorageError('corrupt', `${this.path}: Compressed cluster at 0x${off.toString(16)} inflates to ${out.length} bytes`);
    }
    this.decompressedKeyHi = hi;
    this.decompressedKeyLo = lo;
    this.decompressed = out;
    return out;
  }

  /** Forgets cached mapping state after whole-image changes (snapshot switch, make-empty). */
  resetCaches(): void {
    this.l2.clear();
    this.decompressed = null;
    this.decompressedKeyHi = this.decompressedKeyLo = -1;
  }

  /** Tells the allocator which clusters hold fixed metadata (header, L1, refcount table, snapshot table). */
  updateProtected(snapshotTable?: { offset: number; length: number }): void {
    const rc = this.refcounts;
    if (rc === null) return;
    const cs = this.clusterSize;
    const span = (off: number, len: number): [number, number] => [off / cs, Math.ceil((off + Math.max(len, 1)) / cs)];
    const ranges: Array<[number, number]> = [[0, 1], span(this.l1Offset, this.l1Size * 8), span(rc.tableOffset, rc.tableClusters * cs)];
    const snap = snapshotTable ?? this.snapshotTableSpan;
    if (snap && snap.length > 0) ranges.push(span(snap.offset, snap.length));
    this.snapshotTableSpan = snap;
    rc.protectedRanges = ranges;
  }

  /** Where the snapshot table is (set by snapshots.ts when it reads or writes the table). */
  snapshotTableSpan: { offset: number; length: number } | undefined;

  /** Throws if host range [pos, pos+len) overlaps fixed metadata (a corrupt entry would clobber it). */
  checkDataTarget(pos: number, len: number, what: string): void {
    const rc = this.refcounts!;
    const cs = this.clusterSize;
    for (const [s, e] of rc.protectedRanges) {
      if (pos < e * cs && s * cs < pos + len) {
        throw new StorageError('corrupt', `${this.path}: ${what} at 0x${pos.toString(16)} overlaps image metadata`);
      }
    }
  }

  private readRun(kind: number, host: number, guest: number, into: Uint8Array, at: number, length: number): void {
    if (kind === ClusterKind.Normal) this.file.read(host, into, at, length);
    else if (kind === ClusterKind.Unallocated) this.readBacking(guest, into, at, length);
    else into.fill(0, at, at + length);
  }

  private checkRange(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new StorageError('out-of-range', `Access at ${offset}+${length} is past the end of ${this.path} (${this.size} bytes)`);
    }
  }

  private checkWritable(offset: number, length: number): void {
    if (this.readOnly) throw new StorageError('read-only', `${this.path} is open read-only`);
    this.checkRange(offset, length);
  }
}

/** Reads and validates the header of an open qcow2 file. */
export function readHeader(file: HostFile): Qcow2Header {
  const probe = new Uint8Array(HEADER_PROBE_BYTES);
  file.read(0, probe);
  if (file.length < V2_HEADER_LENGTH) throw new StorageError('corrupt', `${file.path}: Truncated qcow2 header (${file.length} bytes)`);
  const cs = 2 ** peekClusterBits(probe, file.path);
  const cluster0 = new Uint8Array(cs);
  file.read(0, cluster0);
  return parseHeader(cluster0, file.length, file.path);
}

/** Refuses features we cannot honour (spec: unknown incompatible bits must fail the open). */
function checkFeatures(h: Qcow2Header, readOnly: boolean, path: string): void {
  const [hi, lo] = h.incompatible;
  const unknown = setBits([hi, lo & ~KNOWN_INCOMPATIBLE]);
  if (unknown.length > 0) {
    const names = unknown.map(b => h.featureNames.get(`0:${b}`) ?? `bit ${b}`);
    throw new StorageError('unsupported', `${path}: Unsupported incompatible feature(s): ${names.join(', ')}`);
  }
  if (hasBit(h.incompatible, Incompat.ExternalData)) throw new StorageError('unsupported', `${path}: External data files are not supported`);
  if (hasBit(h.incompatible, Incompat.ExtendedL2)) throw new StorageError('unsupported', `${path}: Extended L2 entries (subclusters) are not supported`);
  if (h.compressionType !== 0) {
    const name = h.compressionType === 1 ? 'zstd' : `type ${h.compressionType}`;
    throw new StorageError('unsupported', `${path}: ${name} compression is not supported (zlib is)`);
  }
  if (readOnly) return;
  if (hasBit(h.incompatible, Incompat.Dirty)) {
    throw new StorageError('unsupported', `${path}: Image is dirty (lazy refcounts); repair it with qemu-img check -r all`);
  }
  if (hasBit(h.incompatible, Incompat.Corrupt)) {
    throw new StorageError('corrupt', `${path}: Image is marked corrupt; repair it with qemu-img check -r all`);
  }
}
