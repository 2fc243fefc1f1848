/**
 * The contract between the host (src/vm) and its interfaces (src/api REST daemon, src/cli `gasang
 * vm`, the TypeScript library): what a VM spec is, what a VM reports, what the host can do. Specs
 * are plain JSON so that the REST API, the store and the library share one shape.
 */
import type { MigrationProgress } from '../migration/send.js';
import type { SnapshotProgress } from '../snapshot/index.js';
import { GasangError } from '../util/errors.js';
import type { UserNicFields } from '../net/user/options.js';
import type { NetworkInfo } from './networks.js';
import type { AclRule, PortStats } from '../net/switch/index.js';

/** A disk image attached over virtio-blk. */
export interface DriveSpec {
  file: string;
  /** Probed from the file when absent. */
  format?: 'raw' | 'qcow2';
  readonly?: boolean;
  /**
   * Start the VM on a fresh qcow2 overlay of `file` (kept beside the VM's other state), so one
   * read-only base serves many VMs; the base is never written.
   */
  overlay?: boolean;
  iops?: number;
  bps?: number;
}

/** A virtual disk assembled from several host files. */
export interface VolumeSpec {
  mode: 'linear' | 'stripe' | 'mirror';
  files: string[];
  readonly?: boolean;
}

/** A host directory shared over virtio-9p. */
export interface ShareSpec {
  host: string;
  tag: string;
  readonly?: boolean;
}

/** A network card (virtio-net). `mac` defaults to one derived from the VM's name and the card's place. */
/** tap: a host TAP device, attached or created (the daemon needs root or CAP_NET_ADMIN to create one). */
export interface TapNicSpec {
  type: 'tap';
  ifname?: string;
  mac?: string;
}

/** user: a user-mode network of its own (no privileges), with the keys of `gasang run --nic user,…`. */
export interface UserNicSpec extends UserNicFields {
  type: 'user';
  mac?: string;
}

export interface NicTrunk { allowed: string | number[]; native?: number }

/** network: a port of one of the host's named networks (createNetwork; `gasang net create`). */
export interface NetworkNicSpec {
  type: 'network';
  network: string;
  /** The port's 802.1Q VLAN (access port; the guest sends untagged). Default 1. */
  vlan?: number;
  /**
   * A trunk port instead (excludes vlan): the guest's tagged frames of the allowed VLANs ("10,20-30"
   * or a list) pass, its untagged ones belong to `native` (none when absent).
   */
  trunk?: NicTrunk;
  /** Ordered allow/deny rules on the IPv4 5-tuple, first match wins (directions are the VM's). */
  acl?: AclRule[];
  mac?: string;
}

export type NicSpec = TapNicSpec | UserNicSpec | NetworkNicSpec;

/** What a user declares; everything else has a default. Unknown fields are errors. */
export interface VmSpec {
  /** Unique on the host: [a-z0-9][a-z0-9-]{0,62}. */
  name: string;
  /** Guest harts, 1..MAX_HARTS. Default 1. */
  cpus?: number;
  /** Guest RAM in MiB. Default 256. */
  memoryMiB?: number;
  /** Default: the bundled guest's kernel, initramfs, firmware and command line. */
  kernel?: string;
  initrd?: string;
  firmware?: string;
  append?: string;
  drives?: DriveSpec[];
  volumes?: VolumeSpec[];
  shares?: ShareSpec[];
  /** Network cards: eth0 first. */
  nics?: NicSpec[];
  /** Relative CPU weight against other VMs (like cgroup cpu.shares). Default 1024. */
  cpuShares?: number;
  /** Most host CPU the VM may use, percent of one host core (1..100 × cpus). Default: no limit. */
  cpuLimit?: number;
  /** Translate hot code to WebAssembly. Default true. */
  jit?: boolean;
}

export type VmState = 'created' | 'starting' | 'running' | 'paused' | 'stopping' | 'stopped' | 'crashed';

