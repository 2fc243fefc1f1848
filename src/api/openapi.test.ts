/**
 * The server against docs/openapi.json: the same routes on both sides, every documented response
 * (operation × status) produced by a real request and valid against its documented schema, and
 * nothing undocumented answered.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ROUTES } from './routes.js';
import { findOperation, loadOpenApi, SchemaValidator, type DocumentedResponse, type Schema } from './openapi-testing.js';
import { startTestDaemon, type TestDaemon } from './testing.js';
import { ApiClient } from './client.js';
import { MAX_HARTS } from '../cpu/layout.js';
import { MAX_MEMORY_MIB, MAX_CPU_SHARES, MAX_APPEND_BYTES, MAX_DEVICES, MAX_IOPS, MIN_BPS, MAX_BPS } from '../vm/spec.js';

const doc = loadOpenApi();
const validator = new SchemaValidator(doc);
const METHODS = ['get', 'post', 'delete', 'put', 'patch', 'head', 'options'];

function documentedOperations(): string[] {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) for (const m of METHODS) if (item[m]) ops.push(`${m.toUpperCase()} ${path}`);
  return ops.sort();
}

/** Every schema reachable in the document, for a check that the validator understands them. */
function* schemas(node: unknown, key = ''): Generator<Schema> {
  if (typeof node !== 'object' || node === null) return;
  if (key === 'schema' || key === 'schemas-entry') yield node as Schema;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'schemas' && typeof v === 'object' && v) { for (const s of Object.values(v)) yield* schemas(s, 'schemas-entry'); continue; }
    yield* schemas(v, k);
  }
}

interface Seen { status: number; headers: Record<string, string | string[] | undefined>; text: string }

