/**
 * WebSocket (RFC 6455) for the console: the server side of the opening handshake, the client side
 * (for `gasang vm console`, over a Unix socket or TCP), and one connection class that frames and
 * unframes for either role. No extensions, no subprotocols. Written here rather than taken from
 * npm because the console needs only this much (about 300 lines) and gasang has no runtime
 * dependencies beyond the page's terminal.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { GasangError } from '../util/errors.js';

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 6455 §5.2 opcodes. */
const enum Op { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xa }

/** RFC 6455 §7.4.1 close codes used here. */
export const enum CloseCode {
  Normal = 1000,
  GoingAway = 1001,
  ProtocolError = 1002,
  NoStatus = 1005,
  Abnormal = 1006,
  InvalidData = 1007,
  PolicyViolation = 1008,
  TooBig = 1009,
}

/** Frame header (RFC 6455 §5.2): byte 0 = FIN | RSV1-3 | opcode; byte 1 = MASK | payload length (7 bits). */
const FIN = 0x80;
const RSV_MASK = 0x70;
const OPCODE_MASK = 0x0f;
const MASK_BIT = 0x80;
const LEN7_MASK = 0x7f;
/** Length 126: a 16-bit length follows; 127: a 64-bit length follows. */
const LEN16 = 126;
const LEN64 = 127;
const MAX_CONTROL_PAYLOAD = 125;

export class WebSocketError extends GasangError {
  constructor(message: string, readonly status?: number, readonly body?: string) {
    super('websocket', message);
  }
}

export const acceptKey = (key: string): string => createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');

export interface WsOptions {
  /** Messages above this size close the connection with 1009 (default 1 MiB). */
  maxMessageBytes?: number;
}

export interface WsConnectionEvents {
  message: [data: Buffer, binary: boolean];
  close: [code: number, reason: string];
}

/**
 * One WebSocket connection over an upgraded socket. Events: 'message' (data, binary) once per
 * whole message, 'close' (code, reason) once, whoever closed.
 */
