// What the default differential run covers: every RV64GC, Zba, Zbb and Zbs instruction (each FP rounding-mode
// instruction with every static mode and dyn, each atomic with every aq/rl combination, every
// compressed form), checked on the assembler's output with objdump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GROUPS, bodyText } from './generate.js';
import { DEFAULT_COUNT, DEFAULT_SEEDS, sequences } from './harness.js';
import { MARCH, TOOLS, missingTools } from './qemu.js';

const run = promisify(execFile);
const missing = missingTools();
if (missing.length && process.env.CI) throw new Error(`Differential tests need ${missing.join(', ')} (see .ci/install-host-tools.sh)`);
const skip = missing.length ? `needs ${missing.join(', ')}` : false;

const words = (s: string): string[] => s.trim().split(/\s+/);
const RV64I = words(`lui auipc jal jalr beq bne blt bge bltu bgeu lb lh lw ld lbu lhu lwu sb sh sw sd
  addi slti sltiu xori ori andi slli srli srai add sub sll slt sltu xor srl sra or and fence fence.tso fence.i
  addiw slliw srliw sraiw addw subw sllw srlw sraw csrrw csrrs csrrc csrrwi csrrsi csrrci`);
const RV64M = words('mul mulh mulhsu mulhu div divu rem remu mulw divw divuw remw remuw');
const ATOMIC = ['lr', 'sc', 'amoswap', 'amoadd', 'amoxor', 'amoand', 'amoor', 'amomin', 'amomax', 'amominu', 'amomaxu']
  .flatMap(op => ['w', 'd'].flatMap(w => ['', '.aq', '.rl', '.aqrl'].map(o => `${op}.${w}${o}`)));
const FD = ['s', 'd'].flatMap(p => words(`fadd fsub fmul fdiv fsqrt fmin fmax fsgnj fsgnjn fsgnjx fmadd fmsub fnmsub fnmadd
  fclass feq flt fle fcvt.w fcvt.wu fcvt.l fcvt.lu`).map(op => `${op}.${p}`)
  .concat(['w', 'wu', 'l', 'lu'].map(i => `fcvt.${p}.${i}`)))
  .concat(words('fcvt.s.d fcvt.d.s fmv.x.w fmv.w.x fmv.x.d fmv.d.x flw fsw fld fsd'));
/** c.ebreak is left out: it traps by design. */
const RVC = words(`c.addi4spn c.fld c.lw c.ld c.fsd c.sw c.sd c.nop c.addi c.addiw c.li c.addi16sp c.lui c.srli c.srai
  c.andi c.sub c.xor c.or c.and c.subw c.addw c.j c.beqz c.bnez c.slli c.fldsp c.lwsp c.ldsp c.jr c.mv c.jalr c.add
  c.fsdsp c.swsp c.sdsp`);
const ZB = words(`add.uw sh1add sh2add sh3add sh1add.uw sh2add.uw sh3add.uw slli.uw andn orn xnor clz clzw ctz ctzw
  cpop cpopw max maxu min minu sext.b sext.h zext.h rol rolw ror rori roriw rorw orc.b rev8 bclr bclri bext bexti binv binvi
  bset bseti`);
/** Instructions with a rounding-mode field that objdump shows (dyn shows as no suffix). */
const ROUNDED = ['s', 'd'].flatMap(p => words('fadd fsub fmul fdiv fsqrt fmadd fmsub fnmsub fnmadd fcvt.w fcvt.wu fcvt.l fcvt.lu')
  .map(op => `${op}.${p}`)).concat(words('fcvt.s.w fcvt.s.wu fcvt.s.l fcvt.s.lu fcvt.d.l fcvt.d.lu fcvt.s.d'));
const MODES = ['rne', 'rtz', 'rdn', 'rup', 'rmm', 'dyn'];

test('the default run covers every RV64GC, Zba, Zbb and Zbs instruction', { skip }, async () => {
  const seen = new Set<string>();
  const dir = await mkdtemp(join(tmpdir(), 'gasang-cov-'));
  try {
    for (const group of GROUPS) {
      const bodies = DEFAULT_SEEDS.flatMap(seed => sequences(group, seed, DEFAULT_COUNT).map(bodyText));
      const src = join(dir, `${group}.S`), obj = join(dir, `${group}.o`), elf = join(dir, `${group}.elf`);
      await writeFile(src, `.option norelax\n.text\n${bodies.join('\n')}\n`);
      await run(TOOLS.as, [`-march=${MARCH}`, '-o', obj, src], { maxBuffer: 64 << 20 });
      // Linked and stripped: objdump is slow to symbolise thousands of local labels.
      await run(TOOLS.ld, ['-s', '--no-relax', '-e', '0', '-Ttext=0x80001000', '-o', elf, obj], { maxBuffer: 64 << 20 });
      const { stdout } = await run(TOOLS.objdump, ['-d', '-M', 'no-aliases', elf], { maxBuffer: 512 << 20 });
      for (const line of stdout.split('\n')) {
        const m = /^\s*[0-9a-f]+:\s+[0-9a-f]+\s+(\S+)\s*(\S*)/.exec(line);
        if (!m) continue;
        const [, op, args] = m;
        if (op === 'c.addi' && args === 'zero,0') { seen.add('c.nop'); continue; }
        seen.add(op);
        if (ROUNDED.includes(op)) {
          const last = args.split(',').pop() ?? '';
          seen.add(`${op} ${MODES.includes(last) ? last : 'dyn'}`);
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const want = [...RV64I, ...RV64M, ...ATOMIC, ...FD, ...RVC, ...ZB, ...ROUNDED.flatMap(op => MODES.map(m => `${op} ${m}`))];
  const absent = want.filter(w => !seen.has(w));
  assert.deepEqual(absent, [], `never generated: ${absent.join(', ')}`);
});
