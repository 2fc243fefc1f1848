/**
 * `qemu-img commit`: copies every cluster an overlay has allocated (data, compressed, or zero)
 * into its backing file, then empties the overlay so it reads through to the backing again.
 */
import { StorageError, type BlockDevice } from '../block.js';
import type { Qcow2Image } from './image.js';
import { ClusterKind, clusterKind } from './layout.js';
import { adjustTree } from './tree.js';

export type Progress = (done: number, total: number) => void;

/** Bytes copied per read/write pair. */
const CHUNK = 4 << 20;

export interface CommitOptions {
  /** Leave the overlay's clusters in place (qemu-img commit -d). */
  keep?: boolean;
  progress?: Progress;
}

/**
 * Writes the overlay's own data into `base`, which must be its backing file opened writable.
 * Returns the number of bytes committed.
 */
export function commitOverlay(top: Qcow2Image, base: BlockDevice, opts: CommitOptions = {}): number {
  if (base.readOnly) throw new StorageError('read-only', 'The backing file must be open for writing');
  const cs = top.clusterSize;
  const buf = new Uint8Array(Math.max(CHUNK, cs));
  const total = top.l1Size;
  let committed = 0;
  // A run of guest clusters of one kind (data or zero), flushed when it ends or fills the buffer.
  let runStart = -1;
  let runLen = 0;
  let runZero = false;
  const flushRun = (): void => {
    if (runLen === 0) return;
    const len = Math.min(runLen, top.size - runStart);
    if (len > 0) {
      if (runStart + len > base.size) {
        throw new StorageError('unsupported', `The backing file is smaller than ${top.path}; resize it first`);
      }
      if (runZero) {
        base.writeZeroes(runStart, len, false);
      } else {
        const chunk = buf.subarray(0, len);
        top.read(runStart, chunk);
        base.write(runStart, chunk);
      }
      committed += len;
    }
    runLen = 0;
  };
  for (let i = 0; i < top.l1Size; i++) {
    opts.progress?.(i, total);
    const l2Offset = top.l1Entry(i);
    if (l2Offset === 0) continue;
    for (let j = 0; j < top.l2Entries; j++) {
      const view = top.l2Table(l2Offset, i).view;
      const kind = clusterKind(view.getUint32(j * 8), view.getUint32(j * 8 + 4));
      const guest = (i * top.l2Entries + j) * cs;
      if (kind === ClusterKind.Unallocated || guest >= top.size) { flushRun(); continue; }
      const zero = kind === ClusterKind.ZeroPlain || kind === ClusterKind.ZeroAlloc;
      if (runLen > 0 && (zero !== runZero || runStart + runLen !== guest || (!zero && runLen + cs > buf.length))) flushRun();
      if (runLen === 0) { runStart = guest; runZero = zero; }
      runLen += cs;
    }
  }
  flushRun();
  base.flush();
  opts.progress?.(total, total);
  if (!opts.keep) makeEmpty(top);
  return committed;
}

/** Drops every cluster of the active L1 so the image reads entirely from its backing file. */
export function makeEmpty(img: Qcow2Image): void {
  if (img.refcounts === null) throw new StorageError('read-only', `${img.path} is open read-only`);
  const old = img.l1.slice();
  img.l1.fill(0);
  img.file.write(img.l1Offset, img.l1);
  img.file.sync(); // nothing points to the tables any more before they are freed
  img.resetCaches();
  adjustTree(img, new DataView(old.buffer), img.l1Size, -1);
  img.flush();
}
