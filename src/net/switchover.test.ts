/**
 * The NIC of a VM arriving by migration: its host side opens once the source let go of it (here a
 * forwarded port still in use for a moment), frames before are dropped and counted, and on a
 * switch it announces its MAC with RARP so the other ports learn where it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { plainFrame } from '../devices/virtio/net/backend.js';
import { SwitchPortBackend, VirtualSwitch } from './switch/index.js';
import { guest, mac, settle, TestNic } from './switch/testing.js';
import { rarpAnnounce, SwitchoverBackend } from './switchover.js';
import { UserNet } from './user/usernet.js';

test('the host side opens once the source lets go of its port; frames before are dropped and counted', async () => {
  const source = createServer();
  await new Promise<void>(r => source.listen(0, '127.0.0.1', r));
  const port = (source.address() as AddressInfo).port;
  let tries = 0;
  const nic = new SwitchoverBackend('user', () => { tries++; return UserNet.open({ hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 80 }] }); }, false);
  nic.attach(new TestNic(mac(1)));
  nic.send(new Uint8Array(60), plainFrame());
  setTimeout(() => source.close(), 150);
  await nic.connect();
  assert.ok(tries > 1, `retried while the port was in use (${tries} tries)`);
  assert.equal(nic.stats().switchoverDrops, 1);
  // The forward is bound here now: a connection is accepted.
  const client = await new Promise<boolean>(resolve => {
    const c = connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
  assert.ok(client, 'the forwarded port listens on the target');
  nic.close();
});

test('the open gives up with the last error when the host side never frees', async () => {
  const nic = new SwitchoverBackend('tap', () => Promise.reject(new Error('Device or resource busy')), true);
  const t0 = performance.now();
  await assert.rejects(nic.connect(), /resource busy/);
  assert.ok(performance.now() - t0 >= 4_000, 'it waited for the source');
  nic.close();
});

test('on a switch the arrived NIC announces its MAC (RARP from it to everyone)', async () => {
  const sw = new VirtualSwitch({ name: 'mig' });
  const other = guest(sw.addPort({ id: 'b/0', vm: 'b', mac: mac(2) }), mac(2));
  const handle = sw.addPort({ id: 'a/0', vm: 'a', mac: mac(1) });
  const nic = new SwitchoverBackend('network', async () => new SwitchPortBackend(handle), true);
  const dev = new TestNic(mac(1));
  nic.attach(dev);
  await nic.connect();
  await settle(() => other.nic.got.length >= 2, 2000);
  const want = rarpAnnounce(dev.mac);
  assert.ok(other.nic.got.length >= 2, 'announced more than once');
  assert.deepEqual(other.nic.got[0]!.frame, want);
  assert.deepEqual([...want.subarray(12, 14)], [0x80, 0x35]);
  assert.deepEqual([...want.subarray(6, 12)], [...dev.mac]);
  nic.close();
  other.backend.close();
  sw.close();
});
