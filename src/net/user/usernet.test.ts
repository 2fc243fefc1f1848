// The user network's own services and UDP, through a test guest on a fake NIC; real sockets on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { be16, be32, EtherType, put16, put32 } from '../packet/ethernet.js';
import { Dhcp, DHCP_MAGIC, DhcpOpt, DhcpType } from '../packet/dhcp.js';
import { formatIp4 } from '../packet/ip.js';
import { UserNet, UserNetError } from './usernet.js';
import { Guest, ip } from './guest-double.js';
import type { UserNetConfig } from './config.js';

async function setup(config: UserNetConfig = {}): Promise<{ net: UserNet; g: Guest; logs: string[] }> {
  const logs: string[] = [];
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 }, ...config }, l => logs.push(l));
  const g = new Guest(net);
  return { net, g, logs };
}
const done = (net: UserNet, g: Guest): void => { g.stop(); net.close(); };

function arpRequest(g: Guest, target: number, sender = g.ip): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6); f.set(g.port.mac, 6); put16(f, 12, EtherType.ARP);
  put16(f, 14, 1); put16(f, 16, 0x0800); f[18] = 6; f[19] = 4; put16(f, 20, 1);
  f.set(g.port.mac, 22); put32(f, 28, sender); put32(f, 38, target);
  return f;
}

test('ARP: the gateway, the DNS address and other free addresses answer with 52:55 + IP; the guest\'s own does not', async () => {
  const { net, g } = await setup();
  for (const a of ['10.0.2.2', '10.0.2.3', '10.0.2.99']) g.send(arpRequest(g, ip(a)));
  g.send(arpRequest(g, g.ip)); // gratuitous
  g.send(arpRequest(g, ip('192.168.0.1'))); // not on this network
  await g.until(() => g.frames.length >= 3);
  await new Promise(r => setTimeout(r, 50));
  assert.equal(g.frames.length, 3);
  const answered = g.frames.map(f => {
    assert.equal(be16(f, 12), EtherType.ARP);
    assert.equal(be16(f, 20), 2);
    assert.deepEqual([...f.subarray(0, 6)], [...g.port.mac]);
    assert.deepEqual([...f.subarray(22, 26)], [0x52, 0x55, 10, 0]);
    assert.equal(be32(f, 38), g.ip);
    return formatIp4(be32(f, 28));
  });
  assert.deepEqual(answered, ['10.0.2.2', '10.0.2.3', '10.0.2.99']);
  assert.equal(net.stats().arpReplies, 3);
  done(net, g);
});

function dhcp(g: Guest, type: number, opts: number[] = [], ciaddr = 0, xid = 0x1234abcd): Uint8Array {
  const p = new Uint8Array(300);
  p[Dhcp.OP] = 1; p[Dhcp.HTYPE] = 1; p[Dhcp.HLEN] = 6;
  put32(p, Dhcp.XID, xid);
  put32(p, Dhcp.CIADDR, ciaddr);
  p.set(g.port.mac, Dhcp.CHADDR);
  put32(p, Dhcp.MAGIC, DHCP_MAGIC);
  p.set([DhcpOpt.MSG_TYPE, 1, type, ...opts, DhcpOpt.END], Dhcp.OPTIONS);
  return g.udpFrame(ciaddr, 68, ciaddr ? ip('10.0.2.2') : 0xffffffff, 67, p, new Uint8Array(6).fill(0xff));
}

function options(d: Uint8Array): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let i = Dhcp.OPTIONS; i < d.length && d[i] !== 255;) {
    if (d[i] === 0) { i++; continue; }
    m.set(d[i]!, d.subarray(i + 2, i + 2 + d[i + 1]!));
    i += 2 + d[i + 1]!;
  }
  return m;
}