/** A request that may be a WebSocket upgrade; resolves with what the server answered. */
function send(ep: { socketPath?: string; port?: number }, method: string, path: string, opts: { body?: string; headers?: Record<string, string>; upgrade?: boolean } = {}): Promise<Seen> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) { headers['Content-Type'] ??= 'application/json'; headers['Content-Length'] = String(Buffer.byteLength(opts.body)); }
  if (opts.upgrade) Object.assign(headers, { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': headers['Sec-WebSocket-Key'] ?? 'AAAAAAAAAAAAAAAAAAAAAA==' });
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: ep.socketPath, host: ep.port ? '127.0.0.1' : undefined, port: ep.port, method, path, headers });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode!, headers: res.headers, text: '' }); });
    req.on('response', res => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('the server against docs/openapi.json', () => {
  let d: TestDaemon;
  const token = 'openapi-test-token-0123456789';
  /** Documented (operation, status) pairs that a request produced. */
  const covered = new Set<string>();

  /** Sends a request and checks its answer against the document. */
  async function check(ep: 'unix' | 'tcp', method: string, path: string, expect: number, opts: Parameters<typeof send>[3] = {}): Promise<Seen> {
    const r = await send(ep === 'unix' ? { socketPath: d.socketPath } : { port: d.port }, method, path, opts);
    assert.equal(r.status, expect, `${method} ${path}: ${r.text}`);
    const found = findOperation(doc, method, path.split('?')[0]!);
    assert.ok(found, `${method} ${path} is documented`);
    const responses = found.op.responses as Record<string, DocumentedResponse & { $ref?: string }>;
    let documented = responses[String(r.status)];
    assert.ok(documented, `${method} ${found.template}: status ${r.status} is documented`);
    if (documented.$ref) documented = validator.resolve(documented.$ref);
    for (const h of Object.keys(documented.headers ?? {})) assert.ok(r.headers[h.toLowerCase()] !== undefined, `${method} ${path} ${r.status}: header ${h}`);
    if (!documented.content) {
      assert.equal(r.text, '', `${method} ${path} ${r.status} has no documented body`);
    } else {
      const type = String(r.headers['content-type']).split(';')[0]!;
      const media = documented.content[type];
      assert.ok(media, `${method} ${path} ${r.status}: content type ${type} is documented`);
      const body: unknown = type === 'application/json' ? JSON.parse(r.text) : r.text;
      const problems = media.schema ? validator.validate(media.schema, body) : [];
      assert.deepEqual(problems, [], `${method} ${path} ${r.status}: ${r.text.slice(0, 300)}`);
    }
    covered.add(`${method} ${found.template} ${r.status}`);
    return r;
  }

  before(async () => { d = await startTestDaemon({ token }); });
  after(() => d.close());

  test('the document is OpenAPI 3.1, its references resolve and its schemas use what the validator checks', () => {
    assert.match(doc.openapi, /^3\.1\./);
    const text = JSON.stringify(doc);
    for (const [, ref] of text.matchAll(/"\$ref":"([^"]+)"/g)) validator.resolve(ref!);
    let n = 0;
    for (const s of schemas(doc)) { validator.validate(s, null); n++; }
    assert.ok(n > 20, `${n} schemas`);
  });

  test('the server has exactly the documented routes', () => {
    const served = ROUTES.map(r => `${r.method} ${r.path.template}`).sort();
    assert.deepEqual(served, documentedOperations());
  });

  test('the documented VmSpec limits are the server\'s', () => {
    const spec = validator.resolve<{ properties: Record<string, Schema> }>('#/components/schemas/VmSpec').properties;
    assert.equal(spec.cpus!.maximum, MAX_HARTS);
    assert.equal(spec.memoryMiB!.maximum, MAX_MEMORY_MIB);
    assert.equal(spec.cpuShares!.maximum, MAX_CPU_SHARES);
    assert.equal(spec.cpuLimit!.maximum, 100 * MAX_HARTS);
    assert.equal(spec.append!.maxLength, MAX_APPEND_BYTES);
    for (const k of ['drives', 'volumes', 'shares', 'nics']) assert.equal(spec[k]!.maxItems, MAX_DEVICES);
    const drive = validator.resolve<{ properties: Record<string, Schema> }>('#/components/schemas/DriveSpec').properties;
    assert.deepEqual([drive.iops!.minimum, drive.iops!.maximum, drive.bps!.minimum, drive.bps!.maximum], [1, MAX_IOPS, MIN_BPS, MAX_BPS]);
  });

  test('every documented response, produced and valid', async () => {
    const u = 'unix' as const;
    // VMs collection
    await check(u, 'GET', '/v1/vms', 200);
    await check(u, 'POST', '/v1/vms', 201, { body: JSON.stringify({ name: 'doc', memoryMiB: 100, drives: [{ file: '/dev/null', overlay: true }] }) });
    await check(u, 'POST', '/v1/vms', 201, { body: JSON.stringify({ name: 'big', memoryMiB: 1000 }) });
    await check(u, 'GET', '/v1/vms', 200);
    await check(u, 'POST', '/v1/vms', 400, { body: '{"name": "doc", "cpus": 0}' });
    await check(u, 'POST', '/v1/vms', 409, { body: '{"name": "doc"}' });
    await check(u, 'POST', '/v1/vms', 413, { body: JSON.stringify({ name: 'x', append: 'a'.repeat(70_000) }) });
    await check(u, 'POST', '/v1/vms', 415, { body: 'name: doc', headers: { 'Content-Type': 'text/yaml' } });
    // One VM and its actions
    await check(u, 'GET', '/v1/vms/doc', 200);
    await check(u, 'GET', '/v1/vms/nope', 404);
    for (const a of ['pause', 'resume']) await check(u, 'POST', `/v1/vms/doc/${a}`, 409);
    await check(u, 'POST', '/v1/vms/doc/stop', 200, { body: '{}' }); // a VM that does not run: nothing to do
    for (const a of ['start', 'stop', 'kill', 'pause', 'resume']) {
      await check(u, 'POST', `/v1/vms/nope/${a}`, 404);
      await check(u, 'POST', `/v1/vms/doc/${a}`, 400, { body: '{"bogus": 1}' });
    }
    await check(u, 'POST', '/v1/vms/doc/start', 200);
    await check(u, 'POST', '/v1/vms/doc/start', 409);
    await check(u, 'POST', '/v1/vms/big/start', 507);
    await check(u, 'POST', '/v1/vms/doc/pause', 200);
    await check(u, 'POST', '/v1/vms/doc/resume', 200, { body: '{}' });
    await check(u, 'POST', '/v1/vms/doc/resume', 409);
    await check(u, 'DELETE', '/v1/vms/doc', 409);
    // Console: upgrade, refusals
    const ws = await d.client.console('doc', { write: true });
    await check(u, 'GET', '/v1/vms/doc/console', 101, { upgrade: true });
    await check(u, 'GET', '/v1/vms/doc/console?write=1', 409, { upgrade: true });
    await check(u, 'GET', '/v1/vms/nope/console', 404, { upgrade: true });
    await check(u, 'GET', '/v1/vms/doc/console', 400, { upgrade: true, headers: { 'Sec-WebSocket-Key': 'short' } });
    await check(u, 'GET', '/v1/vms/doc/console', 426);
    ws.close();
    // Snapshot and restore (the fake host records the files; src/vm/snapshot.test.ts runs real ones)
    await check(u, 'POST', '/v1/vms/doc/snapshot', 400, { body: '{"file": "relative.snap"}' });
    await check(u, 'POST', '/v1/vms/nope/snapshot', 404);
    await check(u, 'POST', '/v1/vms/doc/snapshot', 200, { body: '{"file": "/snaps/doc.snap", "stop": true}' });
    await check(u, 'POST', '/v1/vms/doc/snapshot', 409);
    await check(u, 'POST', '/v1/vms/doc/restore', 400, { body: '{"file": "/snaps/other.snap"}' });
    await check(u, 'POST', '/v1/vms/nope/restore', 404);
    await check(u, 'POST', '/v1/vms/doc/restore', 200, { body: '{"file": "/snaps/doc.snap"}' });
    await check(u, 'POST', '/v1/vms/doc/restore', 409, { body: '{"file": "/snaps/doc.snap"}' });
    await check(u, 'POST', '/v1/vms/doc/clone', 400, { body: '{}' });
    await check(u, 'POST', '/v1/vms/nope/clone', 404, { body: '{"name": "doc-2"}' });
    await check(u, 'POST', '/v1/vms/doc/clone', 201, { body: '{"name": "doc-2"}' });
    await check(u, 'POST', '/v1/vms/doc/clone', 409, { body: '{"name": "doc-2"}' });
    await check(u, 'POST', '/v1/vms/doc-2/kill', 200);
    await check(u, 'DELETE', '/v1/vms/doc-2', 204);
    // Migration: the fake host accepts a spec; the fake VM asks its target (another fake daemon) and ends as migrated.
    await check(u, 'POST', '/v1/migrations', 400, { body: '{}' });
    await check(u, 'POST', '/v1/migrations', 201, { body: '{"spec": {"name": "incoming"}}' });
    await check(u, 'POST', '/v1/migrations', 409, { body: '{"spec": {"name": "incoming"}}' });
    await check(u, 'DELETE', '/v1/vms/incoming', 204);
    const to = (port: number): string => JSON.stringify({ to: { host: '127.0.0.1', port, token } });
    await check(u, 'POST', '/v1/vms/doc/migrate', 400, { body: '{"to": {"host": "127.0.0.1"}}' });
    await check(u, 'POST', '/v1/vms/nope/migrate', 404, { body: to(d.port!) });
    await check(u, 'POST', '/v1/vms/doc/migrate', 409, { body: to(d.port!) }); // to itself: the name is taken
    const other = await startTestDaemon({ token });
    try {
      await check(u, 'POST', '/v1/vms/doc/migrate', 200, { body: to(other.port!) });
      assert.equal((await other.client.inspect('doc')).state, 'created');
    } finally {
      await other.close();
    }
    await check(u, 'POST', '/v1/vms/doc/stop', 200, { body: '{"timeoutMs": 100}' });
    await check(u, 'POST', '/v1/vms/doc/start', 200);
    await check(u, 'POST', '/v1/vms/doc/kill', 200);
    await check(u, 'DELETE', '/v1/vms/doc', 400, { body: '{"force": true}' });
    await check(u, 'DELETE', '/v1/vms/doc', 204);
    await check(u, 'DELETE', '/v1/vms/doc', 404);
    // Networks
    await check(u, 'GET', '/v1/networks', 200);
    await check(u, 'POST', '/v1/networks', 201, { body: JSON.stringify({ name: 'lan', subnet: '10.0.9.0/24', isolated: true }) });
    await check(u, 'POST', '/v1/networks', 409, { body: JSON.stringify({ name: 'lan' }) });
    await check(u, 'POST', '/v1/networks', 400, { body: JSON.stringify({ name: 'lan2', subnet: '10.0.9.0/30' }) });
    await check(u, 'GET', '/v1/networks', 200);
    await check(u, 'GET', '/v1/networks/lan', 200);
    await check(u, 'GET', '/v1/networks/nope', 404);
    await check(u, 'POST', '/v1/vms', 201, { body: JSON.stringify({ name: 'onlan', nics: [{ type: 'network', network: 'lan', vlan: 5 }] }) });
    await check(u, 'POST', '/v1/vms', 201, { body: JSON.stringify({ name: 'trunked', nics: [{ type: 'network', network: 'lan', trunk: { allowed: [10, 20], native: 1 } }] }) });
    await check(u, 'DELETE', '/v1/vms/trunked', 204);
    await check(u, 'DELETE', '/v1/networks/lan', 409);
    await check(u, 'DELETE', '/v1/vms/onlan', 204);
    await check(u, 'DELETE', '/v1/networks/lan', 400, { body: '{"force": true}' });
    await check(u, 'DELETE', '/v1/networks/lan', 204);
    await check(u, 'DELETE', '/v1/networks/lan', 404);
    // Host, metrics, page
    await check(u, 'GET', '/v1/host', 200);
    await check(u, 'GET', '/metrics', 200);
    await check(u, 'GET', '/openapi.json', 200);
    await check(u, 'GET', '/', 200);
    await check(u, 'GET', '/ui/app.js', 200);
    await check(u, 'GET', '/ui/xterm.mjs', 200);
    await check(u, 'GET', '/ui/xterm.css', 200);
    // TCP: every route refuses without the token; the browser login; a foreign origin.
    for (const op of documentedOperations()) {
      const [method, template] = op.split(' ') as [string, string];
      const path = template.replace('{vm}', 'big').replace('{net}', 'lan');
      await check('tcp', method, path, 401, { upgrade: path.endsWith('/console') });
    }
    const login = await check('tcp', 'GET', `/?token=${token}`, 303);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    await check('tcp', 'GET', '/v1/vms/big/console', 403, { upgrade: true, headers: { Cookie: cookie, Origin: 'http://elsewhere.example' } });
    await check('tcp', 'GET', '/v1/vms/big/console', 101, { upgrade: true, headers: { Cookie: cookie, Origin: `http://127.0.0.1:${d.port}` } });

    const documented: string[] = [];
    for (const op of documentedOperations()) {
      const [method, template] = op.split(' ') as [string, string];
      const responses = (doc.paths[template]![method.toLowerCase()] as { responses: Record<string, unknown> }).responses;
      for (const status of Object.keys(responses)) documented.push(`${op} ${status}`);
    }
    // The real host refuses to stop a VM that is still starting; the fixture's VMs start at once.
    const unreachable = ['POST /v1/vms/{vm}/stop 409'];
    const missing = documented.filter(k => !covered.has(k) && !unreachable.includes(k));
    assert.deepEqual(missing, [], 'documented responses no request produced');
    assert.equal(covered.size, documented.length - unreachable.length, `${covered.size} documented responses produced`);
  });

  test('nothing undocumented is answered', async () => {
    const client = new ApiClient({ socketPath: d.socketPath });
    const probes: [string, string][] = [
      ['GET', '/v1'], ['GET', '/v1/'], ['GET', '/v1/vms/'], ['GET', '/v1/vms/big/'], ['GET', '/v1/vms/big/start/now'],
      ['POST', '/v1/vms/big/reboot'], ['GET', '/v1/vms/big/logs'], ['GET', '/v1/hosts'], ['GET', '/ui/'], ['GET', '/ui/other.js'],
      ['GET', '/metrics/'], ['GET', '/index.html'], ['GET', '/../etc/passwd'], ['GET', '/ui/../../package.json'], ['GET', '/v2/vms'],
      ['PUT', '/v1/vms/big'], ['PATCH', '/v1/vms/big'], ['DELETE', '/v1/vms'], ['POST', '/metrics'], ['OPTIONS', '/v1/vms'], ['HEAD', '/v1/vms'],
      ['PUT', '/'], ['DELETE', '/v1/host'],
    ];
    for (const [method, path] of probes) {
      const r = await client.request(method, path);
      const documented = findOperation(doc, method, path);
      assert.equal(documented, undefined, `${method} ${path} should be a probe of something undocumented`);
      assert.ok(r.status === 404 || r.status === 405, `${method} ${path}: ${r.status}`);
      if (method !== 'HEAD') assert.deepEqual(validator.validate({ $ref: '#/components/schemas/Error' }, r.json), [], `${method} ${path}`);
    }
  });
});
