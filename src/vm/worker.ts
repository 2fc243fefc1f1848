/**
 * The host's handle on one VM thread (worker-main.ts is the thread itself).
 *
 * Why a worker thread per VM rather than a child process (measured on this host, Node 20.20, the
 * bundled guest with 128 MiB idle at its shell prompt; guest RAM actually touched is ~14 MiB):
 *   - Memory beyond guest RAM: with 50 idle VMs each thread adds 17.4 MiB to the host process's
 *     resident memory (idle.test.ts; with only 2 VMs, 28 MiB 25 s after boot and 36 MiB 4 s
 *     after, before V8's memory reducer runs): its own V8 heap and nursery (capped at 2 MiB here,
 *     which saved ~10 MiB), its copy of the generated interpreter and JIT code, its malloc arena.
 *     The same VM as a child `node` process (`gasang run -m 128`) is 107 MiB resident: 65 MiB
 *     private (a whole Node runtime, its own heaps and libuv) plus 42 MiB of the node binary's
 *     mapped pages, less the same 14 MiB of guest RAM. Threads cost a third to a quarter of a
 *     process; neither meets the issue's 8 MiB goal yet.
 *   - Control: the scheduler holds and releases VMs every 20 ms; with threads that is a shared
 *     word and Atomics.wait/notify (a futex), with processes a signal or pipe round trip, and the
 *     per-VM counters would need IPC as well.
 *   - Isolation: what a guest can do to the emulator — loop, trap forever, flood its console,
 *     make a device model throw — stays in its thread: the loop is gated by the scheduler, a
 *     thread that stops making progress is terminated (worker.terminate() interrupts even running
 *     WebAssembly), an exception ends only that thread (an 'error' event here), and its JS heap
 *     has its own limit (exceeding it ends that worker, not the process). What a thread cannot
 *     contain is a crash of V8 or Node itself, which a process would: gasang has no native code of
 *     its own, so that is a runtime bug rather than something a guest controls.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import type { PowerEvent } from '../machine/syscon.js';
import type { AttachDrive, AttachShare } from './attach.js';
import type { NicConfig } from '../net/nic.js';
import type { NicCounters } from './types.js';
import { handleTransfer } from '../net/switch/index.js';
import { Control, W } from './control.js';
import type { SnapshotProgress, SnapshotStats } from '../snapshot/index.js';
import type { MigrationProgress, MigrationStats } from '../migration/send.js';

/** What the VM thread boots: the spec with defaults applied, paths resolved, overlays made. */
export interface VmPlan {
  name: string;
  cpus: number;
  memoryMiB: number;
  kernel: string;
  initrd?: string;
  firmware: string;
  append: string;
  jit: boolean;
  drives: AttachDrive[];
  shares: AttachShare[];
  nics: NicConfig[];
  /** Continue from this snapshot file instead of booting (its disks are reverted to its instant first). */
  restore?: string;
  /** A clone's restore: the snapshot's drive files → this VM's copies of them (reverted instead). */
  restoreDrives?: Record<string, string>;
  /** Receive the VM by live migration instead of booting: listen on `host` (a free port) for a source presenting `token`. */
  incoming?: { host: string; token: string; copiedDrives: number[] };
}

/** Host → VM thread, on the request port: served between slices, even while the VM is held. */
export interface SnapshotRequest {
  id: number;
  type: 'snapshot';
  file: string;
  spec: unknown;
  stop: boolean;
  /** Files copied [from, to] while the VM is still held after the snapshot: a clone's disks, flushed and quiet. */
  copies?: [string, string][];
}
/** Host → VM thread, on the request port: migrate the running VM to a target thread listening at host:port. */
export interface MigrateRequest { id: number; type: 'migrate'; host: string; port: number; token: string; spec: unknown; copyDrives: number[] }
export type VmRequest = SnapshotRequest | MigrateRequest;
/** VM thread → host, on the request port. */
export type RequestReply = { id: number; ok: true; stats: SnapshotStats | MigrationStats } | { id: number; ok: false; message: string };

