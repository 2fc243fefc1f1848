// A hostile guest against the user network (issue 11: "malformed frames, wrong checksums, oversized
// frames, TCP segments out of window, SYN floods, DHCP/ARP storms from a hostile guest: dropped and
// counted, never a host exception, never memory growth without bound"). Real sockets, on loopback
// only; every random choice comes from a seeded generator, and a failure names the seed and frame.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Gso, plainFrame, type FrameMeta, type GuestOffloads, type NicPort } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { mulberry32 } from '../../devices/virtio/testing.js';
import { checksum, pseudoSum, verifies } from '../packet/checksum.js';
import { be16, be32, EtherType, put16, put32 } from '../packet/ethernet.js';
import { Dhcp, DHCP_MAGIC, DhcpOpt, DhcpType } from '../packet/dhcp.js';
import { IpProto, TcpFlag } from '../packet/ip.js';
import { DEFAULT_LIMITS } from './config.js';
import { GATEWAY_MAC, Guest, ip } from './guest-double.js';
import { UserNet } from './usernet.js';

const GW = ip('10.0.2.2'), DNS = ip('10.0.2.3'), GUEST = ip('10.0.2.15');
const NET = ip('10.0.2.0'), MASK = ip('255.255.255.0'), BCAST_IP = 0xffffffff;
const GUEST_MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const BCAST_MAC = new Uint8Array(6).fill(0xff);
const KiB = 1024;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const pause = (ms = 0): Promise<void> => new Promise(r => (ms > 0 ? setTimeout(r, ms) : setImmediate(r)));
const dropped = (st: Record<string, number>, reason: string): number => st[`drop.${reason}`] ?? 0;
const inNet = (a: number): boolean => ((a & MASK) >>> 0) === NET && a !== NET && a !== ((NET | ~MASK) >>> 0);

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(5);
  }
}

/** A full GC when one can be had: --expose-gc, else the V8 flag set at run time; undefined when neither works. */
const gc: (() => void) | undefined = (() => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();
const heapUsed = (): number => { gc?.(); return process.memoryUsage().heapUsed; };

function randomBytes(n: number, seed: number): Buffer {
  const r = mulberry32(seed), b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

async function listening(s: Server): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as { port: number }).port;
}

// ---- frames, built independently of the code under test ----

function ethFrame(type: number, payloadLen: number, dst: Uint8Array = GATEWAY_MAC): Uint8Array {
  const f = new Uint8Array(14 + payloadLen);
  f.set(dst, 0);
  f.set(GUEST_MAC, 6);
  put16(f, 12, type);
  return f;
}

/** Recomputes the IPv4 header checksum and the TCP/UDP/ICMP one, as far as the (possibly mutated) headers allow. */
function fixSums(f: Uint8Array): void {
  if (f.length < 34 || be16(f, 12) !== EtherType.IPV4) return;
  const ihl = (f[14]! & 15) * 4;
  if (ihl < 20 || 14 + ihl > f.length) return;
  put16(f, 24, 0);
  put16(f, 24, checksum(f, 14, 14 + ihl));
  const l4 = 14 + ihl, end = Math.min(f.length, 14 + be16(f, 16)), src = be32(f, 26), dst = be32(f, 30);
  if (end <= l4) return;
  if (f[23] === IpProto.TCP && end - l4 >= 20) {
    put16(f, l4 + 16, 0);
    put16(f, l4 + 16, checksum(f, l4, end, pseudoSum(src, dst, IpProto.TCP, end - l4)));
  } else if (f[23] === IpProto.UDP && end - l4 >= 8) {
    put16(f, l4 + 6, 0);
    put16(f, l4 + 6, checksum(f, l4, end, pseudoSum(src, dst, IpProto.UDP, end - l4)) || 0xffff);
  } else if (f[23] === IpProto.ICMP && end - l4 >= 8) {
    put16(f, l4 + 2, 0);
    put16(f, l4 + 2, checksum(f, l4, end));
  }
}

/** An IPv4 frame around the L4 bytes `l4`, checksums right. */
function ipFrame(proto: number, src: number, dst: number, l4: Uint8Array, dstMac: Uint8Array = GATEWAY_MAC): Uint8Array {
  const f = ethFrame(EtherType.IPV4, 20 + l4.length, dstMac);
  f[14] = 0x45;
  put16(f, 16, 20 + l4.length);
  put16(f, 20, 0x4000);
  f[22] = 64;
  f[23] = proto;
  put32(f, 26, src);
  put32(f, 30, dst);
  f.set(l4, 34);
  fixSums(f);
  return f;
}

function udpL4(sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, 8 + data.length);
  u.set(data, 8);
  return u;
}

function tcpL4(sport: number, dport: number, seq: number, ack: number, flags: number, wnd: number, data: Uint8Array = new Uint8Array(0), options: number[] = []): Uint8Array {
  const opts = [...options];
  while (opts.length % 4) opts.push(0); // END as padding
  const hl = 20 + opts.length;
  const t = new Uint8Array(hl + data.length);
  put16(t, 0, sport);
  put16(t, 2, dport);
  put32(t, 4, seq);
  put32(t, 8, ack);
  t[12] = (hl / 4) << 4;
  t[13] = flags;
  put16(t, 14, wnd);
  t.set(opts, 20);
  t.set(data, hl);
  return t;
}

function icmpL4(type: number, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + payload.length);
  m[0] = type;
  put16(m, 4, id);
  put16(m, 6, seq);
  m.set(payload, 8);
  return m;
}

function arpFrame(op: number, sha: Uint8Array, spa: number, tpa: number): Uint8Array {
  const f = ethFrame(EtherType.ARP, 28, BCAST_MAC);
  put16(f, 14, 1); put16(f, 16, EtherType.IPV4); f[18] = 6; f[19] = 4; put16(f, 20, op);
  f.set(sha, 22); put32(f, 28, spa); put32(f, 38, tpa);
  return f;
}

function dhcpPayload(type: number, chaddr: Uint8Array, xid: number, options: number[] = []): Uint8Array {
  const p = new Uint8Array(300);
  p[Dhcp.OP] = 1; p[Dhcp.HTYPE] = 1; p[Dhcp.HLEN] = 6;
  put32(p, Dhcp.XID, xid);
  p.set(chaddr, Dhcp.CHADDR);
  put32(p, Dhcp.MAGIC, DHCP_MAGIC);
  p.set([DhcpOpt.MSG_TYPE, 1, type, ...options, DhcpOpt.END], Dhcp.OPTIONS);
  return p;
}

const dhcpFrame = (payload: Uint8Array, dst = BCAST_IP): Uint8Array => ipFrame(IpProto.UDP, 0, dst, udpL4(68, 67, payload), BCAST_MAC);

// ---- what the counters must say: an independent reading of each frame ----

/** The drop reasons a single frame decides by itself (no flow state): each frame's must match exactly. */
const STATELESS = ['short', 'oversized', 'vlan', 'ethertype', 'arp', 'ip-header', 'ip-checksum', 'fragment', 'guest-offload',
  'not-for-us', 'ip-proto', 'icmp', 'icmp-remote', 'udp-header', 'udp-checksum', 'tcp-header', 'tcp-checksum', 'policy'] as const;
type Stateless = (typeof STATELESS)[number];

/** Addresses the TCP side answers with an RST itself, before any policy (nobody is there). */
const nobodyTcp = (dst: number, dport: number): boolean =>
  dst === DNS ? dport !== 53 : dst !== GW && (((dst & MASK) >>> 0) === NET || dst >>> 28 >= 14 || dst >>> 24 === 0 || dst >>> 24 === 127);

/**
 * Which stateless reason the frame must be dropped for, or undefined when it gets past every
 * stateless check (then what happens depends on flows, leases and the NIC's room).
 */
