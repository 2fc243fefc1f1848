import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reg } from '../mmio.js';
import { TestDriver } from '../testing.js';
import { pack, unpack, type Value } from './client-testing.js';
import { NINEP_QUEUE_SIZE, VirtioNineP } from './device.js';

/** Sends one T-message through queue 0 with the given buffer split; returns the reply bytes. */
function rpc(d: TestDriver, message: Uint8Array, opts: { readSplit?: number[]; writeSplit?: number[] } = {}): Uint8Array {
  const reads = opts.readSplit ?? [message.length];
  const writes = opts.writeSplit ?? [8192];
  const buffers = [];
  let at = 0;
  for (const len of reads) {
    buffers.push({ addr: d.alloc(len, message.subarray(at, at + len)), len });
    at += len;
  }
  const out = writes.map(len => ({ addr: d.alloc(len), len, write: true }));
  d.submit(0, [...buffers, ...out]);
  d.kick(0);
  const [used] = d.takeUsed(0);
  assert.ok(used, 'a used entry');
  const reply = new Uint8Array(used.len);
  let got = 0;
  for (const b of out) {
    const n = Math.min(b.len, used.len - got);
    reply.set(d.bytes(b.addr, n), got);
    got += n;
  }
  return reply;
}

function call(d: TestDriver, type: number, fmt: string, args: Value[], rfmt = '', opts = {}): Value[] {
  const reply = rpc(d, pack(type, 1, fmt, args), opts);
  assert.equal(reply[4], type + 1, `reply to T${type} (Rlerror ${reply[4] === 7 ? reply[7] : '-'})`);
  return unpack(reply, rfmt);
}

describe('virtio-9p device', () => {
  let root: string, dev: VirtioNineP, d: TestDriver;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'gasang-9p-dev-'));
    writeFileSync(join(root, 'hello'), 'hello from the host\n');
    dev = new VirtioNineP({ root, tag: 'hostshare', msize: 64 * 1024 });
    d = new TestDriver(dev, 4 << 20);
  });
  after(() => { dev.close(); rmSync(root, { recursive: true }); });

  it('is device 9 with the mount-tag feature and the tag in config space', () => {
    assert.equal(d.reg(Reg.DEVICE_ID), 9);
    assert.equal(d.offered()[0] & 1, 1);
    assert.equal(d.reg(Reg.CONFIG) & 0xffff, 9);
    const tag = Array.from({ length: 9 }, (_, i) => d.transport.read(Reg.CONFIG + 2 + i, 1));
    assert.equal(Buffer.from(tag).toString(), 'hostshare');
    assert.equal(d.transport.read(Reg.CONFIG + 11, 4), 0);
    d.setReg(Reg.QUEUE_SEL, 0);
    assert.equal(d.reg(Reg.QUEUE_NUM_MAX), NINEP_QUEUE_SIZE);
  });

  it('serves a session over the queue, with replies split over several buffers as Linux zero-copy does', () => {
    d.init();
    assert.deepEqual(call(d, 100, 'ds', [1 << 20, '9P2000.L'], 'ds'), [64 * 1024, '9P2000.L']);
    call(d, 104, 'ddssd', [0, 0xffffffff, 'root', '', 0], 'Q');
    call(d, 110, 'ddS', [0, 1, ['hello']], 'w');
    call(d, 12, 'dd', [1, 2], 'Qd');
    // Zero-copy read: an 11-byte header buffer, then page-sized buffers.
    const [data] = call(d, 116, 'dqd', [1, 0, 9000], 'D', { writeSplit: [11, 4096, 4096, 1000] });
    assert.equal(Buffer.from(data as Uint8Array).toString(), 'hello from the host\n');
    // Zero-copy write: the header (23 bytes) in one buffer, the payload in others.
    const payload = Buffer.from('written by the guest through two buffers\n');
    const write = pack(118, 1, 'dqD', [1, 0, payload]);
    assert.deepEqual(call(d, 118, 'dqD', [1, 0, payload], 'd', { readSplit: [23, 10, write.length - 33] }), [payload.length]);
    assert.equal(readFileSync(join(root, 'hello'), 'utf8'), 'written by the guest through two buffers\n');
    assert.ok(d.guardsIntact());
    assert.equal(dev.stats.requests, 6);
  });

  it('answers a T-message longer than msize, or a reply with no room, without breaking the queue', () => {
    const big = new Uint8Array(70 * 1024);
    new DataView(big.buffer).setUint32(0, big.length, true);
    big[4] = 118;
    const r = rpc(d, big);
    assert.equal(r[4], 7);
    assert.equal(r[7], 71); // EPROTO
    assert.equal(rpc(d, pack(120, 1, 'd', [1]), { writeSplit: [4] }).length, 0);
    assert.equal(d.reg(Reg.STATUS) & 0x40, 0, 'not DEVICE_NEEDS_RESET');
  });

  it('ends the 9P session when the driver resets the device', () => {
    assert.ok(dev.server.fidCount > 0);
    d.setReg(Reg.STATUS, 0);
    assert.equal(dev.server.fidCount, 0);
    d.init();
    const r = rpc(d, pack(120, 1, 'd', [0]));
    assert.equal(r[4], 7, 'no session until Tversion');
  });

  it('refuses bad mount tags', () => {
    for (const tag of ['', 'with space', 'a,b', 'x'.repeat(256)]) {
      assert.throws(() => new VirtioNineP({ root, tag }), /Mount tag/);
    }
  });
});