/** Host → VM thread. */
export type ToVm =
  | { type: 'input'; bytes: Uint8Array }
  | { type: 'agent'; bytes: Uint8Array }
  | { type: 'power' }
  | { type: 'stop' }
  | { type: 'fault'; fault: InjectedFault };
/** Emulation bugs tests can inject: an exception, or an endless loop in the VM thread. */
export type InjectedFault = 'throw' | 'hang';

/** VM thread → host. */
export type FromVm =
  | { type: 'running'; warnings: string[] }
  | { type: 'incoming'; port: number }
  | { type: 'output'; bytes: Uint8Array }
  | { type: 'agent'; bytes: Uint8Array }
  | { type: 'log'; line: string }
  | { type: 'nics'; stats: NicCounters[] }
  | { type: 'migrating'; progress: MigrationProgress }
  | { type: 'snapshotting'; progress: SnapshotProgress }
  /** The VM moved with open TCP flows: the thread stays, relaying them, after the run has ended. */
  | { type: 'relaying'; flows: number }
  | { type: 'relayed' }
  | { type: 'exit'; kind: PowerEvent; code: number }
  | { type: 'failed'; message: string };

/** How a run ended. */
export interface RunEnd {
  reason: 'poweroff' | 'reset' | 'stopped' | 'killed' | 'crashed' | 'migrated';
  code?: number;
  message?: string;
}

export interface VmThreadEvents {
  output(bytes: Uint8Array): void;
  /** What the guest agent (guest/agent.sh) wrote on its port. */
  agent?(bytes: Uint8Array): void;
  /** An incoming migration's thread listens on this port. */
  incoming?(port: number): void;
  log(line: string): void;
  nics?(stats: NicCounters[]): void;
  /** An outgoing migration's progress (a few times a second). */
  migrating?(p: MigrationProgress): void;
  /** A live snapshot's progress (a few times a second). */
  snapshotting?(p: SnapshotProgress): void;
  /** The VM moved away with `flows` TCP flows whose host sockets this thread keeps relaying; `done` when the last has closed (or the thread was ended). */
  relaying?(flows: number, done: Promise<void>): void;
}

/** A thread that makes no progress for this much of its own CPU time is hung (a slice is ≤ 8 ms). */
export const HANG_CPU_MS = 5_000;
/**
 * V8 heap limits of a VM thread: 512 MiB for its JavaScript (guest RAM is outside it); the
 * emulator allocates little once running, so a small nursery saves ~10 MiB per VM (measured).
 */
export const VM_THREAD_LIMITS = { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 2 } as const;