function expectedDrop(f: Uint8Array, m: FrameMeta, maxFrame: number, allows: (dst: number, port: number) => boolean): Stateless | undefined {
  if (f.length > MAX_FRAME) return 'oversized';
  if (f.length < 14) return 'short';
  const type = be16(f, 12);
  if (type === EtherType.VLAN) return f.length < 18 ? 'short' : 'vlan';
  if (type === EtherType.ARP) return f.length < 42 || be16(f, 14) !== 1 || be16(f, 16) !== EtherType.IPV4 || f[18] !== 6 || f[19] !== 4 ? 'arp' : undefined;
  if (type !== EtherType.IPV4) return 'ethertype';
  if (f.length < 34) return 'short';
  const ihl = (f[14]! & 15) * 4;
  let total = be16(f, 16);
  if (total === 0 && m.gso !== Gso.NONE) total = f.length - 14;
  if (f[14]! >> 4 !== 4 || ihl < 20 || total < ihl || 14 + total > f.length) return 'ip-header';
  if (!verifies(f, 14, 14 + ihl)) return 'ip-checksum';
  if (be16(f, 20) & 0x3fff) return 'fragment';
  const proto = f[23]!;
  if (m.gso !== Gso.NONE && (m.gso !== Gso.TCPV4 || proto !== IpProto.TCP)) return 'guest-offload';
  const src = be32(f, 26), dst = be32(f, 30), l4 = 14 + ihl, end = 14 + total;
  const verify = !m.needsCsum && !m.dataValid;
  if (proto === IpProto.UDP && end - l4 >= 8 && be16(f, l4 + 2) === 67) return dst === BCAST_IP || dst === GW ? undefined : 'not-for-us';
  if (!inNet(src) || src === GW || src === DNS) return 'not-for-us';
  if (proto === IpProto.TCP) {
    if (end - l4 < 20) return 'tcp-header';
    const hl = (f[l4 + 12]! >> 4) * 4;
    if (hl < 20 || l4 + hl > end) return 'tcp-header';
    if (verify && !verifies(f, l4, end, pseudoSum(src, dst, IpProto.TCP, end - l4))) return 'tcp-checksum';
    const dport = be16(f, l4 + 2);
    // A bare SYN opens a flow (flows exist only where the policy allows, so it cannot match one).
    if ((f[l4 + 13]! & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN && !nobodyTcp(dst, dport) && !allows(dst, dport)) return 'policy';
    return undefined;
  }
  if (proto === IpProto.UDP) {
    if (end - l4 < 8) return 'udp-header';
    const ulen = be16(f, l4 + 4);
    if (ulen < 8 || l4 + ulen > end) return 'udp-header';
    if (verify && be16(f, l4 + 6) !== 0 && !verifies(f, l4, l4 + ulen, pseudoSum(src, dst, IpProto.UDP, ulen))) return 'udp-checksum';
    const dport = be16(f, l4 + 2);
    if (dport === 0) return 'not-for-us';
    if (dst === DNS) return dport !== 53 ? 'not-for-us' : allows(DNS, 53) ? undefined : 'policy';
    if (dst !== GW && (((dst & MASK) >>> 0) === NET || dst >>> 28 >= 14 || dst >>> 24 === 0 || dst >>> 24 === 127)) return 'not-for-us';
    return allows(dst, dport) ? undefined : 'policy';
  }
  if (proto === IpProto.ICMP) {
    if (end - l4 < 8 || (verify && !verifies(f, l4, end))) return 'icmp';
    if (f[l4] !== 8) return 'icmp';
    if (dst !== GW && dst !== DNS) return 'icmp-remote';
    if (34 + end - l4 > maxFrame) return 'oversized';
    return undefined;
  }
  return 'ip-proto';
}

/** The stateless counters' changes over one send(). */
function statelessDelta(before: Record<string, number>, after: Record<string, number>): Partial<Record<Stateless, number>> {
  const d: Partial<Record<Stateless, number>> = {};
  for (const r of STATELESS) {
    const n = dropped(after, r) - dropped(before, r);
    if (n !== 0) d[r] = n;
  }
  return d;
}

const hex = (f: Uint8Array, n = 96): string => Buffer.from(f.subarray(0, n)).toString('hex') + (f.length > n ? `… (${f.length} bytes)` : ` (${f.length} bytes)`);

// ---- a NIC that checks what the host sends and sometimes has no room ----

/**
 * The device side of a NIC for the fuzz: validates every frame for the guest, learns TCP numbers,
 * and has a ring of `ring` buffers that the guest refills on its next turn (onRxSpace): a burst of
 * replies fills it, and the backend has to queue or drop.
 */
class CheckingPort implements NicPort {
  readonly mac = Uint8Array.from(GUEST_MAC);
  readonly linkUp = true;
  onRxSpace: (() => void) | undefined;
  delivered = 0;
  refused = 0;
  largest = 0;
  readonly errors: string[] = [];
  /** Per guest TCP port: the host's next sequence number and what the host acknowledges (the guest's next). */
  readonly tcp = new Map<number, { seq: number; ack: number | undefined }>();
  private room: number;
  private turnPending = false;

  constructor(public offloads: GuestOffloads, private readonly ring: number) {
    this.room = ring;
  }

  private turn(): void {
    if (this.turnPending) return;
    this.turnPending = true;
    setImmediate(() => {
      this.turnPending = false;
      const wasFull = this.room === 0;
      this.room = this.ring;
      if (wasFull) this.onRxSpace?.();
    });
  }

  deliver(f: Uint8Array, m: FrameMeta): boolean {
    this.turn();
    if (this.room === 0) { this.refused++; return false; }
    this.room--;
    this.delivered++;
    this.largest = Math.max(this.largest, f.length);
    const err = (s: string): void => { if (this.errors.length < 20) this.errors.push(`${s}: ${hex(f)}`); };
    if (f.length > this.offloads.maxFrame) err(`frame over maxFrame ${this.offloads.maxFrame}`);
    if (m.gso !== Gso.NONE && !(this.offloads.tso4 && this.offloads.csum)) err('GSO frame the guest did not accept');
    if ((m.needsCsum || m.dataValid) && !this.offloads.csum) err('checksum offload the guest did not accept');
    if (f.length < 14) { err('runt'); return true; }
    if (be16(f, 12) !== EtherType.IPV4) return true;
    const ihl = (f[14]! & 15) * 4, end = 14 + be16(f, 16), l4 = 14 + ihl;
    if (ihl !== 20 || end > f.length || !verifies(f, 14, 34)) { err('bad IPv4 header'); return true; }
    if (f[23] === IpProto.TCP && end - l4 >= 20) {
      const flags = f[l4 + 13]!, hl = (f[l4 + 12]! >> 4) * 4;
      const next = (be32(f, l4 + 4) + (end - l4 - hl) + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0)) >>> 0;
      if (!(flags & TcpFlag.RST)) this.tcp.set(be16(f, l4 + 2), { seq: next, ack: flags & TcpFlag.ACK ? be32(f, l4 + 8) : undefined });
    }
    return true;
  }
}

// ---- the fuzz ----

interface FuzzHosts { tcpPort: number; udpPort: number }

