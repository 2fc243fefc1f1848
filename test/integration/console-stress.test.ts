// Console stress (console-stress.ts): commands of varied lengths typed into real guests through
// each way a user reaches the serial console — in-process, `gasang run`, gasangd's WebSocket — with
// every output and exit status checked exactly. The long run: scripts/console-stress.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED, DEBIAN, Guest, READY, debianAvailable } from './guest.js';
import { CliSession } from './cli-session.js';
import { stressConsole, type Shell } from './console-stress.js';
import { consoleOfDaemonVm } from './console-stress-daemon.js';
import { ShellCommand } from './shell-command.js';

const COMMANDS = Number(process.env.GASANG_STRESS_COMMANDS ?? 250);

async function stress(t: { diagnostic(s: string): void }, shell: Shell, what: string, seed: number): Promise<void> {
  const r = await stressConsole(shell, COMMANDS, seed);
  t.diagnostic(`${what}: ${r.commands} commands, ${r.lost.length} lost, ${r.seconds.toFixed(1)} s`);
  for (const l of r.lost) t.diagnostic(`lost ${l}`);
  assert.deepEqual(r.lost, [], `${what}: commands whose output was lost or wrong`);
}

// Regression: the end marker arrived in a chunk that ended between its \r and \n, and the old
// parser then returned '' (share-9p.test.ts, issue 16); an echo wrapped at 80 columns was taken for output.
test('a command result is found in any chunking of the transcript, and not before its end line is complete', () => {
  const cmd = new ShellCommand('touch /ro/new 2>&1; echo status=$?');
  const echo = cmd.typed.replace('\n', '\r\n').replace(/(.{70})/, '$1\r\r\n');
  const m = /echo (GB)""(-\w+);.*printf '\\n%s%s\\n' (GE)""(-\w+-)/.exec(cmd.typed)!;
  const full = `gasang:~# ${echo}${m[1]}${m[2]}\r\ntouch: /ro/new: Read-only file system\r\nstatus=1\r\n\r\n${m[3]}${m[4]}1\r\ngasang:~# `;
  const endLine = full.indexOf(`${m[3]}${m[4]}1\r\n`) + `${m[3]}${m[4]}1\r\n`.length;
  for (let cut = 0; cut <= full.length; cut++) {
    const r = cmd.parse(full.slice(0, cut));
    if (cut < endLine) assert.equal(r, undefined, `premature result at ${cut}`);
    else assert.deepEqual(r, { output: 'touch: /ro/new: Read-only file system\nstatus=1\n', status: 1, end: endLine });
  }
});

test('console stress: bundled guest, in process', { timeout: 300_000 }, async t => {
  const g = await Guest.boot({ ...BUNDLED });
  t.after(() => g.kill());
  await g.waitFor(READY);
  await stress(t, g, `in process (JIT threshold ${process.env.GASANG_JIT_THRESHOLD ?? 'default'})`, 1);
});

test('console stress: bundled guest, two harts, through gasang run', { timeout: 300_000 }, async t => {
  const s = new CliSession(['--cpus', '2']);
  t.after(() => s.kill());
  await s.waitFor(READY);
  await stress(t, s, 'gasang run --cpus 2', 2);
});

test("console stress: bundled guest, through gasangd's WebSocket console", { timeout: 300_000 }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gasang-stress-'));
  const d = await consoleOfDaemonVm(dir, { ...BUNDLED, cpus: 1 });
  t.after(async () => { await d.close(); rmSync(dir, { recursive: true, force: true }); });
  await stress(t, d.console, 'gasangd console', 3);
});

test("console stress: Debian's kernel", { timeout: 600_000, skip: !debianAvailable() && !process.env.CI && 'run scripts/fetch-debian-guest.sh first' }, async t => {
  const g = await Guest.boot({ ...DEBIAN });
  t.after(() => g.kill());
  await g.waitFor(READY);
  await stress(t, g, "Debian's kernel", 4);
});
