/**
 * I/O throttling with two token buckets, one counting requests (iops) and one counting bytes
 * (bps), each refilled continuously at its rate up to its burst size.
 *
 * A request is admitted when every limited bucket holds at least min(cost, burst) tokens; it then
 * takes its full cost, which may leave a bucket negative. So a request larger than the burst is
 * still admitted (once the bucket is full) and is paid for by the wait of the ones after it: the
 * long-run rate stays the configured one whatever the request sizes.
 */
import { StorageError } from './block.js';

export interface ThrottleLimits {
  /** Requests per second; 0 or absent = unlimited. */
  iops?: number;
  /** Bytes per second; 0 or absent = unlimited. */
  bps?: number;
  /** Requests that may go through at once after a quiet period (default: iops / 10, at least 1). */
  iopsBurst?: number;
  /** Bytes that may go through at once after a quiet period (default: bps / 10). */
  bpsBurst?: number;
}

/** Relative tolerance for the refill's rounding, so that waiting exactly the named delay admits. */
const EPSILON = 1e-9;

export class IoThrottle {
  private readonly opsPerMs: number;
  private readonly bytesPerMs: number;
  private readonly opsBurst: number;
  private readonly bytesBurst: number;
  private ops: number;
  private bytes: number;
  private lastMs = -Infinity;

  constructor(limits: ThrottleLimits) {
    const iops = rate(limits.iops, 'iops');
    const bps = rate(limits.bps, 'bps');
    this.opsBurst = burst(limits.iopsBurst, iops, 'iops', Math.max(1, iops / 10));
    this.bytesBurst = burst(limits.bpsBurst, bps, 'bps', bps / 10);
    this.opsPerMs = iops / 1000;
    this.bytesPerMs = bps / 1000;
    this.ops = this.opsBurst;
    this.bytes = this.bytesBurst;
  }

  /** True if any limit is set (an unlimited throttle admits everything at once). */
  get limited(): boolean {
    return this.opsPerMs > 0 || this.bytesPerMs > 0;
  }

  /**
   * Asks to start a request of `bytes` bytes at time `nowMs` (any monotonic clock in ms, e.g.
   * performance.now()). Returns 0 if admitted (tokens taken), else the ms to wait before asking
   * again (nothing taken).
   */
  delayMs(bytes: number, nowMs: number): number {
    if (nowMs > this.lastMs) {
      if (this.lastMs !== -Infinity) {
        const dt = nowMs - this.lastMs;
        this.ops = Math.min(this.opsBurst, this.ops + dt * this.opsPerMs);
        this.bytes = Math.min(this.bytesBurst, this.bytes + dt * this.bytesPerMs);
      }
      this.lastMs = nowMs;
    }
    let wait = 0;
    if (this.opsPerMs > 0) {
      const want = Math.min(1, this.opsBurst);
      if (want - this.ops > want * EPSILON) wait = (want - this.ops) / this.opsPerMs;
    }
    if (this.bytesPerMs > 0) {
      const want = Math.min(bytes, this.bytesBurst);
      if (want - this.bytes > want * EPSILON) wait = Math.max(wait, (want - this.bytes) / this.bytesPerMs);
    }
    if (wait > 0) return wait;
    if (this.opsPerMs > 0) this.ops -= 1;
    if (this.bytesPerMs > 0) this.bytes -= bytes;
    return 0;
  }
}

function rate(value: number | undefined, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !(value >= 0 && value < Infinity)) {
    throw new StorageError('bad-spec', `Invalid ${name} limit ${String(value)} (want a number >= 0)`);
  }
  return value;
}

function burst(value: number | undefined, perSecond: number, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < Infinity)) {
    throw new StorageError('bad-spec', `Invalid ${name} burst ${String(value)} (want a number > 0)`);
  }
  if (perSecond === 0) throw new StorageError('bad-spec', `A ${name} burst needs a ${name} limit`);
  return value;
}
