// The TAP backend against the real kernel: a TAP device moved into a network namespace made by
// the test, whose kernel answers the "guest's" ARP and ping. Needs root and /dev/net/tun.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TapBackend, TapError } from './tap.js';
import { plainFrame, type FrameMeta, type GuestOffloads, type NicPort } from '../../devices/virtio/net/backend.js';

const root = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const skip = !root && 'needs root and /dev/net/tun';
const GUEST_MAC = [0x52, 0x54, 0x00, 0xab, 0xcd, 0x01];
const GUEST_IP = [192, 168, 77, 2];
const HOST_IP = [192, 168, 77, 1];

/** The NIC side, as the virtio-net device would be: records frames, has room unless told otherwise. */
class TestPort implements NicPort {
  readonly mac = Uint8Array.from(GUEST_MAC);
  readonly offloads: GuestOffloads = { csum: false, tso4: false, tso6: false, maxFrame: 1514 };
  onRxSpace: (() => void) | undefined;
  linkUp = true;
  room = true;
  readonly frames: Uint8Array[] = [];
  private waiters: (() => void)[] = [];
  deliver(frame: Uint8Array, _meta: FrameMeta): boolean {
    if (!this.room) return false;
    this.frames.push(frame.slice());
    for (const w of this.waiters.splice(0)) w();
    return true;
  }
  async next(match: (f: Uint8Array) => boolean, ms = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(match);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`no matching frame in ${ms} ms (${this.frames.length} others)`);
      await new Promise<void>(r => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
}

function sum16(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function arpRequest(): Uint8Array {
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...GUEST_MAC, 0x08, 0x06,
    0, 1, 0x08, 0, 6, 4, 0, 1, ...GUEST_MAC, ...GUEST_IP, 0, 0, 0, 0, 0, 0, ...HOST_IP,
  ]);
}

function pingRequest(hostMac: Uint8Array, id: number, payload: Uint8Array): Uint8Array {
  const icmpLen = 8 + payload.length;
  const f = new Uint8Array(14 + 20 + icmpLen);
  f.set(hostMac, 0); f.set(GUEST_MAC, 6); f[12] = 0x08; f[13] = 0;
  const ip = 14;
  f.set([0x45, 0, (20 + icmpLen) >> 8, (20 + icmpLen) & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0, ...GUEST_IP, ...HOST_IP], ip);
  const c = sum16(f, ip, ip + 20); f[ip + 10] = c >> 8; f[ip + 11] = c & 0xff;
  const icmp = ip + 20;
  f.set([8, 0, 0, 0, id >> 8, id & 0xff, 0, 1], icmp);
  f.set(payload, icmp + 8);
  const ic = sum16(f, icmp, f.length); f[icmp + 2] = ic >> 8; f[icmp + 3] = ic & 0xff;
  return f;
}

const sh = (...args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8' });

test('a TAP device in a namespace: the host kernel answers the guest ARP and ping through it', { skip, timeout: 30_000 }, async t => {
  const ns = `gasang-tap-${process.pid}`;
  const ifname = `gtap${process.pid % 100000}`;
  sh('ip', 'netns', 'add', ns);
  t.after(() => sh('ip', 'netns', 'del', ns));
  const tap = TapBackend.open({ ifname });
  const port = new TestPort();
  tap.attach(port);
  t.after(() => tap.close());
  assert.equal(tap.description, `tap ${ifname}`);
  // The device keeps working in the namespace it is moved to: the host side lives there.
  sh('ip', 'link', 'set', ifname, 'netns', ns);
  sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', '192.168.77.1/24', 'dev', ifname);
  sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', ifname, 'up');

  tap.send(arpRequest(), plainFrame());
  const reply = await port.next(f => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2);
  assert.deepEqual(Array.from(reply.subarray(28, 32)), HOST_IP, 'ARP reply from the namespace address');
  const hostMac = reply.subarray(22, 28).slice();

  const payload = Uint8Array.from({ length: 56 }, (_, i) => i);
  tap.send(pingRequest(hostMac, 0x4242, payload), plainFrame());
  const echo = await port.next(f => f[23] === 1 && f[34] === 0 && f[38] === 0x42 && f[39] === 0x42);
  assert.deepEqual(echo.subarray(42, 42 + 56), payload, 'echo reply carries the payload');
  assert.equal(sum16(echo, 34, echo.length), 0, 'ICMP checksum valid (the kernel completed it: no csum offload accepted)');
  const s = tap.stats();
  assert.ok(s.txFrames! >= 2 && s.rxFrames! >= 2, JSON.stringify(s));

  // A guest without receive buffers: frames wait, and come once it has room again.
  port.room = false;
  const before = port.frames.length;
  tap.send(pingRequest(hostMac, 0x4343, payload), plainFrame());
  await new Promise(r => setTimeout(r, 300));
  assert.equal(port.frames.length, before);
  port.room = true;
  port.onRxSpace?.();
  await port.next(f => f[23] === 1 && f[38] === 0x43 && f[39] === 0x43);
});

test('TAP refusals are clear', { skip }, () => {
  assert.throws(() => TapBackend.open({ ifname: 'x'.repeat(16) }), (e: unknown) => e instanceof TapError && /at most 15 characters/.test(e.message));
  assert.throws(() => TapBackend.open({ ifname: 'lo' }), (e: unknown) => e instanceof TapError && /lo/.test(e.message));
});
