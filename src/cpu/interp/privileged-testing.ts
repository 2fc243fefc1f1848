/**
 * Test support for privileged-architecture tests (interp/privileged, mmu, csr): a runner whose
 * `ecall` traps as the spec says unless a7 = HALT (then the run stops, in any mode), assembler
 * macros to enter S/U mode and open PMP, and a trap handler that logs (cause, tval, epc) and resumes.
 */
import { Bus } from '../../memory/bus.js';
import { Cpu } from '../cpu.js';
import type { Hart } from '../hart.js';
import { assemble, CODE_BASE, DATA_BASE } from '../testing/asm.js';

export { CODE_BASE, DATA_BASE };
export const HALT = 0x5a17;
/** Where `record` handlers log their traps (s11 points past the last entry). */
export const LOG = 0x8018_0000;
export const RAM_BYTES = 8 << 20;

/** mstatus bits. */
export const MS = {
  SIE: 1n << 1n, MIE: 1n << 3n, SPIE: 1n << 5n, MPIE: 1n << 7n, SPP: 1n << 8n, MPP: 3n << 11n, FS: 3n << 13n,
  MPRV: 1n << 17n, SUM: 1n << 18n, MXR: 1n << 19n, TVM: 1n << 20n, TW: 1n << 21n, TSR: 1n << 22n, SD: 1n << 63n,
} as const;
export const INTERRUPT = 1n << 63n;

/**
 * Prepended to every program. Handlers use t5, t6 and s11 only; `halt` uses a7.
 *   halt                 stop the run (from any mode)
 *   enter MODE, LABEL    mret to MODE (0 U, 1 S) at LABEL (+ OFFSET, for aliases)
 *   pmp_all              PMP entry 15 = NAPOT over everything, RWX (S/U need a matching entry)
 *   record NAME, x       an x-mode (m or s) handler at NAME: logs cause, tval, epc and resumes
 *                        at epc+4 (at ra for fetch faults); halts on interrupts
 */
export const PRELUDE = `
.option norvc
.macro halt
  li a7, ${HALT}
  ecall
.endm
.macro enter mode, target, offset=0
  li t0, 3 << 11
  csrc mstatus, t0
  li t0, \\mode << 11
  csrs mstatus, t0
  la t0, \\target
  li t1, \\offset
  add t0, t0, t1
  csrw mepc, t0
  mret
.endm
.macro pmp_all
  li t0, -1
  csrw pmpaddr15, t0
  li t0, 0x1f << 56
  csrs pmpcfg2, t0
.endm
.macro record name, x
.align 2
\\name:
  csrr t6, \\x\\()cause
  bltz t6, 9f
  sd t6, 0(s11)
  csrr t6, \\x\\()tval
  sd t6, 8(s11)
  csrr t6, \\x\\()epc
  sd t6, 16(s11)
  addi s11, s11, 24
  csrr t5, \\x\\()cause
  addi t5, t5, -1
  beqz t5, 8f
  addi t5, t5, -11
  beqz t5, 8f
  addi t6, t6, 4
  j 7f
8:
  mv t6, ra
7:
  csrw \\x\\()epc, t6
  \\x\\()ret
9:
  halt
.endm
  li s11, ${LOG}
`;

export interface Machine {
  cpu: Cpu;
  hart: Hart;
  /** Runs until halt, WFI with nothing to wake it, or the budget. */
  run(budget?: number): void;
  rd64(pa: number): bigint;
  wr64(pa: number, v: bigint): void;
  /** Traps logged by `record` handlers. */
  log(): { cause: bigint; tval: bigint; epc: bigint }[];
}

const binaries = new Map<string, Uint8Array>();

/** Assembles PRELUDE + source at CODE_BASE, runs `setup`, then runs (unless `run: false`). */
export async function boot(source: string, setup?: (m: Machine) => void, opts: { run?: boolean; budget?: number } = {}): Promise<Machine> {
  const cpu = await Cpu.create({ ramBytes: RAM_BYTES, harts: 1, bus: new Bus() });
  const full = PRELUDE + source;
  let bin = binaries.get(full);
  if (!bin) { bin = assemble(full); binaries.set(full, bin); }
  cpu.ram.set(bin, 0);
  const hart = cpu.hart(0);
  hart.pc = CODE_BASE;
  hart.csrWrite(0x300, 1n << 13n); // FS = Initial, as runAsm
  const dv = new DataView(cpu.ram.buffer, cpu.ram.byteOffset, cpu.ram.byteLength);
  cpu.onEcall = h => {
    if (h.x(17) !== BigInt(HALT)) return false;
    cpu.stopped = true;
    return true;
  };
  const m: Machine = {
    cpu, hart,
    run(budget = 20_000) {
      // As the board's loop (machine/virt.ts): wake, take a pending interrupt, then run.
      for (let i = 0; i < 10 && !cpu.stopped; i++) {
        if (hart.waiting && hart.wakeable()) hart.waiting = false;
        if (hart.waiting) break;
        hart.takeInterrupt();
        cpu.step(0, budget);
      }
    },
    rd64: pa => dv.getBigUint64(pa - CODE_BASE, true),
    wr64: (pa, v) => dv.setBigUint64(pa - CODE_BASE, BigInt.asUintN(64, v), true),
    log() {
      const n = Number(hart.x(27) - BigInt(LOG)) / 24;
      return Array.from({ length: n }, (_, i) => ({
        cause: m.rd64(LOG + 24 * i), tval: m.rd64(LOG + 24 * i + 8), epc: m.rd64(LOG + 24 * i + 16),
      }));
    },
  };
  setup?.(m);
  if (opts.run !== false) m.run(opts.budget);
  return m;
}

/** Encoding of a CSR instruction (funct3 1..3 = csrrw/s/c, 5..7 immediate forms). */
export const csrInsn = (funct3: number, rd: number, csr: number, rs1: number): bigint =>
  BigInt(((csr << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x73) >>> 0);
