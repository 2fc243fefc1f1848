/**
 * The qcow2 write paths: in-place writes, allocating writes with copy-on-write of partial
 * clusters (from the backing file, a compressed cluster, or a cluster shared with a snapshot),
 * and zeroing/discard through L2 entries. The write order that keeps the image consistent at
 * every instant is described in image.ts.
 */
import {
  COPIED_HI, ClusterKind, ZERO_LO, clusterKind, compressedLength, compressedOffset, entryOffset, hiOf, loOf,
} from './layout.js';
import type { Qcow2Image } from './image.js';

export const enum ZeroMode {
  /** discard: deallocate; reads as zeroes afterwards. */
  Discard,
  /** write-zeroes with unmap allowed: same as discard. */
  Unmap,
  /** write-zeroes keeping the allocation (zero flag on an allocated cluster). */
  Keep,
}

/** Shared source of zeroes, as large as the largest cluster. Never written to. */
const ZEROES = new Uint8Array(2 << 20);

/** Entries replaced by the current operation, released once the new ones are on disk. */
let oldHi = new Uint32Array(64);
let oldLo = new Uint32Array(64);

function saveOld(n: number): void {
  if (oldHi.length < n) {
    oldHi = new Uint32Array(n);
    oldLo = new Uint32Array(n);
  }
}

/** Writes data[at, at+length) at guest `offset`, one L2 table's worth at a time. */
export function writeGuest(img: Qcow2Image, offset: number, data: Uint8Array, at: number, length: number): void {
  const span = img.l2Entries * img.clusterSize;
  for (let done = 0; done < length;) {
    const guest = offset + done;
    const l1Index = Math.floor(guest / span);
    const n = Math.min(length - done, (l1Index + 1) * span - guest);
    writeSlice(img, l1Index, guest, data, at + done, n);
    done += n;
  }
}

/** A write inside the range of one L2 table. */
function writeSlice(img: Qcow2Image, l1Index: number, guest: number, data: Uint8Array, at: number, length: number): void {
  const cs = img.clusterSize;
  const maxRun = img.refcounts!.maxRun;
  const l2Offset = ensureWritableL2(img, l1Index);
  const base = l1Index * img.l2Entries;
  for (let done = 0; done < length;) {
    const g = guest + done;
    const cluster = Math.floor(g / cs);
    const inCluster = g - cluster * cs;
    const idx = cluster - base;
    const view = img.l2.get(l2Offset).view;
    const hi = view.getUint32(idx * 8);
    const lo = view.getUint32(idx * 8 + 4);
    let n = Math.min(length - done, cs - inCluster);
    if (inPlace(hi, lo)) {
      // Extend over following clusters that are contiguous on the host.
      const host = entryOffset(hi, lo) + inCluster;
      for (let k = idx + 1; done + n < length && k < img.l2Entries; k++) {
        const h2 = view.getUint32(k * 8);
        const l2 = view.getUint32(k * 8 + 4);
        if (!inPlace(h2, l2) || entryOffset(h2, l2) !== host - inCluster + (k - idx) * cs) break;
        n += Math.min(length - done - n, cs);
      }
      img.checkDataTarget(host, n, 'data cluster');
      img.file.write(host, data, at + done, n);
    } else {
      let count = 1;
      for (let k = idx + 1; done + n < length && count < maxRun && k < img.l2Entries; k++, count++) {
        if (inPlace(view.getUint32(k * 8), view.getUint32(k * 8 + 4))) break;
        n += Math.min(length - done - n, cs);
      }
      n = allocateRun(img, l2Offset, idx, count, cluster, inCluster, data, at + done, n);
    }
    done += n;
  }
}

/** A standard cluster with refcount 1 (COPIED): overwritten where it is. */
function inPlace(hi: number, lo: number): boolean {
  return (hi & COPIED_HI) !== 0 && clusterKind(hi, lo) === ClusterKind.Normal;
}

/**
 * Gives up to `count` guest clusters (from `firstCluster`, entry `idx` of the L2 table at
 * `l2Offset`) new host clusters holding data[at, at+bytes) written at `headSkip` into the first
 * cluster; parts of the first and last cluster outside the data keep their current contents.
 * Returns the bytes of data placed (fewer when the free run found was shorter).
 */
