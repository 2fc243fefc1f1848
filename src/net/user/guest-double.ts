/**
 * For tests: the device side of a NIC (FakePort, a NicPort with a receive ring that can fill up
 * and a seeded loss rate) and a small guest network stack on it (ARP-less Ethernet/IPv4, UDP, ICMP
 * and a TCP endpoint with windows, window scaling, TSO, out-of-order buffering, retransmission).
 * It checks every frame it gets: IP and L4 checksums (after completing needsCsum ones) and GSO
 * frames cut with the offload segmenter, counting what is wrong in `errors`.
 */
import { createHash } from 'node:crypto';
import { Gso, plainFrame, type FrameMeta, type GuestOffloads, type NicPort, type NetBackend } from '../../devices/virtio/net/backend.js';
import { mulberry32 } from '../../devices/virtio/testing.js';
import { completeChecksum, Tcp4Segmenter } from '../offload.js';
import { checksum, fold, pseudoSum, verifies } from '../packet/checksum.js';
import { be16, be32, Eth, EtherType, put16, put32 } from '../packet/ethernet.js';
import { Ip4, IpProto, parseIp4, parseTcpOptions, seqDiff, seqLt, Tcp, TcpFlag, Udp, writeSynOptions } from '../packet/ip.js';

export const ip = (s: string): number => parseIp4(s)!;
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes to carry (a word of mulberry32 at a time), so a failing transfer can be replayed. */
export function randomBytes(n: number, seed: number): Buffer {
  const r = mulberry32(seed), b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((r() * 0x100000000) >>> 0, i);
  return b;
}
export const GATEWAY_MAC = Uint8Array.from([0x52, 0x55, 10, 0, 2, 2]);

export interface Received { frame: Uint8Array; meta: FrameMeta }

/** The NIC as the virtio-net device would be, with a ring of `ring` frames the guest empties each turn. */
export class FakePort implements NicPort {
  readonly mac = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  offloads: GuestOffloads = { csum: false, tso4: false, tso6: false, maxFrame: 1514 };
  onRxSpace: (() => void) | undefined;
  linkUp = true;
  ring = 256;
  /** Share of delivered frames silently lost (deliver says true). */
  lossRate = 0;
  lost = 0;
  gsoFrames = 0;
  full = 0;
  private readonly rng: () => number;
  readonly inbox: Received[] = [];
  private scheduled = false;

  constructor(private readonly onTurn: (frames: Received[]) => void, seed = 1) {
    this.rng = mulberry32(seed);
  }

  deliver(frame: Uint8Array, meta: FrameMeta): boolean {
    if (this.inbox.length >= this.ring) { this.full++; return false; }
    if (frame.length > this.offloads.maxFrame) throw new Error(`frame of ${frame.length} bytes over maxFrame ${this.offloads.maxFrame}`);
    if (meta.gso !== Gso.NONE && !(this.offloads.tso4 && this.offloads.csum)) throw new Error('GSO frame the guest did not accept');
    if ((meta.needsCsum || meta.dataValid) && !this.offloads.csum) throw new Error('checksum offload the guest did not accept');
    if (meta.gso !== Gso.NONE) this.gsoFrames++;
    if (this.lossRate > 0 && this.rng() < this.lossRate) { this.lost++; return true; }
    this.inbox.push({ frame: frame.slice(), meta: { ...meta } });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.turn());
    }
    return true;
  }

  private turn(): void {
    this.scheduled = false;
    const frames = this.inbox.splice(0);
    this.onTurn(frames);
    this.onRxSpace?.();
  }
}

export interface UdpDatagram { src: number; sport: number; dst: number; dport: number; data: Uint8Array; dstMac: Uint8Array }

export class Guest {
  readonly port: FakePort;
  ip = ip('10.0.2.15');
  /** Frames that failed a check (bad checksum, bad segmentation). */
  errors: string[] = [];
  readonly frames: Uint8Array[] = [];
  /** Keep every received frame in `frames` (tests of ARP, DHCP, ICMP); off for bulk TCP. */
  record = true;
  readonly udp: UdpDatagram[] = [];
  private readonly conns = new Map<number, GuestTcp>();
  private readonly listeners = new Map<number, (c: GuestTcp) => void>();
  private readonly seg = new Tcp4Segmenter();
  private readonly waiters: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(public backend: NetBackend, seed = 1) {
    this.port = new FakePort(frames => this.turn(frames), seed);
    backend.attach(this.port);
    this.timer = setInterval(() => { for (const c of this.conns.values()) c.tick(); }, 20);
  }

