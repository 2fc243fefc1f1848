/**
 * Whole-VM snapshots of a VirtMachine: board state (machine/virt-state.ts), harts, RAM and disks
 * in one file (file.ts). Callers pass their own description of the VM (`spec`: what they need to
 * rebuild its board and reopen its disks and networks) and get it back on restore.
 */
import { HART_STATE_BYTES } from '../cpu/layout.js';
import { VirtMachine, type VirtBoardSpec, type VirtIo } from '../machine/virt.js';
import { hartBytes, restoreVirt, saveVirt, type VirtState } from '../machine/virt-state.js';
import { GasangError } from '../util/errors.js';
import { dropDriveSnapshots, dropOldDriveSnapshots, snapshotDrives, type DiskRef, type SnapshotDrive } from './disks.js';
import { SnapshotError } from './errors.js';
import { SnapshotFile } from './file.js';
import { scanPages } from './ram.js';
import { SnapshotWriter } from './writer.js';
import type { LazyRamStats } from './lazy-ram.js';

export interface SnapshotMeta {
  /** ISO time of the snapshot. */
  taken: string;
  /** Guest RAM and harts, for listings without reading the rest. */
  memoryMiB: number;
  cpus: number;
}

interface MachineSection { virt: VirtState; disks: DiskRef[] }

export interface SnapshotStats {
  bytes: number;
  ramPages: number;
  storedPages: number;
  /** How long the VM was held (disks, state, RAM written), ms. */
  pauseMs: number;
}

/**
 * The part of a snapshot that holds the guest: the disks' internal snapshots, the board's and
 * harts' state and the zero-page scan, in a writer whose RAM pages are still to save.
 * @internal (live.ts)
 */
export function beginSnapshot(path: string, m: VirtMachine, spec: unknown, drives: readonly SnapshotDrive[]): { writer: SnapshotWriter; disks: DiskRef[] } {
  m.cpu.residency.finish(); // a VM restored moments ago may still be paging its RAM in
  if (drives.length !== m.drives.length) throw new SnapshotError('mismatch', `${drives.length} drives named, the VM has ${m.drives.length}`);
  const disks = snapshotDrives(path, drives);
  try {
    const harts = new Uint8Array(HART_STATE_BYTES * m.cpu.harts.length);
    m.cpu.harts.forEach((_, i) => harts.set(hartBytes(m, i), i * HART_STATE_BYTES));
    const meta: SnapshotMeta = { taken: new Date().toISOString(), memoryMiB: m.cpu.ram.length / 1048576, cpus: m.cpu.harts.length };
    const machine: MachineSection = { virt: saveVirt(m), disks };
    const ram = m.cpu.ram;
    return { writer: SnapshotWriter.begin(path, { meta, spec, machine, harts, ram }, scanPages(ram)), disks };
  } catch (err) {
    dropDriveSnapshots(drives, disks);
    throw err;
  }
}

/**
 * Writes a snapshot of `m` to `path` (atomically). Call it between slices (from any host
 * callback while the run loop awaits): the guest does not run until this returns.
 */
export function snapshotMachine(path: string, m: VirtMachine, spec: unknown, drives: readonly SnapshotDrive[]): SnapshotStats {
  const t0 = performance.now();
  const { writer, disks } = beginSnapshot(path, m, spec, drives);
  let written;
  try {
    writer.save(0, writer.layout.stored);
    written = writer.finishSync();
  } catch (err) {
    writer.abort();
    dropDriveSnapshots(drives, disks);
    throw err;
  }
  dropOldDriveSnapshots(path, drives, disks);
  return { ...written, pauseMs: performance.now() - t0 };
}

export interface RestoreOptions {
  /** Stream the pages nobody touched yet (default true). */
  background?: boolean;
  /** Called once all of RAM is in. */
  onRamLoaded?: (stats: LazyRamStats) => void;
}

/** A snapshot file opened for restore: its caller's spec, and the disks to revert before opening them. */
export class MachineSnapshot {
  private constructor(readonly file: SnapshotFile, readonly meta: SnapshotMeta, readonly spec: unknown, readonly disks: DiskRef[], private readonly virt: VirtState) {}

  /** Opens and checks `path` (all but RAM, which restore checks as it loads). */
  static open(path: string): MachineSnapshot {
    const file = SnapshotFile.open(path);
    try {
      const meta = file.meta as SnapshotMeta;
      const mach = file.machine as MachineSection;
      if (typeof meta?.memoryMiB !== 'number' || typeof mach?.virt !== 'object' || !Array.isArray(mach?.disks)) {
        throw new SnapshotError('corrupt', `${path} is corrupt: its machine section is incomplete`);
      }
      return new MachineSnapshot(file, meta, file.spec, mach.disks, mach.virt);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Builds the board of `board`'s shape and restores the snapshot into it: the guest continues
   * where it was, at once, while its RAM is paged in (lazy-ram.ts): pages the guest touches at
   * once, the rest streamed behind it unless `background` is false (then only what is touched).
   * A snapshot file restores once: its RAM pager owns the file afterwards.
   */
  async restore(board: VirtBoardSpec, io: VirtIo, opts: RestoreOptions = {}): Promise<VirtMachine> {
    const hartCount = this.virt?.shape?.harts;
    if (board.memoryMiB !== this.meta.memoryMiB || board.cpus !== hartCount || this.file.harts.length !== HART_STATE_BYTES * board.cpus) {
      throw new SnapshotError('mismatch', `${this.file.path} is of a ${this.meta.memoryMiB} MiB VM with ${String(hartCount)} harts, not ${board.memoryMiB} MiB with ${board.cpus}`);
    }
    return VirtMachine.restore(board, io, m => {
      const ram = this.file.lazyRam(m.cpu.ram, m.cpu.residency, opts.onRamLoaded);
      const harts = Array.from({ length: board.cpus }, (_, i) => this.file.harts.subarray(i * HART_STATE_BYTES, (i + 1) * HART_STATE_BYTES));
      try {
        restoreVirt(m, this.virt, harts);
      } catch (err) {
        m.cpu.residency.close();
        if (err instanceof GasangError && !(err instanceof SnapshotError)) throw new SnapshotError('mismatch', `${this.file.path}: ${err.message}`, { cause: err });
        throw err;
      }
      if (opts.background !== false) ram.start();
    });
  }

  close(): void { this.file.close(); }
}
