/**
 * A client of gasangd's REST API (used by `gasang vm` and by tests): over the daemon's Unix
 * socket, or over TCP with a bearer token. Refusals become ApiClientError with the daemon's
 * status, code and message.
 */
import { request } from 'node:http';
import { GasangError } from '../util/errors.js';
import type { CloneOptions, CloneResult, IncomingMigration, MigrationResult, SnapshotResult, VmInfo, VmSpec } from '../vm/types.js';
import type { NetworkInfo, NetworkSpec } from '../vm/networks.js';
import { connectWebSocket, WebSocketError, type WsConnection } from './websocket.js';

export interface Endpoint {
  socketPath?: string;
  host?: string;
  port?: number;
  token?: string;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export class ApiClientError extends GasangError {
  constructor(readonly status: number, readonly apiCode: string, message: string) {
    super(`api-${apiCode}`, message);
  }
}

export type VmAction = 'start' | 'stop' | 'kill' | 'pause' | 'resume';

export interface HostResources {
  apiVersion: string;
  vms: number;
  memoryCommittedBytes: number;
  memoryLimitBytes: number;
  cores: number;
}

const vmPath = (name: string): string => `/v1/vms/${encodeURIComponent(name)}`;

export class ApiClient {
  constructor(readonly endpoint: Endpoint) {}

  private headers(): Record<string, string> {
    return this.endpoint.token ? { Authorization: `Bearer ${this.endpoint.token}` } : {};
  }

  /** One request; any status resolves (the typed methods below turn refusals into errors). */
  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const { socketPath, host, port } = this.endpoint;
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath, host, port, method, path,
        headers: { ...this.headers(), ...(payload !== undefined && { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }), ...headers },
      }, res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          if (String(res.headers['content-type']).startsWith('application/json')) {
            try { json = JSON.parse(text); } catch { /* left undefined */ }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', err => reject(this.unreachable(err)));
      req.end(payload);
    });
  }

  private unreachable(err: Error & { code?: string }): Error {
    const where = this.endpoint.socketPath ?? `${this.endpoint.host}:${this.endpoint.port}`;
    if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') return new ApiClientError(0, 'unreachable', `gasangd is not running (nothing listens on ${where}); start it with gasangd`);
    if (err.code === 'EACCES') return new ApiClientError(0, 'unreachable', `No permission to use ${where} (the socket belongs to the user who started gasangd)`);
    return new ApiClientError(0, 'unreachable', `Cannot reach gasangd on ${where}: ${err.message}`);
  }

  /** The JSON body of a 2xx answer, else an ApiClientError with the daemon's message. */
  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request(method, path, body);
    if (r.status >= 200 && r.status < 300) return r.json as T;
    throw errorOf(r);
  }

  list(): Promise<VmInfo[]> { return this.call<{ vms: VmInfo[] }>('GET', '/v1/vms').then(r => r.vms); }
  create(spec: VmSpec): Promise<VmInfo> { return this.call('POST', '/v1/vms', spec); }
  inspect(name: string): Promise<VmInfo> { return this.call('GET', vmPath(name)); }
  remove(name: string): Promise<void> { return this.call('DELETE', vmPath(name)); }
  action(name: string, action: VmAction, body?: unknown): Promise<VmInfo> { return this.call('POST', `${vmPath(name)}/${action}`, body); }
  snapshot(name: string, opts: { file?: string; stop?: boolean } = {}): Promise<{ snapshot: SnapshotResult; vm: VmInfo }> { return this.call('POST', `${vmPath(name)}/snapshot`, opts); }
  restore(name: string, opts: { file?: string } = {}): Promise<VmInfo> { return this.call('POST', `${vmPath(name)}/restore`, opts); }
  /** Moves the running VM to the gasangd at `to` (its TCP address and API token) by live migration. */
  migrate(name: string, to: { host: string; port: number; token?: string }, opts: { copyStorage?: boolean } = {}): Promise<{ migration: MigrationResult; vm: VmInfo }> {
    return this.call('POST', `${vmPath(name)}/migrate`, { to, ...(opts.copyStorage ? { copyStorage: true } : {}) });
  }
  /** Readies an incoming VM of `spec` (what a source daemon asks of its target). */
  acceptMigration(spec: VmSpec): Promise<IncomingMigration> { return this.call('POST', '/v1/migrations', { spec }); }
  /** A new running VM continuing a snapshot of `source` with its own name and MACs (201). */
  clone(source: string, opts: CloneOptions): Promise<CloneResult> { return this.call('POST', `${vmPath(source)}/clone`, opts); }
  host(): Promise<HostResources> { return this.call('GET', '/v1/host'); }
  networks(): Promise<NetworkInfo[]> { return this.call<{ networks: NetworkInfo[] }>('GET', '/v1/networks').then(r => r.networks); }
  createNetwork(spec: NetworkSpec): Promise<NetworkInfo> { return this.call('POST', '/v1/networks', spec); }
  network(name: string): Promise<NetworkInfo> { return this.call('GET', `/v1/networks/${encodeURIComponent(name)}`); }
  removeNetwork(name: string): Promise<void> { return this.call('DELETE', `/v1/networks/${encodeURIComponent(name)}`); }

  /** Opens the VM's console WebSocket (`write`: ask for the write side). */
  async console(name: string, opts: { write?: boolean } = {}): Promise<WsConnection> {
    try {
      return await connectWebSocket({ ...this.endpoint, path: `${vmPath(name)}/console${opts.write ? '?write=1' : ''}`, headers: this.headers() });
    } catch (err) {
      if (err instanceof WebSocketError && err.status !== undefined) {
        let json: unknown;
        try { json = JSON.parse(err.body ?? ''); } catch { /* not JSON */ }
        throw errorOf({ status: err.status, headers: {}, text: err.body ?? '', json });
      }
      if (err instanceof Error) throw this.unreachable(err);
      throw err;
    }
  }
}

function errorOf(r: HttpResult): ApiClientError {
  const e = (r.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (e && typeof e.message === 'string') return new ApiClientError(r.status, String(e.code), e.message);
  return new ApiClientError(r.status, 'http', `gasangd answered HTTP ${r.status}`);
}
