/**
 * The one description of the instruction set. Every instruction is a row: its encoding (mask/match),
 * how its operands are cut out of the instruction word (Field), and its semantics. The interpreter,
 * the JIT and the disassembler are all built from these rows.
 */

/** A bit slice of the instruction word: bits [hi:lo] of the word land at bit `to` of the value. */
export type Slice = readonly [hi: number, lo: number, to: number];

/** An operand field: the OR of its slices, then sign-extended from bit `sign` (if given), then + `add`. */
export interface Field {
  readonly slices: readonly Slice[];
  readonly sign?: number;
  readonly add?: number;
}

export interface Operands {
  readonly rd?: Field;
  readonly rs1?: Field;
  readonly rs2?: Field;
  readonly rs3?: Field;
  readonly imm?: Field;
}

export type Ext = 'I' | 'M' | 'A' | 'F' | 'D' | 'C' | 'Zicsr' | 'Zifencei' | 'Zba' | 'Zbb' | 'Zbs' | 'Zicond' | 'priv';

/** Semantics run by the host (TypeScript) rather than emitted as WebAssembly. */
export type HostUnit = 'fp' | 'csr' | 'system';

export interface HostSemantics {
  readonly kind: 'host';
  readonly unit: HostUnit;
  /** Operation number within the unit (e.g. an FpOp value); the unit decodes the word itself. */
  readonly op: number;
}

export interface InsnDef<S = unknown> {
  readonly name: string;
  readonly ext: Ext;
  /** 2 for compressed, 4 otherwise. */
  readonly len: 2 | 4;
  readonly mask: number;
  readonly match: number;
  readonly operands: Operands;
  /** HostSemantics, or emitter semantics (defined in isa/semantics.ts). */
  readonly sem: HostSemantics | S;
}

/** Evaluates a field on an instruction word, in plain TypeScript (decoder, disassembler, JIT constants). */
export function fieldValue(f: Field, word: number): number {
  let v = 0;
  for (const [hi, lo, to] of f.slices) {
    const width = hi - lo + 1;
    v |= ((word >>> lo) & ((1 << width) - 1 | (width === 32 ? -1 : 0))) << to;
  }
  if (f.sign !== undefined) {
    const s = 31 - f.sign;
    v = (v << s) >> s;
  }
  return v + (f.add ?? 0);
}

/** Shorthand for a field made of one slice starting at bit 0. */
export const bits = (hi: number, lo: number, sign = false): Field =>
  sign ? { slices: [[hi, lo, 0]], sign: hi - lo } : { slices: [[hi, lo, 0]] };