export class VmThread {
  readonly control = new Control();
  /** Settles when the thread has ended, with how. */
  readonly ended: Promise<RunEnd>;
  warnings: string[] = [];
  private readonly worker: Worker;
  private finish!: (end: RunEnd) => void;
  private done: RunEnd | undefined;
  /** The reason to report when the thread ends because we ended it. */
  private endingAs: RunEnd | undefined;
  private lastBeats = -1;
  private lastBeatCpuNs = 0;
  private readonly requests = new MessageChannel();
  private readonly pending = new Map<number, { resolve: (s: SnapshotStats | MigrationStats) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  /** Set while the thread relays a migrated VM's flows: it outlives the run until they close. */
  private relay: { done: Promise<void>; end: () => void } | undefined;

  private constructor(plan: VmPlan, hostWake: SharedArrayBuffer, events: VmThreadEvents, onRunning: (err?: string) => void) {
    this.ended = new Promise(resolve => { this.finish = resolve; });
    this.worker = new Worker(new URL('./worker-main.js', import.meta.url), {
      workerData: { plan, control: this.control.buffer, hostWake, requests: this.requests.port2 },
      transferList: [this.requests.port2, ...plan.nics.flatMap(n => (n.kind === 'network' && n.handle ? handleTransfer(n.handle) : []))],
      resourceLimits: VM_THREAD_LIMITS,
      stdout: false,
      stderr: false,
    });
    this.requests.port1.on('message', (r: RequestReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (r.ok) p?.resolve(r.stats);
      else p?.reject(new Error(r.message));
    });
    this.requests.port1.unref();
    let running = false;
    this.worker.on('message', (m: FromVm) => {
      switch (m.type) {
        case 'output': events.output(m.bytes); break;
        case 'agent': events.agent?.(m.bytes); break;
        case 'incoming': events.incoming?.(m.port); break;
        case 'log': events.log(m.line); break;
        case 'nics': events.nics?.(m.stats); break;
        case 'migrating': events.migrating?.(m.progress); break;
        case 'snapshotting': events.snapshotting?.(m.progress); break;
        case 'relaying': {
          let end!: () => void;
          const done = new Promise<void>(resolve => { end = resolve; });
          this.relay = { done, end };
          events.relaying?.(m.flows, done);
          break;
        }
        case 'relayed': this.relay?.end(); this.relay = undefined; if (this.done) void this.worker.terminate(); break;
        case 'running': running = true; this.warnings = m.warnings; onRunning(); break;
        case 'exit': this.end(m.kind === 'reboot' ? { reason: 'reset' } : { reason: 'poweroff', code: m.code }); break;
        case 'failed':
          if (!running) onRunning(m.message);
          this.end({ reason: 'crashed', message: m.message });
          break;
      }
    });
    this.worker.on('error', err => {
      if (!running) onRunning(err.message);
      this.end({ reason: 'crashed', message: `Emulation failed: ${err.message}` });
    });
    this.worker.on('exit', code => {
      this.relay?.end();
      this.relay = undefined;
      if (!running) onRunning(`VM thread exited (${code}) before the guest started`);
      this.settle(this.endingAs ?? { reason: 'crashed', message: `VM thread exited (${code})` });
    });
  }

  /**
   * Starts the thread; resolves once the board is built and the guest runs, rejects with the
   * reason it could not. `hostWake`: the scheduler's (control.ts HostWake); `control` sees the
   * VM's control words, and the thread, before the guest runs (a kill may end it meanwhile).
   */
  static start(plan: VmPlan, hostWake: SharedArrayBuffer, events: VmThreadEvents, control?: (c: Control, starting: VmThread) => void): Promise<VmThread> {
    return new Promise((resolve, reject) => {
      const t: VmThread = new VmThread(plan, hostWake, events, err => (err === undefined ? resolve(t) : reject(new Error(err))));
      control?.(t.control, t);
    });
  }

  get finished(): RunEnd | undefined { return this.done; }

  input(bytes: Uint8Array): void { this.post({ type: 'input', bytes }); }
  /** Bytes for the guest agent's port. */
  agentInput(bytes: Uint8Array): void { this.post({ type: 'agent', bytes }); }
  /** Makes the thread throw or loop forever, as an emulation bug would (tests of the crash and hang paths). */
  injectFault(fault: InjectedFault = 'throw'): void { this.post({ type: 'fault', fault }); }
  pressPowerButton(): void { this.post({ type: 'power' }); }

  /**
   * Writes a snapshot of the VM to `file` between two slices (also while it is held); with `stop`
   * the run then ends as a stop; `copies` are made before the VM goes on. Rejects with the
   * thread's reason when it cannot.
   */
  snapshot(file: string, spec: unknown, stop: boolean, copies?: [string, string][]): Promise<SnapshotStats> {
    if (this.done) return Promise.reject(new Error('The VM thread has ended'));
    const id = this.nextRequest++;
    const setEnding = stop && !this.endingAs;
    if (setEnding) this.endingAs = { reason: 'stopped', message: 'Stopped after a snapshot' };
    return new Promise<SnapshotStats>((resolve, reject) => {
      this.pending.set(id, { resolve: st => resolve(st as SnapshotStats), reject });
      const req: SnapshotRequest = { id, type: 'snapshot', file, spec, stop, ...(copies ? { copies } : {}) };
      this.requests.port1.postMessage(req);
      this.control.request();
    }).catch((err: unknown) => {
      if (setEnding && !this.done) this.endingAs = undefined;
      throw err;
    });
  }

  /**
   * Migrates the running VM to the thread listening at host:port (an incoming migration of
   * another host); on success the run ends as migrated. Rejects, the VM running on, when it cannot.
   * `copyDrives`: the overlay drives whose files go with it (block migration).
   */
  migrate(host: string, port: number, token: string, spec: unknown, copyDrives: number[] = []): Promise<MigrationStats> {
    if (this.done) return Promise.reject(new Error('The VM thread has ended'));
    const id = this.nextRequest++;
    const setEnding = !this.endingAs;
    if (setEnding) this.endingAs = { reason: 'migrated', message: `Migrated to ${host}:${port}` };
    return new Promise<MigrationStats>((resolve, reject) => {
      this.pending.set(id, { resolve: st => resolve(st as MigrationStats), reject });
      const req: MigrateRequest = { id, type: 'migrate', host, port, token, spec, copyDrives };
      this.requests.port1.postMessage(req);
      this.control.request();
    }).catch((err: unknown) => {
      if (setEnding && !this.done) this.endingAs = undefined;
      throw err;
    });
  }

  /** Ends the run as if the machine were switched off (devices flushed and closed by the thread). */
  stop(): void {
    this.endingAs ??= { reason: 'stopped' };
    this.post({ type: 'stop' });
  }

  /** Ends the thread at once, wherever it is; the result is `as` (default: killed). */
  async kill(as: RunEnd = { reason: 'killed' }): Promise<RunEnd> {
    this.endingAs ??= as;
    if (!this.done || this.relay) await this.worker.terminate();
    return this.ended;
  }

  /**
   * Called by the host's scheduler tick: true when the thread is burning CPU without finishing
   * slices (a loop the run gate never sees), measured on the thread's own CPU clock.
   */
  hung(): boolean {
    if (this.done) return false;
    // No exemption for a thread that last said it was idle or held: one that hangs right after
    // saying so never says anything else, and a truly idle or held thread burns no CPU.
    const beats = Atomics.load(this.control.i32, W.BEATS);
    if (beats !== this.lastBeats) {
      this.lastBeats = beats;
      this.lastBeatCpuNs = -1;
      return false;
    }
    const cpu = threadCpuNs(Atomics.load(this.control.i32, W.TID));
    if (cpu < 0) return false;
    if (this.lastBeatCpuNs < 0) { this.lastBeatCpuNs = cpu; return false; }
    return cpu - this.lastBeatCpuNs > HANG_CPU_MS * 1e6;
  }

  private post(m: ToVm): void {
    if (!this.done) this.worker.postMessage(m);
  }

  /** The thread reported its end: let it go. */
  private end(result: RunEnd): void {
    // A forced stop ends with the machine's own power-off: report it as the stop it was.
    if (!this.endingAs || (this.endingAs.reason === 'stopped' && result.reason !== 'poweroff')) this.endingAs = result;
    if (this.relay) this.settle(this.endingAs); // the run is over; the thread goes when its flows have
    else void this.worker.terminate();
  }

  private settle(result: RunEnd): void {
    if (this.done) return;
    this.done = result;
    for (const p of this.pending.values()) p.reject(new Error(`The VM thread ended (${result.reason}) before it answered`));
    this.pending.clear();
    this.requests.port1.close();
    this.finish(result);
  }
}

/** CPU time (ns) of thread `tid` of this process, or -1 if unknown. */
export function threadCpuNs(tid: number): number {
  if (tid <= 0) return -1;
  try {
    const text = readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1');
    return Number(text.slice(0, text.indexOf(' ')));
  } catch {
    return -1;
  }
}
