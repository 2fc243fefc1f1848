import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { acceptKey, acceptWebSocket, connectWebSocket, handshakeProblem, type WsConnection } from './websocket.js';

/** An echo server: every message comes back as it was sent; closes are recorded. */
async function echoServer(maxMessageBytes = 1 << 20): Promise<{ server: Server; port: number; closes: [number, string][] }> {
  const closes: [number, string][] = [];
  const server = createServer((_req, res) => { res.writeHead(404); res.end(); });
  server.on('upgrade', (req, socket, head) => {
    const problem = handshakeProblem(req);
    if (problem) { socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'); return; }
    const ws = acceptWebSocket(req, socket, head, { maxMessageBytes });
    ws.on('message', (data, binary) => ws.send(binary ? data : data.toString('utf8')));
    ws.on('close', (code, reason) => closes.push([code, reason]));
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, closes };
}

const nextMessage = (ws: WsConnection): Promise<[Buffer, boolean]> => new Promise(r => ws.once('message', (d, b) => r([d, b])));
const closed = (ws: WsConnection): Promise<[number, string]> => new Promise(r => ws.once('close', (c, reason) => r([c, reason])));

describe('WebSocket (RFC 6455)', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  before(async () => { echo = await echoServer(); });
  after(() => echo.server.close());

  test('the handshake answer of RFC 6455 §1.3', () => {
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  test("Node's own WebSocket client (undici) talks to the server", async () => {
    // An independent implementation: Node 20 ships undici's WebSocket behind a flag.
    const script = `
      const ws = new WebSocket('ws://127.0.0.1:${echo.port}/');
      ws.binaryType = 'arraybuffer';
      const got = [];
      const big = new Uint8Array(200000).map((_, i) => i * 7);
      ws.onopen = () => { ws.send('héllo ☃'); ws.send(new Uint8Array([1, 2, 3])); ws.send(big); };
      ws.onmessage = e => {
        if (typeof e.data === 'string') got.push(e.data);
        else { const a = new Uint8Array(e.data); got.push(a.length > 3 ? 'big:' + (a.length === big.length && a.every((v, i) => v === big[i])) : Array.from(a)); }
        if (got.length === 3) ws.close(4000, 'bye');
      };
      ws.onclose = e => { console.log(JSON.stringify({ got, code: e.code, reason: e.reason, clean: e.wasClean })); };
    `;
    const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', script], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const r = JSON.parse(out) as { got: unknown[]; code: number; reason: string; clean: boolean };
    assert.deepEqual(r.got, ['héllo ☃', [1, 2, 3], 'big:true']);
    assert.deepEqual([r.code, r.clean], [4000, true], 'the server answers the close with its code');
    assert.deepEqual(echo.closes.at(-1), [4000, 'bye']);
  });

  test('our client: text, binary, 16- and 64-bit lengths, closing handshake', async () => {
    const ws = await connectWebSocket({ host: '127.0.0.1', port: echo.port, path: '/' });
    for (const n of [0, 125, 126, 300, 65535, 65536, 300_000]) {
      const data = randomBytes(n);
      const got = nextMessage(ws);
      ws.send(data);
      const [back, binary] = await got;
      assert.ok(binary);
      assert.ok(back.equals(data), `${n} bytes`);
    }
    const got = nextMessage(ws);
    ws.send('text ✓');
    assert.deepEqual((await got).map(x => (Buffer.isBuffer(x) ? x.toString() : x)), ['text ✓', false]);
    const end = closed(ws);
    ws.close(1000, 'done');
    assert.deepEqual(await end, [1000, '']);
    assert.equal(ws.send('late'), false);
  });

  test('a refused handshake rejects with the status', async () => {
    const server = createServer((_req, res) => { res.writeHead(409, { 'Content-Type': 'application/json' }); res.end('{"error":{"code":"conflict","message":"Held"}}'); });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    const err = await connectWebSocket({ host: '127.0.0.1', port: (server.address() as { port: number }).port, path: '/' }).catch(e => e as { status: number; body: string });
    assert.equal((err as { status: number }).status, 409);
    assert.match((err as { body: string }).body, /Held/);
    server.close();
  });

  describe('frames a careless client sends', () => {
    let strict: Awaited<ReturnType<typeof echoServer>>;
    before(async () => { strict = await echoServer(1024); });
    after(() => strict.server.close());

    /** A raw TCP client after the handshake: frames go out as given, frames from the server are parsed. */
    async function rawClient(): Promise<{ sock: Socket; frames: { fin: boolean; op: number; payload: Buffer }[]; ended: Promise<void> }> {
      const sock = connect(strict.port, '127.0.0.1');
      const key = randomBytes(16).toString('base64');
      sock.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      const frames: { fin: boolean; op: number; payload: Buffer }[] = [];
      let buf = Buffer.alloc(0);
      let upgraded = false;
      const ready = new Promise<void>(resolve => {
        sock.on('data', (c: Buffer) => {
          buf = Buffer.concat([buf, c]);
          if (!upgraded) {
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            assert.match(buf.subarray(0, end).toString(), new RegExp(`^HTTP/1.1 101[^]*Sec-WebSocket-Accept: ${acceptKey(key).replace(/[+/=]/g, '\\$&')}`));
            buf = buf.subarray(end + 4);
            upgraded = true;
            resolve();
          }
          while (buf.length >= 2) {
            let len = buf[1]! & 0x7f;
            let at = 2;
            if (len === 126) { len = buf.readUInt16BE(2); at = 4; }
            if (buf.length < at + len) break;
            frames.push({ fin: (buf[0]! & 0x80) !== 0, op: buf[0]! & 0x0f, payload: buf.subarray(at, at + len) });
            buf = buf.subarray(at + len);
          }
        });
      });
      const ended = new Promise<void>(r => sock.on('close', () => r()));
      await ready;
      return { sock, frames, ended };
    }

    /** A client frame: masked unless told otherwise. */
    function frame(op: number, payload: Buffer, { fin = true, mask = true, rsv = 0 } = {}): Buffer {
      const key = randomBytes(4);
      const head = Buffer.from([(fin ? 0x80 : 0) | rsv | op, (mask ? 0x80 : 0) | payload.length]);
      if (!mask) return Buffer.concat([head, payload]);
      const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
      return Buffer.concat([head, key, body]);
    }

    const closeCode = (f: { payload: Buffer }): number => f.payload.readUInt16BE(0);

    test('a fragmented message with a ping between its fragments, sent one byte at a time', async () => {
      const c = await rawClient();
      const bytes = Buffer.concat([
        frame(0x1, Buffer.from('hel'), { fin: false }),
        frame(0x9, Buffer.from('are you there')),
        frame(0x0, Buffer.from('lo'), { fin: true }),
      ]);
      for (const b of bytes) { c.sock.write(Buffer.from([b])); await new Promise(r => setImmediate(r)); }
      await new Promise(r => setTimeout(r, 50));
      assert.deepEqual(c.frames.map(f => [f.op, f.payload.toString()]), [[0xa, 'are you there'], [0x1, 'hello']]);
      c.sock.write(frame(0x8, Buffer.from([0x03, 0xe8])));
      await c.ended;
      assert.equal(c.frames.at(-1)!.op, 0x8);
      assert.equal(closeCode(c.frames.at(-1)!), 1000);
    });

    for (const [what, bytes, code] of [
      ['an unmasked frame', frame(0x2, Buffer.from('x'), { mask: false }), 1002],
      ['a reserved bit', frame(0x2, Buffer.from('x'), { rsv: 0x40 }), 1002],
      ['an unknown opcode', frame(0x3, Buffer.from('x')), 1002],
      ['a continuation without a message', frame(0x0, Buffer.from('x')), 1002],
      ['text that is not UTF-8', frame(0x1, Buffer.from([0xc3, 0x28])), 1007],
      // 2048 bytes announced with a 16-bit length, over the server's 1024-byte limit
      ['a message over the limit', Buffer.concat([Buffer.from([0x82, 0x80 | 126, 0x08, 0x00]), randomBytes(4), Buffer.alloc(2048)]), 1009],
      ['a fragmented ping', frame(0x9, Buffer.from('x'), { fin: false }), 1002],
    ] as const) {
      test(`${what} closes the connection with ${code}`, async () => {
        const c = await rawClient();
        c.sock.write(bytes);
        await c.ended;
        const last = c.frames.at(-1)!;
        assert.equal(last.op, 0x8);
        assert.equal(closeCode(last), code);
      });
    }
  });
});
