import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoldfishRtc, hostWallClockNs } from './rtc-goldfish.js';

const DATE = 1_732_800_000_123_456_789n; // 2024-11-28T13:20:00.123Z, in ns

function setup() {
  let now = DATE;
  const irqs: boolean[] = [];
  const rtc = new GoldfishRtc({ setIrq: (l) => irqs.push(l), clock: () => now });
  const time = () => {
    const lo = rtc.read(0x00, 4);
    const hi = rtc.read(0x04, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  };
  return { rtc, irqs, time, advance: (ns: bigint) => (now += ns), irq: () => irqs.at(-1) ?? false };
}

test('reads the time as Linux does: TIME_LOW latches TIME_HIGH', () => {
  const { time } = setup();
  assert.equal(time(), DATE);
  assert.equal(new Date(Number(time() / 1_000_000n)).toISOString(), '2024-11-28T13:20:00.123Z');
});

test('the default clock is the host wall clock', () => {
  const ms = Number(hostWallClockNs() / 1_000_000n);
  assert.ok(Math.abs(ms - Date.now()) < 1000);
});

test('setting the time (high then low) offsets it from the host clock', () => {
  const { rtc, time, advance } = setup();
  const target = 946_684_800n * 1_000_000_000n; // 2000-01-01
  rtc.write(0x04, 4, Number(target >> 32n));
  rtc.write(0x00, 4, Number(target & 0xffffffffn));
  assert.equal(time(), target);
  advance(5n);
  assert.equal(time(), target + 5n);
});

test('an alarm fires from update(); CLEAR_INTERRUPT drops the line', () => {
  const { rtc, advance, irq } = setup();
  const at = DATE + 2_000_000_000n;
  rtc.write(0x0c, 4, Number(at >> 32n));
  rtc.write(0x08, 4, Number(at & 0xffffffffn));
  rtc.write(0x10, 4, 1);
  assert.equal(rtc.read(0x18, 4), 1, 'armed');
  assert.equal(rtc.nextDeadlineMs(), 2000);
  rtc.update();
  assert.equal(irq(), false);
  advance(2_000_000_000n);
  rtc.update();
  assert.equal(irq(), true);
  assert.equal(rtc.read(0x18, 4), 0);
  assert.equal(rtc.nextDeadlineMs(), Infinity);
  rtc.write(0x1c, 4, 1);
  assert.equal(irq(), false);
});

test('an alarm in the past fires at once; CLEAR_ALARM disarms; disabled IRQ stays low', () => {
  const { rtc, irq } = setup();
  rtc.write(0x0c, 4, 0);
  rtc.write(0x08, 4, 5);
  assert.equal(irq(), false, 'IRQ_ENABLED is 0');
  rtc.write(0x10, 4, 1);
  assert.equal(irq(), true, 'pending interrupt shows once enabled');
  rtc.write(0x1c, 4, 1);
  const far = DATE + 10n ** 12n;
  rtc.write(0x0c, 4, Number(far >> 32n));
  rtc.write(0x08, 4, Number(far & 0xffffffffn));
  assert.equal(rtc.read(0x18, 4), 1);
  rtc.write(0x14, 4, 1);
  assert.equal(rtc.read(0x18, 4), 0);
  assert.equal(rtc.read(0x08, 4), Number(far & 0xffffffffn));
});

test('save → restore → save is stable', () => {
  const a = setup();
  a.rtc.write(0x04, 4, 1);
  a.rtc.write(0x10, 4, 1);
  a.rtc.read(0, 4);
  const saved = a.rtc.save();
  const b = setup();
  b.rtc.restore(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual(b.rtc.save(), saved);
  assert.equal(b.time(), a.time());
});
