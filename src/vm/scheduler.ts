/**
 * Shares host CPU among running VMs. Each VM is one thread that runs its guest in slices of at
 * most 8 ms and, before each slice, asks its control words (control.ts) whether it may run. Every
 * tick (20 ms) the scheduler reads each VM's thread CPU time and:
 *
 *   - cpu-limit: refills the VM's budget by limit × elapsed time (capped at one tick's worth, so
 *     an idle VM cannot save up a burst); the thread spends it and holds itself at zero. Over a
 *     window of seconds the VM's CPU stays at or under its limit (overshoot: one slice).
 *   - cpu-shares: when more VMs want CPU than there are `cores`, it lets the `cores` VMs with the
 *     least weighted CPU time (vruntime = CPU ns × 1024 / shares, as CFS) run until the next
 *     tick and holds the rest. Measured CPU time, not wall time, drives the choice, so the ratio
 *     holds even when the host is busy with other work. With no contention every VM runs. (A VM
 *     told to hold first finishes its slice, so two VMs overlap by up to 8 ms at a switch.)
 *   - idle VMs (all harts in WFI) sleep in their own loops and are never woken by the scheduler;
 *     one that wakes up starts at the smallest vruntime of those running (less a small credit),
 *     so sleeping earns no hoard of CPU.
 *
 * A held thread waits in Atomics.wait: it uses no CPU until the scheduler notifies it. And while
 * every VM idles the scheduler itself sleeps (Atomics.waitAsync on `wake`) until a VM thread
 * finds work, so an idle host has no timer firing 50 times a second.
 */
import { Activity, Control, F, HostWake, UNLIMITED_US } from './control.js';

export const TICK_MS = 20;
/** Credit (in vruntime ns) a VM that wakes up gets over the VMs already running. */
const WAKE_CREDIT_NS = TICK_MS * 1e6;

export interface Schedulable {
  readonly control: Control;
  /** Relative weight (> 0). */
  shares: number;
  /** Percent of one host core, or undefined for no limit. */
  limit: number | undefined;
  /** Held regardless of CPU (a paused VM). */
  paused: boolean;
}

interface Entry {
  vm: Schedulable;
  lastCpuNs: number;
  vruntime: number;
  wanted: boolean;
}

export class CpuScheduler {
  private readonly entries: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private sleeping = false;
  /** Shared with every VM thread (workerData): how they wake a sleeping scheduler. */
  readonly wake = new HostWake();

  constructor(readonly cores: number) {
    if (!(Number.isInteger(cores) && cores >= 1)) throw new RangeError(`cores must be a positive integer, not ${cores}`);
  }

  add(vm: Schedulable): void {
    const running = this.entries.filter(e => e.wanted);
    const vruntime = running.length ? Math.min(...running.map(e => e.vruntime)) : 0;
    this.entries.push({ vm, lastCpuNs: vm.control.f64[F.CPU_NS], vruntime, wanted: false });
    this.apply(vm);
    this.startTicking();
  }

  remove(vm: Schedulable): void {
    const i = this.entries.findIndex(e => e.vm === vm);
    if (i >= 0) this.entries.splice(i, 1);
    if (this.entries.length === 0) this.stopTicking();
  }

  /** Applies a change of `paused` or `limit` at once (not at the next tick). */
  apply(vm: Schedulable): void {
    this.startTicking();
    if (vm.paused) { vm.control.setRun(false); return; }
    if (vm.limit === undefined) vm.control.setBudget(UNLIMITED_US);
    else if (vm.control.budgetUs > this.burstUs(vm.limit)) vm.control.setBudget(this.burstUs(vm.limit));
    vm.control.setRun(true);
  }

  /** One scheduling round (run by the timer; tests that drive time themselves pass the time elapsed). */
  tick(elapsedMs?: number): void {
    const now = performance.now();
    const elapsedUs = (elapsedMs ?? now - this.lastTick) * 1000;
    this.lastTick = now;
    const wanting: Entry[] = [];
    let minRunning = Infinity;
    for (const e of this.entries) {
      const cpu = e.vm.control.f64[F.CPU_NS];
      e.vruntime += ((cpu - e.lastCpuNs) * 1024) / e.vm.shares;
      e.lastCpuNs = cpu;
      if (e.wanted) minRunning = Math.min(minRunning, e.vruntime);
    }
    for (const e of this.entries) {
      const { vm } = e;
      this.refill(vm, elapsedUs);
      const activity = vm.control.activity;
      const wants = !vm.paused && (activity === Activity.BUSY || activity === Activity.HELD);
      if (wants && !e.wanted && minRunning !== Infinity) e.vruntime = Math.max(e.vruntime, minRunning - WAKE_CREDIT_NS);
      e.wanted = wants;
      if (wants && vm.control.budgetUs > 0) wanting.push(e);
    }
    let allowed: Set<Entry> | undefined;
    if (wanting.length > this.cores) {
      wanting.sort((a, b) => a.vruntime - b.vruntime);
      allowed = new Set(wanting.slice(0, this.cores));
    }
    for (const e of this.entries) {
      // Idle and limit-held VMs keep RUN set: the budget holds the latter, and the former may wake at once.
      const contended = allowed !== undefined && wanting.includes(e) && !allowed.has(e);
      e.vm.control.setRun(!e.vm.paused && !contended);
    }
    if (elapsedMs === undefined && !this.entries.some(e => e.wanted)) this.sleep();
  }

  private startTicking(): void {
    if (this.timer || this.entries.length === 0) return;
    this.sleeping = false;
    Atomics.store(this.wake.i32, 0, 0);
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  private stopTicking(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.sleeping) { this.sleeping = false; Atomics.store(this.wake.i32, 0, 0); Atomics.notify(this.wake.i32, 0); }
  }

  /**
   * Nobody wants CPU: stop ticking until a VM thread finds work. A limited VM's budget stays at
   * most one tick's worth meanwhile, and the refill after waking is capped the same way.
   */
  private sleep(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sleeping = true;
    Atomics.store(this.wake.i32, 0, 1);
    const w = Atomics.waitAsync(this.wake.i32, 0, 1);
    const resume = (): void => { if (this.sleeping) this.startTicking(); };
    if (w.async) void w.value.then(resume);
    else resume();
  }

  /** A VM's weighted CPU time (thread ns × 1024 / shares), for tests and metrics. */
  vruntimeOf(vm: Schedulable): number | undefined {
    return this.entries.find(e => e.vm === vm)?.vruntime;
  }

  private burstUs(limit: number): number {
    return (limit / 100) * TICK_MS * 1000;
  }

  private refill(vm: Schedulable, elapsedUs: number): void {
    if (vm.limit === undefined) vm.control.setBudget(UNLIMITED_US);
    else vm.control.refill((vm.limit / 100) * elapsedUs, this.burstUs(vm.limit));
  }
}