test('DHCP: DISCOVER → OFFER, REQUEST → ACK with lease, mask, router, DNS, hostname; wrong address → NAK; INFORM → ACK', async () => {
  const { net, g } = await setup({ hostname: 'vm1', domain: 'example.test' });
  g.send(dhcp(g, DhcpType.DISCOVER, [DhcpOpt.PARAM_LIST, 3, 1, 3, 6, DhcpOpt.CLIENT_ID, 7, 1, ...g.port.mac]));
  await g.until(() => g.udp.length === 1);
  const offer = g.udp[0]!;
  assert.equal(offer.sport, 67); assert.equal(offer.dport, 68);
  assert.equal(be32(offer.data, Dhcp.YIADDR), ip('10.0.2.15'));
  assert.equal(be32(offer.data, Dhcp.XID), 0x1234abcd);
  let o = options(offer.data);
  assert.equal(o.get(DhcpOpt.MSG_TYPE)![0], DhcpType.OFFER);
  assert.equal(be32(o.get(DhcpOpt.SERVER_ID)!, 0), ip('10.0.2.2'));
  assert.equal(be32(o.get(DhcpOpt.LEASE_TIME)!, 0), 86400);
  assert.equal(be32(o.get(DhcpOpt.SUBNET_MASK)!, 0), ip('255.255.255.0'));
  assert.equal(be32(o.get(DhcpOpt.ROUTER)!, 0), ip('10.0.2.2'));
  assert.equal(be32(o.get(DhcpOpt.DNS)!, 0), ip('10.0.2.3'));
  assert.equal(Buffer.from(o.get(DhcpOpt.HOSTNAME)!).toString(), 'vm1');
  assert.equal(Buffer.from(o.get(DhcpOpt.DOMAIN)!).toString(), 'example.test');

  g.send(dhcp(g, DhcpType.REQUEST, [DhcpOpt.REQUESTED_IP, 4, 10, 0, 2, 15, DhcpOpt.SERVER_ID, 4, 10, 0, 2, 2]));
  await g.until(() => g.udp.length === 2);
  o = options(g.udp[1]!.data);
  assert.equal(o.get(DhcpOpt.MSG_TYPE)![0], DhcpType.ACK);
  assert.equal(be32(g.udp[1]!.data, Dhcp.YIADDR), ip('10.0.2.15'));

  g.send(dhcp(g, DhcpType.REQUEST, [DhcpOpt.REQUESTED_IP, 4, 10, 0, 2, 77]));
  await g.until(() => g.udp.length === 3);
  assert.equal(options(g.udp[2]!.data).get(DhcpOpt.MSG_TYPE)![0], DhcpType.NAK);
  assert.deepEqual([...g.udp[2]!.dstMac], [255, 255, 255, 255, 255, 255]);

  g.send(dhcp(g, DhcpType.REQUEST, [DhcpOpt.REQUESTED_IP, 4, 10, 0, 2, 15, DhcpOpt.SERVER_ID, 4, 10, 0, 2, 9]));
  g.send(dhcp(g, DhcpType.INFORM, [], ip('10.0.2.15')));
  await g.until(() => g.udp.length === 4);
  const inform = g.udp[3]!;
  o = options(inform.data);
  assert.equal(o.get(DhcpOpt.MSG_TYPE)![0], DhcpType.ACK, 'another server\'s REQUEST gets no answer; INFORM does');
  assert.equal(be32(inform.data, Dhcp.YIADDR), 0);
  assert.equal(o.has(DhcpOpt.LEASE_TIME), false);
  assert.equal(inform.dst, ip('10.0.2.15'));
  assert.equal(net.stats().dhcpReplies, 4);
  done(net, g);
});

test('ICMP echo to the gateway and the DNS address is answered; to others dropped and counted', async () => {
  const { net, g } = await setup();
  const payload = Buffer.from('abcdefghijklmnopqrstuvwxyz012345');
  g.ping(ip('10.0.2.2'), 7, 1, payload);
  g.ping(ip('10.0.2.3'), 7, 2, payload);
  g.ping(ip('8.8.8.8'), 7, 3, payload);
  await g.until(() => g.frames.length >= 2);
  await new Promise(r => setTimeout(r, 50));
  assert.equal(g.frames.length, 2);
  for (const [i, f] of g.frames.entries()) {
    assert.equal(f[34], 0); // echo reply
    assert.equal(be16(f, 40), i + 1);
    assert.equal(Buffer.from(f.subarray(42)).toString(), payload.toString());
  }
  assert.deepEqual(g.errors, []);
  assert.equal(net.stats()['drop.icmp-remote'], 1);
  done(net, g);
});

