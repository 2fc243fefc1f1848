import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reg, Status } from '../mmio.js';
import { TestDriver, type TestBuffer } from '../testing.js';
import { BlkConfig, BlkFeature, MAX_DISCARD_SEGMENTS, VirtioBlk, type BlkThrottle } from './device.js';
import { BlkStatus, BlkType, SECTOR_SIZE } from './request.js';
import { FileDisk } from './file-disk-testing.js';

const DISK_BYTES = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'gasang-blk-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** A fresh disk file (pattern: byte i = i * 7 mod 251) and a driver in front of a virtio-blk on it. */
function setup(opts: { readOnly?: boolean; without?: number; throttle?: BlkThrottle; serial?: string } = {}) {
  const path = join(dir, `disk${files++}.img`);
  writeFileSync(path, Uint8Array.from({ length: DISK_BYTES }, (_, i) => (i * 7) % 251));
  const disk = new FileDisk(path, DISK_BYTES, opts.readOnly);
  const blk = new VirtioBlk({ disk, serial: opts.serial, throttle: opts.throttle });
  const d = new TestDriver(blk, 4 << 20);
  d.init({ without: opts.without });
  return { d, blk, disk, path };
}

interface Req { header: number; status: number; data: number[] }

/** Builds a request chain: header, then `data` buffers (readable for writes, writable for reads), then a status byte. */
function request(d: TestDriver, type: number, sector: number | bigint, data: { len: number; write: boolean; fill?: Uint8Array }[], opts: { indirect?: boolean } = {}): Req {
  const h = new DataView(new ArrayBuffer(16));
  h.setUint32(0, type, true);
  h.setBigUint64(8, BigInt(sector), true);
  const header = d.alloc(16, new Uint8Array(h.buffer));
  const bufs = data.map(b => d.alloc(b.len, b.fill));
  const status = d.alloc(1, Uint8Array.of(0xee));
  const chain: TestBuffer[] = [{ addr: header, len: 16 }, ...data.map((b, i) => ({ addr: bufs[i]!, len: b.len, write: b.write })), { addr: status, len: 1, write: true }];
  d.submit(0, chain, opts);
  return { header, status, data: bufs };
}

const statusOf = (d: TestDriver, r: Req): number => d.mem.readU16(r.status) & 0xff;
const pattern = (off: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => ((off + i) * 7) % 251);

test('config space: capacity, seg_max, blk_size, discard limits; RO and DISCARD follow the disk', () => {
  const { d } = setup();
  const cfg = (off: number, size: 1 | 2 | 4 = 4): number => d.transport.read(Reg.CONFIG + off, size);
  assert.equal(cfg(BlkConfig.CAPACITY), DISK_BYTES / 512);
  assert.equal(cfg(BlkConfig.CAPACITY + 4), 0);
  assert.equal(cfg(BlkConfig.SEG_MAX), 254);
  assert.equal(cfg(BlkConfig.BLK_SIZE), 512);
  assert.equal(cfg(BlkConfig.MAX_DISCARD_SEG), MAX_DISCARD_SEGMENTS);
  assert.equal(cfg(BlkConfig.WRITE_ZEROES_MAY_UNMAP, 1), 1);
  assert.equal(cfg(BlkConfig.CAPACITY, 2), (DISK_BYTES / 512) & 0xffff, '16-bit config read');
  assert.equal(cfg(200), 0, 'beyond the config space');
  const [lo] = d.offered();
  for (const f of [BlkFeature.SEG_MAX, BlkFeature.BLK_SIZE, BlkFeature.FLUSH, BlkFeature.DISCARD, BlkFeature.WRITE_ZEROES]) assert.ok(lo & f);
  assert.equal(lo & BlkFeature.RO, 0);
  const ro = setup({ readOnly: true }).d.offered()[0];
  assert.ok(ro & BlkFeature.RO);
  assert.equal(ro & (BlkFeature.DISCARD | BlkFeature.WRITE_ZEROES), 0);
});

