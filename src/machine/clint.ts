/**
 * SiFive CLINT (core-local interruptor), as QEMU virt's `sifive,clint0` / ACLINT MSWI+MTIMER:
 *
 *   0x0000 + 4*hart   msip      bit 0 drives mip.MSIP of that hart
 *   0x4000 + 8*hart   mtimecmp  64-bit, little-endian, as two 32-bit halves
 *   0xbff8            mtime     64-bit, counts at TIMEBASE_HZ from the host clock
 *
 * mtimecmp is kept as two uint32 (guests write all-ones to mean "never", far above 2^53);
 * mtime stays a JS number (2^53 ticks at 10 MHz is 28 years).
 */
import { GasangError } from '../util/errors.js';
import { Mip, type HartInterrupts } from './irq.js';
import { TIMEBASE_HZ } from './memory-map.js';
import { mergeNarrow, narrowRead, type MmioDevice } from '../memory/bus.js';

const MSIP = 0x0000;
const MTIMECMP = 0x4000;
const MTIME = 0xbff8;
const TICKS_PER_MS = TIMEBASE_HZ / 1000;
const TWO32 = 0x1_0000_0000;

/** Host clock in milliseconds (monotonic), `performance.now()` by default. */
export type HostClock = () => number;

export interface ClintOptions {
  harts: number;
  irq: HartInterrupts;
  clock?: HostClock;
}

/** The CLINT's state for snapshots (plain JSON). */
export interface ClintState {
  msip: number[];
  mtimecmpLo: number[];
  mtimecmpHi: number[];
  mtime: number;
}

export class Clint implements MmioDevice {
  readonly name = 'clint';
  readonly harts: number;
  private readonly irq: HartInterrupts;
  private readonly clock: HostClock;
  private readonly msip: Uint8Array;
  private readonly cmpLo: Uint32Array;
  private readonly cmpHi: Uint32Array;
  /** mtime = floor((clock() - epochMs) * TICKS_PER_MS) while running; frozen at pausedAt while paused. */
  private epochMs: number;
  private pausedAt = -1;
  /** mtime high word latched by a low-word read, so a 64-bit read split low-then-high is consistent. */
  private latchedHi = -1;

  constructor(opts: ClintOptions) {
    if (!(opts.harts >= 1 && opts.harts <= 4095)) throw new GasangError('clint-harts', `Invalid hart count ${opts.harts}`);
    this.harts = opts.harts;
    this.irq = opts.irq;
    this.clock = opts.clock ?? (() => performance.now());
    this.msip = new Uint8Array(opts.harts);
    // Reset mtimecmp to all-ones ("never") so no hart sees a timer interrupt before firmware programs it.
    this.cmpLo = new Uint32Array(opts.harts).fill(0xffff_ffff);
    this.cmpHi = new Uint32Array(opts.harts).fill(0xffff_ffff);
    this.epochMs = this.clock();
  }

  /** Current mtime in ticks. Cheap enough to back every `rdtime`. */
  mtime(): number {
    if (this.pausedAt >= 0) return this.pausedAt;
    return Math.floor((this.clock() - this.epochMs) * TICKS_PER_MS);
  }

  /** Moves mtime to `ticks` (the clock keeps running from there). */
  setMtime(ticks: number): void {
    if (this.pausedAt >= 0) this.pausedAt = ticks;
    else this.epochMs = this.clock() - ticks / TICKS_PER_MS;
  }

  /** Stops mtime (VM paused); resume() continues from the same value. */
  pause(): void {
    if (this.pausedAt < 0) this.pausedAt = this.mtime();
  }

  resume(): void {
    if (this.pausedAt < 0) return;
    const t = this.pausedAt;
    this.pausedAt = -1;
    this.setMtime(t);
  }

  /** Recomputes mip.MTIP of every hart from mtime >= mtimecmp and reports it. */
  update(): void {
    const now = this.mtime();
    for (let h = 0; h < this.harts; h++) this.irq.setPending(h, Mip.MTIP, this.due(h, now));
  }

