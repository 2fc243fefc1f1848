/**
 * The qcow2 on-disk layout (QEMU docs/interop/qcow2.txt), declared once: header fields, header
 * extensions, feature bits, L1/L2/refcount entry bits. All numbers are big-endian.
 *
 * 64-bit fields are handled as two 32-bit halves (hi, lo) on hot paths, and as Numbers otherwise:
 * every offset the format allows (bits 9-55) fits a Number exactly.
 */
import { StorageError } from '../block.js';

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/** Header fields: byte offset and size ("== Header =="). Version 2 ends at 72, version 3 at header_length. */
export const H = {
  magic: [0, 4],
  version: [4, 4],
  backingFileOffset: [8, 8],
  backingFileSize: [16, 4],
  clusterBits: [20, 4],
  size: [24, 8],
  cryptMethod: [32, 4],
  l1Size: [36, 4],
  l1TableOffset: [40, 8],
  refcountTableOffset: [48, 8],
  refcountTableClusters: [56, 4],
  nbSnapshots: [60, 4],
  snapshotsOffset: [64, 8],
  // Version 3 and later.
  incompatibleFeatures: [72, 8],
  compatibleFeatures: [80, 8],
  autoclearFeatures: [88, 8],
  refcountOrder: [96, 4],
  headerLength: [100, 4],
  /** Optional: present when header_length > 104 ("=== Additional fields ==="). */
  compressionType: [104, 1],
} as const satisfies Record<string, readonly [number, number]>;

export const V2_HEADER_LENGTH = 72;
export const V3_MIN_HEADER_LENGTH = 104;
/** What we write: through compression_type, padded to a multiple of 8 (as qemu-img does). */
export const V3_HEADER_LENGTH = 112;

export const MIN_CLUSTER_BITS = 9;
/** QEMU's implementation limit (2 MiB clusters). */
export const MAX_CLUSTER_BITS = 21;
/** QEMU's implementation limits: 32 MiB of L1 table, 8 MiB of refcount table. */
export const MAX_L1_BYTES = 32 << 20;
export const MAX_REFCOUNT_TABLE_BYTES = 8 << 20;
export const MAX_BACKING_NAME = 1023;
export const MAX_SNAPSHOTS = 65536;

/** Header extension types ("=== Header extensions ==="). */
export const enum Ext {
  End = 0x00000000,
  BackingFormat = 0xe2792aca,
  FeatureTable = 0x6803f857,
  Bitmaps = 0x23852875,
  FullDiskEncryption = 0x0537be77,
  ExternalDataFile = 0x44415441,
}
/** One feature-name-table entry: type (1), bit (1), name (46). */
export const FEATURE_ENTRY_SIZE = 48;

/** Incompatible feature bits (header byte 72). */
export const enum Incompat { Dirty = 0, Corrupt = 1, ExternalData = 2, CompressionType = 3, ExtendedL2 = 4 }
/** Compatible (byte 80) and autoclear (byte 88) bits. */
export const enum Compat { LazyRefcounts = 0 }
export const enum Autoclear { Bitmaps = 0, RawExternalData = 1 }

/** The feature names qemu-img writes into new images; we write the same table. */
export const FEATURE_NAMES: ReadonlyArray<readonly [type: 0 | 1 | 2, bit: number, name: string]> = [
  [0, Incompat.Dirty, 'dirty bit'],
  [0, Incompat.Corrupt, 'corrupt bit'],
  [0, Incompat.ExternalData, 'external data file'],
  [0, Incompat.CompressionType, 'compression type'],
  [0, Incompat.ExtendedL2, 'extended L2 entries'],
  [1, Compat.LazyRefcounts, 'lazy refcounts'],
  [2, Autoclear.Bitmaps, 'bitmaps'],
  [2, Autoclear.RawExternalData, 'raw external data'],
];

/**
 * L1, L2 and refcount-table entries ("== Cluster mapping =="), as bits of the high and low
 * 32-bit halves of the 64-bit entry.
 */
