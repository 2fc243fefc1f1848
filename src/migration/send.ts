/**
 * Live migration out (pre-copy): RAM is sent while the guest runs, with the dirty log on
 * (cpu.ts takeDirty); each round sends what the guest wrote during the last, until what is left
 * fits the downtime budget at the speed measured, or rounds run out. Then the guest is held, the
 * rest goes out with the board's and harts' state, and the source waits for the target to say
 * its guest runs before it ends its own. Whatever fails before that — the target refusing or
 * dying, the link cut, a corrupt stream — leaves the source VM running as it was.
 */
import type { Socket } from 'node:net';
import { HART_STATE_BYTES } from '../cpu/layout.js';
import type { VirtMachine } from '../machine/virt.js';
import { hartBytes, saveVirt, shapeOf } from '../machine/virt-state.js';
import { CHANGE_CHUNK } from '../storage/host-file.js';
import { DiskSender, type OutgoingDisk } from './disks.js';
import { relayFromSource, sendFlows, type OutgoingFlow } from './relay.js';
import { FrameReader, FrameWriter, MigrationError, STREAM_VERSION, Tag } from './stream.js';

const PAGE = 4096;
/** Pages per PAGES frame (1 MiB). */
const BATCH = 256;

export interface MigrateOutOptions {
  /** The target's one-time token (it refuses a stream without it). */
  token: string;
  /** The VM's owner's description, handed to the target (what it needs to rebuild the VM). */
  spec: unknown;
  /** Longest the guest may be held for the last pages (default 50 ms). */
  downtimeMs?: number;
  /** Pre-copy rounds at most (default 30): a guest that writes faster than the link gets held longer instead. */
  maxRounds?: number;
  /** How long the target may take to answer (default 30 s). */
  timeoutMs?: number;
  /** Runs once the guest is held, before the last pages are taken (the caller flushes its disks there). */
  atInstant?: () => void;
  /** Told after every batch of pages and when the guest is held (the caller throttles what it shows). */
  onProgress?: (p: MigrationProgress) => void;
  /** The VM's network flows that move with it (relay.ts). */
  flows?: MovingFlows;
  /** Overlay files copied to the target (block migration, disks.ts); the other drives are on shared storage. */
  disks?: readonly OutgoingDisk[];
}

/** How the VM's user-network TCP flows leave: taken at the instant, given back if the migration fails after. */
export interface MovingFlows {
  /** At the instant (the guest held): the flows, which their network lets go of. */
  take(): OutgoingFlow[];
  /** The migration failed after take(): the flows go back to their networks. */
  giveBack(flows: OutgoingFlow[]): void;
  /** The guest runs on the target: `done` settles when the last relayed flow has closed. */
  relaying(count: number, done: Promise<void>): void;
}

/** Where a migration stands. */
export interface MigrationProgress {
  /** Pre-copy while the guest runs, or held for the last pages. */
  phase: 'precopy' | 'held';
  round: number;
  pagesSent: number;
  bytesSent: number;
  /** Pages still to send in this round (then what the guest dirtied meanwhile). */
  remainingPages: number;
}

export interface MigrationStats {
  rounds: number;
  pagesSent: number;
  bytesSent: number;
  /** Pages sent while the guest was held. */
  finalPages: number;
  /** The guest held, ms: from the hold to the target's answer. */
  downtimeMs: number;
  /** TCP flows relayed to the target (their host sockets stay here until they close). */
  flowsMoved: number;
  totalMs: number;
}

