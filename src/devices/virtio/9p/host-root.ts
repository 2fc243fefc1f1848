/**
 * The shared host directory, and the only way the 9P server reaches host files.
 *
 * Confinement: Node has no openat(2) family, so we get its effect through /proc/self/fd. The root
 * is held open as an O_PATH descriptor; a path inside the share is reached one component at a time
 * with open(`/proc/self/fd/<dir>/<name>`, O_PATH | O_DIRECTORY | O_NOFOLLOW), each lookup relative
 * to the directory descriptor opened just before (the kernel jumps to that exact directory, not to
 * a path that could since have been swapped). Final components are used with the calls that do not
 * follow them (lstat, readlink, unlink, rmdir, rename, link, symlink, mkdir, lchown, lutimes) or
 * opened with O_NOFOLLOW. Names are single components: no '/', no NUL, never '.' or '..'. So no
 * symlink is ever followed on the host, and renames racing with us cannot lead outside the root
 * (what QEMU's 9p local backend does with openat, as far as Node allows). This needs Linux's /proc.
 *
 * Paths are built as bytes (file names are raw bytes in 9P) in two scratch buffers, so building
 * one allocates nothing but the view object.
 */
import { closeSync, constants, openSync, realpathSync } from 'node:fs';
import { GasangError } from '../../../util/errors.js';
import { Errno } from './errno.js';
import { ProtocolError } from './protocol.js';

/** open(2) flag Node does not export: a descriptor that names a file without opening it. */
export const O_PATH = 0o10000000;
/** libuv adds O_CLOEXEC to every open by itself. */
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export const NAME_MAX = 255;
export const PATH_MAX = 4096;

export type ShareErrorKind = 'not-found' | 'not-directory' | 'unsupported' | 'bad-tag';

/** The shared directory (or its mount tag) cannot be used. */
export class ShareError extends GasangError {
  constructor(readonly kind: ShareErrorKind, message: string, options?: { cause?: unknown }) {
    super(`share-${kind}`, message, options);
  }
}

/** A path inside the share: its components from the root (each a copied name). */
export type SharePath = readonly Uint8Array[];

const PROC_FD = Buffer.from('/proc/self/fd/');
const SLASH = 0x2f;
const DOT = 0x2e;

/** Checks a name from the guest: one path component that cannot leave its directory. */
export function checkName(name: Uint8Array): void {
  if (name.length === 0) throw new ProtocolError(Errno.EINVAL, 'Empty file name');
  if (name.length > NAME_MAX) throw new ProtocolError(Errno.ENAMETOOLONG, 'File name too long');
  if (name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT))) {
    throw new ProtocolError(Errno.EINVAL, 'File name . or ..');
  }
  for (let i = 0; i < name.length; i++) {
    if (name[i] === SLASH || name[i] === 0) throw new ProtocolError(Errno.EINVAL, 'File name with / or NUL');
  }
}

/** Bytes of `path` joined with '/', as the share-relative length (for the PATH_MAX check). */
export function pathLength(path: SharePath): number {
  let n = 0;
  for (const c of path) n += c.length + 1;
  return n;
}

export class HostRoot {
  /** O_PATH descriptor of the root directory. */
  readonly fd: number;
  /** The root's resolved host path. */
  readonly realPath: string;
  private readonly scratch = [Buffer.alloc(64 + PATH_MAX), Buffer.alloc(64 + PATH_MAX)];
  private closed = false;

  constructor(root: string) {
    if (process.platform !== 'linux') throw new ShareError('unsupported', 'Directory sharing needs a Linux host');
    try {
      this.realPath = realpathSync(root);
    } catch (cause) {
      throw new ShareError('not-found', `Shared directory ${root} does not exist`, { cause });
    }
    try {
      this.fd = openSync(this.realPath, O_PATH | constants.O_DIRECTORY);
    } catch (cause) {
      throw new ShareError('not-directory', `Shared path ${root} is not a directory`, { cause });
    }
    try {
      closeSync(openSync(this.self(this.fd), O_PATH));
    } catch (cause) {
      closeSync(this.fd);
      throw new ShareError('unsupported', 'Directory sharing needs /proc/self/fd', { cause });
    }
  }

  /** `/proc/self/fd/<fd>`: the file `fd` refers to, wherever it now is. */
  self(fd: number): string { return `/proc/self/fd/${fd}`; }

  /**
   * `/proc/self/fd/<dirFd>/<name>` in scratch buffer `slot` (0 or 1: two paths can be live at once).
   * `name` must have passed checkName (or come from the host's own directory listing).
   */
  at(dirFd: number, name: Uint8Array, slot: 0 | 1 = 0): Buffer {
    const b = this.scratch[slot];
    let n = PROC_FD.copy(b, 0);
    n += b.write(String(dirFd), n, 'latin1');
    b[n++] = SLASH;
    b.set(name, n);
    return b.subarray(0, n + name.length);
  }

  /**
   * Opens the directory at the first `n` components of `path` as an O_PATH descriptor, one
   * component at a time without following symlinks (a symlink component is ENOTDIR). The root's
   * own descriptor is returned for n = 0: give every result back through release().
   */
  openDir(path: SharePath, n: number = path.length): number {
    let fd = this.fd;
    for (let i = 0; i < n; i++) {
      let next: number;
      try {
        next = this.openChildDir(fd, path[i]);
      } finally {
        if (fd !== this.fd) closeSync(fd);
      }
      fd = next;
    }
    return fd;
  }

  /** Opens directory `name` inside `dirFd` (O_PATH, not following a symlink: that is ENOTDIR). */
  openChildDir(dirFd: number, name: Uint8Array): number {
    return openSync(this.at(dirFd, name), DIR_FLAGS);
  }

  release(fd: number): void {
    if (fd !== this.fd && fd >= 0) closeSync(fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
