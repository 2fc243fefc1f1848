import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainFrame } from '../../devices/virtio/net/backend.js';
import { put16 } from '../packet/ethernet.js';
import { Acl, Dir, Verdict } from './acl.js';
import { FrameInfo, parseFrame } from './frame.js';
import { VirtualSwitch, type SwitchOptions } from './switch.js';
import { BROADCAST, arp, dhcpAck, ether, gsoFrame, guest, mac, sendAll, settle, tcp, udp } from './testing.js';
import type { PortOptions } from './port.js';

function plug(sw: VirtualSwitch, n: number, o: Partial<PortOptions> = {}) {
  const m = mac(n);
  return { ...guest(sw.addPort({ id: `vm${n}`, mac: m, ...o }), m), mac: m, id: `vm${n}` };
}
const port = (sw: VirtualSwitch, id: string) => sw.stats().ports.find(p => p.id === id)!;
const net = (o: Partial<SwitchOptions> = {}) => new VirtualSwitch({ name: 'acl', ...o });
const ipOf = (n: number) => `10.0.0.${n}`;
const to = (a: { mac: string }, b: { mac: string }, n: number, m: number, dport: number, sport = 40000) =>
  tcp({ dst: b.mac, src: a.mac }, { srcIp: ipOf(n), dstIp: ipOf(m), sport, dport });

test('ACL: allow TCP 80 in, deny the rest in; rules counted; the reply direction is ruled by direction out', async t => {
  const sw = net();
  t.after(() => sw.close());
  const client = plug(sw, 1);
  const web = plug(sw, 2, {
    acl: [
      { action: 'allow', direction: 'in', proto: 'tcp', dstPort: 80 },
      { action: 'allow', direction: 'out', proto: 'tcp', srcPort: 80 },
      { action: 'deny', direction: 'both', proto: 'any' },
    ],
  });
  sendAll(client.backend, to(client, web, 1, 2, 80), to(client, web, 1, 2, 22), to(client, web, 1, 2, 80), to(client, web, 1, 2, 8080));
  await settle(() => web.nic.got.length === 2 && port(sw, web.id).drops.acl === 2);
  await settle();
  assert.equal(web.nic.got.length, 2);
  assert.deepEqual(web.nic.got.map(g => (g.frame[36]! << 8) | g.frame[37]!), [80, 80]);
  sendAll(web.backend, to(web, client, 2, 1, 40000, 80), to(web, client, 2, 1, 25));
  await settle(() => client.nic.got.length === 1 && port(sw, web.id).drops.acl === 3);
  assert.deepEqual(port(sw, web.id).aclHits, [2, 1, 3]);
  // ARP still passes the catch-all deny: a guest needs it.
  sendAll(client.backend, arp({ dst: BROADCAST, src: client.mac }, client.mac, ipOf(1), ipOf(2)));
  await settle(() => web.nic.got.length === 3);
});

test('ACL: CIDRs and port ranges; a GSO super-frame is matched on its headers', async t => {
  const sw = net({ defaultAction: 'deny' });
  t.after(() => sw.close());
  const a = plug(sw, 1, { acl: [{ action: 'allow', direction: 'out', proto: 'tcp', dst: '10.0.0.0/30', dstPort: '8000-8010' }] });
  const b = plug(sw, 2);
  sendAll(a.backend, to(a, b, 1, 2, 8005), to(a, b, 1, 2, 8011));
  sendAll(a.backend, tcp({ dst: b.mac, src: a.mac }, { srcIp: ipOf(1), dstIp: '10.0.0.9', sport: 1, dport: 8005 }));
  const big = gsoFrame({ dst: b.mac, src: a.mac }, { srcIp: ipOf(1), dstIp: ipOf(2), sport: 1, dport: 8001 }, 20_000, 1448);
  a.backend.send(big.frame, big.meta);
  const denied = gsoFrame({ dst: b.mac, src: a.mac }, { srcIp: ipOf(1), dstIp: ipOf(2), sport: 1, dport: 9000 }, 20_000, 1448);
  a.backend.send(denied.frame, denied.meta);
  await settle(() => b.nic.got.length === 2 && port(sw, b.id).drops.acl === 3);
  await settle();
  assert.equal(b.nic.got.length, 2);
  assert.equal(b.nic.got[1]!.meta.gso, 1);
  assert.deepEqual(port(sw, a.id).aclHits, [2]);
});

