/**
 * Translation of one guest block to one WebAssembly function, from the same instruction rows and
 * the same memory-access emission as the interpreter.
 *
 * Integer registers the block touches live in wasm locals (machine registers once V8 optimises):
 * loaded once on entry, stored back on every exit. A block whose last instruction jumps back to its
 * own start loops inside the function (registers stay in locals) until the run's budget is spent or
 * the host asked the hart to stop, so tight guest loops never leave WebAssembly.
 *
 * Layout of a block function (hb) -> status:
 *   ic = INSTRET; <load cached registers>
 *   block $exit
 *     loop $again
 *       <instructions; a trap or redirect does `br $exit`>
 *       pc = npc; INSTRET = ic + n; <store registers>
 *       if npc == start && budget left && no exit request: ic += n; br $again
 *       if the jump cache has npc's block: tail-call it (through the chain trampoline)
 *       return 0
 *     end
 *   end
 *   <store registers>; return 1
 * The loads and stores of the register set are spliced in once the whole block is known.
 */
import { Code, T } from '../../wasm/builder.js';
import { Op } from '../../wasm/opcodes.js';
import { fieldValue, type Field, type HostSemantics } from '../../isa/types.js';
import type { Helper, RegOperand } from '../../isa/emit.js';
import type { Row } from '../../isa/rv64.js';
import { H } from '../layout.js';
import { BLOCK_TYPE } from '../host-abi.js';
import { EMIT_LOCALS, WasmEmit } from '../wasm-emit.js';
import { isHost } from './decode.js';

/** Longest block, in instructions. */
export const MAX_BLOCK = 32;

/** Where a register save or reload is spliced in, once the block's register set is known. */
interface Patch { at: number; kind: 'save' | 'load' }

class JitEmit extends WasmEmit {
  word_ = 0;
  pc_ = 0n;
  row!: Row;
  /** Instructions completed before the current one in this block. */
  done = 0;
  jumped = false;
  /** Registers held in locals (bit r), and those the block writes. */
  cached = 0;
  written = 0;
  readonly patches: Patch[] = [];

