/**
 * A single-producer, single-consumer ring of frames in a SharedArrayBuffer, one per direction
 * between a VM thread and the switch. Frames are written once into the ring and read in place by
 * the consumer (no copy, no message per frame); the producer publishes with an atomic store of
 * the tail, the consumer frees with an atomic store of the head. A consumer with nothing to read
 * sleeps in Atomics.waitAsync on the tail word and the producer wakes it with Atomics.notify,
 * only when it said it was waiting.
 *
 * Bounded: when a frame does not fit, push() says so and the producer drops it (counted by its
 * caller), as a NIC's full ring does. A consumer that cannot take a frame (the guest has no
 * receive buffers) leaves it first in the ring until resume(); the producer then fills the ring
 * and drops, so nothing grows anywhere.
 *
 * Layout of the buffer (byte offsets; control words on separate 64-byte lines so the two threads
 * do not share a cache line):
 *   0   i32 head      consumer's position, bytes, free-running modulo 2^32
 *   64  i32 tail      producer's position
 *   128 i32 waiting   1 while the consumer sleeps (only then does the producer notify)
 *   256 data          `capacity` bytes (a power of two) of records
 * A record, 8-byte aligned, never split across the end of the data (a WRAP marker skips to 0):
 *   0 u32 le length of the frame (WRAP = 0xffffffff: go back to the start)
 *   4 u8 flags (1 needsCsum, 2 dataValid)   5 u8 gso   6 u16 le hdrLen   8 u16 le gsoSize
 *   10 u16 le csumStart   12 u16 le csumOffset   14 u16 reserved   16 the frame's bytes
 */
import { plainFrame, type FrameMeta, type Gso } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';

export const enum RingCtl { HEAD = 0, TAIL = 16, WAITING = 32 }
export const RING_DATA = 256;
export const enum Rec { LEN = 0, FLAGS = 4, GSO = 5, HDR_LEN = 6, GSO_SIZE = 8, CSUM_START = 10, CSUM_OFFSET = 12, SIZE = 16 }
const WRAP = 0xffff_ffff;
const F_NEEDS_CSUM = 1, F_DATA_VALID = 2;
export const MIN_RING_BYTES = 256 * 1024;
export const DEFAULT_RING_BYTES = 1 << 20;
/** Frames one drain hands over before it yields to the event loop, so one busy port cannot starve the others. */
const DRAIN_BUDGET = 256;

/** Receives a frame (valid during the call only); false: not now, keep it first and wait for resume(). */
export type Take = (frame: Uint8Array, meta: FrameMeta) => boolean;

/** The producing end of a one-way frame channel. */
export interface FrameTx {
  /** Queues a copy of the frame; false when there is no room (the caller drops and counts it). */
  push(frame: Uint8Array, meta: FrameMeta): boolean;
}

/** The consuming end of a one-way frame channel. */
export interface FrameRx {
  /** Starts handing frames to `take` as they arrive. */
  start(take: Take): void;
  /** After `take` returned false: hands over the kept frame and the rest. */
  resume(): void;
  close(): void;
  /** Records found inconsistent (never written by a correct producer), skipped with what followed them. */
  readonly corrupt: number;
}

export const recordSize = (len: number): number => (Rec.SIZE + len + 7) & ~7;

export function writeRecordHeader(dv: DataView, at: number, len: number, m: FrameMeta): void {
  dv.setUint32(at + Rec.LEN, len, true);
  dv.setUint8(at + Rec.FLAGS, (m.needsCsum ? F_NEEDS_CSUM : 0) | (m.dataValid ? F_DATA_VALID : 0));
  dv.setUint8(at + Rec.GSO, m.gso);
  dv.setUint16(at + Rec.HDR_LEN, m.hdrLen, true);
  dv.setUint16(at + Rec.GSO_SIZE, m.gsoSize, true);
  dv.setUint16(at + Rec.CSUM_START, m.csumStart, true);
  dv.setUint16(at + Rec.CSUM_OFFSET, m.csumOffset, true);
  dv.setUint16(at + 14, 0, true);
}

/** Fills `m` from a record header; returns the frame's length. */
export function readRecordHeader(dv: DataView, at: number, m: FrameMeta): number {
  const flags = dv.getUint8(at + Rec.FLAGS);
  m.needsCsum = (flags & F_NEEDS_CSUM) !== 0;
  m.dataValid = (flags & F_DATA_VALID) !== 0;
  m.gso = dv.getUint8(at + Rec.GSO) as Gso;
  m.hdrLen = dv.getUint16(at + Rec.HDR_LEN, true);
  m.gsoSize = dv.getUint16(at + Rec.GSO_SIZE, true);
  m.csumStart = dv.getUint16(at + Rec.CSUM_START, true);
  m.csumOffset = dv.getUint16(at + Rec.CSUM_OFFSET, true);
  return dv.getUint32(at + Rec.LEN, true);
}

