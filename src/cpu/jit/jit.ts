/**
 * The JIT: translates hot guest code, a block at a time, to WebAssembly functions that work on the
 * shared memory in place, using the same instruction rows (and the same emission of loads, stores
 * and host calls) as the interpreter. Blocks are found through a per-hart jump cache the generated
 * interpreter probes; pages holding translated code are kept out of the store TLB so that every
 * write to them reaches the host, which drops their translations.
 */
import { Code, ModuleBuilder, T, type FuncType } from '../../wasm/builder.js';
import type { Helper } from '../../isa/emit.js';
import type { Row } from '../../isa/rv64.js';
import { H, JC_ENTRIES, JC_ENTRY, RAM_BASE, RAM_OFFSET } from '../layout.js';
import { BLOCK_TYPE, HOST_IMPORTS, emitHelpers } from '../host-abi.js';
import { TLB_ENTRIES } from '../mmu/mmu.js';
import type { Views } from '../state.js';
import { decoderFor } from './decode.js';
import { translateBlock } from './translate.js';

/** Blocks compiled together in one module (each module costs V8 a code region). */
const BATCH = Number(process.env.GASANG_JIT_BATCH ?? 64);
/** Longest a translated block waits for its batch to fill before compilation (ms). */
const BATCH_WAIT_MS = 30;
/**
 * Modules compiled one block each when compiling synchronously (every block ready before it first
 * runs). Past this, blocks are batched as in the background mode: each module commits V8 code
 * space of its own, and a boot's ~60,000 one-block modules exhaust it (4 GiB).
 */
const SYNC_MODULES = Number(process.env.GASANG_JIT_SYNC_MODULES ?? 2000);

export interface JitStats {
  /** Blocks translated, wasm bytes and modules made from them. */
  blocks: number; bytes: number; modules: number;
  /** Jump-cache entries pointed at a translation. */
  installs: number;
  /** Pages whose translations were dropped because something wrote to them. */
  invalidations: number;
  /** Hot pcs where nothing could be translated (left to the interpreter). */
  untranslatable: number;
  /** Host time spent translating, and compiling/instantiating on the VM's thread. */
  translateMs: number; compileMs: number;
}

interface Waiter { jce: number; lo: number; hi: number; priv: number; host: number }

/** Blocks translated into one module, compiled together. */
interface Batch {
  m: ModuleBuilder;
  helpers: Record<Helper, number>;
  /** Per function: its key, physical page and that page's generation at translation. */
  keys: string[];
  pages: number[];
  gens: number[];
  /** Jump-cache entries waiting for a block of this batch, by key. */
  waiters: Map<string, Waiter[]>;
  opened: number;
}

export interface JitOptions {
  /** Compile modules on V8's background threads (the interpreter goes on meanwhile) instead of at once. */
  background: boolean;
}

/** (hart, table index) -> status: enters another block by a tail call. */
const CHAIN_TYPE: FuncType = { params: [T.I32, T.I32], results: [T.I32] };

/**
 * The one module that imports the table of blocks and tail-calls into it. Block modules chain
 * through it rather than importing the table themselves: V8 updates every instance that imports a
 * table on each table.set, which would make installing N blocks cost O(N²).
 */
function chainTrampoline(memory: WebAssembly.Memory, table: WebAssembly.Table): WebAssembly.ExportValue {
  const m = new ModuleBuilder(memory.buffer.byteLength / 65536);
  m.importTable('env', 'blocks');
  const fn = m.declareFunction(CHAIN_TYPE, 'chain');
  const b = new Code(CHAIN_TYPE, ['hb', 'index']);
  b.get('hb').get('index').returnCallIndirect(m.typeOf(BLOCK_TYPE));
  m.define(fn, b);
  return new WebAssembly.Instance(new WebAssembly.Module(m.encode()), { env: { mem: memory, blocks: table } }).exports.chain;
}