/** What `inspect` and `list` report. */
export interface VmInfo {
  id: string;
  spec: Required<Pick<VmSpec, 'name' | 'cpus' | 'memoryMiB' | 'cpuShares'>> & VmSpec;
  state: VmState;
  /** ISO 8601 times; absent when it never happened. */
  createdAt: string;
  startedAt?: string;
  stoppedAt?: string;
  /** How the last run ended (guest power-off, reset, forced stop, kill, emulation crash). */
  exit?: { reason: 'poweroff' | 'reset' | 'stopped' | 'killed' | 'crashed' | 'migrated'; code?: number; message?: string };
  usage: VmUsage;
  /** The VM's network cards, with their addresses and, while it runs, their counters. */
  nics?: NicInfo[];
  /** While it migrates away: where the migration stands (updated a few times a second). */
  migration?: MigrationProgress;
  /** While a snapshot of it is written: where that stands (updated a few times a second). */
  snapshot?: SnapshotProgress;
}

/** Frames and bytes through a NIC, in the guest's directions. */
export interface NicCounters {
  fromGuestFrames: number;
  fromGuestBytes: number;
  toGuestFrames: number;
  toGuestBytes: number;
  /** Frames dropped on the way (full queues, hostile frames, ACLs, spoofing). */
  dropped: number;
}

export interface NicInfo extends Partial<NicCounters> {
  index: number;
  type: NicSpec['type'];
  mac: string;
  network?: string;
  /** The guest's IPv4 address: its lease on a user network or a network, null while unknown (always for tap). */
  ip: string | null;
}

export interface VmUsage {
  /** Host CPU seconds used by the VM's thread since it started. */
  cpuSeconds: number;
  /** Guest instructions retired (all harts). */
  instructions: number;
  /** Guest accesses to device registers (exits from translated code to the host). */
  mmioExits: number;
  /** Host memory beyond guest RAM attributed to the VM (bytes), and guest RAM (bytes). */
  hostOverheadBytes: number;
  guestRamBytes: number;
  /** virtio-blk traffic. */
  diskReadBytes: number;
  diskWriteBytes: number;
}

/** What a snapshot wrote. */
export interface SnapshotResult {
  file: string;
  bytes: number;
  /** RAM pages of the VM, and how many were stored (the rest were zero). */
  ramPages: number;
  storedPages: number;
  /** How long the guest was held, ms: a running VM only for its state (RAM is written while it runs on), a paused one or one stopped after for all of it. */
  pauseMs: number;
  /** A running VM's: from the request to the file in place, ms. */
  totalMs?: number;
}

/** Where a VM migrates to: `accept` readies an incoming VM of `spec` on the target host and says where its thread listens. */
export interface MigrationTarget {
  accept(spec: VmSpec): Promise<{ host: string; port: number; token: string }>;
}

/** How a VM migrates. */
export interface MigrateOptions {
  /** Block migration: copy the VM's overlays to the target (which needs only the read-only bases at the same paths) instead of sharing its disk files. */
  copyStorage?: boolean;
}

/** A finished migration, as the source saw it. */
export interface MigrationResult {
  /** Pre-copy rounds, pages and bytes sent (all rounds), pages sent while the guest was held. */
  rounds: number;
  pagesSent: number;
  bytesSent: number;
  finalPages: number;
  /** The guest held, ms (from the hold to the target's word that it runs), and the whole migration. */
  downtimeMs: number;
  totalMs: number;
  /** User-network TCP flows that moved with the VM: this host relays them to the target until they close. */
  flowsMoved: number;
}

/** An incoming migration, ready: where the source connects, with the token it must present. */
export interface IncomingMigration { port: number; token: string; vm: VmInfo }

/** How to clone a VM. */
export interface CloneOptions {
  /** The new VM's name. */
  name: string;
  /** Clone from this snapshot of the source (default: a snapshot taken now if it runs, else its own snapshot file). */
  file?: string;
}

/** A clone, running. */
export interface CloneResult {
  vm: VmInfo;
  /** The snapshot it was restored from. */
  file: string;
  /** Whether the guest agent took the clone's name and MAC addresses (false: no agent answered; the guest still calls itself as its source did). */
  identity: boolean;
  /** From the request to the clone running, and to its agent's answer, ms. */
  startMs: number;
  identityMs?: number;
}

/** Host-wide resource settings. */
export interface HostOptions {
  /** Directory for the store (SQLite) and per-VM state (overlays, logs). */
  stateDir: string;
  /** Guest RAM of all running VMs may reach ratio × host RAM. Default 1.5. */
  memoryOvercommit?: number;
  /** Host cores the scheduler hands out. Default: os.availableParallelism(). */
  cores?: number;
  /** One line about a VM: its device and I/O errors, warnings, crashes. Default: dropped. */
  onLog?: (vm: string, line: string) => void;
}