/** Migrates `m` over `socket` (connected to a target's migrateIn); resolves once the target runs it, and `m` is stopped. */
export async function migrateOut(m: VirtMachine, socket: Socket, opts: MigrateOutOptions): Promise<MigrationStats> {
  const t0 = performance.now();
  const w = new FrameWriter(socket), r = new FrameReader(socket);
  const timeout = opts.timeoutMs ?? 30_000;
  const budget = opts.downtimeMs ?? 50;
  const cpu = m.cpu;
  const pages = Math.ceil(cpu.ram.length / PAGE);
  let release: (() => void) | undefined;
  let moving: OutgoingFlow[] = [];
  let pagesSent = 0, bytesSent = 0;
  /** PAGES frames of `list`, copied from RAM now. */
  const frames = (list: ArrayLike<number>, from: number, count: number): Uint8Array => {
    const payload = new Uint8Array(count * (4 + PAGE)), dv = new DataView(payload.buffer);
    for (let k = 0; k < count; k++) {
      const p = list[from + k]!;
      dv.setUint32(k * (4 + PAGE), p, true);
      payload.set(cpu.ram.subarray(p * PAGE, (p + 1) * PAGE), k * (4 + PAGE) + 4);
    }
    return payload;
  };
  const put = async (payload: Uint8Array): Promise<void> => {
    w.write(Tag.PAGES, payload);
    pagesSent += payload.length / (4 + PAGE);
    bytesSent += payload.length;
    await w.drained();
  };
  const disks = new DiskSender(opts.disks ?? []);
  /** Sends disk pieces as RAM pages go: a frame each, the guest running in between. */
  const sendDisk = async (list: [number, number][]): Promise<void> => {
    for (const piece of list) {
      bytesSent += disks.send(w, piece);
      await w.drained();
    }
  };
  try {
    w.json(Tag.HELLO, { version: STREAM_VERSION, token: opts.token, shape: shapeOf(m), spec: opts.spec, disks: disks.drives });
    await r.expect(Tag.READY, timeout);
    let diskPieces = disks.start();
    cpu.takeDirty();
    // Round 0: every page that is not zero (the target's RAM starts zeroed).
    let pending: number[] = [];
    const words = new Int32Array(cpu.ram.buffer, cpu.ram.byteOffset, cpu.ram.length / 4);
    for (let p = 0; p < pages; p++) {
      for (let i = p * 1024, end = i + 1024; i < end; i++) if (words[i] !== 0) { pending.push(p); break; }
    }
    let rounds = 0;
    for (;;) {
      const start = performance.now(), before = bytesSent;
      await sendDisk(diskPieces);
      for (let i = 0; i < pending.length; i += BATCH) {
        const n = Math.min(BATCH, pending.length - i);
        await put(frames(pending, i, n));
        opts.onProgress?.({ phase: 'precopy', round: rounds + 1, pagesSent, bytesSent, remainingPages: pending.length - i - n });
        await new Promise(res => setImmediate(res)); // the guest's slices run in between
      }
      rounds++;
      const seconds = Math.max((performance.now() - start) / 1000, 1e-3);
      const bytesPerMs = (bytesSent - before) / seconds / 1000;
      pending = dirtyList(cpu.takeDirty()!);
      diskPieces = disks.changed();
      if (pending.length * PAGE + diskPieces.length * CHANGE_CHUNK <= budget * bytesPerMs || rounds >= (opts.maxRounds ?? 30)) break;
    }
    // The instant: held from the next slice on; the last pages and the state are taken together, so
    // what a device writes after it (host input arriving) belongs to after the switch on either side.
    release = m.hold();
    const held = performance.now();
    opts.atInstant?.();
    moving = opts.flows?.take() ?? [];
    const last = [...new Set([...pending, ...dirtyList(cpu.takeDirty()!)])].sort((a, b) => a - b);
    cpu.stopDirty();
    opts.onProgress?.({ phase: 'held', round: rounds, pagesSent, bytesSent, remainingPages: last.length });
    const final: Uint8Array[] = [];
    for (let i = 0; i < last.length; i += BATCH) final.push(frames(last, i, Math.min(BATCH, last.length - i)));
    const harts = new Uint8Array(HART_STATE_BYTES * cpu.harts.length);
    cpu.harts.forEach((_, i) => harts.set(hartBytes(m, i), i * HART_STATE_BYTES));
    const state = { virt: saveVirt(m) };
    for (const f of final) await put(f);
    const lastPieces = new Map([...diskPieces, ...disks.changed()].map(p => [p[0] * 0x1_0000_0000 + p[1], p])); // after the flush at the instant
    for (const piece of lastPieces.values()) bytesSent += disks.send(w, piece);
    disks.finish(w);
    sendFlows(w, moving);
    w.json(Tag.STATE, state);
    w.write(Tag.HARTS, harts);
    w.write(Tag.END);
    await r.expect(Tag.RUNNING, timeout);
    const downtimeMs = performance.now() - held;
    m.stop();
    release();
    if (moving.length) opts.flows!.relaying(moving.length, relayFromSource(socket, w, r, moving));
    else socket.end();
    return { rounds, pagesSent, bytesSent, finalPages: last.length, downtimeMs, totalMs: performance.now() - t0, flowsMoved: moving.length };
  } catch (err) {
    cpu.stopDirty();
    disks.stop();
    if (moving.length) opts.flows!.giveBack(moving);
    release?.();
    socket.destroy();
    throw err instanceof MigrationError ? err : new MigrationError(`Migration failed: ${(err as Error).message}`, { cause: err });
  }
}

function dirtyList(d: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < d.length; p++) if (d[p] === 1) out.push(p);
  return out;
}
