/**
 * Creates empty qcow2 version 3 images laid out as qemu-img does: header cluster (with the
 * backing-format and feature-name extensions, then the backing file name), refcount table,
 * refcount blocks, L1 table.
 */
import { StorageError } from '../block.js';
import { HostFile } from '../host-file.js';
import {
  Ext, FEATURE_ENTRY_SIZE, FEATURE_NAMES, H, MAX_BACKING_NAME, MAX_CLUSTER_BITS, MAX_L1_BYTES, MIN_CLUSTER_BITS,
  QCOW2_MAGIC, V3_HEADER_LENGTH,
} from './layout.js';

export interface Qcow2CreateOptions {
  /** Virtual size in bytes (rounded up to a multiple of 512). */
  size: number;
  /** log2 of the cluster size: 9 (512 B) to 21 (2 MiB); default 16 (64 KiB). */
  clusterBits?: number;
  /** Backing file name as stored: relative names are relative to the new image's directory. */
  backing?: string;
  backingFormat?: 'raw' | 'qcow2';
  /** log2 of the refcount width in bits: 0 (1 bit) to 6 (64 bits); default 4 (16 bits). */
  refcountOrder?: number;
}

const TWO32 = 0x100000000;

export function createQcow2(path: string, opts: Qcow2CreateOptions): void {
  const bits = opts.clusterBits ?? 16;
  const order = opts.refcountOrder ?? 4;
  if (!Number.isInteger(bits) || bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
    throw new StorageError('bad-spec', `Cluster size must be a power of two from 512 bytes to 2 MiB`);
  }
  if (!Number.isInteger(order) || order < 0 || order > 6) throw new StorageError('bad-spec', 'Refcount width must be 1 to 64 bits');
  if (!Number.isSafeInteger(opts.size) || opts.size <= 0) throw new StorageError('bad-spec', `Invalid image size ${opts.size}`);
  const size = Math.ceil(opts.size / 512) * 512;
  const cs = 2 ** bits;
  const l1Size = Math.ceil(size / (cs * (cs / 8)));
  if (l1Size * 8 > MAX_L1_BYTES) throw new StorageError('bad-spec', `Image size ${size} is too large for ${cs}-byte clusters`);
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const perBlock = (cs * 8) / 2 ** order;
  // Refcount blocks must count themselves, the table and the L1 table: iterate to a fixed point.
  let blocks = 1;
  let rtClusters = 1;
  for (;;) {
    const total = 1 + rtClusters + blocks + l1Clusters;
    const b = Math.ceil(total / perBlock);
    const t = Math.ceil((b * 8) / cs);
    if (b === blocks && t === rtClusters) break;
    blocks = b;
    rtClusters = t;
  }
  const total = 1 + rtClusters + blocks + l1Clusters;
  const rtOffset = cs;
  const rbOffset = rtOffset + rtClusters * cs;
  const l1Offset = rbOffset + blocks * cs;

  const header = encodeHeader(cs, bits, size, order, l1Size, l1Offset, rtOffset, rtClusters, opts);
  const rt = new Uint8Array(rtClusters * cs);
  const rtView = new DataView(rt.buffer);
  for (let i = 0; i < blocks; i++) {
    const off = rbOffset + i * cs;
    rtView.setUint32(i * 8, Math.floor(off / TWO32));
    rtView.setUint32(i * 8 + 4, off >>> 0);
  }
  const rb = new Uint8Array(blocks * cs);
  setAllOnes(rb, total, order);

  const file = HostFile.create(path);
  try {
    file.write(0, header);
    file.write(rtOffset, rt);
    file.write(rbOffset, rb);
    file.truncate(total * cs); // the L1 table: zeroes
    file.sync();
  } finally {
    file.close();
  }
}

function encodeHeader(
  cs: number, bits: number, size: number, order: number, l1Size: number, l1Offset: number,
  rtOffset: number, rtClusters: number, opts: Qcow2CreateOptions,
): Uint8Array {
  const buf = new Uint8Array(cs);
  const v = new DataView(buf.buffer);
  const u64 = (off: number, value: number): void => {
    v.setUint32(off, Math.floor(value / TWO32));
    v.setUint32(off + 4, value >>> 0);
  };
  v.setUint32(H.magic[0], QCOW2_MAGIC);
  v.setUint32(H.version[0], 3);
  v.setUint32(H.clusterBits[0], bits);
  u64(H.size[0], size);
  v.setUint32(H.l1Size[0], l1Size);
  u64(H.l1TableOffset[0], l1Offset);
  u64(H.refcountTableOffset[0], rtOffset);
  v.setUint32(H.refcountTableClusters[0], rtClusters);
  v.setUint32(H.refcountOrder[0], order);
  v.setUint32(H.headerLength[0], V3_HEADER_LENGTH);
  // Header extensions.
  let pos = V3_HEADER_LENGTH;
  const ext = (type: number, data: Uint8Array): void => {
    if (pos + 8 + data.length > cs) throw new StorageError('bad-spec', 'Header extensions do not fit in one cluster');
    v.setUint32(pos, type);
    v.setUint32(pos + 4, data.length);
    buf.set(data, pos + 8);
    pos += 8 + Math.ceil(data.length / 8) * 8;
  };
  const enc = new TextEncoder();
  if (opts.backing !== undefined && opts.backingFormat !== undefined) ext(Ext.BackingFormat, enc.encode(opts.backingFormat));
  // The feature-name table helps older readers name what they lack; skip it where it would not fit.
  const table = new Uint8Array(FEATURE_NAMES.length * FEATURE_ENTRY_SIZE);
  FEATURE_NAMES.forEach(([type, bit, name], i) => {
    table[i * FEATURE_ENTRY_SIZE] = type;
    table[i * FEATURE_ENTRY_SIZE + 1] = bit;
    table.set(enc.encode(name), i * FEATURE_ENTRY_SIZE + 2);
  });
  const name = opts.backing !== undefined ? enc.encode(opts.backing) : new Uint8Array(0);
  if (pos + 8 + table.length + 8 + name.length <= cs) ext(Ext.FeatureTable, table);
  pos += 8; // end-of-extensions marker (zeroes)
  if (opts.backing !== undefined) {
    if (name.length === 0 || name.length > MAX_BACKING_NAME) throw new StorageError('bad-spec', 'Backing file name must be 1 to 1023 bytes');
    if (pos + name.length > cs) throw new StorageError('bad-spec', 'Backing file name does not fit in the header cluster');
    buf.set(name, pos);
    u64(H.backingFileOffset[0], pos);
    v.setUint32(H.backingFileSize[0], name.length);
  }
  return buf;
}

/** Sets refcount entries [0, count) of consecutive refcount blocks to 1. */
function setAllOnes(blocks: Uint8Array, count: number, order: number): void {
  const width = 2 ** order;
  for (let i = 0; i < count; i++) {
    const bit = i * width + width - 1; // least significant bit of big-endian entry i
    if (width >= 8) blocks[Math.floor(bit / 8)] = 1;
    else blocks[Math.floor((i * width) / 8)]! |= 1 << ((i * width) % 8);
  }
}
