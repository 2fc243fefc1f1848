import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { InputError } from '../util/errors.js';
import { ApiClientError } from '../api/client.js';
import { startTestDaemon, type TestDaemon } from '../api/testing.js';
import { DETACH_KEY, formatList, parseCreateArgs, runVm, takeEndpoint, type VmIo } from './vm.js';

const CLI = join(import.meta.dirname, 'main.js');

test('create takes the options of gasang run, paths made absolute', () => {
  const { spec, start } = parseCreateArgs([
    '--name', 'web', '--cpus', '2', '--memory', '1G', '--kernel', 'k/Image', '--initrd=/abs/initrd', '--append', 'console=ttyS0 quiet',
    '--drive', 'file=base.qcow2,overlay=on,iops=1K', '--drive', 'file=/d/a,,b.img,format=raw,readonly=on',
    '--volume', 'mode=mirror,files=m1.img:/m2.img', '--share', 'host=.,tag=src,readonly=on',
    '--nic', 'tap', '--nic', 'none', '--nic', 'tap,ifname=tap9,mac=02:00:00:00:00:09', '--nic', 'user,hostfwd=tcp::2222-:22,hostfwd=udp::53-:53,restrict=on',
    '--nic', 'network=lan,trunk=10:20-22,native=1,mac=52:54:00:00:00:07',
    '--nic', 'network=lan,vlan=20,acl=allow:dir=in:proto=tcp:src=10.0.7.0/24:dport=8000-8080,acl=deny:dir=in:proto=tcp',
    '--cpu-shares', '2048', '--cpu-limit', '50%', '--jit', 'off', '--start',
  ], '/home/u');
  assert.equal(start, true);
  assert.deepEqual(spec, {
    name: 'web', cpus: 2, memoryMiB: 1024, kernel: '/home/u/k/Image', initrd: '/abs/initrd', append: 'console=ttyS0 quiet',
    drives: [{ file: '/home/u/base.qcow2', overlay: true, iops: 1024 }, { file: '/d/a,b.img', format: 'raw', readonly: true }],
    volumes: [{ mode: 'mirror', files: ['/home/u/m1.img', '/m2.img'] }], shares: [{ host: '/home/u', tag: 'src', readonly: true }],
    nics: [{ type: 'tap' }, { type: 'tap', ifname: 'tap9', mac: '02:00:00:00:00:09' }, { type: 'user', hostfwd: ['tcp::2222-:22', 'udp::53-:53'], restrict: true },
      { type: 'network', network: 'lan', trunk: { allowed: '10,20-22', native: 1 }, mac: '52:54:00:00:00:07' },
      { type: 'network', network: 'lan', vlan: 20, acl: [
        { action: 'allow', direction: 'in', proto: 'tcp', src: '10.0.7.0/24', dstPort: '8000-8080' }, { action: 'deny', direction: 'in', proto: 'tcp' }] }],
    cpuShares: 2048, cpuLimit: 50, jit: false,
  });
});

test('create refuses what a stored spec cannot hold, in one line', () => {
  const cases: [string[], RegExp][] = [
    [['--cpus', '2'], /needs --name NAME/],
    [['--name', 'x', '--bogus', '1'], /Unknown option --bogus for gasang vm create/],
    [['--name', 'x', 'extra'], /Unexpected argument "extra"/],
    [['--name', 'x', '--memory', '0'], /--memory must be at least 1 MiB/],
    [['--name', 'x', '--cpus', '99'], /--cpus 99: must be 1 to 8/],
    [['--name', 'x', '--drive', 'file=a,serial=s1'], /serial= is not supported/],
    [['--name', 'x', '--drive', 'file=a,overlay=maybe'], /overlay=maybe: expected on or off/],
    [['--name', 'x', '--drive', 'format=raw'], /--drive needs file=PATH/],
    [['--name', 'x', '--volume', 'mode=stripe,files=a:b,stripe=4K'], /stripe=, serial= and throttling are not supported/],
    [['--name', 'x', '--cpu-shares', 'lots'], /--cpu-shares "lots": not an integer/],
    [['--name', 'x', '--jit', 'maybe'], /--jit "maybe": must be on or off/],
    [['--name', 'x', '--nic', 'network=lan,acl=maybe'], /--nic acl=maybe: action is allow or deny/],
    [['--name', 'x', '--nic', 'network=lan,trunk=10,20'], /--nic: unknown key "20" for a network NIC/],
    [['--name', 'x', '--nic', 'network=lan,trunk=10:5000'], /--nic: trunk=10:5000: VLAN ids from 1 to 4094 and ranges, separated by ':'/],
    [['--name', 'x', '--nic', 'network=lan,trunk=10,vlan=3'], /--nic: vlan= \(an access port\) and trunk= exclude each other/],
    [['--name', 'x', '--nic', 'network=lan,native=3'], /--nic: native= goes with trunk=VLANS/],
    [['--name', 'x', '--nic', 'network=lan,acl=deny:port=80'], /--nic acl=deny:port=80: "port=80": keys are dir, proto, src, dst, sport, dport/],
    [['--name', 'x', '--nic', 'network=lan,acl=deny:dport=80'], /--nic acl=deny:dport=80: ports need proto tcp or udp/],
    [['--name', 'x', '--nic', 'network=lan,acl=deny:proto=tcp:src=10.0.0.300'], /"10.0.0.300" is not an IPv4 address or CIDR/],
    [['--name'], /--name needs a value/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseCreateArgs(argv, '/'), (err: unknown) => err instanceof InputError && re.test(err.message), argv.join(' '));
  }
});

