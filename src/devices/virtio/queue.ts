/**
 * The split virtqueue, device side (VIRTIO 1.x §2.7 "Split Virtqueues").
 *
 * Devices use three calls: pop(chain) takes the next available descriptor chain into a reusable
 * DescChain, push(head, written) returns it through the used ring, and the context's
 * signalUsed(queue) notifies the driver (suppression is decided here, by needsInterrupt()).
 *
 * Everything in guest memory is hostile. Ring addresses are checked to lie in RAM when the driver
 * sets QueueReady; each chain walk is bounded by a step budget (the queue size: the spec forbids
 * longer chains), so loops end; every descriptor's buffer is checked to lie in RAM. A malformed
 * chain breaks the queue: fail(reason) reports it once (the transport sets DEVICE_NEEDS_RESET) and
 * pop() returns false until reset. No allocation per request: chains are reused by the caller.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';

/** A descriptor table entry (§2.7.5 "The Virtqueue Descriptor Table"), little-endian. */
export const enum Desc {
  ADDR = 0, // le64 guest physical address
  LEN = 8, // le32
  FLAGS = 12, // le16 DescFlag
  NEXT = 14, // le16 index of the next descriptor when FLAGS has NEXT
  SIZE = 16,
}

export const enum DescFlag {
  NEXT = 1,
  /** Device-writable (otherwise device-readable). */
  WRITE = 2,
  /** The buffer is a table of descriptors (§2.7.5.3). */
  INDIRECT = 4,
}

/** Driver area (§2.7.6 "The Virtqueue Available Ring"): flags, idx, ring[size], used_event. */
export const enum Avail {
  FLAGS = 0, // le16; bit 0 VIRTQ_AVAIL_F_NO_INTERRUPT
  IDX = 2, // le16
  RING = 4, // le16 × size; then le16 used_event (EVENT_IDX)
  HEADER = 4,
  F_NO_INTERRUPT = 1,
}

/** Device area (§2.7.8 "The Virtqueue Used Ring"): flags, idx, ring[size] of {id, len}, avail_event. */
export const enum Used {
  FLAGS = 0, // le16; bit 0 VIRTQ_USED_F_NO_NOTIFY (we always want notifications: left 0)
  IDX = 2, // le16
  RING = 4, // {le32 id, le32 len} × size; then le16 avail_event (EVENT_IDX)
  ELEM_SIZE = 8,
  HEADER = 4,
}

/** Largest queue size the spec allows (§2.7 "Queue Size ... maximum 32768"). */
export const MAX_QUEUE_SIZE = 32768;

/**
 * One descriptor chain as a device sees it: `readable` device-readable segments followed by
 * device-writable ones (the spec's required order), each a guest physical range checked to be in
 * RAM. Reused across requests: size it once for the queue's largest size.
 */
export class DescChain {
  /** Head descriptor index: what push() returns to the driver. */
  head = 0;
  /** Segments in the chain. */
  count = 0;
  /** Segments [0, readable) are device-readable, [readable, count) device-writable. */
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Guest physical address of each segment (below 2^53; checked to be RAM). */
  readonly addr: Float64Array;
  readonly len: Uint32Array;

  constructor(readonly capacity: number) {
    this.addr = new Float64Array(capacity);
    this.len = new Uint32Array(capacity);
  }

  /** Copies device-readable bytes starting `from` bytes into the readable part; returns how many were copied. */
  read(mem: GuestMemory, from: number, into: Uint8Array): number {
    let done = 0;
    let skip = from;
    for (let i = 0; i < this.readable && done < into.length; i++) {
      const len = this.len[i]!;
      if (skip >= len) { skip -= len; continue; }
      const n = Math.min(len - skip, into.length - done);
      const off = mem.offset(this.addr[i]! + skip, n);
      if (off < 0) return done; // cannot happen: checked when the chain was read
      copy(mem.bytes, off, into, done, n);
      done += n;
      skip = 0;
    }
    return done;
  }

  /** Copies `data` into the device-writable part starting `from` bytes into it; returns how many were copied. */
  write(mem: GuestMemory, from: number, data: Uint8Array): number {
    let done = 0;
    let skip = from;
    for (let i = this.readable; i < this.count && done < data.length; i++) {
      const len = this.len[i]!;
      if (skip >= len) { skip -= len; continue; }
      const n = Math.min(len - skip, data.length - done);
      const pa = this.addr[i]! + skip;
      const off = mem.offset(pa, n);
      if (off < 0) return done;
      copy(data, done, mem.bytes, off, n);
      mem.wrote(pa, n);
      done += n;
      skip = 0;
    }
    return done;
  }
}

