import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDriver, mulberry32 } from '../testing.js';
import { Reg } from '../mmio.js';
import { VirtioNet } from './device.js';
import { Gso, plainFrame, type FrameMeta, type NetBackend, type NicPort } from './backend.js';
import { HDR_F_DATA_VALID, HDR_F_NEEDS_CSUM, NetFeature, NetHdr } from './layout.js';

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

/** The backend side, recorded: what a real backend would receive. */
class RecordingBackend implements NetBackend {
  readonly description = 'recording';
  port: NicPort | undefined;
  readonly sent: { frame: Uint8Array; meta: FrameMeta }[] = [];
  closed = false;
  attach(port: NicPort): void { this.port = port; }
  send(frame: Uint8Array, meta: FrameMeta): void { this.sent.push({ frame: frame.slice(), meta: { ...meta } }); }
  stats(): Record<string, number> { return {}; }
  close(): void { this.closed = true; }
}

function setup(opts: { without?: number } = {}): { d: TestDriver; net: VirtioNet; be: RecordingBackend } {
  const be = new RecordingBackend();
  const net = new VirtioNet({ mac: MAC, backend: be });
  const d = new TestDriver(net);
  d.init({ without: opts.without });
  return { d, net, be };
}

function frameOf(len: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = Math.floor(r() * 256);
  return f;
}

function header(fields: Partial<Record<'flags' | 'gso' | 'hdrLen' | 'gsoSize' | 'csumStart' | 'csumOffset', number>>): Uint8Array {
  const h = new Uint8Array(NetHdr.SIZE);
  const v = new DataView(h.buffer);
  h[NetHdr.FLAGS] = fields.flags ?? 0;
  h[NetHdr.GSO_TYPE] = fields.gso ?? 0;
  v.setUint16(NetHdr.HDR_LEN, fields.hdrLen ?? 0, true);
  v.setUint16(NetHdr.GSO_SIZE, fields.gsoSize ?? 0, true);
  v.setUint16(NetHdr.CSUM_START, fields.csumStart ?? 0, true);
  v.setUint16(NetHdr.CSUM_OFFSET, fields.csumOffset ?? 0, true);
  return h;
}

function transmit(d: TestDriver, hdr: Uint8Array, frame: Uint8Array): void {
  d.submit(1, [{ addr: d.alloc(hdr.length, hdr), len: hdr.length }, { addr: d.alloc(frame.length, frame), len: frame.length }]);
  d.kick(1);
}

function postRx(d: TestDriver, count: number, size: number): number[] {
  const addrs: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = d.alloc(size);
    addrs.push(a);
    d.submit(0, [{ addr: a, len: size, write: true }]);
  }
  return addrs;
}

test('config space holds the MAC and link status; the offloads are offered', () => {
  const { d, net } = setup();
  const mac = Array.from({ length: 6 }, (_, i) => d.transport.read(Reg.CONFIG + i, 1));
  assert.deepEqual(mac, Array.from(MAC));
  assert.equal(d.transport.read(Reg.CONFIG + 6, 2), 1, 'VIRTIO_NET_S_LINK_UP');
  const [lo] = d.offered();
  for (const f of [NetFeature.MAC, NetFeature.STATUS, NetFeature.MRG_RXBUF, NetFeature.CSUM, NetFeature.GUEST_CSUM, NetFeature.HOST_TSO4, NetFeature.GUEST_TSO4]) {
    assert.ok(lo & f, `feature ${f} offered`);
  }
  assert.deepEqual(net.offloads, { csum: true, tso4: true, tso6: false, maxFrame: 65_550 });
  d.ack();
  net.setLink(false);
  assert.equal(d.transport.read(Reg.CONFIG + 6, 2), 0, 'link down');
  assert.equal(d.ack() & 2, 2, 'configuration change interrupt');
  assert.equal(net.linkUp, false);
});

test('transmitted frames reach the backend with their offload metadata', () => {
  const { d, net, be } = setup();
  const plain = frameOf(60, 1);
  transmit(d, header({}), plain);
  const tso = frameOf(30_000, 2);
  transmit(d, header({ flags: HDR_F_NEEDS_CSUM, gso: Gso.TCPV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 }), tso);
  assert.equal(be.sent.length, 2);
  assert.deepEqual(be.sent[0]!.frame, plain);
  assert.deepEqual(be.sent[0]!.meta, plainFrame());
  assert.deepEqual(be.sent[1]!.frame, tso);
  assert.deepEqual(be.sent[1]!.meta, { needsCsum: true, csumStart: 34, csumOffset: 16, dataValid: false, gso: Gso.TCPV4, gsoSize: 1448, hdrLen: 54 });
  assert.equal(d.takeUsed(1).length, 2, 'both buffers returned');
  assert.equal(net.counters.txFrames, 2);
  assert.equal(net.counters.txBytes, 30_060);
});

