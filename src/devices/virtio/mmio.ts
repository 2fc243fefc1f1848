/**
 * The virtio-mmio transport, version 2 (modern only; VIRTIO 1.x §4.2 "Virtio Over MMIO"), in front
 * of one VirtioDevice. Linux's virtio_mmio driver is the client.
 *
 * Interrupt: one level-triggered line (a PLIC source), high while InterruptStatus is not 0.
 * Notifications are handled synchronously: a QueueNotify write calls device.notify() before the
 * store completes, so the guest sees the used buffers (and the interrupt) right after its kick.
 * Guest errors (a malformed ring, DRIVER_OK without FEATURES_OK) set DEVICE_NEEDS_RESET, are
 * counted in `errors` and logged (the first few per device), never thrown.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { narrowRead, type MmioDevice } from '../../memory/bus.js';
import { Feature, type FeatureWords, type VirtioContext, type VirtioDevice } from './device.js';
import { VirtQueue, type QueueState } from './queue.js';

/** Register offsets (§4.2.2 "MMIO Device Register Layout"); all 32-bit, little-endian. */
export const enum Reg {
  MAGIC = 0x000,
  VERSION = 0x004,
  DEVICE_ID = 0x008,
  VENDOR_ID = 0x00c,
  DEVICE_FEATURES = 0x010,
  DEVICE_FEATURES_SEL = 0x014,
  DRIVER_FEATURES = 0x020,
  DRIVER_FEATURES_SEL = 0x024,
  QUEUE_SEL = 0x030,
  QUEUE_NUM_MAX = 0x034,
  QUEUE_NUM = 0x038,
  QUEUE_READY = 0x044,
  QUEUE_NOTIFY = 0x050,
  INTERRUPT_STATUS = 0x060,
  INTERRUPT_ACK = 0x064,
  STATUS = 0x070,
  QUEUE_DESC_LOW = 0x080,
  QUEUE_DESC_HIGH = 0x084,
  QUEUE_DRIVER_LOW = 0x090,
  QUEUE_DRIVER_HIGH = 0x094,
  QUEUE_DEVICE_LOW = 0x0a0,
  QUEUE_DEVICE_HIGH = 0x0a4,
  SHM_SEL = 0x0ac,
  SHM_LEN_LOW = 0x0b0,
  SHM_LEN_HIGH = 0x0b4,
  SHM_BASE_LOW = 0x0b8,
  SHM_BASE_HIGH = 0x0bc,
  QUEUE_RESET = 0x0c0,
  CONFIG_GENERATION = 0x0fc,
  CONFIG = 0x100,
}

export const MAGIC = 0x7472_6976; // "virt"
export const VERSION = 2;
/** "gsng" little-endian; Linux does not look at it. */
export const VENDOR_ID = 0x676e_7367;

/** Device status bits (§2.1 "Device Status Field"). */
export const Status = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** InterruptStatus bits (§4.2.2). */
export const Isr = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;

/** Errors logged per transport before it only counts them (a hostile guest can repeat them forever). */
const LOGGED_ERRORS = 8;

export interface VirtioMmioOptions {
  device: VirtioDevice;
  mem: GuestMemory;
  /** The interrupt line (level). */
  irq: (level: boolean) => void;
  /** Where one-line guest-error reports go (default: nowhere; they are still counted). */
  log?: (line: string) => void;
}

/** Transport + queue + device state, plain JSON (see save()). */
export interface VirtioMmioState {
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: [number, number];
  queueSel: number;
  isr: number;
  configGeneration: number;
  queues: QueueState[];
  device: unknown;
}

export class VirtioMmio implements MmioDevice {
  readonly name: string;
  readonly queues: VirtQueue[];
  /** Guest errors seen (malformed rings, protocol violations). */
  errors = 0;
  lastError = '';
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private readonly driverFeatures: FeatureWords = { lo: 0, hi: 0 };
  /** Everything offered: the device's bits plus the ring/transport bits. */
  private readonly offered: FeatureWords;
  private queueSel = 0;
  private isr = 0;
  private configGeneration = 0;
  private active = false;
  private readonly device: VirtioDevice;
  private readonly irq: (level: boolean) => void;
  private readonly log: (line: string) => void;
  private readonly ctx: VirtioContext;

  constructor(opts: VirtioMmioOptions) {
    const { device, mem } = opts;
    this.device = device;
    this.irq = opts.irq;
    this.log = opts.log ?? (() => {});
    this.name = device.name;
    this.offered = {
      lo: (device.features.lo | Feature.INDIRECT_DESC | Feature.EVENT_IDX) >>> 0,
      hi: (device.features.hi | Feature.VERSION_1_HI) >>> 0,
    };
    const fail = (reason: string): void => this.fail(reason);
    this.queues = device.queueMaxSizes.map((max, i) => new VirtQueue(i, max, mem, fail));
    this.ctx = {
      mem,
      queues: this.queues,
      features: this.driverFeatures,
      signalUsed: q => { if (q.needsInterrupt()) this.raise(Isr.USED_BUFFER); },
      signalConfig: () => { this.configGeneration = (this.configGeneration + 1) >>> 0; this.raise(Isr.CONFIG_CHANGE); },
      fail,
    };
  }

