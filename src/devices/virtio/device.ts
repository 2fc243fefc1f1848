/**
 * What a virtio device implements to sit behind the virtio-mmio transport (mmio.ts), and what the
 * transport gives it when the driver brings it up. Keep this interface stable: devices written by
 * others (9P, later net) implement it.
 *
 * Lifecycle, driven by the guest driver through the transport (VIRTIO 1.x §3.1 "Device Initialization"):
 *   construct → [driver negotiates features, sets up queues] → activate(ctx) on DRIVER_OK
 *   → notify(q) whenever the driver kicks queue q → reset() when the driver writes status 0
 *   (then possibly activate again). close() once, when the VM ends.
 * Snapshots: save() at any point after construction; restore(state) is called on a freshly reset
 * device, before activate(ctx) when the saved driver had activated it.
 *
 * Everything the guest hands over (descriptor addresses, lengths, request headers) is hostile.
 * A malformed request a device can answer (bad sector, bad length) gets an error status in the
 * request; a guest error the device cannot answer calls ctx.fail(reason), which marks the device
 * DEVICE_NEEDS_RESET. Devices never throw into the transport for guest mistakes.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { VirtQueue } from './queue.js';

/** A 64-bit feature set as two 32-bit words (no BigInt on the register path). Bit n of the spec is lo bit n (n < 32) or hi bit n-32. */
export interface FeatureWords {
  lo: number;
  hi: number;
}

/** Device ids (VIRTIO 1.x §5 "Device Types"). */
export const DeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  NINEP: 9,
  INPUT: 18,
} as const;

/** Transport/ring feature bits the transport itself offers (VIRTIO 1.x §6 "Reserved Feature Bits"). Device-specific bits are 0..23. */
export const Feature = {
  /** Bit 28: VIRTIO_F_INDIRECT_DESC — descriptors may point at tables of descriptors (lo word). */
  INDIRECT_DESC: 1 << 28,
  /** Bit 29: VIRTIO_F_EVENT_IDX — used_event/avail_event suppress notifications (lo word). */
  EVENT_IDX: 1 << 29,
  /** Bit 32: VIRTIO_F_VERSION_1 — hi word bit 0. The transport requires it (modern only). */
  VERSION_1_HI: 1 << 0,
} as const;

/** What the transport hands a device on activation. Valid until reset() or close(). */
export interface VirtioContext {
  /** Guest RAM for DMA. Writes through views must be reported with mem.wrote(). */
  readonly mem: GuestMemory;
  /** One per queue the device declared (index = queue number); a queue the driver left unused has `ready` false. */
  readonly queues: readonly VirtQueue[];
  /** Feature bits the driver accepted (a subset of what the device and transport offered). */
  readonly features: FeatureWords;
  /** Tells the driver that `queue` has new used buffers, unless it suppressed the notification (EVENT_IDX or NO_INTERRUPT). */
  signalUsed(queue: VirtQueue): void;
  /** Config space changed: bumps ConfigGeneration and raises the configuration-change interrupt. */
  signalConfig(): void;
  /** An unrecoverable guest error: sets DEVICE_NEEDS_RESET, logs `reason` once and counts it. The device should stop using its queues. */
  fail(reason: string): void;
}

export interface VirtioDevice {
  /** Short name for logs ("virtio-blk"). */
  readonly name: string;
  /** VIRTIO device id (DeviceId.*). */
  readonly deviceId: number;
  /** Device-specific feature bits offered (the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX). */
  readonly features: FeatureWords;
  /** Largest size of each queue (QueueNumMax); the array length is the number of queues. */
  readonly queueMaxSizes: readonly number[];

  /** Reads `size` bytes at `offset` of the device config space (offset 0 = transport offset 0x100); 0 beyond its end. */
  readConfig(offset: number, size: 1 | 2 | 4): number;
  /** Writes device config space; read-only fields ignore writes. */
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void;

  /** The driver set DRIVER_OK: start serving `ctx.queues` (and look at buffers already made available). */
  activate(ctx: VirtioContext): void;
  /** The driver kicked queue `queue` (already bounds-checked, the queue is ready). */
  notify(queue: number): void;
  /** Back to the initial state: forget the context, cancel pending timers. Config values the host set stay. */
  reset(): void;
  /** Releases host resources (files); the VM is ending. */
  close(): void;

  /** Device state as a plain JSON-serialisable value (not the transport's or queues'; those are saved by the transport). */
  save(): unknown;
  /** Takes a value save() returned, on a reset device (before activate, if the saved driver had activated it). */
  restore(state: unknown): void;
}
