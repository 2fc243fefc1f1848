/**
 * The oracle side: assembles and links a batch with Debian's cross binutils and runs it under
 * qemu-riscv64-static (user mode), capturing what it writes to stdout.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LINKER_SCRIPT } from './generate.js';

const run = promisify(execFile);

export const TOOLS = {
  as: 'riscv64-linux-gnu-as',
  ld: 'riscv64-linux-gnu-ld',
  objdump: 'riscv64-linux-gnu-objdump',
  qemu: 'qemu-riscv64-static',
} as const;

/** What the programs may use: RV64GC and the bit-manipulation extensions QEMU 7.2 implements (not Zicond). */
export const MARCH = 'rv64gc_zba_zbb_zbs';
/** QEMU 7.2's user-mode default CPU lacks Zb*; the generic rv64 CPU has them as options. */
export const QEMU_CPU = 'rv64,zba=true,zbb=true,zbs=true';

/** The tools that are not on PATH (empty when everything is there). */
export function missingTools(): string[] {
  const missing: string[] = [];
  for (const tool of Object.values(TOOLS)) {
    try { execFileSync(tool, ['--version'], { stdio: 'ignore' }); } catch { missing.push(tool); }
  }
  return missing;
}

export interface Built {
  dir: string;
  elfPath: string;
  elf: Uint8Array;
  /** Removes the temporary directory. */
  dispose(): Promise<void>;
}

/** Assembles and links `asm` (see generate.ts for the layout) in a fresh temporary directory. */
export async function build(asm: string): Promise<Built> {
  const dir = await mkdtemp(join(tmpdir(), 'gasang-diff-'));
  try {
    const src = join(dir, 'prog.S'), obj = join(dir, 'prog.o'), elfPath = join(dir, 'prog.elf'), script = join(dir, 'link.ld');
    await Promise.all([writeFile(src, asm), writeFile(script, LINKER_SCRIPT)]);
    await run(TOOLS.as, [`-march=${MARCH}`, '-o', obj, src], { maxBuffer: 64 << 20 });
    await run(TOOLS.ld, ['-static', '-nostdlib', '--no-relax', '-T', script, '-o', elfPath, obj], { maxBuffer: 64 << 20 });
    const elf = new Uint8Array(await readFile(elfPath));
    return { dir, elfPath, elf, dispose: () => rm(dir, { recursive: true, force: true }) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`Building the test program failed: ${(e as { stderr?: string }).stderr ?? String(e)}`.slice(0, 4000));
  }
}

export interface QemuResult {
  stdout: Uint8Array;
  /** Exit status, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  stderr: string;
}

/** Runs a static RISC-V ELF under qemu-riscv64-static. */
export function runQemu(elfPath: string, timeoutMs = 60_000): Promise<QemuResult> {
  return new Promise(resolve => {
    execFile(TOOLS.qemu, ['-cpu', QEMU_CPU, elfPath], { encoding: 'buffer', maxBuffer: 256 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
      resolve({
        stdout: new Uint8Array(stdout),
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        stderr: stderr.toString(),
      });
    });
  });
}
