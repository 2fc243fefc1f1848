/**
 * A host file opened for positional I/O, shared by the raw and qcow2 formats. Every call is a
 * synchronous pread/pwrite loop (short transfers are retried); reads past the end of the file
 * return zeroes, as a sparse file would. Errors become StorageError naming the file.
 */
import {
  closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync, writevSync,
} from 'node:fs';
import { StorageError } from './block.js';

/** The pieces a file's changes are tracked in (block migration sends what changed, by piece). */
export const CHANGE_CHUNK = 64 * 1024;

export class HostFile {
  /** Current length in bytes, kept up to date by this object's own writes. */
  length: number;
  /** While set, the CHANGE_CHUNK pieces this object's writes touched (migration/disks.ts takes them). */
  changes: Set<number> | undefined;
  private fd: number;

  private constructor(readonly path: string, fd: number, readonly readOnly: boolean) {
    this.fd = fd;
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isBlockDevice()) {
      closeSync(fd);
      throw new StorageError('bad-spec', `${path} is not a regular file`);
    }
    this.length = st.size;
  }

  /** Opens an existing file. */
  static open(path: string, readOnly: boolean): HostFile {
    return new HostFile(path, openOrThrow(path, readOnly ? 'r' : 'r+'), readOnly);
  }

  /** Creates (or truncates) a file for writing. */
  static create(path: string): HostFile {
    return new HostFile(path, openOrThrow(path, 'w+'), false);
  }

  /**
   * Reads `length` bytes at `pos` into `into[at…]`; the part past the end of the file reads as
   * zeroes. An end of file before `length` (what this object knows of the file) means another
   * process truncated it: that is an error, not zeroes (a mirror then reads another member).
   */
  read(pos: number, into: Uint8Array, at = 0, length = into.length - at): void {
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(this.fd, into, at + done, length - done, pos + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw this.ioError('read', pos, err);
    }
    if (done < length) {
      if (pos + done < this.length) {
        throw new StorageError('io', `${this.path} was truncated to ${pos + done} bytes or fewer (it had ${this.length})`);
      }
      into.fill(0, at + done, at + length);
    }
  }

  write(pos: number, data: Uint8Array, at = 0, length = data.length - at): void {
    if (this.readOnly) throw new StorageError('read-only', `${this.path} is open read-only`);
    let done = 0;
    try {
      while (done < length) done += writeSync(this.fd, data, at + done, length - done, pos + done);
    } catch (err) {
      throw this.ioError('write', pos, err);
    }
    if (pos + length > this.length) this.length = pos + length;
    if (this.changes) this.mark(pos, length);
  }

  private mark(pos: number, length: number): void {
    for (let c = Math.floor(pos / CHANGE_CHUNK), last = Math.floor((pos + length - 1) / CHANGE_CHUNK); c <= last; c++) this.changes!.add(c);
  }

  /** Gathers `parts` into one pwritev (retrying the remainder after a short write). */
  writev(pos: number, parts: Uint8Array[]): void {
    if (this.readOnly) throw new StorageError('read-only', `${this.path} is open read-only`);
    let total = 0;
    for (const p of parts) total += p.length;
    let done = 0;
    try {
      done = writevSync(this.fd, parts, pos);
    } catch (err) {
      throw this.ioError('write', pos, err);
    }
    if (done < total) {
      // Rare: finish piece by piece from where the kernel stopped.
      let skip = done;
      for (const p of parts) {
        if (skip >= p.length) { skip -= p.length; continue; }
        this.write(pos + done, p, skip, p.length - skip);
        done += p.length - skip;
        skip = 0;
      }
    }
    if (pos + total > this.length) this.length = pos + total;
    if (this.changes && total > 0) this.mark(pos, total);
  }

  truncate(length: number): void {
    if (this.readOnly) throw new StorageError('read-only', `${this.path} is open read-only`);
    try {
      ftruncateSync(this.fd, length);
    } catch (err) {
      throw this.ioError('truncate', length, err);
    }
    this.length = length;
  }

  /** fdatasync: every completed write (data and the file size) is on stable storage afterwards. */
  sync(): void {
    if (this.readOnly) return;
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      throw this.ioError('flush', 0, err);
    }
  }

  /** Bytes the host file system really holds (st_blocks), as `qemu-img info` shows as disk size. */
  allocatedBytes(): number {
    return fstatSync(this.fd).blocks * 512;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private ioError(op: string, pos: number, err: unknown): StorageError {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return new StorageError('io', `Cannot ${op} ${this.path} at offset ${pos} (${code})`, { cause: err });
  }
}

function openOrThrow(path: string, flags: string): number {
  try {
    return openSync(path, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StorageError('not-found', `${path}: No such file`, { cause: err });
    if (code === 'EISDIR') throw new StorageError('bad-spec', `${path} is a directory`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new StorageError('io', `${path}: Permission denied${flags === 'r' ? '' : ' for writing'}`, { cause: err });
    }
    throw new StorageError('io', `Cannot open ${path} (${code ?? 'error'})`, { cause: err });
  }
}