  private reg(op: RegOperand): number {
    const f = this.row.operands[op];
    if (!f) throw new Error(`${this.row.name} has no ${op}`);
    return fieldValue(f, this.word_);
  }
  private local(r: number): string {
    if (!(this.cached & (1 << r))) { this.cached |= 1 << r; this.b.local(`r${r}`, T.I64); }
    return `r${r}`;
  }
  x(op: RegOperand): void {
    const r = this.reg(op);
    if (r === 0) this.b.i64(0); else this.b.get(this.local(r));
  }
  setX(op: RegOperand, value: () => void): void {
    const r = this.reg(op);
    if (r === 0) return;
    value(); this.b.set(this.local(r));
    this.written |= 1 << r;
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
  protected redirected(): void { this.b.br('exit'); }

  /** Semantics run in TypeScript read and write registers in memory: store before, reload after. */
  override host(sem: HostSemantics): void {
    this.patch('save');
    super.host(sem);
    this.patch('load');
  }

  patch(kind: Patch['kind']): void { this.patches.push({ at: this.b.bytes.length, kind }); }

  storeState(pc: bigint | 'npc', done: number): void {
    const b = this.b;
    b.get('hb'); if (pc === 'npc') b.get('npc'); else b.i64(BigInt.asIntN(64, pc)); b.mem(Op.I64Store, H.PC);
    b.get('hb').get('ic').i64(done).op(Op.I64Add).mem(Op.I64Store, H.INSTRET);
  }

  /** Emits the save or reload of every cached register (written ones only, for saves) and returns its bytes. */
  registerCode(kind: Patch['kind']): number[] {
    const b = this.b, start = b.bytes.length;
    const set = kind === 'save' ? this.written : this.cached;
    for (let r = 1; r < 32; r++) {
      if (!(set & (1 << r))) continue;
      if (kind === 'save') b.get('hb').get(`r${r}`).mem(Op.I64Store, H.X + r * 8);
      else b.get('hb').mem(Op.I64Load, H.X + r * 8).set(`r${r}`);
    }
    return b.bytes.splice(start);
  }
}

export interface Translation {
  code: Code;
  /** Guest instructions in the block (0: nothing translatable at that address). */
  count: number;
}

/**
 * Translates the block at virtual `vpc` whose bytes start at `off` in `ram` (physical address `pa`);
 * it ends at a jump or branch, a system/CSR instruction, the end of the page, MAX_BLOCK instructions,
 * or an undecodable word (left to the interpreter, which raises the exception).
 */
export function translateBlock(ram: DataView, off: number, pa: number, vpc: bigint, decode: (word: number) => Row | undefined,
  helpers: Record<Helper, number>, chainFn: number): Translation {
  const pageEnd = off + (4096 - (pa % 4096));
  const b = new Code(BLOCK_TYPE, ['hb']);
  for (const [n, t] of [['npc', T.I64], ['ic', T.I64], ...EMIT_LOCALS] as const) b.local(n, t);
  const e = new JitEmit(b, helpers);
  b.get('hb').mem(Op.I64Load, H.INSTRET).set('ic');
  e.patch('load');
  b.block('exit');
  b.loop('again');
  let p = off, count = 0;
  for (; count < MAX_BLOCK; count++) {
    if (p + 2 > pageEnd) break;
    let word = ram.getUint16(p, true);
    if ((word & 3) === 3) {
      if (p + 4 > pageEnd) break;
      word |= ram.getUint16(p + 2, true) << 16;
    }
    const row = decode(word);
    if (!row) break;
    e.row = row; e.word_ = word; e.pc_ = vpc + BigInt(p - off); e.len = row.len; e.done = count; e.jumped = false;
    b.i64(BigInt.asIntN(64, e.pc_ + BigInt(row.len))).set('npc');
    if (isHost(row)) e.host(row.sem as HostSemantics); else (row.sem as (e: WasmEmit) => void)(e);
    p += row.len;
    if (e.jumped || (isHost(row) && (row.sem as HostSemantics).unit !== 'fp')) { count++; break; }
  }
  if (count === 0) return { code: b, count };
  e.storeState('npc', count);
  e.patch('save');
  if (e.jumped) {
    // Loop while the block jumps to itself, within the budget and with no exit request.
    b.get('npc').i64(BigInt.asIntN(64, vpc)).op(Op.I64Eq);
    b.get('ic').i64(2 * count).op(Op.I64Add).get('hb').mem(Op.I64Load, H.BUDGET_END).op(Op.I64LeU).op(Op.I32And);
    b.get('hb').mem(Op.I32Load, H.EXIT).op(Op.I32Eqz).op(Op.I32And);
    b.if();
    b.get('ic').i64(count).op(Op.I64Add).set('ic');
    b.br('again');
    b.end();
  }
  // Chain: go straight on to the next block when the jump cache has it (a tail call, so chains
  // do not grow the stack), within the budget and with no exit request.
  e.jumpCacheLookup('npc', () => {
    b.get('jce').mem(Op.I32Load, H.JC + 8).tee('u0').i32(0).op(Op.I32GeS).op(Op.I32And);
    b.get('ic').i64(count).op(Op.I64Add).get('hb').mem(Op.I64Load, H.BUDGET_END).op(Op.I64LtU).op(Op.I32And);
    b.get('hb').mem(Op.I32Load, H.EXIT).op(Op.I32Eqz).op(Op.I32And);
    b.if();
    b.get('hb').get('u0').returnCall(chainFn);
    b.end();
  });
  b.i32(0).return();
  b.end(); // loop
  b.end(); // exit block
  e.patch('save');
  b.i32(1);
  // Splice register saves and reloads in, last first so earlier offsets stay valid.
  for (let i = e.patches.length - 1; i >= 0; i--) {
    const { at, kind } = e.patches[i];
    b.bytes.splice(at, 0, ...e.registerCode(kind));
  }
  return { code: b, count };
}