  /** True once the driver set DRIVER_OK (and until reset). */
  get activated(): boolean { return this.active; }
  get deviceStatus(): number { return this.status; }
  get interruptStatus(): number { return this.isr; }

  read(offset: number, size: 1 | 2 | 4): number {
    if (offset >= Reg.CONFIG) return this.device.readConfig(offset - Reg.CONFIG, size) >>> 0;
    const value = this.readReg(offset & ~3);
    return size === 4 ? value : narrowRead(value, offset, size);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset >= Reg.CONFIG) { this.device.writeConfig(offset - Reg.CONFIG, size, value); return; }
    if (size !== 4 || offset & 3) return this.fail(`${size}-byte write to register 0x${offset.toString(16)}`);
    this.writeReg(offset, value >>> 0);
  }

  /** Marks the device DEVICE_NEEDS_RESET for a guest error (§2.1.2): logged (first few) and counted. */
  fail(reason: string): void {
    this.errors++;
    this.lastError = reason;
    if (this.errors <= LOGGED_ERRORS) this.log(`${this.name}: ${reason}${this.errors === LOGGED_ERRORS ? ' (further errors only counted)' : ''}`);
    if (this.status & Status.DEVICE_NEEDS_RESET) return;
    this.status |= Status.DEVICE_NEEDS_RESET;
    if (this.status & Status.DRIVER_OK) this.raise(Isr.CONFIG_CHANGE);
  }

  /** The VM is ending: the device releases its host resources (flushes and closes disks). */
  close(): void {
    this.active = false;
    this.device.close();
  }

  /** Transport, queue and device state as plain JSON. */
  save(): VirtioMmioState {
    return {
      status: this.status,
      deviceFeaturesSel: this.deviceFeaturesSel,
      driverFeaturesSel: this.driverFeaturesSel,
      driverFeatures: [this.driverFeatures.lo, this.driverFeatures.hi],
      queueSel: this.queueSel,
      isr: this.isr,
      configGeneration: this.configGeneration,
      queues: this.queues.map(q => q.save()),
      device: this.device.save(),
    };
  }

  /** Takes save()'s value (from a transport in front of the same kind of device); re-activates the device if it was active. */
  restore(s: VirtioMmioState): void {
    if (s.queues.length !== this.queues.length) throw new RangeError(`${this.name}: saved state has ${s.queues.length} queues, device has ${this.queues.length}`);
    this.reset();
    this.status = s.status & 0xff;
    this.deviceFeaturesSel = s.deviceFeaturesSel >>> 0;
    this.driverFeaturesSel = s.driverFeaturesSel >>> 0;
    this.driverFeatures.lo = s.driverFeatures[0] >>> 0;
    this.driverFeatures.hi = s.driverFeatures[1] >>> 0;
    this.queueSel = s.queueSel >>> 0;
    this.configGeneration = s.configGeneration >>> 0;
    s.queues.forEach((qs, i) => this.queues[i]!.restore(qs));
    if (this.status & Status.FEATURES_OK) this.applyRingFeatures();
    this.device.restore(s.device);
    this.isr = s.isr & 3;
    this.irq(this.isr !== 0);
    if ((this.status & (Status.DRIVER_OK | Status.DEVICE_NEEDS_RESET)) === Status.DRIVER_OK) {
      this.active = true;
      this.device.activate(this.ctx);
    }
  }

  private readReg(reg: number): number {
    switch (reg) {
      case Reg.MAGIC: return MAGIC;
      case Reg.VERSION: return VERSION;
      case Reg.DEVICE_ID: return this.device.deviceId;
      case Reg.VENDOR_ID: return VENDOR_ID;
      case Reg.DEVICE_FEATURES:
        return this.deviceFeaturesSel === 0 ? this.offered.lo : this.deviceFeaturesSel === 1 ? this.offered.hi : 0;
      case Reg.QUEUE_NUM_MAX: return this.queues[this.queueSel]?.maxSize ?? 0;
      case Reg.QUEUE_READY: return this.queues[this.queueSel]?.ready ? 1 : 0;
      case Reg.INTERRUPT_STATUS: return this.isr;
      case Reg.STATUS: return this.status;
      case Reg.SHM_LEN_LOW:
      case Reg.SHM_LEN_HIGH: return 0xffff_ffff; // no shared memory regions (length -1 means "none")
      case Reg.SHM_BASE_LOW:
      case Reg.SHM_BASE_HIGH: return 0xffff_ffff;
      case Reg.CONFIG_GENERATION: return this.configGeneration;
      // QueueNum and the ring addresses are write-only; reading them back as written is harmless and helps debugging.
      case Reg.QUEUE_NUM: return this.queues[this.queueSel]?.size ?? 0;
      case Reg.QUEUE_DESC_LOW: return this.queues[this.queueSel]?.descLo ?? 0;
      case Reg.QUEUE_DESC_HIGH: return this.queues[this.queueSel]?.descHi ?? 0;
      case Reg.QUEUE_DRIVER_LOW: return this.queues[this.queueSel]?.driverLo ?? 0;
      case Reg.QUEUE_DRIVER_HIGH: return this.queues[this.queueSel]?.driverHi ?? 0;
      case Reg.QUEUE_DEVICE_LOW: return this.queues[this.queueSel]?.deviceLo ?? 0;
      case Reg.QUEUE_DEVICE_HIGH: return this.queues[this.queueSel]?.deviceHi ?? 0;
      default: return 0;
    }
  }

  private writeReg(reg: number, v: number): void {
    switch (reg) {
      case Reg.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; return;
      case Reg.DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; return;
      case Reg.DRIVER_FEATURES:
        if (this.status & Status.FEATURES_OK) return this.fail('DriverFeatures written after FEATURES_OK');
        if (this.driverFeaturesSel === 0) this.driverFeatures.lo = v;
        else if (this.driverFeaturesSel === 1) this.driverFeatures.hi = v;
        else if (v !== 0) return this.fail(`feature word ${this.driverFeaturesSel} set to 0x${v.toString(16)}`);
        return;
      case Reg.QUEUE_SEL: this.queueSel = v; return;
      case Reg.QUEUE_NOTIFY:
        if (v < this.queues.length && this.active && this.queues[v]!.ready) this.device.notify(v);
        return;
      case Reg.INTERRUPT_ACK:
        this.isr &= ~v;
        this.irq(this.isr !== 0);
        return;
      case Reg.STATUS: this.writeStatus(v & 0xff); return;
      case Reg.SHM_SEL: return;
      case Reg.QUEUE_RESET: return; // VIRTIO_F_RING_RESET is not offered
    }
    const q = this.queues[this.queueSel];
    if (!q) return this.fail(`queue register 0x${reg.toString(16)} written with QueueSel ${this.queueSel} (no such queue)`);
    if (reg === Reg.QUEUE_READY) {
      if (v === 0) q.ready = false;
      else if (!q.ready) q.enable(); // calls fail() on a bad ring
      return;
    }
    if (q.ready) return this.fail(`queue ${this.queueSel} register 0x${reg.toString(16)} written while ready`);
    switch (reg) {
      case Reg.QUEUE_NUM: q.size = v; return;
      case Reg.QUEUE_DESC_LOW: q.descLo = v; return;
      case Reg.QUEUE_DESC_HIGH: q.descHi = v; return;
      case Reg.QUEUE_DRIVER_LOW: q.driverLo = v; return;
      case Reg.QUEUE_DRIVER_HIGH: q.driverHi = v; return;
      case Reg.QUEUE_DEVICE_LOW: q.deviceLo = v; return;
      case Reg.QUEUE_DEVICE_HIGH: q.deviceHi = v; return;
    }
  }

  private writeStatus(v: number): void {
    if (v === 0) { this.reset(); return; }
    const old = this.status;
    // DEVICE_NEEDS_RESET belongs to the device; the driver cannot set or clear it.
    let next = (v & ~Status.DEVICE_NEEDS_RESET) | (old & Status.DEVICE_NEEDS_RESET);
    if (next & Status.FEATURES_OK && !(old & Status.FEATURES_OK)) {
      const { lo, hi } = this.driverFeatures;
      // §2.2.2: the device refuses features it did not offer; a modern-only device requires VERSION_1.
      const ok = (lo & ~this.offered.lo) === 0 && (hi & ~this.offered.hi) === 0 && (hi & Feature.VERSION_1_HI) !== 0;
      if (ok) this.applyRingFeatures();
      else next &= ~Status.FEATURES_OK;
    }
    this.status = next;
    if (next & Status.DRIVER_OK && !this.active && !(next & Status.DEVICE_NEEDS_RESET)) {
      if (!(next & Status.FEATURES_OK)) return this.fail('DRIVER_OK without FEATURES_OK');
      this.active = true;
      this.device.activate(this.ctx);
    }
  }

  private applyRingFeatures(): void {
    const lo = this.driverFeatures.lo;
    for (const q of this.queues) {
      q.indirect = (lo & Feature.INDIRECT_DESC) !== 0;
      q.eventIdx = (lo & Feature.EVENT_IDX) !== 0;
    }
  }

  /** Device reset (§2.4): status, features, queues, interrupts back to their initial values. */
  private reset(): void {
    this.device.reset();
    this.active = false;
    this.status = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.driverFeatures.lo = this.driverFeatures.hi = 0;
    for (const q of this.queues) q.reset();
    this.isr = 0;
    this.irq(false);
  }

  private raise(bit: number): void {
    this.isr |= bit;
    this.irq(true);
  }
}
