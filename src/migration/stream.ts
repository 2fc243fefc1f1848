/**
 * The migration stream: frames over one TCP connection, each checked on its own.
 *
 *   0  tag u8 (Tag)
 *   1  payload length u32 (at most MAX_FRAME)
 *   5  CRC-32 of the payload u32
 *   9  payload
 *
 * Source → target: HELLO (JSON: version, token, the VM's shape and its owner's spec), PAGES (runs
 * of [page number u32, 4096 bytes]), DISK and DISK_END (block migration of overlays, disks.ts),
 * FLOW (JSON: one user-network TCP flow that moves, relay.ts),
 * STATE (JSON: the board's state), HARTS (the harts' bytes), END. Target → source: READY (its
 * board is built), RUNNING (the guest runs there), ERROR (JSON message). After RUNNING, when flows
 * moved, both ways: FLOW_DATA, FLOW_END, FLOW_RESET, FLOW_PAUSE, FLOW_RESUME (flow id u32, then
 * the bytes for DATA) until the last flow has closed. A frame that fails its CRC, an unknown tag
 * or a length over MAX_FRAME ends the migration: nothing of a corrupt stream is used.
 */
import type { Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { GasangError } from '../util/errors.js';

export const enum Tag {
  HELLO = 1, PAGES = 2, STATE = 3, HARTS = 4, END = 5, FLOW = 6, DISK = 7, DISK_END = 8, READY = 16, RUNNING = 17, ERROR = 18,
  FLOW_DATA = 32, FLOW_END = 33, FLOW_RESET = 34, FLOW_PAUSE = 35, FLOW_RESUME = 36,
}
export const STREAM_VERSION = 2;
const HEADER = 9;
/** Largest payload: a PAGES frame of 256 pages, or the board's state. */
export const MAX_FRAME = 16 << 20;
const KNOWN = new Set<number>([Tag.HELLO, Tag.PAGES, Tag.STATE, Tag.HARTS, Tag.END, Tag.FLOW, Tag.DISK, Tag.DISK_END, Tag.READY, Tag.RUNNING, Tag.ERROR,
  Tag.FLOW_DATA, Tag.FLOW_END, Tag.FLOW_RESET, Tag.FLOW_PAUSE, Tag.FLOW_RESUME]);

export class MigrationError extends GasangError {
  constructor(message: string, options?: { cause?: unknown }) { super('migration', message, options); }
}

export interface Frame { tag: Tag; payload: Uint8Array }

/** Frames out: write() queues; drained() waits for the socket to take what was queued. */
export class FrameWriter {
  constructor(private readonly socket: Socket) {}

  write(tag: Tag, payload: Uint8Array = new Uint8Array(0)): void {
    const head = Buffer.alloc(HEADER);
    head[0] = tag;
    head.writeUInt32LE(payload.length, 1);
    head.writeUInt32LE(crc32(payload) >>> 0, 5);
    this.socket.write(head);
    this.socket.write(payload);
  }

  json(tag: Tag, value: unknown): void { this.write(tag, Buffer.from(JSON.stringify(value))); }

  /** Resolves once the socket's buffer is below its high-water mark again. */
  async drained(): Promise<void> {
    if (!this.socket.writableNeedDrain) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => { this.socket.off('drain', ok); this.socket.off('close', closed); if (err) reject(err); else resolve(); };
      const ok = (): void => done();
      const closed = (): void => done(new MigrationError('The connection closed'));
      this.socket.on('drain', ok);
      this.socket.on('close', closed);
    });
  }
}

/** Frames in, checked; next() rejects when the stream is corrupt, the peer closes, or `timeoutMs` passes (0: no limit). */
export class FrameReader {
  private buf = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(socket: Socket) {
    socket.on('data', (d: Buffer) => this.take(d));
    socket.on('close', () => this.fail(new MigrationError('The connection closed')));
    socket.on('error', err => this.fail(new MigrationError(`The connection failed: ${err.message}`, { cause: err })));
  }

  next(timeoutMs: number): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => { this.waiter = undefined; reject(new MigrationError(`No answer within ${timeoutMs} ms`)); }, timeoutMs) : undefined;
      this.waiter = { resolve: fr => { clearTimeout(timer); resolve(fr); }, reject: e => { clearTimeout(timer); reject(e); } };
    });
  }

  /** The next frame, which must be `tag` (an ERROR frame from the peer rejects with its message). */
  async expect(tag: Tag, timeoutMs: number): Promise<Uint8Array> {
    const f = await this.next(timeoutMs);
    if (f.tag === Tag.ERROR) throw new MigrationError(`The other side refused: ${parseJson<{ message?: string }>(f.payload).message ?? 'no reason'}`);
    if (f.tag !== tag) throw new MigrationError(`Unexpected frame ${f.tag} where ${tag} belongs`);
    return f.payload;
  }

  private take(d: Buffer): void {
    if (this.failure) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= HEADER) {
      const tag = this.buf[0]!, length = this.buf.readUInt32LE(1), crc = this.buf.readUInt32LE(5);
      if (!KNOWN.has(tag) || length > MAX_FRAME) return this.fail(new MigrationError(`Corrupt stream: frame tag ${tag}, length ${length}`));
      if (this.buf.length < HEADER + length) return;
      const payload = new Uint8Array(this.buf.subarray(HEADER, HEADER + length));
      this.buf = this.buf.subarray(HEADER + length);
      if ((crc32(payload) >>> 0) !== crc) return this.fail(new MigrationError(`Corrupt stream: a frame (tag ${tag}) fails its checksum`));
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w.resolve({ tag, payload });
      else this.frames.push({ tag, payload });
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }
}

export function parseJson<T>(b: Uint8Array): Partial<T> {
  try {
    return JSON.parse(Buffer.from(b).toString('utf8')) as Partial<T>;
  } catch {
    throw new MigrationError('Corrupt stream: a frame is not JSON');
  }
}