/** A frame from a seeded hostile guest: a valid frame of some kind, then (often) mutations and random offload metadata. */
function hostileFrame(r: () => number, h: FuzzHosts, learned: CheckingPort['tcp']): { f: Uint8Array; meta: FrameMeta; kind: string } {
  const int = (n: number): number => Math.floor(r() * n);
  const u16 = (): number => int(0x10000);
  const u32 = (): number => Math.floor(r() * 0x100000000) >>> 0;
  const rbytes = (n: number): Uint8Array => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; };
  const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
  const someDst = (): number => pick([GW, GW, GW, DNS, GUEST, ip('10.0.2.77'), ip('10.0.2.255'), ip('192.0.2.1'), ip('8.8.8.8'), ip('127.0.0.1'), ip('224.0.0.1'), BCAST_IP, 0, u32()]);
  const someSrc = (): number => (r() < 0.92 ? GUEST : pick([0, GW, DNS, ip('10.0.2.200'), ip('192.168.1.1'), u32()]));
  let f: Uint8Array;
  let kind: string;
  const k = r();
  if (k < 0.08) {
    kind = 'random bytes';
    f = rbytes(r() < 0.3 ? int(40) : int(1600));
  } else if (k < 0.12) {
    kind = 'random bytes, known type';
    f = rbytes(14 + int(200));
    put16(f, 12, pick([EtherType.IPV4, EtherType.ARP, EtherType.VLAN, EtherType.IPV6, EtherType.QINQ]));
  } else if (k < 0.2) {
    kind = 'arp';
    f = arpFrame(pick([1, 1, 1, 2, u16()]), r() < 0.5 ? GUEST_MAC : rbytes(6), someSrc(), r() < 0.7 ? (NET + int(256)) >>> 0 : u32());
  } else if (k < 0.28) {
    kind = 'icmp';
    f = ipFrame(IpProto.ICMP, someSrc(), r() < 0.7 ? pick([GW, DNS]) : someDst(), icmpL4(r() < 0.8 ? 8 : int(256), u16(), u16(), rbytes(int(r() < 0.05 ? 3000 : 200))));
  } else if (k < 0.42) {
    kind = 'udp';
    const sport = r() < 0.6 ? 20000 + int(60) : u16();
    const to = r();
    const [dst, dport] = to < 0.45 ? [GW, h.udpPort] : to < 0.65 ? [DNS, 53] : to < 0.75 ? [GW, u16()] : to < 0.8 ? [GW, 0] : [someDst(), r() < 0.5 ? h.udpPort : u16()];
    f = ipFrame(IpProto.UDP, someSrc(), dst, udpL4(sport, dport, rbytes(int(r() < 0.03 ? 1600 : 300))));
  } else if (k < 0.52) {
    kind = 'dhcp';
    const opts: number[] = [];
    for (let i = int(4); i > 0; i--) { const n = int(6); opts.push(pick([DhcpOpt.REQUESTED_IP, DhcpOpt.SERVER_ID, DhcpOpt.PARAM_LIST, DhcpOpt.CLIENT_ID, int(256)]), n, ...rbytes(n)); }
    const p = dhcpPayload(int(10), r() < 0.6 ? GUEST_MAC : rbytes(6), u32(), opts);
    if (r() < 0.2) p[Dhcp.OP] = int(4);
    f = ipFrame(IpProto.UDP, r() < 0.8 ? 0 : someSrc(), r() < 0.8 ? BCAST_IP : pick([GW, DNS, ip('10.0.2.9')]), udpL4(68, 67, r() < 0.15 ? p.subarray(0, int(300)) : p), BCAST_MAC);
  } else {
    kind = 'tcp';
    const sport = 30000 + int(40);
    const [dst, dport] = r() < 0.85 ? [GW, h.tcpPort] : r() < 0.5 ? [DNS, 53] : [someDst(), u16()];
    const st = learned.get(sport);
    const near = (base: number | undefined): number => (base === undefined || r() < 0.25 ? u32() : (base + (r() < 0.7 ? 0 : int(6000) - 3000)) >>> 0);
    let flags: number, data = new Uint8Array(0), options: number[] = [];
    const fk = r();
    if (fk < 0.2) {
      flags = TcpFlag.SYN | (r() < 0.1 ? TcpFlag.ACK : 0);
      if (r() < 0.8) options = [2, 4, ...(r() < 0.3 ? [pick([0, 1, 64, 536, 9000, 65535]), 0] : [0x05, 0xb4])];
      if (r() < 0.6) options.push(1, 3, 3, r() < 0.2 ? int(256) : int(15));
      if (r() < 0.2) options.push(...rbytes(int(12)));
    } else if (fk < 0.65) {
      flags = TcpFlag.ACK | (r() < 0.5 ? TcpFlag.PSH : 0);
      data = rbytes(r() < 0.4 ? 0 : int(r() < 0.02 ? 20000 : 1400));
    } else if (fk < 0.75) flags = TcpFlag.FIN | TcpFlag.ACK;
    else if (fk < 0.85) flags = TcpFlag.RST | (r() < 0.5 ? TcpFlag.ACK : 0);
    else flags = int(256);
    f = ipFrame(IpProto.TCP, someSrc(), dst, tcpL4(sport, dport, near(st?.ack), near(st?.seq), flags, r() < 0.1 ? 0 : u16(), data, options));
  }
  // Mutations: each one a way a header can lie.
  if (r() < 0.55) {
    for (let n = 1 + int(3); n > 0; n--) {
      const m = int(11);
      const l4 = 14 + (f.length > 14 ? (f[14]! & 15) * 4 : 20);
      if (m === 0) f = f.slice(0, int(f.length + 1)); // truncated
      else if (m === 1) { const g = new Uint8Array(f.length + 1 + int(200)); g.set(f); g.set(rbytes(g.length - f.length), f.length); f = g; } // trailing bytes
      else if (m === 2) { for (let i = 1 + int(8); i > 0 && f.length; i--) { const at = r() < 0.7 ? int(Math.min(f.length, 64)) : int(f.length); f[at]! ^= 1 << int(8); } } // bit flips
      else if (m === 3 && f.length >= 18) put16(f, 16, r() < 0.5 ? u16() : Math.max(0, f.length - 14 + int(9) - 4)); // lying total length
      else if (m === 4 && f.length > 14) f[14] = (f[14]! & 0xf0) | int(16); // bad IHL
      else if (m === 5 && f.length > 14) f[14] = (int(16) << 4) | (f[14]! & 15); // bad version
      else if (m === 6 && f.length > l4 + 12) f[l4 + 12] = (int(16) << 4) | (f[l4 + 12]! & 15); // bad TCP data offset
      else if (m === 7 && f.length > l4 + 5) put16(f, l4 + 4, r() < 0.5 ? u16() : int(16)); // lying UDP length
      else if (m === 8 && f.length > 21) put16(f, 20, u16()); // fragment bits
      else if (m === 9 && f.length > 23) f[23] = int(256); // protocol
      else if (m === 10 && f.length >= 14) { const g = new Uint8Array(f.length + 4); g.set(f.subarray(0, 12)); put16(g, 12, EtherType.VLAN); put16(g, 14, int(4096)); g.set(f.subarray(12), 16); f = g; } // a VLAN tag
    }
    if (r() < 0.6) fixSums(f); // so that the lies reach the deeper layers
    kind += ' (mutated)';
  }
  if (r() < 0.002) f = new Uint8Array(MAX_FRAME + 1 + int(100)); // oversized
  const meta = plainFrame();
  if (r() < 0.25) {
    meta.needsCsum = r() < 0.5;
    meta.dataValid = r() < 0.3;
    meta.csumStart = r() < 0.5 ? 34 : int(70000);
    meta.csumOffset = r() < 0.5 ? 16 : int(70000);
    meta.gso = pick([Gso.NONE, Gso.TCPV4, Gso.TCPV4, Gso.UDP, Gso.TCPV6, int(256) as Gso]);
    meta.gsoSize = int(70000);
    meta.hdrLen = int(70000);
    if (r() < 0.3 && f.length > 17) put16(f, 16, 0); // GSO frames may leave the total length to the frame
    kind += ' +meta';
  }
  return { f, meta, kind };
}

