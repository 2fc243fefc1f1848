/**
 * Random straight-line RV64GC + Zba/Zbb/Zbs programs for differential testing against QEMU.
 *
 * A batch is one assembly file holding many sequences. Each sequence:
 *   1. copies its initial data block from its init record and loads f0..f31, fcsr and every
 *      x register except sp and s11 (which both hold the data block's address) from it;
 *   2. runs its body: a list of units (see insns.ts), forward branches only;
 *   3. stores x1..x31, f0..f31 and fcsr after the data block and writes block + state (one
 *      RECORD_BYTES record) to stdout with write(1, block, RECORD_BYTES).
 * After the last sequence the program calls exit(0). The image is linked inside
 * 0x8000_0000..0x8010_0000 (see LINKER_SCRIPT), as gasang's RAM starts at 0x8000_0000.
 */
import { Rng, deriveSeed } from './prng.js';
import { fregValue, intValue } from './values.js';
import * as I from './insns.js';
import { DATA_BYTES, Gen, RESERVED, X_NAMES, type Unit, type UnitGen } from './insns.js';

/** New groups go last: a group's sequences depend on its index here. */
export const GROUPS = ['int', 'muldiv', 'atomic', 'branch', 'compressed', 'fp', 'mixed', 'bitmanip'] as const;
export type Group = (typeof GROUPS)[number];

/** Data block address: 128 bytes below a page boundary, so misaligned accesses can cross it. */
export const DATA_BASE = 0x800f_df80;
export const TEXT_BASE = 0x8000_1000;
/** Everything the linker places must end below this (the block and its dump area follow). */
export const IMAGE_LIMIT = 0x800f_d000;

/** One dump: data block, x1..x31, f0..f31, fcsr. */
export const REC = { MEM: 0, X: DATA_BYTES, F: DATA_BYTES + 31 * 8, FCSR: DATA_BYTES + 63 * 8, BYTES: DATA_BYTES + 64 * 8 } as const;
export const RECORD_BYTES = REC.BYTES;

export const LINKER_SCRIPT = `ENTRY(_start)
SECTIONS {
  . = 0x${TEXT_BASE.toString(16)};
  .text : { *(.text*) }
  . = ALIGN(4096);
  .data : { *(.data*) *(.sdata*) *(.rodata*) }
  _image_end = .;
  ASSERT(_image_end <= 0x${IMAGE_LIMIT.toString(16)}, "gasang diff: batch image too large")
  . = 0x${IMAGE_LIMIT.toString(16)};
  .dblock (NOLOAD) : { *(.dblock) }
  /DISCARD/ : { *(.comment) *(.note*) *(.riscv.attributes) }
}
`;

const WEIGHTS: Record<Group, readonly (readonly [UnitGen, number])[]> = {
  int: [[I.aluR, 6], [I.aluI, 5], [I.shiftI, 4], [I.upper, 2], [I.liValue, 1], [I.load, 4], [I.store, 4], [I.fence, 0.3]],
  muldiv: [[I.mulDiv, 10], [I.aluR, 1], [I.aluI, 1]],
  atomic: [[I.amo, 8], [I.lrsc, 3], [I.scAlone, 1], [I.load, 1], [I.store, 1]],
  branch: [[I.branch, 6], [I.jump, 3], [I.aluR, 1], [I.aluI, 1]],
  compressed: [[I.compressed, 10], [I.aluR, 1], [I.load, 1]],
  fp: [[I.fArith, 6], [I.fFma, 3], [I.fCvt, 5], [I.fMisc, 4], [I.fCsr, 1.5]],
  mixed: [
    [I.aluR, 3], [I.aluI, 3], [I.shiftI, 2], [I.upper, 1], [I.load, 2], [I.store, 2], [I.mulDiv, 3], [I.amo, 2],
    [I.lrsc, 1], [I.scAlone, 0.3], [I.branch, 2], [I.jump, 1], [I.compressed, 4], [I.fArith, 2], [I.fFma, 1],
    [I.fCvt, 2], [I.fMisc, 2], [I.fCsr, 0.5], [I.fence, 0.1], [I.bitmanip, 2],
  ],
  bitmanip: [[I.bitmanip, 10], [I.aluR, 1], [I.shiftI, 1]],
};

