/**
 * One TCP connection between the guest and a host socket: a TCP endpoint towards the guest (RFC
 * 9293) whose other side is a node:net socket. The host's kernel does TCP towards the world; here
 * we only speak it to the guest, over a link that does not lose frames unless the guest does.
 *
 * Sending: bytes from the host socket wait in `chunks` until the guest acknowledges them; the
 * socket is paused while more than limits.tcpSendBuffer wait. Segments go out within the guest's
 * (scaled) window, up to the guest's MSS, or up to ~64 KiB as one GSO frame when the guest takes
 * TSO. Retransmission: RTO per RFC 6298 (Karn, backoff), fast retransmit after three duplicate
 * ACKs with NewReno partial-ACK retransmits (RFC 6582), go-back-N on timeout. A zero window is
 * probed with an ACK below sndUna (as Linux's tcp_xmit_probe_skb), with backoff.
 *
 * Receiving: in-order data is written to the host socket at once; our window is what the
 * socket may still queue (limits.tcpRecvBuffer less socket.writableLength), never shrinking its
 * right edge (§3.8.6); out-of-order and out-of-window data is dropped, counted and answered with
 * an ACK, so the guest resends it. FINs go both ways with half-close; RST both ways.
 */
import type { Duplex } from 'node:stream';
import { Gso } from '../../devices/virtio/net/backend.js';
import { checksum, fold, pseudoSum } from '../packet/checksum.js';
import { put16, put32 } from '../packet/ethernet.js';
import { IpProto, seqDiff, seqLe, seqLt, Tcp, TcpFlag, writeSynOptions, type SynOptions } from '../packet/ip.js';
import type { Limits } from './config.js';
import { L4, type Counters, type GuestLink } from './link.js';

export const enum State { CONNECTING, SYN_SENT, SYN_RCVD, ESTABLISHED, TIME_WAIT, CLOSED }

/** A segment from the guest, parsed by the table (one reused object). */
export interface Seg {
  seq: number;
  ack: number;
  flags: number;
  /** The raw 16-bit window field. */
  wnd: number;
  opts: SynOptions;
  frame: Uint8Array;
  dataOff: number;
  dataLen: number;
}

/** The host side of a connection: a node:net socket, or a flow relayed from where the VM came from (migration/relay.ts). */
export type HostSocket = Duplex & { resetAndDestroy(): unknown };

/**
 * What a connection is towards the guest, for live migration: sequence space, windows, timers (ms
 * from the moment it was taken), and the host bytes the guest has not acknowledged (base64).
 */
export interface TcpConnState {
  guestIp: number; guestPort: number; remoteIp: number; remotePort: number; fromGuest: boolean;
  state: State;
  seq: Record<(typeof SEQ_FIELDS)[number], number>;
  flags: Record<(typeof FLAG_FIELDS)[number], boolean>;
  timers: Record<(typeof TIMER_FIELDS)[number], number>;
  unacked: string;
}
const SEQ_FIELDS = ['iss', 'sndUna', 'sndNxt', 'sndWnd', 'sndWl1', 'sndWl2', 'sndShift', 'rcvShift', 'mss', 'rcvNxt', 'rcvEdge', 'bufSeq',
  'rto', 'srtt', 'rttvar', 'retries', 'rttSeq', 'persistBackoff', 'dupAcks', 'recover'] as const;
const FLAG_FIELDS = ['paused', 'hostEof', 'guestFin', 'weClosedFirst', 'ackPending', 'inRecovery'] as const;
/** Absolute times (Date.now() based, 0 = not set): moved as ms from the moment taken. */
const TIMER_FIELDS = ['rtoAt', 'rttStart', 'persistAt', 'deadline'] as const;
/** States a connection moves in: one still connecting on the host is dropped instead (the guest's next SYN opens it again). */
const MOVABLE = new Set([State.SYN_SENT, State.SYN_RCVD, State.ESTABLISHED]);