test('the connection: the socket from --socket, $GASANG_SOCKET or the default; TCP with a token', () => {
  assert.deepEqual(takeEndpoint(['ls', '--socket', '/s.sock'], {}), { endpoint: { socketPath: '/s.sock' }, rest: ['ls'] });
  assert.deepEqual(takeEndpoint(['ls'], { GASANG_SOCKET: '/env.sock' }).endpoint, { socketPath: '/env.sock' });
  assert.deepEqual(takeEndpoint(['ls'], { XDG_RUNTIME_DIR: '/run/user/5' }).endpoint, { socketPath: '/run/user/5/gasang/gasangd.sock' });
  assert.deepEqual(takeEndpoint(['--url=http://127.0.0.1:7070', 'ls'], { GASANG_TOKEN: 't' }).endpoint, { host: '127.0.0.1', port: 7070, token: 't' });
  const dir = mkdtempSync(join(tmpdir(), 'gasang-vm-test-'));
  writeFileSync(join(dir, 'token'), 'from-file\n');
  assert.equal(takeEndpoint(['--url', 'http://[::1]:80', '--token-file', join(dir, 'token')], {}).endpoint.token, 'from-file');
  rmSync(dir, { recursive: true });
  assert.throws(() => takeEndpoint(['--url', 'http://h:1'], {}), /--url needs a token/);
  assert.throws(() => takeEndpoint(['--url', 'https://h:1/x'], { GASANG_TOKEN: 't' }), /expected http:\/\/HOST:PORT/);
  assert.throws(() => takeEndpoint(['--socket', '/a', '--url', 'http://h:1'], { GASANG_TOKEN: 't' }), /not both/);
});

