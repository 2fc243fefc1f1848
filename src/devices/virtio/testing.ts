/**
 * A virtio driver for tests: guest RAM in a host buffer (with guard bytes on both sides, to prove
 * devices never write outside RAM), the real virtio-mmio transport in front of a device, and the
 * driver side of split queues, programmed through the transport's registers as Linux does.
 */
import { GuestMemory } from '../../memory/guest-memory.js';
import type { VirtioDevice } from './device.js';
import { Reg, Status, VirtioMmio } from './mmio.js';
import { Avail, Desc, DescFlag, Used } from './queue.js';

export const TEST_RAM_BASE = 0x8000_0000;
const GUARD = 4096;
const GUARD_BYTE = 0xa5;

/** One buffer of a chain as the driver describes it. */
export interface TestBuffer {
  addr: number;
  len: number;
  /** Device-writable. */
  write?: boolean;
}

export interface DriverQueue {
  size: number;
  desc: number;
  avail: number;
  used: number;
  nextDesc: number;
  availIdx: number;
  lastUsed: number;
}

export class TestDriver {
  readonly host: Uint8Array;
  readonly mem: GuestMemory;
  readonly transport: VirtioMmio;
  readonly queues: DriverQueue[] = [];
  irq = false;
  irqRaises = 0;
  readonly logged: string[] = [];
  private heap: number;

  constructor(readonly device: VirtioDevice, ramBytes = 1 << 20) {
    this.host = new Uint8Array(GUARD + ramBytes + GUARD).fill(GUARD_BYTE);
    this.host.fill(0, GUARD, GUARD + ramBytes);
    this.mem = new GuestMemory(this.host.subarray(GUARD, GUARD + ramBytes), TEST_RAM_BASE);
    this.transport = new VirtioMmio({
      device,
      mem: this.mem,
      irq: level => { if (level && !this.irq) this.irqRaises++; this.irq = level; },
      log: line => this.logged.push(line),
    });
    this.heap = TEST_RAM_BASE + ramBytes / 2; // rings below, buffers above
  }

  /** True when nothing was written to the guard bytes around RAM. */
  guardsIntact(): boolean {
    const h = this.host;
    for (let i = 0; i < GUARD; i++) if (h[i] !== GUARD_BYTE || h[h.length - 1 - i] !== GUARD_BYTE) return false;
    return true;
  }

  reg(offset: number): number { return this.transport.read(offset, 4); }
  setReg(offset: number, value: number): void { this.transport.write(offset, 4, value >>> 0); }

  /** Offered features as [lo, hi]. */
  offered(): [number, number] {
    this.setReg(Reg.DEVICE_FEATURES_SEL, 0);
    const lo = this.reg(Reg.DEVICE_FEATURES);
    this.setReg(Reg.DEVICE_FEATURES_SEL, 1);
    return [lo, this.reg(Reg.DEVICE_FEATURES)];
  }

  /**
   * Linux's probe sequence (§3.1.1): reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queues, DRIVER_OK.
   * `features` defaults to everything offered; `sizes` to each queue's maximum.
   */
  init(opts: { features?: [number, number]; without?: number; sizes?: number[] } = {}): void {
    this.setReg(Reg.STATUS, 0);
    this.setReg(Reg.STATUS, Status.ACKNOWLEDGE);
    this.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER);
    const [lo, hi] = opts.features ?? this.offered();
    this.setReg(Reg.DRIVER_FEATURES_SEL, 0);
    this.setReg(Reg.DRIVER_FEATURES, lo & ~(opts.without ?? 0));
    this.setReg(Reg.DRIVER_FEATURES_SEL, 1);
    this.setReg(Reg.DRIVER_FEATURES, hi);
    this.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    if (!(this.reg(Reg.STATUS) & Status.FEATURES_OK)) throw new Error('FEATURES_OK refused');
    let ring = TEST_RAM_BASE + 0x1000;
    this.queues.length = 0;
    for (let i = 0; i < this.device.queueMaxSizes.length; i++) {
      this.setReg(Reg.QUEUE_SEL, i);
      const size = opts.sizes?.[i] ?? this.reg(Reg.QUEUE_NUM_MAX);
      const desc = ring;
      const avail = desc + Desc.SIZE * size;
      const used = align(avail + Avail.HEADER + 2 * size + 2, 4);
      ring = align(used + Used.HEADER + Used.ELEM_SIZE * size + 2, 4096);
      this.mem.view(desc, ring - desc)!.fill(0); // fresh rings, as a driver allocates them
      this.setReg(Reg.QUEUE_NUM, size);
      this.setReg(Reg.QUEUE_DESC_LOW, desc);
      this.setReg(Reg.QUEUE_DESC_HIGH, 0);
      this.setReg(Reg.QUEUE_DRIVER_LOW, avail);
      this.setReg(Reg.QUEUE_DRIVER_HIGH, 0);
      this.setReg(Reg.QUEUE_DEVICE_LOW, used);
      this.setReg(Reg.QUEUE_DEVICE_HIGH, 0);
      this.setReg(Reg.QUEUE_READY, 1);
      this.queues.push({ size, desc, avail, used, nextDesc: 0, availIdx: 0, lastUsed: 0 });
    }
    this.setReg(Reg.STATUS, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
  }