test('malformed or unnegotiated transmit headers are dropped and counted, the buffers still returned', () => {
  const { d, net, be } = setup({ without: NetFeature.HOST_TSO4 });
  transmit(d, header({}), new Uint8Array(10)); // shorter than an Ethernet header
  transmit(d, header({ flags: HDR_F_NEEDS_CSUM, csumStart: 50, csumOffset: 16 }), new Uint8Array(60)); // checksum beyond the frame
  transmit(d, header({ gso: Gso.TCPV4, gsoSize: 1448, hdrLen: 54 }), new Uint8Array(3000)); // TSO not negotiated
  transmit(d, header({ gso: 99 }), new Uint8Array(60));
  d.submit(1, [{ addr: d.alloc(8), len: 8 }]); // shorter than the header
  d.kick(1);
  assert.equal(be.sent.length, 0);
  assert.equal(net.counters.txDropped, 5);
  assert.equal(d.takeUsed(1).length, 5);
  assert.equal(d.reg(Reg.STATUS) & 0x40, 0, 'no DEVICE_NEEDS_RESET');
  assert.ok(d.guardsIntact());
});

test('a large frame spreads over mergeable receive buffers; without room the backend waits for onRxSpace', () => {
  const { d, net, be } = setup();
  const port = be.port!;
  let spaces = 0;
  port.onRxSpace = () => { spaces++; };
  const addrs = postRx(d, 2, 1536);
  d.kick(0);
  const frame = frameOf(4000, 3);
  assert.equal(port.deliver(frame, plainFrame()), false, 'two buffers cannot hold 4012 bytes');
  assert.equal(d.takeUsed(0).length, 0, 'nothing used');
  addrs.push(...postRx(d, 1, 1536));
  d.kick(0);
  assert.equal(spaces, 1, 'told once the driver posted more');
  const meta = { ...plainFrame(), dataValid: true, gso: Gso.TCPV4, gsoSize: 1460, hdrLen: 54 };
  assert.equal(port.deliver(frame, meta), true);
  const used = d.takeUsed(0);
  assert.deepEqual(used.map(u => u.len), [1536, 1536, 4012 - 3072]);
  const got = new Uint8Array(4012);
  got.set(d.bytes(addrs[0]!, 1536), 0);
  got.set(d.bytes(addrs[1]!, 1536), 1536);
  got.set(d.bytes(addrs[2]!, 4012 - 3072), 3072);
  const h = new DataView(got.buffer, 0, NetHdr.SIZE);
  assert.equal(h.getUint8(NetHdr.FLAGS), HDR_F_DATA_VALID);
  assert.equal(h.getUint8(NetHdr.GSO_TYPE), Gso.TCPV4);
  assert.equal(h.getUint16(NetHdr.GSO_SIZE, true), 1460);
  assert.equal(h.getUint16(NetHdr.HDR_LEN, true), 54);
  assert.equal(h.getUint16(NetHdr.NUM_BUFFERS, true), 3);
  assert.deepEqual(got.subarray(NetHdr.SIZE), frame);
  assert.equal(net.counters.rxFrames, 1);
  assert.ok(d.guardsIntact());
});

test('without mergeable buffers or guest offloads: one buffer per frame, oversized frames and offloads dropped', () => {
  const { d, net, be } = setup({ without: NetFeature.MRG_RXBUF | NetFeature.GUEST_CSUM | NetFeature.GUEST_TSO4 });
  const port = be.port!;
  assert.deepEqual(net.offloads, { csum: false, tso4: false, tso6: false, maxFrame: 1514 });
  const [a] = postRx(d, 1, 1526);
  d.kick(0);
  const frame = frameOf(1514, 4);
  assert.equal(port.deliver(frame, plainFrame()), true);
  assert.deepEqual(d.bytes(a!, 1526).subarray(NetHdr.SIZE), frame);
  assert.equal(port.deliver(frameOf(1600, 5), plainFrame()), true, 'dropped, not kept');
  assert.equal(port.deliver(frameOf(100, 6), { ...plainFrame(), needsCsum: true, csumStart: 34, csumOffset: 16 }), true, 'dropped');
  assert.equal(net.counters.rxDropped, 2);
  postRx(d, 1, 100);
  d.kick(0);
  assert.equal(port.deliver(frameOf(200, 7), plainFrame()), true, 'a too-small buffer loses the frame');
  assert.deepEqual(d.takeUsed(0).map(u => u.len), [1526, 0]);
  assert.equal(net.counters.rxDropped, 3);
});

test('a frame for a guest whose driver is not up waits; activation tells the backend', () => {
  const be = new RecordingBackend();
  const net = new VirtioNet({ mac: MAC, backend: be });
  let spaces = 0;
  be.port!.onRxSpace = () => { spaces++; };
  assert.equal(be.port!.deliver(frameOf(60, 8), plainFrame()), false);
  const d = new TestDriver(net);
  d.init();
  assert.equal(spaces, 1);
  assert.equal(net.linkUp, true);
  net.close();
  assert.ok(be.closed, 'closing the NIC closes its backend');
});

test('save → restore → save is the same', () => {
  const { net } = setup();
  net.setLink(false);
  const s = net.save();
  const other = new VirtioNet({ mac: MAC, backend: new RecordingBackend() });
  other.restore(s);
  assert.deepEqual(other.save(), s);
  assert.equal(other.readConfig(6, 2), 0);
});
