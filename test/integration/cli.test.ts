// The `gasang` command as a user runs it: one-line errors with status 2, a guest to a shell, exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './guest.js';

const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const tmp = mkdtempSync(join(tmpdir(), 'gasang-cli-'));
const empty = join(tmp, 'empty');
const junk = join(tmp, 'junk');
writeFileSync(empty, '');
writeFileSync(junk, Buffer.alloc(8192, 0x5a));

function gasang(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

for (const [args, message] of [
  [['run', '--kernel', '/no/such/Image'], /^gasang: kernel \/no\/such\/Image: no such file\n$/],
  [['run', '--kernel', empty], /^gasang: kernel .*empty: file is empty\n$/],
  [['run', '--kernel', junk], /^gasang: kernel .*junk: not a RISC-V Linux Image \(bad magic\)\n$/],
  [['run', '--firmware', '/no/such/fw.bin'], /^gasang: firmware \/no\/such\/fw.bin: no such file\n$/],
  [['run', '--firmware', empty], /^gasang: firmware .*: file is empty\n$/],
  [['run', '--initrd', '/no/such/initrd'], /^gasang: initrd \/no\/such\/initrd: no such file\n$/],
  [['run', '--memory', '0'], /^gasang: --memory .*\n$/],
  [['run', '--cpus', '9'], /^gasang: --cpus .*\n$/],
  [['run', '--frobnicate'], /^gasang: .*--frobnicate.*\n$/],
  [['frob'], /^gasang: Unknown command 'frob'.*\n$/],
] as const) {
  test(`gasang ${args.join(' ')}: one line, status 2`, () => {
    const r = gasang([...args]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, message);
  });
}

/** Starts the CLI with piped stdin; resolves the exit status once `script` has driven it. */
function session(args: string[], script: (out: () => string, send: (s: string) => void) => Promise<void>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', d => { stdout += d; });
  child.stderr.on('data', d => { stderr += d; });
  const exited = new Promise<number | null>(r => child.on('exit', code => r(code)));
  return script(() => stdout, s => child.stdin.write(s)).then(async () => ({ code: await exited, stdout, stderr }));
}

const until = async (pred: () => boolean, ms = 120_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise(r => setTimeout(r, 50));
  }
};

test('gasang run boots the bundled guest to a shell; poweroff exits with status 0', { timeout: 180_000 }, async () => {
  const r = await session(['run'], async (out, send) => {
    await until(() => out().includes('GASANG-READY'));
    send('echo hello-$((40+2))\n');
    await until(() => out().includes('hello-42'));
    send('poweroff\n');
  });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /reboot: Power down/);
});

test('Ctrl-A x quits; a guest executing garbage traps inside the guest, never in the host', { timeout: 60_000 }, async () => {
  const r = await session(['run', '--firmware', junk, '--memory', '64'], async (_out, send) => {
    await new Promise(res => setTimeout(res, 2000));
    send('\x01x');
  });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
});
