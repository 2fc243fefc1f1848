/**
 * File attributes for the 9P server: qids, Rgetattr, and the changes Tsetattr asks for — applied
 * to the file itself without following a final symlink (see host-root.ts for the confinement).
 */
import {
  chmodSync, chownSync, closeSync, constants, fstatSync, lchownSync, lstatSync, lutimesSync, openSync,
  truncateSync, utimesSync, type BigIntStats, type Stats,
} from 'node:fs';
import { Errno } from './errno.js';
import type { Fid } from './fids.js';
import { O_PATH, type HostRoot } from './host-root.js';
import { type MessageWriter, ProtocolError, QidType, SetattrValid as A, STATS_BASIC, STATS_BTIME } from './protocol.js';

const { O_NOFOLLOW, S_IFMT, S_IFDIR, S_IFLNK } = constants;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const NS = 1_000_000_000n;
/** Device indexes for qid paths fit in the top 16 bits of a 48-bit inode number. */
const MAX_DEVICES = 0xffff;

/** Permission bits the guest may set on a host file: no set-user-ID, no set-group-ID on non-directories. */
export function safeMode(mode: number, isDir: boolean): number {
  return mode & 0o7777 & ~S_ISUID & (isDir ? ~0 : ~S_ISGID);
}

/**
 * Writes qids: type from the file type; version as QEMU makes it (mtime seconds ^ size << 8, which
 * Linux compares to notice a changed file); path = inode number, with a small index of the host
 * device in bits 48..63 so files of different host file systems inside the share do not collide.
 */
export class QidWriter {
  private readonly devices = new Map<number, number>();

  constructor(rootDev: number) {
    this.devices.set(rootDev, 0);
  }

  write(w: MessageWriter, st: Stats): void {
    const hi = Math.floor(st.ino / 0x1_0000_0000);
    w.u8(qidType(st.mode));
    w.u32(qidVersion(st.mtimeMs, st.size));
    w.u64Parts(st.ino >>> 0, hi < 0x10000 ? hi | (this.deviceIndex(st.dev) << 16) : hi);
  }

  writeBig(w: MessageWriter, st: BigIntStats): void {
    const hi = Number(st.ino >> 32n);
    w.u8(qidType(Number(st.mode)));
    w.u32(qidVersion(msOf(st.mtimeNs), Number(st.size)));
    w.u64Parts(Number(st.ino & 0xffffffffn), hi < 0x10000 ? hi | (this.deviceIndex(Number(st.dev)) << 16) : hi);
  }

  private deviceIndex(dev: number): number {
    let i = this.devices.get(dev);
    if (i === undefined) {
      i = this.devices.size < MAX_DEVICES ? this.devices.size : 0;
      if (i !== 0) this.devices.set(dev, i);
    }
    return i;
  }
}

/** The Rgetattr body after `valid`'s place: every basic field, exact to the nanosecond. */
export function writeAttributes(w: MessageWriter, qids: QidWriter, st: BigIntStats): void {
  w.u64(st.birthtimeNs > 0n ? STATS_BASIC | STATS_BTIME : STATS_BASIC);
  qids.writeBig(w, st);
  w.u32(Number(st.mode));
  w.u32(Number(st.uid));
  w.u32(Number(st.gid));
  w.big(st.nlink);
  w.big(st.rdev);
  w.big(st.size);
  w.big(st.blksize);
  w.big(st.blocks);
  writeTime(w, st.atimeNs);
  writeTime(w, st.mtimeNs);
  writeTime(w, st.ctimeNs);
  writeTime(w, st.birthtimeNs);
  w.u64(0); // gen
  w.u64(0); // data_version
}

/** Exact attributes of what `fid` names, without following a final symlink. */
export function statOf(host: HostRoot, fid: Fid): BigIntStats {
  if (fid.fd >= 0) return fstatSync(fid.fd, { bigint: true });
  if (fid.path.length === 0) return fstatSync(host.fd, { bigint: true });
  const dfd = host.openDir(fid.path, fid.path.length - 1);
  try {
    return lstatSync(host.at(dfd, fid.path[fid.path.length - 1]), { bigint: true });
  } finally {
    host.release(dfd);
  }
}

