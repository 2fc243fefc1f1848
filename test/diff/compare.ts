/**
 * Dump records (see generate.ts) and how two of them differ, in words a CPU developer can act on:
 * register names, FP values decoded, fcsr fields spelled out.
 */
import { F_NAMES, X_NAMES } from './insns.js';
import { REC, RECORD_BYTES } from './generate.js';
import type { TrapInfo } from './gasang-user.js';

export interface FieldDiff { field: string; expected: string; actual: string }

/** Splits a program's stdout into records (a trailing partial record is dropped). */
export function records(out: Uint8Array): Uint8Array[] {
  const recs: Uint8Array[] = [];
  for (let o = 0; o + RECORD_BYTES <= out.length; o += RECORD_BYTES) recs.push(out.subarray(o, o + RECORD_BYTES));
  return recs;
}

const word = (rec: Uint8Array, off: number): bigint =>
  new DataView(rec.buffer, rec.byteOffset, rec.byteLength).getBigUint64(off, true);

export const hex = (v: bigint, digits = 16): string => `0x${v.toString(16).padStart(digits, '0')}`;

const view = new DataView(new ArrayBuffer(8));
/** An f register's bits as the value a reader wants to see: boxed binary32 or binary64. */
export function fpValue(bits: bigint): string {
  if (bits >> 32n === 0xffff_ffffn) {
    view.setUint32(0, Number(bits & 0xffff_ffffn), true);
    return `f32 ${fmt(view.getFloat32(0, true), Number(bits & 0xffff_ffffn), 0x7f80_0000, 0x0040_0000)}`;
  }
  view.setBigUint64(0, bits, true);
  return `f64 ${fmt(view.getFloat64(0, true), Number((bits >> 32n) & 0xffff_ffffn), 0x7ff0_0000, 0x0008_0000)}`;
}
function fmt(v: number, hi: number, expMask: number, quietBit: number): string {
  if (!Number.isNaN(v)) return Object.is(v, -0) ? '-0' : String(v);
  return (hi & expMask) === expMask && hi & quietBit ? 'qNaN' : 'sNaN';
}

const FLAGS = ['NX', 'UF', 'OF', 'DZ', 'NV'];
const RM_NAMES = ['rne', 'rtz', 'rdn', 'rup', 'rmm', 'rm5', 'rm6', 'rm7'];
export function fcsrText(v: bigint): string {
  const n = Number(v & 0xffn);
  const flags = FLAGS.filter((_, i) => n & (1 << i)).join('|') || 'none';
  return `${hex(v, 2)} (frm ${RM_NAMES[(n >> 5) & 7]}, flags ${flags})`;
}

/** Name of the 8-byte field at `off` in a record. */
export function fieldName(off: number): string {
  if (off < REC.X) return `mem[+0x${off.toString(16)}]`;
  if (off < REC.F) { const i = (off - REC.X) / 8 + 1; return `x${i} (${X_NAMES[i]})`; }
  if (off < REC.FCSR) { const i = (off - REC.F) / 8; return `f${i} (${F_NAMES[i]})`; }
  return 'fcsr';
}

function show(off: number, v: bigint): string {
  if (off >= REC.FCSR) return fcsrText(v);
  if (off >= REC.F) return `${hex(v)} (${fpValue(v)})`;
  return hex(v);
}

/** Every 8-byte field that differs, in record order. */
export function diffRecords(expected: Uint8Array, actual: Uint8Array): FieldDiff[] {
  const out: FieldDiff[] = [];
  for (let off = 0; off < RECORD_BYTES; off += 8) {
    const e = word(expected, off), a = word(actual, off);
    if (e !== a) out.push({ field: fieldName(off), expected: show(off, e), actual: show(off, a) });
  }
  return out;
}

/** Values of the registers an assembly unit names, read from a record (the state before the unit). */
export function operandValues(lines: readonly string[], before: Uint8Array): string[] {
  const names = new Set<string>();
  for (const line of lines) {
    const ops = line.replace(/^\s*[\w.]+\s*/, '');
    for (const tok of ops.split(/[\s,()]+/)) names.add(tok);
  }
  const out: string[] = [];
  X_NAMES.forEach((n, i) => { if (i > 0 && names.has(n)) out.push(`${n}=${hex(word(before, REC.X + 8 * (i - 1)))}`); });
  F_NAMES.forEach((n, i) => { if (names.has(n)) { const v = word(before, REC.F + 8 * i); out.push(`${n}=${hex(v)} (${fpValue(v)})`); } });
  if (lines.some(l => /\bf[a-z]+\.[sd]\b|fcvt|fs?rm|fflags|fcsr/.test(l))) out.push(`fcsr=${fcsrText(word(before, REC.FCSR))}`);
  if (lines.some(l => /\((?:s11|sp|[a-z]+\d*)\)|\b[ls][bhwd]u?\b|amo|lr\.|sc\.|c\.[fls]/.test(l))) {
    const mem: string[] = [];
    for (let off = 0; off < REC.X; off += 8) mem.push(word(before, off).toString(16).padStart(16, '0'));
    out.push(`mem=${mem.join(' ')}`);
  }
  return out;
}

const CAUSES: Record<number, string> = {
  0: 'instruction address misaligned', 1: 'instruction access fault', 2: 'illegal instruction', 3: 'breakpoint',
  4: 'load address misaligned', 5: 'load access fault', 6: 'store/AMO address misaligned', 7: 'store/AMO access fault',
  11: 'ecall from M-mode', 12: 'instruction page fault', 13: 'load page fault', 15: 'store/AMO page fault',
};
export function trapText(t: TrapInfo): string {
  return `trap: mcause ${t.cause} (${CAUSES[Number(t.cause)] ?? '?'}), mepc ${hex(t.epc, 8)}, mtval ${hex(t.tval)}, instruction ${hex(BigInt(t.insn), 8)}`;
}
