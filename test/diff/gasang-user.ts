/**
 * The system under test: a minimal "user mode" for gasang's CPU. Loads a static RV64 ELF at its
 * linked (physical) addresses, runs it in M-mode with paging off, and implements the two system
 * calls the differential programs use: write(64) to fd 1 and exit(93). Any other ecall, and any
 * trap (mtvec points at a stub the harness recognises), ends the run with a description.
 */
import { Bus } from '../../src/memory/bus.js';
import { Cpu } from '../../src/cpu/index.js';

export const RAM_BASE = 0x8000_0000;
export const RAM_BYTES = 2 * 1024 * 1024;
/** Where traps land: a single `ecall` the harness writes outside the image. */
export const TRAP_STUB = 0x8018_0000;
const ECALL = 0x0000_0073;

// ELF64 little-endian layout (System V gABI, "ELF Header" and "Program Header").
const EHDR = { MAGIC: 0, CLASS: 4, DATA: 5, MACHINE: 18, ENTRY: 24, PHOFF: 32, PHENTSIZE: 54, PHNUM: 56, SIZE: 64 } as const;
const PHDR = { TYPE: 0, OFFSET: 8, PADDR: 24, FILESZ: 32, MEMSZ: 40, SIZE: 56 } as const;
const PT_LOAD = 1;
const EM_RISCV = 243;

export interface Segment { paddr: number; offset: number; filesz: number; memsz: number }
export interface ElfImage { entry: number; segments: Segment[] }

/** Parses the header and PT_LOAD program headers of a static ELF64 RISC-V executable. */
export function parseElf(elf: Uint8Array): ElfImage {
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.byteLength < EHDR.SIZE || dv.getUint32(EHDR.MAGIC, false) !== 0x7f45_4c46) throw new Error('Not an ELF file');
  if (elf[EHDR.CLASS] !== 2 || elf[EHDR.DATA] !== 1) throw new Error('Not a little-endian ELF64 file');
  if (dv.getUint16(EHDR.MACHINE, true) !== EM_RISCV) throw new Error('Not a RISC-V ELF file');
  const num = (off: number): number => Number(dv.getBigUint64(off, true));
  const phoff = num(EHDR.PHOFF), phentsize = dv.getUint16(EHDR.PHENTSIZE, true), phnum = dv.getUint16(EHDR.PHNUM, true);
  if (phentsize < PHDR.SIZE || phoff + phnum * phentsize > elf.byteLength) throw new Error('Program headers out of bounds');
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (dv.getUint32(p + PHDR.TYPE, true) !== PT_LOAD) continue;
    const seg = { paddr: num(p + PHDR.PADDR), offset: num(p + PHDR.OFFSET), filesz: num(p + PHDR.FILESZ), memsz: num(p + PHDR.MEMSZ) };
    if (seg.offset + seg.filesz > elf.byteLength || seg.filesz > seg.memsz) throw new Error(`Segment ${i} out of bounds`);
    segments.push(seg);
  }
  return { entry: num(EHDR.ENTRY), segments };
}

export interface TrapInfo { cause: bigint; epc: bigint; tval: bigint; insn: number }

export interface GasangResult {
  stdout: Uint8Array;
  /** exit(2) status, or null when the program did not exit. */
  exitCode: number | null;
  /** Set when the program trapped (mcause, mepc, mtval, and the instruction bits at mepc). */
  trap?: TrapInfo;
  /** Anything else that ended the run: an unknown syscall, a bad write, running out of budget. */
  error?: string;
  instructions: number;
}

export interface GasangOptions {
  /** Instruction budget; the run fails if the program has not exited by then. */
  budget?: number;
  /** Edits guest RAM after loading (the harness's own tests use it to plant a fault). */
  patch?: (ram: Uint8Array) => void;
}

/** Runs a static ELF on gasang's CPU until exit, a trap or the instruction budget. */
export async function runGasang(elf: Uint8Array, opts: GasangOptions = {}): Promise<GasangResult> {
  const budget = opts.budget ?? 50_000_000;
  const image = parseElf(elf);
  const cpu = await Cpu.create({ ramBytes: RAM_BYTES, harts: 1, bus: new Bus() });
  const ram = cpu.ram;
  for (const s of image.segments) {
    const at = s.paddr - RAM_BASE;
    if (at < 0 || at + s.memsz > ram.length) throw new Error(`Segment at 0x${s.paddr.toString(16)} is outside RAM`);
    ram.set(elf.subarray(s.offset, s.offset + s.filesz), at);
    ram.fill(0, at + s.filesz, at + s.memsz);
  }
  const ramView = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  ramView.setUint32(TRAP_STUB - RAM_BASE, ECALL, true);
  opts.patch?.(ram);

  const h = cpu.hart(0);
  h.pc = image.entry;
  h.csrWrite(0x300, 1n << 13n); // mstatus.FS = Initial
  h.csrWrite(0x305, BigInt(TRAP_STUB)); // mtvec

  const chunks: Uint8Array[] = [];
  const result: GasangResult = { stdout: new Uint8Array(0), exitCode: null, instructions: 0 };
  const fail = (error: string): boolean => { result.error ??= error; cpu.stopped = true; return true; };
  cpu.onEcall = hart => {
    if (hart.pc === TRAP_STUB) {
      const epc = hart.csrRead(0x341);
      const off = Number(epc) - RAM_BASE;
      const insn = off >= 0 && off + 4 <= ram.length ? ramView.getUint32(off, true) : 0;
      result.trap = { cause: hart.csrRead(0x342), epc, tval: hart.csrRead(0x343), insn };
      cpu.stopped = true;
      return true;
    }
    const nr = Number(hart.x(17));
    if (nr === 64) {
      const fd = hart.x(10), buf = Number(hart.x(11)) - RAM_BASE, len = Number(hart.x(12));
      if (fd !== 1n) return fail(`write to fd ${fd}`);
      if (buf < 0 || len < 0 || buf + len > ram.length) return fail(`write of ${len} bytes at 0x${hart.x(11).toString(16)} outside RAM`);
      chunks.push(ram.slice(buf, buf + len));
      hart.setX(10, BigInt(len));
      return true;
    }
    if (nr === 93) {
      result.exitCode = Number(BigInt.asIntN(32, hart.x(10)));
      cpu.stopped = true;
      return true;
    }
    return fail(`unexpected syscall ${nr} at pc 0x${hart.pc.toString(16)}`);
  };
  const before = h.instret();
  cpu.run(budget);
  result.instructions = h.instret() - before;
  if (!cpu.stopped) result.error ??= `still running after ${budget} instructions (pc 0x${h.pc.toString(16)})`;
  result.stdout = Buffer.concat(chunks);
  return result;
}