/** Everything needed to rebuild one sequence alone. */
export interface Sequence {
  group: Group;
  seed: number;
  index: number;
  /** x0..x31 initial values (x0, sp and s11 are ignored). */
  x: bigint[];
  f: bigint[];
  fcsr: number;
  mem: Uint8Array;
  units: Unit[];
}

/** The sequence `index` of (group, seed): a pure function of the three, so any one is reproducible alone. */
export function makeSequence(group: Group, seed: number, index: number, units = 48): Sequence {
  const r = new Rng(deriveSeed(seed, GROUPS.indexOf(group), index));
  const g = new Gen(r);
  const x = Array.from({ length: 32 }, (_, i) => (i === 0 ? 0n : intValue(r)));
  const f = Array.from({ length: 32 }, () => fregValue(r));
  const fcsr = (r.below(5) << 5) | r.below(32);
  const mem = new Uint8Array(DATA_BYTES);
  for (let i = 0; i < DATA_BYTES; i += 4) new DataView(mem.buffer).setUint32(i, r.u32(), true);
  const body: Unit[] = [];
  const n = units + r.below(units / 2);
  for (let i = 0; i < n; i++) body.push(r.weighted(WEIGHTS[group])(g));
  return { group, seed, index, x, f, fcsr, mem, units: body };
}

/** A sequence's body as assembly text (for failure messages and reproduction). */
export function bodyText(s: Sequence): string {
  return s.units.map(u => u.map(l => (l.endsWith(':') ? l : `  ${l}`)).join('\n')).join('\n');
}

const hex64 = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

function setup(j: number): string[] {
  const out = [`la t6, .Linit${j}`];
  for (let i = 0; i < DATA_BYTES; i += 8) out.push(`ld t5, ${i}(t6)`, `sd t5, ${i}(s11)`);
  for (let i = 0; i < 32; i++) out.push(`fld f${i}, ${REC.F + 8 * i}(t6)`);
  out.push(`ld t5, ${REC.FCSR}(t6)`, 'fscsr t5');
  for (let i = 1; i < 31; i++) if (!RESERVED.has(i)) out.push(`ld ${X_NAMES[i]}, ${REC.X + 8 * (i - 1)}(t6)`);
  out.push(`ld t6, ${REC.X + 8 * 30}(t6)`);
  return out;
}

function dump(): string[] {
  const out: string[] = [];
  for (let i = 1; i < 32; i++) out.push(`sd x${i}, ${REC.X + 8 * (i - 1)}(s11)`);
  for (let i = 0; i < 32; i++) out.push(`fsd f${i}, ${REC.F + 8 * i}(s11)`);
  out.push('frcsr t0', `sd t0, ${REC.FCSR}(s11)`);
  out.push('li a0, 1', 'mv a1, s11', `li a2, ${RECORD_BYTES}`, 'li a7, 64', 'ecall');
  return out;
}

function initRecord(s: Sequence, j: number): string[] {
  const q: bigint[] = [];
  const dv = new DataView(s.mem.buffer, s.mem.byteOffset, s.mem.byteLength);
  for (let i = 0; i < DATA_BYTES; i += 8) q.push(dv.getBigUint64(i, true));
  for (let i = 1; i < 32; i++) q.push(s.x[i]);
  for (let i = 0; i < 32; i++) q.push(s.f[i]);
  q.push(BigInt(s.fcsr));
  const out = ['.p2align 3', `.Linit${j}:`];
  for (let i = 0; i < q.length; i += 4) out.push(`.quad ${q.slice(i, i + 4).map(hex64).join(', ')}`);
  return out;
}

/** One assembly file running `seqs` in order, one dump record each. */
export function programText(seqs: readonly Sequence[]): string {
  const text: string[] = [
    '.option norelax', '.text', '.globl _start', '_start:',
    `li s11, 0x${DATA_BASE.toString(16)}`, 'mv sp, s11',
  ];
  const data: string[] = ['.data'];
  seqs.forEach((s, j) => {
    text.push(`# ${s.group} seed ${s.seed} sequence ${s.index}`, ...setup(j), `.Lbody${j}:`);
    for (const u of s.units) text.push(...u);
    text.push(...dump());
    data.push(...initRecord(s, j));
  });
  text.push('li a0, 0', 'li a7, 93', 'ecall');
  return [...text, ...data, '.section .dblock,"aw",@nobits', '.space 8192', ''].join('\n');
}
