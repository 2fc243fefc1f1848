/**
 * Disks in a snapshot: RAM must never be paired with disk contents of another instant, so every
 * writable disk gets a qcow2 internal snapshot at the same instant as RAM (the VM stopped, its
 * writes flushed), and restore reverts the disk to it before the VM opens it. Read-only disks
 * are only named. Raw images and volumes cannot hold an internal snapshot: a VM that writes to
 * one is refused (an overlay — `overlay: true` or `gasang image create -b` — makes it qcow2).
 *
 * Internal snapshots are named gasang-<snapshot file>-<time>; writing a snapshot file again
 * deletes the internal snapshots its previous version named, so disks do not grow without bound.
 */
import { basename } from 'node:path';
import { applySnapshot, createSnapshot, deleteSnapshot, listSnapshots, openQcow2, Qcow2Image, StorageError, type BlockDevice } from '../storage/index.js';
import { SnapshotError } from './errors.js';

/** A drive of the VM as the snapshot sees it. */
export interface SnapshotDrive { file: string; disk: BlockDevice; readOnly: boolean }

/** A drive as the snapshot names it: its file and, when writable, its internal snapshot. */
export interface DiskRef { file: string; snapshot?: string }

const prefixOf = (snapshotPath: string): string => `gasang-${basename(snapshotPath)}-`;

/** Checks up front that every writable drive can be snapshotted. */
export function checkDrives(drives: readonly SnapshotDrive[]): void {
  drives.forEach((d, i) => {
    if (!d.readOnly && !(d.disk instanceof Qcow2Image)) {
      throw new SnapshotError('unsupported', `Drive ${i} (${d.file}) is writable and not a qcow2 image: a snapshot needs qcow2 for its internal snapshot (use an overlay)`);
    }
  });
}

/** Takes the disks' internal snapshots (the VM stopped); returns what the snapshot file records. */
export function snapshotDrives(snapshotPath: string, drives: readonly SnapshotDrive[]): DiskRef[] {
  checkDrives(drives);
  const name = `${prefixOf(snapshotPath)}${Date.now().toString(36)}`;
  const taken: Qcow2Image[] = [];
  try {
    return drives.map(d => {
      if (d.readOnly) return { file: d.file };
      const img = d.disk as Qcow2Image;
      createSnapshot(img, name);
      taken.push(img);
      return { file: d.file, snapshot: name };
    });
  } catch (err) {
    for (const img of taken) deleteSnapshot(img, name);
    throw new SnapshotError('io', `Cannot snapshot the disks: ${(err as Error).message}`, { cause: err });
  }
}

/** After a snapshot file is in place: drops the internal snapshots its earlier versions named. */
export function dropOldDriveSnapshots(snapshotPath: string, drives: readonly SnapshotDrive[], current: readonly DiskRef[]): void {
  const prefix = prefixOf(snapshotPath);
  drives.forEach((d, i) => {
    if (d.readOnly || !(d.disk instanceof Qcow2Image)) return;
    for (const s of listSnapshots(d.disk)) {
      if (s.name.startsWith(prefix) && s.name !== current[i]?.snapshot) deleteSnapshot(d.disk, s.name);
    }
  });
}

/** When the snapshot file could not be written: its internal snapshots go. */
export function dropDriveSnapshots(drives: readonly SnapshotDrive[], refs: readonly DiskRef[]): void {
  drives.forEach((d, i) => {
    const name = refs[i]?.snapshot;
    if (name && d.disk instanceof Qcow2Image) deleteSnapshot(d.disk, name);
  });
}

/** Before the restored VM opens its disks: each writable one goes back to its internal snapshot. */
export function revertDrives(refs: readonly DiskRef[]): void {
  for (const r of refs) {
    if (!r.snapshot) continue;
    let img: Qcow2Image | undefined;
    try {
      img = openQcow2(r.file, false);
      applySnapshot(img, r.snapshot);
    } catch (err) {
      const why = err instanceof StorageError ? err.message : String(err);
      throw new SnapshotError('mismatch', `Cannot return ${r.file} to the snapshot's instant: ${why}`, { cause: err });
    } finally {
      img?.close();
    }
  }
}