export class Jit {
  readonly stats: JitStats = { blocks: 0, bytes: 0, modules: 0, installs: 0, invalidations: 0, untranslatable: 0, translateMs: 0, compileMs: 0 };
  /** Guest RAM pages (index from RAM_BASE) that hold translated code. */
  readonly codePages: Uint8Array;
  /** Bumped when a page's translations are dropped, so translations still compiling are discarded. */
  private readonly pageGen: Uint32Array;
  /** Translations by "priv:vpc:pa", and the keys made from each physical page. */
  private readonly blocks = new Map<string, number>();
  private readonly keysByPage = new Map<number, string[]>();
  /** Keys translated and not yet installed (in the open batch or compiling). */
  private readonly translating = new Map<string, Batch>();
  private readonly decode: (word: number) => Row | undefined;
  private readonly hartBases: number[] = [];
  private batch: Batch | undefined;
  private readonly freeSlots: number[] = [];
  /** What block modules import: the host functions and the chaining trampoline. */
  private readonly imports: WebAssembly.Imports;
  private nextSlot = 0;

  constructor(private readonly v: Views, rows: readonly Row[], private readonly table: WebAssembly.Table,
    imports: WebAssembly.Imports, private readonly storeTlbs: () => number[], private readonly opts: JitOptions) {
    this.imports = { ...imports, jit: { chain: chainTrampoline(v.memory, table) } };
    this.codePages = new Uint8Array(Math.ceil(v.ramBytes / 4096));
    this.pageGen = new Uint32Array(this.codePages.length);
    this.decode = decoderFor(rows);
  }

  addHart(hb: number): void { this.hartBases.push(hb); this.flushJumpCache(hb); }

  /** Empties one hart's jump cache (its virtual → block mapping changed). */
  flushJumpCache(hb: number): void {
    const i32 = this.v.i32;
    for (let i = 0; i < JC_ENTRIES; i++) {
      const e = (hb + H.JC + i * JC_ENTRY) >> 2;
      i32[e] = -1; i32[e + 1] = -1; i32[e + 2] = -1;
    }
  }

  /**
   * The interpreter found jump-cache entry `jce` (absolute address) hot: translate its block, or
   * point the entry at an existing translation. Blocks compiled in the background reach the entry
   * when their module is ready.
   */
  request(jce: number): void {
    const i32 = this.v.i32, e = jce >> 2;
    const w: Waiter = { jce, lo: i32[e], hi: i32[e + 1], priv: i32[e + 3], host: i32[e + 5] };
    const pa = w.host - RAM_OFFSET + RAM_BASE;
    const key = `${w.priv}:${w.lo}:${w.hi}:${pa}`;
    const index = this.blocks.get(key);
    if (index !== undefined) { i32[e + 2] = index; this.stats.installs++; return; }
    const batch = this.translating.get(key);
    if (batch) { batch.waiters.get(key)!.push(w); return; }
    const page = Math.floor((pa - RAM_BASE) / 4096);
    const t0 = performance.now();
    const open = this.batch ??= this.newBatch();
    const ok = this.translate((BigInt(w.hi) << 32n) | BigInt(w.lo >>> 0), pa, key, page, open);
    this.stats.translateMs += performance.now() - t0;
    if (!ok) { i32[e + 4] = -0x4000_0000; this.stats.untranslatable++; return; } // never hot again
    this.protect(page);
    this.translating.set(key, open);
    open.waiters.set(key, [w]);
    if (this.compilesAtOnce() || open.keys.length >= BATCH) this.flush();
  }

  private compilesAtOnce(): boolean { return !this.opts.background && this.stats.modules < SYNC_MODULES; }

  /** Called between runs: sends the open batch off once it has waited long enough to be worth a module. */
  tick(): void {
    const batch = this.batch;
    if (batch && performance.now() - batch.opened > BATCH_WAIT_MS) this.flush();
  }

  /** Sends the open batch to compilation (at once, or in the background). */
  flush(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    const t0 = performance.now();
    const bytes = batch.m.encode();
    const t1 = performance.now();
    this.stats.translateMs += t1 - t0;
    this.stats.bytes += bytes.length;
    const atOnce = this.compilesAtOnce();
    this.stats.modules++;
    if (atOnce) {
      this.install(batch, new WebAssembly.Module(bytes));
      this.stats.compileMs += performance.now() - t1;
      return;
    }
    WebAssembly.compile(bytes).then(module => {
      const t2 = performance.now();
      this.install(batch, module);
      this.stats.compileMs += performance.now() - t2;
    }, () => {
      // Not expected (the encoder is tested); the blocks simply stay interpreted.
      for (const k of batch.keys) this.translating.delete(k);
    });
  }

