import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_STRIPE_BYTES, openVolume } from './index.js';
import {
  CountingMember, assertMembersHold, assertReads, assertVolumeHolds, pattern, rng, storageError, withMembers, withVolume,
  writeInPieces, type MemberFiles,
} from './testing.js';

const KiB = 1024, MiB = 1024 * KiB;

/** Volume offset of byte `x` of member `m` (the RAID-0 layout, written independently of stripe.ts). */
function volumeOffset(m: number, x: number, n: number, chunk: number): number {
  const row = Math.floor(x / chunk);
  return (row * n + m) * chunk + (x % chunk);
}

/** What each of the `n` member files must hold if the volume holds `vol`. */
function expectedMembers(vol: Uint8Array, n: number, chunk: number): Uint8Array[] {
  return Array.from({ length: n }, (_, m) => {
    const out = new Uint8Array(vol.length / n);
    for (let x = 0; x < out.length; x += chunk) {
      const v = volumeOffset(m, x, n, chunk);
      out.set(vol.subarray(v, v + chunk), x);
    }
    return out;
  });
}

test('stripe: default chunk 64 KiB; size = members x smallest member rounded down to a chunk', () => {
  withVolume([MiB + 4 * KiB, MiB, 2 * MiB], (f) => openVolume({ mode: 'stripe', members: f.disks }), (vol) => {
    assert.equal(DEFAULT_STRIPE_BYTES, 64 * KiB);
    assert.equal(vol.size, 3 * MiB);
  });
  withMembers([200 * KiB, 300 * KiB], (g) => {
    assert.equal(openVolume({ mode: 'stripe', members: g.disks, stripeBytes: 48 * KiB }).size, 2 * 192 * KiB);
  });
});

test('stripe: random writes land chunk by chunk, round-robin, in the member files', () => {
  const n = 3, chunk = 16 * KiB;
  const open = (f: MemberFiles) => openVolume({ mode: 'stripe', members: f.disks, stripeBytes: chunk });
  withVolume([256 * KiB, 256 * KiB, 260 * KiB], open, (vol, f) => {
    assert.equal(vol.size, 3 * 256 * KiB);
    const data = pattern(vol.size, 11);
    writeInPieces(vol, data, rng(5), 100);  // up to 50 KiB: crosses several chunks
    vol.flush();
    assertMembersHold(f, expectedMembers(data, n, chunk), 256 * KiB);
    // Spot checks of the mapping itself: volume chunk 4 is member 1's second chunk.
    assert.deepEqual(f.fileBytes(1, chunk, 512), data.subarray(4 * chunk, 4 * chunk + 512));
    // Straddling reads.
    assertReads(vol, data, [[chunk - 512, 1024], [2 * chunk - 512, 2 * chunk + 1024], [0, vol.size], [vol.size - 512, 512]]);
  });
});

test('stripe: discard and write-zeroes make one call per member, and zero exactly the range', () => {
  const n = 3, chunk = 8 * KiB;
  withMembers([64 * KiB, 64 * KiB, 64 * KiB], (f) => {
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
    assertMembersHold(f, expectedMembers(model, n, chunk), 64 * KiB);
    assertVolumeHolds(vol, model);
    vol.close();
  });
});

test('stripe: bad chunk sizes and members smaller than a chunk are refused', () => {
  withMembers([32 * KiB, 64 * KiB], (f) => {
    const bad = (stripeBytes: number) => assert.throws(() => openVolume({ mode: 'stripe', members: f.disks, stripeBytes }),
      storageError('bad-spec'), `stripeBytes ${stripeBytes}`);
    for (const s of [0, -512, 1000, 512.5, Number.NaN, Infinity, 64 * KiB]) bad(s);
    assert.equal(openVolume({ mode: 'stripe', members: f.disks, stripeBytes: 32 * KiB }).size, 64 * KiB);
  });
});