test('OUT writes the host file; IN reads it back into scattered buffers, several requests per notify', () => {
  const { d, blk, path } = setup();
  const data = Uint8Array.from({ length: 3 * 512 }, (_, i) => (i * 13 + 5) & 0xff);
  const w = request(d, BlkType.OUT, 10, [{ len: 1024, write: false, fill: data.subarray(0, 1024) }, { len: 512, write: false, fill: data.subarray(1024) }]);
  d.kick(0);
  assert.equal(statusOf(d, w), BlkStatus.OK);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 1 }]);
  const file = readFileSync(path);
  assert.deepEqual(new Uint8Array(file.subarray(10 * 512, 13 * 512)), data);
  assert.deepEqual(new Uint8Array(file.subarray(9 * 512, 10 * 512)), pattern(9 * 512, 512), 'neighbours untouched');

  d.ack();
  const r1 = request(d, BlkType.IN, 10, [{ len: 512, write: true }, { len: 1024, write: true }]);
  const r2 = request(d, BlkType.IN, 100, [{ len: 4096, write: true }], { indirect: true });
  const r3 = request(d, BlkType.IN, 2047, [{ len: 512, write: true }]);
  d.kick(0);
  assert.equal(d.irqRaises, 2, 'one interrupt for the batch');
  const used = d.takeUsed(0);
  assert.deepEqual(used.map(u => u.len), [1537, 4097, 513]);
  for (const r of [r1, r2, r3]) assert.equal(statusOf(d, r), BlkStatus.OK);
  assert.deepEqual(new Uint8Array([...d.bytes(r1.data[0]!, 512), ...d.bytes(r1.data[1]!, 1024)]), data);
  assert.deepEqual(d.bytes(r2.data[0]!, 4096), pattern(100 * 512, 4096));
  assert.deepEqual(d.bytes(r3.data[0]!, 512), pattern(2047 * 512, 512), 'last sector');
  assert.deepEqual({ reads: blk.stats.reads, writes: blk.stats.writes, readBytes: blk.stats.readBytes, writtenBytes: blk.stats.writtenBytes }, { reads: 3, writes: 1, readBytes: 1536 + 4096 + 512, writtenBytes: 1536 });
  assert.ok(d.guardsIntact());
});

test('scattered pages (Linux direct I/O) go through the bounce buffer both ways', () => {
  const { d, path } = setup();
  // 8 one-KiB buffers with gaps between them, as pages of a user buffer are.
  const pages = Array.from({ length: 8 }, (_, i) => { const a = d.alloc(1024, new Uint8Array(1024).fill(i + 1)); d.alloc(48); return a; });
  const header = (type: number, sector: number) => { const h = new DataView(new ArrayBuffer(16)); h.setUint32(0, type, true); h.setUint32(8, sector, true); return d.alloc(16, new Uint8Array(h.buffer)); };
  const status = d.alloc(1);
  d.submit(0, [{ addr: header(BlkType.OUT, 64), len: 16 }, ...pages.map(addr => ({ addr, len: 1024 })), { addr: status, len: 1, write: true }]);
  d.kick(0);
  assert.equal(d.mem.readU16(status) & 0xff, BlkStatus.OK);
  const file = readFileSync(path);
  for (let i = 0; i < 8; i++) assert.deepEqual(new Uint8Array(file.subarray(64 * 512 + i * 1024, 64 * 512 + (i + 1) * 1024)), new Uint8Array(1024).fill(i + 1));
  // Read sectors 0.. back into the same scattered pages, and check the gaps stayed untouched.
  const gapBefore = d.bytes(pages[0]! + 1024, 48);
  d.submit(0, [{ addr: header(BlkType.IN, 0), len: 16 }, ...pages.map(addr => ({ addr, len: 1024, write: true })), { addr: status, len: 1, write: true }]);
  d.kick(0);
  assert.deepEqual(d.takeUsed(0).map(u => u.len), [1, 8193]);
  for (let i = 0; i < 8; i++) assert.deepEqual(d.bytes(pages[i]!, 1024), pattern(i * 1024, 1024));
  assert.deepEqual(d.bytes(pages[0]! + 1024, 48), gapBefore);
  assert.ok(d.guardsIntact());
});

test('bad requests get IOERR or UNSUPP and touch nothing', () => {
  const { d, blk, path } = setup();
  const before = readFileSync(path);
  const cases: [string, Req, number][] = [
    ['read past the end', request(d, BlkType.IN, 2048, [{ len: 512, write: true }]), BlkStatus.IOERR],
    ['read straddling the end', request(d, BlkType.IN, 2047, [{ len: 1024, write: true }]), BlkStatus.IOERR],
    ['sector 2^63', request(d, BlkType.IN, 1n << 63n, [{ len: 512, write: true }]), BlkStatus.IOERR],
    ['write 2^64-1', request(d, BlkType.OUT, (1n << 64n) - 1n, [{ len: 512, write: false }]), BlkStatus.IOERR],
    ['partial sector', request(d, BlkType.OUT, 0, [{ len: 100, write: false }]), BlkStatus.IOERR],
    ['read into a read-only buffer', request(d, BlkType.IN, 0, [{ len: 512, write: false }]), BlkStatus.IOERR],
    ['write from a writable buffer', request(d, BlkType.OUT, 0, [{ len: 512, write: true }]), BlkStatus.IOERR],
    ['unknown type', request(d, 77, 0, []), BlkStatus.UNSUPP],
    ['GET_LIFETIME', request(d, BlkType.GET_LIFETIME, 0, [{ len: 16, write: true }]), BlkStatus.UNSUPP],
    ['SECURE_ERASE', request(d, BlkType.SECURE_ERASE, 0, [{ len: 16, write: false }]), BlkStatus.UNSUPP],
  ];
  d.kick(0);
  const used = d.takeUsed(0);
  assert.equal(used.length, cases.length);
  for (const [name, r, status] of cases) assert.equal(statusOf(d, r), status, name);
  for (const u of used) assert.equal(u.len, 1, 'only the status byte was written');
  assert.deepEqual(readFileSync(path), before);
  assert.equal(blk.stats.ioErrors, 7);
  assert.equal(blk.stats.unsupported, 3);
  assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, 0, 'answerable errors do not break the device');
});