async function fuzz(t: TestContext, seed: number, frames: number, offloads: GuestOffloads, ring: number): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, s => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', d => s.write(d));
    s.on('end', () => s.end());
    s.on('close', () => sockets.delete(s));
  });
  const tcpPort = await listening(server);
  const udpEcho = createSocket('udp4');
  udpEcho.on('message', (m, rinfo) => udpEcho.send(m, rinfo.port, rinfo.address));
  udpEcho.on('error', () => {});
  udpEcho.bind(0, '127.0.0.1');
  await once(udpEcho, 'listening');
  const resolver = createSocket('udp4');
  resolver.on('message', (m, rinfo) => resolver.send(m.subarray(0, 12), rinfo.port, rinfo.address));
  resolver.on('error', () => {});
  resolver.bind(0, '127.0.0.1');
  await once(resolver, 'listening');
  const udpPort = udpEcho.address().port;
  const limits = { tcpFlows: 64, tcpHalfOpen: 16, udpFlows: 32 };
  const logs: string[] = [];
  // Only the test's own loopback services are reachable: every other destination is policy.
  const net = await UserNet.open({
    resolver: { address: '127.0.0.1', port: resolver.address().port },
    outbound: [{ host: '10.0.2.2', port: tcpPort }, { host: '10.0.2.2', port: udpPort }, { host: '10.0.2.3', port: 53 }],
    limits,
  }, l => logs.push(l));
  const allows = (dst: number, port: number): boolean => (dst === GW && (port === tcpPort || port === udpPort)) || (dst === DNS && port === 53);
  const port = new CheckingPort(offloads, ring);
  net.attach(port);
  const r = mulberry32(seed);
  const expectedTally = new Map<string, number>();
  const mismatches: string[] = [];
  const escaped: string[] = [];
  let bytes = 0, maxTcp = 0, maxUdp = 0, maxQueued = 0;
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) {
    const { f, meta, kind } = hostileFrame(r, { tcpPort, udpPort }, port.tcp);
    const want = expectedDrop(f, meta, offloads.maxFrame, allows);
    expectedTally.set(want ?? '(passed)', (expectedTally.get(want ?? '(passed)') ?? 0) + 1);
    bytes += f.length;
    const before = net.stats();
    try {
      net.send(f, meta);
    } catch (err) {
      escaped.push(`frame ${i}: ${(err as Error).stack}`);
    }
    const after = net.stats();
    const got = statelessDelta(before, after);
    const ok = want === undefined ? Object.keys(got).length === 0 : Object.keys(got).length === 1 && got[want] === 1;
    if (!ok && mismatches.length < 8) mismatches.push(`seed ${seed} frame ${i} (${kind}): expected ${want ?? 'no stateless drop'}, counted ${JSON.stringify(got)}; meta ${JSON.stringify(meta)}; ${hex(f)}`);
    if (dropped(after, 'internal') !== 0 && escaped.length === 0) escaped.push(`frame ${i} (${kind}) is an internal error: ${logs.join('\n')}`);
    maxTcp = Math.max(maxTcp, after.tcpFlows!);
    maxUdp = Math.max(maxUdp, after.udpFlows!);
    maxQueued = Math.max(maxQueued, after.rxQueued!);
    if (i % 250 === 249) for (let k = 0; k < 5; k++) await pause(); // the guest takes its frames; host sockets answer (connects, echoes)
  }
  const ms = performance.now() - t0;
  await pause(50);
  const st = net.stats();
  t.diagnostic(`seed ${seed}: ${frames} frames in ${ms.toFixed(0)} ms; to the guest ${port.delivered} delivered, ${port.refused} refused (largest ${port.largest} bytes)`);
  t.diagnostic(`expected: ${JSON.stringify(Object.fromEntries([...expectedTally].sort()))}`);
  t.diagnostic(`counters: ${JSON.stringify(Object.fromEntries(Object.entries(st).filter(([k]) => k.startsWith('drop') || /Opened|Replies|Flows|Queued|Retrans|Reset/.test(k))))}`);
  try {
    assert.deepEqual(escaped, [], 'no exception escapes send() and none is counted as internal');
    assert.equal(dropped(st, 'internal'), 0);
    assert.deepEqual(mismatches, [], 'every frame is counted under the reason its own bytes call for');
    assert.equal(st.rxFrames, frames);
    assert.equal(st.rxBytes, bytes);
    for (const reason of STATELESS) assert.equal(dropped(st, reason) >= (expectedTally.get(reason) ?? 0), true, reason);
    // The fuzz reaches every check (a generator that stopped doing so would pass vacuously).
    for (const reason of STATELESS) assert.ok((expectedTally.get(reason) ?? 0) > 0, `no frame exercised "${reason}"`);
    for (const k of ['drop.tcp-no-flow', 'drop.tcp-out-of-window', 'drop.dhcp', 'arpReplies', 'dhcpReplies', 'icmpEchoReplies', 'udpBytesFromGuest', 'dnsQueries', 'tcpOpened']) {
      assert.ok((st[k] ?? 0) > 0, `${k} never happened`);
    }
    assert.ok(maxTcp <= limits.tcpFlows, `TCP flows ${maxTcp}`);
    assert.ok(maxUdp <= limits.udpFlows, `UDP flows ${maxUdp}`);
    assert.ok(maxQueued <= DEFAULT_LIMITS.rxQueueFrames, `RX queue ${maxQueued}`);
    assert.deepEqual(port.errors, [], 'every frame the host sent is well-formed and fits the NIC');
    assert.deepEqual(logs.filter(l => !/the most allowed/.test(l)), [], 'only cap lines are logged');
  } finally {
    net.close();
    server.close();
    for (const s of sockets) s.destroy();
    udpEcho.close();
    resolver.close();
  }
}

test('fuzz: 25 000 seeded hostile frames (random bytes; ARP, IPv4, ICMP, UDP, DNS, DHCP, TCP with truncations, bit flips, lying lengths, bad IHL and data offsets, random offload metadata) through a plain NIC', async t => {
  await fuzz(t, 1, 25_000, { csum: false, tso4: false, tso6: false, maxFrame: 1514 }, 48);
});

test('fuzz: 25 000 more through a NIC with checksum offload, TSO and 64 KiB frames, often out of buffers', async t => {
  await fuzz(t, 2, 25_000, { csum: true, tso4: true, tso6: false, maxFrame: 65550 }, 16);
});

