/**
 * The host: the VMs it knows (kept in an SQLite store in stateDir), each run in its own thread
 * (worker.ts), sharing the host's CPU through the scheduler and its RAM under an overcommit
 * limit. `import { Host } from 'gasang'`; `const host = new Host({ stateDir })`.
 *
 * States: created → starting → running ⇄ paused; running → stopping → stopped; any run may end
 * as crashed (its thread failed or hung) — the host and the other VMs carry on. A stopped or
 * crashed VM can start again; its overlays keep what the guest wrote.
 */
import { closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MachineSnapshot, type SnapshotProgress } from '../snapshot/index.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { createOverlay } from '../storage/open.js';
import { RAM_OFFSET } from '../cpu/layout.js';
import { AgentChannel } from './agent.js';
import { ConsoleHub } from './console-hub.js';
import { Activity, Control, F } from './control.js';
import { CpuScheduler, type Schedulable } from './scheduler.js';
import { checkFiles, checkSpec, planOf, userGuestAddress, vmMac, type CheckedSpec } from './spec.js';
import { VmStore, type VmRecord } from './store.js';
import { VmThread, type InjectedFault, type RunEnd } from './worker.js';
import type { MigrationProgress } from '../migration/send.js';
import { HostError, type NicCounters, type NicInfo, type CloneOptions, type CloneResult, type ConsoleClient, type HostApi, type IncomingMigration, type MigrateOptions, type MigrationResult, type MigrationTarget, type HostOptions, type SnapshotResult, type VmHandle, type VmInfo, type VmSpec } from './types.js';
import { residentOfSize } from './memory.js';
import { claimConflict, diskClaims, type DiskClaim } from './disk-claims.js';
import { Networks, type NetworkInfo } from './networks.js';
import type { PortStats } from '../net/switch/index.js';

const MiB = 1024 * 1024;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** After a forced stop, how long the thread may take to flush its disks before it is killed. */
const FORCED_STOP_GRACE_MS = 5_000;
const WATCHDOG_MS = 1_000;
const PRESS_AGAIN_MS = 1_000;
const ACTIVE = new Set(['starting', 'running', 'paused', 'stopping']);
const now = (): string => new Date().toISOString();
const delay = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

export class Host implements HostApi {
  readonly stateDir: string;
  readonly memoryOvercommit: number;
  readonly cores: number;
  private readonly store: VmStore;
  private readonly vms = new Map<string, Vm>();
  /** @internal */ readonly networks: Networks;
  /** @internal */ readonly scheduler: CpuScheduler;
  private readonly watchdog: NodeJS.Timeout;
  private readonly lockFile: string;
  private readonly baselineRss = process.memoryUsage.rss();
  private overheadCache = { at: -Infinity, perVm: 0 };
  private closed = false;
  /** Threads of VMs that moved away, relaying their open TCP flows to the target (migration/relay.ts): ended with the host. */
  private readonly relays = new Set<() => Promise<unknown>>();
  /** @internal Set once close() began: starts in flight are undone. */
  closing = false;

  constructor(readonly opts: HostOptions) {
    if (typeof opts?.stateDir !== 'string' || opts.stateDir === '') throw new HostError('invalid', 'stateDir: required');
    const ratio = opts.memoryOvercommit ?? 1.5;
    if (!(typeof ratio === 'number' && ratio > 0 && Number.isFinite(ratio))) throw new HostError('invalid', `memoryOvercommit: ${ratio} must be a positive number`);
    const cores = opts.cores ?? availableParallelism();
    if (!(Number.isInteger(cores) && cores >= 1)) throw new HostError('invalid', `cores: ${cores} must be a positive integer`);
    this.stateDir = opts.stateDir;
    this.memoryOvercommit = ratio;
    this.cores = cores;
    mkdirSync(join(this.stateDir, 'vms'), { recursive: true });
    this.lockFile = join(this.stateDir, 'host.lock');
    takeLock(this.lockFile);
    try {
      this.store = new VmStore(join(this.stateDir, 'host.db'));
    } catch (err) {
      unlinkSync(this.lockFile);
      throw err;
    }
    try {
      this.networks = new Networks(this.stateDir, (net, line) => this.opts.onLog?.(`network ${net}`, line));
    } catch (err) {
      this.store.close();
      unlinkSync(this.lockFile);
      throw err;
    }
    for (const r of this.store.all()) {
      if (ACTIVE.has(r.state)) {
        // The previous host ended with this VM running: its thread ended with it.
        Object.assign(r, { state: 'stopped', stoppedAt: now(), exit: { reason: 'killed', message: 'The host ended while the VM was running' } });
        this.store.update(r);
      }
      this.vms.set(r.id, new Vm(this, r));
    }
    this.scheduler = new CpuScheduler(cores);
    this.watchdog = setInterval(() => { for (const vm of this.vms.values()) vm.checkProgress(); }, WATCHDOG_MS);
    this.watchdog.unref();
  }

