/**
 * A 9P2000.L file server for one shared host directory: takes a T-message, writes the R-message.
 *
 * Synchronous on purpose: the VM thread does the I/O with node:fs sync calls, as the block layer
 * does (src/storage/block.ts explains why). Every host path goes through HostRoot, which keeps it
 * inside the shared directory. The guest is hostile: every field is bounds-checked, a malformed
 * message gets Rlerror (EPROTO/EINVAL), and nothing thrown reaches the caller.
 *
 * Behaviour follows QEMU's hw/9pfs with the "none" security model (files belong to the host user
 * running gasang; the gid of Tlcreate/Tmkdir is not applied), as Linux's v9fs client expects it.
 * Differences, on purpose: '.' and '..' are refused as names (Linux never walks them: its VFS
 * resolves them), symlinks are never followed on the host (the guest follows them itself with
 * Treadlink), only regular files and directories can be opened (a FIFO or device would block or
 * touch the VM thread), Tmknod is refused, set-user-ID bits (and set-group-ID on
 * non-directories) are dropped so the guest cannot leave set-id programs on the host, and there
 * are no extended attributes.
 */
import {
  chmodSync, closeSync, constants, fchmodSync, fdatasyncSync, fstatSync, fsyncSync, linkSync, lstatSync, mkdirSync,
  opendirSync, openSync, readlinkSync, readSync, renameSync, rmdirSync, statfsSync, symlinkSync, unlinkSync,
  writeSync, type Stats,
} from 'node:fs';
import { applySetattr, QidWriter, safeMode, statOf, writeAttributes, type SetattrRequest } from './attributes.js';
import { Errno, errnoOf } from './errno.js';
import { Fid, FidKind, FidTable, DEFAULT_MAX_FIDS, DEFAULT_MAX_OPEN } from './fids.js';
import { checkName, HostRoot, NAME_MAX, pathLength, PATH_MAX, type SharePath } from './host-root.js';
import {
  AT_REMOVEDIR, DIRENT_FIXED_SIZE, HEADER_SIZE, LOCK_SUCCESS, LOCK_TYPE_UNLCK, MAX_SAFE_U64, MAX_WALK_NAMES,
  MessageReader, MessageType as T, MessageWriter, NOTAG, OpenFlags, ProtocolError, RLERROR_SIZE, SetattrValid,
  VERSION_9P2000_L,
} from './protocol.js';

export interface NinePServerOptions {
  /** Host directory to share. */
  root: string;
  /** Refuse every modifying operation with EROFS. */
  readOnly: boolean;
  /** Mount tag the guest names the share by (carried by the device, kept here for reports). */
  tag: string;
  /** Largest message, offered in Rversion (default 512 KiB, Linux's virtio transport limit). */
  msize?: number;
  maxFids?: number;
  maxOpenFiles?: number;
  /** Where unexpected exceptions (bugs, answered EIO) are reported; the first few only. */
  log?: (line: string) => void;
}

const LOGGED_INTERNAL_ERRORS = 8;

export const DEFAULT_MSIZE = 512 * 1024;
/** Smallest msize we accept (QEMU's P9_MIN_MSIZE): every fixed-size reply fits. */
export const MIN_MSIZE = 4096;

const {
  O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DSYNC, O_SYNC, O_DIRECTORY,
  O_NOFOLLOW, O_NONBLOCK, S_IFMT, S_IFREG, S_IFDIR,
} = constants;
/** Opens never follow a final symlink and never block (a FIFO swapped in is then refused). */
const OPEN_ALWAYS = O_NOFOLLOW | O_NONBLOCK;
const ACCESS = [O_RDONLY, O_WRONLY, O_RDWR];
const EMPTY = new Uint8Array(0);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Open flags the host gets for 9P open flags: the access mode and the flags that mean something here. */
function hostOpenFlags(flags: number): number {
  const access = flags & OpenFlags.AccessMask;
  if (access > OpenFlags.ReadWrite) throw new ProtocolError(Errno.EINVAL, 'Bad open access mode');
  let f = ACCESS[access] | OPEN_ALWAYS;
  if (flags & OpenFlags.Truncate) f |= O_TRUNC;
  if (flags & OpenFlags.Append) f |= O_APPEND;
  if (flags & OpenFlags.Dsync) f |= O_DSYNC;
  if (flags & OpenFlags.Sync) f |= O_SYNC;
  if (flags & OpenFlags.Directory) f |= O_DIRECTORY;
  return f;
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);
const copyName = (b: Uint8Array): Buffer => Buffer.from(b);