/** Copies n bytes; short copies (request headers, status) byte by byte so they allocate no views. */
function copy(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  if (n <= 64) {
    for (let k = 0; k < n; k++) dst[dstOff + k] = src[srcOff + k]!;
  } else {
    dst.set(src.subarray(srcOff, srcOff + n), dstOff);
  }
}

/** The queue's registers and position, for snapshots (plain JSON). */
export interface QueueState {
  size: number;
  ready: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  lastAvail: number;
  nextUsed: number;
  signalledUsed: number;
  signalledValid: boolean;
  broken: boolean;
}

const TWO32 = 2 ** 32;

export class VirtQueue {
  /** QueueNum: set by the driver, at most maxSize. */
  size: number;
  ready = false;
  /** Register halves as the driver wrote them (read back through the transport). */
  descLo = 0; descHi = 0;
  driverLo = 0; driverHi = 0;
  deviceLo = 0; deviceHi = 0;
  /** Negotiated ring features, set by the transport on FEATURES_OK. */
  indirect = false;
  eventIdx = false;
  /** Set once the driver handed us a malformed ring; cleared by reset(). */
  broken = false;

  /** Next avail ring slot to consume (free-running u16 as in the spec). */
  private lastAvail = 0;
  /** Next used idx to publish. */
  private nextUsed = 0;
  private signalledUsed = 0;
  private signalledValid = false;
  /** Byte offsets in mem.bytes of the three areas, valid while ready. */
  private descOff = 0;
  private availOff = 0;
  private usedOff = 0;

  /**
   * @param index queue number (for messages)
   * @param maxSize QueueNumMax (1..32768)
   * @param onError called once per broken queue with a one-line reason
   */
  constructor(readonly index: number, readonly maxSize: number, private readonly mem: GuestMemory, private readonly onError: (reason: string) => void) {
    if (!(Number.isInteger(maxSize) && maxSize >= 1 && maxSize <= MAX_QUEUE_SIZE)) throw new RangeError(`Invalid queue size ${maxSize}`);
    this.size = maxSize;
  }

  get descAddr(): number { return this.descLo + this.descHi * TWO32; }
  get driverAddr(): number { return this.driverLo + this.driverHi * TWO32; }
  get deviceAddr(): number { return this.deviceLo + this.deviceHi * TWO32; }

  /**
   * The rings' guest ranges [address, length] while ready: the device reads and writes them at the
   * offsets enable() took, without asking GuestMemory again (a snapshot saves these pages first).
   */
  rings(): [number, number][] {
    if (!this.ready) return [];
    const size = this.size;
    return [[this.descAddr, Desc.SIZE * size], [this.driverAddr, Avail.HEADER + 2 * size + 2], [this.deviceAddr, Used.HEADER + Used.ELEM_SIZE * size + 2]];
  }

  /** The driver wrote QueueReady = 1: checks size and ring placement. False (and fail()) when they are unusable. */
  enable(): boolean {
    const size = this.size;
    if (!(size >= 1 && size <= this.maxSize)) return this.fail(`queue size ${size} outside 1..${this.maxSize}`);
    const desc = this.mem.offset(this.descAddr, Desc.SIZE * size);
    const avail = this.mem.offset(this.driverAddr, Avail.HEADER + 2 * size + 2);
    const used = this.mem.offset(this.deviceAddr, Used.HEADER + Used.ELEM_SIZE * size + 2);
    if (desc < 0 || avail < 0 || used < 0) return this.fail('ring outside guest RAM');
    // Alignment the spec requires (§2.7 table "Virtqueue Part Alignment"); misaligned rings mean a confused driver.
    if (this.descAddr % 16 || this.driverAddr % 2 || this.deviceAddr % 4) return this.fail('misaligned ring');
    this.descOff = desc;
    this.availOff = avail;
    this.usedOff = used;
    this.ready = true;
    return true;
  }

