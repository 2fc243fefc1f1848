/**
 * The VM thread: one per running VM (worker.ts starts it). Opens the VM's disks and shares, builds
 * the board, and runs it in slices that the host's scheduler gates through the shared control
 * words (control.ts): before a slice the thread holds (Atomics.wait: asleep, no CPU) while the host
 * says so or its CPU budget is spent; after a slice it publishes its CPU time and counters. A guest
 * whose harts all wait in WFI sleeps in VirtMachine's loop and costs nothing.
 *
 * Anything that goes wrong in here ends this thread only: start-up errors and emulation failures
 * are reported to the host as messages, and the host marks the VM crashed.
 */
import { constants, copyFileSync, openSync, readSync, readlinkSync, renameSync } from 'node:fs';
import { Qcow2Image, openDisk, setBackingName } from '../storage/index.js';
import { SwappableDisk } from '../storage/swappable.js';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { MachineSnapshot, revertDrives, snapshotMachine, snapshotMachineLive, type DiskRef, type SnapshotProgress } from '../snapshot/index.js';
import { withAgentBootarg } from './agent.js';
import { VirtMachine, type RunGate, type VirtBoardSpec, type VirtDrive, type VirtIo, type VirtNic } from '../machine/virt.js';
import { openNic, type NicConfig } from '../net/nic.js';
import { SwitchoverBackend } from '../net/switchover.js';
import type { NetBackend } from '../devices/virtio/net/backend.js';
import type { NicCounters } from './types.js';
import { H } from '../cpu/layout.js';
import type { VirtioNineP } from '../devices/virtio/9p/device.js';
import { driveFile, openDrives, openShares, snapshotDrives, type AttachDrive } from './attach.js';
import { Activity, Control, F, HostWake, W } from './control.js';
import type { FromVm, RequestReply, ToVm, VmPlan, VmRequest } from './worker.js';
import { createServer, connect, type Socket } from 'node:net';
import { migrateIn } from '../migration/receive.js';
import { migrateOut, type MigrationProgress, type MovingFlows } from '../migration/send.js';
import type { IncomingFlow } from '../migration/relay.js';
import { UserNet } from '../net/user/usernet.js';
import type { TcpConnState } from '../net/user/tcp-conn.js';

const port = parentPort!;
const { plan, control, hostWake, requests } = workerData as { plan: VmPlan; control: SharedArrayBuffer; hostWake: SharedArrayBuffer; requests: MessagePort };
const ctl = new Control(control);
const wake = new HostWake(hostWake);
const send = (m: FromVm, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);
/** Longest sleep of a VM whose harts all wait (ms): only guest timers and host input wake it. */
const IDLE_SLEEP_MS = 10_000;
const IDLE_ACCOUNTING = 8;
/** How often a migration or live snapshot reports its progress to the host (ms). */
const PROGRESS_MS = 100;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * This thread's CPU time in ns: /proc/thread-self/schedstat's first field (ns, exact); where the
 * kernel lacks schedstats, utime + stime from /proc/thread-self/stat (clock ticks of 10 ms). An
 * fd opened through /proc/thread-self stays bound to this thread.
 */
class ThreadCpu {
  private readonly buf = new Uint8Array(512);
  private readonly fd: number;
  private readonly schedstat: boolean;

  constructor() {
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r');
      this.schedstat = true;
    } catch {
      this.fd = openSync('/proc/thread-self/stat', 'r');
      this.schedstat = false;
    }
  }

  ns(): number {
    const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    const text = Buffer.from(this.buf.buffer, 0, n).toString('latin1');
    if (this.schedstat) return Number(text.slice(0, text.indexOf(' ')));
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(fields[11]) + Number(fields[12])) * 10_000_000; // utime, stime (14, 15)
  }
}

