/**
 * A VM's serial console shared by several clients: each sees the recent output (a replay of up
 * to REPLAY_BYTES) and then everything that follows; at most one holds the write side.
 */
import { HostError, type ConsoleClient } from './types.js';

/** Output kept for clients that attach later (and for a client until it listens). */
export const REPLAY_BYTES = 64 * 1024;

export class ConsoleHub {
  /** Recent output: the last REPLAY_BYTES bytes, in a ring. */
  private readonly ring = new Uint8Array(REPLAY_BYTES);
  private ringEnd = 0;
  private ringFull = false;
  private readonly clients = new Set<HubClient>();
  private writer: HubClient | undefined;

  /** `send` delivers typing to the guest (dropped while the VM does not run). */
  constructor(private readonly name: string, private readonly send: (bytes: Uint8Array) => void) {}

  /** Guest output. */
  push(bytes: Uint8Array): void {
    this.record(bytes);
    for (const c of this.clients) c.deliver(bytes);
  }

  attach(opts: { write?: boolean } = {}): ConsoleClient {
    if (opts.write && this.writer) throw new HostError('conflict', `Another client holds the write side of ${this.name}'s console`);
    const client = new HubClient(this, this.recent(), opts.write === true);
    this.clients.add(client);
    if (client.writer) this.writer = client;
    return client;
  }

  /** Clients attached now. */
  get size(): number { return this.clients.size; }

  /** @internal */
  input(client: HubClient, bytes: Uint8Array | string): void {
    if (this.writer !== client) throw new HostError('conflict', `This client does not hold the write side of ${this.name}'s console`);
    const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
    if (data.length) this.send(data);
  }

  /** @internal */
  detach(client: HubClient): void {
    this.clients.delete(client);
    if (this.writer === client) this.writer = undefined;
  }

  private record(bytes: Uint8Array): void {
    const ring = this.ring;
    if (bytes.length >= ring.length) {
      ring.set(bytes.subarray(bytes.length - ring.length));
      this.ringEnd = 0;
      this.ringFull = true;
      return;
    }
    const first = Math.min(bytes.length, ring.length - this.ringEnd);
    ring.set(bytes.subarray(0, first), this.ringEnd);
    ring.set(bytes.subarray(first), 0);
    const end = this.ringEnd + bytes.length;
    if (end >= ring.length) this.ringFull = true;
    this.ringEnd = end % ring.length;
  }

  private recent(): Uint8Array {
    if (!this.ringFull) return this.ring.slice(0, this.ringEnd);
    const out = new Uint8Array(this.ring.length);
    out.set(this.ring.subarray(this.ringEnd));
    out.set(this.ring.subarray(0, this.ringEnd), this.ring.length - this.ringEnd);
    return out;
  }
}

class HubClient implements ConsoleClient {
  private readonly listeners: ((bytes: Uint8Array) => void)[] = [];
  /** Output (the replay first) held until the first listener; bounded like the replay. */
  private held: Uint8Array[] | undefined;
  private heldBytes = 0;
  private attached = true;

  constructor(private readonly hub: ConsoleHub, replay: Uint8Array, readonly writer: boolean) {
    this.held = replay.length ? [replay] : [];
    this.heldBytes = replay.length;
  }

  onData(listener: (bytes: Uint8Array) => void): void {
    this.listeners.push(listener);
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    for (const b of held) listener(b);
  }

  write(bytes: Uint8Array | string): void {
    if (!this.attached) throw new HostError('conflict', 'This console client is detached');
    this.hub.input(this, bytes);
  }

  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.hub.detach(this);
  }

  /** @internal */
  deliver(bytes: Uint8Array): void {
    if (this.held) {
      this.held.push(bytes);
      this.heldBytes += bytes.length;
      while (this.heldBytes > REPLAY_BYTES && this.held.length > 1) this.heldBytes -= this.held.shift()!.length;
      return;
    }
    for (const l of this.listeners) l(bytes);
  }
}