test('DNS relay: a query to 10.0.2.3:53 reaches the resolver; its answer comes back from 10.0.2.3:53', async () => {
  const dns = createSocket('udp4');
  dns.on('message', (msg, r) => dns.send(Buffer.concat([msg, Buffer.from('-answer')]), r.port, r.address));
  dns.bind(0, '127.0.0.1');
  await once(dns, 'listening');
  const { net, g } = await setup({ resolver: { address: '127.0.0.1', port: dns.address().port } });
  g.sendUdp(5353, ip('10.0.2.3'), 53, Buffer.from('query-1'));
  g.sendUdp(5354, ip('10.0.2.3'), 53, Buffer.from('query-2'));
  await g.until(() => g.udp.length === 2, 5000, 'DNS answers');
  const got = g.udp.map(d => `${formatIp4(d.src)}:${d.sport}>${d.dport} ${Buffer.from(d.data)}`).sort();
  assert.deepEqual(got, ['10.0.2.3:53>5353 query-1-answer', '10.0.2.3:53>5354 query-2-answer']);
  const st = net.stats();
  assert.equal(st.dnsQueries, 2);
  assert.equal(st.dnsAnswers, 2);
  assert.equal(st.udpFlows, 2);
  done(net, g);
  dns.close();
});

test('UDP to 10.0.2.2 reaches the host\'s 127.0.0.1 and the reply comes from 10.0.2.2; bad checksums are dropped', async () => {
  const echo = createSocket('udp4');
  echo.on('message', (msg, r) => echo.send(msg, r.port, r.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  const port = echo.address().port;
  const { net, g } = await setup();
  const f = g.udpFrame(g.ip, 1111, ip('10.0.2.2'), port, Buffer.from('bad'));
  f[f.length - 1]! ^= 1;
  g.send(f);
  g.sendUdp(1111, ip('10.0.2.2'), port, Buffer.from('hello'));
  await g.until(() => g.udp.length === 1);
  assert.equal(g.udp[0]!.src, ip('10.0.2.2'));
  assert.equal(g.udp[0]!.sport, port);
  assert.equal(Buffer.from(g.udp[0]!.data).toString(), 'hello');
  assert.equal(net.stats()['drop.udp-checksum'], 1);
  done(net, g);
  echo.close();
});

test('policy: restrict=on denies TCP, UDP and DNS from the guest; hostLoopback=false denies 10.0.2.2; an allow list permits only its entries', async () => {
  const server = createServer(s => { s.on('error', () => {}); s.end('hi'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const attempt = async (config: UserNetConfig): Promise<{ reset: boolean; stats: Record<string, number> }> => {
    const { net, g } = await setup(config);
    const c = g.connect(ip('10.0.2.2'), port);
    await g.until(() => c.reset || c.peerFin, 5000, 'connect outcome');
    g.sendUdp(2000, ip('10.0.2.3'), 53, Buffer.from('q'));
    const stats = net.stats();
    done(net, g);
    return { reset: c.reset, stats };
  };
  const r1 = await attempt({ restrict: true });
  assert.equal(r1.reset, true);
  const r1b = await attempt({ restrict: true });
  assert.equal(r1b.stats['drop.policy'], 2, 'TCP and DNS');
  assert.equal((await attempt({ hostLoopback: false })).reset, true);
  assert.equal((await attempt({ outbound: [{ host: '10.0.2.2', port: port + 1 }] })).reset, true);
  assert.equal((await attempt({ restrict: true, outbound: [{ host: '10.0.2.2', port }] })).reset, false);
  assert.equal((await attempt({})).reset, false);
  server.close();
});

test('open(): a forwarded port in use is a UserNetError naming the address', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await assert.rejects(UserNet.open({ hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 80 }] }),
    (err: unknown) => err instanceof UserNetError && err.message === `Cannot listen on 127.0.0.1:${port} for hostfwd tcp: the port is in use`);
  await assert.rejects(UserNet.open({ net: '10.0.2.0/30' }), UserNetError);
  server.close();
});
