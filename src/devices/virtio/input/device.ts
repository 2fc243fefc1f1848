/**
 * virtio-input (VIRTIO 1.x §5.8): an evdev device seen through virtio. Queue 0 (eventq) carries
 * events host → guest, queue 1 (statusq) feedback guest → host (keyboard LEDs), which is read and
 * dropped. The config space answers the driver's select/subsel queries with the device's name,
 * serial, ids and the bitmaps of the event codes it can send — Linux's virtio_input driver turns
 * those into an input device, and evdev into /dev/input/eventN.
 *
 * Events go out in whole updates (a key change and its EV_SYN), as the spec asks: an update that
 * does not fit in the available buffers waits for more; a bounded backlog keeps a guest that never
 * reads from growing host memory (updates beyond it are dropped and counted).
 */
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain } from '../queue.js';

export const INPUT_QUEUE_SIZE = 64;
/** Events held for a guest that has not posted buffers (a few hundred key presses). */
export const INPUT_BACKLOG = 1024;
/** struct virtio_input_event: le16 type, le16 code, le32 value. */
export const INPUT_EVENT_BYTES = 8;

/** Linux input event types and codes used here (include/uapi/linux/input-event-codes.h). */
export const Ev = { SYN: 0x00, KEY: 0x01 } as const;
export const SYN_REPORT = 0;
export const KEY_POWER = 116;

/** virtio_input_config_select. */
const enum Select { UNSET = 0x00, ID_NAME = 0x01, ID_SERIAL = 0x02, ID_DEVIDS = 0x03, PROP_BITS = 0x10, EV_BITS = 0x11, ABS_INFO = 0x12 }
/** Config layout: select, subsel, size, 5 reserved, then the 128-byte union. */
const CONFIG_UNION = 8;
const UNION_BYTES = 128;
/** BUS_VIRTUAL in linux/input.h. */
const BUS_VIRTUAL = 0x06;

const enum Q { EVENT = 0, STATUS = 1 }

export interface VirtioInputOptions {
  /** EVIOCGNAME: what the guest lists in /proc/bus/input/devices and /sys/class/input/eventN/device/name. */
  name: string;
  serial?: string;
  /** Event codes the device can send, per event type (EV_SYN is always supported). */
  events: ReadonlyMap<number, readonly number[]>;
  /** EVIOCGID: vendor, product, version (bus is BUS_VIRTUAL). */
  ids?: { vendor: number; product: number; version: number };
}

export interface InputState {
  select: number;
  subsel: number;
  /** Updates not yet delivered, each its events as [type, code, value] triples, flattened. */
  pending: number[][];
}

export class VirtioInput implements VirtioDevice {
  readonly name = 'virtio-input';
  readonly deviceId = DeviceId.INPUT;
  readonly features: FeatureWords = { lo: 0, hi: 0 };
  readonly queueMaxSizes = [INPUT_QUEUE_SIZE, INPUT_QUEUE_SIZE];
  /** Events dropped because the backlog was full (whole updates at a time). */
  dropped = 0;
  /** Events the guest has been given. */
  delivered = 0;
  private ctx: VirtioContext | undefined;
  private readonly chain = new DescChain(INPUT_QUEUE_SIZE);
  private readonly opts: VirtioInputOptions;
  private select = 0;
  private subsel = 0;
  /** The answer to the current select/subsel, padded to the union's size. */
  private answer = new Uint8Array(UNION_BYTES);
  private answerSize = 0;
  /** Pending updates: each an array of [type, code, value] flattened. */
  private readonly pending: number[][] = [];
  private pendingEvents = 0;
  private readonly event = new Uint8Array(INPUT_EVENT_BYTES);
  private readonly eventView = new DataView(this.event.buffer);

  constructor(opts: VirtioInputOptions) {
    this.opts = opts;
  }

