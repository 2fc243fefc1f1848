/**
 * The 9P2000.L wire format, declared once: message numbers, fixed sizes, and a bounds-checked
 * reader and writer over one message.
 *
 * Every message is `size[4] type[1] tag[2] body`, little-endian; `size` counts the whole message.
 * Strings are `len[2]` + that many bytes (UTF-8 by convention, raw bytes for file names); a qid is
 * `type[1] version[4] path[8]`. Body layouts are listed beside each T-message below (the R-message
 * is the next number). Source: Linux's net/9p/client.c (the format strings the v9fs client packs
 * and unpacks) and include/net/9p/9p.h (numbers and flag values).
 */
import { GasangError } from '../../../util/errors.js';
import { Errno } from './errno.js';

export const enum MessageType {
  /** ecode[4] — the only error reply 9P2000.L uses. */
  Rlerror = 7,
  /** fid[4] → type[4] bsize[4] blocks[8] bfree[8] bavail[8] files[8] ffree[8] fsid[8] namelen[4] */
  Tstatfs = 8, Rstatfs = 9,
  /** fid[4] flags[4] → qid[13] iounit[4] */
  Tlopen = 12, Rlopen = 13,
  /** fid[4] name[s] flags[4] mode[4] gid[4] → qid[13] iounit[4] */
  Tlcreate = 14, Rlcreate = 15,
  /** fid[4] name[s] symtgt[s] gid[4] → qid[13] */
  Tsymlink = 16, Rsymlink = 17,
  /** dfid[4] name[s] mode[4] major[4] minor[4] gid[4] → qid[13] */
  Tmknod = 18, Rmknod = 19,
  /** fid[4] dfid[4] name[s] → (empty) */
  Trename = 20, Rrename = 21,
  /** fid[4] → target[s] */
  Treadlink = 22, Rreadlink = 23,
  /** fid[4] request_mask[8] → valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8]
   *  blksize[8] blocks[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8] ctime_sec[8]
   *  ctime_nsec[8] btime_sec[8] btime_nsec[8] gen[8] data_version[8] */
  Tgetattr = 24, Rgetattr = 25,
  /** fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime_sec[8] atime_nsec[8] mtime_sec[8]
   *  mtime_nsec[8] → (empty) */
  Tsetattr = 26, Rsetattr = 27,
  /** fid[4] newfid[4] name[s] → size[8] */
  Txattrwalk = 30, Rxattrwalk = 31,
  /** fid[4] name[s] attr_size[8] flags[4] → (empty) */
  Txattrcreate = 32, Rxattrcreate = 33,
  /** fid[4] offset[8] count[4] → count[4] data[count]; each entry qid[13] offset[8] type[1] name[s] */
  Treaddir = 40, Rreaddir = 41,
  /** fid[4] datasync[4] → (empty) */
  Tfsync = 50, Rfsync = 51,
  /** fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s] → status[1] */
  Tlock = 52, Rlock = 53,
  /** fid[4] type[1] start[8] length[8] proc_id[4] client_id[s] → the same five fields */
  Tgetlock = 54, Rgetlock = 55,
  /** dfid[4] fid[4] name[s] → (empty) */
  Tlink = 70, Rlink = 71,
  /** dfid[4] name[s] mode[4] gid[4] → qid[13] */
  Tmkdir = 72, Rmkdir = 73,
  /** olddirfid[4] oldname[s] newdirfid[4] newname[s] → (empty) */
  Trenameat = 74, Rrenameat = 75,
  /** dirfd[4] name[s] flags[4] → (empty) */
  Tunlinkat = 76, Runlinkat = 77,
  /** msize[4] version[s] → msize[4] version[s] */
  Tversion = 100, Rversion = 101,
  /** afid[4] uname[s] aname[s] n_uname[4] → aqid[13] (not offered: no authentication) */
  Tauth = 102, Rauth = 103,
  /** fid[4] afid[4] uname[s] aname[s] n_uname[4] → qid[13] */
  Tattach = 104, Rattach = 105,
  /** oldtag[2] → (empty) */
  Tflush = 108, Rflush = 109,
  /** fid[4] newfid[4] nwname[2] nwname*(wname[s]) → nwqid[2] nwqid*(qid[13]) */
  Twalk = 110, Rwalk = 111,
  /** fid[4] offset[8] count[4] → count[4] data[count] */
  Tread = 116, Rread = 117,
  /** fid[4] offset[8] count[4] data[count] → count[4] */
  Twrite = 118, Rwrite = 119,
  /** fid[4] → (empty) */
  Tclunk = 120, Rclunk = 121,
  /** fid[4] → (empty); the fid is clunked even when the removal fails */
  Tremove = 122, Rremove = 123,
}

