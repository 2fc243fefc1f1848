/**
 * SiFive PLIC (platform-level interrupt controller) as QEMU virt's `sifive,plic-1.0.0`
 * (hw/intc/sifive_plic.c; RISC-V PLIC specification v1.0.0):
 *
 *   0x000000 + 4*src                 priority (0..7; 0 = never interrupts)
 *   0x001000 + 4*word                pending bits, read-only
 *   0x002000 + 0x80*ctx + 4*word     enable bits of a context
 *   0x200000 + 0x1000*ctx + 0        priority threshold of a context
 *   0x200000 + 0x1000*ctx + 4        claim (read) / complete (write)
 *
 * Contexts: 2 per hart, ctx 2h is hart h's M-mode (drives mip.MEIP), ctx 2h+1 its S-mode (mip.SEIP).
 * Sources are level-triggered through a gateway: a rising level sets pending; a claim clears
 * pending and holds the source until it is completed; completion re-arms pending when the level
 * is still high. A level that falls while pending withdraws the request (as QEMU does).
 */
import { GasangError } from '../util/errors.js';
import { Mip, type HartInterrupts } from './irq.js';
import { PLIC_MAX_PRIORITY, PLIC_SOURCES } from './memory-map.js';
import { mergeNarrow, narrowRead, type MmioDevice } from '../memory/bus.js';

const PRIORITY = 0x0;
const PENDING = 0x1000;
const ENABLE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;

export interface PlicOptions {
  harts: number;
  irq: HartInterrupts;
  /** Sources including reserved source 0 (default PLIC_SOURCES = 96, i.e. riscv,ndev 95). Multiple of 32. */
  sources?: number;
}

/** The PLIC's state for snapshots (plain JSON). */
export interface PlicState {
  priority: number[];
  pending: number[];
  claimed: number[];
  level: number[];
  enable: number[];
  threshold: number[];
}

export class Plic implements MmioDevice {
  readonly name = 'plic';
  readonly harts: number;
  readonly sources: number;
  readonly contexts: number;
  private readonly irq: HartInterrupts;
  private readonly words: number;
  private readonly priority: Uint8Array;
  private readonly pending: Uint32Array;
  private readonly claimed: Uint32Array;
  /** Current input level of each source, as set by devices. */
  private readonly level: Uint32Array;
  private readonly enable: Uint32Array;
  private readonly threshold: Uint8Array;

  constructor(opts: PlicOptions) {
    const sources = opts.sources ?? PLIC_SOURCES;
    if (!(opts.harts >= 1 && opts.harts <= 7936)) throw new GasangError('plic-harts', `Invalid hart count ${opts.harts}`);
    if (!(sources >= 32 && sources <= 1024 && sources % 32 === 0)) throw new GasangError('plic-sources', `Invalid PLIC source count ${sources}`);
    this.harts = opts.harts;
    this.sources = sources;
    this.contexts = 2 * opts.harts;
    this.irq = opts.irq;
    this.words = sources / 32;
    this.priority = new Uint8Array(sources);
    this.pending = new Uint32Array(this.words);
    this.claimed = new Uint32Array(this.words);
    this.level = new Uint32Array(this.words);
    this.enable = new Uint32Array(this.words * this.contexts);
    this.threshold = new Uint8Array(this.contexts);
  }

  /** Device side: drives source `src` (1..sources-1) to `level`. Recomputes and reports MEIP/SEIP. */
  setIrq(src: number, level: boolean): void {
    if (!(src >= 1 && src < this.sources)) throw new GasangError('plic-source', `PLIC source ${src} out of range`);
    const w = src >> 5;
    const bit = 1 << (src & 31);
    const was = (this.level[w]! & bit) !== 0;
    if (level) this.level[w]! |= bit;
    else this.level[w]! &= ~bit;
    if (level && !was && !(this.claimed[w]! & bit)) this.pending[w]! |= bit;
    if (!level) this.pending[w]! &= ~bit;
    this.update();
  }

  /** A line function for a device bound to one source. */
  line(src: number): (level: boolean) => void {
    if (!(src >= 1 && src < this.sources)) throw new GasangError('plic-source', `PLIC source ${src} out of range`);
    return (level) => this.setIrq(src, level);
  }

  isPending(src: number): boolean {
    return (this.pending[src >> 5]! & (1 << (src & 31))) !== 0;
  }

  /** Recomputes every context's output and reports it (ctx 2h → MEIP, 2h+1 → SEIP of hart h). */
  update(): void {
    for (let ctx = 0; ctx < this.contexts; ctx++) {
      this.irq.setPending(ctx >> 1, ctx & 1 ? Mip.SEIP : Mip.MEIP, this.best(ctx) !== 0);
    }
  }

