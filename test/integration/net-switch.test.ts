// gasangd's named networks with real guests: VMs on one network get their own addresses from the
// gateway's DHCP, reach each other and (with NAT) the host; an isolated network and different
// VLANs keep VMs apart; the switch's per-port counters reach /metrics and the network's info.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEBIAN, debianAvailable, READY } from './guest.js';
import { renderMetrics, RequestCounter } from '../../src/api/metrics.js';
import { Host } from '../../src/vm/host.js';
import { ConsoleText, tempDir } from '../../src/vm/testing.js';
import type { NicSpec, VmHandle, VmSpec } from '../../src/vm/types.js';

interface Booted { vm: VmHandle; con: ConsoleText; ip: string }

/** Creates and boots a VM with `nics`, waits for its shell and for eth0's DHCP address. */
async function boot(host: Host, name: string, nics: NicSpec[], spec: Partial<VmSpec> = {}): Promise<Booted> {
  const vm = await host.create({ ...spec, name, nics });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor(READY, 180_000);
  // Typed markers are split by "" so that only the output, not the echo, matches: udhcpc's own
  // lines may land inside the echo of the typed command, so nothing is parsed out of the echo.
  const from = con.text.length;
  await con.run('until ip -4 addr show eth0 | grep -q "inet "; do sleep 0.2; done; echo LEA""SED=$(ip -4 addr show eth0 | grep -o "inet [0-9.]*")', /LEASED=inet \d+\.\d+\.\d+\.\d+/, 60_000);
  const ip = /LEASED=inet (\d+\.\d+\.\d+\.\d+)/.exec(con.text.slice(from))?.[1];
  assert.ok(ip, `${name} has an address`);
  return { vm, con, ip };
}

/** Runs `cmd` in the guest and returns its exit status (printed as ST=n). */
async function status(b: Booted, cmd: string, ms = 60_000): Promise<number> {
  const from = b.con.text.length;
  await b.con.run(`${cmd} >/dev/null 2>&1; echo S""T=$?`, /ST=\d+/, ms);
  return Number(/ST=(\d+)/.exec(b.con.text.slice(from))![1]);
}

