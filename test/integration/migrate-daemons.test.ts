/**
 * Live migration between two gasangd processes on loopback, each on its own state directory and
 * TCP API with its own token: the source daemon asks the target's API for an incoming VM and its
 * VM thread streams the VM there. The guest counts on its console and serves a long download
 * through a forwarded port while it moves: the count has no gap across the two daemons' consoles
 * and the download ends whole. A target daemon killed (SIGKILL) mid-migration leaves the source VM
 * running; a wrong token is refused.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ApiClientError } from '../../src/api/client.js';
import { freePort, slowDownload } from '../../src/vm/testing.js';
import { ConsoleSession, DaemonProcess } from './gasangd-session.js';

const dir = mkdtempSync(join(tmpdir(), 'gasangd-migrate-'));
const daemons: DaemonProcess[] = [];
after(async () => {
  for (const d of daemons) d.kill();
  await Promise.all(daemons.map(d => d.exited));
  rmSync(dir, { recursive: true, force: true });
});

const TOKEN_A = 'token-of-daemon-a-0123456789', TOKEN_B = 'token-of-daemon-b-0123456789';
const counts = (text: string): number[] => [...text.matchAll(/N=(\d+)\r\n/g)].map(m => Number(m[1]));

async function daemon(name: string, token: string): Promise<DaemonProcess> {
  const d = await DaemonProcess.start(join(dir, name, 'gasangd.sock'), ['--state-dir', join(dir, name, 'state'), '--listen', '127.0.0.1:0'], { GASANGD_TOKEN: token });
  daemons.push(d);
  return d;
}

test('a VM moves between two gasangd processes while it counts and serves a download; a killed target leaves it running', { timeout: 900_000 }, async t => {
  const a = await daemon('a', TOKEN_A);
  let b = await daemon('b', TOKEN_B);
  const fwd = await freePort();
  await a.client.create({ name: 'mover', memoryMiB: 128, nics: [{ type: 'user', hostfwd: [`tcp:127.0.0.1:${fwd}-:80`] }] });
  const con = new ConsoleSession(await a.client.console('mover', { write: true }));
  await a.client.action('mover', 'start');
  await con.waitFor('GASANG-READY', 180_000);
  const sum = await con.run('mkdir -p /www && dd if=/dev/urandom of=/www/big bs=1M count=24 2>/dev/null && httpd -p 80 -h /www && sha256sum /www/big | cut -d" " -f1');
  assert.match(sum, /^[0-9a-f]{64}$/);
  con.ws.send('(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo N=$i; sleep 0.01; done) &\n');
  await con.waitFor('N=20\r\n', 30_000);

  // Refusals first: each leaves the VM running on a.
  const wrong = await a.client.migrate('mover', { host: '127.0.0.1', port: b.port!, token: 'not-the-token-of-b-0123' }).then(() => undefined, (e: unknown) => e);
  assert.ok(wrong instanceof ApiClientError && /401|token|unauthori/i.test(`${wrong.status} ${wrong.message}`), String(wrong));
  const moving = a.client.migrate('mover', { host: '127.0.0.1', port: b.port!, token: TOKEN_B }).then(() => undefined, (e: unknown) => e);
  setTimeout(() => b.kill(), 100);
  const killed = await moving;
  assert.ok(killed instanceof ApiClientError, `a migration to a killed daemon fails: ${String(killed)}`);
  await b.exited;
  assert.equal((await a.client.inspect('mover')).state, 'running');
  const before = counts(con.text).at(-1)!;
  await con.waitFor(`N=${before + 10}\r\n`, 30_000, 0);

  // A new target daemon on the same state directory (which kept nothing of the VM that never
  // arrived, or this would be refused as a VM of the same name); the move goes through this time.
  b = await daemon('b', TOKEN_B);
  const download = slowDownload(fwd, '/big', 4 << 20);
  for (let i = 0; i < 600 && download.progress() < 6 << 20; i++) await new Promise(r => setTimeout(r, 50));
  assert.ok(download.progress() >= 6 << 20, `the download is under way (${download.progress()} bytes)`);
  const { migration, vm } = await a.client.migrate('mover', { host: '127.0.0.1', port: b.port!, token: TOKEN_B });
  assert.deepEqual([vm.state, vm.exit?.reason], ['stopped', 'migrated']);
  assert.equal(migration.flowsMoved, 1);
  const there = new ConsoleSession(await new ApiClient({ host: '127.0.0.1', port: b.port!, token: TOKEN_B }).console('mover', { write: true }));
  assert.equal((await b.client.inspect('mover')).state, 'running');
  assert.deepEqual(await download.done, { sha: sum, bytes: 24 << 20 }, 'the download ends whole');
  const lastHere = counts(con.text).at(-1)!;
  await there.waitFor(`N=${lastHere + 20}\r\n`, 30_000);
  const all = counts(con.text + there.text); // a line may begin there and end here
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), `the count goes on after ${lastHere}`);
  t.diagnostic(`moved between daemons: ${JSON.stringify(migration)}`);
  await b.client.action('mover', 'kill');
});