/** A 9P session as a snapshot keeps it (JSON): names are base64, flags the host's open flags. */
export interface NinePSession {
  negotiated: boolean;
  msize: number;
  fids: { id: number; path: string[]; kind: number; flags: number }[];
}

export class NinePServer {
  readonly tag: string;
  readonly readOnly: boolean;
  readonly maxMsize: number;
  /** Negotiated by Tversion; until then only Tversion is accepted. */
  private msize: number;
  private negotiated = false;
  private readonly host: HostRoot;
  private readonly fids: FidTable;
  private readonly r = new MessageReader();
  private readonly w = new MessageWriter();
  private request = EMPTY;
  private readonly qids: QidWriter;
  /** Requests answered, errors replied, malformed messages, unexpected exceptions (bugs, reported as EIO). */
  readonly counters = { requests: 0, errors: 0, malformed: 0, internal: 0 };
  private readonly log: (line: string) => void;

  constructor(opts: NinePServerOptions) {
    this.tag = opts.tag;
    this.log = opts.log ?? (() => {});
    this.readOnly = opts.readOnly;
    this.maxMsize = Math.max(MIN_MSIZE, Math.min(opts.msize ?? DEFAULT_MSIZE, 0x7fffffff));
    this.msize = this.maxMsize;
    this.fids = new FidTable(opts.maxFids ?? DEFAULT_MAX_FIDS, opts.maxOpenFiles ?? DEFAULT_MAX_OPEN);
    this.host = new HostRoot(opts.root);
    this.qids = new QidWriter(fstatSync(this.host.fd).dev);
  }

  /** Fids in use, and those holding host descriptors (for tests and reports). */
  get fidCount(): number { return this.fids.size; }
  get openFidCount(): number { return this.fids.openCount; }

  /**
   * Handles the T-message in the first `requestLength` bytes of `request` and writes the R-message
   * into `response` (at most `responseLength` bytes, and at most the negotiated msize). Returns the
   * reply length; 0 only when the response room cannot hold even an Rlerror. Never throws.
   */
  handle(request: Uint8Array, response: Uint8Array, requestLength = request.length, responseLength = response.length): number {
    const room = Math.min(responseLength, response.length);
    if (room < RLERROR_SIZE) return 0;
    const length = Math.min(requestLength, request.length);
    this.counters.requests++;
    this.request = request;
    this.w.reset(response, Math.min(room, this.msize));
    let tag = NOTAG;
    try {
      if (length < HEADER_SIZE) throw new ProtocolError(Errno.EPROTO, 'Message shorter than its header');
      this.r.reset(request, HEADER_SIZE);
      const size = this.r.u32();
      const type = this.r.u8();
      tag = this.r.u16();
      if (size < HEADER_SIZE || size > length) throw new ProtocolError(Errno.EPROTO, 'Bad message size');
      this.r.end = size;
      this.dispatch(type, tag);
      return this.w.finish();
    } catch (err) {
      return this.fail(response, room, tag, err);
    } finally {
      this.request = EMPTY;
    }
  }

  /** Clunks every fid and forgets the negotiation (virtio device reset). */
  reset(): void {
    this.fids.clear();
    this.negotiated = false;
    this.msize = this.maxMsize;
  }

  /** Releases every host descriptor; the server cannot be used afterwards. */
  close(): void {
    this.fids.clear();
    this.host.close();
  }

  private fail(response: Uint8Array, room: number, tag: number, err: unknown): number {
    this.counters.errors++;
    let errno: number;
    if (err instanceof ProtocolError) {
      errno = err.errno;
      if (errno === Errno.EPROTO) this.counters.malformed++;
    } else {
      errno = errnoOf(err);
      if (errno === Errno.EIO && !(err instanceof Error && 'errno' in err)) {
        // Not a host error: a bug here. Answered EIO like any other failure, and reported.
        if (this.counters.internal++ < LOGGED_INTERNAL_ERRORS) this.log(`9p share ${this.tag}: unexpected ${String(err)}`);
      }
    }
    const w = this.w;
    w.reset(response, room);
    w.begin(T.Rlerror, tag);
    w.u32(errno);
    return w.finish();
  }