  /** The same as `new Host(opts)`. */
  static async open(opts: HostOptions): Promise<Host> { return new Host(opts); }

  async create(input: VmSpec): Promise<VmHandle> {
    return this.newVm(input, true);
  }

  /** A new VM; `persist` false keeps it out of the store until it first runs (an incoming migration: a daemon that dies before must not wake up with it). */
  private async newVm(input: VmSpec, persist: boolean): Promise<Vm> {
    this.assertOpen();
    const spec = checkSpec(input);
    if (this.find(spec.name)) throw new HostError('conflict', `A VM named ${spec.name} already exists`);
    this.checkNetworks(spec);
    checkFiles(spec);
    const id = randomUUID();
    const dir = join(this.stateDir, 'vms', id);
    mkdirSync(dir, { recursive: true });
    try {
      spec.drives?.forEach((d, i) => {
        if (!d.overlay) return;
        try {
          createOverlay(d.file, overlayPath(dir, i), { baseFormat: d.format });
        } catch (err) {
          throw new HostError('invalid', `drives[${i}].file: ${(err as Error).message}`, { cause: err });
        }
      });
      const record: VmRecord = { id, name: spec.name, spec, state: 'created', createdAt: now(), cpuSeconds: 0 };
      if (persist) this.store.insert(record);
      const vm = new Vm(this, record);
      this.vms.set(id, vm);
      return vm;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async clone(source: string, opts: CloneOptions): Promise<CloneResult> {
    this.assertOpen();
    const t0 = performance.now();
    const src = this.get(source);
    if (typeof opts?.name !== 'string') throw new HostError('invalid', 'name: required');
    if (opts.file !== undefined && (typeof opts.file !== 'string' || opts.file === '')) throw new HostError('invalid', 'file: must be a path');
    src.spec.drives?.forEach((d, i) => {
      if (!d.readonly && !d.overlay) {
        throw new HostError('invalid', `Cannot clone ${src.name}: drives[${i}] (${d.file}) is written in place; a clone needs its writable drives as overlays (overlay: true)`);
      }
    });
    const live = src.state === 'running' || src.state === 'paused';
    if (!live && opts.file === undefined && !existsSync(src.snapshotFile(undefined))) {
      throw new HostError('conflict', `Cannot clone ${src.name}: it is ${src.state} and has no snapshot (start it, or snapshot it first)`);
    }
    const spec = { ...structuredClone(src.spec), name: opts.name, nics: src.spec.nics?.map((n, i) => ({ ...n, mac: vmMac(opts.name, i) })) };
    const clone = await this.create(spec) as Vm;
    try {
      const overlays = (src.spec.drives ?? []).flatMap((d, i) => (d.overlay ? [[this.overlayOf(src.id, i), this.overlayOf(clone.id, i)] as [string, string]] : []));
      let file: string;
      if (live && opts.file === undefined) {
        // Its own file name in the clone's directory: the source's own snapshot (and its disks' internal snapshot) stays as it was.
        file = join(this.stateDir, 'vms', clone.id, 'origin.gsnap');
        await src.snapshot({ file, copies: overlays });
      } else {
        file = src.snapshotFile(opts.file);
        if (live) throw new HostError('conflict', `Cannot clone ${src.name} from ${file} while it runs: its overlays have moved on (clone it without a file, or stop it)`);
        for (const [from, to] of overlays) copyFileSync(from, to, constants.COPYFILE_FICLONE);
      }
      await clone.restore({ file }, Object.fromEntries(overlays));
      const startMs = performance.now() - t0;
      const macs = (clone.spec.nics ?? []).map(n => n.mac).join(' ');
      let identity = true;
      try {
        await clone.agent.request(`identity ${clone.name}${macs ? ` ${macs}` : ''}`, /^ok identity /, AGENT_TIMEOUT_MS);
      } catch (err) {
        identity = false;
        this.log(clone.name, `clone of ${src.name}: ${(err as Error).message}; it keeps its source's name in the guest`);
      }
      return { vm: clone.info(), file, identity, startMs, ...(identity ? { identityMs: performance.now() - t0 } : {}) };
    } catch (err) {
      await clone.kill();
      await this.remove(clone.id);
      throw err;
    }
  }

  async acceptMigration(input: VmSpec, opts: { host?: string } = {}): Promise<IncomingMigration> {
    this.assertOpen();
    const vm = await this.newVm(input, false);
    const token = randomBytes(24).toString('hex');
    try {
      const port = await vm.receive({ host: opts.host ?? '127.0.0.1', token }, () => void this.remove(vm.id).catch(() => {}));
      return { port, token, vm: vm.info() };
    } catch (err) {
      await this.remove(vm.id).catch(() => {});
      throw err;
    }
  }

  get(nameOrId: string): Vm {
    const vm = this.find(nameOrId);
    if (!vm) throw new HostError('not-found', `No VM named ${JSON.stringify(nameOrId)}`);
    return vm;
  }

  list(): VmInfo[] {
    return [...this.vms.values()].map(vm => vm.info());
  }

  async remove(nameOrId: string): Promise<void> {
    this.assertOpen();
    const vm = this.get(nameOrId);
    if (ACTIVE.has(vm.state)) throw new HostError('conflict', `Cannot remove ${vm.name}: it is ${vm.state} (stop it first)`);
    this.store.delete(vm.id);
    this.vms.delete(vm.id);
    const dir = join(this.stateDir, 'vms', vm.id);
    // A VM that migrated away handed its overlays to the target, which uses them in place.
    if (vm.info().exit?.reason === 'migrated') for (const f of readdirSync(dir)) { if (!/^drive\d+\.qcow2$/.test(f)) rmSync(join(dir, f), { recursive: true, force: true }); }
    else rmSync(dir, { recursive: true, force: true });
  }

  /** @internal Refuses a spec whose NICs name networks the host does not have. */
  checkNetworks(spec: CheckedSpec): void {
    spec.nics?.forEach((n, i) => {
      if (n.type === 'network' && !this.networks.has(n.network)) throw new HostError('invalid', `nics[${i}].network: no network named ${JSON.stringify(n.network)} (create it first: gasang net create ${n.network})`);
    });
  }

  createNetwork(spec: unknown): Promise<NetworkInfo> {
    this.assertOpen();
    return this.networks.create(spec);
  }

  getNetwork(name: string): Promise<NetworkInfo> { return this.networks.info(name); }

  listNetworks(): Promise<NetworkInfo[]> { return this.networks.list(); }

  networkPorts(): { network: string; port: PortStats }[] { return this.networks.ports(); }

  /** Removes a network that no VM's spec names. */
  async removeNetwork(name: string): Promise<void> {
    this.assertOpen();
    const users = [...this.vms.values()].filter(vm => vm.spec.nics?.some(n => n.type === 'network' && n.network === name)).map(vm => vm.name);
    this.networks.remove(name, users);
  }

  resources(): { memoryCommittedBytes: number; memoryLimitBytes: number; cores: number } {
    return { memoryCommittedBytes: this.committedBytes(), memoryLimitBytes: this.memoryLimitBytes(), cores: this.cores };
  }

  /** Stops every VM (forced after timeoutMs, default 30 s) and closes the store. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    await Promise.all([...this.vms.values()].map(vm => vm.stop(opts).catch(() => vm.kill())));
    await Promise.all([...this.relays].map(kill => kill()));
    this.closed = true;
    clearInterval(this.watchdog);
    this.networks.close();
    this.store.close();
    rmSync(this.lockFile, { force: true });
  }

  /** @internal A VM that moved away relays `flows` TCP flows from here until `done`; `kill` ends them. */
  relaying(name: string, flows: number, done: Promise<void>, kill: () => Promise<unknown>): void {
    this.log(name, `moved away with ${flows} open TCP flow(s): relaying them to the target until they close`);
    this.relays.add(kill);
    void done.then(() => { this.relays.delete(kill); this.log(name, 'the relayed TCP flows have closed'); });
  }

  /** @internal Refuses a start that would take guest RAM past the overcommit limit. */
  reserve(vm: Vm): void {
    const want = vm.spec.memoryMiB * MiB;
    const committed = this.committedBytes();
    const limit = this.memoryLimitBytes();
    if (committed + want > limit) {
      throw new HostError('resources',
        `Starting ${vm.name} needs ${vm.spec.memoryMiB} MiB of guest RAM, but ${committed / MiB} MiB are committed to running VMs ` +
        `and the limit is ${Math.floor(limit / MiB)} MiB (memoryOvercommit ${this.memoryOvercommit} × ${Math.round(totalmem() / MiB)} MiB of host RAM)`);
    }
  }

  /**
   * @internal Refuses a start whose disks would write an image another running (or starting) VM
   * uses, or use one it writes, or write one image twice (disk-claims.ts).
   */
  checkDisks(vm: Vm, claims: readonly DiskClaim[]): void {
    const refuse = (why: string): never => { throw new HostError('conflict', `Cannot start ${vm.name}: ${why}`); };
    for (const [i, c] of claims.entries()) {
      const twice = claimConflict([c], claims.filter((_, j) => j !== i), vm.name);
      if (twice) refuse(`${c.where} and another of its disks are the same file ${c.file} (it would be written through both)`);
    }
    for (const other of this.vms.values()) {
      if (other === vm || !other.claims) continue;
      const why = claimConflict(claims, other.claims, other.name);
      if (why) refuse(why);
    }
  }

  /** @internal */
  save(r: VmRecord): void { if (!this.closed) this.store.update(r); }

  /** @internal An arrived VM (newVm without `persist`) goes into the store. */
  persist(r: VmRecord): void { if (!this.closed) this.store.insert(r); }

  /** @internal */
  log(vm: string, line: string): void { this.opts.onLog?.(vm, line); }

  /** @internal Where drive `i` of VM `id` keeps its overlay. */
  overlayOf(id: string, i: number): string { return overlayPath(join(this.stateDir, 'vms', id), i); }

  /**
   * @internal Host memory per running VM beyond its guest RAM: the growth of the process's
   * resident memory since the host opened, less the resident pages of the VMs' guest RAM (their
   * WebAssembly memories, found in /proc/self/smaps by size), shared equally among running VMs.
   * Cached for two seconds (reading smaps costs a few ms).
   */
  overheadPerVm(): number {
    const t = performance.now();
    if (t - this.overheadCache.at < 2000) return this.overheadCache.perVm;
    const running = [...this.vms.values()].filter(v => v.hasThread);
    let perVm = 0;
    if (running.length) {
      const sizes = running.map(v => wasmMemoryBytes(v.spec.memoryMiB));
      const guest = residentOfSize(sizes);
      perVm = Math.max(0, Math.round((process.memoryUsage.rss() - this.baselineRss - guest) / running.length));
    }
    this.overheadCache = { at: t, perVm };
    return perVm;
  }

  private committedBytes(): number {
    let sum = 0;
    for (const vm of this.vms.values()) if (ACTIVE.has(vm.state)) sum += vm.spec.memoryMiB * MiB;
    return sum;
  }

  private memoryLimitBytes(): number { return Math.floor(this.memoryOvercommit * totalmem()); }

  private find(nameOrId: string): Vm | undefined {
    const byId = this.vms.get(nameOrId);
    if (byId) return byId;
    for (const vm of this.vms.values()) if (vm.name === nameOrId) return vm;
    return undefined;
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed || this.closing) throw new HostError('conflict', 'The host is closed');
  }
}

/** One VM of a Host. */
export class Vm implements VmHandle, Schedulable {
  control = new Control();
  paused = false;
  private thread: VmThread | undefined;
  /** @internal The files its disks use, from start until its thread has ended. */
  claims: DiskClaim[] | undefined;
  /** The last NIC counters the running thread sent. */
  private nicStats: NicCounters[] = [];
  /** Where a live snapshot stands, while one is written. */
  private snapshotting: SnapshotProgress | undefined;
  /** Where an outgoing migration stands, while one runs. */
  private migrating: MigrationProgress | undefined;
  /** Switch ports of this run's network NICs. */
  private readonly ports: { network: string; id: string }[] = [];
  private readonly hub: ConsoleHub;
  private onIncoming: ((port: number) => void) | undefined;
  /** The thread while it starts (an incoming migration waits there for its source): what kill() ends. */
  private starting: VmThread | undefined;
  /** @internal The guest agent's channel (agent.ts). */
  readonly agent = new AgentChannel(bytes => this.thread?.agentInput(bytes));