/** Bit 63: refcount is exactly one (L1 and L2 entries). */
export const COPIED_HI = 0x80000000;
/** Bit 62 of an L2 entry: compressed cluster. */
export const COMPRESSED_HI = 0x40000000;
/** Bit 0 of a standard L2 entry (version 3): the cluster reads as zeroes. */
export const ZERO_LO = 1;
/** Bits 9-55: host offset (standard L2, L1, refcount table entries). */
export const OFFSET_HI_MASK = 0x00ffffff;
export const OFFSET_LO_MASK = 0xfffffe00;
/** Reserved bits of a standard L2 entry: 1-8 and 56-61. */
export const L2_RESERVED_LO = 0x1fe;
export const L2_RESERVED_HI = 0x3f000000;
/** Reserved bits of an L1 entry: 0-8 and 56-62. */
export const L1_RESERVED_LO = 0x1ff;
export const L1_RESERVED_HI = 0x7f000000;

const TWO32 = 0x100000000;

/** Bits 9-55 of a standard entry. */
export function entryOffset(hi: number, lo: number): number {
  return (hi & OFFSET_HI_MASK) * TWO32 + ((lo & OFFSET_LO_MASK) >>> 0);
}

export function hiOf(offset: number): number { return Math.floor(offset / TWO32) >>> 0; }
export function loOf(offset: number): number { return offset >>> 0; }

/** What a guest cluster is, from its L2 entry (qemu's QCow2ClusterType). */
export const enum ClusterKind { Unallocated, ZeroPlain, ZeroAlloc, Normal, Compressed }

export function clusterKind(hi: number, lo: number): ClusterKind {
  if (hi & COMPRESSED_HI) return ClusterKind.Compressed;
  const hasOffset = (hi & OFFSET_HI_MASK) !== 0 || (lo & OFFSET_LO_MASK) !== 0;
  if (lo & ZERO_LO) return hasOffset ? ClusterKind.ZeroAlloc : ClusterKind.ZeroPlain;
  return hasOffset ? ClusterKind.Normal : ClusterKind.Unallocated;
}

/**
 * Compressed cluster descriptor ("Compressed Clusters Descriptor"): with x = 62 - (cluster_bits - 8),
 * bits 0..x-1 are the host byte offset and bits x..61 the number of additional 512-byte sectors.
 */
export interface CompressedGeometry { hiOffsetMask: number; sectorsShift: number; sectorsMask: number }

export function compressedGeometry(clusterBits: number): CompressedGeometry {
  const x = 62 - (clusterBits - 8);
  return { hiOffsetMask: 2 ** (x - 32) - 1, sectorsShift: x - 32, sectorsMask: 2 ** (clusterBits - 8) - 1 };
}

export function compressedOffset(g: CompressedGeometry, hi: number, lo: number): number {
  return (hi & g.hiOffsetMask) * TWO32 + (lo >>> 0);
}

/** Bytes from the compressed offset to the end of its last sector. */
export function compressedLength(g: CompressedGeometry, hi: number, lo: number): number {
  const sectors = ((hi >>> g.sectorsShift) & g.sectorsMask) + 1;
  return sectors * 512 - (lo & 511);
}

/** A parsed, validated header with its extensions. */
export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Feature bitmaps as [hi, lo] 32-bit halves (zero for version 2). */
  incompatible: [number, number];
  compatible: [number, number];
  autoclear: [number, number];
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile?: string;
  backingFormat?: string;
  /** Feature names from the feature-name table, keyed "type:bit". */
  featureNames: Map<string, string>;
  /** Bitmaps extension ("== Bitmaps extension =="): where the bitmap directory is. */
  bitmaps?: { count: number; directorySize: number; directoryOffset: number };
}

/** Bytes needed to parse the fixed header; the caller then reads the whole first cluster. */
export const HEADER_PROBE_BYTES = V3_MIN_HEADER_LENGTH;

function u64(view: DataView, off: number): number {
  return view.getUint32(off) * TWO32 + view.getUint32(off + 4);
}

/** Reads the cluster size from the fixed header (validated again by parseHeader). */
export function peekClusterBits(buf: Uint8Array, name: string): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < V2_HEADER_LENGTH) throw new StorageError('corrupt', `${name}: Truncated qcow2 header`);
  if (view.getUint32(H.magic[0]) !== QCOW2_MAGIC) throw new StorageError('corrupt', `${name} is not a qcow2 image`);
  const version = view.getUint32(H.version[0]);
  if (version === 1) throw new StorageError('unsupported', `${name}: Qcow version 1 images are not supported`);
  if (version !== 2 && version !== 3) throw new StorageError('unsupported', `${name}: Unsupported qcow2 version ${version}`);
  const bits = view.getUint32(H.clusterBits[0]);
  if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new StorageError('unsupported', `${name}: Unsupported cluster size (cluster_bits ${bits}; 9 to 21 are)`);
  }
  return bits;
}

