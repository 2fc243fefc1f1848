import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Activity, Control, F, UNLIMITED_US, W } from './control.js';
import { CpuScheduler, TICK_MS, type Schedulable } from './scheduler.js';

/**
 * The scheduler's decisions, driven tick by tick: each VM "thread" here runs whenever the
 * scheduler lets it (RUN set and budget left) and is charged what a tick of wall time gives it.
 */
function vm(shares: number, limit?: number): Schedulable {
  const control = new Control();
  control.activity = Activity.BUSY;
  return { control, shares, limit, paused: false };
}

function runTicks(s: CpuScheduler, vms: Schedulable[], ticks: number): number[] {
  const used = vms.map(() => 0);
  for (let t = 0; t < ticks; t++) {
    vms.forEach((v, i) => {
      const c = v.control;
      if (!c.mayRun()) { c.activity = Activity.HELD; return; }
      const ns = TICK_MS * 1e6;
      c.f64[F.CPU_NS] += ns;
      Atomics.sub(c.i32, W.BUDGET_US, ns / 1000);
      used[i] += ns;
      c.activity = Activity.BUSY;
    });
    s.tick(TICK_MS);
  }
  return used;
}

test('under contention CPU follows shares (1:3 on one core)', () => {
  const s = new CpuScheduler(1);
  const vms = [vm(1024), vm(3072)];
  for (const v of vms) s.add(v);
  try {
    const [a, b] = runTicks(s, vms, 400);
    assert.ok(Math.abs(b! / a! - 3) < 0.1, `ratio ${b! / a!}`);
  } finally {
    for (const v of vms) s.remove(v);
  }
});

test('without contention every VM runs; a limit holds one VM to its percent', () => {
  const s = new CpuScheduler(2);
  const vms = [vm(1024), vm(1024, 20)];
  for (const v of vms) s.add(v);
  try {
    const [a, b] = runTicks(s, vms, 500);
    const wall = 500 * TICK_MS * 1e6;
    assert.ok(a! > 0.95 * wall, 'the unlimited VM has a core to itself');
    assert.ok(b! <= 0.2 * wall + TICK_MS * 1e6, `limited VM used ${(100 * b! / wall).toFixed(1)} %`);
    assert.ok(b! >= 0.18 * wall, `limited VM used ${(100 * b! / wall).toFixed(1)} %`);
    assert.equal(vms[0]!.control.budgetUs, UNLIMITED_US);
  } finally {
    for (const v of vms) s.remove(v);
  }
});

test('a paused VM is held; an idle VM is left alone and gains no credit by sleeping', () => {
  const s = new CpuScheduler(1);
  const [a, b] = [vm(1024), vm(1024)];
  s.add(a); s.add(b);
  try {
    b.control.activity = Activity.IDLE;
    runTicks(s, [a], 100); // b sleeps while a runs alone
    assert.equal(b.control.mayRun(), true, 'an idle VM may wake at once');
    b.control.activity = Activity.BUSY;
    const [ua, ub] = runTicks(s, [a, b], 100);
    assert.ok(ub! < ua! * 1.3, `the sleeper does not take the core for its sleep (${ua}, ${ub})`);
    b.paused = true;
    s.apply(b);
    assert.equal(b.control.mayRun(), false);
    const [, paused] = runTicks(s, [a, b], 10);
    assert.equal(paused, 0);
  } finally {
    s.remove(a); s.remove(b);
  }
});
