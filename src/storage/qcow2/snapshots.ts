/**
 * Internal snapshots, as `qemu-img snapshot -c/-l/-a/-d` does them: a snapshot is a copy of the
 * L1 table; taking one adds a reference to every L2 table and data cluster reachable from the
 * active L1, so later writes copy shared clusters (refcount > 1, no COPIED flag) instead of
 * overwriting them.
 *
 * Refcounts count paths (L1 → L2 → data): a data cluster under an L2 table shared by two L1
 * tables counts 2, as `qemu-img check` computes them.
 *
 * Crash behaviour: references are added before anything points to the new copies and dropped
 * only after nothing does, so a crash leaves leaks; a crash in the middle of a whole-tree walk
 * can also leave COPIED flags out of step with refcounts (as in QEMU), which qemu-img check -r
 * repairs.
 */
import { StorageError } from '../block.js';
import type { Qcow2Image } from './image.js';
import { COPIED_HI, H, MAX_SNAPSHOTS } from './layout.js';
import { adjustTree, fixCopiedFlags } from './tree.js';
import { encodeSnapshotTable, newSnapshotExtra, readSnapshotTable, type SnapshotEntry } from './snapshot-table.js';

export interface SnapshotInfo {
  id: string;
  name: string;
  /** Seconds and nanoseconds since the epoch when it was taken. */
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  vmStateSize: number;
  diskSize: number;
}

export function listSnapshots(img: Qcow2Image): SnapshotInfo[] {
  return readSnapshotTable(img.file, img.header).entries.map(toInfo);
}

/** Takes snapshot `name` of the active state. */
export function createSnapshot(img: Qcow2Image, name: string): SnapshotInfo {
  const rc = writableRefcounts(img);
  if (name === '' || Buffer.byteLength(name) > 65535) throw new StorageError('bad-spec', 'Invalid snapshot name');
  const { entries } = readSnapshotTable(img.file, img.header);
  if (entries.some(e => e.name === name)) throw new StorageError('bad-spec', `${img.path}: Snapshot '${name}' already exists`);
  if (entries.length >= MAX_SNAPSHOTS) throw new StorageError('unsupported', `${img.path}: Too many snapshots`);
  img.flush();
  adjustTree(img, img.l1View, img.l1Size, 1);
  fixCopiedFlags(img);
  const l1Offset = img.l1Size > 0 ? rc.allocateWith(img.l1.slice()) : 0;
  const now = Date.now();
  const ids = entries.map(e => Number(e.id)).filter(Number.isSafeInteger);
  const entry: SnapshotEntry = {
    l1Offset,
    l1Size: img.l1Size,
    id: String(ids.length > 0 ? Math.max(...ids) + 1 : 1),
    name,
    dateSec: Math.floor(now / 1000),
    dateNsec: (now % 1000) * 1e6,
    vmClockNsec: 0,
    vmStateSize: 0,
    diskSize: img.size,
    extra: newSnapshotExtra(img.size),
  };
  writeTable(img, [...entries, entry]);
  img.flush();
  return toInfo(entry);
}

