/**
 * gasangd end to end with the real host: the daemon as a child process on a temporary socket and
 * state directory; a VM of the bundled guest created, started, used through its WebSocket console,
 * stopped with the power button; the daemon's refusals of impossible specs; its metrics; the
 * answers checked against docs/openapi.json; and a restarted daemon still knowing the VM.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ApiClientError } from '../../src/api/client.js';
import { loadOpenApi, SchemaValidator } from '../../src/api/openapi-testing.js';
import type { VmInfo, VmSpec } from '../../src/vm/types.js';
import { Host } from '../../src/vm/host.js';
import { MAX_HARTS } from '../../src/cpu/layout.js';
import { MAX_APPEND_BYTES, MAX_BPS, MAX_CPU_SHARES, MAX_DEVICES, MAX_IOPS, MAX_MEMORY_MIB, MIN_BPS } from '../../src/vm/spec.js';
import { parseVmSpec } from '../../src/api/spec.js';
import { ConsoleSession, DaemonProcess } from './gasangd-session.js';

const dir = mkdtempSync(join(tmpdir(), 'gasangd-e2e-'));
const socketPath = join(dir, 'run', 'gasangd.sock');
const stateDir = join(dir, 'state');
const validator = new SchemaValidator(loadOpenApi());
let daemon: DaemonProcess | undefined;

after(async () => {
  if (daemon) {
    daemon.kill();
    await daemon.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const assertDocumented = (schema: string, value: unknown): void => {
  assert.deepEqual(validator.validate({ $ref: `#/components/schemas/${schema}` }, value), [], JSON.stringify(value));
};

const refusal = async (p: Promise<unknown>): Promise<ApiClientError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  assert.ok(e instanceof ApiClientError, `refused: ${String(e)}`);
  return e;
};

test('gasangd with the real host: create, start, console, metrics, stop, restart, remove', { timeout: 600_000 }, async () => {
  daemon = await DaemonProcess.start(socketPath, ['--state-dir', stateDir, '--memory-overcommit', '0.01']);
  const api = daemon.client;

  // Impossible specs and unknown VMs: refused with the right status, the daemon carries on.
  assert.equal((await refusal(api.create({ name: 'bad', memoryMiB: 0 }))).status, 400);
  assert.equal((await refusal(api.create({ name: 'bad', cpus: 10_000 }))).status, 400);
  const missing = await refusal(api.create({ name: 'bad', kernel: join(dir, 'no-such-Image') }));
  assert.equal(missing.status, 400);
  assert.match(missing.message, /no-such-Image/);
  assert.equal((await refusal(api.inspect('nobody'))).status, 404);

  const created = await api.create({ name: 'e2e', memoryMiB: 128 });
  assertDocumented('VmInfo', created);
  assert.equal(created.state, 'created');
  assert.equal((await refusal(api.create({ name: 'e2e' }))).status, 409);
  const huge = await api.create({ name: 'huge', memoryMiB: Math.ceil(totalmem() / 2 ** 20 / 100) });
  assertDocumented('VmInfo', huge);

  const ws = await api.console('e2e', { write: true });
  const con = new ConsoleSession(ws);
  const started = await api.action('e2e', 'start');
  assertDocumented('VmInfo', started);
  await con.waitFor('GASANG-READY', 180_000);
  assert.equal((await con.run('echo $((6 * 7))')).trim(), '42');
  assert.match(await con.run('cat /proc/meminfo | head -1'), /MemTotal:\s+1\d{5} kB/);

  // A watcher sees the same output; a second writer is refused.
  const watcher = new ConsoleSession(await api.console('e2e'));
  assert.equal((await refusal(api.console('e2e', { write: true }))).status, 409);
  await con.run('echo watched-$((1 + 1))');
  await watcher.waitFor('watched-2', 10_000);
  watcher.ws.close();

  const running = await api.inspect('e2e');
  assertDocumented('VmInfo', running);
  assert.equal(running.state, 'running');
  assert.ok(running.usage.instructions > 1e6, `instructions ${running.usage.instructions}`);
  assert.ok(running.usage.cpuSeconds > 0.1, `cpuSeconds ${running.usage.cpuSeconds}`);
  assertDocumented('VmList', { vms: await api.list() });
  assertDocumented('HostResources', await api.host());

  const metrics = await api.request('GET', '/metrics');
  assert.equal(metrics.status, 200);
  const cpu = new RegExp(`^gasang_vm_cpu_seconds_total\\{vm="e2e",id="${running.id}"\\} ([0-9.e+]+)$`, 'm').exec(metrics.text);
  assert.ok(cpu && Number(cpu[1]) > 0, 'CPU seconds exported');
  assert.match(metrics.text, /^gasang_vm_instructions_total\{vm="e2e",[^}]*\} [1-9]/m);
  assert.match(metrics.text, /^gasang_vm_state\{vm="e2e",[^}]*,state="running"\} 1$/m);

  // Overcommit: this daemon may commit 1 % of host RAM to guests, so the second VM does not fit.
  const big = await refusal(api.action('huge', 'start'));
  assert.equal(big.status, 507, big.message);
  assert.match(big.message, /Starting huge needs \d+ MiB of guest RAM/);
  assert.equal((await api.inspect('huge')).state, 'created');

  // Graceful stop: the guest's init acts on the power button.
  const stopping = api.action('e2e', 'stop', { timeoutMs: 60_000 });
  const stoppedEvent = new Promise<string>(resolve => ws.on('message', (d, binary) => { if (!binary) resolve(d.toString()); }));
  const stopped: VmInfo = await stopping;
  assertDocumented('VmInfo', stopped);
  assert.equal(stopped.state, 'stopped');
  assert.equal(stopped.exit?.reason, 'poweroff', JSON.stringify(stopped.exit));
  assert.match(await stoppedEvent, /"type":"stopped"/);
  ws.close();

  // The daemon restarted knows its VMs.
  assert.equal(await daemon.stop(), 0);
  assert.ok(daemon.logs.some(l => l.msg === 'request' && l.method === 'POST' && l.path === '/v1/vms/e2e/start' && l.status === 200 && typeof l.ms === 'number'));
  daemon = await DaemonProcess.start(socketPath, ['--state-dir', stateDir]);
  const again = await daemon.client.list();
  assert.deepEqual(again.map(v => v.spec.name).sort(), ['e2e', 'huge']);
  assert.equal(again.find(v => v.spec.name === 'e2e')!.state, 'stopped');
  assert.equal(again.find(v => v.spec.name === 'e2e')!.id, running.id);
  assert.equal(again.find(v => v.spec.name === 'huge')!.state, 'created');
  await daemon.client.remove('e2e');
  await daemon.client.remove('huge');
  assert.deepEqual(await daemon.client.list(), []);
  assert.equal(await daemon.stop(), 0);
  daemon = undefined;
});


test('every spec the API lets through at its limits, the real host creates', async () => {
  // Specs at every limit checkSpec allows: the host's create (files, overlays, store) takes them too.
  const stateDir2 = join(dir, 'limits-state');
  const image = join(dir, 'disk.raw');
  writeFileSync(image, Buffer.alloc(1 << 20));
  const host = new Host({ stateDir: stateDir2 });
  try {
    const specs: VmSpec[] = [
      { name: 'max', cpus: MAX_HARTS, memoryMiB: MAX_MEMORY_MIB, cpuShares: MAX_CPU_SHARES, cpuLimit: 100 * MAX_HARTS, append: 'x'.repeat(MAX_APPEND_BYTES), jit: false },
      { name: 'min', cpus: 1, memoryMiB: 1, cpuShares: 1, cpuLimit: 1 },
      { name: 'disks', drives: Array.from({ length: MAX_DEVICES }, (_, i) => ({ file: image, format: 'raw' as const, readonly: true, iops: i % 2 ? 1 : MAX_IOPS, bps: i % 2 ? MIN_BPS : MAX_BPS })) },
      { name: 'mixed', drives: [{ file: image, overlay: true }], volumes: [{ mode: 'mirror', files: [image, image], readonly: true }], shares: [{ host: dir, tag: 't'.repeat(255), readonly: true }] },
    ];
    for (const s of specs) {
      const checked = parseVmSpec(structuredClone(s));
      const vm = await host.create(checked);
      assert.equal(vm.info().spec.name, s.name);
    }
  } finally {
    await host.close();
  }
});
