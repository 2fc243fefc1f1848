// TAP networking with a real guest: `gasang run --nic tap,ifname=…` creates the device, the test
// moves it into a network namespace of its own, and the guest downloads a file from a server
// inside that namespace. Needs root and /dev/net/tun (CI has both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliSession } from './cli-session.js';
import { READY } from './guest.js';
import { Host } from '../../src/vm/host.js';
import { ConsoleText, tempDir } from '../../src/vm/testing.js';
import { vmMac } from '../../src/vm/spec.js';

const root = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const sh = (...args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8' });

test('a guest on a TAP device reaches a server in the namespace the device was moved to', { skip: !root && 'needs root and /dev/net/tun', timeout: 180_000 }, async t => {
  const ns = `gasang-nt-${process.pid}`;
  const ifname = `gnt${process.pid % 100000}`;
  const dir = mkdtempSync(join(tmpdir(), 'gasang-net-tap-'));
  const blob = randomBytes(1 << 20);
  writeFileSync(join(dir, 'blob'), blob);
  sh('ip', 'netns', 'add', ns);
  t.after(() => { sh('ip', 'netns', 'del', ns); rmSync(dir, { recursive: true, force: true }); });

  const s = new CliSession(['--nic', `tap,ifname=${ifname},mac=52:54:00:77:00:02`]);
  t.after(() => s.kill());
  await s.waitFor(READY);
  sh('ip', 'link', 'set', ifname, 'netns', ns);
  sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', '192.168.77.1/24', 'dev', ifname);
  sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', ifname, 'up');
  // A file server inside the namespace only: nothing in the host's own namespace can answer.
  const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('http').createServer((q, r) => r.end(require('fs').readFileSync(${JSON.stringify(join(dir, 'blob'))}))).listen(8080, '192.168.77.1', () => console.log('listening'))`],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => server.kill());
  await new Promise<void>(resolve => server.stdout!.once('data', () => resolve()));

  // No DHCP server on this segment: stop the guest's client and configure the address by hand.
  await s.run('killall udhcpc; ifconfig eth0 192.168.77.2 netmask 255.255.255.0 up');
  assert.match(await s.run('cat /sys/class/net/eth0/address'), /52:54:00:77:00:02/);
  const sum = await s.run('wget -q -O - http://192.168.77.1:8080/blob | sha256sum', 120_000);
  assert.equal(sum.split(/\s/)[0], createHash('sha256').update(blob).digest('hex'));
  assert.match(await s.run('ping -c 2 -W 5 192.168.77.1'), /2 packets received/);
});

test('a gasangd VM with a TAP NIC: the device exists while it runs, the guest has the MAC from its name', { skip: !root && 'needs root and /dev/net/tun', timeout: 180_000 }, async t => {
  const { dir, cleanup } = tempDir('net-tap-host');
  const host = new Host({ stateDir: join(dir, 'state') });
  t.after(async () => { await host.close({ timeoutMs: 1000 }); cleanup(); });
  const ifname = `gnh${process.pid % 100000}`;
  const vm = await host.create({ name: 'tapper', nics: [{ type: 'tap', ifname }] });
  const mac = vm.info().spec.nics![0]!.mac!;
  assert.equal(mac, vmMac('tapper', 0));
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor(READY, 180_000);
  assert.match(sh('ip', 'link', 'show', ifname), /state|mtu/);
  await con.run('cat /sys/class/net/eth0/address', mac, 60_000);
  await vm.stop({ timeoutMs: 60_000 });
  assert.throws(() => sh('ip', 'link', 'show', ifname), 'the device went with the VM');
});