test('isolated network: VM-to-VM traffic is denied unless a rule allows it; ARP and DHCP pass; the uplink is reachable', async t => {
  const sw = net({ isolated: true });
  t.after(() => sw.close());
  const seen: Uint8Array[] = [];
  sw.addLocalPort({ id: 'uplink', mac: '52:54:00:ff:00:01', uplink: true }, {
    description: 'sink', attach() {}, send: f => { seen.push(f.slice()); }, stats: () => ({}), close() {},
  });
  const a = plug(sw, 1), b = plug(sw, 2, { acl: [{ action: 'allow', direction: 'in', proto: 'tcp', dstPort: 80 }] }), c = plug(sw, 3);
  sendAll(a.backend, to(a, b, 1, 2, 80), to(a, b, 1, 2, 22), to(a, c, 1, 3, 80));
  sendAll(a.backend, arp({ dst: BROADCAST, src: a.mac }, a.mac, ipOf(1), ipOf(3)));
  sendAll(a.backend, udp({ dst: BROADCAST, src: a.mac }, { srcIp: '0.0.0.0', dstIp: '255.255.255.255', sport: 68, dport: 67, payload: 300 }));
  sendAll(a.backend, tcp({ dst: '52:54:00:ff:00:01', src: a.mac }, { srcIp: ipOf(1), dstIp: '1.1.1.1', sport: 1, dport: 443 }));
  await settle(() => seen.length === 3 && b.nic.got.length === 3 && c.nic.got.length === 2);
  await settle();
  assert.deepEqual(b.nic.got.map(g => g.frame.length > 0), [true, true, true]);
  assert.equal(c.nic.got.length, 2, 'c got the ARP and the DHCP discover only');
  assert.equal(port(sw, b.id).drops.acl, 1);
  assert.equal(port(sw, c.id).drops.acl, 1);
});

test('spoofing: foreign source MACs, IPs and ARP senders are dropped; trusted ports may; DHCP snooping learns the address', async t => {
  const sw = net();
  t.after(() => sw.close());
  const server = plug(sw, 1, { trusted: true });
  const fixed = plug(sw, 2, { ip: ipOf(2) });
  const dyn = plug(sw, 3);
  const sink = plug(sw, 4);
  sendAll(fixed.backend,
    ether({ dst: BROADCAST, src: '52:54:00:66:66:66' }, 0x88b5, new Uint8Array(46)), // foreign MAC
    tcp({ dst: sink.mac, src: fixed.mac }, { srcIp: ipOf(99), dstIp: ipOf(4), sport: 1, dport: 2 }), // foreign IP
    arp({ dst: BROADCAST, src: fixed.mac }, fixed.mac, ipOf(4), ipOf(4)), // ARP claiming another address
    arp({ dst: BROADCAST, src: fixed.mac }, sink.mac, ipOf(2), ipOf(4)), // ARP with another sender MAC
    dhcpAck({ dst: BROADCAST, src: fixed.mac }, dyn.mac, ipOf(77)), // a rogue DHCP server
    tcp({ dst: sink.mac, src: fixed.mac }, { srcIp: ipOf(2), dstIp: ipOf(4), sport: 1, dport: 2 }), // fine
    arp({ dst: BROADCAST, src: fixed.mac }, fixed.mac, '0.0.0.0', ipOf(2)), // an address probe: fine
  );
  await settle(() => port(sw, fixed.id).drops.spoof === 5 && sink.nic.got.length === 2);
  // Before its DHCPACK, dyn may use any address; after it, only the one given.
  sendAll(dyn.backend, tcp({ dst: sink.mac, src: dyn.mac }, { srcIp: ipOf(50), dstIp: ipOf(4), sport: 1, dport: 2 }));
  await settle(() => sink.nic.got.length === 3);
  sendAll(server.backend, dhcpAck({ dst: BROADCAST, src: server.mac }, dyn.mac, ipOf(3)));
  await settle(() => port(sw, dyn.id).ip !== null);
  assert.equal(port(sw, dyn.id).ip, ipOf(3));
  sendAll(dyn.backend,
    tcp({ dst: sink.mac, src: dyn.mac }, { srcIp: ipOf(50), dstIp: ipOf(4), sport: 1, dport: 2 }),
    tcp({ dst: sink.mac, src: dyn.mac }, { srcIp: ipOf(3), dstIp: ipOf(4), sport: 1, dport: 2 }),
    udp({ dst: BROADCAST, src: dyn.mac }, { srcIp: '0.0.0.0', dstIp: '255.255.255.255', sport: 68, dport: 67, payload: 300 }));
  await settle(() => port(sw, dyn.id).drops.spoof === 1 && sink.nic.got.length === 6);
  // The trusted port sends for others; the daemon can pin an address.
  sendAll(server.backend, ether({ dst: sink.mac, src: '02:00:00:00:00:09' }, 0x88b5, new Uint8Array(46)));
  await settle(() => sink.nic.got.length === 7);
  assert.equal(port(sw, server.id).drops.spoof, 0);
  sw.setPortIp(dyn.id, ipOf(33));
  assert.equal(port(sw, dyn.id).ip, ipOf(33));
});