test('hand-picked malformed frames: each dropped once, under its own reason; UDP to port 0 is not an internal error', async t => {
  const logs: string[] = [];
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } }, l => logs.push(l));
  const g = new Guest(net);
  t.after(() => { g.stop(); net.close(); });
  const udp = (): Uint8Array => ipFrame(IpProto.UDP, GUEST, GW, udpL4(5000, 9, Buffer.from('payload')));
  const tcp = (): Uint8Array => ipFrame(IpProto.TCP, GUEST, GW, tcpL4(5000, 9, 1, 2, TcpFlag.ACK, 1000));
  const ping = (): Uint8Array => ipFrame(IpProto.ICMP, GUEST, GW, icmpL4(8, 1, 1, Buffer.from('abcd')));
  const edit = (f: Uint8Array, fn: (f: Uint8Array) => void, fix = true): Uint8Array => { fn(f); if (fix) fixSums(f); return f; };
  const gsoUdp = { ...plainFrame(), gso: Gso.UDP, gsoSize: 1000, hdrLen: 42 };
  const cases: [string, Uint8Array, FrameMeta, Stateless | 'dhcp'][] = [
    ['empty frame', new Uint8Array(0), plainFrame(), 'short'],
    ['13 bytes', new Uint8Array(13), plainFrame(), 'short'],
    ['VLAN tag cut short', edit(ethFrame(EtherType.VLAN, 1), () => {}), plainFrame(), 'short'],
    ['VLAN-tagged IPv4', edit(ethFrame(EtherType.VLAN, 60), f => put16(f, 16, EtherType.IPV4)), plainFrame(), 'vlan'],
    ['IPv6', ethFrame(EtherType.IPV6, 60), plainFrame(), 'ethertype'],
    ['over MAX_FRAME', new Uint8Array(MAX_FRAME + 1), plainFrame(), 'oversized'],
    ['ARP cut to 41 bytes', arpFrame(1, GUEST_MAC, GUEST, GW).slice(0, 41), plainFrame(), 'arp'],
    ['ARP with 8-byte hardware addresses', edit(arpFrame(1, GUEST_MAC, GUEST, GW), f => { f[18] = 8; }), plainFrame(), 'arp'],
    ['IPv4 cut to 30 bytes', udp().slice(0, 30), plainFrame(), 'short'],
    ['IHL 4', edit(udp(), f => { f[14] = 0x44; }), plainFrame(), 'ip-header'],
    ['IHL 15 in a 20-byte header', edit(tcp(), f => { f[14] = 0x4f; }), plainFrame(), 'ip-header'],
    ['version 6 in an IPv4 frame', edit(udp(), f => { f[14] = 0x65; }), plainFrame(), 'ip-header'],
    ['total length past the frame', edit(udp(), f => put16(f, 16, 1000)), plainFrame(), 'ip-header'],
    ['total length below the header', edit(udp(), f => put16(f, 16, 12)), plainFrame(), 'ip-header'],
    ['total length 0 without GSO', edit(udp(), f => put16(f, 16, 0)), plainFrame(), 'ip-header'],
    ['wrong IP checksum', edit(udp(), f => { f[24]! ^= 0x40; }, false), plainFrame(), 'ip-checksum'],
    ['a fragment (MF)', edit(udp(), f => put16(f, 20, 0x2000)), plainFrame(), 'fragment'],
    ['a fragment (offset)', edit(udp(), f => put16(f, 20, 0x0010)), plainFrame(), 'fragment'],
    ['UDP GSO metadata', udp(), gsoUdp, 'guest-offload'],
    ['TCPv4 GSO metadata on UDP', udp(), { ...gsoUdp, gso: Gso.TCPV4 }, 'guest-offload'],
    ['IP protocol 47 (GRE)', edit(udp(), f => { f[23] = 47; }), plainFrame(), 'ip-proto'],
    ['source outside the network', ipFrame(IpProto.UDP, ip('192.168.1.5'), GW, udpL4(5000, 9, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['source is the gateway', ipFrame(IpProto.UDP, GW, GW, udpL4(5000, 9, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['UDP header cut (4 bytes of it)', edit(udp(), f => put16(f, 16, 24)), plainFrame(), 'udp-header'],
    ['UDP length 4', edit(udp(), f => put16(f, 38, 4)), plainFrame(), 'udp-header'],
    ['UDP length past the datagram', edit(udp(), f => put16(f, 38, 200)), plainFrame(), 'udp-header'],
    ['wrong UDP checksum', edit(udp(), f => { f[f.length - 1]! ^= 1; }, false), plainFrame(), 'udp-checksum'],
    ['UDP to the gateway\'s port 0', ipFrame(IpProto.UDP, GUEST, GW, udpL4(5000, 0, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['UDP to port 0 elsewhere', ipFrame(IpProto.UDP, GUEST, ip('192.0.2.1'), udpL4(5000, 0, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['UDP to another address of the network', ipFrame(IpProto.UDP, GUEST, ip('10.0.2.77'), udpL4(5000, 9, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['UDP to the DNS address, not port 53', ipFrame(IpProto.UDP, GUEST, DNS, udpL4(5000, 54, Buffer.from('x'))), plainFrame(), 'not-for-us'],
    ['TCP header cut (12 bytes of it)', edit(tcp(), f => put16(f, 16, 32)), plainFrame(), 'tcp-header'],
    ['TCP data offset 4', edit(tcp(), f => { f[46] = 0x40; }), plainFrame(), 'tcp-header'],
    ['TCP data offset 15 in a 20-byte segment', edit(tcp(), f => { f[46] = 0xf0; }), plainFrame(), 'tcp-header'],
    ['wrong TCP checksum', edit(tcp(), f => { f[50]! ^= 0x10; }, false), plainFrame(), 'tcp-checksum'],
    ['ICMP cut to 4 bytes', edit(ping(), f => put16(f, 16, 24)), plainFrame(), 'icmp'],
    ['wrong ICMP checksum', edit(ping(), f => { f[f.length - 1]! ^= 1; }, false), plainFrame(), 'icmp'],
    ['ICMP timestamp request', edit(ping(), f => { f[34] = 13; }), plainFrame(), 'icmp'],
    ['ICMP echo to a remote host', ipFrame(IpProto.ICMP, GUEST, ip('192.0.2.1'), icmpL4(8, 1, 1, Buffer.from('abcd'))), plainFrame(), 'icmp-remote'],
    ['ICMP echo longer than the NIC takes', edit(ipFrame(IpProto.ICMP, GUEST, GW, icmpL4(8, 1, 1, new Uint8Array(2000))), () => {}), plainFrame(), 'oversized'],
    ['DHCP to someone else', dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, 1), ip('10.0.2.9')), plainFrame(), 'not-for-us'],
    ['DHCP without the magic cookie', edit(dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, 1)), f => put32(f, 42 + Dhcp.MAGIC, 0)), plainFrame(), 'dhcp'],
    ['DHCP with an option running past the end', dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, 1, [DhcpOpt.CLIENT_ID, 255])), plainFrame(), 'dhcp'],
    ['DHCP cut to 100 bytes', dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, 1).subarray(0, 100)), plainFrame(), 'dhcp'],
  ];
  for (const [name, f, meta, reason] of cases) {
    if (reason !== 'dhcp') assert.equal(expectedDrop(f, meta, g.port.offloads.maxFrame, () => true), reason, `the test's own reading of "${name}"`);
    const before = net.stats();
    net.send(f, meta);
    const after = net.stats();
    assert.equal(after.dropped! - before.dropped!, 1, `${name}: one drop`);
    assert.equal(dropped(after, reason) - dropped(before, reason), 1, `${name}: counted as ${reason} (${JSON.stringify(statelessDelta(before, after))})`);
  }
  const st = net.stats();
  assert.equal(dropped(st, 'internal'), 0);
  assert.equal(st.dropped, cases.length);
  assert.equal(st.rxFrames, cases.length);
  assert.equal(st.udpFlows, 0, 'no host socket for any of them');
  // What the checks let through still works: a checksum the guest leaves to offload, a UDP datagram without one.
  g.send(edit(tcp(), f => { f[50]! ^= 0x10; }, false), { ...plainFrame(), needsCsum: true, csumStart: 34, csumOffset: 16 });
  assert.equal(net.stats()['drop.tcp-no-flow'], 1, 'a partial checksum is not verified: the segment reaches the table (no flow: RST)');
  assert.deepEqual(logs, []);
});

// ---- SYN flood ----

test('SYN flood: 55 000 SYNs from as many ports to a listening host port and to addresses nobody is at: flows and half-open connections stay at their caps, each cap is logged once, heap bounded, and a real connection works afterwards', async t => {
  const held = new Set<Socket>();
  const listener = createServer(s => { held.add(s); s.on('error', () => {}); s.on('close', () => held.delete(s)); });
  const port = await listening(listener);
  const echo = createServer({ allowHalfOpen: true }, s => { s.on('error', () => {}); s.on('data', d => s.write(d)); s.on('end', () => s.end()); });
  const echoPort = await listening(echo);
  const limits = { tcpFlows: 256, tcpHalfOpen: 64, timeWaitMs: 100 };
  const logs: string[] = [];
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 }, limits }, l => logs.push(l));
  const g = new Guest(net);
  g.record = false;
  t.after(() => { g.stop(); net.close(); listener.close(); echo.close(); for (const s of held) s.destroy(); });
  // The flooder sees what the NIC delivers: SYN-ACKs (it remembers the host's ISS) and RSTs.
  const synAcks = new Map<number, number>();
  let rsts = 0;
  const deliver = g.port.deliver.bind(g.port);
  g.port.deliver = (f: Uint8Array, m: FrameMeta): boolean => {
    const ok = deliver(f, m);
    if (ok && be16(f, 12) === EtherType.IPV4 && f[23] === IpProto.TCP) {
      const flags = f[47]!;
      if ((flags & (TcpFlag.SYN | TcpFlag.ACK)) === (TcpFlag.SYN | TcpFlag.ACK)) synAcks.set(be16(f, 36), be32(f, 38));
      else if (flags & TcpFlag.RST) rsts++;
    }
    return ok;
  };
  // One frame buffer for the whole flood (the backend copies what it keeps), so the test itself makes little garbage.
  const seg = new Uint8Array(54);
  const meta = plainFrame();
  const isn = (p: number): number => Math.imul(p, 2654435761) >>> 0;
  const segment = (sport: number, dst: number, dport: number, seq: number, ack: number, flags: number): void => {
    seg.set(GATEWAY_MAC, 0); seg.set(GUEST_MAC, 6); put16(seg, 12, EtherType.IPV4);
    seg[14] = 0x45; seg[15] = 0; put16(seg, 16, 40); put16(seg, 18, 0); put16(seg, 20, 0x4000); seg[22] = 64; seg[23] = IpProto.TCP;
    put16(seg, 24, 0); put32(seg, 26, GUEST); put32(seg, 30, dst); put16(seg, 24, checksum(seg, 14, 34));
    put16(seg, 34, sport); put16(seg, 36, dport); put32(seg, 38, seq); put32(seg, 42, ack);
    seg[46] = 0x50; seg[47] = flags; put16(seg, 48, 65535); put16(seg, 50, 0); put16(seg, 52, 0);
    put16(seg, 50, checksum(seg, 34, 54, pseudoSum(GUEST, dst, IpProto.TCP, 20)));
    net.send(seg, meta);
  };
  let nextPort = 1024, maxFlows = 0, maxQueued = 0;
  const sample = (): void => { const s = net.stats(); maxFlows = Math.max(maxFlows, s.tcpFlows!); maxQueued = Math.max(maxQueued, s.rxQueued!); };
  const flood = (n: number, dsts: readonly [number, number][] = [[GW, port]]): void => {
    for (let i = 0; i < n; i++) {
      const p = nextPort++;
      const [dst, dport] = dsts[i % dsts.length]!;
      segment(p, dst, dport, isn(p), 0, TcpFlag.SYN);
      if (i % 250 === 0) sample();
    }
    sample();
  };
  const acked = new Set<number>();
  /** Completes the handshake of every connection the host answered (as a flooder that wants established flows). */
  const ackAll = (): void => {
    for (const [p, iss] of synAcks) if (!acked.has(p)) { acked.add(p); segment(p, GW, port, (isn(p) + 1) >>> 0, (iss + 1) >>> 0, TcpFlag.ACK); }
  };
  const halfOpenLines = (): number => logs.filter(l => /still opening, the most allowed/.test(l)).length;
  const flowCapLines = (): number => logs.filter(l => /TCP connections open, the most allowed/.test(l)).length;
  const drained = (): boolean => net.stats().rxQueued === 0 && g.port.inbox.length === 0;
  const t0 = performance.now();
  const heap0 = heapUsed();

  // 1. 10 000 SYNs to addresses nobody is at (another address of the network, reserved, multicast, 0/8, loopback, the DNS address off port 53):
  //    each is answered with an RST or counted as not delivered; no flow, no host socket.
  flood(10_000, [[ip('10.0.2.99'), 80], [ip('240.0.0.1'), 80], [ip('224.0.0.251'), 80], [ip('0.0.0.7'), 80], [ip('127.0.0.1'), port], [DNS, 80]]);
  assert.equal(maxFlows, 0);
  await until(drained, 5000, 'the RSTs to reach the guest');
  let st = net.stats();
  assert.equal(rsts + dropped(st, 'rx-queue-full'), 10_000, `every SYN answered by an RST (${rsts}) or counted as not delivered (${dropped(st, 'rx-queue-full')})`);
  assert.equal(held.size, 0);

  // 2. 20 000 SYNs to the listening port, none ever completed: the half-open cap admits 64, drops the rest silently, logs once.
  flood(20_000);
  st = net.stats();
  assert.equal(st.tcpFlows, limits.tcpHalfOpen);
  assert.equal(dropped(st, 'tcp-syn-cap'), 20_000 - limits.tcpHalfOpen);
  assert.equal(halfOpenLines(), 1);
  await until(() => synAcks.size === limits.tcpHalfOpen, 5000, 'the host connects and the SYN-ACKs');
  flood(5000); // still all half-open (SYN-ACKs unanswered): still the cap
  st = net.stats();
  assert.equal(st.tcpFlows, limits.tcpHalfOpen);
  assert.equal(dropped(st, 'tcp-syn-cap'), 25_000 - limits.tcpHalfOpen);
  assert.equal(halfOpenLines(), 1, 'one line for one stretch at the cap');

  // 3. The flooder completes its handshakes and floods on, 5000 SYNs a round: 64 more flows a round up to the flow cap (256), then RSTs.
  ackAll();
  assert.equal(net.stats().tcpOpened, limits.tcpHalfOpen);
  for (let round = 1; round <= 4; round++) {
    flood(5000);
    await until(() => synAcks.size === net.stats().tcpFlows, 5000, `round ${round}: SYN-ACKs`);
    ackAll();
    st = net.stats();
    assert.equal(st.tcpFlows, Math.min(limits.tcpFlows, (round + 1) * limits.tcpHalfOpen), `round ${round}`);
  }
  st = net.stats();
  assert.equal(maxFlows, limits.tcpFlows, 'never above the cap');
  assert.equal(st.tcpOpened, limits.tcpFlows);
  await until(() => held.size === limits.tcpFlows, 5000, `one host socket per flow (${held.size})`); // accepts lag behind the flood
  // Rounds 1 and 2: 64 admitted, the rest half-open-capped; round 3: 64 admitted, then the flow cap; round 4: all flow-capped.
  assert.equal(dropped(st, 'tcp-syn-cap'), 25_000 - limits.tcpHalfOpen + 2 * (5000 - limits.tcpHalfOpen));
  assert.equal(dropped(st, 'tcp-flow-cap'), 5000 - limits.tcpHalfOpen + 5000);
  assert.equal(flowCapLines(), 1, 'the flow cap is logged exactly once');
  assert.equal(halfOpenLines(), 3, 'the half-open cap once per stretch (phase 2, rounds 1 and 2)');
  assert.ok(maxQueued <= DEFAULT_LIMITS.rxQueueFrames, `RX queue ${maxQueued}`);
  const heapPeak = process.memoryUsage().heapUsed;

  // 4. The flood ends: the flooder resets its connections; flows and host sockets are released.
  for (const p of acked) segment(p, GW, port, (isn(p) + 1) >>> 0, 0, TcpFlag.RST);
  assert.equal(net.stats().tcpFlows, 0);
  await until(() => held.size === 0, 5000, 'the host sockets to close');
  const floodMs = performance.now() - t0;
  synAcks.clear();
  acked.clear();
  await pause(20);
  const heap1 = heapUsed();
  const growth = heap1 - heap0;
  t.diagnostic(`55 000 SYNs in ${floodMs.toFixed(0)} ms; heap ${(heap0 / 2 ** 20).toFixed(1)} MiB before, ${(heapPeak / 2 ** 20).toFixed(1)} at 256 flows, ${(heap1 / 2 ** 20).toFixed(1)} after (${gc ? 'after a GC' : 'no GC available'})`);
  assert.ok(growth < (gc ? 8 : 64) * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);

  // 5. A legitimate connection: 128 KiB each way through an echo server.
  const data = randomBytes(128 * KiB, 5);
  const c = g.connect(GW, echoPort);
  await until(() => c.state === 'open', 5000, 'the connection');
  c.write(data);
  c.end();
  await until(() => c.peerFin && c.allAcked, 10_000, `the echo (${c.receivedBytes} bytes)`);
  assert.equal(sha(c.data()), sha(data));
  assert.equal(c.reset, false);
  await until(() => net.stats().tcpFlows === 0, 5000, 'TIME_WAIT to end');
  assert.deepEqual(g.errors, []);
  assert.equal(dropped(net.stats(), 'internal'), 0);
});

// ---- storms while the guest gives no receive buffers ----

test('DHCP and ARP storms while the guest posts no receive buffers: the RX queue stays at its cap, the rest counted as rx-queue-full; invented MACs do not exhaust more than the pool; the queue drains in order', async t => {
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } });
  const g = new Guest(net);
  t.after(() => { g.stop(); net.close(); });
  g.port.ring = 0; // every deliver() says: no room
  const cap = DEFAULT_LIMITS.rxQueueFrames;
  const N = 4000;
  const r = mulberry32(3);
  let maxQueued = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    g.send(dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, i)));
    // ARP requests for the gateway and other addresses, from spoofed hardware addresses.
    const sha = Uint8Array.from([0x02, 0, 0, (i >> 8) & 0xff, i & 0xff, (r() * 256) | 0]);
    g.send(arpFrame(1, sha, GUEST, i % 2 ? GW : (NET + 100 + (i % 100)) >>> 0));
    if (i % 50 === 0) maxQueued = Math.max(maxQueued, net.stats().rxQueued!);
  }
  let st = net.stats();
  assert.equal(st.rxQueued, cap);
  assert.ok(maxQueued <= cap);
  assert.equal(st.dhcpReplies, N);
  assert.equal(st.arpReplies, N);
  assert.equal(dropped(st, 'rx-queue-full'), 2 * N - cap);
  assert.equal(st.dropped, 2 * N - cap, 'nothing else dropped');
  assert.equal(st.txFrames, 0);

  // DISCOVERs from 2000 invented MACs: leases only while the network has addresses; the rest are dropped, counted.
  for (let i = 0; i < 2000; i++) g.send(dhcpFrame(dhcpPayload(DhcpType.DISCOVER, Uint8Array.from([0x02, 0xee, 0, 0, i >> 8, i & 0xff]), 100_000 + i)));
  const st2 = net.stats();
  const offers = st2.dhcpReplies! - st.dhcpReplies!;
  t.diagnostic(`${N} DISCOVERs and ${N} ARP requests, then 2000 invented clients, in ${(performance.now() - t0).toFixed(0)} ms; ${offers} of those got an offer`);
  assert.equal(offers + dropped(st2, 'dhcp') - dropped(st, 'dhcp'), 2000, 'each DISCOVER answered or counted');
  assert.ok(offers > 0 && offers < 254, `offers ${offers}: no more leases than the /24 has addresses`);
  assert.equal(st2.rxQueued, cap);
  assert.equal(dropped(st2, 'rx-queue-full') - dropped(st, 'rx-queue-full'), offers);

  // The guest posts buffers: the queue drains in order (OFFER 0, ARP reply, OFFER 1, …), then DHCP works as ever.
  g.port.ring = 256;
  g.port.onRxSpace!();
  await until(() => g.frames.length === cap, 5000, 'the queued frames');
  st = net.stats();
  assert.equal(st.rxQueued, 0);
  assert.equal(st.txFrames, cap);
  assert.deepEqual(g.udp.map(d => be32(d.data, Dhcp.XID)), Array.from({ length: cap / 2 }, (_, i) => i));
  assert.equal(g.frames.filter(f => be16(f, 12) === EtherType.ARP).length, cap / 2);
  g.send(dhcpFrame(dhcpPayload(DhcpType.DISCOVER, GUEST_MAC, 0xabcd)));
  await until(() => g.udp.length === cap / 2 + 1, 5000, 'an offer');
  assert.equal(be32(g.udp.at(-1)!.data, Dhcp.YIADDR), GUEST);
  assert.deepEqual(g.errors, []);
});