export interface ConnOwner {
  readonly link: GuestLink;
  readonly limits: Limits;
  readonly counters: Counters;
  /** Called once when the connection is gone. */
  release(conn: TcpConn): void;
}

/** Our MSS for plain frames (1500-byte MTU) and our window scale (2^5: 2 MiB of window at most). */
export const OUR_MSS = 1460;
export const OUR_WSCALE = 5;
const MIN_RTO = 200, MAX_RTO = 60_000, INITIAL_RTO = 1000, MAX_PERSIST = 10_000;
const MAX_RETRIES = 12, MAX_SYN_RETRIES = 6;
/** TCP header of our segments other than SYNs: no options. */
const HDR = Tcp.SIZE;

export class TcpConn {
  state: State;
  socket: HostSocket | undefined;
  /** Key in the owner's table (set by the owner). */
  key = 0;
  /** Next connection with the same key (the owner's hash chain). */
  next: TcpConn | undefined;

  private iss = (Math.random() * 0x100000000) >>> 0;
  private sndUna = this.iss;
  private sndNxt = this.iss;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private sndShift = 0;
  private rcvShift = 0;
  private mss = 536;
  rcvNxt = 0;
  private rcvEdge = 0;

  /** Host bytes not yet acknowledged by the guest; the first begins at bufSeq + headOff bytes in. */
  private readonly chunks: Buffer[] = [];
  private headOff = 0;
  private buffered = 0;
  private bufSeq = 0;
  private paused = false;
  private hostEof = false;
  private guestFin = false;
  private weClosedFirst = false;
  private ackPending = false;

  private rto = INITIAL_RTO;
  private srtt = 0;
  private rttvar = 0;
  private rtoAt = 0;
  private retries = 0;
  private rttSeq = 0;
  private rttStart = 0;
  private persistAt = 0;
  private persistBackoff = 0;
  private dupAcks = 0;
  private recover = 0;
  private inRecovery = false;
  /** CONNECTING: connect deadline; TIME_WAIT: end. */
  private deadline = 0;
  /** What bind() listens to on the socket (moveOut takes it off again). */
  private hostListeners: [string, Parameters<HostSocket['on']>[1]][] = [];

  constructor(
    private readonly owner: ConnOwner,
    readonly guestIp: number, readonly guestPort: number,
    /** The guest-visible remote end. */
    readonly remoteIp: number, readonly remotePort: number,
    /** True: the guest opened it (we answer its SYN); false: a forwarded host connection (we send the SYN). */
    readonly fromGuest: boolean,
  ) {
    this.state = fromGuest ? State.CONNECTING : State.SYN_SENT;
  }

  // ---- moving (live migration) ----

  /** Whether this connection can move with its VM (see MOVABLE). */
  get movable(): boolean { return MOVABLE.has(this.state); }

  /** Its state for another host; the connection then lets go of its socket (returned, paused) and ends here without a word to either side. */
  moveOut(now: number): { state: TcpConnState; socket: HostSocket } {
    const socket = this.socket!;
    for (const [ev, fn] of this.hostListeners) socket.off(ev, fn);
    socket.pause();
    const me = this as unknown as Record<string, number | boolean>;
    const state: TcpConnState = {
      guestIp: this.guestIp, guestPort: this.guestPort, remoteIp: this.remoteIp, remotePort: this.remotePort, fromGuest: this.fromGuest,
      state: this.state,
      seq: Object.fromEntries(SEQ_FIELDS.map(k => [k, me[k] as number])) as TcpConnState['seq'],
      flags: Object.fromEntries(FLAG_FIELDS.map(k => [k, me[k] as boolean])) as TcpConnState['flags'],
      timers: Object.fromEntries(TIMER_FIELDS.map(k => [k, me[k] ? (me[k] as number) - now : 0])) as TcpConnState['timers'],
      unacked: Buffer.concat(this.chunks).subarray(this.headOff).toString('base64'),
    };
    this.socket = undefined;
    this.close();
    return { state, socket };
  }

