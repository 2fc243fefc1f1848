/**
 * Test scaffolding for the HTTP layer: an in-memory HostApi that keeps the contract of
 * src/vm/types.ts (states and the transitions they allow, unique names, the write side of a
 * console, overcommit refusal, missing files) without running guests. Its "guest" echoes typed
 * bytes back on the console, as a terminal does, and tests may print on its console. The real
 * host is tested against the same server in test/integration/gasangd.test.ts.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostError, type CloneOptions, type CloneResult, type ConsoleClient, type HostApi, type IncomingMigration, type MigrateOptions, type MigrationResult, type MigrationTarget, type SnapshotResult, type VmHandle, type VmInfo, type VmSpec, type VmState, type VmUsage } from '../vm/types.js';
import { Networks, type NetworkInfo } from '../vm/networks.js';
import type { PortStats } from '../net/switch/index.js';
import { ApiClient } from './client.js';
import { ApiServer, type LogEntry } from './server.js';

const MiB = 1024 * 1024;

class FakeConsoleClient implements ConsoleClient {
  private listeners: ((bytes: Uint8Array) => void)[] = [];
  detached = false;

  constructor(private readonly vm: FakeVm, readonly writer: boolean) {}

  onData(listener: (bytes: Uint8Array) => void): void { this.listeners.push(listener); }

  deliver(bytes: Uint8Array): void { for (const l of this.listeners) l(bytes); }

  write(bytes: Uint8Array | string): void {
    if (!this.writer || this.detached) throw new HostError('conflict', `This client does not hold the write side of ${this.vm.name}'s console`);
    this.vm.typed(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.vm.detached(this);
  }
}

export class FakeVm implements VmHandle {
  readonly id: string;
  state: VmState = 'created';
  usage: VmUsage;
  /** Every byte typed by the console's writer, for assertions. */
  input = '';
  private readonly createdAt = new Date().toISOString();
  private startedAt: string | undefined;
  private stoppedAt: string | undefined;
  private exit: VmInfo['exit'];
  private clients = new Set<FakeConsoleClient>();
  private writer: FakeConsoleClient | undefined;
  private stopWaiters: ((info: VmInfo) => void)[] = [];

  constructor(private readonly host: FakeHost, readonly spec: VmInfo['spec'], seq: number) {
    this.id = `vm${seq.toString(16).padStart(6, '0')}`;
    this.usage = { cpuSeconds: 0, instructions: 0, mmioExits: 0, hostOverheadBytes: 0, guestRamBytes: 0, diskReadBytes: 0, diskWriteBytes: 0 };
  }

  get name(): string { return this.spec.name; }

  info(): VmInfo {
    return {
      id: this.id, spec: structuredClone(this.spec), state: this.state, createdAt: this.createdAt,
      ...(this.startedAt && { startedAt: this.startedAt }), ...(this.stoppedAt && { stoppedAt: this.stoppedAt }),
      ...(this.exit && { exit: { ...this.exit } }), usage: { ...this.usage },
    };
  }

  private expect(action: string, ...states: VmState[]): void {
    if (!states.includes(this.state)) throw new HostError('conflict', `Cannot ${action} ${this.name}: it is ${this.state}`);
  }

  async start(): Promise<void> {
    this.expect('start', 'created', 'stopped', 'crashed');
    this.host.reserve(this);
    this.state = 'running';
    this.startedAt = new Date().toISOString();
    this.exit = undefined;
    this.usage.guestRamBytes = this.spec.memoryMiB * MiB;
    this.usage.hostOverheadBytes = 5 * MiB;
  }

  /** Snapshot files asked for, in order (the REST layer's tests; real snapshots are src/snapshot's). */
  snapshots: { file: string; stop: boolean }[] = [];

  async snapshot(opts: { file?: string; stop?: boolean } = {}): Promise<SnapshotResult> {
    this.expect('snapshot', 'running', 'paused');
    const file = opts.file ?? `/state/${this.id}/snapshot.gsnap`;
    this.snapshots.push({ file, stop: opts.stop === true });
    if (opts.stop) this.end('stopped');
    return { file, bytes: 1, ramPages: 1, storedPages: 1, pauseMs: 0 };
  }

  async restore(opts: { file?: string } = {}): Promise<void> {
    const file = opts.file ?? `/state/${this.id}/snapshot.gsnap`;
    this.expect('restore', 'created', 'stopped', 'crashed');
    if (!this.snapshots.some(s => s.file === file)) throw new HostError('invalid', `Cannot restore ${this.name}: ${file}: No such file`);
    await this.start();
  }

  /** Asks the target to accept this VM's spec, then ends as migrated (the REST layer's tests; real migrations are src/vm's). */
  async migrate(target: MigrationTarget, _opts?: MigrateOptions): Promise<MigrationResult> {
    this.expect('migrate', 'running');
    try {
      await target.accept(structuredClone(this.spec));
    } catch (err) {
      throw new HostError('conflict', `Cannot migrate ${this.name}: the target refused: ${(err as Error).message}`);
    }
    this.end('migrated');
    return { rounds: 1, pagesSent: 1, bytesSent: 4100, finalPages: 1, downtimeMs: 1, totalMs: 2, flowsMoved: 0 };
  }

  async pause(): Promise<void> { this.expect('pause', 'running'); this.state = 'paused'; }
  async resume(): Promise<void> { this.expect('resume', 'paused'); this.state = 'running'; }
  /** As the real host: stopping or killing a VM that does not run does nothing. */
  async stop(_opts?: { timeoutMs?: number }): Promise<void> { if (this.live) this.end('stopped'); }
  async kill(): Promise<void> { if (this.live) this.end('killed'); }

  private get live(): boolean { return this.state === 'running' || this.state === 'paused'; }

  /** The guest powered itself off. */
  powerOff(): void { this.end('poweroff'); }

  private end(reason: NonNullable<VmInfo['exit']>['reason']): void {
    this.state = 'stopped';
    this.stoppedAt = new Date().toISOString();
    this.exit = { reason };
    this.usage.hostOverheadBytes = 0;
    this.usage.guestRamBytes = 0;
    const info = this.info();
    for (const w of this.stopWaiters.splice(0)) w(info);
  }

  waitStopped(): Promise<VmInfo> {
    if (this.state !== 'running' && this.state !== 'paused') return Promise.resolve(this.info());
    return new Promise(resolve => this.stopWaiters.push(resolve));
  }

  attachConsole(opts: { write?: boolean } = {}): ConsoleClient {
    if (opts.write && this.writer) throw new HostError('conflict', `Another client holds the write side of ${this.name}'s console`);
    const c = new FakeConsoleClient(this, opts.write === true);
    if (c.writer) this.writer = c;
    this.clients.add(c);
    return c;
  }

  /** Guest output to every attached console client. */
  print(text: string | Uint8Array): void {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    for (const c of this.clients) c.deliver(bytes);
  }

  get consoleClients(): number { return this.clients.size; }

  typed(bytes: Uint8Array): void {
    this.input += new TextDecoder().decode(bytes);
    this.print(bytes); // the echo a terminal gives
  }

  detached(c: FakeConsoleClient): void {
    this.clients.delete(c);
    if (this.writer === c) this.writer = undefined;
  }
}