function threadId(): number {
  const m = /task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  Atomics.store(ctl.i32, W.TID, threadId());
  const cpuClock = new ThreadCpu();
  const log = (line: string): void => send({ type: 'log', line });
  const attach = { fail: (what: string, err: unknown) => new Error(`${what}: ${message(err)}`), log };
  let shares: VirtioNineP[] = [];
  let drives: VirtDrive[] = [];
  const nics: VirtNic[] = [];
  let vm: VirtMachine;
  let saved: MachineSnapshot | undefined;
  try {
    if (plan.restore) {
      saved = MachineSnapshot.open(plan.restore);
      const disks = saved.disks.map(d => ({ ...d, file: plan.restoreDrives?.[d.file] ?? d.file }));
      checkSnapshotDisks(saved.file.path, disks, plan.drives);
      revertDrives(disks);
    }
    shares = openShares(plan.shares, attach);
    drives = openDrives(plan.drives, attach);
    // A drive arriving by block migration runs on a fresh overlay until the copy takes its place.
    for (const i of plan.incoming?.copiedDrives ?? []) drives[i]!.disk = new SwappableDisk(drives[i]!.disk);
    // An arriving VM's NICs open at switchover: the source holds their host side until then.
    for (const [i, n] of plan.nics.entries()) {
      const open = (): Promise<NetBackend> => openNic(`nics[${i}]`, n, log);
      nics.push({ mac: n.mac, backend: plan.incoming ? new SwitchoverBackend(n.kind, open, n.kind !== 'user') : await open() });
    }
    // One virtio console: the guest agent's port (agent.ts).
    const board = { memoryMiB: plan.memoryMiB, cpus: plan.cpus, drives, nics, rng: true, consoles: 1, devices: shares, jit: plan.jit, powerButton: true };
    const io = {
      output: (bytes: Uint8Array) => send({ type: 'output', bytes }, [bytes.buffer as ArrayBuffer]),
      consoleOutput: (_: number, bytes: Uint8Array) => send({ type: 'agent', bytes }, [bytes.buffer as ArrayBuffer]),
      log,
    };
    vm = plan.incoming
      ? await incoming(plan.incoming, board, io, nics)
      : saved
        ? await saved.restore(board, io)
        : await VirtMachine.create({ ...board, firmware: plan.firmware, kernel: plan.kernel, initrd: plan.initrd, append: withAgentBootarg(plan.append) }, io);
  } catch (err) {
    for (const d of drives) d.disk.close();
    for (const s of shares) s.close();
    for (const n of nics) n.backend.close();
    send({ type: 'failed', message: message(err) });
    return;
  } finally {
    saved?.close();
  }
  const named = snapshotDrives(plan.drives, drives);
  let writing = false;
  /**
   * A request from the host's request port, served between slices. A running VM is snapshotted
   * live (held only for its state: snapshot/live.ts); a held one, or one to stop, at once.
   */
  const handle = (r: VmRequest, held: boolean): void => {
    const reply = (m: RequestReply): void => {
      requests.postMessage(m);
      if (m.ok && r.type === 'snapshot' && r.stop) vm.stop();
    };
    if (r.type === 'migrate') {
      if (writing || held) return reply({ id: r.id, ok: false, message: writing ? 'A snapshot or migration of this VM is under way' : 'The VM is paused: resume it to migrate it' });
      let disks;
      try {
        disks = r.copyDrives.map(i => {
          const disk = drives[i]?.disk;
          if (!(disk instanceof Qcow2Image)) throw new Error(`drives[${i}] is not a qcow2 overlay: its file cannot be copied`);
          return { drive: i, file: disk.file };
        });
      } catch (err) {
        return reply({ id: r.id, ok: false, message: message(err) });
      }
      writing = true;
      const sock = connect(r.port, r.host);
      sock.on('error', () => {}); // migrateOut reports it
      // The disks go to the target as they are: flushed before the last pages leave.
      const shown = throttle();
      const onProgress = (p: MigrationProgress): void => { if (p.phase !== 'precopy' || shown()) send({ type: 'migrating', progress: p }); };
      migrateOut(vm, sock, { token: r.token, spec: r.spec, onProgress, disks, flows: movingFlows(nics), atInstant: () => { for (const d of drives) d.disk.flush(); } }).then(
        stats => reply({ id: r.id, ok: true, stats }),
        (err: unknown) => reply({ id: r.id, ok: false, message: message(err) }),
      ).finally(() => { writing = false; });
      return;
    }
    const copy = (): void => { for (const [from, to] of r.copies ?? []) copyFileSync(from, to, constants.COPYFILE_FICLONE); }; // a reflink where the file system can
    if (writing) return reply({ id: r.id, ok: false, message: 'A snapshot of this VM is being written' });
    if (held || r.stop) {
      try {
        const stats = snapshotMachine(r.file, vm, r.spec, named);
        copy();
        reply({ id: r.id, ok: true, stats });
      } catch (err) {
        reply({ id: r.id, ok: false, message: message(err) });
      }
      return;
    }
    writing = true;
    const shown = throttle();
    const onProgress = (progress: SnapshotProgress): void => { if (shown()) send({ type: 'snapshotting', progress }); };
    snapshotMachineLive(r.file, vm, r.spec, named, copy, onProgress).then(
      stats => reply({ id: r.id, ok: true, stats }),
      (err: unknown) => reply({ id: r.id, ok: false, message: message(err) }),
    ).finally(() => { writing = false; });
  };
  const serve = (): void => { for (let m = receiveMessageOnPort(requests); m; m = receiveMessageOnPort(requests)) handle(m.message as VmRequest, true); };
  requests.on('message', (r: VmRequest) => handle(r, false));

  // Device-register accesses, counted at the bus (one wrapper per VM, not per access).
  let mmio = 0;
  const bus = vm.bus;
  const read = bus.read.bind(bus), write = bus.write.bind(bus);
  bus.read = (addr, size) => { mmio++; return read(addr, size); };
  bus.write = (addr, size, value) => { mmio++; return write(addr, size, value); };

  // NIC counters for inspect, sent when they changed (at most once a second).
  let lastNics = '';
  if (nics.length) {
    setInterval(() => {
      const stats = nics.map((n, i) => nicCounters(plan.nics[i]!.kind, n.backend.stats()));
      const text = JSON.stringify(stats);
      if (text !== lastNics) send({ type: 'nics', stats });
      lastNics = text;
    }, 1000).unref();
  }

  const f64 = ctl.f64, harts = vm.cpu.harts, blk = vm.drives;
  let lastNs = cpuClock.ns();
  /** Publishes CPU time and counters, and spends the budget. */
  const account = (): void => {
    const now = cpuClock.ns();
    const spentUs = Math.round((now - lastNs) / 1000);
    lastNs = now;
    if (spentUs > 0) Atomics.sub(ctl.i32, W.BUDGET_US, spentUs);
    f64[F.CPU_NS] = now;
    let instret = 0;
    for (const h of harts) instret += h.s.num(H.INSTRET);
    f64[F.INSTRET] = instret;
    f64[F.MMIO] = mmio;
    let r = 0, w = 0;
    for (const d of blk) { r += d.stats.readBytes; w += d.stats.writtenBytes; }
    f64[F.DISK_READ] = r;
    f64[F.DISK_WRITE] = w;
  };
  // Idle wake-ups (timers of a guest in WFI) are short: account every IDLE_ACCOUNTING-th only.
  let idleSlices = 0, wasBusy = true;
  const gate: RunGate = {
    maxSleepMs: IDLE_SLEEP_MS,
    enter(): void {
      if (ctl.takeRequest()) serve();
      if (ctl.mayRun()) { ctl.activity = Activity.BUSY; return; }
      account();
      ctl.activity = Activity.HELD;
      // No fresh baseline after the wait: schedstat lags a running thread by up to a kernel tick,
      // and what was not yet visible before the wait is charged by the next account().
      ctl.waitUntilRunnable(serve);
      ctl.activity = Activity.BUSY;
    },
    leave(busy: boolean): void {
      if (busy || wasBusy || ++idleSlices % IDLE_ACCOUNTING === 0) account();
      if (busy) wake.busy();
      wasBusy = busy;
      Atomics.add(ctl.i32, W.BEATS, 1);
      ctl.activity = busy ? Activity.BUSY : Activity.IDLE;
    },
  };

  port.on('message', (m: ToVm) => {
    switch (m.type) {
      case 'input': vm.input(m.bytes); break;
      case 'agent': vm.consoleInput(0, m.bytes); break;
      case 'power': vm.powerButton?.press(); break;
      case 'stop': vm.stop(); break;
      case 'fault':
        setImmediate(m.fault === 'hang' ? () => { for (;;); } : () => { throw new Error('Injected fault'); });
        break;
    }
  });
  send({ type: 'running', warnings: vm.warnings });
  try {
    const end = await vm.run(gate);
    account();
    send({ type: 'exit', kind: end.kind, code: end.code });
  } catch (err) {
    send({ type: 'failed', message: `Emulation failed: ${message(err)}` });
  }
}