  read(offset: number, size: 1 | 2 | 4): number {
    return narrowRead(this.read32(offset & ~3), offset, size);
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    // Registers are 32-bit; narrower writes are widened (other bytes unchanged), except claim/complete.
    const aligned = offset & ~3;
    if (size === 4) { this.write32(aligned, value); return; }
    // Reading claim/complete would claim an interrupt: narrow writes to it are ignored.
    if (aligned >= CONTEXT && (aligned & (CONTEXT_STRIDE - 1)) === 4) return;
    this.write32(aligned, mergeNarrow(this.read32(aligned), offset, size, value));
  }

  save(): PlicState {
    return {
      priority: Array.from(this.priority),
      pending: Array.from(this.pending),
      claimed: Array.from(this.claimed),
      level: Array.from(this.level),
      enable: Array.from(this.enable),
      threshold: Array.from(this.threshold),
    };
  }

  restore(state: PlicState): void {
    if (state.priority.length !== this.sources || state.enable.length !== this.enable.length) {
      throw new GasangError('plic-restore', `PLIC state does not match this board (${this.sources} sources, ${this.contexts} contexts)`);
    }
    this.priority.set(state.priority);
    this.pending.set(state.pending);
    this.claimed.set(state.claimed);
    this.level.set(state.level);
    this.enable.set(state.enable);
    this.threshold.set(state.threshold);
    this.update();
  }

  /** Highest-priority pending, enabled, unclaimed source above the threshold of ctx (lowest id wins ties); 0 if none. */
  private best(ctx: number): number {
    let bestSrc = 0;
    let bestPrio = this.threshold[ctx]!;
    const base = ctx * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pending[w]! & ~this.claimed[w]! & this.enable[base + w]!;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const src = (w << 5) | b;
        const prio = this.priority[src]!;
        if (prio > bestPrio) {
          bestPrio = prio;
          bestSrc = src;
        }
      }
    }
    return bestSrc;
  }

  private claim(ctx: number): number {
    const src = this.best(ctx);
    if (src !== 0) {
      const w = src >> 5;
      const bit = 1 << (src & 31);
      this.pending[w]! &= ~bit;
      this.claimed[w]! |= bit;
      this.update();
    }
    return src;
  }

  private complete(ctx: number, src: number): void {
    if (!(src >= 1 && src < this.sources)) return;
    const w = src >> 5;
    const bit = 1 << (src & 31);
    // The spec ignores completions for sources not enabled for this context.
    if (!(this.enable[ctx * this.words + w]! & bit) || !(this.claimed[w]! & bit)) return;
    this.claimed[w]! &= ~bit;
    if (this.level[w]! & bit) this.pending[w]! |= bit;
    this.update();
  }

  private read32(offset: number): number {
    if (offset < PENDING) {
      const src = (offset - PRIORITY) >> 2;
      return src < this.sources ? this.priority[src]! : 0;
    }
    if (offset < ENABLE) {
      const w = (offset - PENDING) >> 2;
      return w < this.words ? this.pending[w]! : 0;
    }
    if (offset < CONTEXT) {
      const ctx = Math.floor((offset - ENABLE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE) % ENABLE_STRIDE) >> 2;
      return ctx < this.contexts && w < this.words ? this.enable[ctx * this.words + w]! : 0;
    }
    const ctx = Math.floor((offset - CONTEXT) / CONTEXT_STRIDE);
    if (ctx >= this.contexts) return 0;
    const reg = (offset - CONTEXT) % CONTEXT_STRIDE;
    if (reg === 0) return this.threshold[ctx]!;
    if (reg === 4) return this.claim(ctx);
    return 0;
  }

  private write32(offset: number, value: number): void {
    if (offset < PENDING) {
      const src = (offset - PRIORITY) >> 2;
      if (src >= 1 && src < this.sources) {
        this.priority[src] = value & PLIC_MAX_PRIORITY;
        this.update();
      }
      return;
    }
    if (offset < ENABLE) return; // pending bits are read-only
    if (offset < CONTEXT) {
      const ctx = Math.floor((offset - ENABLE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE) % ENABLE_STRIDE) >> 2;
      if (ctx < this.contexts && w < this.words) {
        this.enable[ctx * this.words + w] = w === 0 ? value & ~1 : value; // source 0 does not exist
        this.update();
      }
      return;
    }
    const ctx = Math.floor((offset - CONTEXT) / CONTEXT_STRIDE);
    if (ctx >= this.contexts) return;
    const reg = (offset - CONTEXT) % CONTEXT_STRIDE;
    if (reg === 0) {
      this.threshold[ctx] = value & PLIC_MAX_PRIORITY;
      this.update();
    } else if (reg === 4) {
      this.complete(ctx, value);
    }
  }
}