// ---- UDP flow cap ----

test('UDP from 3000 guest ports: flows stay at the cap (256), the least recently used is evicted and its host socket closed, the cap is logged once', async t => {
  const echo = createSocket('udp4');
  echo.on('message', (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = echo.address().port;
  const udpHandles = (): number => process.getActiveResourcesInfo().filter(x => x === 'UDPWrap').length;
  const logs: string[] = [];
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } }, l => logs.push(l));
  const g = new Guest(net);
  g.record = false;
  t.after(() => { g.stop(); net.close(); echo.close(); });
  await pause(20);
  const base = udpHandles();
  const cap = DEFAULT_LIMITS.udpFlows, N = 3000, first = 10_000;
  let maxFlows = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    g.sendUdp(first + i, GW, echoPort, Buffer.from(`from ${first + i}`));
    if (i % 100 === 0) maxFlows = Math.max(maxFlows, net.stats().udpFlows!);
  }
  let st = net.stats();
  assert.equal(st.udpFlows, cap);
  assert.ok(maxFlows <= cap);
  assert.equal(dropped(st, 'udp-flow-cap'), N - cap);
  assert.equal(logs.filter(l => /UDP flows open, the most allowed/.test(l)).length, 1);
  assert.equal(logs.length, 1);
  // Host sockets: one per flow left; the evicted ones are closed.
  await until(() => udpHandles() === base + cap, 5000, `evicted sockets to close (${udpHandles() - base} open)`);
  // Only the flows still open get their echo: the last 256 ports.
  await until(() => g.udp.length >= cap, 5000, 'the echoes');
  await pause(50);
  const survivors = Array.from({ length: cap }, (_, i) => first + N - cap + i);
  assert.deepEqual(g.udp.map(d => d.dport).sort((a, b) => a - b), survivors);
  for (const d of g.udp) {
    assert.equal(Buffer.from(d.data).toString(), `from ${d.dport}`);
    assert.equal(d.src, GW);
    assert.equal(d.sport, echoPort);
  }
  t.diagnostic(`${N} datagrams in ${(performance.now() - t0).toFixed(0)} ms; ${base} UDP handles before, ${udpHandles()} with the flows`);

  // Least recently used: every survivor but one is used again; a new port then evicts exactly that one.
  const victim = survivors[100]!;
  await pause(5);
  for (const p of survivors) if (p !== victim) g.sendUdp(p, GW, echoPort, Buffer.from('again'));
  assert.equal(dropped(net.stats(), 'udp-flow-cap'), N - cap, 'known flows: no eviction');
  g.sendUdp(first + N, GW, echoPort, Buffer.from('new'));
  assert.equal(dropped(net.stats(), 'udp-flow-cap'), N - cap + 1);
  g.sendUdp(survivors[0]!, GW, echoPort, Buffer.from('still here'));
  g.sendUdp(survivors[255]!, GW, echoPort, Buffer.from('still here'));
  assert.equal(dropped(net.stats(), 'udp-flow-cap'), N - cap + 1, 'the others were kept');
  g.sendUdp(victim, GW, echoPort, Buffer.from('evicted'));
  assert.equal(dropped(net.stats(), 'udp-flow-cap'), N - cap + 2, 'the least recently used was the one evicted');
  st = net.stats();
  assert.equal(st.udpFlows, cap);
  assert.equal(dropped(st, 'internal'), 0);
  await until(() => udpHandles() === base + cap, 5000, 'sockets');
  net.close();
  await until(() => udpHandles() === base, 5000, `every host socket closed (${udpHandles() - base} open)`);
});