test('a request without a status byte or a full header breaks the device (nothing to answer in)', () => {
  for (const chain of [[{ len: 16, write: false }], [{ len: 8, write: false }, { len: 1, write: true }]]) {
    const { d } = setup();
    d.submit(0, chain.map(b => ({ addr: d.alloc(b.len), len: b.len, write: b.write })));
    d.kick(0);
    assert.equal(d.reg(Reg.STATUS) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
    assert.equal(d.logged.length, 1);
  }
});

test('a read-only disk refuses writes with IOERR and keeps the file', () => {
  const { d, path } = setup({ readOnly: true });
  const before = readFileSync(path);
  const w = request(d, BlkType.OUT, 0, [{ len: 512, write: false, fill: new Uint8Array(512).fill(1) }]);
  const r = request(d, BlkType.IN, 0, [{ len: 512, write: true }]);
  d.kick(0);
  assert.equal(statusOf(d, w), BlkStatus.IOERR);
  assert.equal(statusOf(d, r), BlkStatus.OK);
  assert.deepEqual(readFileSync(path), before);
});

test('FLUSH calls the disk flush before completing; without FLUSH negotiated every write is flushed', () => {
  const { d, disk } = setup();
  request(d, BlkType.OUT, 0, [{ len: 512, write: false }]);
  d.kick(0);
  assert.equal(disk.flushes, 0, 'writeback: writes are not flushed');
  const f = request(d, BlkType.FLUSH, 0, []);
  d.kick(0);
  assert.equal(statusOf(d, f), BlkStatus.OK);
  assert.equal(disk.flushes, 1);

  const wt = setup({ without: BlkFeature.FLUSH });
  request(wt.d, BlkType.OUT, 0, [{ len: 512, write: false }]);
  request(wt.d, BlkType.OUT, 8, [{ len: 512, write: false }]);
  wt.d.kick(0);
  assert.equal(wt.disk.flushes, 2);
});

test('GET_ID returns the serial, zero-padded to 20 bytes', () => {
  const { d } = setup({ serial: 'gasang-disk0' });
  const r = request(d, BlkType.GET_ID, 0, [{ len: 20, write: true, fill: new Uint8Array(20).fill(0xff) }]);
  d.kick(0);
  assert.equal(statusOf(d, r), BlkStatus.OK);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 21 }]);
  assert.equal(Buffer.from(d.bytes(r.data[0]!, 20)).toString('latin1'), 'gasang-disk0'.padEnd(20, '\0'));
  assert.throws(() => new VirtioBlk({ disk: setup().disk, serial: 'x'.repeat(21) }), /serial/);
});

function segments(list: [number, number, number][]): Uint8Array {
  const v = new DataView(new ArrayBuffer(16 * list.length));
  list.forEach(([sector, num, flags], i) => {
    v.setBigUint64(16 * i, BigInt(sector), true);
    v.setUint32(16 * i + 8, num, true);
    v.setUint32(16 * i + 12, flags, true);
  });
  return new Uint8Array(v.buffer);
}

