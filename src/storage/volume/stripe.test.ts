import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError } from '../block.js';
import { DEFAULT_STRIPE_BYTES, openVolume } from './index.js';
import { CountingMember, MemberFiles, pattern, rng } from './testing.js';

const KiB = 1024, MiB = 1024 * KiB;

/** Volume offset of byte `x` of member `m` (the RAID-0 layout, written independently of stripe.ts). */
function volumeOffset(m: number, x: number, n: number, chunk: number): number {
  const row = Math.floor(x / chunk);
  return (row * n + m) * chunk + (x % chunk);
}

/** What member m's file must hold if the volume holds `vol`. */
function expectedMember(vol: Uint8Array, m: number, n: number, chunk: number): Uint8Array {
  const out = new Uint8Array(vol.length / n);
  for (let x = 0; x < out.length; x += chunk) {
    const v = volumeOffset(m, x, n, chunk);
    out.set(vol.subarray(v, v + chunk), x);
  }
  return out;
}

test('stripe: default chunk 64 KiB; size = members x smallest member rounded down to a chunk', () => {
  const f = new MemberFiles([MiB + 4 * KiB, MiB, 2 * MiB]);
  try {
    const vol = openVolume({ mode: 'stripe', members: f.disks });
    assert.equal(DEFAULT_STRIPE_BYTES, 64 * KiB);
    assert.equal(vol.size, 3 * MiB);
    vol.close();
  } finally {
    f.remove();
  }
  const g = new MemberFiles([200 * KiB, 300 * KiB]);
  try {
    assert.equal(openVolume({ mode: 'stripe', members: g.disks, stripeBytes: 48 * KiB }).size, 2 * 192 * KiB);
  } finally {
    g.remove();
  }
});

test('stripe: random writes land chunk by chunk, round-robin, in the member files', () => {
  const n = 3, chunk = 16 * KiB;
  const f = new MemberFiles([256 * KiB, 256 * KiB, 260 * KiB]);
  try {
    const vol = openVolume({ mode: 'stripe', members: f.disks, stripeBytes: chunk });
    assert.equal(vol.size, 3 * 256 * KiB);
    const data = pattern(vol.size, 11);
    const next = rng(5);
    for (let pos = 0; pos < vol.size;) {
      const len = Math.min(vol.size - pos, 512 * (1 + next(100)));  // up to 50 KiB: crosses several chunks
      vol.write(pos, data.subarray(pos, pos + len));
      pos += len;
    }
    vol.flush();
    for (let m = 0; m < n; m++) assert.deepEqual(f.fileBytes(m, 0, 256 * KiB), expectedMember(data, m, n, chunk), `member ${m}`);
    // Spot checks of the mapping itself: volume chunk 4 is member 1's second chunk.
    assert.deepEqual(f.fileBytes(1, chunk, 512), data.subarray(4 * chunk, 4 * chunk + 512));
    // Straddling reads.
    for (const [off, len] of [[chunk - 512, 1024], [2 * chunk - 512, 2 * chunk + 1024], [0, vol.size], [vol.size - 512, 512]] as const) {
      const got = new Uint8Array(len);
      vol.read(off, got);
      assert.deepEqual(got, data.subarray(off, off + len), `read at ${off}+${len}`);
    }
    vol.close();
  } finally {
    f.remove();
  }
});

test('stripe: discard and write-zeroes make one call per member, and zero exactly the range', () => {
  const n = 3, chunk = 8 * KiB;
  const f = new MemberFiles([64 * KiB, 64 * KiB, 64 * KiB]);
  try {
    const counted = f.disks.map((d) => new CountingMember(d));
    const vol = openVolume({ mode: 'stripe', members: counted, stripeBytes: chunk });
    const data = pattern(vol.size, 13);
    vol.write(0, data);
    const model = data.slice();
    const next = rng(9);
    for (let i = 0; i < 200; i++) {
      const off = 512 * next(vol.size / 512);
      const len = Math.min(vol.size - off, 512 * next(120));
      const before = counted.map((c) => c.calls.discard + c.calls.writeZeroes);
      if (i % 2) vol.discard(off, len);
      else vol.writeZeroes(off, len, i % 4 === 0);
      model.fill(0, off, off + len);
      counted.forEach((c, m) => assert.ok(c.calls.discard + c.calls.writeZeroes - before[m]! <= 1, `member ${m} got more than one call`));
      // Rewrite some data so that later ranges have something to zero.
      const woff = 512 * next(vol.size / 512), wlen = Math.min(vol.size - woff, 512 * next(40));
      vol.write(woff, data.subarray(woff, woff + wlen));
      model.set(data.subarray(woff, woff + wlen), woff);
    }
    for (let m = 0; m < n; m++) assert.deepEqual(f.fileBytes(m, 0, 64 * KiB), expectedMember(model, m, n, chunk), `member ${m}`);
    const back = new Uint8Array(vol.size);
    vol.read(0, back);
    assert.deepEqual(back, model);
    vol.close();
  } finally {
    f.remove();
  }
});

test('stripe: bad chunk sizes and members smaller than a chunk are refused', () => {
  const f = new MemberFiles([32 * KiB, 64 * KiB]);
  try {
    const bad = (stripeBytes: number) => assert.throws(() => openVolume({ mode: 'stripe', members: f.disks, stripeBytes }),
      (e: unknown) => e instanceof StorageError && e.kind === 'bad-spec', `stripeBytes ${stripeBytes}`);
    for (const s of [0, -512, 1000, 512.5, Number.NaN, Infinity, 64 * KiB]) bad(s);
    assert.equal(openVolume({ mode: 'stripe', members: f.disks, stripeBytes: 32 * KiB }).size, 64 * KiB);
  } finally {
    f.remove();
  }
});
