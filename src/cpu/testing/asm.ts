/**
 * Test support: assembles RISC-V source with Debian's cross binutils and runs it on a bare Cpu in
 * M-mode at RAM_BASE, stopping at `ecall`. Lets unit tests state programs the way the spec does.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus } from '../../memory/bus.js';
import { Cpu } from '../cpu.js';
import type { Hart } from '../hart.js';

export const CODE_BASE = 0x8000_0000;
/** A scratch data area tests may use (guest physical). */
export const DATA_BASE = 0x8010_0000;

export function assemble(source: string, march = 'rv64gc'): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-asm-'));
  try {
    writeFileSync(join(dir, 'a.S'), `.option norelax\n.globl _start\n_start:\n${source}\n`);
    execFileSync('riscv64-linux-gnu-as', [`-march=${march}`, '-o', join(dir, 'a.o'), join(dir, 'a.S')]);
    execFileSync('riscv64-linux-gnu-ld', ['-Ttext=0x80000000', '-o', join(dir, 'a.elf'), join(dir, 'a.o')]);
    execFileSync('riscv64-linux-gnu-objcopy', ['-O', 'binary', '-j', '.text', join(dir, 'a.elf'), join(dir, 'a.bin')]);
    return readFileSync(join(dir, 'a.bin'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Run { cpu: Cpu; hart: Hart }

/** Runs `source` until its first ecall (or `budget` instructions); FP is on (mstatus.FS = Initial). */
export async function runAsm(source: string, opts: { budget?: number; setup?: (h: Hart) => void; march?: string } = {}): Promise<Run> {
  const cpu = await Cpu.create({ ramBytes: 4 * 1024 * 1024, harts: 1, bus: new Bus() });
  cpu.ram.set(assemble(source, opts.march), 0);
  const hart = cpu.hart(0);
  hart.pc = CODE_BASE;
  hart.csrWrite(0x300, 1n << 13n);
  opts.setup?.(hart);
  cpu.onEcall = () => { cpu.stopped = true; return true; };
  cpu.run(opts.budget ?? 100_000);
  return { cpu, hart };
}

/** x[i] as a signed bigint. */
export const sx = (h: Hart, i: number): bigint => BigInt.asIntN(64, h.x(i));
