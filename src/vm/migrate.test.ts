/**
 * Live migration between two hosts (two daemons' Host objects, their VM threads speaking TCP on
 * loopback): a VM counting on its console moves with its overlay disk and goes on counting there
 * without a gap; a target that dies, a port nobody listens on and a wrong token each leave the
 * source running; a VM that migrated away cannot start again here and keeps its disk for the target.
 * A VM with a user NIC moves with it: its forwarded port is bound on the target at switchover, and
 * a download under way through it completes whole, relayed from the source, while the guest counts on.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Host } from './host.js';
import { HostError, type HostOptions, type MigrationTarget } from './types.js';
import { ConsoleText, freePort, slowDownload, tempDir } from './testing.js';

const counts = (text: string): number[] => [...text.matchAll(/N=(\d+)\r\n/g)].map(m => Number(m[1]));
// One echo, so the background counter's lines cannot split it.
const READ_DISK = 'echo "disk=$(dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -dc a-z0-9-)"';

/** Two hosts in a temporary directory, closed after the test (b's state dir at `bState` in it); `toB` migrates to b. */
function twoHosts(t: TestContext, name: string, opts: { aLog?: HostOptions['onLog']; bState?: string } = {}): { dir: string; a: Host; b: Host; toB: MigrationTarget } {
  const { dir, cleanup } = tempDir(name);
  const a = new Host({ stateDir: join(dir, 'a'), ...(opts.aLog ? { onLog: opts.aLog } : {}) }), b = new Host({ stateDir: join(dir, opts.bState ?? 'b') });
  t.after(async () => { await a.close({ timeoutMs: 1000 }); await b.close({ timeoutMs: 1000 }); cleanup(); });
  return { dir, a, b, toB: { accept: async spec => ({ host: '127.0.0.1', ...(await b.acceptMigration(spec)) }) } };
}

/** The VM `name` on the target once its thread says it runs (just after it told the source). */
async function arrived(b: Host, name: string): Promise<ReturnType<Host['get']>> {
  const moved = b.get(name);
  for (let i = 0; i < 100 && moved.info().state === 'starting'; i++) await new Promise(r => setTimeout(r, 20));
  return moved;
}

test('a counting VM moves to another host with its disk and counts on; failures leave it running', { timeout: 600_000 }, async t => {
  const { dir, a, b, toB } = twoHosts(t, 'vm-migrate');
  const base = join(dir, 'base.raw');
  writeFileSync(base, new Uint8Array(1 << 20));
  const vm = await a.create({ name: 'mover', memoryMiB: 128, drives: [{ file: base, overlay: true }] });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor('GASANG-READY', 60_000);
  await con.run(`printf '%-16s' from-a | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null; echo wrote`, 'wrote', 10_000);
  // In the background, so the shell still takes commands while it counts.
  con.client.write('(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo N=$i; sleep 0.01; done) &\n');
  await con.waitFor('N=20\r\n', 30_000);

  // Failures first: each leaves the VM running here, and the target keeps nothing.
  const refusals: [string, MigrationTarget, RegExp][] = [
    ['nobody listens', { accept: async () => ({ host: '127.0.0.1', port: 1, token: 'x' }) }, /ECONNREFUSED|connection failed|closed/],
    ['wrong token', { accept: async spec => ({ ...(await toB.accept(spec)), token: 'wrong' }) }, /Wrong migration token/],
    ['the target dies', { accept: async spec => { const at = await toB.accept(spec); setTimeout(() => void b.get('mover').kill(), 30); return at; } }, /closed|failed|refused/],
  ];
  for (const [name, target, message] of refusals) {
    await assert.rejects(vm.migrate(target), (e: unknown) => { assert.ok(e instanceof HostError && message.test(e.message), `${name}: ${String(e)}`); return true; });
    assert.equal(vm.info().state, 'running', name);
    const last = counts(con.text).at(-1)!;
    await con.waitFor(`N=${last + 10}\r\n`, 30_000);
    for (let i = 0; i < 100 && b.list().length; i++) await new Promise(r => setTimeout(r, 20));
    assert.deepEqual(b.list(), [], `${name}: the target removed its VM again`);
  }

  // Progress shows in the VM's info while it moves, and goes when it is done.
  const seen: NonNullable<ReturnType<typeof vm.info>['migration']>[] = [];
  const watch = setInterval(() => { const p = vm.info().migration; if (p) seen.push(p); }, 5);
  const result = await vm.migrate(toB).finally(() => clearInterval(watch));
  t.diagnostic(`migrated: ${JSON.stringify(result)}; progress seen: ${JSON.stringify(seen.at(-1))}`);
  assert.ok(seen.some(p => p.phase === 'precopy' && p.pagesSent > 0 && p.bytesSent > 0), 'pre-copy progress reported');
  assert.equal(vm.info().migration, undefined);
  assert.deepEqual([vm.info().state, vm.info().exit?.reason], ['stopped', 'migrated']);
  const moved = await arrived(b, 'mover');
  assert.equal(moved.info().state, 'running');
  const there = new ConsoleText(moved, true);
  const lastHere = counts(con.text).at(-1)!;
  await there.waitFor(`N=${lastHere + 20}\r\n`, 30_000);
  const all = counts(con.text + there.text); // a line may begin here and end there
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), `the count goes on at ${counts(there.text)[0]} after ${lastHere} here`);
  await there.run(READ_DISK, 'disk=from-a\r\n', 10_000);

  await assert.rejects(vm.start(), (e: unknown) => e instanceof HostError && /migrated away/.test(e.message));
  const overlay = join(dir, 'a', 'vms', vm.id, 'drive0.qcow2');
  await a.remove('mover');
  assert.ok(existsSync(overlay), 'the overlay the target uses stays');
  await moved.kill();
  execFileSync('qemu-img', ['check', '-q', overlay]);
});

