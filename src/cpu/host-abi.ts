/**
 * The calls between generated WebAssembly and the host. All arguments are i32 so no BigInt crosses
 * the boundary; 64-bit values travel through the hart's SCRATCH slots. Every call returns a status:
 * 0 = carry on, non-zero = pc was redirected (a trap was taken, or xRET) and must be reloaded.
 */
import { Code, T, type FuncType, type ModuleBuilder } from '../wasm/builder.js';
import { Op } from '../wasm/opcodes.js';
import type { Helper } from '../isa/emit.js';
import type { HostUnit } from '../isa/types.js';

export const enum HostFn { FetchSlow = 0, LoadSlow = 1, StoreSlow = 2, RamAddrSlow = 3, Exec = 4, Trap = 5, Compile = 6 }

const i32s = (n: number): FuncType => ({ params: Array<T>(n).fill(T.I32), results: [T.I32] });

/** In HostFn order. */
export const HOST_IMPORTS: readonly { name: string; type: FuncType }[] = [
  { name: 'fetchSlow', type: i32s(1) },   // (hart) insn -> SCRATCH_VAL
  { name: 'loadSlow', type: i32s(2) },    // (hart, LoadKind) addr SCRATCH_ADDR -> SCRATCH_VAL
  { name: 'storeSlow', type: i32s(2) },   // (hart, size) addr SCRATCH_ADDR, value SCRATCH_VAL
  { name: 'ramAddrSlow', type: i32s(3) }, // (hart, Access [| RAM_ADDR_READS], size) -> host address in SCRATCH_VAL
  { name: 'exec', type: i32s(4) },        // (hart, unit, op, insn)
  { name: 'trap', type: i32s(2) },        // (hart, cause) tval in SCRATCH_VAL
  { name: 'compile', type: i32s(2) },     // (hart, jump-cache entry) translate the entry's block
];

/** Or'ed into ramAddrSlow's Access when a store (an AMO) also reads: load triggers apply to it too. */
export const RAM_ADDR_READS = 4;

/** Type of translated blocks: (hart) -> status, as host calls. */
export const BLOCK_TYPE: FuncType = { params: [T.I32], results: [T.I32] };

export const UNIT_NUMBER: Record<HostUnit, number> = { fp: 0, csr: 1, system: 2 };

/** Defines the wasm helper functions and returns their indexes. */
export function emitHelpers(m: ModuleBuilder): Record<Helper, number> {
  const type: FuncType = { params: [T.I64, T.I64], results: [T.I64] };
  const mulhu = m.declareFunction(type);
  // High 64 bits of the unsigned 128-bit product, from 32-bit limbs.
  const b = new Code(type, ['a', 'b']);
  for (const n of ['al', 'ah', 'bl', 'bh', 'lh', 'hl', 'mid']) b.local(n, T.I64);
  const lo32 = (x: string): void => { b.get(x).i64(0xffffffff).op(Op.I64And); };
  const hi32 = (x: string): void => { b.get(x).i64(32).op(Op.I64ShrU); };
  lo32('a'); b.set('al'); hi32('a'); b.set('ah'); lo32('b'); b.set('bl'); hi32('b'); b.set('bh');
  b.get('al').get('bh').op(Op.I64Mul).set('lh');
  b.get('ah').get('bl').op(Op.I64Mul).set('hl');
  b.get('al').get('bl').op(Op.I64Mul).i64(32).op(Op.I64ShrU);
  lo32('lh'); b.op(Op.I64Add); lo32('hl'); b.op(Op.I64Add).set('mid');
  b.get('ah').get('bh').op(Op.I64Mul);
  hi32('lh'); b.op(Op.I64Add); hi32('hl'); b.op(Op.I64Add); hi32('mid'); b.op(Op.I64Add);
  m.define(mulhu, b);
  return { mulhu };
}
