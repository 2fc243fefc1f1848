/**
 * The fid table of one 9P session: what each guest fid names and, once opened, the host
 * descriptor behind it. Bounded both ways (fids, and fids holding host descriptors) so that a
 * guest opening without end gets ENFILE/EMFILE instead of growing host memory or using up the
 * host's descriptors.
 */
import { closeSync, type Dir, type Dirent } from 'node:fs';
import { Errno } from './errno.js';
import { ProtocolError } from './protocol.js';
import type { SharePath } from './host-root.js';

export const enum FidKind {
  /** Names a file (walk, attach); not opened. */
  Path,
  /** An opened regular file. */
  File,
  /** An opened directory (readdir). */
  Dir,
  /** The result of Txattrwalk: an empty attribute list to read. */
  Xattr,
}

export class Fid {
  kind = FidKind.Path;
  /** Host descriptor of an opened File or Dir, else -1. */
  fd = -1;
  /** Directory listing in progress (Dir only): opened lazily by the first Treaddir. */
  dir: Dir | null = null;
  /** Readdir offset of the entry the listing yields next (0 and 1 are . and ..). */
  dirCursor = 0;
  /** An entry already taken from `dir` that did not fit in the last reply. */
  dirPeek: Dirent | null = null;
  /** Host open flags of an opened File or Dir (what a restore opens it with again, less O_TRUNC). */
  openFlags = 0;

  constructor(public path: SharePath) {}
}

export const DEFAULT_MAX_FIDS = 8192;
export const DEFAULT_MAX_OPEN = 1024;

export class FidTable {
  private readonly fids = new Map<number, Fid>();
  private open = 0;

  constructor(readonly maxFids = DEFAULT_MAX_FIDS, readonly maxOpen = DEFAULT_MAX_OPEN) {}

  get size(): number { return this.fids.size; }
  get openCount(): number { return this.open; }

  get(id: number): Fid {
    const fid = this.fids.get(id);
    if (fid === undefined) throw new ProtocolError(Errno.EBADF, 'Unknown fid');
    return fid;
  }

  /** Checks that `id` can be added (free, and room in the table) before work is done for it. */
  checkFree(id: number): void {
    if (this.fids.has(id)) throw new ProtocolError(Errno.EINVAL, 'Fid already in use');
    if (this.fids.size >= this.maxFids) throw new ProtocolError(Errno.ENFILE, 'Too many fids');
  }

  add(id: number, path: SharePath, kind = FidKind.Path): Fid {
    this.checkFree(id);
    const fid = new Fid(path);
    fid.kind = kind;
    this.fids.set(id, fid);
    return fid;
  }

  /** Throws EMFILE when no more fids may hold host descriptors. */
  checkOpenRoom(): void {
    if (this.open >= this.maxOpen) throw new ProtocolError(Errno.EMFILE, 'Too many open fids');
  }

  markOpen(fid: Fid, fd: number, kind: FidKind.File | FidKind.Dir, openFlags: number): void {
    fid.fd = fd;
    fid.kind = kind;
    fid.openFlags = openFlags;
    this.open++;
  }

  clunk(id: number): void {
    const fid = this.get(id);
    this.fids.delete(id);
    this.release(fid);
  }

  /** Clunks every fid (Tversion starts a new session; device reset). */
  clear(): void {
    for (const fid of this.fids.values()) this.release(fid);
    this.fids.clear();
  }

  /** Every fid, by id. */
  entries(): IterableIterator<[number, Fid]> { return this.fids.entries(); }

  /**
   * After `from` was renamed to `to`, fids that named it or anything below it name the new place
   * (they hold paths, so they would otherwise point at nothing, or at something else).
   */
  renamed(from: SharePath, to: SharePath): void {
    for (const fid of this.fids.values()) {
      if (hasPrefix(fid.path, from)) fid.path = to.concat(fid.path.slice(from.length));
    }
  }

  private release(fid: Fid): void {
    if (fid.dir !== null) {
      try { fid.dir.closeSync(); } catch { /* already closed by the host: nothing to release */ }
      fid.dir = null;
    }
    if (fid.fd >= 0) {
      try { closeSync(fid.fd); } catch { /* EBADF cannot happen for our own descriptors; EIO is moot */ }
      fid.fd = -1;
      this.open--;
    }
  }
}

function hasPrefix(path: SharePath, prefix: SharePath): boolean {
  if (path.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    const a = path[i], b = prefix[i];
    if (a.length !== b.length) return false;
    for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return false;
  }
  return true;
}