/** A ring buffer of `bytes` bytes of data (a power of two, at least MIN_RING_BYTES). */
export function createRing(bytes = DEFAULT_RING_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(RING_DATA + bytes);
}

/** The ring's data capacity, or -1 when `sab` is not a ring's buffer. */
export function ringCapacity(sab: unknown): number {
  if (!(sab instanceof SharedArrayBuffer)) return -1;
  const cap = sab.byteLength - RING_DATA;
  return cap >= MIN_RING_BYTES && (cap & (cap - 1)) === 0 && cap <= 1 << 30 ? cap : -1;
}

/** The views both ends keep over one ring's shared buffer. */
abstract class RingView {
  protected readonly i32: Int32Array;
  protected readonly bytes: Uint8Array;
  protected readonly dv: DataView;
  protected readonly cap: number;

  constructor(sab: SharedArrayBuffer) {
    this.cap = ringCapacity(sab);
    if (this.cap < 0) throw new RangeError('not a ring buffer');
    this.i32 = new Int32Array(sab, 0, RING_DATA / 4);
    this.bytes = new Uint8Array(sab, RING_DATA);
    this.dv = new DataView(sab, RING_DATA);
  }
}

export class RingWriter extends RingView implements FrameTx {
  private tail: number;

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.tail = Atomics.load(this.i32, RingCtl.TAIL);
  }

  push(frame: Uint8Array, meta: FrameMeta): boolean {
    const len = frame.length;
    if (len > MAX_FRAME) return false;
    const size = recordSize(len);
    const cap = this.cap;
    const used = (this.tail - Atomics.load(this.i32, RingCtl.HEAD)) >>> 0;
    let at = this.tail & (cap - 1);
    const skip = cap - at < size ? cap - at : 0;
    if (used + skip + size > cap) return false;
    if (skip) {
      this.dv.setUint32(at + Rec.LEN, WRAP, true);
      at = 0;
    }
    writeRecordHeader(this.dv, at, len, meta);
    this.bytes.set(frame, at + Rec.SIZE);
    this.tail = (this.tail + skip + size) | 0;
    Atomics.store(this.i32, RingCtl.TAIL, this.tail);
    if (Atomics.load(this.i32, RingCtl.WAITING) !== 0) Atomics.notify(this.i32, RingCtl.TAIL);
    return true;
  }
}

export class RingReader extends RingView implements FrameRx {
  private readonly meta = plainFrame();
  private head: number;
  private take: Take | undefined;
  private blocked = false;
  private closed = false;
  private sleeping = false;
  corrupt = 0;

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.head = Atomics.load(this.i32, RingCtl.HEAD);
  }

  start(take: Take): void {
    this.take = take;
    this.drain();
  }

  resume(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (!this.sleeping) this.drain();
  }

  close(): void {
    this.closed = true;
    Atomics.notify(this.i32, RingCtl.TAIL); // ends a pending waitAsync
  }

  private readonly woken = (): void => {
    this.sleeping = false;
    Atomics.store(this.i32, RingCtl.WAITING, 0);
    this.drain();
  };

  private readonly drain = (): void => {
    const take = this.take;
    if (this.closed || this.blocked || !take) return;
    const i32 = this.i32, cap = this.cap;
    for (;;) {
      let tail = Atomics.load(i32, RingCtl.TAIL);
      for (let budget = DRAIN_BUDGET; this.head !== tail; budget--) {
        if (budget === 0) { setImmediate(this.drain); return; }
        const at = this.head & (cap - 1);
        const len = readRecordHeader(this.dv, at, this.meta);
        const avail = (tail - this.head) >>> 0;
        if (len === WRAP && cap - at <= avail) {
          this.head = (this.head + cap - at) | 0;
          Atomics.store(i32, RingCtl.HEAD, this.head);
          continue;
        }
        const size = recordSize(len);
        if (len > MAX_FRAME || size > avail || at + size > cap) {
          // Only a broken producer writes this: skip everything published so far.
          this.corrupt++;
          this.head = tail;
          Atomics.store(i32, RingCtl.HEAD, this.head);
          break;
        }
        if (!take(this.bytes.subarray(at + Rec.SIZE, at + Rec.SIZE + len), this.meta)) {
          this.blocked = true;
          return;
        }
        if (this.closed) return;
        this.head = (this.head + size) | 0;
        Atomics.store(i32, RingCtl.HEAD, this.head);
        if (this.head === tail) tail = Atomics.load(i32, RingCtl.TAIL);
      }
      // Empty: sleep until the producer moves the tail (waitAsync returns at once if it already has).
      Atomics.store(i32, RingCtl.WAITING, 1);
      const w = Atomics.waitAsync(i32, RingCtl.TAIL, this.head);
      if (w.async) {
        this.sleeping = true;
        void w.value.then(this.woken);
        return;
      }
      Atomics.store(i32, RingCtl.WAITING, 0);
      if (this.closed) return;
    }
  };
}
