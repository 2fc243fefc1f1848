/**
 * virtio-console with a single port (VIRTIO 1.x §5.3, no MULTIPORT): queue 0 is port 0's
 * receiveq (host → guest), queue 1 its transmitq (guest → host). Linux makes it an hvc terminal:
 * hvc0, or hvc1 when its SBI console (CONFIG_HVC_RISCV_SBI, as in the bundled kernel) took hvc0.
 *
 * Output goes to the sink the machine supplies (a copy per buffer: guest RAM changes under it).
 * Input from the host waits in a bounded buffer until the driver has made receive buffers
 * available; beyond the bound, bytes are dropped and counted (a console nobody reads must not
 * grow without limit).
 */
import { DeviceId, type FeatureWords, type VirtioContext, type VirtioDevice } from '../device.js';
import { DescChain } from '../queue.js';

export const CONSOLE_QUEUE_SIZE = 128;
/** Host input kept while the guest is not reading. */
export const CONSOLE_INPUT_LIMIT = 64 * 1024;
/** Bytes taken from one transmit buffer at most (a hostile guest could name gigabytes). */
export const CONSOLE_MAX_WRITE = 64 * 1024;

const enum Q { RX = 0, TX = 1 }

export interface VirtioConsoleOptions {
  /** Receives what the guest writes to the port. */
  output(bytes: Uint8Array): void;
}

export interface ConsoleState {
  /** Host input not yet delivered, as byte values. */
  pending: number[];
}

export class VirtioConsole implements VirtioDevice {
  readonly name = 'virtio-console';
  readonly deviceId = DeviceId.CONSOLE;
  readonly features: FeatureWords = { lo: 0, hi: 0 };
  readonly queueMaxSizes = [CONSOLE_QUEUE_SIZE, CONSOLE_QUEUE_SIZE];
  /** Input bytes dropped because the guest was not reading. */
  dropped = 0;
  private ctx: VirtioContext | undefined;
  private readonly output: (bytes: Uint8Array) => void;
  private readonly chain = new DescChain(CONSOLE_QUEUE_SIZE);
  /** Pending input: bytes [head, tail) of `buf`. */
  private buf = new Uint8Array(256);
  private head = 0;
  private tail = 0;

  constructor(opts: VirtioConsoleOptions) {
    this.output = opts.output;
  }

  readConfig(): number { return 0; } // cols, rows, max_nr_ports, emerg_wr: none of their features is offered
  writeConfig(): void {}

  activate(ctx: VirtioContext): void {
    this.ctx = ctx;
    this.transmit();
    this.receive();
  }

  notify(queue: number): void {
    if (queue === Q.TX) this.transmit();
    else this.receive();
  }

  /** Bytes typed for the guest's port. */
  input(bytes: ArrayLike<number>): void {
    let n = bytes.length;
    const room = CONSOLE_INPUT_LIMIT - (this.tail - this.head);
    if (n > room) { this.dropped += n - room; n = room; }
    if (n <= 0) return;
    if (this.tail + n > this.buf.length) {
      const live = this.buf.subarray(this.head, this.tail);
      const next = this.buf.length >= live.length + n ? this.buf : new Uint8Array(Math.max(2 * this.buf.length, live.length + n));
      next.set(live);
      this.buf = next;
      this.tail -= this.head;
      this.head = 0;
    }
    for (let i = 0; i < n; i++) this.buf[this.tail++] = bytes[i]!;
    this.receive();
  }

  reset(): void { this.ctx = undefined; }
  close(): void { this.reset(); }

  save(): ConsoleState { return { pending: Array.from(this.buf.subarray(this.head, this.tail)) }; }

  restore(state: unknown): void {
    const pending = (state as Partial<ConsoleState> | null)?.pending ?? [];
    this.head = this.tail = 0;
    this.input(pending);
  }

  /** Delivers pending input into available receive buffers. */
  private receive(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.RX];
    if (!ctx || !q?.ready || this.head === this.tail) return;
    let served = 0;
    while (this.head < this.tail && q.pop(this.chain)) {
      const n = this.chain.write(ctx.mem, 0, this.buf.subarray(this.head, this.tail));
      this.head += n;
      q.push(this.chain.head, n);
      served++;
    }
    if (this.head === this.tail) this.head = this.tail = 0;
    if (served) ctx.signalUsed(q);
  }

  /** Sends every available transmit buffer to the sink. */
  private transmit(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[Q.TX];
    if (!ctx || !q?.ready) return;
    const chain = this.chain;
    let served = 0;
    while (q.pop(chain)) {
      const out = new Uint8Array(Math.min(chain.readableBytes, CONSOLE_MAX_WRITE));
      chain.read(ctx.mem, 0, out);
      if (out.length) this.output(out);
      q.push(chain.head, 0);
      served++;
    }
    if (served) ctx.signalUsed(q);
  }
}
