// Fuzzes the split-queue parser and the devices behind it with random and adversarial rings.
// Seeded (GASANG_FUZZ_SEED to replay, GASANG_FUZZ_ITERATIONS to run longer). Asserts, per
// iteration: nothing throws, nothing is written outside guest RAM (guard bytes), every chain the
// parser accepts lies in RAM and is no longer than the queue, used entries never outrun available
// ones, and every kick returns (a hang would time the test out; each iteration is timed too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Feature, type VirtioDevice } from './device.js';
import { Reg } from './mmio.js';
import { Avail, DescChain, DescFlag, Used } from './queue.js';
import { VirtioRng } from './rng/device.js';
import { VirtioConsole } from './console/device.js';
import { VirtioBlk } from './blk/device.js';
import { FileDisk } from './blk/file-disk-testing.js';
import { TEST_RAM_BASE, TestDriver, mulberry32 } from './testing.js';

const SEED = Number(process.env.GASANG_FUZZ_SEED ?? 0x5eed_0001);
const ITERATIONS = Number(process.env.GASANG_FUZZ_ITERATIONS ?? 3000);
const RAM = 256 * 1024;

class Fuzzer {
  constructor(readonly rnd: () => number) {}
  int(n: number): number { return Math.floor(this.rnd() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.rnd() < p; }

  /** An address: usually in RAM, sometimes at its edges or far outside. */
  addr(): number {
    switch (this.int(8)) {
      case 0: return TEST_RAM_BASE - 1 - this.int(4096);
      case 1: return TEST_RAM_BASE + RAM - this.int(64);
      case 2: return this.pick([0, 0xffff_ffff, 2 ** 53, 2 ** 64 - 4096, TEST_RAM_BASE + RAM]);
      case 3: return this.int(2 ** 32) + this.int(2 ** 20) * 2 ** 32;
      default: return TEST_RAM_BASE + this.int(RAM);
    }
  }

  len(): number {
    switch (this.int(6)) {
      case 0: return this.pick([0, 1, 16, 0xffff_ffff, 0x8000_0000, RAM]);
      case 1: return this.int(2 ** 32);
      case 2: return 16 * (1 + this.int(8)); // plausible indirect table
      default: return 1 + this.int(4096);
    }
  }
}

function writeDesc(d: TestDriver, table: number, i: number, f: Fuzzer, size: number): void {
  const flags = f.chance(0.7) ? f.int(8) : f.int(0x10000);
  const next = f.chance(0.8) ? f.int(size) : f.int(0x10000);
  d.writeDesc(table, i, f.addr(), f.len(), flags, next);
}

/**
 * Well-formed-looking chains (header, data, status) with a few mutations each, so requests get
 * deep into the devices: lengths, directions, links and addresses are each wrong now and then.
 */
function plausibleChains(d: TestDriver, qi: number, f: Fuzzer): void {
  const q = d.queues[qi]!;
  let i = 0;
  while (i < q.size) {
    const n = Math.min(q.size - i, 2 + f.int(3));
    const write = f.chance(0.5);
    for (let k = 0; k < n; k++) {
      const last = k === n - 1;
      let addr = TEST_RAM_BASE + RAM / 2 + 16 * f.int(RAM / 32 - 512);
      let len = k === 0 ? 16 : last ? 1 : f.pick([512, 1024, 4096, 16, 32, 20, 1 + f.int(8192)]);
      let flags = (last ? 0 : DescFlag.NEXT) | (k === 0 ? 0 : last || write ? DescFlag.WRITE : 0);
      let next = i + k + 1;
      if (f.chance(0.03)) addr = f.addr();
      if (f.chance(0.03)) len = f.len();
      if (f.chance(0.03)) flags ^= 1 << f.int(3);
      if (f.chance(0.03)) next = f.int(q.size + 2);
      if (k === 0 && d.mem.offset(addr, 16) >= 0) {
        // A virtio-blk header (other devices just see bytes): mostly known types, sectors near the disk.
        d.mem.writeU32(addr, f.pick([0, 0, 1, 1, 4, 8, 11, 13, 10, f.int(2 ** 32)]));
        d.mem.writeU32(addr + 8, f.chance(0.9) ? f.int(2200) : f.int(2 ** 32));
        d.mem.writeU32(addr + 12, f.chance(0.95) ? 0 : f.int(2 ** 32));
      }
      d.writeDesc(q.desc, i + k, addr, len, flags, next);
    }
    d.makeAvailable(qi, i);
    i += n;
  }
}

function iteration(d: TestDriver, f: Fuzzer): void {
  const host = d.mem.bytes;
  // Random RAM contents: the driver's view of the world is garbage.
  for (let i = 0; i < 2048; i++) host[f.int(host.length)] = f.int(256);
  const without = (f.chance(0.3) ? Feature.INDIRECT_DESC : 0) | (f.chance(0.3) ? Feature.EVENT_IDX : 0);
  const sizes = d.device.queueMaxSizes.map(max => (f.chance(0.5) ? max : 1 + f.int(max)));
  d.init({ without, sizes });
  for (let qi = 0; qi < d.queues.length; qi++) {
    const q = d.queues[qi]!;
    // Descriptor table: mostly random, sometimes a well-formed chain or an indirect table.
    for (let i = 0; i < q.size; i++) writeDesc(d, q.desc, i, f, q.size);
    if (f.chance(0.5)) {
      const table = TEST_RAM_BASE + RAM / 2 + 16 * f.int(RAM / 32 - 64);
      const n = 1 + f.int(8);
      for (let i = 0; i < n; i++) writeDesc(d, table, i, f, n);
      d.writeDesc(q.desc, f.int(q.size), table, 16 * n, f.chance(0.8) ? DescFlag.INDIRECT : f.int(8), f.int(q.size));
    }
    // Avail ring: random heads, idx a plausible or wild distance ahead.
    for (let i = 0; i < q.size; i++) d.mem.writeU16(q.avail + Avail.RING + 2 * i, f.chance(0.9) ? f.int(q.size) : f.int(0x10000));
    d.mem.writeU16(q.avail + Avail.FLAGS, f.int(4));
    d.mem.writeU16(q.avail + Avail.RING + 2 * q.size, f.int(0x10000)); // used_event
    const ahead = f.chance(0.85) ? f.int(q.size + 1) : f.int(0x10000);
    d.mem.writeU16(q.avail + Avail.IDX, ahead);
  }
  // Independent check of the parser: every accepted chain lies in RAM and fits the queue.
  const probe = d.transport.queues[0]!;
  const chain = new DescChain(probe.maxSize);
  if (probe.ready) {
    for (let head = 0; head < probe.size && !probe.broken; head++) {
      if (!probe.readChain(head, chain)) break;
      assert.ok(chain.count <= probe.size);
      for (let s = 0; s < chain.count; s++) assert.ok(d.mem.offset(chain.addr[s]!, chain.len[s]!) >= 0, 'segment outside RAM accepted');
    }
  }
  // Reset so the devices see the rings fresh, then kick every queue (twice: after a break too).
  d.init({ without, sizes });
  for (let qi = 0; qi < d.queues.length; qi++) {
    const q = d.queues[qi]!;
    let ahead: number;
    if (f.chance(0.5)) {
      plausibleChains(d, qi, f);
      ahead = q.availIdx;
    } else {
      for (let i = 0; i < q.size; i++) writeDesc(d, q.desc, i, f, q.size);
      for (let i = 0; i < q.size; i++) d.mem.writeU16(q.avail + Avail.RING + 2 * i, f.int(q.size));
      ahead = f.chance(0.85) ? f.int(q.size + 1) : f.int(0x10000);
      d.mem.writeU16(q.avail + Avail.IDX, ahead);
    }
    d.kick(qi);
    d.kick(qi);
    const usedIdx = d.mem.readU16(q.used + Used.IDX);
    assert.ok(usedIdx <= Math.min(ahead, q.size), `used idx ${usedIdx} beyond what was available (${ahead})`);
  }
  // A few random register writes on top.
  for (let i = 0; i < 3; i++) {
    const reg = f.pick([Reg.QUEUE_NOTIFY, Reg.QUEUE_SEL, Reg.QUEUE_NUM, Reg.QUEUE_READY, Reg.STATUS, Reg.INTERRUPT_ACK, Reg.DRIVER_FEATURES, f.int(0x200)]);
    d.transport.write(reg & ~3, 4, f.int(2 ** 32));
    d.transport.read(f.int(0x200), f.pick([1, 2, 4] as const));
  }
}

test(`virtqueue fuzz: ${ITERATIONS} random and adversarial rings per device (seed ${SEED})`, { timeout: 600_000 }, t => {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-fuzz-'));
  try {
    const disk = new FileDisk(join(dir, 'disk.img'), 1 << 20);
    let consoleBytes = 0;
    const devices: VirtioDevice[] = [new VirtioRng(), new VirtioBlk({ disk }), new VirtioConsole({ output: b => { consoleBytes += b.length; } })];
    for (const [k, device] of devices.entries()) {
      const f = new Fuzzer(mulberry32(SEED + k));
      const d = new TestDriver(device, RAM);
      let slowest = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const t0 = performance.now();
        try {
          iteration(d, f);
        } catch (e) {
          throw new Error(`${device.name}: iteration ${i} (seed ${SEED + k}): ${(e as Error).message}`, { cause: e });
        }
        slowest = Math.max(slowest, performance.now() - t0);
        if (device instanceof VirtioConsole) device.input(Uint8Array.of(f.int(256)));
        assert.ok(d.guardsIntact(), `${device.name}: write outside guest RAM at iteration ${i}`);
      }
      assert.ok(slowest < 1000, `${device.name}: slowest iteration ${slowest.toFixed(0)} ms`);
      assert.ok(d.transport.errors > ITERATIONS / 10, `${device.name}: the fuzzer provoked errors (${d.transport.errors})`);
      assert.ok(d.logged.length <= 8, 'logging is bounded');
    }
    const blk = devices[1] as VirtioBlk;
    const answered = blk.stats.reads + blk.stats.writes + blk.stats.flushes + blk.stats.ioErrors + blk.stats.unsupported;
    t.diagnostic(`rng bytes ${(devices[0] as VirtioRng).bytesServed}, blk requests answered ${answered} (${JSON.stringify(blk.stats)}), console bytes ${consoleBytes}`);
    assert.ok((devices[0] as VirtioRng).bytesServed > 0 && answered > 0 && consoleBytes > 0, "some chains got through to the devices");
    disk.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