  constructor(private readonly host: Host, private readonly record: VmRecord) {
    this.hub = new ConsoleHub(record.name, bytes => this.thread?.input(bytes));
  }

  get id(): string { return this.record.id; }
  get name(): string { return this.record.name; }
  get spec(): CheckedSpec { return this.record.spec; }
  get state(): VmInfo['state'] { return this.record.state; }
  get shares(): number { return this.record.spec.cpuShares; }
  get limit(): number | undefined { return this.record.spec.cpuLimit; }
  get hasThread(): boolean { return this.thread !== undefined; }

  info(): VmInfo {
    const r = this.record;
    const f = this.control.f64;
    const running = this.thread !== undefined;
    return {
      id: r.id,
      spec: structuredClone(r.spec),
      state: r.state,
      createdAt: r.createdAt,
      ...(r.startedAt ? { startedAt: r.startedAt } : {}),
      ...(r.stoppedAt ? { stoppedAt: r.stoppedAt } : {}),
      ...(r.exit ? { exit: { ...r.exit } } : {}),
      usage: {
        cpuSeconds: running ? f[F.CPU_NS] / 1e9 : r.cpuSeconds,
        instructions: f[F.INSTRET],
        mmioExits: f[F.MMIO],
        hostOverheadBytes: running ? this.host.overheadPerVm() : 0,
        guestRamBytes: running ? r.spec.memoryMiB * MiB : 0,
        diskReadBytes: f[F.DISK_READ],
        diskWriteBytes: f[F.DISK_WRITE],
      },
      ...(r.spec.nics?.length ? { nics: this.nicInfo() } : {}),
      ...(this.migrating ? { migration: { ...this.migrating } } : {}),
      ...(this.snapshotting ? { snapshot: { ...this.snapshotting } } : {}),
    };
  }

