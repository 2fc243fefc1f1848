/**
 * The channel between a switch port (daemon's main thread) and the VM thread that owns the NIC:
 * two one-way frame paths and a small shared state block. The switch creates it and gives the VM
 * thread a PortHandle (structured-cloneable: SharedArrayBuffers, and for the message transport a
 * MessagePort that must be in the postMessage transfer list, see handleTransfer()).
 *
 * Two transports carry the frames, the same record format in both (ring.ts):
 *   ring     a SharedArrayBuffer SPSC ring per direction (the default: faster, see README.md)
 *   message  one transferred ArrayBuffer per frame over a MessagePort, bounded by a shared count
 *            of bytes in flight
 *
 * State block (Int32Array words, written by the side named):
 *   0 OFFLOADS   VM: what its guest accepts (bits below) and whether its link is up
 *   1 MAX_FRAME  VM: the largest frame the guest takes
 *   2 VM_DROPS   VM: frames it dropped because the path to the switch was full
 *   3 CLOSED     switch: 1 once the port is removed
 *   4 INFLIGHT_TO_VM, 5 INFLIGHT_FROM_VM   message transport: bytes posted and not yet taken
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { FrameMeta } from '../../devices/virtio/net/backend.js';
import { plainFrame } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { SwitchError } from './errors.js';
import {
  DEFAULT_RING_BYTES, MIN_RING_BYTES, Rec, RingReader, RingWriter, createRing, readRecordHeader, recordSize, ringCapacity,
  writeRecordHeader, type FrameRx, type FrameTx, type Take,
} from './ring.js';

export type Transport = 'ring' | 'message';

export const enum St { OFFLOADS = 0, MAX_FRAME = 1, VM_DROPS = 2, CLOSED = 3, INFLIGHT_TO_VM = 4, INFLIGHT_FROM_VM = 5, WORDS = 6 }
export const enum Off { CSUM = 1, TSO4 = 2, TSO6 = 4, LINK = 8 }

/** What the VM thread needs to open its end of a port (pass it in workerData or a message). */
export interface PortHandle {
  readonly gasangSwitchPort: 1;
  /** The port's id in the switch, for logs. */
  readonly id: string;
  readonly transport: Transport;
  readonly state: SharedArrayBuffer;
  /** ring: frames toward the VM, and from it. */
  readonly toVm?: SharedArrayBuffer;
  readonly fromVm?: SharedArrayBuffer;
  /** message: the VM's end of the channel (transfer it). */
  readonly port?: MessagePort;
  /** message: bytes allowed in flight each way. */
  readonly limit?: number;
}

/** The objects to list in postMessage's transfer list when sending `handle`. */
export const handleTransfer = (handle: PortHandle): MessagePort[] => (handle.port ? [handle.port] : []);

/** One side of a channel. */
export interface Endpoint {
  readonly tx: FrameTx;
  readonly rx: FrameRx;
  readonly state: Int32Array;
  close(): void;
}

/** Creates a channel; returns the handle for the VM thread and the switch's end. */
export function createChannel(id: string, transport: Transport, bytes = DEFAULT_RING_BYTES): { handle: PortHandle; end: Endpoint } {
  if (!(Number.isInteger(bytes) && bytes >= MIN_RING_BYTES && bytes <= 1 << 30 && (bytes & (bytes - 1)) === 0)) {
    throw new SwitchError('bad-port', `Port ${id}: ringBytes ${bytes} is not a power of two from ${MIN_RING_BYTES} to 2^30`);
  }
  const state = new SharedArrayBuffer(St.WORDS * 4);
  const i32 = new Int32Array(state);
  Atomics.store(i32, St.MAX_FRAME, 1514);
  if (transport === 'ring') {
    const toVm = createRing(bytes), fromVm = createRing(bytes);
    const end = endpoint(new RingWriter(toVm), new RingReader(fromVm), i32, () => {});
    return { handle: { gasangSwitchPort: 1, id, transport, state, toVm, fromVm }, end };
  }
  const { port1, port2 } = new MessageChannel();
  const end = endpoint(new MessageWriter(port1, i32, St.INFLIGHT_TO_VM, bytes), new MessageReader(port1, i32, St.INFLIGHT_FROM_VM), i32, () => port1.close());
  return { handle: { gasangSwitchPort: 1, id, transport, state, port: port2, limit: bytes }, end };
}

