// The differential harness itself: the generator keeps its invariants, and a fault planted in
// gasang's copy of a program is found, pinned to its unit and explained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DATA_BASE, GROUPS, IMAGE_LIMIT, TEXT_BASE, makeSequence, programText } from './generate.js';
import { bisect, check, explain } from './harness.js';
import { build, missingTools } from './qemu.js';
import { parseElf } from './gasang-user.js';

const missing = missingTools();
if (missing.length && process.env.CI) throw new Error(`Differential tests need ${missing.join(', ')} (see .ci/install-host-tools.sh)`);
const skip = missing.length ? `needs ${missing.join(', ')}` : false;

test('a sequence is a pure function of group, seed and index', () => {
  for (const g of GROUPS) {
    assert.deepEqual(makeSequence(g, 5, 3), makeSequence(g, 5, 3));
    assert.notDeepEqual(makeSequence(g, 5, 3).units, makeSequence(g, 5, 4).units);
  }
});

/** Instructions whose first operand is not a destination register. */
const NO_RD = /^(s[bhwd]|fs[wd]|c\.s[wd]|c\.s[wd]sp|c\.fsd|c\.fsdsp|b\w*|c\.beqz|c\.bnez|c\.j|j|c\.jr|c\.jalr|fence(\.i|\.tso)?|c\.nop|c\.addi16sp)$/;

test('units never write sp or s11, and c.addi16sp moves come back', () => {
  for (const g of GROUPS) {
    for (let i = 0; i < 150; i++) {
      for (const unit of makeSequence(g, 9, i).units) {
        let spDelta = 0;
        for (const line of unit) {
          const m = /^([\w.]+)\s+([\w]+)/.exec(line);
          if (!m || line.endsWith(':')) continue;
          const [, op, first] = m;
          if (op === 'c.addi16sp') spDelta += Number(line.split(',')[1]);
          else if (!NO_RD.test(op) && !/^(fsrmi|fsflagsi) \d+$/.test(line)) {
            assert.ok(first !== 'sp' && first !== 's11', `${g}: ${line}`);
          }
        }
        assert.equal(spDelta, 0, unit.join('; '));
      }
    }
  }
});

test('every batch program names its sequences', () => {
  const text = programText([makeSequence('int', 1, 0), makeSequence('fp', 1, 7)]);
  assert.match(text, /# int seed 1 sequence 0\n/);
  assert.match(text, /# fp seed 1 sequence 7\n/);
});

test('the ELF loader finds the linked segments and rejects other files', { skip }, async () => {
  const built = await build(programText([makeSequence('int', 1, 0)]));
  try {
    const image = parseElf(built.elf);
    assert.equal(image.entry, TEXT_BASE);
    assert.ok(image.segments.length >= 2);
    assert.ok(image.segments.every(s => s.paddr >= TEXT_BASE && s.paddr + s.memsz <= 0x8010_0000), 'image inside 0x80000000..0x80100000');
    assert.ok(image.segments.some(s => s.paddr === IMAGE_LIMIT && s.filesz === 0 && s.memsz > DATA_BASE - IMAGE_LIMIT + 768), 'data block segment');
  } finally {
    await built.dispose();
  }
  assert.throws(() => parseElf(new Uint8Array(64)), /Not an ELF file/);
  const elf32 = new Uint8Array(64);
  elf32.set([0x7f, 0x45, 0x4c, 0x46, 1, 1]);
  assert.throws(() => parseElf(elf32), /ELF64/);
});

// xori a2, a0, imm: imm << 20 | rs1 a0 (x10) << 15 | funct3 4 << 12 | rd a2 (x12) << 7 | OP-IMM.
const xori = (imm: number): number => ((imm << 20) | (10 << 15) | (4 << 12) | (12 << 7) | 0x13) >>> 0;
const planted = { ...makeSequence('int', 0, 0), units: [['li a0, 5'], ['xori a2, a0, 0x555'], ['add a4, a2, a0']] };

/** Replaces every 32-bit `from` (at 2-byte alignment) in gasang's RAM with `to`. */
function replace(from: number, to: number): (ram: Uint8Array) => void {
  return ram => {
    const dv = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
    let n = 0;
    for (let i = 0; i + 4 <= 0x10_0000; i += 2) if (dv.getUint32(i, true) === from) { dv.setUint32(i, to, true); n++; }
    assert.ok(n > 0, 'planted instruction not found');
  };
}

test('a wrong result is found and pinned to its instruction', { skip }, async () => {
  const patch = replace(xori(0x555), xori(0x554));
  const bad = await check([planted], { patch });
  assert.equal(bad.length, 1);
  assert.match(bad[0].summary, /^x12 \(a2\): qemu 0x0000000000000550, gasang 0x0000000000000551$/);
  const culprit = await bisect(planted, { patch });
  assert.equal(culprit.unit, 1);
  const text = await explain(bad[0], { patch });
  assert.match(text, /first differing unit: #1 of 3\n\s+xori a2, a0, 0x555\n\s+operands before it \(qemu\): a0=0x0000000000000005, a2=/);
  assert.match(text, /GASANG_DIFF_GROUP=int GASANG_DIFF_SEED=0 GASANG_DIFF_INDEX=0/);
});

test('a trap in gasang is reported with its cause and unit', { skip }, async () => {
  const patch = replace(xori(0x555), 0xffff_ffff);
  const bad = await check([planted], { patch });
  assert.equal(bad.length, 1);
  assert.match(bad[0].summary, /mcause 2 \(illegal instruction\).*instruction 0xffffffff/);
  assert.equal((await bisect(planted, { patch })).unit, 1);
});