export interface FakeHostOptions {
  /** Guest RAM all running VMs may use together (default 1 GiB). */
  memoryLimitBytes?: number;
  cores?: number;
}

export class FakeHost implements HostApi {
  readonly vms = new Map<string, FakeVm>();
  closed = false;
  private seq = 0;
  private readonly memoryLimitBytes: number;
  private readonly cores: number;

  constructor(opts: FakeHostOptions = {}) {
    this.memoryLimitBytes = opts.memoryLimitBytes ?? 1024 * MiB;
    this.cores = opts.cores ?? 2;
  }

  async create(spec: VmSpec): Promise<FakeVm> {
    if ([...this.vms.values()].some(v => v.name === spec.name)) throw new HostError('conflict', `A VM named ${spec.name} already exists`);
    for (const [field, file] of [['kernel', spec.kernel], ['initrd', spec.initrd], ['firmware', spec.firmware], ...(spec.drives ?? []).map((d, i) => [`drives[${i}].file`, d.file])] as const) {
      if (file !== undefined && !existsSync(file)) throw new HostError('invalid', `${field}: ${file}: no such file`);
    }
    const full = { ...structuredClone(spec), cpus: spec.cpus ?? 1, memoryMiB: spec.memoryMiB ?? 256, cpuShares: spec.cpuShares ?? 1024 };
    const vm = new FakeVm(this, full, ++this.seq);
    this.vms.set(vm.id, vm);
    return vm;
  }

  get(nameOrId: string): FakeVm {
    const vm = this.vms.get(nameOrId) ?? [...this.vms.values()].find(v => v.name === nameOrId);
    if (!vm) throw new HostError('not-found', `No VM named ${nameOrId}`);
    return vm;
  }