/** Opens the VM's end of a channel from its handle (as received by the VM thread). */
export function openChannel(h: PortHandle): Endpoint {
  const fail = (what: string): SwitchError => new SwitchError('bad-handle', `Not a switch port handle: ${what}`);
  if (typeof h !== 'object' || h === null || h.gasangSwitchPort !== 1) throw fail('missing its marker');
  if (!(h.state instanceof SharedArrayBuffer) || h.state.byteLength !== St.WORDS * 4) throw fail('bad state block');
  const i32 = new Int32Array(h.state);
  if (h.transport === 'ring') {
    if (ringCapacity(h.toVm) < 0 || ringCapacity(h.fromVm) < 0) throw fail('bad rings');
    return endpoint(new RingWriter(h.fromVm!), new RingReader(h.toVm!), i32, () => {});
  }
  if (h.transport === 'message') {
    const port = h.port;
    if (!port || typeof port.postMessage !== 'function' || typeof h.limit !== 'number') throw fail('no message port');
    return endpoint(new MessageWriter(port, i32, St.INFLIGHT_FROM_VM, h.limit), new MessageReader(port, i32, St.INFLIGHT_TO_VM), i32, () => port.close());
  }
  throw fail(`unknown transport ${JSON.stringify(h.transport)}`);
}

function endpoint(tx: FrameTx, rx: FrameRx, state: Int32Array, closePort: () => void): Endpoint {
  return { tx, rx, state, close: () => { rx.close(); closePort(); } };
}

/** One transferred buffer per frame: [record header][frame]. */
class MessageWriter implements FrameTx {
  constructor(private readonly port: MessagePort, private readonly state: Int32Array, private readonly word: number, private readonly limit: number) {}

  push(frame: Uint8Array, meta: FrameMeta): boolean {
    const len = frame.length;
    const size = recordSize(len);
    if (len > MAX_FRAME || Atomics.load(this.state, this.word) + size > this.limit) return false;
    Atomics.add(this.state, this.word, size);
    const buf = new ArrayBuffer(Rec.SIZE + len);
    writeRecordHeader(new DataView(buf), 0, len, meta);
    new Uint8Array(buf).set(frame, Rec.SIZE);
    this.port.postMessage(buf, [buf]);
    return true;
  }
}

class MessageReader implements FrameRx {
  /** Frames received and not yet taken (bounded by the writer's in-flight limit). */
  private readonly queue: (ArrayBuffer | undefined)[] = [];
  private first = 0;
  private take: Take | undefined;
  private blocked = false;
  private closed = false;
  private readonly meta = plainFrame();
  corrupt = 0;

  constructor(private readonly port: MessagePort, private readonly state: Int32Array, private readonly word: number) {}

  start(take: Take): void {
    this.take = take;
    this.port.on('message', this.onMessage);
  }

  resume(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.drain();
  }

  close(): void {
    this.closed = true;
    this.port.off('message', this.onMessage);
  }

  private readonly onMessage = (buf: unknown): void => {
    if (this.closed) return;
    if (!(buf instanceof ArrayBuffer) || buf.byteLength < Rec.SIZE) { this.corrupt++; return; }
    this.queue.push(buf);
    if (!this.blocked) this.drain();
  };

  private drain(): void {
    const take = this.take!;
    const q = this.queue;
    while (this.first < q.length && !this.closed) {
      const buf = q[this.first]!;
      const len = readRecordHeader(new DataView(buf), 0, this.meta);
      if (len === buf.byteLength - Rec.SIZE) {
        if (!take(new Uint8Array(buf, Rec.SIZE, len), this.meta)) { this.blocked = true; return; }
      } else this.corrupt++;
      q[this.first++] = undefined;
      Atomics.sub(this.state, this.word, recordSize(buf.byteLength - Rec.SIZE));
    }
    q.length = 0;
    this.first = 0;
  }
}