  private dispatch(type: number, tag: number): void {
    if (type === T.Tversion) return this.version(tag);
    if (!this.negotiated) throw new ProtocolError(Errno.EPROTO, 'No version negotiated');
    switch (type) {
      case T.Tattach: return this.attach(tag);
      case T.Twalk: return this.walk(tag);
      case T.Tlopen: return this.lopen(tag);
      case T.Tlcreate: return this.lcreate(tag);
      case T.Tread: return this.read(tag);
      case T.Twrite: return this.write(tag);
      case T.Tclunk: this.fids.clunk(this.r.u32()); return this.w.begin(T.Rclunk, tag);
      case T.Tremove: return this.remove(tag);
      case T.Tgetattr: return this.getattr(tag);
      case T.Tsetattr: return this.setattr(tag);
      case T.Treaddir: return this.readdir(tag);
      case T.Tstatfs: return this.statfs(tag);
      case T.Tmkdir: return this.mkdir(tag);
      case T.Tsymlink: return this.symlink(tag);
      case T.Tmknod: return this.mknod(tag);
      case T.Treadlink: return this.readlink(tag);
      case T.Tlink: return this.link(tag);
      case T.Trename: return this.rename(tag);
      case T.Trenameat: return this.renameat(tag);
      case T.Tunlinkat: return this.unlinkat(tag);
      case T.Tfsync: return this.fsync(tag);
      case T.Tflush: this.r.u16(); return this.w.begin(T.Rflush, tag); // requests complete in order: nothing to cancel
      case T.Txattrwalk: return this.xattrwalk(tag);
      case T.Txattrcreate: return this.xattrcreate(tag);
      case T.Tlock: return this.lock(tag);
      case T.Tgetlock: return this.getlock(tag);
      default: throw new ProtocolError(Errno.ENOTSUP, 'Unsupported message type');
    }
  }

  // --- session -------------------------------------------------------------------------------

  private version(tag: number): void {
    const msize = this.r.u32();
    const version = this.r.string();
    this.reset();
    if (msize < MIN_MSIZE) throw new ProtocolError(Errno.EINVAL, 'msize below 4096');
    this.msize = Math.min(msize, this.maxMsize);
    this.negotiated = version === VERSION_9P2000_L;
    this.w.begin(T.Rversion, tag);
    this.w.u32(this.msize);
    this.w.string(this.negotiated ? VERSION_9P2000_L : 'unknown');
  }

  private attach(tag: number): void {
    const r = this.r;
    const fid = r.u32();
    r.u32(); r.bytes(); r.bytes(); r.u32(); // afid, uname, aname, n_uname: no authentication, one tree
    this.fids.checkFree(fid);
    const st = fstatSync(this.host.fd);
    this.fids.add(fid, []);
    this.w.begin(T.Rattach, tag);
    this.qids.write(this.w, st);
  }

  // --- names ---------------------------------------------------------------------------------

  private walk(tag: number): void {
    const r = this.r, w = this.w, host = this.host;
    const fidId = r.u32(), newId = r.u32(), n = r.u16();
    if (n > MAX_WALK_NAMES) throw new ProtocolError(Errno.EINVAL, 'Too many walk names');
    // Copied first: the names outlive this request in the fid's path, and are checked as stored.
    const names: Buffer[] = [];
    for (let i = 0; i < n; i++) names.push(copyName(r.bytes()));
    const fid = this.fids.get(fidId);
    if (newId !== fidId) this.fids.checkFree(newId);
    else if (fid.kind !== FidKind.Path) throw new ProtocolError(Errno.EINVAL, 'Walk of an open fid in place');
    let length = pathLength(fid.path);
    for (const name of names) {
      checkName(name);
      length += name.length + 1;
    }
    if (length > PATH_MAX) throw new ProtocolError(Errno.ENAMETOOLONG, 'Path too long');
    w.begin(T.Rwalk, tag);
    const countAt = w.reserve(2);
    let done = 0;
    if (n > 0) {
      let dfd = host.openDir(fid.path);
      let failure: unknown;
      try {
        for (; done < n; done++) {
          let st: Stats;
          try {
            st = lstatSync(host.at(dfd, names[done]));
          } catch (err) {
            failure = err;
            break;
          }
          this.qids.write(this.w, st);
          if (done === n - 1) continue;
          if (!st.isDirectory()) {
            failure = new ProtocolError(Errno.ENOTDIR, 'Walk through a non-directory');
            done++;
            break;
          }
          try {
            const next = host.openChildDir(dfd, names[done]);
            host.release(dfd);
            dfd = next;
          } catch (err) {
            failure = err;
            done++;
            break;
          }
        }
      } finally {
        host.release(dfd);
      }
      // A walk that fails at its first name is an error; later, it is a shorter Rwalk (9P).
      if (done === 0) throw failure;
    }
    w.setU16At(countAt, done);
    if (done < n) return;
    const path = n === 0 ? fid.path : fid.path.concat(names);
    if (newId === fidId) fid.path = path;
    else this.fids.add(newId, path);
  }

