/**
 * The words a VM thread and the host share (one SharedArrayBuffer per VM): the host's scheduler
 * writes whether the VM may run and how much CPU it may still use; the VM thread writes what it
 * is doing, its CPU time and its counters. Declared once here; both sides use these names.
 *
 *   Int32 words (Atomics):
 *     0 RUN        host → VM  1: may run; 0: hold (paused, or descheduled while others run)
 *     1 BUDGET_US  both       CPU µs the VM may still use (host refills, VM spends); ≤ 0: hold
 *     2 SEQ        host → VM  bumped (and notified) whenever RUN or BUDGET_US changes
 *     3 STATE      VM → host  a Activity value
 *     4 BEATS      VM → host  slices run so far (wraps); the host's sign of progress
 *     5 TID        VM → host  the thread's Linux id (for /proc/self/task/TID when it hangs)
 *     6 REQUEST    host → VM  1: a request (snapshot) waits on the VM's request port; wakes a held VM
 *   Float64 slots from byte 64 (plain reads and writes; one writer each):
 *     0 CPU_NS     VM → host  thread CPU time (ns) at the end of its last slice
 *     1 INSTRET    VM → host  guest instructions retired, all harts
 *     2 MMIO       VM → host  guest accesses to device registers
 *     3 DISK_READ  VM → host  virtio-blk bytes read
 *     4 DISK_WRITE VM → host  virtio-blk bytes written
 */
export const enum W { RUN = 0, BUDGET_US = 1, SEQ = 2, STATE = 3, BEATS = 4, TID = 5, REQUEST = 6 }
export const enum F { CPU_NS = 0, INSTRET = 1, MMIO = 2, DISK_READ = 3, DISK_WRITE = 4 }
export const enum Activity { STARTING = 0, BUSY = 1, IDLE = 2, HELD = 3 }

const INT_WORDS = 16;
const FLOAT_SLOTS = 8;
const FLOAT_OFFSET = INT_WORDS * 4;
export const CONTROL_BYTES = FLOAT_OFFSET + FLOAT_SLOTS * 8;

/** Budget that means "no limit" (the scheduler keeps it topped up): 10 minutes of CPU. */
export const UNLIMITED_US = 600_000_000;

/**
 * The host-wide word a VM thread uses to wake the scheduler: while every VM idles the scheduler
 * stops ticking (on this kind of host each timer wake-up of a thread costs ~0.1 ms of CPU) and
 * sets it to 1; a VM thread that finds work sets it back to 0 and notifies.
 */
export class HostWake {
  readonly i32: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.i32 = new Int32Array(buffer);
  }

  /** VM thread: wakes the scheduler if it sleeps. */
  busy(): void {
    if (Atomics.load(this.i32, 0) === 1 && Atomics.compareExchange(this.i32, 0, 1, 0) === 1) Atomics.notify(this.i32, 0);
  }
}

export class Control {
  readonly i32: Int32Array;
  readonly f64: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(CONTROL_BYTES)) {
    this.i32 = new Int32Array(buffer, 0, INT_WORDS);
    this.f64 = new Float64Array(buffer, FLOAT_OFFSET, FLOAT_SLOTS);
  }

  /** Host: lets the VM run (or holds it) and wakes it if it waits. */
  setRun(run: boolean): void {
    if ((Atomics.load(this.i32, W.RUN) === 1) === run) return;
    Atomics.store(this.i32, W.RUN, run ? 1 : 0);
    this.kick();
  }

  /** Host: sets the CPU the VM may still use. */
  setBudget(us: number): void {
    const old = Atomics.exchange(this.i32, W.BUDGET_US, Math.round(Math.min(us, UNLIMITED_US)));
    if (old <= 0 && us > 0) this.kick();
  }

  /**
   * Host: adds `us` of CPU to the budget, keeping at most `cap` (the VM thread spends concurrently,
   * so add and trim rather than overwrite its updates).
   */
  refill(us: number, cap: number): void {
    const before = Atomics.add(this.i32, W.BUDGET_US, Math.round(us));
    const after = Atomics.load(this.i32, W.BUDGET_US);
    if (after > cap) Atomics.sub(this.i32, W.BUDGET_US, after - Math.round(cap));
    if (before <= 0 && after > 0) this.kick();
  }

  get budgetUs(): number { return Atomics.load(this.i32, W.BUDGET_US); }

  /** VM: may it run a slice now? */
  mayRun(): boolean {
    return Atomics.load(this.i32, W.RUN) === 1 && Atomics.load(this.i32, W.BUDGET_US) > 0;
  }

  /** Host: a request was posted on the VM's request port; a held VM wakes to serve it. */
  request(): void {
    Atomics.store(this.i32, W.REQUEST, 1);
    this.kick();
  }

  /** VM: whether a request was posted since the last call. */
  takeRequest(): boolean { return Atomics.exchange(this.i32, W.REQUEST, 0) === 1; }

  /** VM: blocks the thread until mayRun() (the host notifies on every change), serving requests meanwhile. */
  waitUntilRunnable(serve: () => void = () => {}): void {
    for (;;) {
      const seq = Atomics.load(this.i32, W.SEQ);
      if (this.takeRequest()) serve();
      if (this.mayRun()) return;
      Atomics.wait(this.i32, W.SEQ, seq);
    }
  }

  get activity(): Activity { return Atomics.load(this.i32, W.STATE) as Activity; }
  set activity(a: Activity) { Atomics.store(this.i32, W.STATE, a); }

  private kick(): void {
    Atomics.add(this.i32, W.SEQ, 1);
    Atomics.notify(this.i32, W.SEQ);
  }
}