function allocateRun(
  img: Qcow2Image, l2Offset: number, idx: number, count: number, firstCluster: number, headSkip: number,
  data: Uint8Array, at: number, bytes: number,
): number {
  const cs = img.clusterSize;
  const rc = img.refcounts!;
  const first = rc.reserveRun(count);
  if (rc.reservedLength < count) {
    count = rc.reservedLength;
    bytes = Math.min(bytes, count * cs - headSkip);
  }
  saveOld(count);
  let view = img.l2.get(l2Offset).view;
  for (let j = 0; j < count; j++) {
    oldHi[j] = view.getUint32((idx + j) * 8);
    oldLo[j] = view.getUint32((idx + j) * 8 + 4);
  }
  const host = first * cs;
  try {
    const tailBytes = (headSkip + bytes) % cs;
    if (count === 1) {
      if (bytes === cs) {
        img.file.write(host, data, at, cs);
      } else {
        img.readCluster(firstCluster, oldHi[0]!, oldLo[0]!, img.scratchA);
        img.scratchA.set(data.subarray(at, at + bytes), headSkip);
        img.file.write(host, img.scratchA);
      }
    } else {
      const parts: Uint8Array[] = [];
      let p = at;
      if (headSkip > 0) {
        img.readCluster(firstCluster, oldHi[0]!, oldLo[0]!, img.scratchA);
        img.scratchA.set(data.subarray(at, at + cs - headSkip), headSkip);
        parts.push(img.scratchA);
        p += cs - headSkip;
      }
      const midEnd = at + bytes - tailBytes;
      if (midEnd > p) parts.push(data.subarray(p, midEnd));
      if (tailBytes > 0) {
        img.readCluster(firstCluster + count - 1, oldHi[count - 1]!, oldLo[count - 1]!, img.scratchB);
        img.scratchB.set(data.subarray(midEnd, at + bytes));
        parts.push(img.scratchB);
      }
      img.file.writev(host, parts);
    }
  } catch (err) {
    rc.cancel();
    throw err;
  }
  rc.claim(first, count);
  const t = img.l2.get(l2Offset);
  view = t.view;
  for (let j = 0; j < count; j++) {
    const pos = host + j * cs;
    view.setUint32((idx + j) * 8, hiOf(pos) | COPIED_HI);
    view.setUint32((idx + j) * 8 + 4, loOf(pos));
  }
  img.l2.store(t, idx * 8, (idx + count) * 8);
  for (let j = 0; j < count; j++) releaseEntry(img, oldHi[j]!, oldLo[j]!);
  return bytes;
}

/** Drops the reference an L2 entry held (data cluster, or every cluster of compressed data). */
function releaseEntry(img: Qcow2Image, hi: number, lo: number): void {
  const rc = img.refcounts!;
  switch (clusterKind(hi, lo)) {
    case ClusterKind.Normal:
    case ClusterKind.ZeroAlloc:
      rc.update(entryOffset(hi, lo) / img.clusterSize, -1);
      return;
    case ClusterKind.Compressed:
      rc.releaseBytes(compressedOffset(img.compressed, hi, lo), compressedLength(img.compressed, hi, lo));
      return;
    default:
  }
}

/**
 * Makes the L2 table of `l1Index` private to the active L1 (refcount 1) and returns its offset:
 * allocates an empty one, or copies one shared with a snapshot.
 */
function ensureWritableL2(img: Qcow2Image, l1Index: number): number {
  const rc = img.refcounts!;
  const cs = img.clusterSize;
  const hi = img.l1View.getUint32(l1Index * 8);
  const lo = img.l1View.getUint32(l1Index * 8 + 4);
  const offset = entryOffset(hi, lo);
  if (offset !== 0 && (hi & COPIED_HI) !== 0) {
    img.l2Table(offset, l1Index); // validates it
    img.checkDataTarget(offset, cs, 'L2 table');
    return offset;
  }
  if (offset === 0) {
    const pos = rc.allocateWith(ZEROES.subarray(0, cs));
    img.l2.create(pos);
    img.setL1Entry(l1Index, hiOf(pos) | COPIED_HI, loOf(pos));
    return pos;
  }
  const shared = img.l2Table(offset, l1Index);
  if (rc.get(offset / cs) === 1) {
    img.setL1Entry(l1Index, hi | COPIED_HI, lo); // flag was stale
    return offset;
  }
  const copy = img.scratchA;
  copy.set(shared.bytes);
  const pos = rc.allocateWith(copy);
  img.l2.create(pos, copy);
  img.setL1Entry(l1Index, hiOf(pos) | COPIED_HI, loOf(pos));
  rc.update(offset / cs, -1); // the data clusters keep their counts: the copy references them instead
  return pos;
}