  async start(): Promise<void> { return this.run(); }

  /** `copies` (internal, for clones): files copied [from, to] while the VM is still held after the snapshot. */
  async snapshot(opts: { file?: string; stop?: boolean; copies?: [string, string][] } = {}): Promise<SnapshotResult> {
    const file = this.snapshotFile(opts.file);
    if (opts.stop !== undefined && typeof opts.stop !== 'boolean') throw new HostError('invalid', 'stop: must be true or false');
    const thread = this.thread;
    this.must('snapshot', ['running', 'paused']);
    let stats;
    this.snapshotting = { pagesWritten: 0, pagesToWrite: 0 };
    try {
      stats = await thread!.snapshot(file, { kind: 'gasangd', spec: this.spec }, opts.stop === true, opts.copies);
    } catch (err) {
      throw new HostError('conflict', `Cannot snapshot ${this.name}: ${(err as Error).message}`, { cause: err });
    } finally {
      this.snapshotting = undefined;
    }
    if (opts.stop) {
      // A held VM must run on to end.
      this.setState('stopping');
      this.paused = false;
      this.host.scheduler.apply(this);
      await thread!.ended;
      await Promise.resolve();
    }
    const live = stats as { totalMs?: number };
    return { file, bytes: stats.bytes, ramPages: stats.ramPages, storedPages: stats.storedPages, pauseMs: stats.pauseMs, ...(live.totalMs !== undefined ? { totalMs: live.totalMs } : {}) };
  }