test('a NAT network: two VMs get distinct leases, ping each other, move 64 MiB with nc and fetch from the host; an ACL blocks port 80; a VM on another VLAN receives nothing; counters in /metrics', { timeout: 400_000 }, async t => {
  const { dir, cleanup } = tempDir('net-switch');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const web = createServer((_q, r) => r.end('from the host\n'));
  await new Promise<void>(r => web.listen(0, '127.0.0.1', r));
  t.after(() => web.close());

  const net = await host.createNetwork({ name: 'lan', subnet: '10.0.7.0/24' });
  assert.deepEqual({ ...net.spec, gateway: net.gateway, dns: net.dns }, { name: 'lan', subnet: '10.0.7.0/24', nat: true, isolated: false, gateway: '10.0.7.2', dns: '10.0.7.3' });
  // vb's port takes no TCP to port 80; vc sits on VLAN 20, away from everyone.
  const [a, b] = await Promise.all([
    boot(host, 'va', [{ type: 'network', network: 'lan' }]),
    boot(host, 'vb', [{ type: 'network', network: 'lan', acl: [{ action: 'deny', direction: 'in', proto: 'tcp', dstPort: 80 }] }]),
  ]);
  assert.deepEqual([a.ip, b.ip].sort(), ['10.0.7.15', '10.0.7.16']);
  const vc = await host.create({ name: 'vc', nics: [{ type: 'network', network: 'lan', vlan: 20 }] });
  await vc.start();
  await new ConsoleText(vc).waitFor(READY, 180_000);

  assert.equal(await status(a, `ping -c 2 -W 5 ${b.ip}`), 0, 'va pings vb');
  await b.con.run('mkdir -p /www && echo "served by vb" > /www/index.html && httpd -p 80 -h /www && httpd -p 8080 -h /www && echo HT""TPD', /HTTPD/, 30_000);
  const from = a.con.text.length;
  await a.con.run(`wget -q -O - http://${b.ip}:8080/; echo DO""NE`, /DONE/, 60_000);
  assert.match(a.con.text.slice(from), /served by vb/, 'an allowed port works');
  assert.notEqual(await status(a, `wget -q -T 5 -O - http://${b.ip}/`), 0, 'the ACL blocks port 80');
  assert.ok((await host.getNetwork('lan')).ports.find(p => p.vm === 'vb')!.drops.acl > 0, 'and counts it');

  // 64 MiB VM to VM with nc, checksummed on both ends.
  const sums = /([0-9a-f]{64})/;
  await b.con.run('nc -l -p 5000 | sha256sum > /tmp/got & echo LI""STENING', /LISTENING/, 30_000);
  const fromA = a.con.text.length;
  await a.con.run('dd if=/dev/urandom of=/tmp/blob bs=1M count=64 2>/dev/null; sha256sum /tmp/blob; echo GE""NERATED', /GENERATED/, 300_000);
  const sent = sums.exec(a.con.text.slice(fromA).split('GENERATED')[0]!.split('\n').slice(1).join('\n'))?.[1];
  assert.ok(sent);
  assert.equal(await status(a, `nc ${b.ip} 5000 < /tmp/blob`, 300_000), 0);
  const fromB = b.con.text.length;
  await b.con.run('while [ ! -s /tmp/got ]; do sleep 0.2; done; cat /tmp/got; echo RE""CEIVED', /RECEIVED/, 120_000);
  assert.equal(sums.exec(b.con.text.slice(fromB).split('\n').slice(1).join('\n'))?.[1], sent, '64 MiB arrived intact');
  const vcPort = (await host.getNetwork('lan')).ports.find(p => p.vm === 'vc')!;
  assert.equal(vcPort.txFrames, 0, 'the VM on VLAN 20 received not one frame');
  assert.ok(vcPort.rxFrames > 0, 'though it sent (DHCP)');
  const port = (web.address() as AddressInfo).port;
  const from2 = b.con.text.length;
  await b.con.run(`wget -q -O - http://10.0.7.2:${port}/; echo DO""NE`, /DONE/, 60_000);
  assert.match(b.con.text.slice(from2), /from the host/, 'NAT to the host through the gateway');

  const info = await host.getNetwork('lan');
  const ports = Object.fromEntries(info.ports.map(p => [p.vm, p]));
  assert.equal(ports.va?.ip, a.ip, 'the switch learned va\'s address from its DHCP lease');
  assert.equal(ports.vb?.ip, b.ip);
  assert.ok(ports.va!.rxFrames > 5 && ports.va!.txFrames > 5);
  assert.ok(info.gatewayStats.dhcpReplies! >= 4, 'two DISCOVER/REQUEST exchanges');
  const metrics = renderMetrics(host, new RequestCounter());
  assert.match(metrics, new RegExp(`gasang_net_port_rx_frames_total\\{network="lan",port="va/0",vm="va",mac="${ports.va!.mac}"\\} [1-9]\\d*`));
  assert.match(metrics, /gasang_net_port_dropped_frames_total\{network="lan",port="vb\/0",vm="vb",mac="[0-9a-f:]+",reason="spoof"\} 0/);

  const nicA = a.vm.info().nics![0]!;
  assert.deepEqual({ type: nicA.type, network: nicA.network, ip: nicA.ip, mac: nicA.mac }, { type: 'network', network: 'lan', ip: a.ip, mac: ports.va!.mac });
  assert.ok(nicA.fromGuestBytes! > 64 << 20 && nicA.toGuestFrames! > 0, 'inspect has the port\'s counters');

  await assert.rejects(host.removeNetwork('lan'), /Cannot remove network lan: VMs va, vb, vc use it/);
  await a.vm.stop({ timeoutMs: 60_000 });
  assert.deepEqual((await host.getNetwork('lan')).ports.map(p => p.vm), ['vb', 'vc'], 'a stopped VM leaves the switch');
});

test('an isolated network and VLANs keep VMs apart; the gateway still answers', { timeout: 400_000 }, async t => {
  const { dir, cleanup } = tempDir('net-switch-iso');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  await host.createNetwork({ name: 'iso', subnet: '10.0.8.0/24', isolated: true, nat: false });
  await host.createNetwork({ name: 'vl', subnet: '10.0.9.0/24' });
  const [i1, i2] = await Promise.all([boot(host, 'i1', [{ type: 'network', network: 'iso' }]), boot(host, 'i2', [{ type: 'network', network: 'iso' }])]);
  assert.equal(await status(i1, 'ping -c 2 -W 5 10.0.8.2'), 0, 'the gateway answers on an isolated network');
  assert.equal(await status(i1, `ping -c 2 -W 3 ${i2.ip}`), 1, 'VMs on an isolated network do not reach each other');
  const iso = await host.getNetwork('iso');
  assert.ok(iso.ports.reduce((n, p) => n + p.drops.acl, 0) > 0, 'the denied frames are counted');
  await i2.vm.stop({ timeoutMs: 60_000 });

  // VLAN 10 holds one VM and the gateway's VLAN 1 the other: the first gets no lease, the two never meet.
  const v1 = await boot(host, 'v1', [{ type: 'network', network: 'vl' }]);
  const v2vm = await host.create({ name: 'v2', nics: [{ type: 'network', network: 'vl', vlan: 10 }] });
  await v2vm.start();
  const v2con = new ConsoleText(v2vm, true);
  await v2con.waitFor(READY, 180_000);
  await v2con.run('killall udhcpc; ifconfig eth0 10.0.9.99 netmask 255.255.255.0 up; echo UP""DONE', /UPDONE/, 30_000);
  const v2: Booted = { vm: v2vm, con: v2con, ip: '10.0.9.99' };
  const port = async (vm: string) => (await host.getNetwork('vl')).ports.find(p => p.vm === vm)!;
  const v1Before = (await port('v1')).txFrames, v2Before = (await port('v2')).rxFrames;
  assert.equal(await status(v2, `ping -c 2 -W 3 ${v1.ip}`), 1, 'VLAN 10 does not reach VLAN 1');
  assert.ok((await port('v2')).rxFrames > v2Before, 'v2 sent its ARP requests');
  assert.equal((await port('v1')).txFrames, v1Before, 'none of them reached v1');
  assert.equal(await status(v1, 'ping -c 1 -W 3 10.0.9.99'), 1, 'and back');
});

