/**
 * gasangd's HTTP server: the REST API over a Unix socket (trusted: file mode 0600) and optionally
 * over TCP (bearer token), the console WebSocket, the web page, and one JSON log line per request.
 * A handler's failure becomes an error reply; nothing a client sends stops the daemon.
 */
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import type { HostApi } from '../vm/types.js';
import { TokenAuth } from './auth.js';
import { ConsoleRegistry } from './console.js';
import { ApiError, errorResponse } from './errors.js';
import { send, sendRaw, type Reply } from './http.js';
import { RequestCounter } from './metrics.js';
import { CONSOLE_PATH, findRoute, type RouteContext } from './routes.js';
import { WebAssets } from './web.js';
import { acceptWebSocket, handshakeProblem } from './websocket.js';

export type LogEntry = Record<string, unknown> & { msg: string };
export type Logger = (entry: LogEntry) => void;

/** One JSON object per line on stderr. */
export const jsonLogger: Logger = entry => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', ...entry })}\n`);
};

export interface ApiServerOptions {
  host: HostApi;
  log?: Logger;
  /** Largest request body (default 64 KiB: a VM spec is far smaller). */
  maxBodyBytes?: number;
}

type Transport = 'unix' | 'tcp';

export class ApiServer {
  readonly requests = new RequestCounter();
  private readonly host: HostApi;
  private readonly log: Logger;
  private readonly maxBodyBytes: number;
  private readonly assets = new WebAssets();
  private readonly servers: Server[] = [];
  private readonly consoles = new ConsoleRegistry();
  private readonly unixPaths: string[] = [];

  constructor(opts: ApiServerOptions) {
    this.host = opts.host;
    this.log = opts.log ?? jsonLogger;
    this.maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024;
  }

  /**
   * Listens on a Unix socket, readable and writable by this user only. A socket file left by a
   * daemon that died is replaced; one that a live daemon answers on is an error.
   */
  async listenUnix(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (await answers(path)) throw new ApiError(500, 'internal', `Another gasangd is listening on ${path}`);
    try { unlinkSync(path); } catch { /* none left over */ }
    const server = this.makeServer('unix', undefined);
    // umask-independent: the socket is created 0600 (the directory is already 0700), then made sure of.
    const mask = process.umask(0o177);
    try {
      await listen(server, () => server.listen(path));
    } finally {
      process.umask(mask);
    }
    chmodSync(path, 0o600);
    this.unixPaths.push(path);
    this.log({ msg: 'listening', transport: 'unix', path });
  }

  /** Listens on TCP; every request must carry the token. Resolves with the bound port. */
  async listenTcp(port: number, address: string, token: string): Promise<number> {
    const server = this.makeServer('tcp', new TokenAuth(token));
    await listen(server, () => server.listen(port, address));
    const bound = (server.address() as { port: number }).port;
    this.log({ msg: 'listening', transport: 'tcp', address, port: bound });
    return bound;
  }

  /** Stops accepting, ends open consoles and connections. The host is the caller's to close. */
  async close(): Promise<void> {
    this.consoles.closeAll();
    await Promise.all(this.servers.map(s => new Promise<void>(resolve => {
      s.close(() => resolve());
      s.closeAllConnections();
    })));
    for (const p of this.unixPaths) { try { unlinkSync(p); } catch { /* already gone */ } }
    this.servers.length = 0;
  }

  private makeServer(transport: Transport, auth: TokenAuth | undefined): Server {
    const server = createServer((req, res) => void this.onRequest(req, res, transport, auth));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head, transport, auth));
    server.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); });
    this.servers.push(server);
    return server;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse, transport: Transport, auth: TokenAuth | undefined): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const [path, query] = splitUrl(req.url);
    res.on('close', () => this.logRequest(method, path, res.statusCode, started, transport));
    try {
      if (auth) {
        const login = this.login(auth, method, path, query);
        if (login) { send(res, login); return; }
        auth.check(req);
      }
      const { route, params } = findRoute(method, path);
      const ctx: RouteContext = { req, params, query, host: this.host, requests: this.requests, assets: this.assets, consoles: this.consoles, maxBodyBytes: this.maxBodyBytes };
      send(res, await route.handle(ctx));
    } catch (err) {
      const r = errorResponse(err);
      if (r.internal) this.log({ msg: 'internal error', level: 'error', method, path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      if (res.headersSent) { res.destroy(); return; }
      send(res, { status: r.status, json: r.body, headers: r.headers });
      // A request refused before its body was read: do not keep reading a body nobody wants.
      if (r.headers.Connection === 'close') req.resume();
    }
  }

  /** GET /?token=TOKEN on TCP: a browser's login, answered with the session cookie. */
  private login(auth: TokenAuth, method: string, path: string, query: URLSearchParams): Reply | undefined {
    const token = query.get('token');
    if (token === null || method !== 'GET' || path !== '/') return undefined;
    if (!auth.matches(token)) throw new ApiError(401, 'unauthorized', 'Wrong API token', { 'WWW-Authenticate': 'Bearer realm="gasangd", error="invalid_token"' });
    return { status: 303, headers: { Location: '/', 'Set-Cookie': auth.setCookieHeader() } };
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, transport: Transport, auth: TokenAuth | undefined): void {
    const started = performance.now();
    const [path, query] = splitUrl(req.url);
    socket.on('error', () => socket.destroy());
    let status = 101;
    try {
      auth?.check(req);
      const params = CONSOLE_PATH.match(path);
      if (!params) throw new ApiError(404, 'not-found', `No WebSocket at ${path} (consoles are at /v1/vms/{vm}/console)`);
      const problem = handshakeProblem(req);
      if (problem) throw new ApiError(400, 'invalid', problem);
      const vm = this.host.get(params.vm!);
      const write = query.get('write');
      const client = vm.attachConsole({ write: write === '1' || write === 'true' || write === '' });
      this.consoles.attach(acceptWebSocket(req, socket, head, { maxMessageBytes: 64 * 1024 }), vm, client);
    } catch (err) {
      const r = errorResponse(err);
      status = r.status;
      if (r.internal) this.log({ msg: 'internal error', level: 'error', method: 'GET', path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      sendRaw(socket, r.status, r.body, r.headers);
    }
    this.logRequest('GET', path, status, started, transport);
  }

  private logRequest(method: string, path: string, status: number, started: number, transport: Transport): void {
    this.requests.add(method, status);
    // The query is never logged: it may hold the login token.
    this.log({ msg: 'request', method, path, status, ms: Math.round((performance.now() - started) * 10) / 10, transport });
  }
}

function splitUrl(url: string | undefined): [path: string, query: URLSearchParams] {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? [u, new URLSearchParams()] : [u.slice(0, q), new URLSearchParams(u.slice(q + 1))];
}

function listen(server: Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => { server.off('error', reject); resolve(); });
    start();
  });
}

/** True when something accepts connections on the Unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise(resolve => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
