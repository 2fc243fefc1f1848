/**
 * What an instruction's semantics may do, as WebAssembly emission. The interpreter generator
 * implements this with operands decoded at run time; the JIT implements it with operands known at
 * translation time. Semantics never emit a branch to a label of their own outside their own blocks.
 */
import type { Code } from '../wasm/builder.js';
import type { HostSemantics } from './types.js';

export type RegOperand = 'rd' | 'rs1' | 'rs2' | 'rs3';

/** Load kinds: log2(size) | 4 when zero-extended. */
export const enum LoadKind { B = 0, H = 1, W = 2, D = 3, BU = 4, HU = 5, WU = 6 }
export const loadSize = (k: LoadKind): number => 1 << (k & 3);

export const enum Access { Fetch = 0, Load = 1, Store = 2 }

/** Wasm helper functions every generated module carries (see cpu/wasm-helpers.ts). */
export type Helper = 'mulhu';

export interface Emit {
  readonly b: Code;
  /** Length in bytes of the instruction being emitted. */
  readonly len: 2 | 4;
  /** Pushes x[op] as i64. */
  x(op: RegOperand): void;
  /** x[op] = value (i64); writes to x0 are discarded. */
  setX(op: RegOperand, value: () => void): void;
  /** Pushes the raw 64 bits of f[op] as i64. */
  f(op: RegOperand): void;
  /** f[op] = value (raw i64 bits) and marks the FP state dirty. */
  setF(op: RegOperand, value: () => void): void;
  /** Pushes the sign-extended immediate as i64. */
  imm(): void;
  /** Pushes the instruction word (zero-extended, 16 bits for compressed) as i64. */
  word(): void;
  /** Pushes the address of this instruction as i64. */
  pc(): void;
  /** Next pc = value (i64). */
  jump(target: () => void): void;
  /** Pushes the loaded value as i64 (sign- or zero-extended per kind); a fault ends the instruction. */
  load(kind: LoadKind, addr: () => void): void;
  store(size: 1 | 2 | 4 | 8, addr: () => void, value: () => void): void;
  /**
   * Pushes (i32) the host address of a naturally aligned guest RAM access, for atomics: a misaligned
   * address raises an address-misaligned fault, MMIO an access fault, as for a store or load.
   * `readsToo`: a store that also reads (an AMO), for the debug triggers.
   */
  ramAddr(access: Access.Load | Access.Store, size: 4 | 8, addr: () => void, readsToo?: boolean): void;
  /** Pushes (i32) the hart's base address, for state at H.* offsets. */
  hart(): void;
  /** Raises an illegal-instruction exception unless the FP unit is on (mstatus.FS != Off). */
  requireFp(): void;
  /** Raises exception `cause` with tval = value (i64); ends the instruction. */
  trap(cause: number, tval: () => void): void;
  /** Runs semantics implemented in TypeScript; the host may redirect pc or raise a trap. */
  host(sem: HostSemantics): void;
  /** Calls a wasm helper function of the generated module. */
  helper(name: Helper): void;
  /** Scratch locals, free for the duration of one instruction. */
  readonly t64: readonly [string, string, string];
  readonly t32: readonly [string, string];
}
