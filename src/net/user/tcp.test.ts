// TCP through the user network: a test guest's TCP endpoint on a fake NIC, a node:net server on
// 127.0.0.1 (the guest's 10.0.2.2), 4 MiB each way with checksums compared, in several weathers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { UserNet } from './usernet.js';
import { Guest, ip, randomBytes, sha, type TcpOptions } from './guest-double.js';
import type { UserNetConfig } from './config.js';

const MiB = 1 << 20;

interface Peer { server: Server; port: number; got: Promise<Buffer>; sockets: Socket[] }

/** A server that sends `toGuest` then half-closes (undefined: stays open), and collects what the guest sends until its FIN. */
async function peer(toGuest: Buffer | undefined): Promise<Peer> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>(r => { resolve = r; });
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, s => {
    sockets.push(s);
    const parts: Buffer[] = [];
    s.on('data', d => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', () => {});
    if (toGuest) s.end(toGuest);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, got, sockets };
}

interface Weather { tso?: boolean; loss?: number; ring?: number; slowRead?: boolean; tcp?: Partial<TcpOptions>; config?: UserNetConfig; size?: number }

async function transfer(w: Weather): Promise<{ ms: number; net: UserNet; g: Guest; stats: Record<string, number> }> {
  const size = w.size ?? 4 * MiB;
  const a = randomBytes(size, 1), b = randomBytes(size, 2);
  const p = await peer(a);
  const net = await UserNet.open({ resolver: { address: '127.0.0.1' }, ...w.config });
  const g = new Guest(net, 7);
  g.record = false;
  if (w.tso) g.port.offloads = { csum: true, tso4: true, tso6: false, maxFrame: 65550 };
  if (w.loss) g.port.lossRate = w.loss;
  if (w.ring) g.port.ring = w.ring;
  const t0 = performance.now();
  const c = g.connect(ip('10.0.2.2'), p.port, { tso: w.tso ?? false, autoRead: !w.slowRead, rcvBuf: w.slowRead ? 64 * 1024 : 1 << 20, ...w.tcp });
  let reader: NodeJS.Timeout | undefined;
  if (w.slowRead) reader = setInterval(() => c.read(16 * 1024), 2);
  await g.until(() => c.state === 'open', 5000, 'connection');
  c.write(b);
  c.end();
  await g.until(() => c.peerFin && c.allAcked, 25_000, `transfer (${c.receivedBytes} of ${size} bytes in)`);
  const ms = performance.now() - t0;
  if (reader) clearInterval(reader);
  const got = await p.got;
  assert.equal(c.receivedBytes, size);
  assert.equal(sha(c.data()), sha(a), 'host → guest data');
  assert.equal(sha(got), sha(b), 'guest → host data');
  assert.deepEqual(g.errors, []);
  assert.equal(c.reset, false);
  await g.until(() => net.stats().tcpFlows === 0, 5000, 'the connection to end (TIME_WAIT)');
  const stats = net.stats();
  g.stop();
  net.close();
  p.server.close();
  return { ms, net, g, stats };
}

const rate = (ms: number, bytes = 8 * MiB): string => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;

test('4 MiB each way, plain 1460-byte frames, half-close both ways', async t => {
  const { ms, stats } = await transfer({});
  t.diagnostic(`plain frames: 8 MiB in ${ms.toFixed(0)} ms, ${rate(ms)} (both directions together)`);
  assert.equal(stats.tcpBytesToGuest, 4 * MiB);
  assert.equal(stats.tcpBytesFromGuest, 4 * MiB);
  assert.equal(stats.tcpOpened, 1);
});

test('4 MiB each way with TSO and checksum offload: GSO frames both ways', async t => {
  const { ms, g, stats } = await transfer({ tso: true });
  t.diagnostic(`TSO: 8 MiB in ${ms.toFixed(0)} ms, ${rate(ms)}; ${g.port.gsoFrames} GSO frames to the guest, ${stats.rxFrames} frames from it`);
  assert.ok(g.port.gsoFrames > 0);
  assert.ok(stats.txFrames < (4 * MiB) / 1460 / 4, `host → guest is mostly large frames (${stats.txFrames} frames)`);
});