/** Reverts the active state to snapshot `nameOrId` (the snapshot stays). */
export function applySnapshot(img: Qcow2Image, nameOrId: string): void {
  const rc = writableRefcounts(img);
  const sn = find(img, readSnapshotTable(img.file, img.header).entries, nameOrId);
  const cs = img.clusterSize;
  const needed = Math.ceil(sn.diskSize / (cs * img.l2Entries));
  const l1Size = Math.max(sn.l1Size, needed);
  const l1 = new Uint8Array(l1Size * 8);
  img.file.read(sn.l1Offset, l1, 0, sn.l1Size * 8);
  const view = new DataView(l1.buffer);
  img.flush();
  adjustTree(img, view, sn.l1Size, 1);
  for (let i = 0; i < l1Size; i++) view.setUint32(i * 8, view.getUint32(i * 8) & ~COPIED_HI);
  const l1Offset = l1Size > 0 ? rc.allocateWith(l1) : 0;
  img.file.sync();
  // Header: size, crypt_method (0), l1_size, l1_table_offset in one write.
  const hdr = new DataView(new ArrayBuffer(24));
  hdr.setUint32(0, Math.floor(sn.diskSize / 0x100000000));
  hdr.setUint32(4, sn.diskSize >>> 0);
  hdr.setUint32(12, l1Size);
  hdr.setUint32(16, Math.floor(l1Offset / 0x100000000));
  hdr.setUint32(20, l1Offset >>> 0);
  img.file.write(H.size[0], new Uint8Array(hdr.buffer));
  const oldL1 = img.l1View;
  const oldSize = img.l1Size;
  const oldOffset = img.l1Offset;
  img.l1 = l1;
  img.l1View = view;
  img.l1Size = l1Size;
  img.l1Offset = l1Offset;
  img.size = Math.floor(sn.diskSize / 512) * 512;
  img.header.size = sn.diskSize;
  img.header.l1Size = l1Size;
  img.header.l1TableOffset = l1Offset;
  img.resetCaches();
  img.updateProtected();
  adjustTree(img, oldL1, oldSize, -1);
  if (oldSize > 0) rc.releaseBytes(oldOffset, oldSize * 8);
  fixCopiedFlags(img);
  img.flush();
}

/** Deletes snapshot `nameOrId` and frees what only it used. */
export function deleteSnapshot(img: Qcow2Image, nameOrId: string): void {
  const rc = writableRefcounts(img);
  const { entries } = readSnapshotTable(img.file, img.header);
  const sn = find(img, entries, nameOrId);
  img.flush();
  writeTable(img, entries.filter(e => e !== sn));
  const l1 = new Uint8Array(sn.l1Size * 8);
  img.file.read(sn.l1Offset, l1);
  adjustTree(img, new DataView(l1.buffer), sn.l1Size, -1);
  if (sn.l1Size > 0) rc.releaseBytes(sn.l1Offset, sn.l1Size * 8);
  fixCopiedFlags(img);
  img.flush();
}

/** Writes a new snapshot table, switches the header to it, frees the old one. */
function writeTable(img: Qcow2Image, entries: SnapshotEntry[]): void {
  const rc = img.refcounts!;
  const oldOffset = img.header.snapshotsOffset;
  const oldLength = img.header.nbSnapshots > 0 ? readSnapshotTable(img.file, img.header).length : 0;
  const table = encodeSnapshotTable(entries);
  const offset = entries.length > 0 ? rc.allocateWith(table) : 0;
  img.file.sync();
  const hdr = new DataView(new ArrayBuffer(12));
  hdr.setUint32(0, entries.length);
  hdr.setUint32(4, Math.floor(offset / 0x100000000));
  hdr.setUint32(8, offset >>> 0);
  img.file.write(H.nbSnapshots[0], new Uint8Array(hdr.buffer));
  img.header.nbSnapshots = entries.length;
  img.header.snapshotsOffset = offset;
  img.updateProtected({ offset, length: table.length });
  if (oldLength > 0) rc.releaseBytes(oldOffset, oldLength);
}

function find(img: Qcow2Image, entries: SnapshotEntry[], nameOrId: string): SnapshotEntry {
  const sn = entries.find(e => e.id === nameOrId) ?? entries.find(e => e.name === nameOrId);
  if (!sn) throw new StorageError('not-found', `${img.path}: No snapshot named '${nameOrId}'`);
  return sn;
}

function writableRefcounts(img: Qcow2Image): NonNullable<Qcow2Image['refcounts']> {
  if (img.refcounts === null) throw new StorageError('read-only', `${img.path} is open read-only`);
  return img.refcounts;
}

function toInfo(e: SnapshotEntry): SnapshotInfo {
  return {
    id: e.id, name: e.name, dateSec: e.dateSec, dateNsec: e.dateNsec,
    vmClockNsec: e.vmClockNsec, vmStateSize: e.vmStateSize, diskSize: e.diskSize,
  };
}