  stop(): void { clearInterval(this.timer); }

  /** The guest, its connections as they are, now on `backend` (a live migration of its VM). */
  moveTo(backend: NetBackend): void {
    this.backend = backend;
    backend.attach(this.port);
  }

  send(frame: Uint8Array, meta: FrameMeta = plainFrame()): void { this.backend.send(frame, meta); }

  private turn(frames: Received[]): void {
    for (const r of frames) {
      if (r.meta.gso !== Gso.NONE) {
        if (this.seg.segment(r.frame, r.meta, s => this.check(s.slice())) < 0) this.errors.push('unsegmentable GSO frame');
      } else {
        if (!completeChecksum(r.frame, r.meta)) this.errors.push('bad csumStart');
        this.check(r.frame);
      }
    }
    for (const c of this.conns.values()) c.afterTurn();
    for (const w of this.waiters.splice(0)) w();
  }

  /** Checks and handles one wire frame. */
  private check(f: Uint8Array): void {
    if (this.record) this.frames.push(f);
    if (be16(f, Eth.TYPE) !== EtherType.IPV4) return;
    const l3 = Eth.SIZE, ihl = (f[l3]! & 15) * 4, total = be16(f, l3 + Ip4.TOTAL_LEN), l4 = l3 + ihl, end = l3 + total;
    if (end > f.length || !verifies(f, l3, l4)) { this.errors.push('IP header'); return; }
    const src = be32(f, l3 + Ip4.SRC), dst = be32(f, l3 + Ip4.DST), proto = f[l3 + Ip4.PROTO]!;
    if (proto !== IpProto.ICMP && !verifies(f, l4, end, pseudoSum(src, dst, proto, end - l4))) { this.errors.push(`L4 checksum (proto ${proto})`); return; }
    if (proto === IpProto.UDP) {
      this.udp.push({ src, sport: be16(f, l4), dst, dport: be16(f, l4 + 2), data: f.slice(l4 + Udp.SIZE, end), dstMac: f.slice(0, 6) });
    } else if (proto === IpProto.TCP) {
      const sport = be16(f, l4 + Tcp.SRC_PORT), dport = be16(f, l4 + Tcp.DST_PORT);
      const key = dport * 65536 + sport;
      let c = this.conns.get(key);
      const flags = f[l4 + Tcp.OFF_FLAGS + 1]!;
      if (!c && (flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN) {
        const accept = this.listeners.get(dport);
        if (!accept) { this.rawTcp(dst, dport, src, sport, 0, (be32(f, l4 + Tcp.SEQ) + 1) >>> 0, TcpFlag.RST | TcpFlag.ACK); return; }
        c = new GuestTcp(this, dport, src, sport);
        this.conns.set(key, c);
        accept(c);
      }
      c?.input(f, l4, end);
    }
  }

  /** Resolves when `pred` holds (checked after every turn), or rejects after `ms`. */
  async until(pred: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>(r => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }

  /** Writes Ethernet + IPv4 headers around an L4 part of `l4Len` bytes at 34. */
  ipFrame(b: Uint8Array, src: number, dst: number, proto: number, l4Len: number, dstMac = GATEWAY_MAC): number {
    b.set(dstMac, 0);
    b.set(this.port.mac, 6);
    put16(b, 12, EtherType.IPV4);
    b[14] = 0x45; b[15] = 0;
    put16(b, 16, 20 + l4Len);
    put16(b, 18, 0); put16(b, 20, 0x4000);
    b[22] = 64; b[23] = proto;
    put16(b, 24, 0);
    put32(b, 26, src); put32(b, 30, dst);
    put16(b, 24, checksum(b, 14, 34));
    return 34 + l4Len;
  }

  udpFrame(src: number, sport: number, dst: number, dport: number, data: Uint8Array, dstMac = GATEWAY_MAC): Uint8Array {
    const b = new Uint8Array(42 + data.length);
    put16(b, 34, sport); put16(b, 36, dport); put16(b, 38, 8 + data.length); put16(b, 40, 0);
    b.set(data, 42);
    put16(b, 40, checksum(b, 34, b.length, pseudoSum(src, dst, IpProto.UDP, 8 + data.length)) || 0xffff);
    this.ipFrame(b, src, dst, IpProto.UDP, 8 + data.length, dstMac);
    return b;
  }

  sendUdp(sport: number, dst: number, dport: number, data: Uint8Array): void {
    this.send(this.udpFrame(this.ip, sport, dst, dport, data));
  }

  ping(dst: number, id: number, seq: number, payload: Uint8Array): void {
    const b = new Uint8Array(42 + payload.length);
    b[34] = 8; put16(b, 38, id); put16(b, 40, seq);
    b.set(payload, 42);
    put16(b, 36, checksum(b, 34, b.length));
    this.ipFrame(b, this.ip, dst, IpProto.ICMP, 8 + payload.length);
    this.send(b);
  }

  /** A bare TCP segment (for RSTs and tests that craft segments). */
  rawTcp(src: number, sport: number, dst: number, dport: number, seq: number, ack: number, flags: number, wnd = 0, data?: Uint8Array): void {
    const n = data?.length ?? 0;
    const b = new Uint8Array(54 + n);
    put16(b, 34, sport); put16(b, 36, dport); put32(b, 38, seq); put32(b, 42, ack);
    b[46] = 0x50; b[47] = flags; put16(b, 48, wnd);
    if (data) b.set(data, 54);
    put16(b, 50, checksum(b, 34, b.length, pseudoSum(src, dst, IpProto.TCP, 20 + n)));
    this.ipFrame(b, src, dst, IpProto.TCP, 20 + n);
    this.send(b);
  }

  connect(dst: number, dport: number, opts: Partial<TcpOptions> = {}): GuestTcp {
    const sport = 40000 + Math.floor(Math.random() * 20000);
    const c = new GuestTcp(this, sport, dst, dport, opts);
    this.conns.set(sport * 65536 + dport, c);
    c.open();
    return c;
  }

  listen(port: number, accept: (c: GuestTcp) => void): void { this.listeners.set(port, accept); }
  forget(c: GuestTcp): void { this.conns.delete(c.lport * 65536 + c.rport); }
  get connCount(): number { return this.conns.size; }
}

export interface TcpOptions {
  /** Receive buffer the application drains (bytes): the window. */
  rcvBuf: number;
  wscale: number;
  mss: number;
  /** Send segments up to 64 KiB as GSO frames with partial checksums. */
  tso: boolean;
  /** Deliver received data at once (true) or only when read() is called. */
  autoRead: boolean;
}

/** A guest TCP endpoint. */
export class GuestTcp {
  opts: TcpOptions;
  state: 'syn-sent' | 'syn-rcvd' | 'open' | 'closed' = 'syn-rcvd';
  reset = false;
  received: Buffer[] = [];
  receivedBytes = 0;
  peerFin = false;
  /** Bytes received but not yet read by the application (autoRead off). */
  private unread = 0;
  private iss = (Math.random() * 0x100000000) >>> 0;
  private sndUna = this.iss;
  private sndNxt = this.iss;
  private sndWnd = 0;
  private peerShift = 0;
  private myShift = 0;
  private peerMss = 536;
  private out = Buffer.alloc(0);
  private outBase = 0; // seq of out[0]
  private finQueued = false;
  private rcvNxt = 0;
  private readonly ooo = new Map<number, Uint8Array>();
  private ackNeeded = false;
  private dupAcks = 0;
  private rtoAt = 0;
  private lastWndAdv = 0;
  retransmits = 0;

  constructor(private readonly g: Guest, readonly lport: number, readonly raddr: number, readonly rport: number, opts: Partial<TcpOptions> = {}) {
    this.opts = { rcvBuf: 1 << 20, wscale: 7, mss: 1460, tso: false, autoRead: true, ...opts };
  }

  open(): void {
    this.state = 'syn-sent';
    this.sendSyn(TcpFlag.SYN);
  }

  private sendSyn(flags: number): void {
    const b = new Uint8Array(54 + 8);
    const ol = writeSynOptions(b, 54, this.opts.mss, this.opts.wscale);
    this.segment(b, this.iss, flags, 20 + ol, 0);
    this.sndNxt = (this.iss + 1) >>> 0;
    this.rtoAt = Date.now() + 300;
  }

  write(data: Uint8Array): void {
    this.out = Buffer.concat([this.out, data]);
    this.pump();
  }

  end(): void { this.finQueued = true; this.pump(); }

  /** The application reads `n` bytes (autoRead off): the window opens. */
  read(n: number): void {
    this.unread = Math.max(0, this.unread - n);
    const w = this.window();
    if (w - this.lastWndAdv >= this.opts.mss * 4 || (this.lastWndAdv < this.opts.mss && w >= this.opts.mss)) this.sendAck();
  }

  data(): Buffer { return Buffer.concat(this.received); }

  private window(): number { return Math.max(0, this.opts.rcvBuf - this.unread); }

  private segment(b: Uint8Array, seq: number, flags: number, hl: number, n: number, tsoMss = 0): void {
    put16(b, 34, this.lport); put16(b, 36, this.rport); put32(b, 38, seq); put32(b, 42, flags & TcpFlag.ACK ? this.rcvNxt : 0);
    b[46] = (hl / 4) << 4; b[47] = flags;
    const w = flags & TcpFlag.SYN ? Math.min(this.window(), 65535) : Math.min(this.window() >>> this.myShift, 65535);
    this.lastWndAdv = flags & TcpFlag.SYN ? w : w << this.myShift;
    put16(b, 48, w);
    put16(b, 50, 0);
    const pseudo = pseudoSum(this.g.ip, this.raddr, IpProto.TCP, hl + n);
    const meta = plainFrame();
    if (tsoMss) {
      put16(b, 50, fold(pseudo));
      Object.assign(meta, { needsCsum: true, csumStart: 34, csumOffset: 16, gso: Gso.TCPV4, gsoSize: tsoMss, hdrLen: 34 + hl });
    } else put16(b, 50, checksum(b, 34, 34 + hl + n, pseudo));
    this.g.ipFrame(b, this.g.ip, this.raddr, IpProto.TCP, hl + n);
    this.g.send(b.subarray(0, 34 + hl + n), meta);
  }

  private sendAck(): void {
    const b = new Uint8Array(54);
    this.segment(b, this.sndNxt, TcpFlag.ACK, 20, 0);
    this.ackNeeded = false;
  }

  /** Sends data the window allows (from sndNxt). */
  private pump(): void {
    if (this.state !== 'open') return;
    for (;;) {
      const off = seqDiff(this.sndNxt, this.outBase);
      const avail = this.out.length - off;
      const room = seqDiff((this.sndUna + this.sndWnd) >>> 0, this.sndNxt);
      const max = this.opts.tso ? 65535 - 40 - ((65535 - 40) % this.peerMss) : this.peerMss;
      const n = Math.max(0, Math.min(avail, room, max));
      const fin = this.finQueued && avail >= 0 && n === avail;
      if (n === 0 && !fin) break;
      const b = new Uint8Array(54 + n);
      b.set(this.out.subarray(off, off + n), 54);
      this.segment(b, this.sndNxt, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0) | (n > 0 && n === avail ? TcpFlag.PSH : 0), 20, n, this.opts.tso && n > this.peerMss ? this.peerMss : 0);
      this.sndNxt = (this.sndNxt + n + (fin ? 1 : 0)) >>> 0;
      if (this.rtoAt === 0) this.rtoAt = Date.now() + 300;
      this.ackNeeded = false;
      if (fin) break;
    }
  }

  input(f: Uint8Array, l4: number, end: number): void {
    const seq = be32(f, l4 + Tcp.SEQ), ack = be32(f, l4 + Tcp.ACK), flags = f[l4 + Tcp.OFF_FLAGS + 1]!;
    const hl = (f[l4 + Tcp.OFF_FLAGS]! >> 4) * 4, wnd = be16(f, l4 + Tcp.WINDOW);
    const data = f.subarray(l4 + hl, end);
    if (flags & TcpFlag.RST) { this.reset = true; this.state = 'closed'; return; }
    if (flags & TcpFlag.SYN) {
      const o = { mss: -1, wscale: -1 };
      parseTcpOptions(f, l4 + 20, l4 + hl, o);
      this.peerMss = o.mss > 0 ? o.mss : 536;
      this.peerShift = o.wscale >= 0 && this.opts.wscale >= 0 ? o.wscale : 0;
      this.myShift = o.wscale >= 0 && this.opts.wscale >= 0 ? this.opts.wscale : 0;
      this.rcvNxt = (seq + 1) >>> 0;
      this.sndWnd = wnd;
      if (this.state === 'syn-sent' && flags & TcpFlag.ACK) {
        this.established(ack);
        this.sendAck();
        this.pump();
      } else if (this.state === 'syn-rcvd') this.sendSyn(TcpFlag.SYN | TcpFlag.ACK);
      else this.sendAck();
      return;
    }
    if (this.state === 'syn-rcvd' && flags & TcpFlag.ACK && ack === ((this.iss + 1) >>> 0)) this.established(ack);
    if (this.state !== 'open') return;
    if (flags & TcpFlag.ACK) {
      const acked = seqDiff(ack, this.sndUna);
      if (acked > 0 && !seqLt(this.sndNxt, ack)) {
        const k = Math.min(seqDiff(ack, this.outBase), this.out.length);
        this.out = this.out.subarray(k);
        this.outBase = (this.outBase + k) >>> 0;
        this.sndUna = ack;
        this.dupAcks = 0;
        this.rtoAt = this.sndUna === this.sndNxt ? 0 : Date.now() + 300;
      } else if (acked === 0 && data.length === 0 && this.sndUna !== this.sndNxt && ++this.dupAcks === 3) {
        this.resend();
      }
      this.sndWnd = wnd << this.peerShift;
    }
    if (data.length > 0 || flags & TcpFlag.FIN) {
      const d = seqDiff(seq, this.rcvNxt);
      if (d > 0) {
        if (this.ooo.size < 4096 && data.length > 0) this.ooo.set(seq, data.slice());
        this.ackNeeded = true;
        return;
      }
      if (data.length + d > 0) this.take(data.subarray(-d));
      while (this.ooo.size) {
        const next = this.ooo.get(this.rcvNxt);
        if (!next) {
          for (const [s, v] of this.ooo) if (seqDiff(s + v.length, this.rcvNxt) <= 0) this.ooo.delete(s);
          break;
        }
        this.ooo.delete(this.rcvNxt);
        this.take(next);
      }
      if (flags & TcpFlag.FIN && seqDiff((seq + data.length) >>> 0, this.rcvNxt) === 0 && !this.peerFin) {
        this.peerFin = true;
        this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      }
      this.ackNeeded = true;
    }
    this.pump();
  }

  private take(d: Uint8Array): void {
    const room = this.window();
    const n = Math.min(d.length, room);
    if (n <= 0) return;
    this.received.push(Buffer.from(d.subarray(0, n)));
    this.receivedBytes += n;
    if (!this.opts.autoRead) this.unread += n;
    this.rcvNxt = (this.rcvNxt + n) >>> 0;
  }

  private established(ack: number): void {
    this.state = 'open';
    this.sndUna = ack;
    this.sndNxt = ack;
    this.outBase = ack;
    this.rtoAt = 0;
  }

  private resend(): void {
    this.retransmits++;
    this.sndNxt = this.sndUna;
    this.pump();
  }

  afterTurn(): void { if (this.ackNeeded && this.state !== 'closed') this.sendAck(); }

  tick(): void {
    if (this.rtoAt === 0 || Date.now() < this.rtoAt || this.state === 'closed') return;
    this.rtoAt = 0;
    if (this.state === 'syn-sent') { this.retransmits++; this.sendSyn(TcpFlag.SYN); return; }
    if (this.state === 'open' && this.sndUna !== this.sndNxt) { this.resend(); this.rtoAt = Date.now() + 300; }
  }

  /** Sends an RST and forgets the connection. */
  abort(): void {
    this.g.rawTcp(this.g.ip, this.lport, this.raddr, this.rport, this.sndNxt, this.rcvNxt, TcpFlag.RST | TcpFlag.ACK);
    this.state = 'closed';
  }

  /** Sends `data` at sequence offset `ahead` past sndNxt, outside what the peer expects (for tests of hostile segments). */
  injectData(ahead: number, data: Uint8Array): void {
    this.g.rawTcp(this.g.ip, this.lport, this.raddr, this.rport, (this.sndNxt + ahead) >>> 0, this.rcvNxt, TcpFlag.ACK, 1024, data);
  }

  /** Sends a segment with `flags` at sndNxt + seqOff acknowledging rcvNxt + ackOff, outside the endpoint's state (tests of hostile segments). */
  inject(seqOff: number, ackOff: number, flags: number, data?: Uint8Array, wnd = 1024): void {
    this.g.rawTcp(this.g.ip, this.lport, this.raddr, this.rport, (this.sndNxt + seqOff) >>> 0, (this.rcvNxt + ackOff) >>> 0, flags, wnd, data);
  }

  get allAcked(): boolean { return this.sndUna === this.sndNxt && seqDiff(this.sndNxt, this.outBase) >= this.out.length; }
}

