import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { ApiClientError } from './client.js';
import { startTestDaemon, type TestDaemon } from './testing.js';
import type { WsConnection } from './websocket.js';

/** Collects what a console connection receives: output bytes and JSON events. */
function collect(ws: WsConnection): { out: () => string; events: Record<string, unknown>[]; waitFor(text: string): Promise<void>; waitEvent(type: string): Promise<Record<string, unknown>> } {
  let out = '';
  const events: Record<string, unknown>[] = [];
  let wake: (() => void)[] = [];
  ws.on('message', (data, binary) => {
    if (binary) out += data.toString('latin1');
    else events.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    for (const w of wake.splice(0)) w();
  });
  const until = (cond: () => boolean, what: string): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}; output: ${JSON.stringify(out)}`)), 5000);
    const check = (): void => { if (cond()) { clearTimeout(timer); resolve(); } else wake.push(check); };
    check();
  });
  return {
    out: () => out,
    events,
    waitFor: text => until(() => out.includes(text), JSON.stringify(text)),
    async waitEvent(type) { await until(() => events.some(e => e.type === type), `event ${type}`); return events.find(e => e.type === type)!; },
  };
}

const tick = (ms = 30): Promise<void> => new Promise(r => setTimeout(r, ms));

describe('console over WebSocket', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    await d.client.create({ name: 'con' });
    await d.client.action('con', 'start');
  });
  after(() => d.close());

  test('many watchers, one writer: typing reaches the guest, output reaches everyone', async () => {
    const writer = await d.client.console('con', { write: true });
    const cw = collect(writer);
    const w1 = await d.client.console('con');
    const c1 = collect(w1);
    const w2 = await d.client.console('con');
    const c2 = collect(w2);
    assert.deepEqual(await cw.waitEvent('hello'), { type: 'hello', vm: 'con', writer: true });
    assert.deepEqual(await c1.waitEvent('hello'), { type: 'hello', vm: 'con', writer: false });

    const vm = d.host.get('con');
    writer.send('echo hi\r');
    writer.send(Buffer.from([0x03])); // binary frames are typing too (Ctrl-C)
    for (const c of [cw, c1, c2]) await c.waitFor('echo hi\r\x03');
    assert.equal(vm.input, 'echo hi\r\x03');

    vm.print('guest says hello\r\n');
    for (const c of [cw, c1, c2]) await c.waitFor('guest says hello');

    // A second writer is refused before the upgrade; a watcher's typing is refused with an event.
    const second = await d.client.console('con', { write: true }).catch(e => e as ApiClientError);
    assert.ok(second instanceof ApiClientError);
    assert.equal(second.status, 409);
    assert.match(second.message, /Another client holds the write side of con's console/);
    w1.send('rm -rf /\r');
    const refused = await c1.waitEvent('error');
    assert.match(String(refused.message), /read-only/);
    assert.equal(vm.input, 'echo hi\r\x03');

    // Closing detaches: the write side is free again.
    assert.equal(vm.consoleClients, 3);
    writer.close();
    w1.close();
    w2.close();
    await tick(100);
    assert.equal(vm.consoleClients, 0);
    const next = await d.client.console('con', { write: true });
    next.close();
  });

  test('watchers hear when the run ends', async () => {
    const ws = await d.client.console('con');
    const c = collect(ws);
    await c.waitEvent('hello');
    d.host.get('con').powerOff();
    assert.deepEqual(await c.waitEvent('stopped'), { type: 'stopped', state: 'stopped', exit: { reason: 'poweroff' } });
    ws.close();
    await d.client.action('con', 'start');
  });

  test('a console attached before the start hears when that run ends', async () => {
    await d.client.action('con', 'kill');
    const ws = await d.client.console('con');
    const c = collect(ws);
    await c.waitEvent('hello');
    await d.client.action('con', 'start');
    d.host.get('con').print('booting\r\n');
    await c.waitFor('booting');
    d.host.get('con').powerOff();
    assert.deepEqual(await c.waitEvent('stopped'), { type: 'stopped', state: 'stopped', exit: { reason: 'poweroff' } });
    ws.close();
    await d.client.action('con', 'start');
  });

  test('unknown VMs and broken handshakes are refused with JSON errors', async () => {
    const e = await d.client.console('ghost').catch(err => err as ApiClientError);
    assert.equal((e as ApiClientError).status, 404);
    assert.match((e as ApiClientError).message, /ghost/);
    const r = await new Promise<string>(resolve => {
      const s = connect(d.socketPath);
      let text = '';
      s.on('data', c => { text += c; });
      s.on('close', () => resolve(text));
      s.write('GET /v1/vms/con/console HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    assert.match(r, /^HTTP\/1.1 400 Bad Request/);
    assert.match(r, /"code":"invalid","message":"Sec-WebSocket-Key must be 16 bytes in base64"/);
    const other = await new Promise<string>(resolve => {
      const s = connect(d.socketPath);
      let text = '';
      s.on('data', c => { text += c; });
      s.on('close', () => resolve(text));
      s.write('GET /v1/vms HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    assert.match(other, /^HTTP\/1.1 404 Not Found[^]*No WebSocket at \/v1\/vms/);
  });

  test('a watcher that stops reading misses output instead of filling the daemon', async () => {
    // A client that completes the handshake and then reads nothing while the guest floods.
    const sock = connect(d.socketPath);
    const key = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    await new Promise<void>(resolve => {
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        buf = buf.subarray(end + 4);
        sock.off('data', onData);
        sock.pause();
        resolve();
      };
      sock.on('data', onData);
      sock.write(`GET /v1/vms/con/console HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const vm = d.host.get('con');
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const chunks = 320; // 20 MiB
    for (let i = 0; i < chunks; i++) { vm.print(chunk); if (i % 8 === 0) await new Promise(r => setImmediate(r)); }
    vm.print('END');
    const total = chunks * chunk.length + 3;

    // Now read everything: binary frames + the dropped counts must add up to what was printed.
    let received = 0;
    let dropped = 0;
    const parse = (): void => {
      while (buf.length >= 2) {
        let len = buf[1]! & 0x7f;
        let at = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (buf.length < at + len) return;
        const op = buf[0]! & 0x0f;
        const payload = buf.subarray(at, at + len);
        if (op === 0x2) received += len;
        else if (op === 0x1) {
          const ev = JSON.parse(payload.toString()) as { type: string; bytes?: number };
          if (ev.type === 'dropped') dropped += ev.bytes!;
        }
        buf = buf.subarray(at + len);
      }
    };
    sock.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); parse(); });
    sock.resume();
    // Drain what the daemon kept, then one more byte of output carries the dropped count.
    let seen = -1;
    while (seen !== received) { seen = received; await tick(200); }
    vm.print('!');
    await tick(200);
    assert.ok(dropped > 0, 'output was dropped for the slow client');
    assert.ok(received < 4 * 1024 * 1024, `at most a few MiB were kept for it (${received} bytes)`);
    assert.equal(received + dropped, total + 1);
    sock.destroy();
  });
});