/** True at most once per PROGRESS_MS: progress reports go to the host a few times a second. */
function throttle(): () => boolean {
  let shown = 0;
  return () => {
    const t = performance.now();
    if (t - shown < PROGRESS_MS) return false;
    shown = t;
    return true;
  };
}

/** How long an incoming migration waits for its source to connect. */
const INCOMING_WAIT_MS = 60_000;

/** Listens on a free port of `at.host`, tells the host which, and takes the VM from the first source with the token. */
async function incoming(at: NonNullable<VmPlan['incoming']>, board: VirtBoardSpec, io: VirtIo, nics: readonly VirtNic[]): Promise<VirtMachine> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, at.host, resolve); });
  send({ type: 'incoming', port: (server.address() as { port: number }).port });
  try {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`No source connected within ${INCOMING_WAIT_MS / 1000} s`)), INCOMING_WAIT_MS);
      server.once('connection', s => { clearTimeout(timer); resolve(s); });
    });
    sock.on('error', () => {}); // migrateIn reports it
    const copied = at.copiedDrives;
    const incomingPath = (i: number): string => `${driveFile(plan.drives[i]!)}.incoming`;
    const arrived = (): void => {
      for (const i of copied) {
        const file = driveFile(plan.drives[i]!), disk = board.drives![i]!.disk as SwappableDisk;
        // The copy names its base as the source's overlay did; this host's own overlay names it from here.
        const base = (disk.current as Qcow2Image).backingFile;
        if (base !== undefined) setBackingName(incomingPath(i), base);
        renameSync(incomingPath(i), file);
        disk.swap(openDisk({ file, format: 'qcow2' }));
      }
    };
    const got = await migrateIn(sock, { token: at.token, board: () => ({ board, io }), disks: { drives: copied, pathOf: incomingPath, arrived } });
    await got.confirm();
    for (const [i, n] of nics.entries()) {
      const flows = got.flows.filter(f => f.nic === i);
      if (n.backend instanceof SwitchoverBackend) {
        n.backend.connect().then(b => takeFlows(b, flows, i, io), (err: unknown) => {
          for (const f of flows) f.socket.destroy();
          io.log?.(`nics[${i}]: not connected after the migration (the guest sees no link traffic): ${message(err)}`);
        });
      }
    }
    return got.vm;
  } finally {
    server.close();
  }
}

