/** Operand fields of the RISC-V base and compressed formats (unpriv spec, "Base Instruction Formats", "Compressed Instruction Formats"). */
import { bits, type Field } from './types.js';

export const RD = bits(11, 7);
export const RS1 = bits(19, 15);
export const RS2 = bits(24, 20);
export const RS3 = bits(31, 27);
export const IMM_I = bits(31, 20, true);
export const IMM_S: Field = { slices: [[31, 25, 5], [11, 7, 0]], sign: 11 };
export const IMM_B: Field = { slices: [[31, 31, 12], [7, 7, 11], [30, 25, 5], [11, 8, 1]], sign: 12 };
export const IMM_U: Field = { slices: [[31, 12, 12]], sign: 31 };
export const IMM_J: Field = { slices: [[31, 31, 20], [19, 12, 12], [20, 20, 11], [30, 21, 1]], sign: 20 };
export const SHAMT6 = bits(25, 20);
export const SHAMT5 = bits(24, 20);
/** A register fixed by the encoding (x0, ra, sp). */
export const reg = (n: number): Field => ({ slices: [], add: n });
export const ZERO_IMM: Field = { slices: [] };

// Compressed: full 5-bit register fields and the 3-bit "prime" fields (x8..x15).
export const C_RD = bits(11, 7);
export const C_RS2 = bits(6, 2);
export const C_RDP = { slices: [[4, 2, 0]], add: 8 } as const satisfies Field;
export const C_RS1P = { slices: [[9, 7, 0]], add: 8 } as const satisfies Field;
export const C_RS2P = C_RDP;

export const C_IMM6: Field = { slices: [[12, 12, 5], [6, 2, 0]], sign: 5 };
export const C_UIMM6: Field = { slices: [[12, 12, 5], [6, 2, 0]] };
export const C_LUI: Field = { slices: [[12, 12, 17], [6, 2, 12]], sign: 17 };
export const C_ADDI16SP: Field = { slices: [[12, 12, 9], [6, 6, 4], [5, 5, 6], [4, 3, 7], [2, 2, 5]], sign: 9 };
export const C_ADDI4SPN: Field = { slices: [[12, 11, 4], [10, 7, 6], [6, 6, 2], [5, 5, 3]] };
export const C_LW: Field = { slices: [[12, 10, 3], [6, 6, 2], [5, 5, 6]] };
export const C_LD: Field = { slices: [[12, 10, 3], [6, 5, 6]] };
export const C_LWSP: Field = { slices: [[12, 12, 5], [6, 4, 2], [3, 2, 6]] };
export const C_LDSP: Field = { slices: [[12, 12, 5], [6, 5, 3], [4, 2, 6]] };
export const C_SWSP: Field = { slices: [[12, 9, 2], [8, 7, 6]] };
export const C_SDSP: Field = { slices: [[12, 10, 3], [9, 7, 6]] };
export const C_J: Field = {
  slices: [[12, 12, 11], [11, 11, 4], [10, 9, 8], [8, 8, 10], [7, 7, 6], [6, 6, 7], [5, 3, 1], [2, 2, 5]],
  sign: 11,
};
export const C_B: Field = { slices: [[12, 12, 8], [11, 10, 3], [6, 5, 6], [4, 3, 1], [2, 2, 5]], sign: 8 };