  readConfig(offset: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.configByte(offset + i);
    return v >>> 0;
  }

  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    // Only select (0) and subsel (1) are writable; a wider write may cover both.
    for (let i = 0; i < size; i++) {
      const b = (value >>> (8 * i)) & 0xff;
      if (offset + i === 0) this.select = b;
      else if (offset + i === 1) this.subsel = b;
    }
    if (offset <= 1) this.query();
  }

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.drainStatus();
    this.deliver();
  }

  notify(queue: number): void {
    if (queue === Q.STATUS) this.drainStatus();
    else this.deliver();
  }

  /**
   * Queues one input update: `events` as [type, code, value] triples, flattened; an EV_SYN
   * SYN_REPORT is appended. Returns false if the backlog had no room (the update is dropped).
   */
  send(events: readonly number[]): boolean {
    const update = [...events, Ev.SYN, SYN_REPORT, 0];
    const n = update.length / 3;
    if (this.pendingEvents + n > INPUT_BACKLOG) { this.dropped += n; return false; }
    this.pending.push(update);
    this.pendingEvents += n;
    this.deliver();
    return true;
  }

  reset(): void {
    this.ctx = undefined;
    this.select = this.subsel = 0;
    this.query();
  }

  close(): void { this.ctx = undefined; }

  save(): InputState { return { select: this.select, subsel: this.subsel, pending: this.pending.map(u => [...u]) }; }

  restore(state: unknown): void {
    const s = (state ?? {}) as Partial<InputState>;
    this.select = (s.select ?? 0) & 0xff;
    this.subsel = (s.subsel ?? 0) & 0xff;
    this.query();
    this.pending.length = this.pendingEvents = 0;
    for (const u of Array.isArray(s.pending) ? s.pending : []) {
      if (!Array.isArray(u) || u.length === 0 || u.length % 3) continue; // not an update this device saved
      this.pending.push(u.map(x => Number(x) | 0));
      this.pendingEvents += u.length / 3;
    }
  }

  private configByte(offset: number): number {
    if (offset === 0) return this.select;
    if (offset === 1) return this.subsel;
    if (offset === 2) return this.answerSize;
    if (offset >= CONFIG_UNION && offset < CONFIG_UNION + UNION_BYTES) return this.answer[offset - CONFIG_UNION]!;
    return 0;
  }

  /** Computes the answer for the current select/subsel (size 0: nothing there). */
  private query(): void {
    const a = this.answer;
    a.fill(0);
    let size = 0;
    const text = (s: string) => {
      const b = new TextEncoder().encode(s).subarray(0, UNION_BYTES);
      a.set(b);
      return b.length;
    };
    switch (this.subsel === 0 || this.select === Select.EV_BITS || this.select === Select.ABS_INFO ? this.select : Select.UNSET) {
      case Select.ID_NAME: size = text(this.opts.name); break;
      case Select.ID_SERIAL: size = text(this.opts.serial ?? ''); break;
      case Select.ID_DEVIDS: {
        const ids = this.opts.ids ?? { vendor: 0, product: 0, version: 0 };
        const dv = new DataView(a.buffer);
        dv.setUint16(0, BUS_VIRTUAL, true);
        dv.setUint16(2, ids.vendor, true);
        dv.setUint16(4, ids.product, true);
        dv.setUint16(6, ids.version, true);
        size = 8;
        break;
      }
      case Select.EV_BITS: {
        const codes = this.opts.events.get(this.subsel);
        if (!codes || this.subsel === Ev.SYN) break; // EV_SYN is implied; Linux asks only for the others
        for (const c of codes) if (c >= 0 && c < UNION_BYTES * 8) { a[c >> 3]! |= 1 << (c & 7); size = Math.max(size, (c >> 3) + 1); }
        break;
      }
      default: break; // PROP_BITS (none), ABS_INFO (no absolute axes), UNSET
    }
    this.answerSize = size;
  }

  /** Writes whole pending updates into available eventq buffers, one event per buffer. */
  private deliver(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.EVENT];
    if (!ctx || !q?.ready) return;
    let served = 0;
    while (this.pending.length > 0) {
      const update = this.pending[0]!;
      const n = update.length / 3;
      if (q.availableCount() < n) { q.notifyOnNext(); break; } // the whole update or nothing
      let i = 0;
      for (; i < n && q.pop(this.chain); i++) {
        const dv = this.eventView;
        dv.setUint16(0, update[3 * i]!, true);
        dv.setUint16(2, update[3 * i + 1]!, true);
        dv.setInt32(4, update[3 * i + 2]!, true);
        // A buffer smaller than an event (a driver error) gets what fits; Linux posts exactly 8.
        q.push(this.chain.head, this.chain.write(ctx.mem, 0, this.event));
        served++;
      }
      this.pending.shift();
      this.pendingEvents -= n;
      this.delivered += i;
    }
    if (served) ctx.signalUsed(q);
  }

  /** Status feedback (LEDs, sounds) has nothing to act on here: hand the buffers back. */
  private drainStatus(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.STATUS];
    if (!ctx || !q?.ready) return;
    let served = 0;
    while (q.pop(this.chain)) { q.push(this.chain.head, 0); served++; }
    if (served) ctx.signalUsed(q);
  }
}
