import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError } from './block.js';
import { IoThrottle, type ThrottleLimits } from './throttle.js';

/**
 * A client that always has a request of `bytes` ready, on a fake clock: it asks, and either
 * counts the admitted request or advances the clock by the named delay. Returns totals.
 */
function saturate(t: IoThrottle, bytes: (i: number) => number, untilMs: number, startMs = 0) {
  let now = startMs, ops = 0, total = 0, asks = 0;
  while (now < untilMs) {
    const b = bytes(ops);
    const d = t.delayMs(b, now);
    asks++;
    if (d === 0) { ops++; total += b; } else { assert.ok(d > 0); now += d; }
    assert.ok(asks < 10_000_000, 'the client is stuck');
  }
  return { ops, bytes: total, now };
}

const within2 = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) <= 0.02 * want, `${what}: ${got} is not within 2 % of ${want}`);

test('iops limit: the sustained rate over 10 simulated seconds is within 2 % of the limit', () => {
  const t = new IoThrottle({ iops: 500 });
  const r = saturate(t, () => 4096, 10_000);
  within2(r.ops, 5000, 'requests in 10 s');
});

test('bps limit: sustained rate within 2 %, with request sizes that vary', () => {
  const t = new IoThrottle({ bps: 10 * 1024 * 1024 });
  const sizes = [512, 4096, 65536, 131072, 1 << 20];
  const r = saturate(t, (i) => sizes[i % sizes.length]!, 10_000);
  within2(r.bytes, 100 * 1024 * 1024, 'bytes in 10 s');
});

test('both limits: the stricter one wins', () => {
  // 1000 iops of 64 KiB would be 64 MiB/s: the 8 MiB/s byte limit binds.
  const r1 = saturate(new IoThrottle({ iops: 1000, bps: 8 << 20 }), () => 65536, 10_000);
  within2(r1.bytes, 80 << 20, 'bytes in 10 s');
  // 512-byte requests: 1000 iops is 0.5 MB/s, under the byte limit, so iops binds.
  const r2 = saturate(new IoThrottle({ iops: 1000, bps: 8 << 20 }), () => 512, 10_000);
  within2(r2.ops, 10_000, 'requests in 10 s');
});

test('burst: a full bucket admits `burst` requests at once, then the rate applies', () => {
  const t = new IoThrottle({ iops: 100, iopsBurst: 50 });
  let admitted = 0;
  while (t.delayMs(512, 0) === 0) admitted++;
  assert.equal(admitted, 50);
  const wait = t.delayMs(512, 0);
  assert.ok(Math.abs(wait - 10) < 1e-6, `one request at 100 iops takes 10 ms, got ${wait}`);
  assert.equal(t.delayMs(512, 5) > 0, true, 'not yet after 5 ms');
  assert.equal(t.delayMs(512, 10), 0, 'admitted after the named delay');
  // A long quiet period refills only up to the burst.
  let again = 0;
  while (t.delayMs(512, 1_000_000) === 0) again++;
  assert.equal(again, 50);
});

test('default burst is a tenth of a second of the rate', () => {
  const t = new IoThrottle({ bps: 1_000_000 });
  assert.equal(t.delayMs(100_000, 0), 0);
  assert.ok(t.delayMs(1, 0) > 0);
  const ops = new IoThrottle({ iops: 5 });   // at least one request
  assert.equal(ops.delayMs(512, 0), 0);
  assert.ok(ops.delayMs(512, 0) > 0);
});

test('a request larger than the burst is admitted once the bucket is full, and paid for afterwards', () => {
  const t = new IoThrottle({ bps: 1000, bpsBurst: 100 });
  assert.equal(t.delayMs(10_000, 0), 0, 'full bucket: admitted although 100x the burst');
  // The bucket is now at -9900: the next byte waits until it is back to 1 (9.901 s).
  const wait = t.delayMs(1, 0);
  assert.ok(Math.abs(wait - 9901) < 1e-6, `wait ${wait}`);
  // A large request arriving while the bucket is partly refilled waits until it is full again.
  const u = new IoThrottle({ bps: 1000, bpsBurst: 100 });
  assert.equal(u.delayMs(60, 0), 0);
  assert.ok(Math.abs(u.delayMs(5000, 0) - 60) < 1e-6);
  assert.equal(u.delayMs(5000, 60), 0);
  // Sustained: huge requests still converge to the rate.
  const r = saturate(new IoThrottle({ bps: 1 << 20, bpsBurst: 4096 }), () => 256 * 1024, 10_000);
  within2(r.bytes, 10 << 20, 'bytes in 10 s');
});

test('unlimited: everything is admitted, and nothing is counted', () => {
  const t = new IoThrottle({});
  assert.equal(t.limited, false);
  for (let i = 0; i < 1000; i++) assert.equal(t.delayMs(1 << 30, 0), 0);
  const zero = new IoThrottle({ iops: 0, bps: 0 });
  assert.equal(zero.limited, false);
  assert.equal(zero.delayMs(1 << 20, 0), 0);
  assert.equal(new IoThrottle({ iops: 1 }).limited, true);
});

test('a clock that goes backwards neither refills nor breaks the bucket', () => {
  const t = new IoThrottle({ iops: 10, iopsBurst: 1 });
  assert.equal(t.delayMs(0, 1000), 0);
  assert.ok(t.delayMs(0, 500) > 0);
  assert.ok(t.delayMs(0, 1050) > 0);
  assert.equal(t.delayMs(0, 1100), 0);
});

test('invalid limits are refused with bad-spec', () => {
  const bad = (limits: ThrottleLimits) => assert.throws(() => new IoThrottle(limits),
    (e: unknown) => e instanceof StorageError && e.kind === 'bad-spec', JSON.stringify(limits));
  bad({ iops: -1 });
  bad({ bps: Number.NaN });
  bad({ bps: Infinity });
  bad({ iops: 100, iopsBurst: 0 });
  bad({ iops: 100, iopsBurst: -5 });
  bad({ bps: 100, bpsBurst: Number.NaN });
  bad({ iopsBurst: 10 });                 // a burst without its rate
  bad({ bps: '100' as unknown as number });
});