  /** A fresh buffer in guest RAM (bump allocator), optionally filled. */
  alloc(len: number, fill?: Uint8Array): number {
    const addr = this.heap;
    this.heap = align(this.heap + len, 16);
    if (this.heap > TEST_RAM_BASE + this.mem.size) throw new Error('Test RAM exhausted');
    if (fill) this.mem.write(addr, fill);
    return addr;
  }

  bytes(addr: number, len: number): Uint8Array { return this.mem.view(addr, len)!.slice(); }

  /** Writes descriptor `i` of a table at `table`. */
  writeDesc(table: number, i: number, addr: number, len: number, flags: number, next: number): void {
    const d = table + i * Desc.SIZE;
    this.mem.writeU32(d + Desc.ADDR, addr % 2 ** 32);
    this.mem.writeU32(d + Desc.ADDR + 4, Math.floor(addr / 2 ** 32));
    this.mem.writeU32(d + Desc.LEN, len);
    this.mem.writeU16(d + Desc.FLAGS, flags);
    this.mem.writeU16(d + Desc.NEXT, next);
  }

  /** Puts a chain of `buffers` in queue `qi` (direct, or through one indirect table) and makes it available; returns its head. */
  submit(qi: number, buffers: TestBuffer[], opts: { indirect?: boolean } = {}): number {
    const q = this.queues[qi]!;
    const head = q.nextDesc;
    if (opts.indirect) {
      const table = this.alloc(Desc.SIZE * buffers.length);
      buffers.forEach((b, i) => this.writeDesc(table, i, b.addr, b.len, (b.write ? DescFlag.WRITE : 0) | (i + 1 < buffers.length ? DescFlag.NEXT : 0), i + 1));
      this.writeDesc(q.desc, head, table, Desc.SIZE * buffers.length, DescFlag.INDIRECT, 0);
      q.nextDesc = (head + 1) % q.size;
    } else {
      buffers.forEach((b, i) => {
        const d = (head + i) % q.size;
        this.writeDesc(q.desc, d, b.addr, b.len, (b.write ? DescFlag.WRITE : 0) | (i + 1 < buffers.length ? DescFlag.NEXT : 0), (d + 1) % q.size);
      });
      q.nextDesc = (head + buffers.length) % q.size;
    }
    this.makeAvailable(qi, head);
    return head;
  }

  /** Adds `head` to the avail ring and bumps its idx. */
  makeAvailable(qi: number, head: number): void {
    const q = this.queues[qi]!;
    this.mem.writeU16(q.avail + Avail.RING + 2 * (q.availIdx % q.size), head);
    q.availIdx = (q.availIdx + 1) & 0xffff;
    this.mem.writeU16(q.avail + Avail.IDX, q.availIdx);
  }

  kick(qi: number): void { this.setReg(Reg.QUEUE_NOTIFY, qi); }

  /** Used entries published since the last call; re-arms the used-buffer interrupt. */
  takeUsed(qi: number): { id: number; len: number }[] {
    const q = this.queues[qi]!;
    const idx = this.mem.readU16(q.used + Used.IDX);
    const out: { id: number; len: number }[] = [];
    while (q.lastUsed !== idx) {
      const e = q.used + Used.RING + Used.ELEM_SIZE * (q.lastUsed % q.size);
      out.push({ id: this.mem.readU32(e), len: this.mem.readU32(e + 4) });
      q.lastUsed = (q.lastUsed + 1) & 0xffff;
    }
    // As Linux's virtqueue_enable_cb: interrupt me at the next used entry (read only with EVENT_IDX).
    this.mem.writeU16(q.avail + Avail.RING + 2 * q.size, q.lastUsed);
    return out;
  }

  /** Acknowledges every pending interrupt. */
  ack(): number {
    const isr = this.reg(Reg.INTERRUPT_STATUS);
    this.setReg(Reg.INTERRUPT_ACK, isr);
    return isr;
  }
}

function align(n: number, a: number): number { return Math.ceil(n / a) * a; }

/** mulberry32: a small seeded generator of numbers in [0, 1), so a failing fuzz run can be replayed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