test('DISCARD and WRITE_ZEROES zero their ranges; bad flags and ranges are refused', () => {
  const { d, path, blk } = setup();
  const seg = (list: [number, number, number][]) => { const s = segments(list); return [{ len: s.length, write: false, fill: s }]; };
  const z = request(d, BlkType.WRITE_ZEROES, 0, seg([[4, 2, 1], [100, 1, 0]]));
  const x = request(d, BlkType.DISCARD, 0, seg([[200, 8, 0]]));
  const unmapDiscard = request(d, BlkType.DISCARD, 0, seg([[300, 1, 1]]));
  const reserved = request(d, BlkType.WRITE_ZEROES, 0, seg([[300, 1, 2]]));
  const outside = request(d, BlkType.WRITE_ZEROES, 0, seg([[300, 1, 0], [2047, 2, 0]]));
  const tooMany = request(d, BlkType.DISCARD, 0, seg(Array.from({ length: MAX_DISCARD_SEGMENTS + 1 }, (_, i): [number, number, number] => [i, 1, 0])));
  const ragged = request(d, BlkType.DISCARD, 0, [{ len: 20, write: false }]);
  d.kick(0);
  assert.equal(statusOf(d, z), BlkStatus.OK);
  assert.equal(statusOf(d, x), BlkStatus.OK);
  assert.equal(statusOf(d, unmapDiscard), BlkStatus.UNSUPP);
  assert.equal(statusOf(d, reserved), BlkStatus.UNSUPP);
  assert.equal(statusOf(d, outside), BlkStatus.IOERR);
  assert.equal(statusOf(d, tooMany), BlkStatus.IOERR);
  assert.equal(statusOf(d, ragged), BlkStatus.IOERR);
  const file = readFileSync(path);
  const zero = (s: number, n: number) => assert.deepEqual(new Uint8Array(file.subarray(s * 512, (s + n) * 512)), new Uint8Array(n * 512), `sectors ${s}+${n}`);
  zero(4, 2); zero(100, 1); zero(200, 8);
  assert.deepEqual(new Uint8Array(file.subarray(6 * 512, 7 * 512)), pattern(6 * 512, 512));
  assert.deepEqual(new Uint8Array(file.subarray(300 * 512, 301 * 512)), pattern(300 * 512, 512), 'refused requests changed nothing');
  assert.equal(blk.stats.discards, 1);
  assert.equal(blk.stats.writeZeroes, 1);
});

test('a host I/O failure is answered IOERR and logged', () => {
  const { d, disk } = setup();
  disk.close(); // reads now fail with EBADF
  const r = request(d, BlkType.IN, 0, [{ len: 512, write: true }]);
  d.kick(0);
  assert.equal(statusOf(d, r), BlkStatus.IOERR);
  assert.deepEqual(d.takeUsed(0), [{ id: 0, len: 1 }]);
});

/** A token bucket over bytes (what storage's IoThrottle does), refilled at `bps`; empty at the first request, however long the setup took. */
function bucket(bps: number): BlkThrottle & { asked: number } {
  let tokens = 0, last: number | undefined;
  return {
    asked: 0,
    delayMs(bytes, now) {
      this.asked++;
      tokens = Math.min(bps, tokens + ((now - (last ?? now)) * bps) / 1000);
      last = now;
      if (tokens >= bytes) { tokens -= bytes; return 0; }
      return ((bytes - tokens) * 1000) / bps;
    },
  };
}

test('throttled requests wait in the ring without blocking the caller, then complete in order', async () => {
  const throttle = bucket(64 * 1024); // 64 KiB/s: 16 KiB takes ~250 ms
  const { d, blk } = setup({ throttle });
  const t0 = performance.now();
  const reqs = [0, 8, 16, 24].map(s => request(d, BlkType.IN, s * 8, [{ len: 4096, write: true }]));
  d.kick(0);
  assert.ok(performance.now() - t0 < 50, 'the kick returned at once');
  const done = d.takeUsed(0).map(u => u.id);
  assert.ok(done.length < 4, 'not everything admitted at once');
  assert.ok(blk.stats.throttled >= 1);
  d.ack();
  const raisedBefore = d.irqRaises;
  while (done.length < 4 && performance.now() - t0 < 3000) {
    await new Promise(r => setTimeout(r, 20));
    done.push(...d.takeUsed(0).map(u => u.id));
  }
  const elapsed = performance.now() - t0;
  assert.deepEqual(done, [0, 3, 6, 9], 'all completed, in order (heads: 3 descriptors each)');
  assert.ok(elapsed > 150, `took ${elapsed.toFixed(0)} ms`);
  for (const r of reqs) assert.equal(statusOf(d, r), BlkStatus.OK);
  assert.ok(d.irqRaises > raisedBefore, 'completions after the wait interrupt the guest');
  assert.equal(blk.stats.reads, 4);
  // A reset cancels the pending timer.
  d.setReg(Reg.STATUS, 0);
});

test('blk save → restore → save; a restore onto a different disk size is refused', () => {
  const { d, blk } = setup();
  request(d, BlkType.IN, 0, [{ len: 512, write: true }]);
  d.kick(0);
  const s = d.transport.save();
  d.transport.restore(s);
  assert.deepEqual(d.transport.save(), s);
  assert.deepEqual(blk.save(), { sectors: DISK_BYTES / SECTOR_SIZE });
  assert.throws(() => blk.restore({ sectors: 1 }), /Saved disk had 1 sectors/);
});
