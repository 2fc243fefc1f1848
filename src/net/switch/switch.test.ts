import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainFrame, type FrameMeta, type NetBackend, type NicPort } from '../../devices/virtio/net/backend.js';
import { fold, pseudoSum, verifies } from '../packet/checksum.js';
import { Eth, EtherType, be16, put16 } from '../packet/ethernet.js';
import { IpProto, parseIp4 } from '../packet/ip.js';
import { SwitchError } from './errors.js';
import { VirtualSwitch, type SwitchOptions } from './switch.js';
import { BROADCAST, arp, ether, gsoFrame, guest, mac, sendAll, settle, tcp } from './testing.js';
import type { PortOptions } from './port.js';

function network(extra: Partial<SwitchOptions> = {}): VirtualSwitch {
  return new VirtualSwitch({ name: 'test', ...extra });
}

function plug(sw: VirtualSwitch, n: number, o: Partial<PortOptions> = {}, offloads: 'all' | 'none' = 'all') {
  const m = mac(n);
  const g = guest(sw.addPort({ id: `vm${n}/0`, vm: `vm${n}`, mac: m, ...o }), m, offloads);
  return { ...g, mac: m, id: `vm${n}/0` };
}

const port = (sw: VirtualSwitch, id: string) => sw.stats().ports.find(p => p.id === id)!;

test('learning: unknown unicast and broadcast are flooded, a learned address goes to its port only, never back out', async t => {
  const sw = network();
  t.after(() => sw.close());
  const a = plug(sw, 1), b = plug(sw, 2), c = plug(sw, 3);
  // Broadcast from a reaches b and c, not a.
  sendAll(a.backend, arp({ dst: BROADCAST, src: a.mac }, a.mac, '10.0.0.1', '10.0.0.2'));
  await settle(() => b.nic.got.length === 1 && c.nic.got.length === 1);
  assert.equal(a.nic.got.length, 0);
  // Unicast to an address nobody has sent from is flooded too.
  sendAll(a.backend, tcp({ dst: '52:54:00:aa:bb:cc', src: a.mac }, { srcIp: '10.0.0.1', dstIp: '10.0.0.9', sport: 1, dport: 2 }));
  await settle(() => b.nic.got.length === 2 && c.nic.got.length === 2);
  // b answers a: a's address was learned (it is also a's static entry), so only a gets it.
  sendAll(b.backend, tcp({ dst: a.mac, src: b.mac }, { srcIp: '10.0.0.2', dstIp: '10.0.0.1', sport: 2, dport: 1 }));
  await settle(() => a.nic.got.length === 1);
  await settle();
  assert.equal(c.nic.got.length, 2, 'c saw nothing of the unicast reply');
  assert.equal(port(sw, c.id).txFrames, 2);
  assert.equal(port(sw, a.id).rxFrames, 2);
  assert.equal(port(sw, b.id).txFrames, 2);
});

