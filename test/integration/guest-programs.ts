/**
 * Small C programs the tests run inside guests (test/guest-programs/*.c), built with Debian's
 * riscv64 cross compiler on first use and cached by the hash of their source.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './guest.js';

const CACHE = join(process.env.GASANG_CACHE ?? join(homedir(), '.cache', 'gasang'), 'guest-programs');

/** A directory holding the static riscv64 binary of test/guest-programs/NAME.c (share it with the guest over 9p). */
export function guestProgram(name: string): string {
  const src = join(REPO, 'test', 'guest-programs', `${name}.c`);
  const dir = join(CACHE, createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16));
  const bin = join(dir, name);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('riscv64-linux-gnu-gcc', ['-O2', '-static', '-s', '-Wall', '-Wextra', '-o', `${bin}.tmp`, src], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(`${bin}.tmp`, bin);
  }
  return dir;
}