/**
 * Parses and validates the header in `cluster0` (the image's first cluster) against a file of
 * `fileLength` bytes. Feature bits are reported, not judged: the caller decides what it accepts.
 */
export function parseHeader(cluster0: Uint8Array, fileLength: number, name: string): Qcow2Header {
  const clusterBits = peekClusterBits(cluster0, name);
  const clusterSize = 2 ** clusterBits;
  const view = new DataView(cluster0.buffer, cluster0.byteOffset, cluster0.byteLength);
  const corrupt = (msg: string): StorageError => new StorageError('corrupt', `${name}: ${msg}`);
  const version = view.getUint32(H.version[0]) as 2 | 3;
  const h: Qcow2Header = {
    version,
    clusterBits,
    size: u64(view, H.size[0]),
    l1Size: view.getUint32(H.l1Size[0]),
    l1TableOffset: u64(view, H.l1TableOffset[0]),
    refcountTableOffset: u64(view, H.refcountTableOffset[0]),
    refcountTableClusters: view.getUint32(H.refcountTableClusters[0]),
    nbSnapshots: view.getUint32(H.nbSnapshots[0]),
    snapshotsOffset: u64(view, H.snapshotsOffset[0]),
    incompatible: [0, 0],
    compatible: [0, 0],
    autoclear: [0, 0],
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
    featureNames: new Map(),
  };
  if (version === 3) {
    if (cluster0.length < V3_MIN_HEADER_LENGTH) throw corrupt('Truncated qcow2 header');
    h.incompatible = [view.getUint32(72), view.getUint32(76)];
    h.compatible = [view.getUint32(80), view.getUint32(84)];
    h.autoclear = [view.getUint32(88), view.getUint32(92)];
    h.refcountOrder = view.getUint32(H.refcountOrder[0]);
    h.headerLength = view.getUint32(H.headerLength[0]);
    if (h.headerLength < V3_MIN_HEADER_LENGTH || h.headerLength % 8 !== 0 || h.headerLength > clusterSize) {
      throw corrupt(`Invalid header length ${h.headerLength}`);
    }
    if (h.headerLength > H.compressionType[0]) h.compressionType = cluster0[H.compressionType[0]]!;
  }
  if (h.refcountOrder > 6) throw corrupt(`Invalid refcount order ${h.refcountOrder}`);
  const crypt = view.getUint32(H.cryptMethod[0]);
  if (crypt !== 0) throw new StorageError('unsupported', `${name}: Encrypted qcow2 images are not supported`);
  if (h.size > Number.MAX_SAFE_INTEGER) throw new StorageError('unsupported', `${name}: Virtual size is too large`);

  const align = (off: number): boolean => off % clusterSize === 0;
  // The L1 table: large enough for the virtual size, within QEMU's limit, inside the file.
  const l2Entries = clusterSize / 8;
  const needL1 = Math.ceil(h.size / (clusterSize * l2Entries));
  if (h.l1Size * 8 > MAX_L1_BYTES) throw new StorageError('unsupported', `${name}: L1 table is too large (${h.l1Size} entries)`);
  if (h.l1Size < needL1) throw corrupt(`L1 table has ${h.l1Size} entries, the virtual size needs ${needL1}`);
  if (h.l1Size > 0) {
    if (!align(h.l1TableOffset) || h.l1TableOffset === 0) throw corrupt(`L1 table offset 0x${h.l1TableOffset.toString(16)} is invalid`);
    if (h.l1TableOffset + h.l1Size * 8 > fileLength) throw corrupt('L1 table extends past the end of the file');
  }
  // The refcount table: one or more clusters, never over the header or the L1 table.
  const rtBytes = h.refcountTableClusters * clusterSize;
  if (h.refcountTableClusters === 0) throw corrupt('Refcount table is empty');
  if (rtBytes > MAX_REFCOUNT_TABLE_BYTES) throw new StorageError('unsupported', `${name}: Refcount table is too large`);
  if (!align(h.refcountTableOffset)) throw corrupt('Refcount table offset is not cluster-aligned');
  if (h.refcountTableOffset === 0) throw corrupt('Refcount table overlaps the image header');
  if (h.refcountTableOffset + rtBytes > fileLength) throw corrupt('Refcount table extends past the end of the file');
  if (h.l1Size > 0 && overlaps(h.l1TableOffset, h.l1Size * 8, h.refcountTableOffset, rtBytes)) {
    throw corrupt('Refcount table overlaps the L1 table');
  }
  if (h.nbSnapshots > MAX_SNAPSHOTS) throw corrupt(`Too many snapshots (${h.nbSnapshots})`);
  if (h.nbSnapshots > 0 && (!align(h.snapshotsOffset) || h.snapshotsOffset === 0 || h.snapshotsOffset >= fileLength)) {
    throw corrupt('Snapshot table offset is invalid');
  }

  // Backing file name: inside the first cluster.
  const backingOffset = u64(view, H.backingFileOffset[0]);
  const backingSize = view.getUint32(H.backingFileSize[0]);
  let extensionsEnd = clusterSize;
  if (backingOffset !== 0) {
    if (backingSize > MAX_BACKING_NAME) throw corrupt('Backing file name is too long');
    if (backingSize === 0) throw corrupt('Backing file name is empty');
    if (backingOffset + backingSize > Math.min(clusterSize, cluster0.length)) throw corrupt('Backing file name lies outside the first cluster');
    h.backingFile = new TextDecoder().decode(cluster0.subarray(backingOffset, backingOffset + backingSize));
    extensionsEnd = backingOffset;
  }
  parseExtensions(h, cluster0, view, Math.min(extensionsEnd, cluster0.length), name);
  return h;
}