test('learning table: addresses behind a trusted port are learned up to its limit and the cap, then flooded; aging forgets them', async t => {
  let now = 0;
  const sw = network({ fdbCapacity: 8, macLimit: 5, fdbAgingMs: 1000, now: () => now });
  t.after(() => sw.close());
  const bridge = plug(sw, 1, { trusted: true }), b = plug(sw, 2), c = plug(sw, 3);
  for (let i = 0; i < 20; i++) sendAll(bridge.backend, ether({ dst: BROADCAST, src: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}` }, 0x88b5, new Uint8Array(46)));
  await settle(() => b.nic.got.length === 20);
  let s = sw.stats();
  assert.equal(s.fdb.size, 5, 'the port limit held');
  assert.equal(s.fdb.refused, 15);
  // A learned address behind the bridge: b's frame to it goes to the bridge only.
  sendAll(b.backend, ether({ dst: '02:00:00:00:01:00', src: b.mac }, 0x88b5, new Uint8Array(46)));
  await settle(() => bridge.nic.got.length === 1);
  await settle();
  assert.equal(c.nic.got.length, 20);
  now = 5000;
  sendAll(b.backend, ether({ dst: '02:00:00:00:01:00', src: b.mac }, 0x88b5, new Uint8Array(46)));
  await settle(() => c.nic.got.length === 21);
  s = sw.stats();
  assert.ok(s.fdb.size <= 5);
});

test('VLAN isolation: access ports on VLAN 10 talk; a port on VLAN 20 receives nothing and its counters stay 0', async t => {
  const sw = network();
  t.after(() => sw.close());
  const a = plug(sw, 1, { vlan: 10 }), b = plug(sw, 2, { vlan: 10 }), c = plug(sw, 3, { vlan: 20 });
  sendAll(a.backend,
    arp({ dst: BROADCAST, src: a.mac }, a.mac, '10.0.0.1', '10.0.0.2'),
    tcp({ dst: c.mac, src: a.mac }, { srcIp: '10.0.0.1', dstIp: '10.0.0.3', sport: 1, dport: 80 }),
    ether({ dst: '01:00:5e:00:00:01', src: a.mac }, 0x88b5, new Uint8Array(46)));
  await settle(() => b.nic.got.length === 2);
  await settle();
  assert.equal(c.nic.got.length, 0);
  const sc = port(sw, c.id);
  assert.equal(sc.txFrames + sc.rxFrames + sc.txBytes + sc.rxBytes, 0);
  assert.deepEqual(Object.values(sc.drops), [0, 0, 0, 0, 0, 0, 0]);
  // The unicast to c's address (on another VLAN) went nowhere: counted on the sender.
  assert.equal(port(sw, a.id).drops.noroute, 1);
  // A tagged frame from an access port is refused.
  sendAll(a.backend, ether({ dst: BROADCAST, src: a.mac, vlan: 20 }, 0x88b5, new Uint8Array(46)));
  await settle(() => port(sw, a.id).drops.vlan === 1);
  assert.equal(c.nic.got.length, 0);
});

test('trunk: tagged frames of allowed VLANs pass, are untagged to access ports and tagged back; the native VLAN goes untagged', async t => {
  const sw = network();
  t.after(() => sw.close());
  const trunk = plug(sw, 1, { trunk: { allowed: '10,20', native: 30 } });
  const v10 = plug(sw, 2, { vlan: 10 }), v20 = plug(sw, 3, { vlan: 20 }), v30 = plug(sw, 4, { vlan: 30 }), v40 = plug(sw, 5, { vlan: 40 });
  sendAll(trunk.backend, ether({ dst: BROADCAST, src: trunk.mac, vlan: 10 }, 0x88b5, new Uint8Array(46).fill(10)));
  await settle(() => v10.nic.got.length === 1);
  const f = v10.nic.got[0]!.frame;
  assert.equal(be16(f, Eth.TYPE), 0x88b5, 'untagged on the access port');
  assert.equal(f.length, 60);
  // Untagged from the trunk: the native VLAN.
  sendAll(trunk.backend, ether({ dst: BROADCAST, src: trunk.mac }, 0x88b5, new Uint8Array(46).fill(30)));
  await settle(() => v30.nic.got.length === 1);
  // VLAN 40 is not allowed on the trunk.
  sendAll(trunk.backend, ether({ dst: BROADCAST, src: trunk.mac, vlan: 40 }, 0x88b5, new Uint8Array(46)));
  await settle(() => port(sw, trunk.id).drops.vlan === 1);
  // From an access port to the trunk: tagged with the access VLAN; from the native VLAN: untagged.
  sendAll(v20.backend, ether({ dst: trunk.mac, src: v20.mac }, 0x88b5, new Uint8Array(46).fill(20)));
  sendAll(v30.backend, ether({ dst: trunk.mac, src: v30.mac }, 0x88b5, new Uint8Array(46).fill(31)));
  sendAll(v40.backend, ether({ dst: trunk.mac, src: v40.mac }, 0x88b5, new Uint8Array(46)));
  await settle(() => trunk.nic.got.length === 2);
  await settle();
  const [tagged, native] = trunk.nic.got.map(g => g.frame);
  assert.equal(be16(tagged!, 12), EtherType.VLAN);
  assert.equal(be16(tagged!, 14) & 0xfff, 20);
  assert.equal(be16(tagged!, 16), 0x88b5);
  assert.equal(tagged![18], 20);
  assert.equal(be16(native!, 12), 0x88b5);
  assert.equal(trunk.nic.got.length, 2, 'nothing from VLAN 40');
  assert.equal(v20.nic.got.length, 0);
  assert.equal(v40.nic.got.length, 0);
});

test('offloads: a TSO super-frame goes as-is to a guest that takes TSO, in MSS segments with valid checksums to one that does not', async t => {
  const sw = network();
  t.after(() => sw.close());
  const a = plug(sw, 1), tso = plug(sw, 2, {}, 'all'), plain = plug(sw, 3, {}, 'none'), trunk = plug(sw, 4, { trunk: { allowed: [1] } }, 'none');
  const { frame, meta } = gsoFrame({ dst: BROADCAST, src: a.mac }, { srcIp: '10.0.0.1', dstIp: '10.0.0.2', sport: 5000, dport: 80 }, 60_000, 1448);
  a.backend.send(frame, meta);
  await settle(() => tso.nic.got.length === 1 && plain.nic.got.length === 42 && trunk.nic.got.length === 42);
  assert.deepEqual(tso.nic.got[0]!.frame, frame);
  assert.equal(tso.nic.got[0]!.meta.gso, 1);
  let seq = 1000, bytes = 0;
  for (const { frame: s, meta: m } of plain.nic.got) {
    assert.equal(m.needsCsum || m.gso !== 0 || m.dataValid, false);
    assert.ok(s.length <= 1514);
    assert.ok(verifies(s, 14, 34), 'IPv4 header checksum');
    const len = s.length - 54;
    assert.ok(verifies(s, 34, s.length, pseudoSum(parseIp4('10.0.0.1')!, parseIp4('10.0.0.2')!, IpProto.TCP, s.length - 34)), 'TCP checksum');
    assert.equal(((s[38]! << 24) | (s[39]! << 16) | (s[40]! << 8) | s[41]!) >>> 0, seq);
    seq += len;
    bytes += len;
  }
  assert.equal(bytes, 60_000);
  // The trunk's copies are tagged (VLAN 1 is not native there) and cut the same way.
  for (const { frame: s } of trunk.nic.got) {
    assert.equal(be16(s, 12), EtherType.VLAN);
    assert.ok(verifies(s, 18, 38));
    assert.ok(verifies(s, 38, s.length, pseudoSum(parseIp4('10.0.0.1')!, parseIp4('10.0.0.2')!, IpProto.TCP, s.length - 38)));
  }
});

test('offloads: a partial checksum is completed for a guest without checksum offload and left partial for one with it', async t => {
  const sw = network();
  t.after(() => sw.close());
  const a = plug(sw, 1), csum = plug(sw, 2, {}, 'all'), plain = plug(sw, 3, {}, 'none');
  const f = tcp({ dst: BROADCAST, src: a.mac }, { srcIp: '10.0.0.1', dstIp: '10.0.0.2', sport: 1, dport: 2, payload: 333 });
  const l4Len = f.length - 34;
  put16(f, 50, fold(pseudoSum(parseIp4('10.0.0.1')!, parseIp4('10.0.0.2')!, IpProto.TCP, l4Len)));
  const meta: FrameMeta = { ...plainFrame(), needsCsum: true, csumStart: 34, csumOffset: 16 };
  a.backend.send(f, meta);
  await settle(() => csum.nic.got.length === 1 && plain.nic.got.length === 1);
  assert.equal(csum.nic.got[0]!.meta.needsCsum, true);
  assert.deepEqual(csum.nic.got[0]!.frame, f, 'the same bytes, still partial');
  const done = plain.nic.got[0]!;
  assert.equal(done.meta.needsCsum, false);
  assert.ok(verifies(done.frame, 34, done.frame.length, pseudoSum(parseIp4('10.0.0.1')!, parseIp4('10.0.0.2')!, IpProto.TCP, l4Len)));
});

test('hostile frames: runts, giants, multicast sources, lying offload metadata and 802.1ad tags are dropped and counted', async t => {
  const sw = network();
  t.after(() => sw.close());
  const a = plug(sw, 1, { trusted: true, trunk: { allowed: [1], native: 1 } }), b = plug(sw, 2);
  a.backend.send(new Uint8Array(10), plainFrame());
  sendAll(a.backend, ether({ dst: BROADCAST, src: a.mac }, 0x88b5, new Uint8Array(1600)));
  sendAll(a.backend, ether({ dst: BROADCAST, src: '01:00:5e:00:00:01' }, 0x88b5, new Uint8Array(46)));
  const short = ether({ dst: BROADCAST, src: a.mac }, EtherType.IPV4, new Uint8Array(10));
  sendAll(a.backend, short);
  a.backend.send(ether({ dst: BROADCAST, src: a.mac }, 0x88b5, new Uint8Array(46)), { ...plainFrame(), needsCsum: true, csumStart: 50, csumOffset: 16 });
  a.backend.send(ether({ dst: BROADCAST, src: a.mac }, 0x88b5, new Uint8Array(46)), { ...plainFrame(), gso: 1, gsoSize: 1000 });
  const qinq = ether({ dst: BROADCAST, src: a.mac, vlan: 1 }, 0x88b5, new Uint8Array(46));
  put16(qinq, 12, 0x88a8);
  sendAll(a.backend, qinq);
  await settle(() => { const d = port(sw, a.id).drops; return d.malformed === 6 && d.vlan === 1; });
  await settle();
  assert.equal(b.nic.got.length, 0);
  assert.deepEqual(port(sw, a.id).drops, { acl: 0, spoof: 0, rate: 0, vlan: 1, malformed: 6, noroute: 0, queue: 0 });
});

test('configuration mistakes are SwitchErrors naming the option', () => {
  const sw = network();
  try {
    assert.throws(() => sw.addPort({ id: 'x', mac: 'nope' }), /Port x: mac/);
    assert.throws(() => sw.addPort({ id: 'x', mac: mac(1), vlan: 5000 }), (e: unknown) => e instanceof SwitchError && /vlan 5000/.test(e.message));
    assert.throws(() => sw.addPort({ id: 'x', mac: mac(1), trunk: { allowed: '10-x' } }), SwitchError);
    assert.throws(() => sw.addPort({ id: 'x', mac: mac(1), acl: [{ action: 'allow', proto: 'icmp', dstPort: 80 }] }), /ports need proto tcp or udp/);
    assert.throws(() => sw.addPort({ id: 'x', mac: mac(1), rate: { bps: -1 } }), /rate.bps/);
    sw.addPort({ id: 'x', mac: mac(1) });
    assert.throws(() => sw.addPort({ id: 'y', mac: mac(1) }), (e: unknown) => e instanceof SwitchError && e.kind === 'port-exists');
    assert.throws(() => sw.removePort('nope'), (e: unknown) => e instanceof SwitchError && e.kind === 'no-port');
    assert.throws(() => new VirtualSwitch({ name: 'n', mtu: 10 }), /mtu 10/);
  } finally {
    sw.close();
  }
});

/** A backend in the daemon's thread that answers every frame at once, from inside the delivery (as a NAT may). */
class EchoUplink implements NetBackend {
  readonly description = 'echo';
  port: NicPort | undefined;
  readonly seen: Uint8Array[] = [];
  closed = false;
  attach(port: NicPort): void { this.port = port; }
  send(frame: Uint8Array): void {
    this.seen.push(frame.slice());
    const reply = frame.slice();
    reply.copyWithin(0, 6, 12);
    reply.set(this.port!.mac, 6);
    this.port!.deliver(reply, plainFrame());
  }
  stats(): Record<string, number> { return {}; }
  close(): void { this.closed = true; }
}

test('uplink: a backend in this thread is a port; answers it gives from inside a delivery are switched after the current frame', async t => {
  const sw = network();
  const up = new EchoUplink();
  sw.addLocalPort({ id: 'uplink', mac: '52:54:00:ff:00:01', uplink: true }, up);
  assert.throws(() => sw.addLocalPort({ id: 'u2', mac: '52:54:00:ff:00:02', uplink: true }, new EchoUplink()), /has an uplink already/);
  const a = plug(sw, 1);
  sendAll(a.backend, tcp({ dst: '52:54:00:ff:00:01', src: a.mac }, { srcIp: '10.0.0.5', dstIp: '1.1.1.1', sport: 1, dport: 53 }));
  await settle(() => a.nic.got.length === 1);
  assert.equal(up.seen.length, 1);
  assert.deepEqual(Array.from(a.nic.got[0]!.frame.subarray(0, 6)), Array.from(a.nic.mac));
  sw.close();
  assert.equal(up.closed, true);
});
