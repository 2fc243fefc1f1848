/**
 * A small 9P2000.L client for tests: packs T-messages and unpacks R-messages from format strings
 * like Linux's p9pdu_writef/readf, written apart from the server's reader and writer so that tests
 * check the wire format rather than repeat it.
 *
 * Formats: b u8, w u16, d u32, q u64 (number or bigint), s string (string or bytes),
 * S walk names (w count + strings), Q qid (unpack), D count[4] + data (Uint8Array), R raw bytes.
 */
import type { NinePServer } from './server.js';

export interface Qid { type: number; version: number; path: bigint }
export type Value = number | bigint | string | Uint8Array | Qid | readonly (string | Uint8Array)[];

/** An Rlerror reply. */
export class RlerrorReply extends Error {
  constructor(readonly errno: number, readonly request: string) {
    super(`${request}: Rlerror ${errno}`);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytesOf = (v: string | Uint8Array): Uint8Array => (typeof v === 'string' ? enc.encode(v) : v);

/** Packs a whole message: size[4] type[1] tag[2] then `fmt` fields. */
export function pack(type: number, tag: number, fmt: string, args: readonly Value[]): Uint8Array {
  const parts: number[] = [];
  const put = (n: number, bytes: number): void => {
    for (let i = 0; i < bytes; i++) parts.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  };
  const putBig = (v: bigint | number): void => {
    const b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) parts.push(Number((b >> BigInt(8 * i)) & 0xffn));
  };
  const putStr = (v: string | Uint8Array): void => {
    const b = bytesOf(v);
    put(b.length, 2);
    parts.push(...b);
  };
  put(0, 4);
  put(type, 1);
  put(tag, 2);
  [...fmt].forEach((f, i) => {
    const a = args[i];
    switch (f) {
      case 'b': put(a as number, 1); break;
      case 'w': put(a as number, 2); break;
      case 'd': put(a as number, 4); break;
      case 'q': putBig(a as number | bigint); break;
      case 's': putStr(a as string | Uint8Array); break;
      case 'S': put((a as string[]).length, 2); for (const n of a as string[]) putStr(n); break;
      case 'D': put((a as Uint8Array).length, 4); for (const x of a as Uint8Array) parts.push(x); break;
      case 'R': for (const x of a as Uint8Array) parts.push(x); break;
      default: throw new Error(`Bad format ${f}`);
    }
  });
  const out = Uint8Array.from(parts);
  new DataView(out.buffer).setUint32(0, out.length, true);
  return out;
}

/** Unpacks the body of a reply (after the 7-byte header) by `fmt`; q gives bigint. */
export function unpack(reply: Uint8Array, fmt: string): Value[] {
  const v = new DataView(reply.buffer, reply.byteOffset, reply.length);
  let p = 7;
  const out: Value[] = [];
  for (const f of fmt) {
    switch (f) {
      case 'b': out.push(v.getUint8(p)); p += 1; break;
      case 'w': out.push(v.getUint16(p, true)); p += 2; break;
      case 'd': out.push(v.getUint32(p, true)); p += 4; break;
      case 'q': out.push(v.getBigUint64(p, true)); p += 8; break;
      case 's': { const n = v.getUint16(p, true); out.push(dec.decode(reply.subarray(p + 2, p + 2 + n))); p += 2 + n; break; }
      case 'Q': out.push({ type: v.getUint8(p), version: v.getUint32(p + 1, true), path: v.getBigUint64(p + 5, true) }); p += 13; break;
      case 'D': { const n = v.getUint32(p, true); out.push(reply.slice(p + 4, p + 4 + n)); p += 4 + n; break; }
      default: throw new Error(`Bad format ${f}`);
    }
  }
  if (p > reply.length) throw new Error('Reply shorter than its format');
  return out;
}

export interface DirEntry { qid: Qid; offset: bigint; type: number; name: string }

/** Parses Rreaddir data into entries. */
export function parseDirents(data: Uint8Array): DirEntry[] {
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  const out: DirEntry[] = [];
  for (let p = 0; p < data.length;) {
    const qid = { type: v.getUint8(p), version: v.getUint32(p + 1, true), path: v.getBigUint64(p + 5, true) };
    const offset = v.getBigUint64(p + 13, true);
    const type = v.getUint8(p + 21);
    const n = v.getUint16(p + 22, true);
    out.push({ qid, offset, type, name: dec.decode(data.subarray(p + 24, p + 24 + n)) });
    p += 24 + n;
  }
  return out;
}

export class TestClient {
  private tag = 1;
  readonly response: Uint8Array;

  constructor(readonly server: NinePServer, responseSize = 64 * 1024) {
    this.response = new Uint8Array(responseSize);
  }

  /** Sends raw bytes; returns a copy of the reply. */
  raw(message: Uint8Array): Uint8Array {
    const n = this.server.handle(message, this.response);
    return this.response.slice(0, n);
  }

