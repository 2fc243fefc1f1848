/**
 * Goldfish RTC (`google,goldfish-rtc`, QEMU hw/rtc/goldfish_rtc.c; Linux drivers/rtc/rtc-goldfish.c,
 * registers in include/clocksource/timer-goldfish.h). Time is nanoseconds since the Unix epoch,
 * from the host wall clock plus an offset the guest may set.
 *
 *   0x00 TIME_LOW         read: low 32 bits, latches TIME_HIGH; write: sets low 32 bits of the time
 *   0x04 TIME_HIGH        read: the latched high 32 bits; write: sets high 32 bits of the time
 *   0x08 ALARM_LOW        write arms the alarm (ALARM_HIGH must be written first)
 *   0x0c ALARM_HIGH
 *   0x10 IRQ_ENABLED      bit 0
 *   0x14 CLEAR_ALARM      write: disarm
 *   0x18 ALARM_STATUS     read: 1 while armed
 *   0x1c CLEAR_INTERRUPT  write: drop the interrupt
 *
 * The interrupt line is irq_pending && irq_enabled. An armed alarm fires from update(), which the
 * board calls periodically (nextDeadlineMs() says when); one set in the past fires at once.
 */
import { narrowRead, type MmioDevice } from '../memory/bus.js';

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;

const MASK32 = 0xffff_ffffn;
const MASK64 = 0xffff_ffff_ffff_ffffn;

/** Host wall clock in nanoseconds since the Unix epoch. */
export type WallClockNs = () => bigint;

export const hostWallClockNs: WallClockNs = () =>
  BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;

export interface GoldfishRtcOptions {
  /** Level of the RTC's interrupt line (PLIC source 11); called when the level changes. */
  setIrq: (level: boolean) => void;
  clock?: WallClockNs;
}

/** The RTC's state for snapshots (plain JSON; 64-bit values as decimal strings). */
export interface GoldfishRtcState {
  /** Guest time minus host time, ns. */
  offsetNs: string;
  alarmNs: string;
  alarmRunning: boolean;
  irqPending: boolean;
  irqEnabled: boolean;
  timeHigh: number;
}

export class GoldfishRtc implements MmioDevice {
  readonly name = 'goldfish-rtc';
  private readonly setIrqLine: (level: boolean) => void;
  private readonly clock: WallClockNs;
  private offsetNs = 0n;
  private alarmNs = 0n;
  private alarmRunning = false;
  private irqPending = false;
  private irqEnabled = false;
  private timeHigh = 0;
  private irqLevel = false;

  constructor(opts: GoldfishRtcOptions) {
    this.setIrqLine = opts.setIrq;
    this.clock = opts.clock ?? hostWallClockNs;
  }

  /** Guest time, ns since the epoch. */
  nowNs(): bigint {
    return (this.clock() + this.offsetNs) & MASK64;
  }

  /** Fires the alarm if it is due. */
  update(): void {
    if (this.alarmRunning && this.alarmNs <= this.nowNs()) this.raiseAlarm();
  }

  /** Host milliseconds until the armed alarm is due (0 if overdue), Infinity if none is armed. */
  nextDeadlineMs(): number {
    if (!this.alarmRunning) return Infinity;
    const delta = this.alarmNs - this.nowNs();
    return delta <= 0n ? 0 : Number(delta) / 1e6;
  }

  read(offset: number, size: 1 | 2 | 4): number {
    return narrowRead(this.read32(offset & ~3), offset, size);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4) return; // the registers are 32-bit; Linux only uses 32-bit accesses
    this.write32(offset, value >>> 0);
  }

  save(): GoldfishRtcState {
    return {
      offsetNs: this.offsetNs.toString(),
      alarmNs: this.alarmNs.toString(),
      alarmRunning: this.alarmRunning,
      irqPending: this.irqPending,
      irqEnabled: this.irqEnabled,
      timeHigh: this.timeHigh,
    };
  }

  /** Restores saved state. The guest clock keeps following the host wall clock with the saved offset. */
  restore(s: GoldfishRtcState): void {
    this.offsetNs = BigInt(s.offsetNs);
    this.alarmNs = BigInt(s.alarmNs) & MASK64;
    this.alarmRunning = s.alarmRunning;
    this.irqPending = s.irqPending;
    this.irqEnabled = s.irqEnabled;
    this.timeHigh = s.timeHigh >>> 0;
    this.irqLevel = !(this.irqPending && this.irqEnabled);
    this.updateIrq();
  }

  private read32(offset: number): number {
    switch (offset) {
      case TIME_LOW: {
        const t = this.nowNs();
        this.timeHigh = Number(t >> 32n);
        return Number(t & MASK32);
      }
      case TIME_HIGH:
        return this.timeHigh;
      case ALARM_LOW:
        return Number(this.alarmNs & MASK32);
      case ALARM_HIGH:
        return Number(this.alarmNs >> 32n);
      case IRQ_ENABLED:
        return this.irqEnabled ? 1 : 0;
      case ALARM_STATUS:
        return this.alarmRunning ? 1 : 0;
      default:
        return 0;
    }
  }

  private write32(offset: number, value: number): void {
    const v = BigInt(value);
    switch (offset) {
      case TIME_LOW:
      case TIME_HIGH: {
        const now = this.nowNs();
        const next = offset === TIME_LOW ? (now & ~MASK32 & MASK64) | v : (now & MASK32) | (v << 32n);
        this.offsetNs += next - now;
        return;
      }
      case ALARM_LOW:
        this.alarmNs = (this.alarmNs & ~MASK32 & MASK64) | v;
        this.setAlarm();
        return;
      case ALARM_HIGH:
        this.alarmNs = (this.alarmNs & MASK32) | (v << 32n);
        return;
      case IRQ_ENABLED:
        this.irqEnabled = (value & 1) === 1;
        this.updateIrq();
        return;
      case CLEAR_ALARM:
        this.alarmRunning = false;
        return;
      case CLEAR_INTERRUPT:
        this.irqPending = false;
        this.updateIrq();
        return;
    }
  }

  private setAlarm(): void {
    if (this.alarmNs <= this.nowNs()) {
      this.alarmRunning = false;
      this.raiseAlarm();
    } else {
      this.alarmRunning = true;
    }
  }

  private raiseAlarm(): void {
    this.alarmRunning = false;
    this.irqPending = true;
    this.updateIrq();
  }

  private updateIrq(): void {
    const level = this.irqPending && this.irqEnabled;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrqLine(level);
    }
  }
}