/** Why the host refused: a stable code (for HTTP status mapping) and a message naming the problem. */
export class HostError extends GasangError {
  constructor(readonly kind: HostErrorKind, message: string, options?: { cause?: unknown }) {
    super(`host-${kind}`, message, options);
  }
}

/**
 * invalid: the spec or request is malformed (HTTP 400); not-found (404); conflict: duplicate name
 * or an operation the VM's state forbids (409); resources: memory overcommit refused (507 /
 * insufficient storage is the closest; the API may choose 409 with this kind).
 */
export type HostErrorKind = 'invalid' | 'not-found' | 'conflict' | 'resources';

/**
 * A console client. Every attached client sees all output from the moment it attaches (plus a
 * replay of recent output); only one client at a time holds the write side.
 */
export interface ConsoleClient {
  /** Guest output, as it arrives. */
  onData(listener: (bytes: Uint8Array) => void): void;
  /** Typing; throws HostError('conflict') unless this client holds the write side. */
  write(bytes: Uint8Array | string): void;
  readonly writer: boolean;
  detach(): void;
}

/** One VM on the host (implemented by src/vm/host.ts). */
export interface VmHandle {
  readonly id: string;
  readonly name: string;
  info(): VmInfo;
  start(): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Graceful: the power button, then a forced stop after timeoutMs (default 30 s). */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
  kill(): Promise<void>;
  /**
   * Saves the running (or paused) VM to `file` (default: the VM's own snapshot file in the host's
   * state directory) between two slices; with `stop` the VM then stops. Writable drives must be
   * qcow2 (overlays are): each gets an internal snapshot of the same instant.
   */
  snapshot(opts?: { file?: string; stop?: boolean }): Promise<SnapshotResult>;
  /** Starts a created, stopped or crashed VM from a snapshot of it (default file as for snapshot) instead of booting. */
  restore(opts?: { file?: string }): Promise<void>;
  /**
   * Moves the running VM to another host by live migration: `target` readies an incoming VM
   * there (the REST layer asks the other gasangd). The VM here ends as migrated; its disks (the
   * same files: shared storage) belong to the target from then on, or with `copyStorage` its
   * overlays are copied there. Any failure leaves it running.
   */
  migrate(target: MigrationTarget, opts?: MigrateOptions): Promise<MigrationResult>;
  /** Attaches a console client; `write: true` takes the write side (conflict if held). */
  attachConsole(opts?: { write?: boolean }): ConsoleClient;
  /** Resolves when the VM's current run ends (immediately if not running). */
  waitStopped(): Promise<VmInfo>;
}

/** The host: the VMs it knows, persisted in its store (implemented by src/vm/host.ts). */
export interface HostApi {
  create(spec: VmSpec): Promise<VmHandle>;
  /** By name or id; HostError('not-found') otherwise. */
  get(nameOrId: string): VmHandle;
  list(): VmInfo[];
  /** Deletes a VM that is not running, with its overlays. */
  remove(nameOrId: string): Promise<void>;
  /**
   * A new VM that continues a snapshot of `source` under its own name and MAC addresses: its
   * overlays are copies of the source's at the snapshot (the base images stay shared, read-only).
   */
  clone(source: string, opts: CloneOptions): Promise<CloneResult>;
  /**
   * Creates a VM of `spec` that a source host migrates in (Vm.migrate there): its thread listens
   * on a free port of `host` (default 127.0.0.1) for one source with the token. If the migration
   * fails the VM is removed again.
   */
  acceptMigration(spec: VmSpec, opts?: { host?: string }): Promise<IncomingMigration>;
  /** Host-wide figures: memory committed to running VMs, its limit, host cores. */
  resources(): { memoryCommittedBytes: number; memoryLimitBytes: number; cores: number };
  /** Stops every VM (forced after the timeout) and closes the store. */
  close(): Promise<void>;
  /** Named networks (a virtual switch each, with a DHCP/NAT gateway): NetworkSpec in, NetworkInfo out. */
  createNetwork(spec: unknown): Promise<NetworkInfo>;
  getNetwork(name: string): Promise<NetworkInfo>;
  listNetworks(): Promise<NetworkInfo[]>;
  /** Refused (conflict) while a VM's spec names it. */
  removeNetwork(name: string): Promise<void>;
  /** Every VM port of every network with its counters (for /metrics). */
  networkPorts(): { network: string; port: PortStats }[];
}