/** size[4] type[1] tag[2] */
export const HEADER_SIZE = 7;
/** Header + count[4]: where Rread and Rreaddir data start. */
export const IO_HEADER_SIZE = 11;
/** Header + ecode[4]. */
export const RLERROR_SIZE = 11;
export const QID_SIZE = 13;
/** qid[13] offset[8] type[1] + name length[2]: a readdir entry before its name. */
export const DIRENT_FIXED_SIZE = 24;
export const NOTAG = 0xffff;
export const NOFID = 0xffffffff;
/** Twalk carries at most this many names (P9_MAXWELEM). */
export const MAX_WALK_NAMES = 16;
export const VERSION_9P2000_L = '9P2000.L';

export const enum QidType { File = 0x00, Symlink = 0x02, Dir = 0x80 }

/** Tgetattr request_mask / Rgetattr valid bits (P9_STATS_*): we always fill the basic set. */
export const STATS_BASIC = 0x7ff;
export const STATS_BTIME = 0x800;

/** Tsetattr valid bits (P9_ATTR_*). */
export const enum SetattrValid {
  Mode = 1 << 0, Uid = 1 << 1, Gid = 1 << 2, Size = 1 << 3,
  Atime = 1 << 4, Mtime = 1 << 5, Ctime = 1 << 6, AtimeSet = 1 << 7, MtimeSet = 1 << 8,
}

/** Tlopen/Tlcreate flags (P9_DOTL_*): Linux's generic open flag values. */
export const enum OpenFlags {
  AccessMask = 0o3, ReadOnly = 0o0, WriteOnly = 0o1, ReadWrite = 0o2,
  Create = 0o100, Exclusive = 0o200, Truncate = 0o1000, Append = 0o2000,
  Dsync = 0o10000, Directory = 0o200000, Sync = 0o4000000,
}

/** Tunlinkat flags. */
export const AT_REMOVEDIR = 0x200;

/** Tlock/Tgetlock types (P9_LOCK_TYPE_*) and Rlock status (P9_LOCK_*). */
export const LOCK_TYPE_UNLCK = 2;
export const LOCK_SUCCESS = 0;

/** A message the reader or writer cannot handle; `errno` is what the guest is told. */
export class ProtocolError extends GasangError {
  constructor(readonly errno: number, message: string) {
    super('9p-protocol', message);
  }
}

/** Values past 2^53 lose precision as numbers; callers that need exact offsets check this. */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Reads one message's fields in order and never past `end` (which the size field bounds). */
export class MessageReader {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  end = 0;

  reset(buf: Uint8Array, end: number): void {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = 0;
    this.end = Math.min(end, buf.length);
  }

  get remaining(): number { return this.end - this.pos; }

  private need(n: number): number {
    const at = this.pos;
    if (n > this.end - at) throw new ProtocolError(Errno.EPROTO, 'Message shorter than its fields');
    this.pos = at + n;
    return at;
  }

