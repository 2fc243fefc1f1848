import assert from 'node:assert/strict';
import { loadavg } from 'node:os';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { plainFrame } from '../../devices/virtio/net/backend.js';
import { mulberry32 } from '../../devices/virtio/testing.js';
import { handleTransfer, type Transport } from './channel.js';
import { MIN_RING_BYTES, RING_DATA, RingReader, RingWriter, createRing } from './ring.js';
import { VirtualSwitch } from './switch.js';
import { mac, settle } from './testing.js';
import type { GuestReport, GuestWorkerData } from './testing-worker.js';

test('ring: frames of every size wrap around intact and in order; a full ring refuses; a consumer that says no keeps its frame', async () => {
  const sab = createRing(MIN_RING_BYTES);
  const w = new RingWriter(sab), r = new RingReader(sab);
  const rnd = mulberry32(7);
  const sent: Uint8Array[] = [];
  const got: Uint8Array[] = [];
  let open = true, refused = 0;
  r.start((frame, meta) => {
    if (!open) { refused++; return false; }
    assert.equal(meta.gsoSize, frame.length & 0xffff);
    got.push(frame.slice());
    return true;
  });
  const meta = plainFrame();
  for (let i = 0; i < 300; i++) {
    const len = i % 10 === 0 ? 65_550 : 14 + Math.floor(rnd() * 3000);
    const f = Uint8Array.from({ length: len }, (_, j) => (i + j * 13) & 0xff);
    meta.gsoSize = len & 0xffff;
    while (!w.push(f, meta)) await settle(() => false, 1);
    sent.push(f);
  }
  await settle(() => got.length === 300, 2000);
  assert.equal(got.length, 300);
  for (let i = 0; i < 300; i++) assert.deepEqual(got[i], sent[i], `frame ${i}`);
  // A consumer without room: the producer fills the ring and is told so; resume() hands over the rest.
  open = false;
  const small = new Uint8Array(1000);
  meta.gsoSize = 1000;
  let pushed = 0;
  while (w.push(small, meta)) pushed++;
  await settle(() => refused >= 1);
  assert.ok(pushed > 200 && pushed < 262, `${pushed} frames fit in 256 KiB`);
  assert.equal(w.push(small, meta), false);
  open = true;
  r.resume();
  await settle(() => got.length === 300 + pushed, 2000);
  assert.equal(got.length, 300 + pushed);
  // A record that no correct producer writes is skipped and counted, and the ring goes on.
  new DataView(sab, RING_DATA).setUint32(Atomics.load(new Int32Array(sab), 16) & (MIN_RING_BYTES - 1), 0x7fff_0000, true);
  Atomics.add(new Int32Array(sab), 16, 64);
  Atomics.notify(new Int32Array(sab), 16);
  await settle(() => r.corrupt === 1);
  assert.equal(r.corrupt, 1);
  // The record was written behind the writer's back: a producer starting now picks up from the shared tail.
  assert.ok(new RingWriter(sab).push(small, meta));
  await settle(() => got.length === 301 + pushed);
  assert.equal(got.length, 301 + pushed);
  r.close();
});

interface PairResult { a: GuestReport; b: GuestReport; sw: ReturnType<VirtualSwitch['stats']> }

/** Two guests in their own worker threads on one switch; A sends `count` frames to B, B `back` to A. */
async function pair(transport: Transport, size: number, count: number, back: number, backpressure: boolean): Promise<PairResult> {
  const sw = new VirtualSwitch({ name: 'pair', transport, mtu: 65_536 });
  const batch = Math.max(1, Math.floor((256 * 1024) / size));
  const start = (id: string, n: number, peer: number, count: number): Worker => {
    const handle = sw.addPort({ id, mac: mac(n) });
    const data: GuestWorkerData = { handle, mac: mac(n), peer: mac(peer), count, size, batch, seed: n, backpressure };
    return new Worker(new URL('./testing-worker.js', import.meta.url), { workerData: data, transferList: handleTransfer(handle) });
  };
  const wa = start('a', 1, 2, count), wb = start('b', 2, 1, back);
  const sent = (w: Worker) => new Promise<void>((resolve, reject) => { w.on('message', (m: { type: string }) => { if (m.type === 'sent') resolve(); }); w.on('error', reject); });
  const ask = (w: Worker) => new Promise<GuestReport>(resolve => {
    const on = (m: GuestReport) => { if (m.type === 'report') { w.off('message', on); resolve(m); } };
    w.on('message', on);
    w.postMessage({ type: 'report' });
  });
  try {
    await Promise.all([sent(wa), sent(wb)]);
    // Wait until nothing moves any more (the guests' refusals end within milliseconds).
    let last = '';
    for (;;) {
      await settle(() => false, 60);
      const [a, b] = await Promise.all([ask(wa), ask(wb)]);
      const now = JSON.stringify([a.received, b.received, sw.stats().ports.map(p => p.rxFrames)]);
      if (now === last) return { a, b, sw: sw.stats() };
      last = now;
    }
  } finally {
    await Promise.all([wa.terminate(), wb.terminate()]);
    sw.close();
  }
}

/** Every frame sent was received intact, in order, or counted as dropped on the way. */
function conserved(r: PairResult, count: number, back: number): void {
  const [pa, pb] = r.sw.ports;
  for (const [from, to, p, q, n] of [[r.a, r.b, pa!, pb!, count], [r.b, r.a, pb!, pa!, back]] as const) {
    assert.equal(from.sent + from.txDropped, n);
    assert.equal(p.rxFrames, from.sent, 'the switch took everything the guest got into its ring');
    assert.equal(to.received, q.txFrames, 'the guest got everything the switch put into its ring');
    // The rest was counted: a full ring, or a guest whose link was not up yet (its thread was starting).
    assert.equal(q.txFrames + (q.drops.queue - to.txDropped) + q.drops.noroute, p.rxFrames, 'every other frame was counted as dropped');
    assert.equal(to.bad, 0, 'no frame corrupted');
    assert.equal(to.outOfOrder, 0, 'no frame reordered or duplicated');
  }
}

for (const transport of ['ring', 'message'] as const) {
  test(`${transport} transport: checksummed streams both ways between worker threads, guests refusing frames now and then`, async () => {
    const r = await pair(transport, 1000, 20_000, 20_000, true);
    conserved(r, 20_000, 20_000);
    assert.ok(r.a.received > 1000 && r.b.received > 1000);
    // A guest refuses every 201st frame offered; under load a full ring drops more before it offers them.
    assert.ok(r.a.refusals >= 4 && r.b.refusals >= 4, 'backpressure was exercised');
  });
}

test('transport throughput between two worker threads through the switch (figures in README.md)', async t => {
  t.diagnostic(`load average before: ${loadavg().map(l => l.toFixed(2)).join(' ')} on a machine shared with other jobs`);
  for (const size of [1514, 65_536]) {
    for (const transport of ['ring', 'message'] as const) {
      const count = size > 2000 ? 3000 : 60_000;
      const r = await pair(transport, size, count, 0, false);
      conserved(r, count, 0);
      const s = r.b.rxMs / 1000;
      t.diagnostic(`${transport.padEnd(7)} ${String(size).padStart(5)} B: ${(r.b.received / s).toFixed(0).padStart(7)} frames/s, ${(r.b.rxBytes / s / 2 ** 20).toFixed(0).padStart(5)} MiB/s, delivered ${r.b.received}/${count}`);
    }
  }
  t.diagnostic(`load average after: ${loadavg().map(l => l.toFixed(2)).join(' ')}`);
});