export class WsConnection extends EventEmitter<WsConnectionEvents> {
  private buf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentOp: Op.Text | Op.Binary | undefined;
  private closeSent = false;
  private closed = false;
  private readonly maxMessageBytes: number;
  private static readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly socket: Duplex, readonly role: 'server' | 'client', head: Buffer | undefined, opts: WsOptions = {}) {
    super();
    this.maxMessageBytes = opts.maxMessageBytes ?? 1 << 20;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.finish(CloseCode.Abnormal, ''));
    socket.on('error', () => socket.destroy());
    // Bytes that came with the handshake are parsed first (in order), once the caller, which
    // awaited this connection, has added its listeners.
    if (head && head.length) {
      this.buf = Buffer.from(head);
      setImmediate(() => this.receive(Buffer.alloc(0)));
    }
  }

  /** Bytes queued in the socket, not yet sent (for dropping output to a slow reader). */
  get bufferedBytes(): number { return this.socket.writableLength; }

  get isOpen(): boolean { return !this.closeSent && !this.closed; }

  /** A string goes as a text frame, bytes as a binary frame. False once closing. */
  send(data: Uint8Array | string): boolean {
    if (!this.isOpen) return false;
    if (typeof data === 'string') this.writeFrame(Op.Text, Buffer.from(data, 'utf8'));
    else this.writeFrame(Op.Binary, data);
    return true;
  }

  /** Starts the closing handshake; the socket ends when the peer answers (or after 2 s). */
  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.closeSent || this.closed) return;
    this.sendClose(code, reason);
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Drops the connection without a closing handshake. */
  terminate(): void { this.socket.destroy(); }

  private sendClose(code: number, reason: string): void {
    this.closeSent = true;
    const r = Buffer.from(reason, 'utf8').subarray(0, MAX_CONTROL_PAYLOAD - 2);
    const payload = Buffer.alloc(code === CloseCode.NoStatus ? 0 : 2 + r.length);
    if (payload.length) { payload.writeUInt16BE(code, 0); r.copy(payload, 2); }
    this.writeFrame(Op.Close, payload);
  }

  private writeFrame(op: Op, payload: Uint8Array): void {
    const masked = this.role === 'client'; // §5.1: clients mask every frame, servers never do
    const len = payload.length;
    const extra = len < LEN16 ? 0 : len <= 0xffff ? 2 : 8;
    const header = Buffer.alloc(2 + extra + (masked ? 4 : 0));
    header[0] = FIN | op;
    if (extra === 0) header[1] = len;
    else if (extra === 2) { header[1] = LEN16; header.writeUInt16BE(len, 2); }
    else { header[1] = LEN64; header.writeBigUInt64BE(BigInt(len), 2); }
    if (!masked) {
      this.socket.write(header);
      if (len) this.socket.write(payload);
      return;
    }
    header[1] |= MASK_BIT;
    const key = randomBytes(4);
    key.copy(header, 2 + extra);
    const body = Buffer.from(payload);
    for (let i = 0; i < len; i++) body[i] ^= key[i & 3]!;
    this.socket.write(Buffer.concat([header, body]));
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (!this.closed && this.parseFrame());
  }

  /** Consumes one frame from the buffer; false when more bytes are needed. */
  private parseFrame(): boolean {
    const b = this.buf;
    if (b.length < 2) return false;
    const fin = (b[0]! & FIN) !== 0;
    const op = b[0]! & OPCODE_MASK;
    const masked = (b[1]! & MASK_BIT) !== 0;
    let len = b[1]! & LEN7_MASK;
    let at = 2;
    if (len === LEN16) {
      if (b.length < 4) return false;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === LEN64) {
      if (b.length < 10) return false;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.maxMessageBytes)) return this.fail(CloseCode.TooBig, 'Message too big');
      len = Number(big);
      at = 10;
    }
    if ((b[0]! & RSV_MASK) !== 0) return this.fail(CloseCode.ProtocolError, 'Reserved bits set');
    if (masked !== (this.role === 'server')) return this.fail(CloseCode.ProtocolError, masked ? 'Masked frame from server' : 'Unmasked frame from client');
    if (len > this.maxMessageBytes || this.fragmentBytes + len > this.maxMessageBytes) return this.fail(CloseCode.TooBig, 'Message too big');
    const need = at + (masked ? 4 : 0) + len;
    if (b.length < need) return false;
    const payload = Buffer.from(b.subarray(need - len, need)); // a copy: the buffer is reused
    if (masked) for (let i = 0, k = at; i < len; i++) payload[i] ^= b[k + (i & 3)]!;
    this.buf = b.subarray(need);
    this.onFrame(op, fin, payload);
    return true;
  }

  private onFrame(op: number, fin: boolean, payload: Buffer): void {
    switch (op) {
      case Op.Text:
      case Op.Binary:
        if (this.fragmentOp !== undefined) { this.fail(CloseCode.ProtocolError, 'New message inside a fragmented one'); return; }
        if (fin) { this.deliver(op, payload); return; }
        this.fragmentOp = op;
        this.push(payload);
        return;
      case Op.Continuation:
        if (this.fragmentOp === undefined) { this.fail(CloseCode.ProtocolError, 'Continuation without a message'); return; }
        this.push(payload);
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          const kind = this.fragmentOp;
          this.fragments = [];
          this.fragmentBytes = 0;
          this.fragmentOp = undefined;
          this.deliver(kind, whole);
        }
        return;
      case Op.Close:
      case Op.Ping:
      case Op.Pong:
        if (!fin || payload.length > MAX_CONTROL_PAYLOAD) { this.fail(CloseCode.ProtocolError, 'Bad control frame'); return; }
        if (op === Op.Ping) { if (this.isOpen) this.writeFrame(Op.Pong, payload); return; }
        if (op === Op.Close) this.onClose(payload);
        return;
      default:
        this.fail(CloseCode.ProtocolError, `Unknown opcode ${op}`);
    }
  }

  private push(payload: Buffer): void {
    this.fragments.push(payload);
    this.fragmentBytes += payload.length;
  }

  private deliver(op: Op.Text | Op.Binary, data: Buffer): void {
    if (op === Op.Text) {
      try { WsConnection.utf8.decode(data); } catch { this.fail(CloseCode.InvalidData, 'Text is not UTF-8'); return; }
    }
    if (!this.closeSent) this.emit('message', data, op === Op.Binary);
  }

  private onClose(payload: Buffer): void {
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1) { this.fail(CloseCode.ProtocolError, 'Bad close frame'); return; }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      try { reason = WsConnection.utf8.decode(payload.subarray(2)); } catch { this.fail(CloseCode.InvalidData, 'Close reason is not UTF-8'); return; }
    }
    if (!this.closeSent) this.sendClose(code === CloseCode.NoStatus ? CloseCode.Normal : code, '');
    // §7.1.1: the server closes the TCP connection first; a client waits for it (briefly).
    if (this.role === 'server') this.socket.end();
    else setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish(code, reason);
  }

  private fail(code: number, reason: string): false {
    if (!this.closeSent) this.sendClose(code, reason);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish(code, reason);
    return false;
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.buf = Buffer.alloc(0);
    this.emit('close', code, reason);
  }
}

/** Why an HTTP request is not a WebSocket version 13 opening handshake (RFC 6455 §4.2.1), or undefined. */
export function handshakeProblem(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return 'A WebSocket handshake must be a GET request';
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return 'Upgrade: websocket is missing';
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16) return 'Sec-WebSocket-Key must be 16 bytes in base64';
  if (req.headers['sec-websocket-version'] !== '13') return 'Sec-WebSocket-Version must be 13';
  return undefined;
}

/** Completes the opening handshake of a request that handshakeProblem() accepted. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, opts?: WsOptions): WsConnection {
  const key = String(req.headers['sec-websocket-key']);
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
  if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  return new WsConnection(socket, 'server', head, opts);
}

export interface WsConnectOptions extends WsOptions {
  /** A Unix socket path, or host and port for TCP. */
  socketPath?: string;
  host?: string;
  port?: number;
  /** Path and query, e.g. /v1/vms/web/console?write=1. */
  path: string;
  headers?: Record<string, string>;
}

/**
 * Opens a client connection. A refusal (any answer but 101) rejects with a WebSocketError that
 * carries the HTTP status and body, so callers can show the server's error message.
 */
export function connectWebSocket(opts: WsConnectOptions): Promise<WsConnection> {
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath: opts.socketPath, host: opts.host, port: opts.port, path: opts.path, method: 'GET',
      headers: { ...opts.headers, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
    });
    req.on('upgrade', (res, socket, head) => {
      if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
        socket.destroy();
        reject(new WebSocketError('The server answered the WebSocket handshake wrongly'));
        return;
      }
      if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
      resolve(new WsConnection(socket, 'client', head, opts));
    });
    req.on('response', res => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        reject(new WebSocketError(`The server refused the WebSocket (HTTP ${res.statusCode})`, res.statusCode, body));
      });
    });
    req.on('error', reject);
    req.end();
  });
}