test('spoofing on a trunk: its address holds on the native VLAN; its tagged VLANs\' interfaces have their own, its MAC holds everywhere', async t => {
  const sw = net();
  t.after(() => sw.close());
  const trunk = plug(sw, 1, { ip: ipOf(1), trunk: { allowed: '20', native: 1 } });
  const native = plug(sw, 2);
  const v20 = plug(sw, 3, { vlan: 20 });
  sendAll(trunk.backend,
    tcp({ dst: v20.mac, src: trunk.mac, vlan: 20 }, { srcIp: '10.0.20.1', dstIp: '10.0.20.3', sport: 1, dport: 2 }), // its VLAN 20 address
    arp({ dst: BROADCAST, src: trunk.mac, vlan: 20 }, trunk.mac, '10.0.20.1', '10.0.20.3'),
    tcp({ dst: native.mac, src: trunk.mac }, { srcIp: '10.0.20.1', dstIp: ipOf(2), sport: 1, dport: 2 }), // not on the native VLAN
    ether({ dst: BROADCAST, src: '52:54:00:66:66:66', vlan: 20 }, 0x88b5, new Uint8Array(46)), // a foreign MAC, tagged
  );
  await settle(() => port(sw, trunk.id).drops.spoof === 2 && v20.nic.got.length === 2);
  assert.equal(native.nic.got.length, 0);
});

test('rate limits: frames beyond pps and bps (with bursts) are dropped and counted, on a simulated clock', async t => {
  let now = 0;
  const sw = net({ now: () => now });
  t.after(() => sw.close());
  const a = plug(sw, 1, { rate: { pps: 100, ppsBurst: 10 } });
  const b = plug(sw, 2, { rate: { bps: 100_000, bpsBurst: 3000 } });
  const sink = plug(sw, 3);
  const f = ether({ dst: sink.mac, src: a.mac }, 0x88b5, new Uint8Array(986)); // 1000 bytes
  const g = ether({ dst: sink.mac, src: b.mac }, 0x88b5, new Uint8Array(986));
  // A storm of 50 frames at once: the burst passes.
  for (let i = 0; i < 50; i++) sendAll(a.backend, f);
  await settle(() => port(sw, a.id).rxFrames === 50);
  assert.equal(port(sw, a.id).drops.rate, 40);
  // A simulated second at 1000 frames/s: 100 pass.
  for (let ms = 0; ms < 1000; ms++) { now += 1; sendAll(a.backend, f); if (ms % 100 === 99) await settle(() => port(sw, a.id).rxFrames === 51 + ms); }
  await settle(() => port(sw, a.id).rxFrames === 1050);
  const passed = 1050 - port(sw, a.id).drops.rate;
  assert.ok(passed >= 108 && passed <= 112, `${passed} frames passed`);
  // bps: 3 frames of burst, then 100 per simulated second.
  for (let i = 0; i < 10; i++) sendAll(b.backend, g);
  await settle(() => port(sw, b.id).rxFrames === 10);
  assert.equal(port(sw, b.id).drops.rate, 7);
  now += 1000;
  for (let i = 0; i < 10; i++) sendAll(b.backend, g);
  await settle(() => port(sw, b.id).rxFrames === 20);
  assert.equal(port(sw, b.id).drops.rate, 14);
});

test('ACL unit: later fragments match only rules without ports; non-IP frames only proto-less rules', () => {
  const info = new FrameInfo();
  const acl = new Acl([
    { action: 'deny', proto: 'tcp', dstPort: 22 },
    { action: 'allow', direction: 'out', src: '10.0.0.0/8' },
    { action: 'deny' },
  ], 'test');
  const f = tcp({ dst: mac(2), src: mac(1) }, { srcIp: '10.1.2.3', dstIp: '10.0.0.1', sport: 5, dport: 22 });
  assert.ok(parseFrame(f, info));
  assert.equal(acl.check(info, Dir.OUT), Verdict.DENY);
  put16(f, 14 + 6, 100); // fragment offset 100: no ports in it
  assert.ok(parseFrame(f, info));
  assert.equal(info.laterFragment, true);
  assert.equal(acl.check(info, Dir.OUT), Verdict.ALLOW);
  assert.equal(acl.check(info, Dir.IN), Verdict.DENY);
  assert.ok(parseFrame(ether({ dst: mac(2), src: mac(1) }, 0x86dd, new Uint8Array(60)), info));
  assert.equal(acl.check(info, Dir.OUT), Verdict.DENY);
  assert.deepEqual(acl.hits, [1, 1, 2]);
  // A first fragment too short for its ports is malformed.
  const tiny = tcp({ dst: mac(2), src: mac(1) }, { srcIp: '10.1.2.3', dstIp: '10.0.0.1', sport: 5, dport: 22 }).subarray(0, 14 + 20 + 3);
  assert.equal(parseFrame(tiny, info), false);
  assert.ok(plainFrame());
});
