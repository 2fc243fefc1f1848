/**
 * Mirrored volume (RAID-1): every member holds the whole volume (size = the smallest member).
 * Writes, flushes, discards and write-zeroes go to every live member; reads come from the first
 * live member. A member that throws is failed for good (no resync): it is reported once, through
 * onMemberFailed and one log line naming the survivor, and the request is retried on / continues
 * with the other members. When no member is left, requests fail with StorageError 'io'.
 *
 * A member whose host file vanishes keeps "working" through its open descriptor (reads of an
 * unlinked file succeed; reads past a truncation return zeroes), so the host files named in
 * `memberPaths` are also watched: stat'ed at most every `watchIntervalMs`, before a request.
 */
import { statSync } from 'node:fs';
import { StorageError, type BlockDevice } from '../block.js';
import { VolumeBase, type VolumeMode, type VolumeOptions } from './volume.js';

/** What a watched host file looked like when last checked. */
interface WatchedFile {
  path: string;
  dev: number;
  ino: number;
  size: number;
}

const enum Op { Write, Flush, Discard, WriteZeroes, WriteZeroesUnmap }

export class MirrorVolume extends VolumeBase {
  readonly mode: VolumeMode = 'mirror';
  readonly size: number;
  private readonly live: Uint8Array;
  private liveCount: number;
  private readonly watched: WatchedFile[] | undefined;
  private readonly watchIntervalMs: number;
  private nextWatchAt = 0;
  private readonly onMemberFailed: ((index: number, error: Error) => void) | undefined;
  private readonly log: (line: string) => void;

  constructor(members: readonly BlockDevice[], opts: VolumeOptions) {
    super(members, opts.readOnly ?? false);
    let min = Infinity;
    for (const m of members) min = Math.min(min, m.size);
    this.size = min;
    this.live = new Uint8Array(members.length).fill(1);
    this.liveCount = members.length;
    this.onMemberFailed = opts.onMemberFailed;
    this.log = opts.log ?? ((line) => console.warn(line));
    const interval = opts.watchIntervalMs ?? 1000;
    if (!(interval >= 0 && interval < Infinity)) throw new StorageError('bad-spec', `Invalid watch interval ${interval} ms`);
    this.watchIntervalMs = interval;
    this.watched = opts.memberPaths?.map((path) => {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) throw new StorageError('not-found', `${path}: no such file`);
      return { path, dev: st.dev, ino: st.ino, size: st.size };
    });
  }

  override liveMembers(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.live.length; i++) if (this.live[i]) out.push(i);
    return out;
  }

  read(offset: number, into: Uint8Array): void {
    this.checkRange(offset, into.length);
    this.watch();
    let lastError: unknown;
    for (let i = this.firstLive(); i >= 0; i = this.firstLive()) {
      try {
        this.members[i]!.read(offset, into);
        return;
      } catch (err) {
        lastError = err;
        this.fail(i, err);
      }
    }
    throw this.noMemberLeft(lastError);
  }

  write(offset: number, data: Uint8Array): void {
    this.checkWrite(offset, data.length);
    this.toEveryMember(Op.Write, offset, data.length, data);
  }

  flush(): void {
    this.toEveryMember(Op.Flush, 0, 0, undefined);
  }

  discard(offset: number, length: number): void {
    this.checkWrite(offset, length);
    this.toEveryMember(Op.Discard, offset, length, undefined);
  }

  writeZeroes(offset: number, length: number, unmap: boolean): void {
    this.checkWrite(offset, length);
    this.toEveryMember(unmap ? Op.WriteZeroesUnmap : Op.WriteZeroes, offset, length, undefined);
  }

  override close(): void {
    let first: unknown;
    for (let i = 0; i < this.members.length; i++) {
      try {
        this.members[i]!.close();
      } catch (err) {
        if (this.live[i]) first ??= err;   // a failed member may well fail to close too
      }
    }
    if (first !== undefined) throw first;
  }

  /** Runs one operation on every live member; succeeds if at least one member did. */
  private toEveryMember(op: Op, offset: number, length: number, data: Uint8Array | undefined): void {
    this.watch();
    let done = 0;
    let lastError: unknown;
    for (let i = 0; i < this.live.length; i++) {
      if (!this.live[i]) continue;
      const m = this.members[i]!;
      try {
        switch (op) {
          case Op.Write: m.write(offset, data!); break;
          case Op.Flush: m.flush(); break;
          case Op.Discard: m.discard(offset, length); break;
          case Op.WriteZeroes: m.writeZeroes(offset, length, false); break;
          case Op.WriteZeroesUnmap: m.writeZeroes(offset, length, true); break;
        }
        done++;
      } catch (err) {
        lastError = err;
        this.fail(i, err);
      }
    }
    if (done === 0) throw this.noMemberLeft(lastError);
  }

  private firstLive(): number {
    return this.live.indexOf(1);
  }

  /** Fails the watched members whose host file is gone, was replaced, or shrank. */
  private watch(): void {
    const watched = this.watched;
    if (!watched || this.liveCount === 0) return;
    const now = performance.now();
    if (now < this.nextWatchAt) return;
    this.nextWatchAt = now + this.watchIntervalMs;
    for (let i = 0; i < watched.length; i++) {
      if (!this.live[i]) continue;
      const w = watched[i]!;
      const st = statSync(w.path, { throwIfNoEntry: false });
      if (!st) {
        this.fail(i, new StorageError('io', `${w.path} has disappeared`));
      } else if (st.dev !== w.dev || st.ino !== w.ino) {
        this.fail(i, new StorageError('io', `${w.path} was replaced by another file`));
      } else if (st.size < w.size) {
        this.fail(i, new StorageError('io', `${w.path} shrank from ${w.size} to ${st.size} bytes`));
      } else {
        w.size = st.size;
      }
    }
  }

  private fail(index: number, cause: unknown): void {
    if (!this.live[index]) return;
    this.live[index] = 0;
    this.liveCount--;
    const error = cause instanceof Error ? cause : new StorageError('io', String(cause));
    const survivor = this.firstLive();
    this.log(`Mirror member ${this.memberName(index)} failed (${error.message}); ` +
      (survivor >= 0 ? `continuing on member ${this.memberName(survivor)}` : 'no member is left'));
    this.onMemberFailed?.(index, error);
  }

  private memberName(i: number): string {
    const path = this.watched?.[i]?.path;
    return path === undefined ? `#${i}` : `#${i} (${path})`;
  }

  private noMemberLeft(cause: unknown): StorageError {
    return new StorageError('io', 'Every member of the mirror has failed', { cause });
  }
}
