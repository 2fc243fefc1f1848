/**
 * A snapshot of a running VM that holds the guest only for its state, not its RAM: after the
 * held part (machine.ts beginSnapshot) every stored page is saved before anyone touches it — the
 * guard sits where the lazy restore's pager does (memory/residency.ts: the CPU's page walks, TLB
 * fills and slow accesses, device DMA), the TLBs are emptied so every first access after the
 * instant goes through it, and the rings devices write without asking are saved at once — while
 * the rest is written between the guest's slices. What the file holds is RAM at the instant.
 */
import { RAM_BASE } from '../cpu/layout.js';
import type { VirtMachine } from '../machine/virt.js';
import type { RamPager, Residency } from '../memory/residency.js';
import { dropDriveSnapshots, dropOldDriveSnapshots, type SnapshotDrive } from './disks.js';
import { SnapshotError } from './errors.js';
import { beginSnapshot, type SnapshotStats } from './machine.js';
import { PAGE } from './ram.js';
import type { SnapshotWriter } from './writer.js';

/** Stored pages written per turn of the event loop (1 MiB): the guest runs its slices in between. */
const CHUNK = 256;

export interface LiveSnapshotStats extends SnapshotStats {
  /** From the request to the file in place, ms (pauseMs of it with the guest held). */
  totalMs: number;
  /** Pages saved because the guest or a device touched them before the writer got there. */
  savedOnTouch: number;
}

/** Where a live snapshot stands: RAM pages in the file of those it stores (zero pages are not stored). */
export interface SnapshotProgress { pagesWritten: number; pagesToWrite: number }

/** Saves a page before its first touch after the instant. */
class SaveBeforeTouch implements RamPager {
  closed = false;
  touched = 0;

  constructor(private readonly writer: SnapshotWriter) {}

  ensure(off: number, length: number): void {
    const { slotOf } = this.writer.layout;
    for (let p = Math.floor(off / PAGE), last = Math.floor((off + length - 1) / PAGE); p <= last; p++) {
      const slot = slotOf[p]!;
      if (slot >= 0 && !this.writer.isSaved(slot)) { this.writer.save(slot, 1); this.touched++; }
    }
  }

  finish(): void { this.writer.save(0, this.writer.layout.stored); }

  close(): void { this.closed = true; }
}

/**
 * Snapshots the running `m` to `path`; `atInstant` runs while the guest is still held (a clone
 * copies its overlays there). Call it between slices; the guest runs again when it first awaits.
 */
export async function snapshotMachineLive(path: string, m: VirtMachine, spec: unknown, drives: readonly SnapshotDrive[], atInstant?: () => void, onProgress?: (p: SnapshotProgress) => void): Promise<LiveSnapshotStats> {
  const t0 = performance.now();
  const { writer, disks } = beginSnapshot(path, m, spec, drives);
  const residency: Residency = m.cpu.residency;
  const guard = new SaveBeforeTouch(writer);
  try {
    for (const t of m.virtio) for (const q of t.queues) for (const [pa, length] of q.rings()) guard.ensure(pa - RAM_BASE, length);
    atInstant?.();
    residency.pager = guard;
    for (const h of m.cpu.harts) h.mmu.flush(true);
    const pauseMs = performance.now() - t0;
    try {
      for (let next = 0; writer.remaining > 0; next += CHUNK) {
        await new Promise(r => setImmediate(r));
        if (guard.closed) throw new SnapshotError('io', `The VM ended while its snapshot ${path} was being written`);
        writer.save(next, CHUNK);
        onProgress?.({ pagesWritten: writer.layout.stored - writer.remaining, pagesToWrite: writer.layout.stored });
      }
    } finally {
      if (residency.pager === guard) residency.pager = undefined;
    }
    const written = await writer.finish();
    dropOldDriveSnapshots(path, drives, disks);
    return { ...written, pauseMs, totalMs: performance.now() - t0, savedOnTouch: guard.touched };
  } catch (err) {
    writer.abort();
    dropDriveSnapshots(drives, disks);
    throw err;
  }
}
