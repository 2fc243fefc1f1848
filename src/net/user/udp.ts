/**
 * The UDP side of the user network, as slirp does it: one host dgram socket per guest source
 * port (replies from anyone come back to that port, with the sender's address as the guest
 * knows it: 127.0.0.1 appears as the gateway), DNS to the relay address sent on to the resolver
 * (answers come from the relay address), and forwarded host ports. Flows end after an idle time;
 * at the cap the oldest flow makes room.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { fold, pseudoSum, sumBytes } from '../packet/checksum.js';
import { be16 } from '../packet/ethernet.js';
import { formatIp4, IpProto, parseIp4, Udp } from '../packet/ip.js';
import { permits, UserNetError, type HostForward, type Resolved } from './config.js';
import type { GuestLink } from './link.js';

const TICK_MS = 1000;
const DNS_IDLE_MS = 10_000;
const EPHEMERAL_FIRST = 49152;

interface Flow {
  socket: Socket;
  guestIp: number;
  guestPort: number;
  dns: boolean;
  lastUsed: number;
}

/** A host client of a forwarded UDP port, seen by the guest as the gateway's port `port`. */
interface Peer {
  server: Socket;
  fwd: HostForward & { guest: number };
  address: string;
  clientPort: number;
  port: number;
  lastUsed: number;
}

export class UdpNat {
  /** Key: guest port × 2 + (DNS relay ? 1 : 0). */
  private readonly flows = new Map<number, Flow>();
  private readonly peersByPort = new Map<number, Peer>();
  private readonly peersByClient = new Map<string, Peer>();
  private readonly servers: Socket[] = [];
  private timer: NodeJS.Timeout | undefined;
  private nextPort = EPHEMERAL_FIRST;
  private closed = false;
  private capLogged = false;

  constructor(private readonly cfg: Resolved, private readonly link: GuestLink, private readonly log: (line: string) => void) {}

  get flowCount(): number { return this.flows.size + this.peersByPort.size; }

