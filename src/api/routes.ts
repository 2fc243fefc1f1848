/**
 * The REST API's routes, one table: method, path template, handler. docs/openapi.json documents
 * each of them (a test holds the two together). VM paths take a name or an id.
 */
import type { IncomingMessage } from 'node:http';
import { ApiClient } from './client.js';
import type { HostApi, VmHandle } from '../vm/types.js';
import { ApiError } from './errors.js';
import { readJson, PathTemplate, type Reply } from './http.js';
import { renderMetrics, METRICS_CONTENT_TYPE, type RequestCounter } from './metrics.js';
import { parseCloneBody, parseEmptyBody, parseIncomingBody, parseMigrateBody, parseRestoreBody, parseSnapshotBody, parseStopBody, parseVmSpec } from './spec.js';
import type { WebAssets } from './web.js';
import type { ConsoleRegistry } from './console.js';

export const API_VERSION = '1';

export interface RouteContext {
  req: IncomingMessage;
  params: Record<string, string>;
  query: URLSearchParams;
  host: HostApi;
  requests: RequestCounter;
  assets: WebAssets;
  consoles: ConsoleRegistry;
  maxBodyBytes: number;
}

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Route {
  method: Method;
  path: PathTemplate;
  handle(ctx: RouteContext): Promise<Reply> | Reply;
}

const body = (ctx: RouteContext): Promise<unknown> => readJson(ctx.req, ctx.maxBodyBytes);
const vmOf = (ctx: RouteContext): VmHandle => ctx.host.get(ctx.params.vm!);

/** POST /v1/vms/{vm}/ACTION: run it, answer the VM as it is afterwards. */
function action(run: (vm: VmHandle, body: unknown) => Promise<void>): (ctx: RouteContext) => Promise<Reply> {
  return async ctx => {
    const b = await body(ctx);
    const vm = vmOf(ctx);
    await run(vm, b);
    return { status: 200, json: vm.info() };
  };
}

const route = (method: Method, path: string, handle: Route['handle']): Route => ({ method, path: new PathTemplate(path), handle });

