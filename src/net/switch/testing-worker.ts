/**
 * A test guest in its own worker thread, on a switch port opened from the handle in workerData
 * (as a VM thread does): it sends `count` frames of `size` bytes to `peer`, each carrying a
 * sequence number and a checksum of its bytes, and checks the frames it receives the same way.
 * With `backpressure`, its NIC has no receive buffers every so often, for a few milliseconds.
 * Posts { type: 'sent' } once it has sent everything, and its report when asked ({ type: 'report' }).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { plainFrame } from '../../devices/virtio/net/backend.js';
import { mulberry32 } from '../../devices/virtio/testing.js';
import { SwitchPortBackend } from './backend.js';
import type { PortHandle } from './channel.js';
import { TestNic, macBytes } from './testing.js';

export interface GuestWorkerData {
  handle: PortHandle;
  mac: string;
  peer: string;
  count: number;
  size: number;
  /** Frames sent between two yields to the event loop. */
  batch: number;
  seed: number;
  backpressure: boolean;
}

export interface GuestReport {
  type: 'report';
  sent: number;
  txDropped: number;
  received: number;
  bad: number;
  outOfOrder: number;
  refusals: number;
  /** ms from the first frame received to the last. */
  rxMs: number;
  rxBytes: number;
}

const d = workerData as GuestWorkerData;
const HDR = 14 + 8;

/** FNV-1a over the frame after its checksum field. */
function fnv(b: Uint8Array, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

class CountingNic extends TestNic {
  received = 0; bad = 0; outOfOrder = 0; refusals = 0; lastSeq = -1; firstMs = 0; lastMs = 0; bytes = 0;
  private sinceRefusal = 0;

  override deliver(frame: Uint8Array): boolean {
    if (d.backpressure && ++this.sinceRefusal > 200) {
      this.sinceRefusal = 0;
      this.refusals++;
      setTimeout(() => this.onRxSpace?.(), 3);
      return false;
    }
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.length);
    if (frame.length < HDR || dv.getUint32(14 + 4) !== fnv(frame, HDR)) this.bad++;
    const seq = frame.length >= HDR ? dv.getUint32(14) : -1;
    if (seq <= this.lastSeq) this.outOfOrder++;
    this.lastSeq = seq;
    const now = performance.now();
    if (this.received++ === 0) this.firstMs = now;
    this.lastMs = now;
    this.bytes += frame.length;
    return true;
  }
}

const nic = new CountingNic(d.mac);
const backend = new SwitchPortBackend(d.handle);
backend.attach(nic);

parentPort!.on('message', (m: { type: string }) => {
  if (m.type !== 'report') return;
  const s = backend.stats();
  const r: GuestReport = {
    type: 'report', sent: s.txFrames!, txDropped: s.txDropped!, received: nic.received, bad: nic.bad, outOfOrder: nic.outOfOrder,
    refusals: nic.refusals, rxMs: nic.lastMs - nic.firstMs, rxBytes: nic.bytes,
  };
  parentPort!.postMessage(r);
});

async function sendAll(): Promise<void> {
  const rnd = mulberry32(d.seed);
  const frame = new Uint8Array(d.size);
  frame.set(macBytes(d.peer), 0);
  frame.set(macBytes(d.mac), 6);
  frame[12] = 0x88; frame[13] = 0xb5;
  for (let i = HDR; i < frame.length; i++) frame[i] = (rnd() * 256) | 0;
  const dv = new DataView(frame.buffer);
  const meta = plainFrame();
  for (let seq = 0; seq < d.count; seq++) {
    dv.setUint32(14, seq);
    frame[HDR + (seq % (d.size - HDR))] ^= seq & 0xff;
    dv.setUint32(18, fnv(frame, HDR));
    backend.send(frame, meta);
    if (seq % d.batch === d.batch - 1) await new Promise(r => setImmediate(r));
  }
  parentPort!.postMessage({ type: 'sent' });
}

void sendAll();
