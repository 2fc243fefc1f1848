/**
 * The processor complex: the VM's one WebAssembly.Memory (hart state + RAM), the generated
 * interpreter instantiated against it, and the harts' host-side halves.
 */
import type { Bus } from '../memory/bus.js';
import { GuestMemory } from '../memory/guest-memory.js';
import type { Residency } from '../memory/residency.js';
import { ALL_INSNS } from '../isa/index.js';
import { generateInterpreter } from './interp/generate.js';
import { Hart, type HartEnv } from './hart.js';
import { H, HARTS_BASE, HART_STRIDE, MAX_HARTS, RAM_BASE, RAM_OFFSET } from './layout.js';
import { Views } from './state.js';
import { fpExecute } from './fpu/execute.js';
import { Jit } from './jit/jit.js';

export interface CpuOptions {
  ramBytes: number;
  harts: number;
  bus: Bus;
  /** mtime source in 10 MHz ticks; defaults to the host's monotonic clock. */
  mtime?: () => number;
  /** Translate code after this many visits (0 = interpreter only). Default: GASANG_JIT_THRESHOLD, else DEFAULT_JIT_THRESHOLD. */
  jitThreshold?: number;
  /**
   * Compile translations on background threads while the interpreter goes on. Default:
   * GASANG_JIT_BACKGROUND (0/1), else on unless the threshold is 1 (then every block is translated
   * and compiled before it first runs, the strictest test of the JIT, for the first
   * GASANG_JIT_SYNC_MODULES blocks; later ones are batched to bound V8's code space).
   */
  jitBackground?: boolean;
}

const PAGE = 65536;
/**
 * Visits of a pc before its block is translated. Boot code mostly runs a few times: translating
 * it costs more than interpreting it (measured on the Debian boot: 50 → 10.1 s, 200 → 8.2 s,
 * 1000 → 7.8 s, interpreter alone 9.2 s), while loops that matter pass 1000 visits at once.
 */
export const DEFAULT_JIT_THRESHOLD = 1000;
const compiled = new Map<string, WebAssembly.Module>();

/** The interpreter depends only on the memory size and JIT threshold; compile once per pair and reuse. */
async function interpreterFor(pages: number, jitThreshold: number): Promise<WebAssembly.Module> {
  const key = `${pages}:${jitThreshold}`;
  let m = compiled.get(key);
  if (!m) { m = await WebAssembly.compile(generateInterpreter(ALL_INSNS, pages, { jitThreshold })); compiled.set(key, m); }
  return m;
}

export class Cpu {
  readonly memory: WebAssembly.Memory;
  readonly views: Views;
  readonly ram: Uint8Array;
  readonly harts: Hart[] = [];
  onEcall?: (hart: Hart) => boolean;
  private stopFlag = false;
  private runFn!: (hb: number, budget: number) => number;
  /** The hart run() executes. */
  current = 0;

  readonly jit: Jit | undefined;
  readonly jitThreshold: number;
  private readonly imports: WebAssembly.Imports;
  private readonly table = new WebAssembly.Table({ element: 'anyfunc', initial: 0 });

