/**
 * The TCP side of the user network: the table of connections, guest SYNs becoming host
 * connects (with the policy, the caps and the address mapping: the gateway is the host's
 * 127.0.0.1, the DNS address is the resolver), forwarded host ports becoming connections to the
 * guest, stateless RSTs for segments of no connection, and one clock for every timer.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fold, pseudoSum, sumBytes } from '../packet/checksum.js';
import { be16, be32, put16, put32 } from '../packet/ethernet.js';
import { formatIp4, IpProto, parseTcpOptions, Tcp, TcpFlag } from '../packet/ip.js';
import { permits, UserNetError, type HostForward, type Limits, type Resolved } from './config.js';
import { L4, type Counters, type GuestLink } from './link.js';
import { State, TcpConn, type ConnOwner, type HostSocket, type Seg, type TcpConnState } from './tcp-conn.js';

const TICK_MS = 25;
const EPHEMERAL_FIRST = 49152;

export class TcpNat implements ConnOwner {
  private readonly table = new Map<number, TcpConn>();
  private count = 0;
  private capLogged = false;
  private synCapLogged = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly servers: Server[] = [];
  private readonly seg: Seg = { seq: 0, ack: 0, flags: 0, wnd: 0, opts: { mss: -1, wscale: -1 }, frame: new Uint8Array(0), dataOff: 0, dataLen: 0 };
  private nextEphemeral = EPHEMERAL_FIRST;
  readonly limits: Limits;
  readonly counters: Counters;

  constructor(private readonly cfg: Resolved, readonly link: GuestLink, private readonly log: (line: string) => void) {
    this.limits = cfg.limits;
    this.counters = link.counters;
  }

  get flows(): number { return this.count; }

  /** Starts listening for the TCP forwards; rejects naming the address that cannot be bound. */
  async listen(fwd: HostForward & { guest: number }): Promise<Server> {
    const server = createServer({ allowHalfOpen: true }, sock => this.accepted(fwd, sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new UserNetError('usernet-listen',
        `Cannot listen on ${fwd.hostAddr}:${fwd.hostPort} for hostfwd tcp: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.code ?? err.message}`, { cause: err })));
      server.listen(fwd.hostPort, fwd.hostAddr, () => resolve());
    });
    server.on('error', err => this.log(`user net: hostfwd tcp ${fwd.hostAddr}:${fwd.hostPort}: ${err.message}`));
    this.servers.push(server);
    return server;
  }

  /** A TCP segment from the guest: IPv4 payload [l4, end) of `f`. */
  input(f: Uint8Array, l4: number, end: number, src: number, dst: number, verify: boolean): void {
    const c = this.counters;
    if (end - l4 < Tcp.SIZE) { c.drop('tcp-header'); return; }
    const hl = (f[l4 + Tcp.OFF_FLAGS]! >> 4) * 4;
    if (hl < Tcp.SIZE || l4 + hl > end) { c.drop('tcp-header'); return; }
    if (verify && fold(sumBytes(f, l4, end, pseudoSum(src, dst, IpProto.TCP, end - l4))) !== 0xffff) { c.drop('tcp-checksum'); return; }
    const s = this.seg;
    s.seq = be32(f, l4 + Tcp.SEQ);
    s.ack = be32(f, l4 + Tcp.ACK);
    s.flags = f[l4 + Tcp.OFF_FLAGS + 1]!;
    s.wnd = be16(f, l4 + Tcp.WINDOW);
    s.frame = f;
    s.dataOff = l4 + hl;
    s.dataLen = end - l4 - hl;
    const sport = be16(f, l4 + Tcp.SRC_PORT), dport = be16(f, l4 + Tcp.DST_PORT);
    if (s.flags & TcpFlag.SYN) parseTcpOptions(f, l4 + Tcp.SIZE, l4 + hl, s.opts);
    const now = Date.now();
    const conn = this.find(src, sport, dst, dport);
    if (conn) {
      if (s.flags & TcpFlag.SYN && !(s.flags & TcpFlag.ACK) && conn.state === State.TIME_WAIT) conn.close(); // a new connection reusing the pair
      else { conn.input(s, now); return; }
    }
    if ((s.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN) { this.open(src, sport, dst, dport, now); return; }
    c.drop('tcp-no-flow');
    if (!(s.flags & TcpFlag.RST)) this.statelessRst(src, sport, dst, dport);
  }

  private find(guestIp: number, guestPort: number, remoteIp: number, remotePort: number): TcpConn | undefined {
    for (let c = this.table.get(guestPort * 65536 + remotePort); c; c = c.next) if (c.guestIp === guestIp && c.remoteIp === remoteIp) return c;
    return undefined;
  }

  private insert(c: TcpConn): void {
    c.key = c.guestPort * 65536 + c.remotePort;
    c.next = this.table.get(c.key);
    this.table.set(c.key, c);
    this.count++;
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
  }

  release(conn: TcpConn): void {
    let prev: TcpConn | undefined;
    for (let c = this.table.get(conn.key); c; c = c.next) {
      if (c === conn) {
        if (prev) prev.next = c.next;
        else if (c.next) this.table.set(c.key, c.next);
        else this.table.delete(c.key);
        this.count--;
        break;
      }
      prev = c;
    }
    if (this.count < this.limits.tcpFlows * 0.9) this.capLogged = false;
    if (this.count === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Whether one more connection fits; logs once when the cap is reached. */
  private room(): boolean {
    if (this.count < this.limits.tcpFlows) return true;
    if (!this.capLogged) {
      this.capLogged = true;
      this.log(`user net: ${this.count} TCP connections open, the most allowed; new ones are refused until some close`);
    }
    this.counters.drop('tcp-flow-cap');
    return false;
  }

  private halfOpen(): number {
    let n = 0;
    for (let head of this.table.values()) for (let c: TcpConn | undefined = head; c; c = c.next) if (c.halfOpen) n++;
    return n;
  }

  /** A guest SYN for a new connection: policy, caps, then the host connect. */
  private open(src: number, sport: number, dst: number, dport: number, now: number): void {
    const cfg = this.cfg;
    let host: string;
    let port = dport;
    if (dst === cfg.dns) {
      if (dport !== 53 || !cfg.resolver) { this.statelessRst(src, sport, dst, dport); return; }
      host = cfg.resolver.address;
      port = cfg.resolver.port;
    } else if (dst === cfg.host) host = '127.0.0.1';
    else if (((dst & cfg.mask) >>> 0) === cfg.net || dst >>> 28 >= 14 || dst >>> 24 === 0 || dst >>> 24 === 127) {
      this.statelessRst(src, sport, dst, dport); // nobody there (or not an address one connects to)
      return;
    } else host = formatIp4(dst);
    if (!permits(cfg, dst, dport)) {
      this.counters.drop('policy');
      this.counters.tcpRefused++;
      this.statelessRst(src, sport, dst, dport);
      return;
    }
    if (!this.room()) { this.statelessRst(src, sport, dst, dport); return; }
    const cap = this.limits.tcpHalfOpen;
    const half = this.count >= cap ? this.halfOpen() : this.count;
    if (half >= cap) {
      this.counters.drop('tcp-syn-cap'); // silently: the guest retries its SYN, as against a busy listener
      if (!this.synCapLogged) {
        // A clear line when the cap is reached (as for the flow cap): once, until it has eased.
        this.synCapLogged = true;
        this.log(`user net: ${half} TCP connections still opening, the most allowed; new SYNs are dropped until some complete or close`);
      }
      return;
    }
    if (half < cap * 0.9) this.synCapLogged = false;
    const conn = new TcpConn(this, src, sport, dst, dport, true);
    conn.acceptSyn(this.seg, now);
    this.insert(conn);
    const sock = connect({ host, port, allowHalfOpen: true });
    sock.setNoDelay(true);
    conn.bind(sock);
    sock.once('connect', () => conn.hostConnected(Date.now()));
  }

  /** A host client connected to a forwarded port: open a connection to the guest from the gateway. */
  private accepted(fwd: HostForward & { guest: number }, sock: Socket): void {
    if (!this.room() || !this.link.offloads) { sock.destroy(); return; }
    let port = 0;
    for (let tries = 0; tries < 16384 && port === 0; tries++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p === 65535 ? EPHEMERAL_FIRST : p + 1;
      if (!this.find(fwd.guest, fwd.guestPort, this.cfg.host, p)) port = p;
    }
    if (port === 0) { sock.destroy(); return; }
    sock.setNoDelay(true);
    const conn = new TcpConn(this, fwd.guest, fwd.guestPort, this.cfg.host, port, false);
    this.insert(conn);
    conn.bind(sock);
    conn.startForward(Date.now());
  }

  /**
   * Live migration: the connections that can move, each handing over its state and host socket;
   * the rest end here silently (the guest, held, sees nothing of it here: a connection still
   * connecting is opened again by its next SYN where the guest runs next).
   */
  moveOut(): { state: TcpConnState; socket: HostSocket }[] {
    const now = Date.now(), out: { state: TcpConnState; socket: HostSocket }[] = [];
    for (const head of [...this.table.values()]) {
      for (let c: TcpConn | undefined = head; c;) {
        const next: TcpConn | undefined = c.next;
        if (c.movable && c.socket) out.push(c.moveOut(now));
        else c.close();
        c = next;
      }
    }
    return out;
  }

  /** Connections that moved here (moveOut's), each on its host socket; throws, keeping none, if one's state is broken. */
  moveIn(flows: readonly { state: TcpConnState; socket: HostSocket }[]): void {
    const now = Date.now();
    const conns = flows.map(f => TcpConn.moveIn(this, f.state, f.socket, now));
    for (const c of conns) this.insert(c);
    for (const c of conns) c.flush(now);
  }

  /** RST for a segment that belongs to no connection (RFC 9293 §3.10.7.1), built from the frame being handled. */
  private statelessRst(src: number, sport: number, dst: number, dport: number): void {
    const s = this.seg, link = this.link, b = link.buf;
    const hasAck = (s.flags & TcpFlag.ACK) !== 0;
    put16(b, L4 + Tcp.SRC_PORT, dport);
    put16(b, L4 + Tcp.DST_PORT, sport);
    put32(b, L4 + Tcp.SEQ, hasAck ? s.ack : 0);
    put32(b, L4 + Tcp.ACK, hasAck ? 0 : (s.seq + s.dataLen + (s.flags & TcpFlag.SYN ? 1 : 0) + (s.flags & TcpFlag.FIN ? 1 : 0)) >>> 0);
    b[L4 + Tcp.OFF_FLAGS] = (Tcp.SIZE / 4) << 4;
    b[L4 + Tcp.OFF_FLAGS + 1] = hasAck ? TcpFlag.RST : TcpFlag.RST | TcpFlag.ACK;
    put16(b, L4 + Tcp.WINDOW, 0);
    put16(b, L4 + Tcp.CSUM, 0);
    put16(b, L4 + Tcp.URGENT, 0);
    put16(b, L4 + Tcp.CSUM, ~fold(sumBytes(b, L4, L4 + Tcp.SIZE, pseudoSum(dst, src, IpProto.TCP, Tcp.SIZE))) & 0xffff);
    link.deliverOrQueue(link.ipHeader(dst, src, IpProto.TCP, Tcp.SIZE));
  }

  private tick(): void {
    const now = Date.now();
    for (const head of [...this.table.values()]) {
      for (let c: TcpConn | undefined = head; c;) {
        const next: TcpConn | undefined = c.next;
        c.tick(now);
        c = next;
      }
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const s of this.servers) s.close();
    for (const head of [...this.table.values()]) {
      for (let c: TcpConn | undefined = head; c;) {
        const next: TcpConn | undefined = c.next;
        c.abort(false);
        c = next;
      }
    }
    this.table.clear();
    this.count = 0;
  }
}