// ---- TCP sequence games ----

interface EchoPeer { server: Server; port: number; sockets: Socket[] }
async function echoPeer(): Promise<EchoPeer> {
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, s => {
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', d => s.write(d));
    s.on('end', () => s.end());
  });
  return { server, port: await listening(server), sockets };
}

test('out-of-window segments and RST/ACK/SYN games on an open connection: dropped and counted, the connection survives and transfers 256 KiB each way intact', async t => {
  const p = await echoPeer();
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } });
  const g = new Guest(net);
  g.record = false;
  t.after(() => { g.stop(); net.close(); p.server.close(); for (const s of p.sockets) s.destroy(); });
  const c = g.connect(GW, p.port);
  await until(() => c.state === 'open' && p.sockets.length === 1, 5000, 'the connection');
  c.write(Buffer.from('hello'));
  await until(() => c.receivedBytes === 5, 5000, 'the echo');
  const oow = (): number => dropped(net.stats(), 'tcp-out-of-window');
  const tx = (): number => net.stats().txFrames!;
  const step = async (what: string, send: () => void, drops: number, answered: boolean): Promise<void> => {
    const d0 = oow(), t0 = tx();
    send();
    await pause(10);
    assert.equal(oow() - d0, drops, `${what}: tcp-out-of-window`);
    assert.equal(tx() > t0, answered, `${what}: ${answered ? 'answered with an ACK' : 'no answer'}`);
    assert.equal(c.reset, false, `${what}: the connection is not reset`);
    assert.equal(net.stats().tcpFlows, 1);
  };
  const { ACK, RST, SYN, FIN, PSH, URG } = { ACK: TcpFlag.ACK, RST: TcpFlag.RST, SYN: TcpFlag.SYN, FIN: TcpFlag.FIN, PSH: TcpFlag.PSH, URG: TcpFlag.URG };
  await step('data 5 MB ahead', () => c.inject(5_000_000, 0, ACK, Buffer.from('far ahead')), 1, true);
  await step('data 5 MB behind', () => c.inject(-5_000_000, 0, ACK | PSH, Buffer.from('long ago')), 1, true);
  await step('FIN far ahead', () => c.inject(5_000_000, 0, FIN | ACK), 1, true);
  await step('RST far ahead', () => c.inject(5_000_000, 0, RST), 1, false);
  await step('RST|ACK far behind', () => c.inject(-5_000_000, 0, RST | ACK), 1, false);
  await step('an ACK for 1 MB never sent', () => c.inject(0, 1_000_000, ACK), 1, true);
  await step('an ACK from long ago', () => c.inject(0, -1_000_000, ACK), 0, false);
  await step('a SYN on the open connection (challenge ACK)', () => c.inject(0, 0, SYN), 0, true);
  await step('SYN|FIN|URG|PSH|ACK', () => c.inject(0, 0, SYN | FIN | URG | PSH | ACK), 0, true);
  assert.equal(oow(), 6);
  assert.equal(net.stats().tcpBytesFromGuest, 5, 'no injected byte reached the host');

  // Window games: the guest slams its window shut; the host holds its data (probing), and sends it when the window reopens.
  c.inject(0, 0, ACK, undefined, 0);
  p.sockets[0]!.write('held back');
  await until(() => net.stats().tcpZeroWindowProbes >= 1, 5000, 'a zero-window probe');
  assert.equal(c.receivedBytes, 5);
  c.inject(0, 0, ACK, undefined, 8192);
  await until(() => c.receivedBytes === 14, 5000, 'the held data');
  assert.equal(c.data().subarray(5).toString(), 'held back');

  const data = randomBytes(256 * KiB, 9);
  c.write(data);
  c.end();
  await until(() => c.peerFin && c.allAcked, 10_000, `the echo (${c.receivedBytes} bytes)`);
  assert.equal(sha(c.data().subarray(14)), sha(data));
  const st = net.stats();
  assert.equal(st.tcpReset, 0);
  assert.equal(st.tcpBytesFromGuest, 5 + 256 * KiB);
  assert.equal(dropped(st, 'internal'), 0);
  assert.deepEqual(g.errors, []);
  await until(() => net.stats().tcpFlows === 0, 5000, 'the end of the connection');
});