  private constructor(readonly opts: CpuOptions) {
    if (opts.harts < 1 || opts.harts > MAX_HARTS) throw new RangeError(`harts must be 1..${MAX_HARTS}`);
    const pages = Math.ceil((RAM_OFFSET + opts.ramBytes) / PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.views = new Views(this.memory, opts.ramBytes);
    this.ram = new Uint8Array(this.memory.buffer, RAM_OFFSET, opts.ramBytes);
    const t0 = performance.now();
    this.jitThreshold = opts.jitThreshold ?? Number(process.env.GASANG_JIT_THRESHOLD ?? DEFAULT_JIT_THRESHOLD);
    const at = (hb: number): Hart => this.harts[(hb - HARTS_BASE) / HART_STRIDE];
    this.imports = {
      env: { mem: this.memory, blocks: this.table },
      host: {
        fetchSlow: (hb: number) => at(hb).fetchSlow(),
        loadSlow: (hb: number, kind: number) => at(hb).loadSlow(kind),
        storeSlow: (hb: number, size: number) => at(hb).storeSlow(size),
        ramAddrSlow: (hb: number, code: number, size: number) => at(hb).ramAddrSlow(code, size),
        exec: (hb: number, unit: number, op: number, insn: number) => at(hb).exec(unit, op, insn),
        trap: (hb: number, cause: number) => at(hb).trapFromCode(cause),
        compile: (hb: number, jce: number) => at(hb).compile(jce),
      },
    };
    this.jit = this.jitThreshold > 0
      ? new Jit(this.views, ALL_INSNS, this.table, this.imports, () => this.harts.flatMap(h => h.storeTlbTables()),
        { background: opts.jitBackground ?? (process.env.GASANG_JIT_BACKGROUND !== undefined ? process.env.GASANG_JIT_BACKGROUND !== '0' : this.jitThreshold > 1) })
      : undefined;
    const env: HartEnv = {
      jit: this.jit,
      v: this.views,
      bus: opts.bus,
      mtime: opts.mtime ?? (() => Math.floor((performance.now() - t0) * 10_000)),
      onEcall: h => this.onEcall?.(h) ?? false,
      fp: (hb, op, insn) => fpExecute(this.views, hb, op, insn),
    };
    for (let i = 0; i < opts.harts; i++) this.harts.push(new Hart(i, env));
  }

  static async create(opts: CpuOptions): Promise<Cpu> {
    const cpu = new Cpu(opts);
    const module = await interpreterFor(cpu.memory.buffer.byteLength / PAGE, cpu.jitThreshold);
    const instance = await WebAssembly.instantiate(module, cpu.imports);
    cpu.runFn = instance.exports.run as (hb: number, budget: number) => number;
    for (const h of cpu.harts) h.reset(0x8000_0000);
    return cpu;
  }

  hart(i: number): Hart { return this.harts[i]; }

  /** RAM for device DMA; device writes drop translated code on the pages they touch. */
  guestMemory(): GuestMemory {
    return new GuestMemory(this.ram, RAM_BASE, (pa, length) => {
      this.clearReservations(pa, length);
      if (this.views.dirty) for (let p = pa - (pa % 4096); p < pa + length; p += 4096) this.views.markDirty(p);
      const jit = this.jit;
      if (!jit) return;
      for (let page = Math.floor((pa - RAM_BASE) / 4096), last = Math.floor((pa + length - 1 - RAM_BASE) / 4096); page <= last; page++) {
        if (jit.codePages[page]) jit.invalidatePage(page);
      }
    }, this.views.residency);
  }

  /**
   * Starts the dirty log (state.ts Views.dirty), or takes it: returns the pages written since the
   * last call (undefined on the first) and starts a fresh one. The TLBs are emptied, so a page
   * written from now on is marked again however it is reached. Call it between slices.
   */
  takeDirty(): Uint8Array | undefined {
    const was = this.views.dirty;
    this.views.dirty = new Uint8Array(Math.ceil(this.ram.length / 4096));
    for (const h of this.harts) h.mmu.flush(true);
    return was;
  }

  /** Ends the dirty log. */
  stopDirty(): void { this.views.dirty = undefined; }

  /** Who brings RAM pages in while a snapshot is still being loaded (memory/residency.ts). */
  get residency(): Residency { return this.views.residency; }

  /** A device wrote guest RAM: LR reservations on those bytes are lost, as a store by another hart would do. */
  private clearReservations(pa: number, length: number): void {
    const { i32, u32 } = this.views;
    for (const h of this.harts) {
      const valid = (h.hb + H.RESV_VALID) >> 2;
      if (!i32[valid]) continue;
      const addr = u32[(h.hb + H.RESV_ADDR) >> 2] + u32[(h.hb + H.RESV_ADDR + 4) >> 2] * 2 ** 32;
      if (addr + 8 > pa && addr < pa + length) i32[valid] = 0;
    }
  }

  get stopped(): boolean { return this.stopFlag; }
  set stopped(v: boolean) {
    this.stopFlag = v;
    if (v) for (const h of this.harts) h.requestExit();
  }

  /** Runs hart `hart` for at most `budget` instructions (fewer if it stops, waits or a device needs the host). */
  step(hart: number, budget: number): void {
    const h = this.harts[hart];
    h.clearExit();
    this.runFn(h.hb, budget);
    this.jit?.tick();
  }

  /** Runs the current hart until `budget` instructions have run or `stopped` is set (tests, tools). */
  run(budget: number): void {
    const h = this.harts[this.current];
    let left = budget;
    while (left > 0 && !this.stopFlag) {
      const n = Math.min(left, 1_000_000);
      this.step(this.current, n);
      h.takeInterrupt();
      left -= n;
    }
  }
}