  // --- open, create, read, write -------------------------------------------------------------

  private lopen(tag: number): void {
    const fid = this.fids.get(this.r.u32());
    const flags = this.r.u32();
    if (fid.kind !== FidKind.Path) throw new ProtocolError(Errno.EINVAL, 'Fid already open');
    const hostFlags = hostOpenFlags(flags);
    if (this.readOnly && ((flags & OpenFlags.AccessMask) !== OpenFlags.ReadOnly || (flags & OpenFlags.Truncate))) {
      throw new ProtocolError(Errno.EROFS, 'Read-only share');
    }
    this.fids.checkOpenRoom();
    const fd = this.openPath(fid.path, hostFlags);
    const st = this.checkOpened(fd);
    this.fids.markOpen(fid, fd, st.isDirectory() ? FidKind.Dir : FidKind.File, hostFlags);
    this.w.begin(T.Rlopen, tag);
    this.qids.write(this.w, st);
    this.w.u32(0); // iounit 0: the client uses msize - 24
  }

  /** Opens what `path` names in the share with `hostFlags` (the root through its own descriptor). */
  private openPath(path: SharePath, hostFlags: number): number {
    const host = this.host;
    if (path.length === 0) return openSync(host.self(host.fd), hostFlags & ~O_NOFOLLOW);
    const dfd = host.openDir(path, path.length - 1);
    try {
      const name = path[path.length - 1];
      // Refuse special files before opening: opening a device can have effects of its own.
      if (!isFileOrDir(lstatSync(host.at(dfd, name)).mode)) throw new ProtocolError(Errno.ENXIO, 'Not a regular file or directory');
      return openSync(host.at(dfd, name), hostFlags);
    } finally {
      host.release(dfd);
    }
  }

  /** The session, for a snapshot: the negotiation and every fid with its path and how it was opened. */
  save(): NinePSession {
    const fids: NinePSession['fids'] = [];
    for (const [id, fid] of this.fids.entries()) {
      fids.push({ id, path: fid.path.map(n => Buffer.from(n).toString('base64')), kind: fid.kind, flags: fid.openFlags });
    }
    return { negotiated: this.negotiated, msize: this.msize, fids };
  }

  /**
   * Takes up a saved session: fids name the same paths and opened ones are opened again (without
   * truncating). A fid whose file is gone from the host (or was unlinked while open) is left out:
   * the guest gets EBADF for it. Returns how many were left out.
   */
  restore(s: NinePSession): number {
    this.reset();
    this.negotiated = s.negotiated === true;
    if (Number.isInteger(s.msize) && s.msize >= MIN_MSIZE && s.msize <= this.maxMsize) this.msize = s.msize;
    let lost = 0;
    for (const f of Array.isArray(s.fids) ? s.fids : []) {
      try {
        const path = f.path.map(n => new Uint8Array(Buffer.from(n, 'base64')));
        for (const n of path) checkName(n);
        if (f.kind === FidKind.File || f.kind === FidKind.Dir) {
          this.fids.checkFree(f.id);
          this.fids.checkOpenRoom();
          const flags = f.flags & ~(O_TRUNC | O_CREAT | O_EXCL);
          const fd = this.openPath(path, flags);
          const st = this.checkOpened(fd);
          this.fids.markOpen(this.fids.add(f.id, path), fd, st.isDirectory() ? FidKind.Dir : FidKind.File, flags);
        } else {
          this.fids.add(f.id, path, f.kind === FidKind.Xattr ? FidKind.Xattr : FidKind.Path);
        }
      } catch {
        lost++;
      }
    }
    return lost;
  }