test('a trunk port: the guest\'s VLAN 20 interface reaches an access port of VLAN 20; its untagged frames are the native VLAN\'s', {
  timeout: 400_000, skip: debianAvailable() ? false : 'run scripts/fetch-debian-guest.sh first (a kernel with 8021q)',
}, async t => {
  const { dir, cleanup } = tempDir('net-switch-trunk');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  await host.createNetwork({ name: 'tr', subnet: '10.0.11.0/24' });
  const accessVm = async (): Promise<Booted> => {
    const vm = await host.create({ name: 'acc', nics: [{ type: 'network', network: 'tr', vlan: 20 }] });
    await vm.start();
    const con = new ConsoleText(vm, true);
    await con.waitFor(READY, 180_000);
    await con.run('killall udhcpc; ifconfig eth0 10.0.20.1 netmask 255.255.255.0 up; echo UP""DONE', /UPDONE/, 30_000);
    return { vm, con, ip: '10.0.20.1' };
  };
  // Debian's kernel has 8021q (the bundled one does not); its untagged eth0 gets a lease on the native VLAN.
  const [tr, acc] = await Promise.all([
    boot(host, 'tr', [{ type: 'network', network: 'tr', trunk: { allowed: '20', native: 1 } }], { kernel: DEBIAN.kernel, initrd: DEBIAN.initrd, append: 'console=ttyS0 gasang.modules=1' }),
    accessVm(),
  ]);
  assert.equal(tr.ip, '10.0.11.15', 'untagged frames are VLAN 1\'s: the gateway\'s DHCP answered');
  assert.equal(await status(tr, 'ip link add link eth0 name eth0.20 type vlan id 20 && ip addr add 10.0.20.2/24 dev eth0.20 && ip link set eth0.20 up'), 0);
  const port = async (vm: string) => (await host.getNetwork('tr')).ports.find(p => p.vm === vm)!;
  const accBefore = (await port('acc')).txFrames;
  assert.equal(await status(tr, 'ping -c 2 -W 5 10.0.20.1'), 0, 'tagged VLAN 20 reaches the access port');
  assert.ok((await port('acc')).txFrames > accBefore, 'through the switch');
  assert.equal(await status(acc, 'ping -c 2 -W 5 10.0.20.2'), 0, 'and back, tagged on the way out of the trunk');
  assert.equal(await status(tr, 'ping -c 2 -W 5 10.0.11.2'), 0, 'the gateway on the native VLAN');
  assert.equal(await status(acc, 'ping -c 1 -W 3 10.0.11.15'), 1, 'the access port of VLAN 20 does not reach VLAN 1');
});

test('a gasangd VM on a user network: a forwarded port reaches its httpd; inspect shows its address and counters', { timeout: 300_000 }, async t => {
  const { dir, cleanup } = tempDir('net-user-host');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const probe = createServer();
  await new Promise<void>(r => probe.listen(0, '127.0.0.1', r));
  const fwd = (probe.address() as AddressInfo).port;
  await new Promise(r => probe.close(r));
  const u = await boot(host, 'nat1', [{ type: 'user', hostfwd: [`tcp:127.0.0.1:${fwd}-:80`] }]);
  assert.equal(u.ip, '10.0.2.15');
  await u.con.run('mkdir -p /www && echo "hello from nat1" > /www/index.html && httpd -p 80 -h /www && echo HT""TPD', /HTTPD/, 30_000);
  const body = await new Promise<string>((resolve, reject) => {
    get(`http://127.0.0.1:${fwd}/`, res => { let b = ''; res.on('data', (d: Buffer) => { b += d; }); res.on('end', () => resolve(b)); }).on('error', reject);
  });
  assert.equal(body, 'hello from nat1\n');
  for (let i = 0; !(u.vm.info().nics?.[0]?.toGuestFrames! > 0); i++) {
    assert.ok(i < 50, 'counters arrive within seconds');
    await new Promise(r => setTimeout(r, 100));
  }
  const nic = u.vm.info().nics![0]!;
  assert.equal(nic.type, 'user');
  assert.equal(nic.ip, '10.0.2.15');
  assert.ok(nic.fromGuestFrames! > 0 && nic.dropped! >= 0);
});
