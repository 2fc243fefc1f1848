import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { parseDaemonArgs } from './gasangd.js';

const GASANGD = join(import.meta.dirname, 'gasangd.js');

test('gasangd options and their defaults', () => {
  const d = parseDaemonArgs([], { GASANG_SOCKET: '/tmp/x.sock' });
  assert.equal(d.socketPath, '/tmp/x.sock');
  assert.equal(d.stopTimeoutMs, 30_000);
  assert.equal(d.listen, undefined);
  const all = parseDaemonArgs(['--socket=/s', '--state-dir', '/st', '--listen', '0.0.0.0:7070', '--memory-overcommit', '2.5', '--cores', '4', '--stop-timeout', '1.5'], { GASANGD_TOKEN: '0123456789abcdef' });
  assert.deepEqual(all, { socketPath: '/s', stateDir: '/st', listen: { host: '0.0.0.0', port: 7070 }, token: '0123456789abcdef', memoryOvercommit: 2.5, cores: 4, stopTimeoutMs: 1500, help: false });
  assert.deepEqual(parseDaemonArgs(['--listen', '8080'], { GASANGD_TOKEN: '0123456789abcdef' }).listen, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseDaemonArgs(['--listen', '[::1]:8080'], { GASANGD_TOKEN: '0123456789abcdef' }).listen, { host: '::1', port: 8080 });
  const dir = mkdtempSync(join(tmpdir(), 'gasangd-args-'));
  writeFileSync(join(dir, 't'), 'token-from-a-file-000\n');
  assert.equal(parseDaemonArgs(['--token-file', join(dir, 't')], { GASANGD_TOKEN: 'ignored-when-a-file-is-given' }).token, 'token-from-a-file-000');
  rmSync(dir, { recursive: true });
});

test('gasangd refuses bad options in one line', () => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--listen', '7070'], {}, /--listen needs a token/],
    [['--listen', 'host:port'], { GASANGD_TOKEN: '0123456789abcdef' }, /expected \[HOST:\]PORT/],
    [['--listen', '70000'], { GASANGD_TOKEN: '0123456789abcdef' }, /expected \[HOST:\]PORT/],
    [[], { GASANGD_TOKEN: 'short' }, /at least 16 characters/],
    [['--cores', '0'], {}, /--cores "0": must be an integer of at least 1/],
    [['--memory-overcommit', 'lots'], {}, /--memory-overcommit "lots"/],
    [['--token-file', '/nonexistent/token'], {}, /--token-file \/nonexistent\/token: ENOENT/],
    [['--verbose'], {}, /Unknown option --verbose/],
    [['--socket'], {}, /--socket needs a value/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(() => parseDaemonArgs(argv, env), (e: unknown) => e instanceof InputError && re.test(e.message), argv.join(' '));
  }
});

test('the gasangd program: --help, and a bad option is one line with status 2', async () => {
  const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise(resolve => {
    execFile(process.execPath, [GASANGD, ...args], (e, stdout, stderr) => resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
  const help = await run('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--listen \[HOST:\]PORT/);
  const bad = await run('--listen', '7070');
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'gasangd: --listen needs a token (--token-file FILE or $GASANGD_TOKEN): TCP clients must authenticate\n');
});