function parseExtensions(h: Qcow2Header, buf: Uint8Array, view: DataView, end: number, name: string): void {
  const text = new TextDecoder();
  for (let off = h.headerLength; off + 8 <= end;) {
    const type = view.getUint32(off);
    const len = view.getUint32(off + 4);
    if (type === Ext.End) return;
    const data = off + 8;
    if (len > end - data) throw new StorageError('corrupt', `${name}: Header extension 0x${type.toString(16)} overflows the header cluster`);
    switch (type) {
      case Ext.BackingFormat:
        h.backingFormat = text.decode(buf.subarray(data, data + len));
        break;
      case Ext.FeatureTable:
        for (let e = data; e + FEATURE_ENTRY_SIZE <= data + len; e += FEATURE_ENTRY_SIZE) {
          const nameBytes = buf.subarray(e + 2, e + FEATURE_ENTRY_SIZE);
          const nul = nameBytes.indexOf(0);
          h.featureNames.set(`${buf[e]}:${buf[e + 1]}`, text.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul)));
        }
        break;
      case Ext.Bitmaps:
        if (len >= 24) {
          h.bitmaps = { count: view.getUint32(data), directorySize: u64(view, data + 8), directoryOffset: u64(view, data + 16) };
        }
        break;
      case Ext.FullDiskEncryption:
        throw new StorageError('unsupported', `${name}: Encrypted qcow2 images are not supported`);
      case Ext.ExternalDataFile:
        throw new StorageError('unsupported', `${name}: External data files are not supported`);
      default:
        break; // Unknown extensions may be ignored (spec).
    }
    off = data + Math.ceil(len / 8) * 8;
  }
}

export function overlaps(a: number, aLen: number, b: number, bLen: number): boolean {
  return a < b + bLen && b < a + aLen;
}

/** Tests bit `bit` (0-63) of a [hi, lo] feature bitmap. */
export function hasBit(bits: readonly [number, number], bit: number): boolean {
  return bit < 32 ? ((bits[1] >>> bit) & 1) === 1 : ((bits[0] >>> (bit - 32)) & 1) === 1;
}

/** Every set bit of a [hi, lo] bitmap. */
export function setBits(bits: readonly [number, number]): number[] {
  const out: number[] = [];
  for (let b = 0; b < 64; b++) if (hasBit(bits, b)) out.push(b);
  return out;
}
