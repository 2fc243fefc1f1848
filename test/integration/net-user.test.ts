// User-mode networking with a real guest, no privileges: `gasang run --nic user,…` gives the
// bundled guest an address by DHCP, DNS through a resolver this test runs on loopback, TCP and
// UDP out to host sockets, ICMP echo to the gateway, and forwarded host ports into the guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer as createHttpServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliSession } from './cli-session.js';
import { DEBIAN, debianAvailable, READY } from './guest.js';
import { guestProgram } from './guest-programs.js';
import { freePort } from '../../src/vm/testing.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const port = (s: Server | DgramSocket): number => (s.address() as AddressInfo).port;

/** A free loopback port (bound, read and closed: the NIC binds it next). */
/** A DNS server on loopback that answers A queries for *.gasang.test with 10.20.30.40 and NXDOMAIN for the rest (RFC 1035 §4.1). */
async function dnsServer(): Promise<{ socket: DgramSocket; queries: string[] }> {
  const socket = createSocket('udp4');
  const queries: string[] = [];
  socket.on('message', (q, rinfo) => {
    if (q.length < 12) return;
    const labels: string[] = [];
    let i = 12;
    while (i < q.length && q[i]! > 0) { labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1')); i += 1 + q[i]!; }
    const qtype = q.readUInt16BE(i + 1);
    const question = q.subarray(12, i + 5);
    const name = labels.join('.');
    queries.push(name);
    const ours = name.endsWith('.gasang.test');
    const answer = ours && qtype === 1
      ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 20, 30, 40])
      : Buffer.alloc(0);
    const header = Buffer.alloc(12);
    q.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180 | (ours ? 0 : 3), 2); // response, recursion available; NXDOMAIN when not ours
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer.length ? 1 : 0, 6);
    socket.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  await new Promise<void>(r => socket.bind(0, '127.0.0.1', r));
  return { socket, queries };
}

function fetchText(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, res => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
}

const GUESTS: { name: string; args: string[]; skip?: string | false }[] = [
  { name: 'bundled guest', args: [] },
  { name: 'Debian kernel guest', args: ['--kernel', DEBIAN.kernel, '--initrd', DEBIAN.initrd, '--append', 'console=ttyS0 gasang.modules=1'], skip: !debianAvailable() && 'run scripts/fetch-debian-guest.sh first' },
];

