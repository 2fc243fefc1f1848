import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../util/errors.js';
import { formatNetworks, parseNetCreate, runNet } from './net.js';
import { startTestDaemon } from '../api/testing.js';

test('net create takes a name, --subnet, --nat on|off and --isolated; mistakes are one line', () => {
  assert.deepEqual(parseNetCreate(['lan', '--subnet', '10.0.5.0/24', '--nat=off', '--isolated']), { name: 'lan', subnet: '10.0.5.0/24', nat: false, isolated: true });
  assert.deepEqual(parseNetCreate(['lan']), { name: 'lan' });
  for (const [argv, message] of [
    [[], 'gasang net create needs a network name'],
    [['a', 'b'], 'gasang net create takes one network name (got "a" and "b")'],
    [['a', '--nat', 'maybe'], '--nat maybe: on or off'],
    [['a', '--vlan', '3'], 'Unknown option --vlan for gasang net create'],
    [['a', '--subnet'], '--subnet needs a value'],
  ] as const) assert.throws(() => parseNetCreate(argv), (e: unknown) => e instanceof InputError && e.message === message);
});

test('gasang net create / ls / inspect / rm against a daemon', async t => {
  const d = await startTestDaemon();
  t.after(() => d.close());
  let out = '';
  const io = { out: (s: string) => { out += s; }, err: () => {}, stdin: process.stdin, stdout: process.stdout, env: { GASANG_SOCKET: d.socketPath }, cwd: '/' };
  const net = (...argv: string[]) => runNet(['--socket', d.socketPath, ...argv], io);
  assert.equal(await net('create', 'lan', '--subnet', '10.0.5.0/24', '--isolated'), 0);
  assert.equal(out, 'lan\n');
  out = '';
  await net('ls');
  assert.match(out, /^NAME +SUBNET +GATEWAY +NAT +ISOLATED +PORTS\nlan +10\.0\.5\.0\/24 +10\.0\.5\.2 +on +yes +-\n$/);
  out = '';
  await net('inspect', 'lan');
  assert.equal(JSON.parse(out).dns, '10.0.5.3');
  await assert.rejects(net('create', 'lan'), /A network named lan already exists/);
  await net('rm', 'lan');
  await assert.rejects(net('inspect', 'lan'), /No network named "lan"/);
  assert.equal(formatNetworks([]), 'NAME  SUBNET  GATEWAY  NAT  ISOLATED  PORTS\n');
});