  /** `drives` (internal, for clones): the snapshot's drive files → this VM's copies. */
  async restore(opts: { file?: string } = {}, drives?: Record<string, string>): Promise<void> {
    const file = this.snapshotFile(opts.file);
    this.must('restore', ['created', 'stopped', 'crashed']);
    // Checked here too, so a bad file is refused without starting a thread.
    let saved: MachineSnapshot;
    try {
      saved = MachineSnapshot.open(file);
    } catch (err) {
      throw new HostError('invalid', `Cannot restore ${this.name}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const s = saved.spec as { kind?: unknown } | null;
      if (s?.kind !== 'gasangd') throw new HostError('invalid', `Cannot restore ${this.name}: ${file} is not a snapshot of a gasangd VM`);
      if (saved.meta.memoryMiB !== this.spec.memoryMiB || saved.meta.cpus !== this.spec.cpus) {
        throw new HostError('invalid', `Cannot restore ${this.name}: ${file} is of a VM with ${saved.meta.memoryMiB} MiB and ${saved.meta.cpus} harts, ${this.name} has ${this.spec.memoryMiB} MiB and ${this.spec.cpus}`);
      }
    } finally {
      saved.close();
    }
    return this.run(file, drives);
  }

  /**
   * @internal An incoming migration (Host.acceptMigration): starts the thread listening; resolves
   * with its port. `failed` runs when the migration does not complete.
   */
  receive(at: { host: string; token: string }, failed: () => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.onIncoming = resolve;
      this.run(undefined, undefined, at).catch((err: unknown) => { reject(err); failed(); });
    });
  }

  async migrate(target: MigrationTarget, opts: MigrateOptions = {}): Promise<MigrationResult> {
    this.must('migrate', ['running']);
    if (opts.copyStorage !== undefined && typeof opts.copyStorage !== 'boolean') throw new HostError('invalid', 'copyStorage: must be true or false');
    const thread = this.thread!;
    let spec: CheckedSpec;
    if (opts.copyStorage) {
      // Block migration: the overlays go with the VM (the target makes its own of the same bases);
      // any other drive it writes would have to be shared storage, so it is refused.
      this.spec.drives?.forEach((d, i) => {
        if (!d.overlay && !d.readonly) throw new HostError('invalid', `Cannot migrate ${this.name} with its storage: drives[${i}] (${d.file}) is not an overlay; only overlays are copied, a drive written in place needs shared storage`);
      });
      if (this.spec.volumes?.some(v => !v.readonly)) throw new HostError('invalid', `Cannot migrate ${this.name} with its storage: a writable volume needs shared storage`);
      spec = structuredClone(this.spec);
    } else {
      // The target uses the same disk files (shared storage): an overlay goes as the qcow2 image it is.
      spec = { ...structuredClone(this.spec), drives: this.spec.drives?.map((d, i) => (d.overlay ? { ...d, file: this.host.overlayOf(this.id, i), format: 'qcow2' as const, overlay: false } : d)) };
    }
    let at;
    try {
      at = await target.accept(spec);
    } catch (err) {
      throw new HostError('conflict', `Cannot migrate ${this.name}: the target refused: ${(err as Error).message}`, { cause: err });
    }
    let stats;
    this.migrating = { phase: 'precopy', round: 0, pagesSent: 0, bytesSent: 0, remainingPages: 0 };
    try {
      stats = await thread.migrate(at.host, at.port, at.token, { kind: 'gasangd' }, opts.copyStorage ? this.copiedDrives() : []);
    } catch (err) {
      throw new HostError('conflict', `Cannot migrate ${this.name}: ${(err as Error).message} (it runs on here)`, { cause: err });
    } finally {
      this.migrating = undefined;
    }
    await thread.ended;
    await Promise.resolve();
    return { rounds: stats.rounds, pagesSent: stats.pagesSent, bytesSent: stats.bytesSent, finalPages: stats.finalPages, downtimeMs: stats.downtimeMs, totalMs: stats.totalMs, flowsMoved: stats.flowsMoved };
  }

  /** The drives with overlays: what block migration copies (and an arriving VM receives). */
  private copiedDrives(): number[] {
    return (this.spec.drives ?? []).flatMap((d, i) => (d.overlay ? [i] : []));
  }

  /** The snapshot file to use: `file` (resolved) or the VM's own in the state directory. */
  snapshotFile(file: string | undefined): string {
    if (file === undefined) return join(this.host.stateDir, 'vms', this.id, 'snapshot.gsnap');
    if (typeof file !== 'string' || file === '') throw new HostError('invalid', 'file: must be a path');
    return resolve(file);
  }

  /** Starts a run: a boot, or with `restore` the continuation of a snapshot. */
  private async run(restore?: string, restoreDrives?: Record<string, string>, incoming?: { host: string; token: string }): Promise<void> {
    this.host.assertOpen();
    this.must(restore ? 'restore' : 'start', ['created', 'stopped', 'crashed']);
    if (this.record.exit?.reason === 'migrated') throw new HostError('conflict', `Cannot start ${this.name}: it migrated away (${this.record.exit.message ?? ''}); its disks belong to the target now`);
    checkFiles(this.spec);
    this.host.reserve(this);
    const claims = diskClaims(this.spec, i => this.host.overlayOf(this.id, i));
    this.host.checkDisks(this, claims);
    this.claims = claims;
    const previous = this.record.state;
    this.setState('starting');
    this.control = new Control();
    this.paused = false;
    let thread: VmThread;
    try {
      this.host.checkNetworks(this.spec);
      const plan = { ...planOf(this.spec, i => this.host.overlayOf(this.id, i)), ...(restore ? { restore, restoreDrives } : {}), ...(incoming ? { incoming: { ...incoming, copiedDrives: this.copiedDrives() } } : {}) };
      for (const [i, nic] of plan.nics.entries()) {
        if (nic.kind !== 'network') continue;
        const { id, handle } = await this.host.networks.attach(nic.network, this.name, i, nic);
        this.ports.push({ network: nic.network, id });
        nic.handle = handle;
      }
      thread = await VmThread.start(
        plan,
        this.host.scheduler.wake.buffer,
        { output: bytes => this.hub.push(bytes), agent: bytes => this.agent.push(bytes), incoming: port => this.onIncoming?.(port), log: line => this.host.log(this.name, line), nics: stats => { this.nicStats = stats; }, migrating: p => { if (this.migrating) this.migrating = p; }, snapshotting: p => { if (this.snapshotting) this.snapshotting = p; }, relaying: (flows, done) => this.host.relaying(this.name, flows, done, () => thread.kill()) },
        (control, starting) => { this.control = control; this.starting = starting; this.host.scheduler.add(this); },
      ).finally(() => { this.starting = undefined; });
    } catch (err) {
      this.host.scheduler.remove(this);
      this.claims = undefined;
      this.detachPorts();
      this.setState(previous);
      throw new HostError('invalid', `Cannot ${restore ? 'restore' : 'start'} ${this.name}: ${(err as Error).message}`, { cause: err });
    }
    if (this.host.closing) {
      await thread.kill();
      this.host.scheduler.remove(this);
      this.claims = undefined;
      this.detachPorts();
      this.setState(previous);
      throw new HostError('conflict', 'The host is closed');
    }
    this.thread = thread;
    for (const w of thread.warnings) this.host.log(this.name, `warning: ${w}`);
    Object.assign(this.record, { startedAt: now(), stoppedAt: undefined, exit: undefined });
    this.setState('running');
    if (incoming) this.host.persist(this.record);
    void thread.ended.then(end => this.ended(thread, end));
  }

  async pause(): Promise<void> {
    this.must('pause', ['running']);
    this.paused = true;
    this.host.scheduler.apply(this);
    // The thread holds before its next slice (at most one slice away) unless it sleeps in WFI.
    for (let i = 0; i < 200 && this.control.activity === Activity.BUSY; i++) await delay(5);
    if (this.state === 'running') this.setState('paused');
  }

  async resume(): Promise<void> {
    this.must('resume', ['paused']);
    this.paused = false;
    this.host.scheduler.apply(this);
    this.setState('running');
  }

  async stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    const thread = this.thread;
    if (!thread) return;
    if (this.state === 'stopping') { await thread.ended; return; }
    this.must('stop', ['running', 'paused']);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new HostError('invalid', `timeoutMs: ${timeoutMs} must be a number of milliseconds`);
    this.paused = false; // a paused guest cannot hear the button
    this.host.scheduler.apply(this);
    this.setState('stopping');
    // Pressed again every second: a press while the guest still boots, before its init listens,
    // would otherwise be lost (as a real button is pressed again when nothing happens).
    thread.pressPowerButton();
    const presser = setInterval(() => thread.pressPowerButton(), PRESS_AGAIN_MS);
    try {
      if (await settlesWithin(thread.ended, timeoutMs)) return;
    } finally {
      clearInterval(presser);
    }
    thread.stop();
    if (await settlesWithin(thread.ended, FORCED_STOP_GRACE_MS)) return;
    await thread.kill({ reason: 'stopped', message: 'Forced stop: the VM thread did not end' });
  }

  async kill(): Promise<void> {
    const thread = this.thread;
    if (!thread) { await this.starting?.kill(); return; }
    await thread.kill();
  }

  attachConsole(opts: { write?: boolean } = {}): ConsoleClient {
    return this.hub.attach(opts);
  }

  async waitStopped(): Promise<VmInfo> {
    const thread = this.thread;
    if (thread) {
      await thread.ended;
      // ended() runs in the same microtask chain; let it record the end first.
      await Promise.resolve();
    }
    return this.info();
  }

  /** @internal Makes the VM thread throw or hang, as an emulation bug would (tests of the crash and hang paths). */
  injectFault(fault: InjectedFault = 'throw'): void { this.thread?.injectFault(fault); }

  /** Watchdog: ends a run whose thread burns CPU without finishing slices. */
  checkProgress(): void {
    const thread = this.thread;
    if (!thread || !thread.hung()) return;
    this.host.log(this.name, 'emulation hung: no progress; ending the VM thread');
    void thread.kill({ reason: 'crashed', message: 'Emulation hung: the VM thread made no progress for 5 s of CPU time' });
  }

  private ended(thread: VmThread, end: RunEnd): void {
    if (this.thread !== thread) return;
    this.thread = undefined;
    this.claims = undefined;
    this.detachPorts();
    this.nicStats = [];
    this.paused = false;
    this.host.scheduler.remove(this);
    const exit: NonNullable<VmInfo['exit']> = { reason: end.reason };
    if (end.code !== undefined) exit.code = end.code;
    if (end.message !== undefined) exit.message = end.message;
    Object.assign(this.record, { stoppedAt: now(), exit, cpuSeconds: this.control.f64[F.CPU_NS] / 1e9 });
    if (end.reason === 'crashed') this.host.log(this.name, `crashed: ${end.message ?? 'unknown reason'}`);
    this.setState(end.reason === 'crashed' ? 'crashed' : 'stopped');
  }

  private nicInfo(): NicInfo[] {
    const running = this.thread !== undefined;
    const ports = running ? this.host.networkPorts() : [];
    return (this.spec.nics ?? []).map((n, index) => {
      const base = { index, type: n.type, mac: n.mac ?? vmMac(this.name, index) };
      if (n.type === 'network') {
        const p = ports.find(x => x.network === n.network && x.port.id === `${this.name}/${index}`)?.port;
        const counters = p ? { fromGuestFrames: p.rxFrames, fromGuestBytes: p.rxBytes, toGuestFrames: p.txFrames, toGuestBytes: p.txBytes, dropped: Object.values(p.drops).reduce((a, b) => a + b, 0) } : {};
        return { ...base, network: n.network, ip: p?.ip ?? null, ...counters };
      }
      const ip = n.type === 'user' ? userGuestAddress(n) : null;
      return { ...base, ip, ...(running ? this.nicStats[index] : {}) };
    });
  }

  private detachPorts(): void {
    for (const p of this.ports.splice(0)) this.host.networks.detach(p.network, p.id);
  }

  private must(action: string, states: VmInfo['state'][]): void {
    if (!states.includes(this.state)) throw new HostError('conflict', `Cannot ${action} ${this.name}: it is ${this.state}`);
  }

  private setState(state: VmInfo['state']): void {
    this.record.state = state;
    this.host.save(this.record);
  }
}

/** How long a clone's agent has to take its identity (a guest under load answers in milliseconds). */
const AGENT_TIMEOUT_MS = 10_000;

function overlayPath(dir: string, i: number): string { return join(dir, `drive${i}.qcow2`); }

/** Byte length of the WebAssembly memory of a VM with `memoryMiB` of RAM (cpu.ts: whole 64 KiB pages). */
function wasmMemoryBytes(memoryMiB: number): number {
  return Math.ceil((RAM_OFFSET + memoryMiB * MiB) / 65536) * 65536;
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>(r => { timer = setTimeout(() => r(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One host per stateDir: a lock file with our pid; a stale one (its process gone) is taken over. */
function takeLock(file: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw new HostError('conflict', `State directory ${dirname(file)} is in use by process ${pid}`);
      }
      if (pid === process.pid) throw new HostError('conflict', `This process already has a host open on ${dirname(file)}`);
      rmSync(file, { force: true });
    }
  }
  throw new HostError('conflict', `Cannot take the lock of state directory ${dirname(file)}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