  async listen(fwd: HostForward & { guest: number }): Promise<Socket> {
    const server = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new UserNetError('usernet-listen',
        `Cannot listen on ${fwd.hostAddr}:${fwd.hostPort} for hostfwd udp: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.code ?? err.message}`, { cause: err })));
      server.bind(fwd.hostPort, fwd.hostAddr, () => resolve());
    });
    server.on('error', err => this.log(`user net: hostfwd udp ${fwd.hostAddr}:${fwd.hostPort}: ${err.message}`));
    server.on('message', (msg, rinfo) => this.fromClient(server, fwd, msg, rinfo.address, rinfo.port));
    this.servers.push(server);
    return server;
  }

  /** A UDP datagram from the guest: IPv4 payload [l4, end) of `f`. Ports 67/68 never reach here. */
  input(f: Uint8Array, l4: number, end: number, src: number, dst: number, verify: boolean): void {
    const c = this.link.counters;
    if (end - l4 < Udp.SIZE) { c.drop('udp-header'); return; }
    const ulen = be16(f, l4 + Udp.LEN);
    if (ulen < Udp.SIZE || l4 + ulen > end) { c.drop('udp-header'); return; }
    end = l4 + ulen;
    if (verify && be16(f, l4 + Udp.CSUM) !== 0 && fold(sumBytes(f, l4, end, pseudoSum(src, dst, IpProto.UDP, ulen))) !== 0xffff) { c.drop('udp-checksum'); return; }
    const sport = be16(f, l4 + Udp.SRC_PORT), dport = be16(f, l4 + Udp.DST_PORT);
    // Port 0 is nobody's (and dgram's send() throws on it): checked before any destination.
    if (dport === 0) { c.drop('not-for-us'); return; }
    const data = f.subarray(l4 + Udp.SIZE, end);
    const cfg = this.cfg;
    const now = Date.now();
    if (dst === cfg.host) {
      const peer = this.peersByPort.get(dport);
      if (peer && peer.fwd.guest === src && peer.fwd.guestPort === sport) {
        peer.lastUsed = now;
        c.udpBytesFromGuest += data.length;
        peer.server.send(Buffer.from(data), peer.clientPort, peer.address);
        return;
      }
    }
    let host: string;
    let port = dport;
    const dns = dst === cfg.dns;
    if (dns) {
      if (dport !== 53) { c.drop('not-for-us'); return; }
      if (!cfg.resolver) { c.drop('dns-no-resolver'); return; }
      host = cfg.resolver.address;
      port = cfg.resolver.port;
    } else if (dst === cfg.host) host = '127.0.0.1';
    else if (((dst & cfg.mask) >>> 0) === cfg.net || dst >>> 28 >= 14 || dst >>> 24 === 0 || dst >>> 24 === 127) { c.drop('not-for-us'); return; }
    else host = formatIp4(dst);
    if (!permits(cfg, dst, dport)) { c.drop('policy'); return; }
    const flow = this.flow(src, sport, dns, now);
    if (dns) c.dnsQueries++;
    c.udpBytesFromGuest += data.length;
    flow.socket.send(Buffer.from(data), port, host);
  }

  private flow(guestIp: number, guestPort: number, dns: boolean, now: number): Flow {
    const key = guestPort * 2 + (dns ? 1 : 0);
    let flow = this.flows.get(key);
    if (flow && flow.guestIp !== guestIp) { this.end(key, flow); flow = undefined; }
    if (flow) { flow.lastUsed = now; return flow; }
    if (this.flowCount >= this.cfg.limits.udpFlows) this.evictOldest();
    const family = dns && isIPv6(this.cfg.resolver!.address) ? 'udp6' : 'udp4';
    const socket = createSocket(family);
    const f: Flow = { socket, guestIp, guestPort, dns, lastUsed: now };
    socket.on('message', (msg, rinfo) => this.fromHost(f, msg, rinfo.address, rinfo.port));
    socket.on('error', () => this.end(key, f));
    this.flows.set(key, f);
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
    return f;
  }

  private fromHost(f: Flow, msg: Buffer, address: string, port: number): void {
    if (this.closed) return;
    const cfg = this.cfg;
    f.lastUsed = Date.now();
    let src: number, sport = port;
    if (f.dns) { src = cfg.dns; sport = 53; this.link.counters.dnsAnswers++; }
    else if (address === '127.0.0.1') src = cfg.host;
    else {
      const a = parseIp4(address);
      if (a === undefined) return;
      src = a;
    }
    this.link.counters.udpBytesToGuest += msg.length;
    this.link.sendUdp(src, sport, f.guestIp, f.guestPort, msg);
  }

  private fromClient(server: Socket, fwd: HostForward & { guest: number }, msg: Buffer, address: string, clientPort: number): void {
    if (this.closed) return;
    const now = Date.now();
    const id = `${address}:${clientPort}:${fwd.hostPort}`;
    let peer = this.peersByClient.get(id);
    if (!peer) {
      if (this.flowCount >= this.cfg.limits.udpFlows) this.evictOldest();
      let port = 0;
      for (let tries = 0; tries < 16384 && port === 0; tries++) {
        const p = this.nextPort;
        this.nextPort = p === 65535 ? EPHEMERAL_FIRST : p + 1;
        if (!this.peersByPort.has(p)) port = p;
      }
      if (port === 0) return;
      peer = { server, fwd, address, clientPort, port, lastUsed: now };
      this.peersByClient.set(id, peer);
      this.peersByPort.set(port, peer);
      this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
    }
    peer.lastUsed = now;
    this.link.counters.udpBytesToGuest += msg.length;
    this.link.sendUdp(this.cfg.host, peer.port, fwd.guest, fwd.guestPort, msg);
  }

  private end(key: number, f: Flow): void {
    if (this.flows.get(key) === f) this.flows.delete(key);
    f.socket.close();
    if (this.flowCount < this.cfg.limits.udpFlows * 0.9) this.capLogged = false;
  }

  private endPeer(p: Peer): void {
    this.peersByPort.delete(p.port);
    this.peersByClient.delete(`${p.address}:${p.clientPort}:${p.fwd.hostPort}`);
    if (this.flowCount < this.cfg.limits.udpFlows * 0.9) this.capLogged = false;
  }

  private evictOldest(): void {
    this.link.counters.drop('udp-flow-cap');
    if (!this.capLogged) {
      // As TCP's cap: one clear line when reached, again only after the flows have eased.
      this.capLogged = true;
      this.log(`user net: ${this.flowCount} UDP flows open, the most allowed; the least recently used ones are closed for new ones`);
    }
    let oldest: { at: number; run: () => void } | undefined;
    for (const [key, f] of this.flows) if (!oldest || f.lastUsed < oldest.at) oldest = { at: f.lastUsed, run: () => this.end(key, f) };
    for (const p of this.peersByPort.values()) if (!oldest || p.lastUsed < oldest.at) oldest = { at: p.lastUsed, run: () => this.endPeer(p) };
    oldest?.run();
  }

  private tick(): void {
    const now = Date.now();
    const idle = this.cfg.limits.udpIdleMs;
    for (const [key, f] of this.flows) if (now - f.lastUsed > (f.dns ? Math.min(idle, DNS_IDLE_MS) : idle)) this.end(key, f);
    for (const p of this.peersByPort.values()) if (now - p.lastUsed > idle) this.endPeer(p);
    if (this.flowCount === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const [key, f] of this.flows) this.end(key, f);
    this.peersByPort.clear();
    this.peersByClient.clear();
    for (const s of this.servers) s.close();
  }
}