/** Zeroes (or discards) guest [offset, offset+length). */
export function zeroGuest(img: Qcow2Image, offset: number, length: number, mode: ZeroMode): void {
  const cs = img.clusterSize;
  // A range reaching the end of the disk covers the whole last cluster.
  const end = offset + length === img.size ? Math.ceil(img.size / cs) * cs : offset + length;
  let pos = offset;
  if (pos % cs !== 0) {
    const n = Math.min(end, Math.ceil(pos / cs) * cs) - pos;
    zeroPartial(img, pos, Math.min(n, offset + length - pos));
    pos += n;
  }
  const fullEnd = Math.floor(end / cs) * cs;
  const span = img.l2Entries * cs;
  while (pos < fullEnd) {
    const l1Index = Math.floor(pos / span);
    const sliceEnd = Math.min(fullEnd, (l1Index + 1) * span);
    zeroClusters(img, l1Index, pos / cs, (sliceEnd - pos) / cs, mode);
    pos = sliceEnd;
  }
  if (pos < offset + length) zeroPartial(img, pos, offset + length - pos);
}

/** Zeroes part of one cluster by writing zeroes, unless it already reads as zeroes. */
function zeroPartial(img: Qcow2Image, offset: number, length: number): void {
  const cluster = Math.floor(offset / img.clusterSize);
  img.lookup(cluster);
  const kind = clusterKind(img.entryHi, img.entryLo);
  if (kind === ClusterKind.ZeroPlain || kind === ClusterKind.ZeroAlloc) return;
  if (kind === ClusterKind.Unallocated && !img.backedAt(cluster * img.clusterSize)) return;
  writeGuest(img, offset, ZEROES, 0, length);
}

/** Zeroes `count` whole clusters from `first`, all under L1 entry `l1Index`, through their L2 entries. */
function zeroClusters(img: Qcow2Image, l1Index: number, first: number, count: number, mode: ZeroMode): void {
  const cs = img.clusterSize;
  if (img.version === 2 && img.backing !== null) {
    // No zero flag in version 2: hiding the backing file's data takes real zeroes.
    for (let done = 0; done < count * cs;) {
      const n = Math.min(count * cs - done, ZEROES.length);
      const start = first * cs + done;
      writeGuest(img, start, ZEROES, 0, Math.min(n, img.size - start));
      done += n;
    }
    return;
  }
  const idx = first - l1Index * img.l2Entries;
  let offset = img.l1Entry(l1Index);
  if (!anyChange(img, offset, l1Index, idx, first, count, mode)) return;
  offset = ensureWritableL2(img, l1Index);
  saveOld(count);
  const t = img.l2.get(offset);
  const view = t.view;
  for (let j = 0; j < count; j++) {
    const i = (idx + j) * 8;
    const hi = view.getUint32(i);
    const lo = view.getUint32(i + 4);
    const keep = mode === ZeroMode.Keep && img.version === 3 && (hi & COPIED_HI) !== 0
      && (clusterKind(hi, lo) === ClusterKind.Normal || clusterKind(hi, lo) === ClusterKind.ZeroAlloc);
    if (keep) {
      view.setUint32(i + 4, lo | ZERO_LO);
      oldHi[j] = oldLo[j] = 0;
    } else {
      view.setUint32(i, 0);
      view.setUint32(i + 4, img.backedAt((first + j) * cs) ? ZERO_LO : 0);
      oldHi[j] = hi;
      oldLo[j] = lo;
    }
  }
  img.l2.store(t, idx * 8, (idx + count) * 8);
  for (let j = 0; j < count; j++) releaseEntry(img, oldHi[j]!, oldLo[j]!);
}

/** Would zeroing these clusters change any L2 entry? (Avoids copying shared tables for nothing.) */
function anyChange(
  img: Qcow2Image, l2Offset: number, l1Index: number, idx: number, first: number, count: number, mode: ZeroMode,
): boolean {
  if (l2Offset === 0) {
    for (let j = 0; j < count; j++) if (img.backedAt((first + j) * img.clusterSize)) return true;
    return false;
  }
  const view = img.l2Table(l2Offset, l1Index).view;
  for (let j = 0; j < count; j++) {
    const hi = view.getUint32((idx + j) * 8);
    const lo = view.getUint32((idx + j) * 8 + 4);
    const kind = clusterKind(hi, lo);
    if (kind === ClusterKind.ZeroPlain) continue;
    if (kind === ClusterKind.ZeroAlloc && mode === ZeroMode.Keep && (hi & COPIED_HI) !== 0) continue;
    if (kind === ClusterKind.Unallocated && !img.backedAt((first + j) * img.clusterSize)) continue;
    return true;
  }
  return false;
}