test('FIN then RST at once from the guest, on 50 connections: every host socket is closed, none leaked', async t => {
  const sockets = new Set<Socket>();
  // Not half-open: the server closes its side when our FIN comes, so both sockets of a pair go.
  const server = createServer(s => { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); });
  const port = await listening(server);
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } });
  const g = new Guest(net);
  g.record = false;
  t.after(() => { g.stop(); net.close(); server.close(); for (const s of sockets) s.destroy(); });
  const tcpHandles = (): number => process.getActiveResourcesInfo().filter(x => x === 'TCPSocketWrap').length;
  await pause(20);
  const base = tcpHandles();
  const conns = Array.from({ length: 50 }, () => g.connect(GW, port));
  await until(() => conns.every(c => c.state === 'open') && sockets.size === conns.length, 5000, 'the connections');
  assert.equal(tcpHandles(), base + 2 * conns.length, 'ours and the server\'s');
  // The FIN half-closes the host socket (end()); the RST right behind it, in the new window, aborts the connection.
  for (const c of conns) {
    c.inject(0, 0, TcpFlag.FIN | TcpFlag.ACK);
    c.inject(1, 0, TcpFlag.RST);
  }
  const st = net.stats();
  assert.equal(st.tcpFlows, 0);
  assert.equal(dropped(st, 'internal'), 0);
  await until(() => sockets.size === 0, 5000, `the server's sockets to close (${sockets.size} open)`);
  await until(() => tcpHandles() === base, 5000, `every host socket handle closed (${tcpHandles() - base} left)`);
});

test('a guest announcing an MSS its NIC cannot carry (65 000 on 1514-byte frames): fast retransmits stay within the frame size', async t => {
  const p = await echoPeer();
  const net = await UserNet.open({ resolver: { address: '127.0.0.1', port: 9 } });
  const g = new Guest(net);
  g.record = false;
  t.after(() => { g.stop(); net.close(); p.server.close(); for (const s of p.sockets) s.destroy(); });
  let largest = 0;
  const deliver = g.port.deliver.bind(g.port);
  g.port.deliver = (f: Uint8Array, m: FrameMeta): boolean => { largest = Math.max(largest, f.length); return deliver(f, m); };
  const c = g.connect(GW, p.port, { mss: 65_000 });
  await until(() => c.state === 'open' && p.sockets.length === 1, 5000, 'the connection');
  // Everything the host sends now is lost on the way; three duplicate ACKs ask for a fast retransmit.
  g.port.lossRate = 1;
  const data = randomBytes(256 * KiB, 11);
  p.sockets[0]!.write(data);
  await until(() => net.stats().tcpBytesToGuest >= 64 * KiB, 5000, 'data in flight');
  for (let i = 0; i < 3; i++) c.inject(0, 0, TcpFlag.ACK, undefined, 8192);
  let st = net.stats();
  assert.equal(st.tcpFastRetransmits, 1);
  assert.equal(dropped(st, 'internal'), 0, 'the retransmission did not fail');
  g.port.lossRate = 0;
  c.end();
  await until(() => c.receivedBytes === data.length, 15_000, `recovery (${c.receivedBytes} bytes)`);
  assert.equal(sha(c.data()), sha(data));
  st = net.stats();
  assert.equal(dropped(st, 'internal'), 0);
  assert.ok(largest <= 1514, `largest frame ${largest}`);
  assert.deepEqual(g.errors, []);
});
