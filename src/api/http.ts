/** Small HTTP pieces shared by the server's routes: replies, request bodies, path matching. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { ApiError, invalid } from './errors.js';

export const JSON_TYPE = 'application/json; charset=utf-8';

/** What a route answers. */
export interface Reply {
  status: number;
  /** Serialized as JSON unless `body` is given. */
  json?: unknown;
  body?: string | Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export function send(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  let body: string | Buffer | undefined = reply.body;
  if (body === undefined && reply.json !== undefined) body = JSON.stringify(reply.json);
  if (body !== undefined) {
    headers['Content-Type'] = reply.contentType ?? JSON_TYPE;
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  headers['Cache-Control'] ??= 'no-store';
  res.writeHead(reply.status, headers);
  res.end(body);
}

/** An HTTP answer written straight to a socket (refusing an upgrade request before the handshake). */
export function sendRaw(socket: Duplex, status: number, json: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(json);
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, `Content-Type: ${JSON_TYPE}`, `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * Reads a JSON request body of at most `max` bytes: undefined when there is none, 413 when too
 * big, 415 when not declared as JSON, 400 when malformed.
 */
export async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) throw tooLarge(max);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw tooLarge(max);
    chunks.push(chunk);
  }
  if (n === 0) return undefined;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new ApiError(415, 'unsupported-media-type', `The body must be JSON (Content-Type: application/json), not ${type ? JSON.stringify(type) : 'untyped'}`);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`Malformed JSON: ${(err as Error).message}`);
  }
}

const tooLarge = (max: number): ApiError =>
  new ApiError(413, 'payload-too-large', `The body is larger than ${max} bytes`, { Connection: 'close' });

/** A route path template such as /v1/vms/{vm}/start, split once. */
export class PathTemplate {
  private readonly parts: readonly string[];

  constructor(readonly template: string) { this.parts = template.split('/'); }

  /** The parameters when `path` matches, else undefined. */
  match(path: string): Record<string, string> | undefined {
    const segs = path.split('/');
    if (segs.length !== this.parts.length) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < segs.length; i++) {
      const p = this.parts[i]!;
      const s = segs[i]!;
      if (p.startsWith('{')) {
        if (s === '') return undefined;
        try {
          params[p.slice(1, -1)] = decodeURIComponent(s);
        } catch {
          throw invalid(`Bad percent-encoding in the path: ${JSON.stringify(s)}`);
        }
      } else if (p !== s) return undefined;
    }
    return params;
  }
}
