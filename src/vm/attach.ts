/**
 * Turns drive, volume and share declarations into opened devices for VirtMachine: used by
 * `gasang run` (src/cli/main.ts) and by the VM thread (worker-main.ts). A failure closes whatever
 * was already opened and goes through `fail`, which turns it into the caller's error type.
 */
import { resolve } from 'node:path';
import type { VirtDrive } from '../machine/virt.js';
import type { SnapshotDrive } from '../snapshot/index.js';
import { openDisk } from '../storage/open.js';
import { openVolume, type VolumeMode } from '../storage/volume/index.js';
import { IoThrottle, type ThrottleLimits } from '../storage/throttle.js';
import type { BlockDevice } from '../storage/block.js';
import { VirtioNineP } from '../devices/virtio/9p/device.js';

/** A disk image (the shape of `gasang run --drive`). */
export interface AttachFile {
  kind: 'file';
  file: string;
  format?: 'raw' | 'qcow2';
  readOnly: boolean;
  throttle?: ThrottleLimits;
  serial?: string;
}

/** Several images as one disk (`--volume`). */
export interface AttachVolume {
  kind: 'volume';
  mode: VolumeMode;
  files: string[];
  stripeBytes?: number;
  readOnly: boolean;
  throttle?: ThrottleLimits;
  serial?: string;
}

export type AttachDrive = AttachFile | AttachVolume;

/** A host directory over virtio-9p (`--share`). */
export interface AttachShare {
  host: string;
  tag: string;
  readOnly: boolean;
}

export interface AttachContext {
  /** Maps an error from opening a 'drive' (file), 'volume' or 'share' to the error to throw. */
  fail(what: 'drive' | 'volume' | 'share', err: unknown): unknown;
  /** One-line reports (mirror volumes losing a member). */
  log(line: string): void;
}

/** Opens every disk and volume, closing those already open if one fails. */
export function openDrives(list: readonly AttachDrive[], ctx: AttachContext): VirtDrive[] {
  const opened: VirtDrive[] = [];
  try {
    for (const d of list) {
      const throttle = d.throttle ? new IoThrottle(d.throttle) : undefined;
      opened.push({ disk: d.kind === 'file' ? openFile(d, ctx) : openVolumeOf(d, ctx), throttle, serial: d.serial });
    }
    return opened;
  } catch (err) {
    for (const o of opened) o.disk.close();
    throw err;
  }
}

function openFile(d: AttachFile, ctx: AttachContext): BlockDevice {
  try {
    return openDisk({ file: d.file, format: d.format, readOnly: d.readOnly });
  } catch (err) {
    throw ctx.fail('drive', err);
  }
}

function openVolumeOf(v: AttachVolume, ctx: AttachContext): BlockDevice {
  const members: BlockDevice[] = [];
  try {
    for (const file of v.files) members.push(openDisk({ file, readOnly: v.readOnly }));
    return openVolume({ mode: v.mode, members, stripeBytes: v.stripeBytes, readOnly: v.readOnly, memberPaths: v.mode === 'mirror' ? v.files : undefined, log: ctx.log });
  } catch (err) {
    for (const m of members) m.close();
    throw ctx.fail('volume', err);
  }
}

/** A drive as a snapshot names it: a file's absolute path, a volume's as A:B:… (relative paths from `cwd`). */
export function driveFile(d: AttachDrive, cwd = process.cwd()): string {
  return d.kind === 'file' ? resolve(cwd, d.file) : d.files.map(f => resolve(cwd, f)).join(':');
}

/** Opened drives as a snapshot sees them. */
export function snapshotDrives(list: readonly AttachDrive[], opened: readonly VirtDrive[], cwd = process.cwd()): SnapshotDrive[] {
  return list.map((d, i) => ({ file: driveFile(d, cwd), disk: opened[i]!.disk, readOnly: d.readOnly }));
}

/** Opens every share, closing those already open if one fails. */
export function openShares(list: readonly AttachShare[], ctx: AttachContext): VirtioNineP[] {
  const opened: VirtioNineP[] = [];
  try {
    for (const s of list) opened.push(new VirtioNineP({ root: s.host, tag: s.tag, readOnly: s.readOnly }));
    return opened;
  } catch (err) {
    for (const s of opened) s.close();
    throw ctx.fail('share', err);
  }
}