  /** Makes a compiled batch's blocks callable and points the waiting jump-cache entries at them. */
  private install(batch: Batch, module: WebAssembly.Module): void {
    const instance = new WebAssembly.Instance(module, this.imports);
    const i32 = this.v.i32;
    batch.keys.forEach((key, i) => {
      this.translating.delete(key);
      const page = batch.pages[i];
      if (this.pageGen[page] !== batch.gens[i]) return; // its page was written meanwhile
      const index = this.freeSlot();
      this.table.set(index, instance.exports[`b${i}`] as () => number);
      this.blocks.set(key, index);
      const keys = this.keysByPage.get(page);
      if (keys) keys.push(key); else this.keysByPage.set(page, [key]);
      for (const w of batch.waiters.get(key)!) {
        const e = w.jce >> 2;
        if (i32[e] === w.lo && i32[e + 1] === w.hi && i32[e + 3] === w.priv && i32[e + 5] === w.host) { i32[e + 2] = index; this.stats.installs++; }
      }
    });
  }

  /** A free table slot; the table grows in large steps (each grow copies it). Freed slots are reused: no jump-cache entry refers to them any more. */
  private freeSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.nextSlot === this.table.length) this.table.grow(Math.max(1024, this.table.length));
    return this.nextSlot++;
  }

  /** A write reached a page with translated code: forget its blocks. */
  invalidatePage(page: number): void {
    this.codePages[page] = 0;
    this.pageGen[page]++;
    const keys = this.keysByPage.get(page);
    if (keys) {
      for (const k of keys) {
        const index = this.blocks.get(k);
        if (index !== undefined) { this.table.set(index, null); this.freeSlots.push(index); }
        this.blocks.delete(k);
      }
    }
    this.keysByPage.delete(page);
    this.stats.invalidations++;
    for (const hb of this.hartBases) this.flushJumpCache(hb);
  }

  /** Marks a page as code and drops store-TLB entries that would let writes bypass the host. */
  private protect(page: number): void {
    if (this.codePages[page]) return;
    this.codePages[page] = 1;
    const hostPage = this.v.ramOffset(RAM_BASE + page * 4096, 4096);
    const i32 = this.v.i32;
    for (const table of this.storeTlbs()) {
      for (let e = table >> 2, end = e + TLB_ENTRIES * 4; e < end; e += 4) {
        if (i32[e] === -1 && i32[e + 1] === -1) continue;
        if ((((i32[e] << 12) + i32[e + 2]) | 0) === (hostPage | 0)) { i32[e] = -1; i32[e + 1] = -1; }
      }
    }
  }

  /** Translates the block at vpc (physical pa) into the batch; false when nothing there can be translated. */
  private translate(vpc: bigint, pa: number, key: string, page: number, batch: Batch): boolean {
    const off = this.v.ramOffset(pa, 2);
    if (off < 0) return false;
    const { code, count } = translateBlock(this.v.dv, off, pa, vpc, this.decode, batch.helpers, HOST_IMPORTS.length);
    if (count === 0) return false;
    batch.m.define(batch.m.declareFunction(BLOCK_TYPE, `b${batch.keys.length}`), code);
    batch.keys.push(key); batch.pages.push(page); batch.gens.push(this.pageGen[page]);
    this.stats.blocks++;
    return true;
  }

  private newBatch(): Batch {
    const m = new ModuleBuilder(this.v.memory.buffer.byteLength / 65536);
    for (const imp of HOST_IMPORTS) m.importFunction('host', imp.name, imp.type);
    m.importFunction('jit', 'chain', CHAIN_TYPE); // index HOST_IMPORTS.length
    return { m, helpers: emitHelpers(m), keys: [], pages: [], gens: [], waiters: new Map(), opened: performance.now() };
  }
}