/** Tsetattr's fields (times as seconds + nanoseconds; ids as sent, 0xffffffff = leave). */
export interface SetattrRequest {
  valid: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
}

/**
 * Applies a Tsetattr to what `fid` names, in QEMU's order (mode, times, owner, size). The file is
 * reached through the fid's open descriptor or an O_PATH descriptor opened without following, and
 * changed through /proc/self/fd; a symlink is changed with the l* calls on its own name.
 * Times pass through Node as float seconds: exact to about a microsecond, not to the nanosecond.
 */
export function applySetattr(host: HostRoot, fid: Fid, a: SetattrRequest): void {
  const valid = a.valid;
  let dfd = -1, objFd = -1, linkPath: Buffer | undefined, target = '';
  let st: Stats;
  try {
    if (fid.fd >= 0 || fid.path.length === 0) {
      const fd = fid.fd >= 0 ? fid.fd : host.fd;
      target = host.self(fd);
      st = fstatSync(fd);
    } else {
      dfd = host.openDir(fid.path, fid.path.length - 1);
      const p = host.at(dfd, fid.path[fid.path.length - 1]);
      st = lstatSync(p);
      if (st.isSymbolicLink()) {
        linkPath = p;
      } else {
        objFd = openSync(p, O_PATH | O_NOFOLLOW);
        target = host.self(objFd);
      }
    }
    if (valid & A.Mode) {
      if (linkPath) throw new ProtocolError(Errno.ENOTSUP, 'Symlinks have no mode');
      chmodSync(target, safeMode(a.mode, st.isDirectory()));
    }
    if (valid & (A.Atime | A.Mtime)) {
      // Without the _SET bit a time means "now"; a time not named is left as it is.
      const now = Date.now() / 1000;
      const atime = !(valid & A.Atime) ? st.atimeMs / 1000 : (valid & A.AtimeSet) ? a.atimeSec + a.atimeNsec / 1e9 : now;
      const mtime = !(valid & A.Mtime) ? st.mtimeMs / 1000 : (valid & A.MtimeSet) ? a.mtimeSec + a.mtimeNsec / 1e9 : now;
      if (linkPath) lutimesSync(linkPath, atime, mtime);
      else utimesSync(target, atime, mtime);
    }
    if (valid & (A.Uid | A.Gid)) {
      const u = valid & A.Uid ? idOf(a.uid) : -1;
      const g = valid & A.Gid ? idOf(a.gid) : -1;
      if (linkPath) lchownSync(linkPath, u, g);
      else chownSync(target, u, g);
    }
    if (valid & A.Size) {
      if (!st.isFile()) throw new ProtocolError(st.isDirectory() ? Errno.EISDIR : Errno.EINVAL, 'Only regular files have a size to set');
      truncateSync(target, a.size);
    }
  } finally {
    if (objFd >= 0) closeSync(objFd);
    host.release(dfd);
  }
}

const idOf = (v: number): number => (v === 0xffffffff ? -1 : v);

function qidType(mode: number): number {
  const type = mode & S_IFMT;
  return type === S_IFDIR ? QidType.Dir : type === S_IFLNK ? QidType.Symlink : QidType.File;
}

/** Seconds and nanoseconds of a time as the kernel keeps it (timespec: tv_nsec is never negative). */
function writeTime(w: MessageWriter, ns: bigint): void {
  const sec = ns / NS, nsec = ns % NS;
  w.big(nsec < 0n ? sec - 1n : sec);
  w.big(nsec < 0n ? nsec + NS : nsec);
}

/** Node's mtimeMs of number stats, from a bigint stat's nanoseconds (so qids agree whichever stat made them). */
function msOf(ns: bigint): number {
  const sec = ns / NS, nsec = ns % NS;
  return nsec < 0n ? Number(sec - 1n) * 1e3 + Number(nsec + NS) / 1e6 : Number(sec) * 1e3 + Number(nsec) / 1e6;
}

function qidVersion(mtimeMs: number, size: number): number {
  return (Math.trunc(mtimeMs / 1000) ^ (size * 256)) >>> 0;
}