export const ROUTES: readonly Route[] = [
  route('GET', '/v1/vms', ctx => ({ status: 200, json: { vms: ctx.host.list() } })),
  route('POST', '/v1/vms', async ctx => {
    const b = await body(ctx);
    if (b === undefined) throw new ApiError(400, 'invalid', 'The body must be a VM spec (JSON), e.g. {"name": "web"}');
    const vm = await ctx.host.create(parseVmSpec(b));
    return { status: 201, json: vm.info(), headers: { Location: `/v1/vms/${encodeURIComponent(vm.name)}` } };
  }),
  route('GET', '/v1/vms/{vm}', ctx => ({ status: 200, json: vmOf(ctx).info() })),
  route('DELETE', '/v1/vms/{vm}', async ctx => {
    parseEmptyBody(await body(ctx));
    await ctx.host.remove(ctx.params.vm!);
    return { status: 204 };
  }),
  route('POST', '/v1/vms/{vm}/start', async ctx => {
    parseEmptyBody(await body(ctx));
    const vm = vmOf(ctx);
    await vm.start();
    ctx.consoles.watch(vm); // consoles attached before the start hear when this run ends
    return { status: 200, json: vm.info() };
  }),
  route('POST', '/v1/vms/{vm}/stop', action((vm, b) => vm.stop(parseStopBody(b)))),
  route('POST', '/v1/vms/{vm}/kill', action((vm, b) => { parseEmptyBody(b); return vm.kill(); })),
  route('POST', '/v1/vms/{vm}/pause', action((vm, b) => { parseEmptyBody(b); return vm.pause(); })),
  route('POST', '/v1/vms/{vm}/resume', action((vm, b) => { parseEmptyBody(b); return vm.resume(); })),
  route('POST', '/v1/vms/{vm}/snapshot', async ctx => {
    const opts = parseSnapshotBody(await body(ctx));
    const vm = vmOf(ctx);
    const snapshot = await vm.snapshot(opts);
    return { status: 200, json: { snapshot, vm: vm.info() } };
  }),
  route('POST', '/v1/vms/{vm}/restore', async ctx => {
    const opts = parseRestoreBody(await body(ctx));
    const vm = vmOf(ctx);
    await vm.restore(opts);
    ctx.consoles.watch(vm);
    return { status: 200, json: vm.info() };
  }),
  route('POST', '/v1/vms/{vm}/clone', async ctx => {
    const opts = parseCloneBody(await body(ctx));
    const clone = await ctx.host.clone(ctx.params.vm!, opts);
    ctx.consoles.watch(ctx.host.get(clone.vm.id));
    return { status: 201, json: clone };
  }),
  route('POST', '/v1/vms/{vm}/migrate', async ctx => {
    const to = parseMigrateBody(await body(ctx));
    const vm = vmOf(ctx);
    const target = new ApiClient({ host: to.host, port: to.port, ...(to.token !== undefined ? { token: to.token } : {}) });
    const migration = await vm.migrate({
      accept: async spec => {
        const r = await target.acceptMigration(spec);
        return { host: to.host, port: r.port, token: r.token };
      },
    }, { copyStorage: to.copyStorage });
    return { status: 200, json: { migration, vm: vm.info() } };
  }),
  route('POST', '/v1/migrations', async ctx => {
    const { spec } = parseIncomingBody(await body(ctx));
    // The incoming thread listens on the address this request came in on (loopback over the Unix socket).
    const incoming = await ctx.host.acceptMigration(spec, { host: ctx.req.socket.localAddress ?? '127.0.0.1' });
    ctx.consoles.watch(ctx.host.get(incoming.vm.id));
    return { status: 201, json: incoming };
  }),
  route('GET', '/v1/vms/{vm}/console', ctx => {
    vmOf(ctx); // an unknown VM is 404 before it is 426
    throw new ApiError(426, 'upgrade-required', 'The console is a WebSocket: connect with Upgrade: websocket', { Upgrade: 'websocket', Connection: 'Upgrade' });
  }),
  route('GET', '/v1/networks', async ctx => ({ status: 200, json: { networks: await ctx.host.listNetworks() } })),
  route('POST', '/v1/networks', async ctx => {
    const b = await body(ctx);
    if (b === undefined) throw new ApiError(400, 'invalid', 'The body must be a network spec (JSON), e.g. {"name": "lan", "subnet": "10.0.5.0/24"}');
    const net = await ctx.host.createNetwork(b);
    return { status: 201, json: net, headers: { Location: `/v1/networks/${encodeURIComponent(net.spec.name)}` } };
  }),
  route('GET', '/v1/networks/{net}', async ctx => ({ status: 200, json: await ctx.host.getNetwork(ctx.params.net!) })),
  route('DELETE', '/v1/networks/{net}', async ctx => {
    parseEmptyBody(await body(ctx));
    await ctx.host.removeNetwork(ctx.params.net!);
    return { status: 204 };
  }),
  route('GET', '/v1/host', ctx => ({ status: 200, json: { apiVersion: API_VERSION, vms: ctx.host.list().length, ...ctx.host.resources() } })),
  route('GET', '/metrics', ctx => ({ status: 200, body: renderMetrics(ctx.host, ctx.requests), contentType: METRICS_CONTENT_TYPE })),
  route('GET', '/openapi.json', ctx => ({ status: 200, body: ctx.assets.openapi(), contentType: 'application/json; charset=utf-8' })),
  route('GET', '/', ctx => ({ status: 200, body: ctx.assets.page(), contentType: 'text/html; charset=utf-8' })),
  route('GET', '/ui/app.js', ctx => ({ status: 200, body: ctx.assets.appScript(), contentType: 'text/javascript; charset=utf-8' })),
  route('GET', '/ui/xterm.mjs', ctx => ({ status: 200, body: ctx.assets.xtermScript(), contentType: 'text/javascript; charset=utf-8', headers: { 'Cache-Control': 'max-age=3600' } })),
  route('GET', '/ui/xterm.css', ctx => ({ status: 200, body: ctx.assets.xtermStyle(), contentType: 'text/css; charset=utf-8', headers: { 'Cache-Control': 'max-age=3600' } })),
];

/** The console route, which the server also answers on 'upgrade'. */
export const CONSOLE_PATH = new PathTemplate('/v1/vms/{vm}/console');

/** The route for `method path`; 404 for an unknown path, 405 (with Allow) for a known path and another method. */
export function findRoute(method: string, path: string): { route: Route; params: Record<string, string> } {
  const allowed: string[] = [];
  for (const r of ROUTES) {
    const params = r.path.match(path);
    if (!params) continue;
    if (r.method === method) return { route: r, params };
    allowed.push(r.method);
  }
  if (allowed.length) throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path} (allowed: ${allowed.join(', ')})`, { Allow: allowed.join(', ') });
  throw new ApiError(404, 'not-found', `No such route: ${path}`);
}