/** GET http://127.0.0.1:port/path; retried while nothing answers yet. */
async function fetchPage(port: number, path: string, ms: number): Promise<string> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) return await r.text();
    } catch (err) {
      if (performance.now() > deadline) throw err;
    }
    await new Promise(r => setTimeout(r, 50));
  }
}

test('a VM with a user NIC moves: its forwarded port, a download under way through it, and its way out follow it', { timeout: 600_000 }, async t => {
  const logs: string[] = [];
  const { a, b, toB } = twoHosts(t, 'vm-migrate-nic', { aLog: (vm, line) => logs.push(`${vm}: ${line}`) });
  const web = createHttpServer((_, res) => res.end('host-page'));
  await new Promise<void>(r => web.listen(0, '127.0.0.1', r));
  t.after(() => web.close());
  const fwd = await freePort();
  const vm = await a.create({ name: 'web', memoryMiB: 128, nics: [{ type: 'user', hostfwd: [`tcp:127.0.0.1:${fwd}-:80`] }] });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor('GASANG-READY', 60_000);
  await con.run('mkdir -p /www && echo served-by-$(hostname)-$$ > /www/index.html && httpd -p 80 -h /www && echo httpd-up', 'httpd-up\r\n', 10_000);
  const page = await fetchPage(fwd, '/index.html', 30_000);
  assert.match(page, /^served-by-/);
  await con.run('dd if=/dev/urandom of=/www/big bs=1M count=24 2>/dev/null; echo "sum=$(sha256sum /www/big)"', /sum=[0-9a-f]{64} /, 60_000);
  const sum = /sum=([0-9a-f]{64}) /.exec(con.text)![1];
  con.client.write('(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo N=$i; sleep 0.01; done) &\n');
  await con.waitFor('N=20\r\n', 30_000);

  // A download of 24 MiB at 4 MiB/s through the forwarded port, a quarter done when the VM moves:
  // its connection stays with this host's socket, relayed to the target, and ends whole.
  const download = slowDownload(fwd, '/big', 4 << 20);
  for (let i = 0; i < 600 && download.progress() < 6 << 20; i++) await new Promise(r => setTimeout(r, 50));
  assert.ok(download.progress() >= 6 << 20, `the download is under way (${download.progress()} bytes)`);
  const result = await vm.migrate(toB);
  t.diagnostic(`migrated: ${JSON.stringify(result)} with ${download.progress()} bytes of the download come`);
  assert.equal(result.flowsMoved, 1, 'the download\'s flow moved');
  const moved = await arrived(b, 'web');
  const there = new ConsoleText(moved, true);
  const got = await download.done;
  assert.deepEqual(got, { sha: sum, bytes: 24 << 20 }, 'the download completes with the guest\'s checksum');
  const lastHere = counts(con.text).at(-1)!;
  await there.waitFor(`N=${lastHere + 20}\r\n`, 30_000);
  const all = counts(con.text + there.text);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), `the count goes on at ${counts(there.text)[0]} after ${lastHere} here`);
  for (let i = 0; i < 100 && !logs.some(l => /relayed TCP flows have closed/.test(l)); i++) await new Promise(r => setTimeout(r, 50));
  assert.ok(logs.some(l => /relayed TCP flows have closed/.test(l)), `the source's relay ended: ${logs.join(' | ')}`);
  // The same guest (its httpd, its page) answers on the same port, now bound by the target.
  assert.equal(await fetchPage(fwd, '/index.html', 10_000), page);
  // One echo, so the counter's lines cannot split it.
  await there.run(`echo "page=$(wget -q -O - http://10.0.2.2:${(web.address() as AddressInfo).port}/)"`, 'page=host-page\r\n', 30_000);
  const nic = moved.info().nics?.[0];
  assert.ok(nic, 'the moved VM keeps its NIC');
  assert.equal(nic.mac, vm.info().nics?.[0]?.mac);
  await moved.kill();
});