test('a slow-reading guest: the window closes and opens, the host socket is paused, nothing is lost', async () => {
  const { stats } = await transfer({ slowRead: true, size: 2 * MiB });
  assert.equal(stats.tcpBytesToGuest, 2 * MiB);
});

test('lost frames towards the guest (3%) and a small receive ring: retransmission recovers', async () => {
  const { g, stats } = await transfer({ loss: 0.03, ring: 8, size: 2 * MiB });
  assert.ok(g.port.lost > 10, `frames lost: ${g.port.lost}`);
  assert.ok(stats.tcpRetransmits > 0);
  assert.ok(g.port.full > 0, 'the ring filled up at times');
});

test('lost frames with TSO', async () => {
  const { g, stats } = await transfer({ loss: 0.03, tso: true, size: 2 * MiB });
  assert.ok(g.port.lost > 0);
  assert.ok(stats.tcpRetransmits > 0);
});

test('a guest that stops reading gets zero-window probes and then takes the rest', async () => {
  const a = randomBytes(512 * 1024, 3);
  const p = await peer(a);
  const net = await UserNet.open({ resolver: { address: '127.0.0.1' } });
  const g = new Guest(net);
  g.record = false;
  const c = g.connect(ip('10.0.2.2'), p.port, { autoRead: false, rcvBuf: 32 * 1024, wscale: -1 });
  await g.until(() => c.receivedBytes === 32 * 1024, 5000, 'the window to fill');
  await g.until(() => net.stats().tcpZeroWindowProbes >= 2, 5000, 'zero-window probes');
  const reader = setInterval(() => c.read(64 * 1024), 1);
  c.end();
  await g.until(() => c.peerFin, 10_000, 'the rest');
  clearInterval(reader);
  assert.equal(sha(c.data()), sha(a));
  g.stop(); net.close(); p.server.close();
});

test('refused: a SYN to a closed host port gets RST; a host reset reaches the guest; a guest RST resets the host socket', async () => {
  const net = await UserNet.open({ resolver: { address: '127.0.0.1' } });
  const g = new Guest(net);
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const closedPort = (closed.address() as { port: number }).port;
  closed.close();
  const c1 = g.connect(ip('10.0.2.2'), closedPort);
  await g.until(() => c1.reset, 5000, 'RST');
  assert.equal(net.stats().tcpRefused, 1);

  const p = await peer(undefined);
  const c2 = g.connect(ip('10.0.2.2'), p.port);
  await g.until(() => c2.state === 'open' && p.sockets.length === 1, 5000, 'open');
  p.sockets[0]!.resetAndDestroy();
  await g.until(() => c2.reset, 5000, 'RST from the host reset');

  const c3 = g.connect(ip('10.0.2.2'), p.port);
  await g.until(() => c3.state === 'open' && p.sockets.length === 2, 5000, 'open');
  // events.once would reject on the 'error' (ECONNRESET) that comes first: the reset is what is expected.
  const hostErr = new Promise(r => p.sockets[1]!.once('close', r));
  c3.abort();
  await hostErr;
  await g.until(() => net.stats().tcpFlows === 0, 5000, 'no flows');
  assert.deepEqual(g.errors, []);
  g.stop(); net.close(); p.server.close();
});

test('out-of-window segments and ACKs for unsent data are dropped, counted, and answered with an ACK', async () => {
  const p = await peer(Buffer.alloc(0));
  const net = await UserNet.open({ resolver: { address: '127.0.0.1' } });
  const g = new Guest(net);
  const c = g.connect(ip('10.0.2.2'), p.port);
  await g.until(() => c.state === 'open', 5000, 'open');
  const before = g.frames.length;
  c.injectData(5_000_000, Buffer.from('far away'));
  await g.until(() => g.frames.length > before, 2000, 'an ACK');
  assert.equal(net.stats()['drop.tcp-out-of-window'], 1);
  c.write(Buffer.from('ok'));
  c.end();
  assert.equal((await p.got).toString(), 'ok');
  g.stop(); net.close(); p.server.close();
});
