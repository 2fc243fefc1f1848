/**
 * Test support for the JIT: boots an assembled program (with the PRELUDE macros of
 * interp/privileged-testing) on a Cpu that either translates every block before it first runs
 * (threshold 1, synchronous compilation) or only interprets, so each test can run both ways and
 * compare. H.JIT_INSNS tells how much of a run really executed translated.
 */
import { Bus } from '../../memory/bus.js';
import { Cpu } from '../cpu.js';
import type { Hart } from '../hart.js';
import { H, RAM_BASE } from '../layout.js';
import { assemble } from '../testing/asm.js';
import { HALT, PRELUDE } from '../interp/privileged-testing.js';

export { CODE_BASE, DATA_BASE, HALT, LOG } from '../interp/privileged-testing.js';
export const RAM_BYTES = 8 << 20;
export const RAM_END = RAM_BASE + RAM_BYTES;

/** Both ways a test runs: JIT from the first execution, and the interpreter alone. */
export const MODES = [{ name: 'jit', jit: true }, { name: 'interpreter', jit: false }] as const;

export interface Guest {
  cpu: Cpu;
  hart: Hart;
  jit: boolean;
  /**
   * Runs hart 0 as Cpu.run does (take a pending interrupt, then step) until halt, WFI with nothing
   * to wake it, or about `maxInsns` instructions.
   */
  run(maxInsns?: number, quantum?: number): void;
  /** Continues after a halt (the ecall was handled: pc is past it). */
  resume(maxInsns?: number, quantum?: number): void;
  x(i: number): bigint;
  rd64(pa: number): bigint;
  wr64(pa: number, v: bigint): void;
  /** Instructions retired inside translated code so far. */
  jitInsns(): number;
}

const binaries = new Map<string, Uint8Array>();

/** PRELUDE + source, assembled once per distinct source. */
export function program(source: string): Uint8Array {
  const full = PRELUDE + source;
  let bin = binaries.get(full);
  if (!bin) { bin = assemble(full); binaries.set(full, bin); }
  return bin;
}

export interface BootOptions {
  jit: boolean;
  harts?: number;
  bus?: Bus;
  /** Called after loading, before anything runs. */
  setup?: (g: Guest) => void;
}

/** Loads PRELUDE + source at CODE_BASE on every hart (M-mode, FS = Initial); `halt` stops the run. */
export async function boot(source: string, o: BootOptions): Promise<Guest> {
  const cpu = await Cpu.create({
    ramBytes: RAM_BYTES, harts: o.harts ?? 1, bus: o.bus ?? new Bus(),
    jitThreshold: o.jit ? 1 : 0, jitBackground: false,
  });
  cpu.ram.set(program(source), 0);
  for (const h of cpu.harts) h.csrWrite(0x300, 1n << 13n);
  const hart = cpu.hart(0);
  const dv = new DataView(cpu.ram.buffer, cpu.ram.byteOffset, cpu.ram.byteLength);
  cpu.onEcall = h => {
    if (h.x(17) !== BigInt(HALT)) return false;
    cpu.stopped = true;
    return true;
  };
  const g: Guest = {
    cpu, hart, jit: o.jit,
    run(maxInsns = 50_000_000, quantum = 100_000) {
      const end = hart.instret() + maxInsns;
      while (!cpu.stopped && hart.instret() < end) {
        if (hart.waiting && hart.wakeable()) hart.waiting = false;
        if (hart.waiting) break;
        hart.takeInterrupt();
        cpu.step(0, quantum);
      }
    },
    resume(maxInsns, quantum) { cpu.stopped = false; g.run(maxInsns, quantum); },
    x: i => hart.x(i),
    rd64: pa => dv.getBigUint64(pa - RAM_BASE, true),
    wr64: (pa, v) => dv.setBigUint64(pa - RAM_BASE, BigInt.asUintN(64, v), true),
    jitInsns: () => hart.s.num(H.JIT_INSNS),
  };
  o.setup?.(g);
  return g;
}

/** x1..x31 of a hart, for comparing final states. */
export const regs = (h: Hart): bigint[] => Array.from({ length: 31 }, (_, i) => h.x(i + 1));

/** Sv39 page-table PTE bits. */
export const PTE = { V: 1, R: 2, W: 4, X: 8, U: 16, A: 64, D: 128 } as const;

/**
 * Builds Sv39 tables before the guest exists (their satp and PTE addresses go into the program's
 * source): roots and next-level tables come from a bump allocator; apply() writes them into a guest.
 */
export class PageTables {
  private readonly words = new Map<number, bigint>();
  constructor(private next: number) {}

  /** A new, empty root table; its satp value (mode 8). */
  root(): { base: number; satp: bigint } {
    const base = this.alloc();
    return { base, satp: (8n << 60n) | BigInt(base / 4096) };
  }

  /** Maps va → pa under `root` with a leaf at `level` (0: 4 KiB, 2: 1 GiB); returns the leaf PTE's address. */
  map(root: number, va: number, pa: number, flags: number, level = 0): number {
    const vpn = (l: number): number => Math.floor(va / 2 ** (12 + 9 * l)) % 512;
    let table = root;
    for (let l = 2; l > level; l--) {
      const at = table + vpn(l) * 8;
      let pte = this.words.get(at) ?? 0n;
      if (!(pte & 1n)) { pte = (BigInt(this.alloc() / 4096) << 10n) | 1n; this.words.set(at, pte); }
      table = Number(pte >> 10n) * 4096;
    }
    const at = table + vpn(level) * 8;
    this.words.set(at, BigInt(leaf(pa, flags)));
    return at;
  }

  apply(g: Guest): void { for (const [at, v] of this.words) g.wr64(at, v); }

  private alloc(): number { const t = this.next; this.next += 4096; return t; }
}

/** A leaf PTE value for physical page `pa`. */
export const leaf = (pa: number, flags: number): number => (pa / 4096) * 1024 + flags;
