/**
 * The JIT: translates hot guest code, a block at a time, to WebAssembly functions that work on the
 * shared memory in place, using the same instruction rows (and the same emission of loads, stores
 * and host calls) as the interpreter. Blocks are found through a per-hart jump cache the generated
 * interpreter probes; pages holding translated code are kept out of the store TLB so that every
 * write to them reaches the host, which drops their translations.
 */
import { Code, ModuleBuilder, T } from '../../wasm/builder.js';
import { Op } from '../../wasm/opcodes.js';
import { fieldValue, type Field, type HostSemantics } from '../../isa/types.js';
import type { Helper, RegOperand } from '../../isa/emit.js';
import type { Row } from '../../isa/rv64.js';
import { H, JC_ENTRIES, JC_ENTRY, RAM_BASE } from '../layout.js';
import { BLOCK_TYPE, HOST_IMPORTS, emitHelpers } from '../host-abi.js';
import { EMIT_LOCALS, WasmEmit } from '../wasm-emit.js';
import { TLB_ENTRIES } from '../mmu/mmu.js';
import type { Views } from '../state.js';
import { decoderFor, isHost } from './decode.js';

/** Longest block, in instructions. */
const MAX_BLOCK = 32;
/** Blocks compiled together in one module (each module costs V8 a code region). */
const BATCH = Number(process.env.GASANG_JIT_BATCH ?? 64);

interface Batch { m: ModuleBuilder; helpers: Record<Helper, number>; keys: string[] }

export interface JitStats { blocks: number; bytes: number; hits: number; invalidations: number }

class JitEmit extends WasmEmit {
  word_ = 0;
  pc_ = 0n;
  row!: Row;
  /** Instructions completed before the current one in this block. */
  done = 0;
  jumped = false;

  private reg(op: RegOperand): number {
    const f = this.row.operands[op];
    if (!f) throw new Error(`${this.row.name} has no ${op}`);
    return fieldValue(f, this.word_);
  }
  x(op: RegOperand): void {
    const r = this.reg(op);
    if (r === 0) this.b.i64(0); else this.b.get('hb').mem(Op.I64Load, H.X + r * 8);
  }
  setX(op: RegOperand, value: () => void): void {
    const r = this.reg(op);
    if (r === 0) return;
    this.b.get('hb'); value(); this.b.mem(Op.I64Store, H.X + r * 8);
  }
  f(op: RegOperand): void { this.b.get('hb').mem(Op.I64Load, H.F + this.reg(op) * 8); }
  protected fAddr(op: RegOperand): void { this.b.get('hb').i32(this.reg(op) * 8).op(Op.I32Add); }
  imm(): void { this.b.i64(fieldValue(this.row.operands.imm as Field, this.word_)); }
  word(): void { this.b.i64(this.word_ >>> 0); }
  protected insnI32(): void { this.b.i32(this.word_); }
  pc(): void { this.b.i64(BigInt.asIntN(64, this.pc_)); }
  jump(target: () => void): void { target(); this.b.set('npc'); this.jumped = true; }

  /** Writes pc (of the current instruction) and the retired count for the host. */
  protected syncOut(): void { this.storeState(this.pc_, this.done); }
  protected redirected(): void { this.b.i32(1).return(); }

  storeState(pc: bigint | 'npc', done: number): void {
    const b = this.b;
    b.get('hb'); if (pc === 'npc') b.get('npc'); else b.i64(BigInt.asIntN(64, pc)); b.mem(Op.I64Store, H.PC);
    b.get('hb').get('ic').i64(done).op(Op.I64Add).mem(Op.I64Store, H.INSTRET);
  }
}

export class Jit {
  readonly stats: JitStats = { blocks: 0, bytes: 0, hits: 0, invalidations: 0 };
  /** Guest RAM pages (index from RAM_BASE) that hold translated code. */
  readonly codePages: Uint8Array;
  /** Translations by "priv:vpc:ppc", and the keys made from each physical page. */
  private readonly blocks = new Map<string, number>();
  private readonly keysByPage = new Map<number, string[]>();
  private readonly decode: (word: number) => Row | undefined;
  private readonly hartBases: number[] = [];
  /** Translated, not yet compiled: key → physical page. */
  private readonly pending = new Map<string, number>();
  private batch: Batch | undefined;

  constructor(private readonly v: Views, rows: readonly Row[], private readonly table: WebAssembly.Table,
    private readonly imports: WebAssembly.Imports, private readonly storeTlbs: () => number[]) {
    this.codePages = new Uint8Array(Math.ceil(v.ramBytes / 4096));
    this.decode = decoderFor(rows);
  }

  addHart(hb: number): void { this.hartBases.push(hb); this.flushJumpCache(hb); }

  /** Empties one hart's jump cache (its virtual → block mapping changed). */
  flushJumpCache(hb: number): void {
    const i32 = this.v.i32;
    for (let i = 0; i < JC_ENTRIES; i++) {
      const e = (hb + H.JC + i * JC_ENTRY) >> 2;
      i32[e] = -1; i32[e + 1] = -1;
    }
  }