test('block migration: a VM writing its overlay moves with it to a host that shares only the base; every acknowledged write is there', { timeout: 600_000 }, async t => {
  // The target's state directory is one level deeper: the overlay names its base by another relative path there.
  const { dir, a, b, toB } = twoHosts(t, 'vm-migrate-blk', { bState: join('hosts', 'b') });
  const base = join(dir, 'base.raw');
  writeFileSync(base, new Uint8Array(4 << 20));
  const vm = await a.create({ name: 'blk', memoryMiB: 128, drives: [{ file: base, overlay: true }] });
  await vm.start();
  const con = new ConsoleText(vm, true);
  await con.waitFor('GASANG-READY', 60_000);
  await con.run(`printf '%-16s' from-a | dd of=/dev/vda bs=16 count=1 conv=fsync 2>/dev/null; echo wrote`, 'wrote', 10_000);
  // A writer in the background: W=i is printed once write i is on the disk (fsync).
  con.client.write(`(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); printf '%-16s' w$i | dd of=/dev/vda bs=16 seek=1 count=1 conv=fsync 2>/dev/null; echo W=$i; sleep 0.02; done) &\n`);
  await con.waitFor('W=10\r\n', 30_000);

  const result = await vm.migrate(toB, { copyStorage: true });
  t.diagnostic(`migrated with its overlay: ${JSON.stringify(result)}`);
  const moved = await arrived(b, 'blk');
  // The source's overlay is not the target's: gone here, the VM there goes on.
  const mine = join(dir, 'a', 'vms', vm.id, 'drive0.qcow2'), theirs = join(dir, 'hosts', 'b', 'vms', moved.id, 'drive0.qcow2');
  await a.remove('blk');
  rmSync(mine, { force: true });
  const there = new ConsoleText(moved, true);
  const lastHere = [...con.text.matchAll(/W=(\d+)\r\n/g)].map(m => Number(m[1])).at(-1)!;
  await there.waitFor(`W=${lastHere + 10}\r\n`, 30_000);
  await there.run('kill %1; sleep 0.1; echo "disk=$(dd if=/dev/vda bs=16 count=2 2>/dev/null | tr -s \' \' | tr -dc a-z0-9-)"', /disk=from-aw\d+\r\n/, 10_000);
  const written = [...(con.text + there.text).matchAll(/W=(\d+)\r\n/g)].map(m => Number(m[1]));
  const onDisk = Number(/disk=from-aw(\d+)\r\n/.exec(there.text)![1]);
  // The last acknowledged write, or the one the kill caught between its fsync and its echo.
  assert.ok(onDisk === written.at(-1) || onDisk === written.at(-1)! + 1, `the disk holds w${onDisk}; the last acknowledged write was w${written.at(-1)}`);
  assert.deepEqual(written, Array.from({ length: written.length }, (_, i) => i + 1), 'no write lost or repeated across the move');
  await moved.kill();
  execFileSync('qemu-img', ['check', '-q', theirs]);
  assert.match(execFileSync('qemu-img', ['info', theirs], { encoding: 'utf8' }), /backing file: \.\.\/\.\.\/\.\.\/\.\.\/base\.raw /, 'the copy names the base from the target\'s state directory');
});