  /** Sends T-message `type` with `fmt` fields; returns the reply's `rfmt` fields, or throws RlerrorReply. */
  call(type: number, fmt: string, args: readonly Value[], rfmt = ''): Value[] {
    const tag = this.tag++ & 0x7fff;
    const reply = this.raw(pack(type, tag, fmt, args));
    const v = new DataView(reply.buffer, reply.byteOffset, reply.length);
    if (v.getUint32(0, true) !== reply.length) throw new Error('Reply size field wrong');
    if (v.getUint16(5, true) !== tag) throw new Error('Reply tag wrong');
    if (reply[4] === 7) throw new RlerrorReply(v.getUint32(7, true), `T${type}`);
    if (reply[4] !== type + 1) throw new Error(`Reply type ${reply[4]} for ${type}`);
    return unpack(reply, rfmt);
  }

  /** The errno of a call expected to fail. */
  errno(type: number, fmt: string, args: readonly Value[]): number {
    try {
      this.call(type, fmt, args);
    } catch (err) {
      if (err instanceof RlerrorReply) return err.errno;
      throw err;
    }
    throw new Error(`T${type} succeeded`);
  }

  version(msize = this.response.length, version = '9P2000.L'): [number, string] {
    return this.call(100, 'ds', [msize, version], 'ds') as [number, string];
  }
  attach(fid: number): Qid { return this.call(104, 'ddssd', [fid, 0xffffffff, 'root', '', 0], 'Q')[0] as Qid; }
  walk(fid: number, newfid: number, names: readonly (string | Uint8Array)[]): Qid[] {
    const reply = this.raw(pack(110, 1, 'ddS', [fid, newfid, names]));
    if (reply[4] === 7) throw new RlerrorReply(new DataView(reply.buffer).getUint32(7, true), 'Twalk');
    const n = new DataView(reply.buffer).getUint16(7, true);
    return Array.from({ length: n }, (_, i) => unpack(reply.subarray(i * 13 + 2), 'Q')[0] as Qid);
  }
  lopen(fid: number, flags: number): Qid { return this.call(12, 'dd', [fid, flags], 'Qd')[0] as Qid; }
  lcreate(fid: number, name: string, flags: number, mode: number): Qid {
    return this.call(14, 'dsddd', [fid, name, flags, mode, 0], 'Qd')[0] as Qid;
  }
  read(fid: number, offset: number, count: number): Uint8Array { return this.call(116, 'dqd', [fid, offset, count], 'D')[0] as Uint8Array; }
  write(fid: number, offset: number, data: Uint8Array | string): number {
    return this.call(118, 'dqD', [fid, offset, bytesOf(data)], 'd')[0] as number;
  }
  clunk(fid: number): void { this.call(120, 'd', [fid]); }
  readdir(fid: number, offset: number | bigint, count: number): DirEntry[] {
    return parseDirents(this.call(40, 'dqd', [fid, offset, count], 'D')[0] as Uint8Array);
  }
  mkdir(dfid: number, name: string, mode: number): Qid { return this.call(72, 'dsdd', [dfid, name, mode, 0], 'Q')[0] as Qid; }
  getattr(fid: number): Record<string, bigint | number | Qid> {
    const [valid, qid, mode, uid, gid, nlink, rdev, size, blksize, blocks, atimeSec, atimeNsec, mtimeSec, mtimeNsec,
      ctimeSec, ctimeNsec] = this.call(24, 'dq', [fid, 0x3fff], 'qQdddqqqqqqqqqqqqqqq');
    return { valid, qid, mode, uid, gid, nlink, rdev, size, blksize, blocks, atimeSec, atimeNsec, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec } as Record<string, bigint | number | Qid>;
  }
  setattr(fid: number, a: { valid: number; mode?: number; uid?: number; gid?: number; size?: number; atime?: [number, number]; mtime?: [number, number] }): void {
    this.call(26, 'dddddqqqqq', [fid, a.valid, a.mode ?? 0, a.uid ?? 0, a.gid ?? 0, a.size ?? 0,
      a.atime?.[0] ?? 0, a.atime?.[1] ?? 0, a.mtime?.[0] ?? 0, a.mtime?.[1] ?? 0]);
  }
  symlink(dfid: number, name: string, target: string): Qid { return this.call(16, 'dssd', [dfid, name, target, 0], 'Q')[0] as Qid; }
  readlink(fid: number): string { return this.call(22, 'd', [fid], 's')[0] as string; }
  renameat(olddir: number, oldname: string, newdir: number, newname: string): void {
    this.call(74, 'dsds', [olddir, oldname, newdir, newname]);
  }
  unlinkat(dfid: number, name: string, flags: number): void { this.call(76, 'dsd', [dfid, name, flags]); }
}