  /**
   * Translates (or finds) the block at the hart's pc, whose instructions start at physical `pa`,
   * and enters it in the jump cache. Returns false when nothing could be translated there.
   */
  enter(hb: number, priv: number, pa: number): boolean {
    const lo = this.v.i32[(hb + H.PC) >> 2], hi = this.v.i32[(hb + H.PC + 4) >> 2];
    const slot = (hb + H.JC + (((lo >>> 1) & (JC_ENTRIES - 1)) * JC_ENTRY)) >> 2;
    const key = `${priv}:${lo}:${hi}:${pa}`;
    const index = this.blocks.get(key);
    if (index === undefined) {
      // Translate into the current batch; it becomes callable when the batch is compiled.
      if (this.pending.has(key)) return false;
      const vpc = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      const page = Math.floor((pa - RAM_BASE) / 4096);
      if (!this.translate(vpc, pa, key, page)) { this.v.i32[slot + 4] = 0; return false; }
      this.protect(page);
      if (this.pending.size >= BATCH) this.flush();
      return false;
    }
    this.stats.hits++;
    const i32 = this.v.i32;
    i32[slot] = lo; i32[slot + 1] = hi; i32[slot + 2] = index; i32[slot + 3] = priv;
    i32[slot + 5] = this.v.ramOffset(pa, 2);
    return true;
  }

  /** Compiles the pending batch of translations into one module and makes them callable. */
  flush(): void {
    const batch = this.batch;
    if (!batch || this.pending.size === 0) return;
    const bytes = batch.m.encode();
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), this.imports);
    const first = this.table.grow(batch.keys.length);
    batch.keys.forEach((key, i) => {
      this.table.set(first + i, instance.exports[`b${i}`] as () => number);
      const p = this.pending.get(key);
      if (p === undefined) return; // its page was written meanwhile
      this.blocks.set(key, first + i);
      const keys = this.keysByPage.get(p);
      if (keys) keys.push(key); else this.keysByPage.set(p, [key]);
    });
    this.stats.bytes += bytes.length;
    this.pending.clear();
    this.batch = undefined;
  }

  /** A write reached a page with translated code: forget its blocks. */
  invalidatePage(page: number): void {
    this.codePages[page] = 0;
    const keys = this.keysByPage.get(page);
    if (keys) {
      for (const k of keys) {
        const index = this.blocks.get(k);
        if (index !== undefined) this.table.set(index, null);
        this.blocks.delete(k);
      }
    }
    this.keysByPage.delete(page);
    for (const [k, p] of this.pending) if (p === page) this.pending.delete(k);
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

  private translate(vpc: bigint, pa: number, key: string, page: number): boolean {
    const off = this.v.ramOffset(pa, 2);
    if (off < 0) return false;
    const pageEnd = pa - (pa % 4096) + 4096;
    const batch = this.batch ??= this.newBatch();
    const fn = batch.m.declareFunction(BLOCK_TYPE, `b${batch.keys.length}`);
    const b = new Code(BLOCK_TYPE, ['hb']);
    for (const [n, t] of [['npc', T.I64], ['ic', T.I64], ...EMIT_LOCALS] as const) b.local(n, t);
    const e = new JitEmit(b, batch.helpers);
    b.get('hb').mem(Op.I64Load, H.INSTRET).set('ic');
    let p = pa, count = 0;
    for (; count < MAX_BLOCK; count++) {
      if (p + 2 > pageEnd) break;
      const o = this.v.ramOffset(p, 2);
      let word = this.v.dv.getUint16(o, true);
      if ((word & 3) === 3) {
        if (p + 4 > pageEnd) break;
        word |= this.v.dv.getUint16(o + 2, true) << 16;
      }
      const row = this.decode(word);
      if (!row) break; // let the interpreter raise the illegal instruction
      e.row = row; e.word_ = word; e.pc_ = vpc + BigInt(p - pa); e.len = row.len; e.done = count; e.jumped = false;
      const next = e.pc_ + BigInt(row.len);
      b.i64(BigInt.asIntN(64, next)).set('npc');
      if (isHost(row)) e.host(row.sem as HostSemantics); else (row.sem as (e: WasmEmit) => void)(e);
      p += row.len;
      if (e.jumped || (isHost(row) && (row.sem as HostSemantics).unit !== 'fp')) { count++; break; }
    }
    if (count === 0) {
      // Nothing translatable here: a stub that hands straight back (never entered in the cache).
      b.i32(0);
      batch.m.define(fn, b);
      batch.keys.push('');
      return false;
    }
    e.storeState('npc', count);
    b.i32(0);
    batch.m.define(fn, b);
    batch.keys.push(key);
    this.pending.set(key, page);
    this.stats.blocks++;
    return true;
  }

  private newBatch(): Batch {
    const m = new ModuleBuilder(this.v.memory.buffer.byteLength / 65536);
    for (const imp of HOST_IMPORTS) m.importFunction('host', imp.name, imp.type);
    return { m, helpers: emitHelpers(m), keys: [] };
  }
}