  /** Back to the state after device reset (§2.4): not ready, size = max, positions 0. */
  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.descLo = this.descHi = this.driverLo = this.driverHi = this.deviceLo = this.deviceHi = 0;
    this.indirect = this.eventIdx = false;
    this.broken = false;
    this.lastAvail = this.nextUsed = this.signalledUsed = 0;
    this.signalledValid = false;
  }

  /** True when the driver has made buffers available that pop() has not taken. */
  hasAvailable(): boolean {
    return this.ready && !this.broken && this.availIdx() !== this.lastAvail;
  }

  /** How many chains the driver has made available that pop() has not taken (0 when not ready or broken). */
  availableCount(): number {
    if (!this.ready || this.broken) return 0;
    return (this.availIdx() - this.lastAvail) & 0xffff;
  }

  /** For a device waiting for more buffers than are available: with EVENT_IDX, asks the driver to notify on its next one. */
  notifyOnNext(): void {
    if (this.ready && !this.broken && this.eventIdx) this.setAvailEvent(this.availIdx());
  }

  /**
   * Takes the next available chain into `chain`. False when none is available, or when the
   * queue is (or just became) broken.
   */
  pop(chain: DescChain): boolean {
    if (!this.ready || this.broken) return false;
    const idx = this.availIdx();
    const pending = (idx - this.lastAvail) & 0xffff;
    if (pending === 0) {
      if (this.eventIdx) this.setAvailEvent(this.lastAvail);
      return false;
    }
    if (pending > this.size) return this.fail(`avail idx ${idx} is ${pending} ahead of the device (queue size ${this.size})`);
    const b = this.mem.bytes;
    const slot = this.availOff + Avail.RING + 2 * (this.lastAvail % this.size);
    const head = b[slot]! | (b[slot + 1]! << 8);
    if (!this.readChain(head, chain)) return false;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return true;
  }

  /** Gives back the chain pop() returned last, unused (the device will pop it again later, e.g. when throttled). */
  undoPop(): void {
    this.lastAvail = (this.lastAvail - 1) & 0xffff;
  }

  /** Reads the chain starting at descriptor `head` into `chain`. False (and fail()) when it is malformed. */
  readChain(head: number, chain: DescChain): boolean {
    const mem = this.mem;
    const b = mem.bytes;
    const size = this.size;
    if (head >= size) return this.fail(`head descriptor ${head} outside queue of ${size}`);
    if (chain.capacity < size) throw new RangeError('DescChain smaller than the queue'); // a device bug, not a guest one
    chain.head = head;
    chain.count = chain.readable = chain.readableBytes = chain.writableBytes = 0;
    let table = this.descOff;
    let tableLen = size;
    let i = head;
    let inIndirect = false;
    // Step budget: a chain has at most `size` descriptors (§2.7.5.3.1), plus one pointing at an indirect table.
    for (let steps = 0; ; steps++) {
      if (steps > size) return this.fail(`descriptor chain from ${head} longer than the queue (loop?)`);
      if (i >= tableLen) return this.fail(`descriptor index ${i} outside table of ${tableLen}`);
      const d = table + i * Desc.SIZE;
      const addrLo = (b[d]! | (b[d + 1]! << 8) | (b[d + 2]! << 16) | (b[d + 3]! << 24)) >>> 0;
      const addrHi = (b[d + 4]! | (b[d + 5]! << 8) | (b[d + 6]! << 16) | (b[d + 7]! << 24)) >>> 0;
      const len = (b[d + 8]! | (b[d + 9]! << 8) | (b[d + 10]! << 16) | (b[d + 11]! << 24)) >>> 0;
      const flags = b[d + 12]! | (b[d + 13]! << 8);
      const next = b[d + 14]! | (b[d + 15]! << 8);
      const addr = addrLo + addrHi * TWO32; // may exceed 2^53: mem.offset rejects it
      if (flags & DescFlag.INDIRECT) {
        if (!this.indirect) return this.fail('indirect descriptor without VIRTIO_F_INDIRECT_DESC');
        if (inIndirect) return this.fail('nested indirect descriptor');
        if (flags & DescFlag.NEXT) return this.fail('indirect descriptor with NEXT');
        if (chain.count !== 0) return this.fail('indirect descriptor inside a chain');
        if (len === 0 || len % Desc.SIZE !== 0) return this.fail(`indirect table length ${len}`);
        const off = mem.offset(addr, len);
        if (off < 0) return this.fail('indirect table outside guest RAM');
        table = off;
        tableLen = len / Desc.SIZE;
        i = 0;
        inIndirect = true;
        continue;
      }
      if (chain.count >= size) return this.fail(`descriptor chain from ${head} longer than the queue`);
      if (mem.offset(addr, len) < 0) return this.fail(`buffer 0x${addr.toString(16)}+${len} outside guest RAM`);
      const n = chain.count++;
      chain.addr[n] = addr;
      chain.len[n] = len;
      if (flags & DescFlag.WRITE) {
        chain.writableBytes += len;
      } else {
        if (n !== chain.readable) return this.fail('device-readable descriptor after a writable one');
        chain.readable++;
        chain.readableBytes += len;
      }
      if (!(flags & DescFlag.NEXT)) return true;
      i = next;
    }
  }

  /** Returns chain `head` to the driver with `written` bytes written into its writable part. */
  push(head: number, written: number): void {
    if (!this.ready || this.broken) return;
    const b = this.mem.bytes;
    const elem = Used.RING + Used.ELEM_SIZE * (this.nextUsed % this.size);
    writeU32(b, this.usedOff + elem, head);
    writeU32(b, this.usedOff + elem + 4, written);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    const idx = this.usedOff + Used.IDX;
    b[idx] = this.nextUsed;
    b[idx + 1] = this.nextUsed >>> 8;
    this.mem.wrote(this.deviceAddr + elem, Used.ELEM_SIZE);
    this.mem.wrote(this.deviceAddr + Used.IDX, 2);
  }

  /**
   * Whether the driver wants an interrupt for the used entries pushed since the last one
   * (§2.7.7.2 / §2.7.10: used_event with EVENT_IDX, else the NO_INTERRUPT flag). Records them as signalled.
   */
  needsInterrupt(): boolean {
    const b = this.mem.bytes;
    const old = this.signalledUsed;
    const now = this.nextUsed;
    const valid = this.signalledValid;
    this.signalledUsed = now;
    this.signalledValid = true;
    if (!this.eventIdx) return !((b[this.availOff + Avail.FLAGS]! | (b[this.availOff + Avail.FLAGS + 1]! << 8)) & Avail.F_NO_INTERRUPT);
    if (!valid) return true;
    const e = this.availOff + Avail.RING + 2 * this.size;
    const usedEvent = b[e]! | (b[e + 1]! << 8);
    // vring_need_event: interrupt when used_event lies in [old, now).
    return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
  }

  save(): QueueState {
    return {
      size: this.size, ready: this.ready,
      desc: [this.descLo, this.descHi], driver: [this.driverLo, this.driverHi], device: [this.deviceLo, this.deviceHi],
      lastAvail: this.lastAvail, nextUsed: this.nextUsed,
      signalledUsed: this.signalledUsed, signalledValid: this.signalledValid, broken: this.broken,
    };
  }

  /** Takes save()'s value; ring features (indirect, eventIdx) come from the transport's negotiated features. */
  restore(s: QueueState): void {
    this.reset();
    this.size = s.size;
    [this.descLo, this.descHi] = s.desc;
    [this.driverLo, this.driverHi] = s.driver;
    [this.deviceLo, this.deviceHi] = s.device;
    if (s.ready && !s.broken) this.enable();
    this.ready = s.ready && this.ready;
    this.broken = s.broken;
    this.lastAvail = s.lastAvail & 0xffff;
    this.nextUsed = s.nextUsed & 0xffff;
    this.signalledUsed = s.signalledUsed & 0xffff;
    this.signalledValid = s.signalledValid;
  }

  private availIdx(): number {
    const b = this.mem.bytes;
    return b[this.availOff + Avail.IDX]! | (b[this.availOff + Avail.IDX + 1]! << 8);
  }

  private setAvailEvent(v: number): void {
    const b = this.mem.bytes;
    const e = this.usedOff + Used.RING + Used.ELEM_SIZE * this.size;
    if ((b[e]! | (b[e + 1]! << 8)) === v) return;
    b[e] = v;
    b[e + 1] = v >>> 8;
    this.mem.wrote(this.deviceAddr + Used.RING + Used.ELEM_SIZE * this.size, 2);
  }

  /** Breaks the queue (reported once); returns false for `return this.fail(...)`. */
  private fail(reason: string): false {
    if (!this.broken) {
      this.broken = true;
      this.onError(`queue ${this.index}: ${reason}`);
    }
    return false;
  }
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v; b[o + 1] = v >>> 8; b[o + 2] = v >>> 16; b[o + 3] = v >>> 24;
}