  /** Host milliseconds until the earliest timer of `hart` (or of any hart) fires: 0 if one is already due, Infinity if none is armed. */
  nextDeadlineMs(hart?: number): number {
    const now = this.mtime();
    const nowHi = Math.floor(now / TWO32);
    const nowLo = now >>> 0;
    let best = Infinity;
    if (hart !== undefined && !(hart >= 0 && hart < this.harts)) return best;
    const first = hart ?? 0;
    const last = hart ?? this.harts - 1;
    for (let h = first; h <= last; h++) {
      const ticks = (this.cmpHi[h]! - nowHi) * TWO32 + (this.cmpLo[h]! - nowLo);
      if (ticks <= 0) return 0;
      // Beyond 2^53 ticks (e.g. all-ones, "disarmed") nothing will ever fire.
      if (ticks < Number.MAX_SAFE_INTEGER) best = Math.min(best, ticks / TICKS_PER_MS);
    }
    return best;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    return narrowRead(this.read32(offset & ~3), offset, size);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    const aligned = offset & ~3;
    this.write32(aligned, mergeNarrow(this.read32(aligned), offset, size, value));
  }

  save(): ClintState {
    return {
      msip: Array.from(this.msip),
      mtimecmpLo: Array.from(this.cmpLo),
      mtimecmpHi: Array.from(this.cmpHi),
      mtime: this.mtime(),
    };
  }

  /** Restores saved state; mtime continues from the saved value. Reports MSIP and MTIP of every hart. */
  restore(state: ClintState): void {
    const n = this.harts;
    if (state.msip.length !== n || state.mtimecmpLo.length !== n || state.mtimecmpHi.length !== n) {
      throw new GasangError('clint-restore', `CLINT state is for ${state.msip.length} harts, this board has ${n}`);
    }
    for (let h = 0; h < n; h++) {
      this.msip[h] = state.msip[h]! & 1;
      this.cmpLo[h] = state.mtimecmpLo[h]!;
      this.cmpHi[h] = state.mtimecmpHi[h]!;
    }
    this.setMtime(state.mtime);
    this.latchedHi = -1;
    for (let h = 0; h < n; h++) this.irq.setPending(h, Mip.MSIP, this.msip[h] === 1);
    this.update();
  }

  private due(h: number, now: number): boolean {
    const hi = Math.floor(now / TWO32);
    const cmpHi = this.cmpHi[h]!;
    return hi > cmpHi || (hi === cmpHi && now >>> 0 >= this.cmpLo[h]!);
  }

  private read32(offset: number): number {
    if (offset === MTIME + 4 && this.latchedHi >= 0) {
      const hi = this.latchedHi;
      this.latchedHi = -1;
      return hi;
    }
    this.latchedHi = -1;
    if (offset < MSIP + 4 * this.harts) return this.msip[offset >> 2]!;
    if (offset >= MTIMECMP && offset < MTIMECMP + 8 * this.harts) {
      const h = (offset - MTIMECMP) >> 3;
      return offset & 4 ? this.cmpHi[h]! : this.cmpLo[h]!;
    }
    if (offset === MTIME) {
      const now = this.mtime();
      this.latchedHi = Math.floor(now / TWO32) >>> 0;
      return now >>> 0;
    }
    if (offset === MTIME + 4) return Math.floor(this.mtime() / TWO32) >>> 0;
    return 0;
  }

  private write32(offset: number, value: number): void {
    this.latchedHi = -1;
    if (offset < MSIP + 4 * this.harts) {
      const h = offset >> 2;
      this.msip[h] = value & 1;
      this.irq.setPending(h, Mip.MSIP, (value & 1) === 1);
      return;
    }
    if (offset >= MTIMECMP && offset < MTIMECMP + 8 * this.harts) {
      const h = (offset - MTIMECMP) >> 3;
      if (offset & 4) this.cmpHi[h] = value;
      else this.cmpLo[h] = value;
      this.irq.setPending(h, Mip.MTIP, this.due(h, this.mtime()));
      return;
    }
    if (offset === MTIME || offset === MTIME + 4) {
      const now = this.mtime();
      const hi = Math.floor(now / TWO32);
      const lo = now >>> 0;
      // Keep mtime below 2^53 whatever the guest writes: the high word is limited to 21 bits.
      this.setMtime(offset === MTIME ? hi * TWO32 + value : (value & 0x1f_ffff) * TWO32 + lo);
      this.update();
    }
  }
}
