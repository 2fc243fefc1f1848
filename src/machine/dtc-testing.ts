/** Test support: Debian's device-tree compiler as the independent reader of the FDTs we build. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasDtc = ((): boolean => {
  try {
    execFileSync('dtc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** `dtc -I dtb -O dts` of a blob. */
export function dtcDecompile(blob: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-fdt-'));
  try {
    const file = join(dir, 'x.dtb');
    writeFileSync(file, blob);
    return execFileSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts', file], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