for (const guest of GUESTS) test(`${guest.name} on a user network: DHCP 10.0.2.15, DNS relay, a download from the host, ping, UDP both ways, hostfwd into the guest`, { timeout: 300_000, skip: guest.skip }, async t => {
  const blob = randomBytes(2 << 20);
  const web = createHttpServer((_q, r) => r.end(blob));
  await new Promise<void>(r => web.listen(0, '127.0.0.1', r));
  const echo = createSocket('udp4');
  echo.on('message', (m, rinfo) => echo.send(Buffer.concat([Buffer.from('host:'), m]), rinfo.port, rinfo.address));
  await new Promise<void>(r => echo.bind(0, '127.0.0.1', r));
  const dns = await dnsServer();
  const [tcpFwd, udpFwd] = [await freePort(), await freePort()];
  t.after(() => { web.close(); echo.close(); dns.socket.close(); });

  const s = new CliSession([
    ...guest.args,
    '--share', `host=${guestProgram('udp-echo')},tag=progs,readonly=on`,
    '--nic', `user,hostfwd=tcp:127.0.0.1:${tcpFwd}-:80,hostfwd=udp:127.0.0.1:${udpFwd}-:7777,resolver=127.0.0.1:${port(dns.socket)},hostname=vm1,domain=gasang.test`,
  ]);
  t.after(() => s.kill());
  await s.waitFor(READY);
  // init starts udhcpc in the background; the lease may follow the prompt by a moment.
  for (let i = 0; !(await s.run('ip -4 addr show eth0')).includes('inet 10.0.2.15/24'); i++) {
    assert.ok(i < 50, 'no DHCP lease');
    await s.run('sleep 0.2');
  }
  assert.match(await s.run('ip route'), /default via 10\.0\.2\.2 dev eth0/);
  assert.equal(await s.run('cat /etc/resolv.conf'), 'search gasang.test\nnameserver 10.0.2.3');

  const ns = await s.run('nslookup www.gasang.test 2>&1; echo status=$?');
  assert.match(ns, /Address: 10\.20\.30\.40/);
  assert.match(ns, /status=0/);
  assert.match(await s.run('nslookup nowhere.example 2>&1; echo status=$?'), /NXDOMAIN[\s\S]*status=1/);
  assert.ok(dns.queries.includes('www.gasang.test'), `the resolver saw the query (${dns.queries.join(', ')})`);

  const sum = await s.run(`wget -q -O - http://10.0.2.2:${port(web)}/blob | sha256sum`, 120_000);
  assert.equal(sum.split(/\s/)[0], sha(blob), '2 MiB through the TCP NAT');
  assert.match(await s.run('ping -c 3 -W 5 10.0.2.2'), /3 packets transmitted, 3 packets received/);

  await s.run('mkdir -p /progs && mount -t 9p -o trans=virtio,version=9p2000.L,ro progs /progs');
  assert.equal(await s.run(`/progs/udp-echo ask 10.0.2.2 ${port(echo)} hello`), 'host:hello', 'UDP out and the reply back');

  // Into the guest: busybox httpd behind tcp hostfwd, udp-echo behind udp hostfwd.
  const pageSum = await s.run('mkdir -p /www && dd if=/dev/urandom of=/www/page bs=1k count=1024 2>/dev/null && httpd -p 80 -h /www && sha256sum /www/page');
  const got = await fetchText(`http://127.0.0.1:${tcpFwd}/page`);
  assert.equal(got.status, 200);
  assert.equal(got.body.length, 1 << 20);
  assert.equal(sha(got.body), pageSum.split(/\s/)[0], '1 MiB from the guest through the forwarded port');
  await s.run('/progs/udp-echo serve 7777 1 & echo serving');
  const client = createSocket('udp4');
  t.after(() => client.close());
  const reply = new Promise<Buffer>(r => client.once('message', m => r(m)));
  // The server may need a moment to bind: send until it answers.
  const timer = setInterval(() => client.send('ping-from-host', udpFwd, '127.0.0.1'), 200);
  client.send('ping-from-host', udpFwd, '127.0.0.1');
  try { assert.equal((await reply).toString(), 'echo:ping-from-host'); } finally { clearInterval(timer); }
});

test('restrict=on: the guest cannot reach the host or the resolver, forwarded connections still come in; a port in use is one clear line and status 2', { timeout: 300_000 }, async t => {
  const web = createHttpServer((_q, r) => r.end('secret'));
  await new Promise<void>(r => web.listen(0, '127.0.0.1', r));
  t.after(() => web.close());
  const fwd = await freePort();
  const s = new CliSession(['--nic', `user,restrict=on,hostfwd=tcp:127.0.0.1:${fwd}-:80`]);
  t.after(() => s.kill());
  await s.waitFor(READY);
  for (let i = 0; !(await s.run('ip -4 addr show eth0')).includes('inet 10.0.2.15/24'); i++) {
    assert.ok(i < 50, 'no DHCP lease');
    await s.run('sleep 0.2');
  }
  assert.match(await s.run(`wget -q -T 5 -O - http://10.0.2.2:${port(web)}/ 2>&1; echo status=$?`), /status=1/);
  assert.doesNotMatch(s.out, /secret/);
  await s.run("mkdir -p /www && echo inside > /www/index.html && httpd -p 80 -h /www && echo started");
  assert.equal((await fetchText(`http://127.0.0.1:${fwd}/`)).body.toString(), 'inside\n');

  const busy = new CliSession(['--nic', `user,hostfwd=tcp:127.0.0.1:${fwd}-:80`]);
  const end = await busy.exited;
  assert.equal(end.code, 2);
  assert.equal(busy.err, `gasang: --nic: Cannot listen on 127.0.0.1:${fwd} for hostfwd tcp: the port is in use\n`);
});
