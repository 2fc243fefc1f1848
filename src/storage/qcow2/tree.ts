/**
 * Walks over the tree of an L1 table (its L2 tables and the clusters they reference), shared by
 * snapshots and commit.
 */
import { StorageError } from '../block.js';
import type { Qcow2Image } from './image.js';
import { COPIED_HI, ClusterKind, clusterKind, compressedLength, compressedOffset, entryOffset } from './layout.js';

/**
 * Calls `visit` once for every reference an L1 table's tree holds: each L2 table, and each
 * cluster its entries use (every cluster a compressed cluster's bytes touch).
 */
function forEachReference(img: Qcow2Image, l1: DataView, l1Size: number, visit: (cluster: number) => void): void {
  const cs = img.clusterSize;
  for (let i = 0; i < l1Size; i++) {
    const l2Offset = entryOffset(l1.getUint32(i * 8), l1.getUint32(i * 8 + 4));
    if (l2Offset === 0) continue;
    const table = img.l2Table(l2Offset, i).bytes.slice(); // the cache may recycle it meanwhile
    const view = new DataView(table.buffer);
    for (let j = 0; j < img.l2Entries; j++) {
      const hi = view.getUint32(j * 8);
      const lo = view.getUint32(j * 8 + 4);
      switch (clusterKind(hi, lo)) {
        case ClusterKind.Normal:
        case ClusterKind.ZeroAlloc:
          visit(entryOffset(hi, lo) / cs);
          break;
        case ClusterKind.Compressed: {
          const off = compressedOffset(img.compressed, hi, lo);
          const last = Math.floor((off + compressedLength(img.compressed, hi, lo) - 1) / cs);
          for (let c = Math.floor(off / cs); c <= last; c++) visit(c);
          break;
        }
        default:
      }
    }
    visit(l2Offset / cs);
  }
}

/**
 * Adds `delta` (+1 or -1) to the refcount of every L2 table reachable from an L1 table and of
 * every cluster those reference. Refcount blocks are written back once at the end.
 */
export function adjustTree(img: Qcow2Image, l1: DataView, l1Size: number, delta: 1 | -1): void {
  const rc = img.refcounts!;
  if (delta > 0) checkHeadroom(img, l1, l1Size);
  rc.blocks.setDeferred(true);
  try {
    forEachReference(img, l1, l1Size, c => rc.update(c, delta));
  } finally {
    rc.blocks.setDeferred(false);
  }
}

/**
 * With narrow refcounts (under 16 bits) one more reference can overflow: find out before
 * changing anything, so a refused snapshot leaves the image as it was.
 */
function checkHeadroom(img: Qcow2Image, l1: DataView, l1Size: number): void {
  const rc = img.refcounts!;
  if (rc.maxRefcount >= 0xffff) return;
  const added = new Map<number, number>();
  forEachReference(img, l1, l1Size, c => {
    const n = (added.get(c) ?? 0) + 1;
    added.set(c, n);
    if (rc.get(c) + n > rc.maxRefcount) {
      throw new StorageError('unsupported', `${img.path}: Refcount of cluster ${c} would exceed ${rc.maxRefcount} (refcount width too small)`);
    }
  });
}

/** Sets COPIED exactly where the refcount is 1, in the active L1 table and its L2 tables. */
export function fixCopiedFlags(img: Qcow2Image): void {
  const rc = img.refcounts!;
  const cs = img.clusterSize;
  let l1Changed = false;
  img.l2.setDeferred(true);
  try {
    for (let i = 0; i < img.l1Size; i++) {
      const hi = img.l1View.getUint32(i * 8);
      const l2Offset = entryOffset(hi, img.l1View.getUint32(i * 8 + 4));
      if (l2Offset === 0) continue;
      const copied = rc.get(l2Offset / cs) === 1;
      if (copied !== ((hi & COPIED_HI) !== 0)) {
        img.l1View.setUint32(i * 8, copied ? (hi | COPIED_HI) >>> 0 : hi & ~COPIED_HI);
        l1Changed = true;
      }
      const t = img.l2Table(l2Offset, i);
      for (let j = 0; j < img.l2Entries; j++) {
        const ehi = t.view.getUint32(j * 8);
        const kind = clusterKind(ehi, t.view.getUint32(j * 8 + 4));
        const want = (kind === ClusterKind.Normal || kind === ClusterKind.ZeroAlloc)
          && rc.get(entryOffset(ehi, t.view.getUint32(j * 8 + 4)) / cs) === 1;
        if (want !== ((ehi & COPIED_HI) !== 0)) {
          t.view.setUint32(j * 8, want ? (ehi | COPIED_HI) >>> 0 : ehi & ~COPIED_HI);
          img.l2.store(t);
        }
      }
    }
  } finally {
    img.l2.setDeferred(false);
  }
  if (l1Changed) img.file.write(img.l1Offset, img.l1);
}