  u8(): number { return this.buf[this.need(1)]; }
  u16(): number { return this.view.getUint16(this.need(2), true); }
  u32(): number { return this.view.getUint32(this.need(4), true); }
  /** A u64 as a number: exact below 2^53, larger values only compare correctly (see MAX_SAFE_U64). */
  u64(): number {
    const at = this.need(8);
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * 0x1_0000_0000;
  }
  /** A string's bytes as a view into the message (valid until the buffer is reused). */
  bytes(): Uint8Array {
    const len = this.u16();
    const at = this.need(len);
    return this.buf.subarray(at, at + len);
  }
  /** A string decoded as UTF-8; invalid UTF-8 is EINVAL. */
  string(): string {
    const b = this.bytes();
    try {
      return utf8.decode(b);
    } catch {
      throw new ProtocolError(Errno.EINVAL, 'String is not UTF-8');
    }
  }
  /** `n` raw bytes (Twrite data): returns the offset of the first one in the buffer. */
  skip(n: number): number { return this.need(n); }
}

/** Writes one reply into a caller's buffer, never past `limit`; `finish` fills in the size. */
export class MessageWriter {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  pos = 0;
  limit = 0;

  reset(buf: Uint8Array, limit: number): void {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = 0;
    this.limit = Math.min(limit, buf.length);
  }

  get buffer(): Uint8Array { return this.buf; }
  get room(): number { return this.limit - this.pos; }

  private take(n: number): number {
    const at = this.pos;
    if (n > this.limit - at) throw new ProtocolError(Errno.EMSGSIZE, 'Reply larger than the response buffer');
    this.pos = at + n;
    return at;
  }

  /** Starts a reply: the size is written by finish(). */
  begin(type: number, tag: number): void {
    this.pos = 0;
    this.take(HEADER_SIZE);
    this.buf[4] = type;
    this.view.setUint16(5, tag, true);
  }
  /** Writes the size field; returns the reply length. */
  finish(): number {
    this.view.setUint32(0, this.pos, true);
    return this.pos;
  }

  u8(v: number): void { this.buf[this.take(1)] = v; }
  u16(v: number): void { this.view.setUint16(this.take(2), v, true); }
  u32(v: number): void { this.view.setUint32(this.take(4), v >>> 0, true); }
  /** A non-negative integer number (exact up to 2^53). */
  u64(v: number): void {
    const at = this.take(8);
    this.view.setUint32(at, v >>> 0, true);
    this.view.setUint32(at + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
  }
  /** A u64 given as two 32-bit halves (qid paths built from inode and device). */
  u64Parts(lo: number, hi: number): void {
    const at = this.take(8);
    this.view.setUint32(at, lo >>> 0, true);
    this.view.setUint32(at + 4, hi >>> 0, true);
  }
  bytes(b: Uint8Array): void {
    if (b.length > 0xffff) throw new ProtocolError(Errno.ENAMETOOLONG, 'String longer than 65535 bytes');
    this.u16(b.length);
    this.buf.set(b, this.take(b.length));
  }
  string(s: string): void {
    const at = this.take(2);
    const { read, written } = utf8Encoder.encodeInto(s, this.buf.subarray(this.pos, Math.min(this.limit, this.pos + 0xffff)));
    if (read < s.length) throw new ProtocolError(Errno.EMSGSIZE, 'Reply larger than the response buffer');
    this.view.setUint16(at, written, true);
    this.pos += written;
  }
  /** Reserves `n` bytes (Rread data written in place); returns their offset. */
  reserve(n: number): number { return this.take(n); }
  /** Rewinds to `pos` (a readdir entry that did not fit, a read shorter than reserved). */
  truncate(pos: number): void { this.pos = pos; }
  setU16At(at: number, v: number): void { this.view.setUint16(at, v, true); }
  setU32At(at: number, v: number): void { this.view.setUint32(at, v >>> 0, true); }
  /** A 64-bit field from a bigint (two's complement for negative times). */
  big(v: bigint): void { this.view.setBigInt64(this.take(8), v, true); }
  /** Bytes copied as they are (fields echoed from the request). */
  raw(b: Uint8Array): void { this.buf.set(b, this.take(b.length)); }
}
