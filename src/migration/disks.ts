/**
 * Block migration: a VM's overlay files go to the target with its RAM, for hosts that share only
 * the read-only bases (libvirt's --copy-storage-inc). The files are copied byte for byte in
 * CHANGE_CHUNK pieces: all of them in the first round, then the pieces written since (HostFile
 * tracks its own writes), the last ones after the guest is held and its disks flushed, with each
 * file's final length. The target writes into a file of its own beside the overlay it will use
 * and puts it in place only when the whole stream has arrived.
 *
 *   DISK      drive u32, piece u32, then the piece's bytes (the last piece of a file may be short)
 *   DISK_END  drive u32, the file's length (float64: exact below 2^53)
 */
import { CHANGE_CHUNK, HostFile } from '../storage/host-file.js';
import { type FrameWriter, MigrationError, Tag } from './stream.js';

export interface OutgoingDisk { drive: number; file: HostFile }

/** The source's side: tracks the files' changes from start() on and frames the pieces asked for. */
export class DiskSender {
  constructor(private readonly disks: readonly OutgoingDisk[]) {}

  get drives(): number[] { return this.disks.map(d => d.drive); }

  /** Starts tracking; returns every piece of every file (the first round). */
  start(): [number, number][] {
    const all: [number, number][] = [];
    this.disks.forEach((d, i) => {
      d.file.changes = new Set();
      for (let c = 0; c * CHANGE_CHUNK < d.file.length; c++) all.push([i, c]);
    });
    return all;
  }

  /** The pieces written since the last call. */
  changed(): [number, number][] {
    const out: [number, number][] = [];
    this.disks.forEach((d, i) => {
      for (const c of d.file.changes ?? []) out.push([i, c]);
      d.file.changes = new Set();
    });
    return out;
  }

  /** Writes the DISK frame of one piece, read from the file now; returns its bytes. */
  send(w: FrameWriter, [i, c]: [number, number]): number {
    const d = this.disks[i]!, off = c * CHANGE_CHUNK;
    const n = Math.max(0, Math.min(CHANGE_CHUNK, d.file.length - off));
    const payload = new Uint8Array(8 + n);
    const dv = new DataView(payload.buffer);
    dv.setUint32(0, d.drive, true);
    dv.setUint32(4, c, true);
    if (n) d.file.read(off, payload, 8, n);
    w.write(Tag.DISK, payload);
    return payload.length;
  }

  /** The files' final lengths (after the last pieces); tracking ends. */
  finish(w: FrameWriter): void {
    for (const d of this.disks) {
      const payload = new Uint8Array(12), dv = new DataView(payload.buffer);
      dv.setUint32(0, d.drive, true);
      dv.setFloat64(4, d.file.length, true);
      w.write(Tag.DISK_END, payload);
    }
    this.stop();
  }

  stop(): void { for (const d of this.disks) d.file.changes = undefined; }
}

/** The target's side: each announced drive written into `pathOf(drive)`, complete at its DISK_END. */
export class DiskReceiver {
  private readonly files = new Map<number, HostFile>();
  private readonly done = new Set<number>();

  constructor(private readonly expected: readonly number[], private readonly pathOf: (drive: number) => string) {}

  take(tag: Tag, payload: Uint8Array): void {
    const dv = new DataView(payload.buffer, payload.byteOffset, payload.length);
    if (payload.length < (tag === Tag.DISK ? 8 : 12)) throw new MigrationError('Corrupt stream: a short disk frame');
    const drive = dv.getUint32(0, true);
    if (!this.expected.includes(drive)) throw new MigrationError(`The source sent drive ${drive}, which this VM does not receive`);
    if (this.done.has(drive)) throw new MigrationError(`Corrupt stream: drive ${drive} after its end`);
    let f = this.files.get(drive);
    if (!f) { f = HostFile.create(this.pathOf(drive)); this.files.set(drive, f); }
    if (tag === Tag.DISK) {
      f.write(dv.getUint32(4, true) * CHANGE_CHUNK, payload, 8, payload.length - 8);
      return;
    }
    const length = dv.getFloat64(4, true);
    if (!Number.isSafeInteger(length) || length < 0) throw new MigrationError('Corrupt stream: a broken disk length');
    f.truncate(length);
    f.sync();
    f.close();
    this.done.add(drive);
  }

  /** Throws unless every expected drive arrived whole. */
  check(): void {
    const missing = this.expected.filter(d => !this.done.has(d));
    if (missing.length) throw new MigrationError(`The stream ended without drive ${missing.join(', ')}`);
  }

  /** Closes what is still open (a migration that failed; the caller removes the files). */
  abort(): void { for (const f of this.files.values()) f.close(); }
}