  /** A connection that moved here (moveOut's state), bound to `socket`; throws on a state that does not hold together. */
  static moveIn(owner: ConnOwner, st: TcpConnState, socket: HostSocket, now: number): TcpConn {
    const u32 = (v: unknown): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error('a moved TCP connection has a broken field');
      return v;
    };
    const c = new TcpConn(owner, u32(st.guestIp), u32(st.guestPort), u32(st.remoteIp), u32(st.remotePort), st.fromGuest === true);
    if (!MOVABLE.has(st.state)) throw new Error(`a moved TCP connection in state ${String(st.state)}`);
    const me = c as unknown as Record<string, number | boolean>;
    for (const k of SEQ_FIELDS) me[k] = k === 'srtt' || k === 'rttvar' || k === 'rto' ? Math.max(0, Number(st.seq?.[k]) || 0) : u32(st.seq?.[k]);
    for (const k of FLAG_FIELDS) me[k] = st.flags?.[k] === true;
    for (const k of TIMER_FIELDS) { const v = Number(st.timers?.[k]) || 0; me[k] = v ? now + v : 0; }
    c.state = st.state;
    const data = Buffer.from(typeof st.unacked === 'string' ? st.unacked : '', 'base64');
    if (data.length) c.chunks.push(data);
    c.buffered = data.length;
    c.bind(socket);
    if (c.paused) socket.pause();
    else socket.resume(); // moveOut paused it
    return c;
  }

  // ---- set-up ----

  /** A guest's SYN opened this connection; the host connect is started by the owner. */
  acceptSyn(s: Seg, now: number): void {
    this.rcvNxt = (s.seq + 1) >>> 0;
    this.rcvEdge = this.rcvNxt;
    this.applySynOptions(s);
    this.sndWnd = s.wnd; // never scaled in a SYN (RFC 7323 §2.2)
    this.deadline = now + this.owner.limits.connectTimeoutMs;
  }

  /** Binds the host socket and its events. */
  bind(socket: HostSocket): void {
    this.socket = socket;
    this.hostListeners = [
      ['data', (d: Buffer) => this.onHostData(d)],
      ['end', () => this.onHostEnd()],
      ['drain', () => this.onHostDrain()],
      ['error', (err: NodeJS.ErrnoException) => this.onHostError(err)],
      ['close', () => this.onHostEnd()],
    ];
    for (const [ev, fn] of this.hostListeners) socket.on(ev, fn);
  }

  /** The host connect succeeded: answer the guest's SYN. */
  hostConnected(now: number): void {
    if (this.state !== State.CONNECTING) return;
    this.state = State.SYN_RCVD;
    this.sendSyn(now);
  }

  /** Forwarded connection: send our SYN to the guest. */
  startForward(now: number): void {
    this.sendSyn(now);
  }

  private applySynOptions(s: Seg): void {
    this.mss = s.opts.mss > 0 ? Math.max(64, s.opts.mss) : 536;
    // Window scaling only when both SYNs carry the option (RFC 7323 §1.3).
    this.sndShift = s.opts.wscale >= 0 ? s.opts.wscale : 0;
    this.rcvShift = s.opts.wscale >= 0 ? OUR_WSCALE : 0;
  }

  private sendSyn(now: number): void {
    this.sndNxt = this.iss;
    const flags = this.state === State.SYN_SENT ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK;
    if (this.segment(this.iss, 0, flags, true)) this.sndNxt = (this.iss + 1) >>> 0;
    else this.owner.link.waiting.add(this);
    if (this.rtoAt === 0) this.rtoAt = now + this.rto;
  }

  // ---- from the guest ----

  /** A segment from the guest for this connection (checksum already checked). */
  input(s: Seg, now: number): void {
    const c = this.owner.counters;
    switch (this.state) {
      case State.CONNECTING:
        if (s.flags & TcpFlag.RST) this.abort(false);
        return; // retransmitted SYNs wait for the host connect
      case State.SYN_SENT:
        if (s.flags & TcpFlag.ACK && s.ack !== ((this.iss + 1) >>> 0)) {
          if (!(s.flags & TcpFlag.RST)) this.rstFor(s);
          return;
        }
        if (s.flags & TcpFlag.RST) { if (s.flags & TcpFlag.ACK) this.abort(false); return; }
        if ((s.flags & (TcpFlag.SYN | TcpFlag.ACK)) !== (TcpFlag.SYN | TcpFlag.ACK)) return;
        this.rcvNxt = (s.seq + 1) >>> 0;
        this.rcvEdge = this.rcvNxt;
        this.applySynOptions(s);
        this.established(s);
        this.sndWnd = s.wnd;
        this.ackPending = true;
        this.flush(now);
        return;
      case State.CLOSED:
        return;
      default:
    }
    if (s.flags & TcpFlag.SYN && this.state === State.SYN_RCVD && s.seq === ((this.rcvNxt - 1) >>> 0) && !(s.flags & TcpFlag.ACK)) {
      this.sendSyn(now); // the guest did not get our SYN-ACK
      return;
    }
    // §3.10.7.4 first: is the segment in the window?
    const wnd = seqDiff(this.rcvEdge, this.rcvNxt);
    const len = s.dataLen + (s.flags & TcpFlag.FIN ? 1 : 0);
    const fromStart = seqDiff(s.seq, this.rcvNxt);
    const ok = len === 0
      ? fromStart === 0 || (fromStart >= 0 && fromStart < wnd)
      : (fromStart >= 0 && fromStart < Math.max(wnd, 1)) || (fromStart < 0 && fromStart + len > 0);
    if (!ok) {
      if (s.flags & TcpFlag.RST) c.drop('tcp-out-of-window'); // ignored (RFC 5961 §3.2), but counted
      else {
        if (len > 0 || fromStart !== 0) c.drop('tcp-out-of-window');
        this.sendAck();
      }
      return;
    }
    if (s.flags & TcpFlag.RST) { this.abort(false); return; }
    if (s.flags & TcpFlag.SYN) { this.sendAck(); return; } // RFC 5961 §4: challenge ACK
    if (!(s.flags & TcpFlag.ACK)) return;
    if (this.state === State.SYN_RCVD) {
      if (s.ack !== ((this.iss + 1) >>> 0)) { this.rstFor(s); return; }
      this.established(s);
    }
    this.processAck(s, now);
    const st = this.state as State; // processAck may have ended it
    if (st === State.CLOSED) return;
    if (st === State.TIME_WAIT) {
      if (s.flags & TcpFlag.FIN) this.sendAck();
      return;
    }
    this.processData(s, fromStart);
    this.maybeFinished(now);
    if ((this.state as State) !== State.CLOSED) this.flush(now);
  }

  private established(s: Seg): void {
    this.state = State.ESTABLISHED;
    this.sndUna = (this.iss + 1) >>> 0;
    this.sndNxt = this.sndUna;
    this.bufSeq = this.sndUna;
    this.sndWl1 = s.seq;
    this.sndWl2 = s.ack;
    this.rtoAt = 0;
    this.retries = 0;
    this.deadline = 0;
    this.owner.counters.tcpOpened++;
  }

  private processAck(s: Seg, now: number): void {
    const ack = s.ack;
    if (seqLt(this.sndNxt, ack)) { // acknowledges what we never sent
      this.owner.counters.drop('tcp-out-of-window');
      this.ackPending = true;
      return;
    }
    const acked = seqDiff(ack, this.sndUna);
    const oldWnd = this.sndWnd;
    if (seqLt(this.sndWl1, s.seq) || (this.sndWl1 === s.seq && seqLe(this.sndWl2, ack))) {
      this.sndWnd = s.wnd << this.sndShift;
      this.sndWl1 = s.seq;
      this.sndWl2 = ack;
    }
    if (acked > 0) {
      const data = Math.min(acked, this.buffered);
      this.consume(data);
      this.sndUna = ack;
      if (this.rttStart !== 0 && seqLe(this.rttSeq, ack)) {
        this.rttSample(now - this.rttStart);
        this.rttStart = 0;
      }
      this.retries = 0;
      this.persistBackoff = 0;
      this.rtoAt = this.sndUna === this.sndNxt ? 0 : now + this.rto;
      if (this.inRecovery) {
        if (seqLt(ack, this.recover)) this.retransmitOne(); // NewReno partial ACK: the next hole
        else this.inRecovery = false;
      }
      this.dupAcks = 0;
      if (this.paused && this.buffered <= this.owner.limits.tcpSendBuffer / 2) {
        this.paused = false;
        this.socket?.resume();
      }
    } else if (acked === 0 && s.dataLen === 0 && !(s.flags & TcpFlag.FIN) && this.sndUna !== this.sndNxt && this.sndWnd === oldWnd) {
      if (++this.dupAcks === 3 && !this.inRecovery) {
        this.inRecovery = true;
        this.recover = this.sndNxt;
        this.owner.counters.tcpFastRetransmits++;
        this.retransmitOne();
      }
    }
  }

  private processData(s: Seg, fromStart: number): void {
    let off = s.dataOff, n = s.dataLen;
    if (fromStart > 0) { // a hole before it: the guest resends after our duplicate ACK
      this.owner.counters.drop('tcp-out-of-window');
      this.sendAck();
      return;
    }
    if (fromStart < 0) { off -= fromStart; n += fromStart; }
    if (n > 0 && !this.guestFin) {
      const room = seqDiff(this.rcvEdge, this.rcvNxt);
      if (n > room) { this.owner.counters.drop('tcp-out-of-window'); n = room; }
      if (n > 0) {
        const sock = this.socket;
        if (sock && !sock.destroyed && !sock.writableEnded) sock.write(Buffer.from(s.frame.subarray(off, off + n)));
        this.rcvNxt = (this.rcvNxt + n) >>> 0;
        this.owner.counters.tcpBytesFromGuest += n;
        this.ackPending = true;
      }
    }
    if (s.flags & TcpFlag.FIN && !this.guestFin && seqDiff((s.seq + s.dataLen) >>> 0, this.rcvNxt) === 0) {
      this.guestFin = true;
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      this.ackPending = true;
      this.socket?.end();
    }
  }

  private maybeFinished(now: number): void {
    const finAcked = this.hostEof && this.buffered === 0 && this.sndUna === this.sndNxt && seqDiff(this.sndNxt, this.bufSeq) === 1;
    if (!finAcked || !this.guestFin) return;
    if (this.weClosedFirst) {
      if (this.ackPending) this.sendAck();
      this.state = State.TIME_WAIT;
      this.deadline = now + this.owner.limits.timeWaitMs;
      this.rtoAt = 0;
    } else {
      if (this.ackPending) this.sendAck();
      this.close();
    }
  }

  // ---- from the host ----

  private onHostData(d: Buffer): void {
    if (this.state === State.CLOSED || this.hostEof) return;
    this.chunks.push(d);
    this.buffered += d.length;
    if (!this.paused && this.buffered > this.owner.limits.tcpSendBuffer) {
      this.paused = true;
      this.socket?.pause();
    }
    if (this.state === State.ESTABLISHED) this.flush(Date.now());
  }

  private onHostEnd(): void {
    if (this.hostEof || this.state === State.CLOSED) return;
    this.hostEof = true;
    if (!this.guestFin) this.weClosedFirst = true;
    if (this.state === State.ESTABLISHED) this.flush(Date.now());
    else if (this.state === State.CONNECTING) this.refuse();
  }

  private onHostDrain(): void {
    // Reopen a window that had closed below half (the guest waits for it).
    if (this.state === State.ESTABLISHED && seqDiff(this.rcvEdge, this.rcvNxt) < this.owner.limits.tcpRecvBuffer / 2) this.sendAck();
  }

  private onHostError(err: NodeJS.ErrnoException): void {
    if (this.state === State.CLOSED) return;
    if (this.state === State.CONNECTING) { this.refuse(); return; }
    void err;
    this.owner.counters.tcpReset++;
    this.sendRst();
    this.close();
  }

  /** The host connect failed (refused, unreachable, timed out): RST|ACK to the guest's SYN. */
  refuse(): void {
    this.owner.counters.tcpRefused++;
    this.segment(0, 0, TcpFlag.RST | TcpFlag.ACK, false);
    this.close();
  }

  // ---- sending ----

  /** Sends what the window allows, then a pending ACK; registers for onRxSpace when the guest has no room. */
  flush(now = Date.now()): void {
    const st = this.state;
    if (st === State.SYN_RCVD || st === State.SYN_SENT) {
      if (this.sndNxt === this.iss) this.sendSyn(now);
      return;
    }
    if (st !== State.ESTABLISHED) return;
    const link = this.owner.link;
    const maxSeg = this.maxSegment();
    for (;;) {
      const off = seqDiff(this.sndNxt, this.bufSeq);
      const avail = this.buffered - off;
      const room = seqDiff((this.sndUna + this.sndWnd) >>> 0, this.sndNxt);
      const n = Math.max(0, Math.min(avail, room, maxSeg));
      const fin = this.hostEof && avail >= 0 && n === avail;
      if (n === 0 && !fin) break;
      let flags = TcpFlag.ACK;
      if (n > 0 && n === avail) flags |= TcpFlag.PSH;
      if (fin) flags |= TcpFlag.FIN;
      if (!this.segment(this.sndNxt, n, flags, false)) { link.waiting.add(this); return; }
      if (this.rttStart === 0 && (n > 0 || fin) && this.retries === 0) { this.rttSeq = (this.sndNxt + n) >>> 0; this.rttStart = now; }
      this.sndNxt = (this.sndNxt + n + (fin ? 1 : 0)) >>> 0;
      if (this.rtoAt === 0) this.rtoAt = now + this.rto;
      if (fin) break;
    }
    if (this.ackPending) this.sendAck();
    if (this.sndWnd === 0 && this.buffered > seqDiff(this.sndNxt, this.bufSeq) && this.sndUna === this.sndNxt && this.persistAt === 0) {
      this.persistAt = now + Math.min(this.rto << this.persistBackoff, MAX_PERSIST);
    }
  }

  private maxSegment(): number {
    const o = this.owner.link.offloads;
    if (!o) return 0;
    const plain = Math.min(this.mss, o.maxFrame - L4 - HDR);
    if (!(o.csum && o.tso4)) return plain;
    // One GSO frame: IPv4's 64 KiB total length, cut into whole MSS pieces by the guest's stack.
    const big = Math.min(65535 - 20 - HDR, o.maxFrame - L4 - HDR);
    return Math.max(plain, big - (big % this.mss));
  }

  private retransmitOne(): void {
    const off = seqDiff(this.sndUna, this.bufSeq);
    // One MSS, but never more than a plain frame carries: a guest may announce an MSS its
    // buffers cannot take (and over ~64 KiB the segment would not fit link.buf).
    const n = Math.max(0, Math.min(this.buffered - off, this.mss, this.maxSegment()));
    const fin = this.hostEof && n === this.buffered - off && seqDiff(this.sndNxt, this.sndUna) > n;
    this.owner.counters.tcpRetransmits++;
    this.segment(this.sndUna, n, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0), false);
  }

  sendAck(): void {
    this.ackPending = !this.segment(this.sndNxt, 0, TcpFlag.ACK, false);
    if (this.ackPending) this.owner.link.waiting.add(this);
  }

  private sendRst(): void {
    this.segment(this.sndNxt, 0, TcpFlag.RST | TcpFlag.ACK, false);
  }

  /** RST for an unacceptable ACK (§3.10.7.3): seq taken from the segment's ACK. */
  private rstFor(s: Seg): void {
    this.segment(s.ack, 0, TcpFlag.RST, false, true);
  }

  /**
   * Builds and delivers one segment from seq with `n` bytes of buffered data (beginning at seq);
   * false when the guest has no room now. `raw`: no ACK field, for an RST from the ACK.
   */
  private segment(seq: number, n: number, flags: number, syn: boolean, raw = false): boolean {
    const link = this.owner.link;
    const o = link.offloads;
    if (!o) return false;
    const b = link.buf;
    // Our SYN offers window scaling; a SYN-ACK only answers the guest's offer.
    const hl = syn ? HDR + writeSynOptions(b, L4 + Tcp.SIZE, OUR_MSS, this.state === State.SYN_SENT || this.rcvShift > 0 ? OUR_WSCALE : -1) : HDR;
    put16(b, L4 + Tcp.SRC_PORT, this.remotePort);
    put16(b, L4 + Tcp.DST_PORT, this.guestPort);
    put32(b, L4 + Tcp.SEQ, seq);
    put32(b, L4 + Tcp.ACK, raw || !(flags & TcpFlag.ACK) ? 0 : this.rcvNxt);
    b[L4 + Tcp.OFF_FLAGS] = (hl / 4) << 4;
    b[L4 + Tcp.OFF_FLAGS + 1] = flags;
    put16(b, L4 + Tcp.WINDOW, flags & TcpFlag.RST ? 0 : this.window(syn));
    put16(b, L4 + Tcp.CSUM, 0);
    put16(b, L4 + Tcp.URGENT, 0);
    if (n > 0) this.copyOut(b, L4 + hl, seqDiff(seq, this.bufSeq), n);
    const l4Len = hl + n;
    const len = link.ipHeader(this.remoteIp, this.guestIp, IpProto.TCP, l4Len);
    const m = link.meta;
    const pseudo = pseudoSum(this.remoteIp, this.guestIp, IpProto.TCP, l4Len);
    m.dataValid = false;
    m.gso = Gso.NONE;
    m.gsoSize = 0;
    m.hdrLen = 0;
    if (o.csum) {
      // The guest finishes the sum (or trusts it): we never read the payload for it.
      m.needsCsum = true;
      m.csumStart = L4;
      m.csumOffset = Tcp.CSUM;
      put16(b, L4 + Tcp.CSUM, fold(pseudo));
      if (n > this.mss) {
        m.gso = Gso.TCPV4;
        m.gsoSize = this.mss;
        m.hdrLen = L4 + hl;
      }
    } else {
      m.needsCsum = false;
      m.csumStart = m.csumOffset = 0;
      put16(b, L4 + Tcp.CSUM, checksum(b, L4, L4 + l4Len, pseudo));
    }
    if (!link.deliverNow(len, m)) return false;
    link.nextIds(m.gso === Gso.NONE ? 1 : Math.ceil(n / this.mss));
    if (n > 0) {
      const newBytes = seqDiff((seq + n) >>> 0, this.sndNxt);
      if (newBytes > 0) this.owner.counters.tcpBytesToGuest += newBytes;
    }
    return true;
  }

  private window(syn: boolean): number {
    const sock = this.socket;
    const queued = sock ? sock.writableLength : 0;
    const free = Math.max(0, this.owner.limits.tcpRecvBuffer - queued);
    let edge = (this.rcvNxt + free) >>> 0;
    if (seqLt(edge, this.rcvEdge)) edge = this.rcvEdge;
    const shift = syn ? 0 : this.rcvShift;
    const w = Math.min(seqDiff(edge, this.rcvNxt) >>> shift, 0xffff);
    this.rcvEdge = (this.rcvNxt + (w << shift)) >>> 0;
    return w;
  }

  private copyOut(dst: Uint8Array, at: number, off: number, n: number): void {
    let i = 0;
    let pos = off + this.headOff;
    while (pos >= this.chunks[i]!.length) pos -= this.chunks[i++]!.length;
    while (n > 0) {
      const c = this.chunks[i++]!;
      const k = Math.min(n, c.length - pos);
      dst.set(c.subarray(pos, pos + k), at);
      at += k;
      n -= k;
      pos = 0;
    }
  }

  private consume(n: number): void {
    this.buffered -= n;
    this.bufSeq = (this.bufSeq + n) >>> 0;
    n += this.headOff;
    while (this.chunks.length > 0 && n >= this.chunks[0]!.length) n -= this.chunks.shift()!.length;
    this.headOff = n;
  }

  private rttSample(r: number): void {
    if (this.srtt === 0) { this.srtt = r; this.rttvar = r / 2; } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(MAX_RTO, Math.max(MIN_RTO, this.srtt + Math.max(10, 4 * this.rttvar)));
  }

  // ---- timers and the end ----

  /** Called by the owner's clock; does what is due. */
  tick(now: number): void {
    const st = this.state;
    if (this.deadline !== 0 && now >= this.deadline) {
      if (st === State.CONNECTING) { this.socket?.destroy(); this.refuse(); return; }
      if (st === State.TIME_WAIT) { this.close(); return; }
    }
    if (this.persistAt !== 0 && now >= this.persistAt) {
      this.persistAt = 0;
      if (this.sndWnd === 0 && st === State.ESTABLISHED) {
        this.owner.counters.tcpZeroWindowProbes++;
        this.segment((this.sndUna - 1) >>> 0, 0, TcpFlag.ACK, false);
        if (this.persistBackoff < 16) this.persistBackoff++;
        this.persistAt = now + Math.min(this.rto << this.persistBackoff, MAX_PERSIST);
      }
    }
    if (this.rtoAt !== 0 && now >= this.rtoAt) {
      this.rtoAt = 0;
      const syn = st === State.SYN_SENT || st === State.SYN_RCVD;
      if (++this.retries > (syn ? MAX_SYN_RETRIES : MAX_RETRIES)) {
        this.owner.counters.tcpReset++;
        this.abort(true);
        return;
      }
      this.rto = Math.min(this.rto * 2, MAX_RTO);
      this.rttStart = 0; // Karn: no samples from resent data
      this.inRecovery = false;
      this.dupAcks = 0;
      this.owner.counters.tcpRetransmits++;
      if (syn) { this.sendSyn(now); return; }
      this.sndNxt = this.sndUna; // go back N
      this.flush(now);
      if (this.rtoAt === 0 && this.sndUna !== this.sndNxt) this.rtoAt = now + this.rto;
    }
  }

  /** Ends the connection at once; `rstGuest` tells the guest with an RST. The host socket is reset. */
  abort(rstGuest: boolean): void {
    if (this.state === State.CLOSED) return;
    if (rstGuest && this.state !== State.CONNECTING) this.sendRst();
    const s = this.socket;
    if (s && !s.destroyed) {
      // Not while our end() (the guest's FIN) is still shutting the socket down: Node's reset then
      // fails (EINVAL) and leaves the handle open for good, a leaked fd per FIN-then-RST from the guest.
      if (this.state === State.CONNECTING || (s.writableEnded && !s.writableFinished)) s.destroy();
      else s.resetAndDestroy();
    }
    this.close();
  }

  /** Releases the connection (the host socket closes by itself after its FIN, or is destroyed when still open). */
  close(): void {
    if (this.state === State.CLOSED) return;
    this.state = State.CLOSED;
    this.rtoAt = this.persistAt = this.deadline = 0;
    this.chunks.length = 0;
    this.buffered = 0;
    const s = this.socket;
    if (s && !s.destroyed && !(this.guestFin && this.hostEof)) s.destroy();
    this.owner.link.waiting.delete(this);
    this.owner.release(this);
  }

  /** Whether the connection is still being set up (counts against the half-open cap). */
  get halfOpen(): boolean { return this.state === State.CONNECTING || this.state === State.SYN_RCVD || this.state === State.SYN_SENT; }
}