  list(): VmInfo[] { return [...this.vms.values()].map(v => v.info()); }

  /** A created VM said to listen for its source on port 1. */
  async acceptMigration(spec: VmSpec): Promise<IncomingMigration> {
    const vm = await this.create(spec);
    return { port: 1, token: 'fake-token', vm: vm.info() };
  }

  /** A running copy of the source's spec under the new name (the REST layer's tests; real clones are src/vm's). */
  async clone(source: string, opts: CloneOptions): Promise<CloneResult> {
    const src = this.get(source);
    const file = opts.file ?? `/state/${src.id}/snapshot.gsnap`;
    if (opts.file !== undefined && !src.snapshots.some(s => s.file === file)) throw new HostError('invalid', `Cannot clone ${src.name}: ${file}: No such file`);
    const vm = await this.create({ ...structuredClone(src.spec), name: opts.name });
    await vm.start();
    return { vm: vm.info(), file, identity: true, startMs: 1, identityMs: 2 };
  }

  async remove(nameOrId: string): Promise<void> {
    const vm = this.get(nameOrId);
    if (vm.state === 'running' || vm.state === 'paused') throw new HostError('conflict', `Cannot remove ${vm.name}: it is ${vm.state} (stop it first)`);
    this.vms.delete(vm.id);
  }

  private committed(): number {
    let n = 0;
    for (const v of this.vms.values()) if (v.state === 'running' || v.state === 'paused') n += v.spec.memoryMiB * MiB;
    return n;
  }

  /** Refuses a start that would commit more guest RAM than the limit. */
  reserve(vm: FakeVm): void {
    const want = vm.spec.memoryMiB * MiB;
    if (this.committed() + want > this.memoryLimitBytes) {
      throw new HostError('resources', `Starting ${vm.name} (${vm.spec.memoryMiB} MiB) would commit ${(this.committed() + want) / MiB} MiB of guest RAM; the host allows ${this.memoryLimitBytes / MiB} MiB`);
    }
  }

  resources(): { memoryCommittedBytes: number; memoryLimitBytes: number; cores: number } {
    return { memoryCommittedBytes: this.committed(), memoryLimitBytes: this.memoryLimitBytes, cores: this.cores };
  }

  async close(): Promise<void> {
    for (const v of this.vms.values()) if (v.state === 'running' || v.state === 'paused') await v.kill();
    this.closed = true;
    this.nets?.close();
    if (this.netDir) rmSync(this.netDir, { recursive: true, force: true });
  }

  // Networks are the host's real ones (switch and gateway), kept in a directory of their own.
  private nets: Networks | undefined;
  private netDir: string | undefined;
  private get networks(): Networks {
    this.netDir ??= mkdtempSync(join(tmpdir(), 'gasang-fake-nets-'));
    return (this.nets ??= new Networks(this.netDir, () => {}));
  }

  createNetwork(spec: unknown): Promise<NetworkInfo> { return this.networks.create(spec); }
  getNetwork(name: string): Promise<NetworkInfo> { return this.networks.info(name); }
  listNetworks(): Promise<NetworkInfo[]> { return this.networks.list(); }
  networkPorts(): { network: string; port: PortStats }[] { return this.nets?.ports() ?? []; }
  async removeNetwork(name: string): Promise<void> {
    this.networks.remove(name, [...this.vms.values()].filter(v => v.spec.nics?.some(n => n.type === 'network' && n.network === name)).map(v => v.name));
  }
}

/** A server on a fresh Unix socket (and TCP when a token is given) over a FakeHost, with its log lines kept. */
export interface TestDaemon {
  host: FakeHost;
  server: ApiServer;
  socketPath: string;
  /** The bound TCP port, when a token was given. */
  port?: number;
  client: ApiClient;
  logs: LogEntry[];
  close(): Promise<void>;
}

export async function startTestDaemon(opts: { token?: string; host?: FakeHost; maxBodyBytes?: number } = {}): Promise<TestDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'gasangd-test-'));
  const socketPath = join(dir, 'run', 'gasangd.sock');
  const host = opts.host ?? new FakeHost();
  const logs: LogEntry[] = [];
  const server = new ApiServer({ host, log: e => logs.push(e), maxBodyBytes: opts.maxBodyBytes });
  await server.listenUnix(socketPath);
  const port = opts.token ? await server.listenTcp(0, '127.0.0.1', opts.token) : undefined;
  return {
    host, server, socketPath, port, logs, client: new ApiClient({ socketPath }),
    async close() {
      await server.close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
