/**
 * The snapshot table ("== Snapshots =="): a contiguous run of variable-length entries at
 * snapshots_offset, nb_snapshots of them. Unknown extra data is kept verbatim on rewrite.
 *
 * Entry: 0 l1_table_offset (8), 8 l1_size (4), 12 id_str_size (2), 14 name_size (2),
 * 16 date_sec (4), 20 date_nsec (4), 24 vm_clock_nsec (8), 32 vm_state_size (4),
 * 36 extra_data_size (4), 40 extra data [vm_state_size_large (8), disk_size (8), ...],
 * then the id string, the name, and zero padding to a multiple of 8.
 */
import { StorageError } from '../block.js';
import type { HostFile } from '../host-file.js';
import { MAX_L1_BYTES, type Qcow2Header } from './layout.js';

export const SNAPSHOT_FIXED_SIZE = 40;
/** Extra data we write: vm_state_size_large and disk_size (version 3 requires both). */
export const SNAPSHOT_EXTRA_SIZE = 16;
/** QEMU's limits: extra data per entry, and the whole table. */
const MAX_EXTRA = 1024;
const MAX_TABLE_BYTES = 64 << 20;

export interface SnapshotEntry {
  l1Offset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  vmStateSize: number;
  /** Virtual disk size when the snapshot was taken (from extra data; else the image's size). */
  diskSize: number;
  extra: Uint8Array;
}

const TWO32 = 0x100000000;
const text = new TextDecoder();
const encoder = new TextEncoder();

/** Reads and validates the snapshot table; returns the entries and the table's length in bytes. */
export function readSnapshotTable(file: HostFile, h: Qcow2Header): { entries: SnapshotEntry[]; length: number } {
  const entries: SnapshotEntry[] = [];
  const cs = 2 ** h.clusterBits;
  const corrupt = (m: string): StorageError => new StorageError('corrupt', `${file.path}: ${m}`);
  const fixed = new Uint8Array(SNAPSHOT_FIXED_SIZE);
  const view = new DataView(fixed.buffer);
  let pos = h.snapshotsOffset;
  for (let i = 0; i < h.nbSnapshots; i++) {
    if (pos + SNAPSHOT_FIXED_SIZE > file.length) throw corrupt('Snapshot table extends past the end of the file');
    file.read(pos, fixed);
    const l1Offset = view.getUint32(0) * TWO32 + view.getUint32(4);
    const l1Size = view.getUint32(8);
    const idSize = view.getUint16(12);
    const nameSize = view.getUint16(14);
    const extraSize = view.getUint32(36);
    if (extraSize > MAX_EXTRA) throw corrupt(`Snapshot ${i} has too much extra data (${extraSize} bytes)`);
    if (l1Offset % cs !== 0 || l1Size * 8 > MAX_L1_BYTES || l1Offset + l1Size * 8 > file.length || (l1Size > 0 && l1Offset === 0)) {
      throw corrupt(`Snapshot ${i} has an invalid L1 table`);
    }
    const varLen = extraSize + idSize + nameSize;
    const rest = new Uint8Array(varLen);
    file.read(pos + SNAPSHOT_FIXED_SIZE, rest);
    const extra = rest.slice(0, extraSize);
    const extraView = new DataView(extra.buffer);
    entries.push({
      l1Offset,
      l1Size,
      id: text.decode(rest.subarray(extraSize, extraSize + idSize)),
      name: text.decode(rest.subarray(extraSize + idSize, varLen)),
      dateSec: view.getUint32(16),
      dateNsec: view.getUint32(20),
      vmClockNsec: view.getUint32(24) * TWO32 + view.getUint32(28),
      vmStateSize: extraSize >= 8 ? extraView.getUint32(0) * TWO32 + extraView.getUint32(4) : view.getUint32(32),
      diskSize: extraSize >= 16 ? extraView.getUint32(8) * TWO32 + extraView.getUint32(12) : h.size,
      extra,
    });
    pos += Math.ceil((SNAPSHOT_FIXED_SIZE + varLen) / 8) * 8;
    if (pos - h.snapshotsOffset > MAX_TABLE_BYTES) throw corrupt('Snapshot table is too large');
  }
  return { entries, length: pos - h.snapshotsOffset };
}

/** Serializes entries as a snapshot table. */
export function encodeSnapshotTable(entries: readonly SnapshotEntry[]): Uint8Array {
  const parts = entries.map(e => ({ e, id: encoder.encode(e.id), name: encoder.encode(e.name) }));
  let total = 0;
  for (const p of parts) total += Math.ceil((SNAPSHOT_FIXED_SIZE + p.e.extra.length + p.id.length + p.name.length) / 8) * 8;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const { e, id, name } of parts) {
    view.setUint32(pos, Math.floor(e.l1Offset / TWO32));
    view.setUint32(pos + 4, e.l1Offset >>> 0);
    view.setUint32(pos + 8, e.l1Size);
    view.setUint16(pos + 12, id.length);
    view.setUint16(pos + 14, name.length);
    view.setUint32(pos + 16, e.dateSec);
    view.setUint32(pos + 20, e.dateNsec);
    view.setUint32(pos + 24, Math.floor(e.vmClockNsec / TWO32));
    view.setUint32(pos + 28, e.vmClockNsec >>> 0);
    view.setUint32(pos + 32, e.vmStateSize > 0xffffffff ? 0 : e.vmStateSize);
    view.setUint32(pos + 36, e.extra.length);
    out.set(e.extra, pos + SNAPSHOT_FIXED_SIZE);
    out.set(id, pos + SNAPSHOT_FIXED_SIZE + e.extra.length);
    out.set(name, pos + SNAPSHOT_FIXED_SIZE + e.extra.length + id.length);
    pos += Math.ceil((SNAPSHOT_FIXED_SIZE + e.extra.length + id.length + name.length) / 8) * 8;
  }
  return out;
}

/** Extra data for a new snapshot: no VM state, and the disk size. */
export function newSnapshotExtra(diskSize: number): Uint8Array {
  const extra = new Uint8Array(SNAPSHOT_EXTRA_SIZE);
  const view = new DataView(extra.buffer);
  view.setUint32(8, Math.floor(diskSize / TWO32));
  view.setUint32(12, diskSize >>> 0);
  return extra;
}