/**
 * The user-network TCP flows of an outgoing VM: taken from its user NICs at the instant, given
 * back if the migration fails after; relayed from this thread once the guest runs on the target.
 */
function movingFlows(nics: readonly VirtNic[]): MovingFlows {
  const users = nics.flatMap((n, i) => (n.backend instanceof UserNet ? [{ i, net: n.backend }] : []));
  return {
    take: () => users.flatMap(({ i, net }) => net.moveOut().map(f => ({ nic: i, state: f.state, socket: f.socket }))),
    giveBack: flows => { for (const { i, net } of users) net.moveIn(flows.filter(f => f.nic === i).map(f => ({ state: f.state as TcpConnState, socket: f.socket }))); },
    relaying: (count, done) => {
      // The thread outlives the VM until then (worker.ts): the host sockets live here.
      send({ type: 'relaying', flows: count });
      void done.then(() => send({ type: 'relayed' }));
    },
  };
}

/** An arriving NIC's flows go into its user network once it is open; flows it cannot take are reset. */
function takeFlows(backend: NetBackend | undefined, flows: readonly IncomingFlow[], nic: number, io: VirtIo): void {
  if (!flows.length) return;
  try {
    if (!(backend instanceof UserNet)) throw new Error('it is not a user network');
    backend.moveIn(flows.map(f => ({ state: f.state as TcpConnState, socket: f.socket })));
  } catch (err) {
    for (const f of flows) f.socket.destroy();
    io.log?.(`nics[${nic}]: the TCP flows that moved with the VM were reset: ${message(err)}`);
  }
}

/** A snapshot restores only onto the disks it was taken of: reverting another VM's images would destroy them. */
function checkSnapshotDisks(path: string, refs: readonly DiskRef[], list: readonly AttachDrive[]): void {
  const files = list.map(d => driveFile(d));
  if (refs.length !== files.length || refs.some((r, i) => r.file !== files[i])) {
    throw new Error(`${path} was taken of a VM with the drives ${refs.map(r => r.file).join(', ') || 'none'}, not ${files.join(', ') || 'none'}`);
  }
}

main().catch(err => send({ type: 'failed', message: `Emulation failed: ${message(err)}` }));

/** One shape for every backend's counters: the user network counts from its own side (rx = from the guest). */
function nicCounters(kind: NicConfig['kind'], s: Record<string, number>): NicCounters {
  const n = (k: string): number => s[k] ?? 0;
  if (kind === 'user') return { fromGuestFrames: n('rxFrames'), fromGuestBytes: n('rxBytes'), toGuestFrames: n('txFrames'), toGuestBytes: n('txBytes'), dropped: n('dropped') };
  return { fromGuestFrames: n('txFrames'), fromGuestBytes: n('txBytes'), toGuestFrames: n('rxFrames'), toGuestBytes: n('rxBytes'), dropped: n('txDropped') + n('rxErrors') + n('rxCorrupt') };
}