describe('gasang vm against a daemon', () => {
  let d: TestDaemon;
  let out: string;
  let err: string;
  const io = (stdin = new PassThrough()): VmIo & { stdin: PassThrough } => ({
    out: t => { out += t; }, err: t => { err += t; }, stdin, stdout: { write: b => { out += Buffer.from(b).toString(); } },
    env: { GASANG_SOCKET: d.socketPath }, cwd: '/work',
  });
  const vm = (...argv: string[]): Promise<number> => { out = ''; err = ''; return runVm(argv, io()); };

  before(async () => { d = await startTestDaemon(); });
  after(() => d.close());

  test('create, ls, inspect, start, pause, resume, stop, kill, rm', async () => {
    assert.equal(await vm('create', '--name', 'one', '--memory', '128', '--kernel', '/dev/null'), 0);
    assert.equal(out, 'one\n');
    assert.equal(d.host.get('one').spec.kernel, '/dev/null');
    assert.equal(await vm('create', '--name', 'two', '--start'), 0);
    assert.equal(d.host.get('two').state, 'running');
    await vm('ls');
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+ID\s+STATE\s+CPUS\s+MEMORY\s+CPU TIME\s+HOST OVERHEAD$/);
    assert.match(lines[1]!, /^one\s+vm\w+\s+created\s+1\s+128 MiB\s+0\.0s\s+-$/);
    assert.match(lines[2]!, /^two\s+vm\w+\s+running\s+1\s+256 MiB\s+0\.0s\s+5\.0 MiB$/);
    await vm('ls', '--json');
    assert.deepEqual((JSON.parse(out) as { spec: { name: string } }[]).map(v => v.spec.name), ['one', 'two']);
    await vm('inspect', 'one');
    assert.equal((JSON.parse(out) as { state: string }).state, 'created');
    for (const [cmd, state] of [['start', 'running'], ['pause', 'paused'], ['resume', 'running'], ['stop', 'stopped'], ['start', 'running'], ['kill', 'stopped']] as const) {
      assert.equal(await vm(cmd, 'one'), 0, cmd);
      assert.equal(d.host.get('one').state, state, cmd);
    }
    assert.equal(await vm('stop', 'two', '--timeout', '2.5'), 0);
    assert.equal(out, 'two (stopped)\n');
    assert.equal(await vm('rm', 'one'), 0);
    await vm('start', 'two');
    await assert.rejects(vm('rm', 'two'), /Cannot remove two: it is running/);
    assert.equal(await vm('rm', '--force', 'two'), 0);
    assert.deepEqual(d.host.list(), []);
  });

  test('migrate: the VM moves to the gasangd named by --to, with its token', async () => {
    const target = await startTestDaemon({ token: 'target-token-0123456789' });
    try {
      assert.equal(await vm('create', '--name', 'mover', '--start'), 0);
      assert.equal(await vm('migrate', 'mover', '--to', `127.0.0.1:${target.port}`, '--token', 'target-token-0123456789'), 0);
      assert.match(out, /^mover: moved to 127\.0\.0\.1:\d+ in \d+ ms \(1 rounds, 0\.0 MiB\), the guest held \d+ ms\n$/);
      assert.equal(d.host.get('mover').info().exit?.reason, 'migrated');
      assert.equal((await target.client.inspect('mover')).spec.name, 'mover');
      await assert.rejects(vm('migrate', 'mover', '--to', 'nowhere'), /needs --to HOST:PORT/);
      await vm('rm', 'mover');
    } finally {
      await target.close();
    }
  });

  test("the daemon's refusals and the user's mistakes are errors with one line", async () => {
    await assert.rejects(vm('start', 'ghost'), (e: unknown) => e instanceof ApiClientError && e.status === 404 && /ghost/.test(e.message));
    await assert.rejects(vm('create', '--name', 'x', '--cpu-limit', '500'), (e: unknown) => e instanceof ApiClientError && e.status === 400 && /cpuLimit: 500% is out of range/.test(e.message));
    await assert.rejects(vm('start'), /gasang vm start needs a VM name/);
    await assert.rejects(vm('start', 'a', 'b'), /takes one VM name/);
    await assert.rejects(vm('frobnicate'), /Unknown command 'gasang vm frobnicate'/);
    await assert.rejects(vm('ls', '--socket', '/nonexistent/x.sock'), /gasangd is not running/);
  });

  test('console: typing goes to the guest, output to the terminal, Ctrl-] detaches', async () => {
    await vm('create', '--name', 'tty', '--start');
    out = '';
    err = '';
    const stdin = new PassThrough();
    const done = runVm(['console', 'tty'], io(stdin));
    await new Promise(r => setTimeout(r, 100));
    assert.match(err, /attached to tty; Ctrl-\] detaches/);
    stdin.write('uname -a\n');
    await new Promise(r => setTimeout(r, 100));
    d.host.get('tty').print('Linux gasang\n');
    await new Promise(r => setTimeout(r, 100));
    stdin.write(Buffer.from([0x6c, DETACH_KEY, 0x6d])); // "l", Ctrl-], "m": only "l" is sent
    assert.equal(await done, 0);
    await new Promise(r => setTimeout(r, 100));
    assert.equal(d.host.get('tty').input, 'uname -a\nl');
    assert.equal(out, 'uname -a\nLinux gasang\n', 'the echo of "l" came after the detach');
    assert.match(err, /detached from tty/);
    assert.equal(d.host.get('tty').consoleClients, 0);
  });

  test('console: a second writer is told how to watch; a watcher ends when the VM stops', async () => {
    const held = await d.client.console('tty', { write: true });
    await assert.rejects(vm('console', 'tty'), /Another client holds the write side of tty's console \(gasang vm console --read-only tty watches\)/);
    held.close();
    out = '';
    err = '';
    const done = runVm(['console', 'tty', '--read-only'], io());
    await new Promise(r => setTimeout(r, 100));
    d.host.get('tty').powerOff();
    assert.equal(await done, 0);
    assert.match(err, /attached to tty \(read-only\)[^]*tty stopped \(poweroff\)/);
  });

  test('the gasang command: exit status and one line on stderr', async () => {
    const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise(resolve => {
      execFile(process.execPath, [CLI, 'vm', ...args], { env: { ...process.env, GASANG_SOCKET: d.socketPath } }, (e, stdout, stderr) => {
        resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, stdout, stderr });
      });
    });
    const ok = await run('create', '--name', 'proc');
    assert.deepEqual(ok, { code: 0, stdout: 'proc\n', stderr: '' });
    const missing = await run('inspect', 'nothing');
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'gasang: No VM named nothing\n');
    const mistake = await run('create', '--name', 'p2', '--memory', 'lots');
    assert.equal(mistake.code, 2);
    assert.equal(mistake.stderr.split('\n').length, 2);
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /console NAME \[--read-only\]/);
  });
});

test('ls aligns its columns and shows how stopped VMs ended', () => {
  const text = formatList([
    { id: 'a1', spec: { name: 'long-name-vm', cpus: 2, memoryMiB: 512, cpuShares: 1024 }, state: 'stopped', exit: { reason: 'poweroff' }, createdAt: '', usage: { cpuSeconds: 125, instructions: 0, mmioExits: 0, hostOverheadBytes: 0, guestRamBytes: 0, diskReadBytes: 0, diskWriteBytes: 0 } },
    { id: 'b2', spec: { name: 'x', cpus: 1, memoryMiB: 64, cpuShares: 1024 }, state: 'running', createdAt: '', usage: { cpuSeconds: 3.5, instructions: 0, mmioExits: 0, hostOverheadBytes: 3 * 1048576, guestRamBytes: 0, diskReadBytes: 0, diskWriteBytes: 0 } },
  ]);
  assert.equal(text, [
    'NAME          ID  STATE               CPUS  MEMORY   CPU TIME  HOST OVERHEAD',
    'long-name-vm  a1  stopped (poweroff)  2     512 MiB  2m5s      -',
    'x             b2  running             1     64 MiB   3.5s      3.0 MiB',
    '',
  ].join('\n'));
});