  /** fstat of a fresh descriptor; closes it and throws unless it is a regular file or directory. */
  private checkOpened(fd: number): Stats {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (!isFileOrDir(st.mode)) {
      closeSync(fd);
      throw new ProtocolError(Errno.ENXIO, 'Not a regular file or directory');
    }
    return st;
  }

  private lcreate(tag: number): void {
    const r = this.r;
    const fid = this.fids.get(r.u32());
    const name = r.bytes();
    const flags = r.u32(), mode = r.u32();
    r.u32(); // gid: not applied (security model "none")
    checkName(name);
    this.checkWritable();
    if (fid.kind !== FidKind.Path) throw new ProtocolError(Errno.EINVAL, 'Fid already open');
    if (pathLength(fid.path) + name.length + 1 > PATH_MAX) throw new ProtocolError(Errno.ENAMETOOLONG, 'Path too long');
    const hostFlags = hostOpenFlags(flags);
    this.fids.checkOpenRoom();
    const host = this.host;
    const dfd = host.openDir(fid.path);
    let fd: number;
    let created = true;
    try {
      const p = host.at(dfd, name);
      try {
        fd = openSync(p, hostFlags | O_CREAT | O_EXCL, 0o600);
      } catch (err) {
        if (errnoOf(err) !== Errno.EEXIST || (flags & OpenFlags.Exclusive)) throw err;
        created = false;
        if (!isFileOrDir(lstatSync(p).mode)) throw new ProtocolError(Errno.ENXIO, 'Not a regular file or directory');
        fd = openSync(p, hostFlags);
      }
    } finally {
      host.release(dfd);
    }
    const st = this.checkOpened(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw new ProtocolError(Errno.EISDIR, 'Is a directory');
    }
    if (created) {
      try {
        fchmodSync(fd, safeMode(mode, false)); // exact mode: the host's umask must not apply twice
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    }
    fid.path = fid.path.concat(copyName(name));
    this.fids.markOpen(fid, fd, FidKind.File, hostFlags);
    this.w.begin(T.Rlcreate, tag);
    this.qids.write(this.w, st);
    this.w.u32(0);
  }

  private read(tag: number): void {
    const r = this.r, w = this.w;
    const fid = this.fids.get(r.u32());
    const offset = r.u64();
    const count = r.u32();
    w.begin(T.Rread, tag);
    const countAt = w.reserve(4);
    if (fid.kind === FidKind.Xattr) return w.setU32At(countAt, 0);
    if (fid.kind !== FidKind.File) throw new ProtocolError(fid.kind === FidKind.Dir ? Errno.EISDIR : Errno.EBADF, 'Fid not open for reading');
    if (offset > MAX_SAFE_U64) return w.setU32At(countAt, 0); // beyond any host file's end
    const want = Math.min(count, w.room);
    const at = w.reserve(want);
    const got = readSync(fid.fd, w.buffer, at, want, offset); // straight into the response
    w.truncate(at + got);
    w.setU32At(countAt, got);
  }

  private write(tag: number): void {
    const r = this.r;
    const fid = this.fids.get(r.u32());
    const offset = r.u64();
    const count = r.u32();
    const at = r.skip(count);
    this.checkWritable();
    if (fid.kind !== FidKind.File) throw new ProtocolError(fid.kind === FidKind.Dir ? Errno.EISDIR : Errno.EBADF, 'Fid not open for writing');
    if (offset + count > MAX_SAFE_U64) throw new ProtocolError(Errno.EFBIG, 'Offset beyond the largest file');
    const written = writeSync(fid.fd, this.request, at, count, offset);
    this.w.begin(T.Rwrite, tag);
    this.w.u32(written);
  }

  private fsync(tag: number): void {
    const fid = this.fids.get(this.r.u32());
    const datasync = this.r.u32();
    if (fid.fd < 0) throw new ProtocolError(Errno.EBADF, 'Fid not open');
    if (datasync) fdatasyncSync(fid.fd);
    else fsyncSync(fid.fd);
    this.w.begin(T.Rfsync, tag);
  }

  // --- directories ---------------------------------------------------------------------------

  private readdir(tag: number): void {
    const r = this.r, w = this.w, host = this.host;
    const fid = this.fids.get(r.u32());
    const offset = r.u64();
    const count = r.u32();
    if (fid.kind !== FidKind.Dir) throw new ProtocolError(fid.kind === FidKind.File ? Errno.ENOTDIR : Errno.EBADF, 'Fid not an open directory');
    w.begin(T.Rreaddir, tag);
    const countAt = w.reserve(4);
    const start = w.pos;
    const limit = start + Math.min(count, w.room);
    // The client resumes from the offset of the last entry it used, which is normally where we
    // stopped; anything else (rewinddir, seekdir) restarts the listing and skips ahead.
    if (fid.dir === null || offset !== fid.dirCursor) this.rewindDir(fid, offset);
    for (;;) {
      const index = fid.dirCursor;
      let name: Uint8Array;
      let st: Stats | undefined;
      if (index === 0) {
        name = DOT;
        st = fstatSync(fid.fd);
      } else if (index === 1) {
        name = DOTDOT;
        st = fid.path.length === 0 ? fstatSync(fid.fd) : lstatSync(`${host.self(fid.fd)}/..`);
      } else {
        const entry = fid.dirPeek ?? fid.dir!.readSync();
        if (entry === null) break;
        fid.dirPeek = entry;
        name = entry.name as unknown as Buffer; // opened with encoding 'buffer': raw bytes
      }
      if (w.pos + DIRENT_FIXED_SIZE + name.length > limit) break;
      fid.dirCursor = index + 1;
      fid.dirPeek = null;
      if (st === undefined) {
        try {
          st = lstatSync(host.at(fid.fd, name));
        } catch {
          continue; // removed since it was listed
        }
      }
      this.qids.write(this.w, st);
      w.u64(index + 1);
      w.u8((st.mode & S_IFMT) >> 12); // DT_* is the S_IF* type shifted down
      w.bytes(name);
    }
    w.setU32At(countAt, w.pos - start);
  }

  /** Starts the listing of `fid` again and skips to `offset` (entry indexes; 0 and 1 are . and ..). */
  private rewindDir(fid: Fid, offset: number): void {
    if (fid.dir !== null) fid.dir.closeSync();
    fid.dir = null;
    fid.dirPeek = null;
    fid.dirCursor = 0;
    fid.dir = opendirSync(this.host.self(fid.fd), { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
    while (fid.dirCursor < offset) {
      if (fid.dirCursor >= 2 && fid.dir.readSync() === null) break;
      fid.dirCursor++;
    }
  }

  private mkdir(tag: number): void {
    const r = this.r, host = this.host;
    const dir = this.fids.get(r.u32());
    const name = r.bytes();
    const mode = r.u32();
    r.u32(); // gid
    checkName(name);
    this.checkWritable();
    const dfd = host.openDir(dir.path);
    let st: Stats;
    try {
      mkdirSync(host.at(dfd, name), 0o700);
      const fd = host.openChildDir(dfd, name);
      try {
        chmodSync(host.self(fd), safeMode(mode, true));
        st = fstatSync(fd);
      } finally {
        closeSync(fd);
      }
    } finally {
      host.release(dfd);
    }
    this.w.begin(T.Rmkdir, tag);
    this.qids.write(this.w, st);
  }

  private symlink(tag: number): void {
    const r = this.r, host = this.host;
    const dir = this.fids.get(r.u32());
    const name = r.bytes();
    const target = r.bytes();
    r.u32(); // gid
    checkName(name);
    this.checkWritable();
    // The target is only stored: the host never follows it (the guest resolves it itself).
    if (target.length === 0) throw new ProtocolError(Errno.ENOENT, 'Empty symlink target');
    if (target.length >= PATH_MAX) throw new ProtocolError(Errno.ENAMETOOLONG, 'Symlink target too long');
    if (target.includes(0)) throw new ProtocolError(Errno.EINVAL, 'Symlink target with NUL');
    const dfd = host.openDir(dir.path);
    let st: Stats;
    try {
      symlinkSync(asBuffer(target), host.at(dfd, name));
      st = lstatSync(host.at(dfd, name));
    } finally {
      host.release(dfd);
    }
    this.w.begin(T.Rsymlink, tag);
    this.qids.write(this.w, st);
  }

  /**
   * Refused: Linux sends Tmknod only for devices, FIFOs and sockets (regular files come by Tlcreate),
   * and a device node made by the guest would open host devices to whoever uses the share.
   */
  private mknod(_tag: number): void {
    const r = this.r;
    this.fids.get(r.u32());
    checkName(r.bytes());
    r.u32(); r.u32(); r.u32(); r.u32(); // mode, major, minor, gid
    this.checkWritable();
    throw new ProtocolError(Errno.EPERM, 'No device nodes, FIFOs or sockets in a share');
  }

  private readlink(tag: number): void {
    const fid = this.fids.get(this.r.u32());
    if (fid.path.length === 0) throw new ProtocolError(Errno.EINVAL, 'Not a symlink');
    const host = this.host;
    const dfd = host.openDir(fid.path, fid.path.length - 1);
    let target: Buffer;
    try {
      target = readlinkSync(host.at(dfd, fid.path[fid.path.length - 1]), { encoding: 'buffer' });
    } finally {
      host.release(dfd);
    }
    this.w.begin(T.Rreadlink, tag);
    this.w.bytes(target);
  }

  private link(tag: number): void {
    const r = this.r, host = this.host;
    const dir = this.fids.get(r.u32());
    const fid = this.fids.get(r.u32());
    const name = r.bytes();
    checkName(name);
    this.checkWritable();
    if (fid.path.length === 0) throw new ProtocolError(Errno.EPERM, 'Cannot link the root');
    const sfd = host.openDir(fid.path, fid.path.length - 1);
    try {
      const dfd = host.openDir(dir.path);
      try {
        linkSync(host.at(sfd, fid.path[fid.path.length - 1], 0), host.at(dfd, name, 1));
      } finally {
        host.release(dfd);
      }
    } finally {
      host.release(sfd);
    }
    this.w.begin(T.Rlink, tag);
  }

  private rename(tag: number): void {
    const r = this.r;
    const fid = this.fids.get(r.u32());
    const dir = this.fids.get(r.u32());
    const name = r.bytes();
    if (fid.path.length === 0) throw new ProtocolError(Errno.EBUSY, 'Cannot rename the root');
    this.renameIn(fid.path.slice(0, -1), fid.path[fid.path.length - 1], dir.path, name);
    this.w.begin(T.Rrename, tag);
  }

  private renameat(tag: number): void {
    const r = this.r;
    const oldDir = this.fids.get(r.u32());
    const oldName = r.bytes();
    const newDir = this.fids.get(r.u32());
    const newName = r.bytes();
    checkName(oldName);
    this.renameIn(oldDir.path, oldName, newDir.path, newName);
    this.w.begin(T.Rrenameat, tag);
  }

  private renameIn(fromDir: SharePath, fromName: Uint8Array, toDir: SharePath, toName: Uint8Array): void {
    checkName(toName);
    this.checkWritable();
    if (pathLength(toDir) + toName.length + 1 > PATH_MAX) throw new ProtocolError(Errno.ENAMETOOLONG, 'Path too long');
    const host = this.host;
    const sfd = host.openDir(fromDir);
    try {
      const dfd = host.openDir(toDir);
      try {
        renameSync(host.at(sfd, fromName, 0), host.at(dfd, toName, 1));
      } finally {
        host.release(dfd);
      }
    } finally {
      host.release(sfd);
    }
    this.fids.renamed(fromDir.concat(copyName(fromName)), toDir.concat(copyName(toName)));
  }

  private unlinkat(tag: number): void {
    const r = this.r, host = this.host;
    const dir = this.fids.get(r.u32());
    const name = r.bytes();
    const flags = r.u32();
    checkName(name);
    this.checkWritable();
    const dfd = host.openDir(dir.path);
    try {
      if (flags & AT_REMOVEDIR) rmdirSync(host.at(dfd, name));
      else unlinkSync(host.at(dfd, name));
    } finally {
      host.release(dfd);
    }
    this.w.begin(T.Runlinkat, tag);
  }

  private remove(tag: number): void {
    const id = this.r.u32();
    const fid = this.fids.get(id);
    try {
      this.checkWritable();
      if (fid.path.length === 0) throw new ProtocolError(Errno.EBUSY, 'Cannot remove the root');
      const host = this.host;
      const dfd = host.openDir(fid.path, fid.path.length - 1);
      try {
        const p = host.at(dfd, fid.path[fid.path.length - 1]);
        if (lstatSync(p).isDirectory()) rmdirSync(p);
        else unlinkSync(p);
      } finally {
        host.release(dfd);
      }
    } finally {
      this.fids.clunk(id); // Tremove clunks even when the removal fails
    }
    this.w.begin(T.Rremove, tag);
  }

  // --- attributes ----------------------------------------------------------------------------

  private getattr(tag: number): void {
    const fid = this.fids.get(this.r.u32());
    this.r.u64(); // request_mask: the basic set is always filled
    const st = statOf(this.host, fid);
    this.w.begin(T.Rgetattr, tag);
    writeAttributes(this.w, this.qids, st);
  }

  private setattr(tag: number): void {
    const r = this.r;
    const fid = this.fids.get(r.u32());
    const a: SetattrRequest = {
      valid: r.u32(), mode: r.u32(), uid: r.u32(), gid: r.u32(), size: r.u64(),
      atimeSec: r.u64(), atimeNsec: r.u64(), mtimeSec: r.u64(), mtimeNsec: r.u64(),
    };
    this.checkWritable();
    if ((a.valid & SetattrValid.Size) && a.size > MAX_SAFE_U64) throw new ProtocolError(Errno.EFBIG, 'Size beyond the largest file');
    applySetattr(this.host, fid, a);
    this.w.begin(T.Rsetattr, tag);
  }

  private statfs(tag: number): void {
    const fid = this.fids.get(this.r.u32());
    const host = this.host;
    // The file system holding the fid's directory (a non-directory: its parent's).
    let dfd: number;
    try {
      dfd = host.openDir(fid.path);
    } catch (err) {
      if (errnoOf(err) !== Errno.ENOTDIR) throw err;
      dfd = host.openDir(fid.path, fid.path.length - 1);
    }
    let s;
    try {
      s = statfsSync(host.self(dfd));
    } finally {
      host.release(dfd);
    }
    const w = this.w;
    w.begin(T.Rstatfs, tag);
    w.u32(s.type);
    w.u32(s.bsize);
    w.u64(s.blocks);
    w.u64(s.bfree);
    w.u64(s.bavail);
    w.u64(s.files);
    w.u64(s.ffree);
    w.u64(0); // fsid
    w.u32(NAME_MAX);
  }

  private xattrwalk(tag: number): void {
    const r = this.r;
    const fid = this.fids.get(r.u32());
    const newId = r.u32();
    const name = r.bytes();
    // No extended attributes: the list is empty, and any one attribute is absent.
    if (name.length > 0) throw new ProtocolError(Errno.ENODATA, 'No such attribute');
    this.fids.add(newId, fid.path, FidKind.Xattr);
    this.w.begin(T.Rxattrwalk, tag);
    this.w.u64(0);
  }

  private xattrcreate(tag: number): void {
    const r = this.r;
    this.fids.get(r.u32());
    r.bytes(); r.u64(); r.u32(); // name, attr_size, flags
    this.checkWritable();
    throw new ProtocolError(Errno.ENOTSUP, 'No extended attributes');
  }

  // --- locks: granted; one guest is the only user of its share -------------------------------

  private lock(tag: number): void {
    const r = this.r;
    this.fids.get(r.u32());
    r.u8(); r.u32(); r.u64(); r.u64(); r.u32(); r.bytes(); // type flags start length proc_id client_id
    this.w.begin(T.Rlock, tag);
    this.w.u8(LOCK_SUCCESS);
  }

  private getlock(tag: number): void {
    const r = this.r;
    this.fids.get(r.u32());
    r.u8();
    const from = r.pos;
    r.u64(); r.u64(); r.u32(); r.bytes(); // start length proc_id client_id, echoed: no conflicting lock
    this.w.begin(T.Rgetlock, tag);
    this.w.u8(LOCK_TYPE_UNLCK);
    this.w.raw(this.request.subarray(from, r.pos));
  }

  // --- helpers -------------------------------------------------------------------------------

  private checkWritable(): void {
    if (this.readOnly) throw new ProtocolError(Errno.EROFS, 'Read-only share');
  }
}

function isFileOrDir(mode: number): boolean {
  const type = mode & S_IFMT;
  return type === S_IFREG || type === S_IFDIR;
}
