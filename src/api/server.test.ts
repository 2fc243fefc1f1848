import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { statSync, writeFileSync } from 'node:fs';
import { ApiServer } from './server.js';
import { ApiClient, ApiClientError } from './client.js';
import { FakeHost, startTestDaemon, type TestDaemon } from './testing.js';

type Err = { error: { code: string; message: string } };
const errOf = (json: unknown): Err['error'] => (json as Err).error;

/** A request with a raw body and headers (what a careless or hostile client sends). */
function raw(socketPath: string, method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string | number> = {}): Promise<{ status: number; headers: Record<string, unknown>; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers }, res => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode!, headers: res.headers, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('REST API over the Unix socket', () => {
  let d: TestDaemon;
  before(async () => { d = await startTestDaemon(); });
  after(() => d.close());

  test('create, list, inspect, start, pause, resume, stop, kill, delete', async () => {
    const created = await d.client.request('POST', '/v1/vms', { name: 'alpha', memoryMiB: 128 });
    assert.equal(created.status, 201);
    assert.equal(created.headers.location, '/v1/vms/alpha');
    const info = created.json as { id: string; state: string; spec: { cpus: number; memoryMiB: number } };
    assert.equal(info.state, 'created');
    assert.deepEqual([info.spec.cpus, info.spec.memoryMiB], [1, 128]);

    assert.deepEqual((await d.client.list()).map(v => v.spec.name), ['alpha']);
    assert.equal((await d.client.inspect(info.id)).spec.name, 'alpha', 'a VM is found by id too');
    assert.equal((await d.client.action('alpha', 'start')).state, 'running');
    assert.equal((await d.client.action('alpha', 'pause')).state, 'paused');
    assert.equal((await d.client.action('alpha', 'resume')).state, 'running');
    const stopped = await d.client.action('alpha', 'stop', { timeoutMs: 1000 });
    assert.equal(stopped.state, 'stopped');
    assert.equal(stopped.exit?.reason, 'stopped');
    await d.client.action('alpha', 'start');
    assert.equal((await d.client.action('alpha', 'kill')).exit?.reason, 'killed');
    const del = await d.client.request('DELETE', '/v1/vms/alpha');
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.deepEqual(await d.client.list(), []);
  });

  test('host resources count committed guest RAM', async () => {
    await d.client.create({ name: 'res', memoryMiB: 300 });
    await d.client.action('res', 'start');
    const r = await d.client.host();
    assert.equal(r.memoryCommittedBytes, 300 * 1024 * 1024);
    assert.equal(r.cores, 2);
    assert.equal(r.apiVersion, '1');
    await d.client.action('res', 'kill');
    await d.client.remove('res');
  });

  describe('bad input gets the right status and a message naming the problem', () => {
    const cases: { what: string; method: string; path: string; body?: string; headers?: Record<string, string>; status: number; code: string; message: RegExp }[] = [
      { what: 'malformed JSON', method: 'POST', path: '/v1/vms', body: '{"name": "x",', status: 400, code: 'invalid', message: /^Malformed JSON/ },
      { what: 'a JSON array', method: 'POST', path: '/v1/vms', body: '[1]', status: 400, code: 'invalid', message: /spec: must be an object/ },
      { what: 'no body', method: 'POST', path: '/v1/vms', status: 400, code: 'invalid', message: /body must be a VM spec/ },
      { what: 'an unknown field', method: 'POST', path: '/v1/vms', body: '{"name": "x", "ram": 5}', status: 400, code: 'invalid', message: /Unknown field "ram"/ },
      { what: 'an unknown drive field', method: 'POST', path: '/v1/vms', body: '{"name": "x", "drives": [{"file": "/a", "cache": "none"}]}', status: 400, code: 'invalid', message: /drives\[0\]: unknown field "cache"/ },
      { what: '0 MiB', method: 'POST', path: '/v1/vms', body: '{"name": "x", "memoryMiB": 0}', status: 400, code: 'invalid', message: /memoryMiB: 0 MiB is out of range/ },
      { what: '10,000 harts', method: 'POST', path: '/v1/vms', body: '{"name": "x", "cpus": 10000}', status: 400, code: 'invalid', message: /cpus: 10000 is out of range \(1 to 8\)/ },
      { what: 'a fractional CPU count', method: 'POST', path: '/v1/vms', body: '{"name": "x", "cpus": 1.5}', status: 400, code: 'invalid', message: /cpus: must be an integer/ },
      { what: 'a bad name', method: 'POST', path: '/v1/vms', body: '{"name": "Web Server"}', status: 400, code: 'invalid', message: /name: "Web Server" must be/ },
      { what: 'a relative path', method: 'POST', path: '/v1/vms', body: '{"name": "x", "kernel": "Image"}', status: 400, code: 'invalid', message: /kernel: "Image" must be an absolute path/ },
      { what: 'a missing image', method: 'POST', path: '/v1/vms', body: '{"name": "fresh", "drives": [{"file": "/nonexistent/disk.qcow2"}]}', status: 400, code: 'invalid', message: /drives\[0\]\.file: \/nonexistent\/disk\.qcow2: no such file/ },
      { what: 'a CPU limit above 100 % per CPU', method: 'POST', path: '/v1/vms', body: '{"name": "x", "cpuLimit": 150}', status: 400, code: 'invalid', message: /cpuLimit: 150% is out of range \(1 to 100%/ },
      { what: 'a body that is not JSON', method: 'POST', path: '/v1/vms', body: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported-media-type', message: /must be JSON/ },
      { what: 'an unknown VM', method: 'GET', path: '/v1/vms/ghost', status: 404, code: 'not-found', message: /ghost/ },
      { what: 'starting an unknown VM', method: 'POST', path: '/v1/vms/ghost/start', status: 404, code: 'not-found', message: /ghost/ },
      { what: 'deleting an unknown VM', method: 'DELETE', path: '/v1/vms/ghost', status: 404, code: 'not-found', message: /ghost/ },
      { what: 'an unknown route', method: 'GET', path: '/v2/things', status: 404, code: 'not-found', message: /No such route: \/v2\/things/ },
      { what: 'a wrong method', method: 'PUT', path: '/v1/vms', status: 405, code: 'method-not-allowed', message: /PUT is not allowed on \/v1\/vms \(allowed: GET, POST\)/ },
      { what: 'a wrong method on a VM', method: 'PATCH', path: '/v1/vms/x', status: 405, code: 'method-not-allowed', message: /allowed: GET, DELETE/ },
      { what: 'GET on an action', method: 'GET', path: '/v1/vms/x/start', status: 405, code: 'method-not-allowed', message: /allowed: POST/ },
      { what: 'a bad stop timeout', method: 'POST', path: '/v1/vms/x/stop', body: '{"timeoutMs": -1}', status: 400, code: 'invalid', message: /timeoutMs: -1 ms is out of range/ },
      { what: 'a body on start', method: 'POST', path: '/v1/vms/x/start', body: '{"force": true}', status: 400, code: 'invalid', message: /Unknown field "force" \(this request takes none\)/ },
      { what: 'a plain GET on the console', method: 'GET', path: '/v1/vms/x/console', status: 426, code: 'upgrade-required', message: /WebSocket/ },
      { what: 'bad percent-encoding', method: 'GET', path: '/v1/vms/%E0%A4%A', status: 400, code: 'invalid', message: /percent-encoding/ },
    ];
    before(async () => { await d.client.create({ name: 'x' }); });
    after(async () => { await d.client.remove('x'); });
    for (const c of cases) {
      test(c.what, async () => {
        const headers = { ...(c.body !== undefined && { 'Content-Type': 'application/json' }), ...c.headers };
        const r = await raw(d.socketPath, c.method, c.path, c.body, headers);
        assert.equal(r.status, c.status);
        const e = errOf(r.json);
        assert.equal(e.code, c.code);
        assert.match(e.message, c.message);
        assert.match(e.message, /^[A-Za-z0-9]/);
      });
    }

    test('405 lists the allowed methods', async () => {
      const r = await raw(d.socketPath, 'PUT', '/v1/vms', undefined);
      assert.equal(r.headers.allow, 'GET, POST');
    });

    test('a duplicate name is 409', async () => {
      const e = await d.client.create({ name: 'x' }).catch(err => err as ApiClientError);
      assert.ok(e instanceof ApiClientError);
      assert.equal(e.status, 409);
      assert.equal(e.apiCode, 'conflict');
      assert.match(e.message, /named x already exists/);
    });

    test('an action the state forbids is 409; deleting a running VM is 409', async () => {
      const e = await d.client.action('x', 'pause').catch(err => err as ApiClientError);
      assert.equal((e as ApiClientError).status, 409);
      assert.match((e as ApiClientError).message, /Cannot pause x: it is created/);
      await d.client.action('x', 'start');
      const del = await d.client.remove('x').catch(err => err as ApiClientError);
      assert.equal((del as ApiClientError).status, 409);
      await d.client.action('x', 'kill');
    });

    test('memory overcommit is refused with 507', async () => {
      await d.client.create({ name: 'big1', memoryMiB: 700 });
      await d.client.create({ name: 'big2', memoryMiB: 700 });
      await d.client.action('big1', 'start');
      const e = await d.client.action('big2', 'start').catch(err => err as ApiClientError);
      assert.equal((e as ApiClientError).status, 507);
      assert.equal((e as ApiClientError).apiCode, 'resources');
      assert.match((e as ApiClientError).message, /would commit 1400 MiB of guest RAM; the host allows 1024 MiB/);
      assert.equal((await d.client.inspect('big2')).state, 'created');
      await d.client.action('big1', 'kill');
      await d.client.remove('big1');
      await d.client.remove('big2');
    });

    test('an oversized body is 413, declared or streamed', async () => {
      const big = JSON.stringify({ name: 'y', append: 'x'.repeat(100_000) });
      const declared = await raw(d.socketPath, 'POST', '/v1/vms', big, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(big) });
      assert.equal(declared.status, 413);
      assert.equal(errOf(declared.json).code, 'payload-too-large');
      assert.match(errOf(declared.json).message, /larger than 65536 bytes/);
      const streamed = await raw(d.socketPath, 'POST', '/v1/vms', big, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      assert.equal(streamed.status, 413);
    });

    test('garbage on the socket is answered 400 and the daemon carries on', async () => {
      const reply = await new Promise<string>(resolve => {
        const s = connect(d.socketPath);
        let text = '';
        s.on('data', c => { text += c; });
        s.on('close', () => resolve(text));
        s.end('\x00\x01NOT HTTP AT ALL\r\n\r\n');
      });
      assert.match(reply, /^HTTP\/1.1 400/);
    });

    test('the daemon still answers after all of the above', async () => {
      assert.deepEqual((await d.client.list()).map(v => v.spec.name), ['x']);
    });
  });

  test('one JSON log line per request: method, path, status, ms', async () => {
    const before = d.logs.length;
    await d.client.request('GET', '/v1/vms/ghost?secret=1');
    await d.client.request('GET', '/v1/vms');
    const lines = d.logs.slice(before).filter(l => l.msg === 'request');
    assert.equal(lines.length, 2);
    assert.deepEqual({ ...lines[0], ms: 0 }, { msg: 'request', method: 'GET', path: '/v1/vms/ghost', status: 404, ms: 0, transport: 'unix' });
    assert.equal(typeof lines[1]!.ms, 'number');
    assert.equal(lines[1]!.status, 200);
  });

  test('the socket is private to its user (mode 0600)', () => {
    assert.equal(statSync(d.socketPath).mode & 0o777, 0o600);
  });

  test('a second daemon on the same socket is refused; a stale socket file is replaced', async () => {
    const other = new ApiServer({ host: new FakeHost(), log: () => {} });
    await assert.rejects(other.listenUnix(d.socketPath), /Another gasangd is listening/);
    const stalePath = `${d.socketPath}.stale`;
    writeFileSync(stalePath, '');
    await other.listenUnix(stalePath);
    const r = await new ApiClient({ socketPath: stalePath }).list();
    assert.deepEqual(r, []);
    await other.close();
  });

  test('a client of a daemon that is not running gets one clear line', async () => {
    const e = await new ApiClient({ socketPath: '/nonexistent/gasangd.sock' }).list().catch(err => err as Error);
    assert.match((e as Error).message, /^gasangd is not running \(nothing listens on \/nonexistent\/gasangd.sock\)/);
  });
});

describe('TCP with a bearer token', () => {
  const token = 'test-token-0123456789abcdef';
  let d: TestDaemon;
  let tcp: (method: string, path: string, headers?: Record<string, string>, body?: string) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: unknown }>;
  before(async () => {
    d = await startTestDaemon({ token });
    tcp = (method, path, headers = {}, body) => new ApiClient({ host: '127.0.0.1', port: d.port }).request(method, path, body, headers);
    await d.client.create({ name: 'tcpvm' });
  });
  after(() => d.close());

  test('no credentials: 401 with WWW-Authenticate, on every route', async () => {
    for (const [method, path] of [['GET', '/v1/vms'], ['POST', '/v1/vms'], ['GET', '/metrics'], ['GET', '/'], ['DELETE', '/v1/vms/tcpvm'], ['GET', '/nonexistent']] as const) {
      const r = await tcp(method, path);
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="gasangd"');
      assert.equal(errOf(r.json).code, 'unauthorized');
      assert.match(errOf(r.json).message, /needs an API token over TCP/);
    }
    assert.equal((await d.client.inspect('tcpvm')).state, 'created', 'the refused DELETE did nothing');
  });

  test('a wrong or malformed token: 401', async () => {
    const wrong = await tcp('GET', '/v1/vms', { Authorization: `Bearer ${token}x` });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.headers['www-authenticate']), /invalid_token/);
    assert.match(errOf(wrong.json).message, /Wrong API token/);
    const basic = await tcp('GET', '/v1/vms', { Authorization: 'Basic dXNlcjpwYXNz' });
    assert.equal(basic.status, 401);
    assert.match(errOf(basic.json).message, /must be "Bearer TOKEN"/);
  });

  test('the right token works; the Unix socket needs none', async () => {
    const r = await new ApiClient({ host: '127.0.0.1', port: d.port, token }).list();
    assert.deepEqual(r.map(v => v.spec.name), ['tcpvm']);
    assert.equal((await d.client.list()).length, 1);
  });

  test('a browser logs in with /?token= and gets a session cookie; other origins may not use it', async () => {
    const bad = await tcp('GET', '/?token=nope');
    assert.equal(bad.status, 401);
    const login = await tcp('GET', `/?token=${token}`);
    assert.equal(login.status, 303);
    assert.equal(login.headers.location, '/');
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    assert.match(String(login.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    assert.ok(!cookie.includes(token), 'the cookie is not the token');
    const page = await tcp('GET', '/', { Cookie: cookie });
    assert.equal(page.status, 200);
    const list = await tcp('GET', '/v1/vms', { Cookie: cookie, Origin: `http://127.0.0.1:${d.port}`, Host: `127.0.0.1:${d.port}` });
    assert.equal(list.status, 200);
    const foreign = await tcp('POST', '/v1/vms/tcpvm/start', { Cookie: cookie, Origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(errOf(foreign.json).code, 'forbidden');
    assert.equal((await d.client.inspect('tcpvm')).state, 'created');
    const forged = await tcp('GET', '/v1/vms', { Cookie: 'gasangd_session=forged' });
    assert.equal(forged.status, 401);
  });

  test('the console WebSocket needs the token too', async () => {
    const anon = await new ApiClient({ host: '127.0.0.1', port: d.port }).console('tcpvm').catch(e => e as ApiClientError);
    assert.equal((anon as ApiClientError).status, 401);
    const ws = await new ApiClient({ host: '127.0.0.1', port: d.port, token }).console('tcpvm');
    ws.close();
  });

  test('the token never reaches the log', () => {
    assert.ok(d.logs.length > 5);
    for (const l of d.logs) assert.ok(!JSON.stringify(l).includes(token));
    assert.ok(d.logs.some(l => l.transport === 'tcp' && l.status === 401));
  });

  test('a token shorter than 16 characters is refused', async () => {
    const s = new ApiServer({ host: new FakeHost(), log: () => {} });
    await assert.rejects(s.listenTcp(0, '127.0.0.1', 'short'), /at least 16 characters/);
    await s.close();
  });
});
