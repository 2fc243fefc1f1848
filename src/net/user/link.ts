/**
 * The guest-facing side of the user network: builds frames from the virtual hosts (gateway, DNS,
 * every remote address) to the guest, hands them to the NIC and keeps the counters.
 *
 * One scratch frame is reused for everything sent (frames are only valid during deliver()). When
 * the guest has no receive buffers: TCP does not queue (its data stays in the connection's send
 * buffer and goes again on onRxSpace); other frames are copied into a small bounded queue, and
 * dropped, counted, beyond it.
 */
import { plainFrame, type FrameMeta, type NicPort } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { checksum, pseudoSum } from '../packet/checksum.js';
import { Eth, EtherType, put16, put32, writeEthernet } from '../packet/ethernet.js';
import { Ip4, IP4_DF, IpProto, Udp } from '../packet/ip.js';

/** Why a frame from the guest (or for it) was dropped; each has a counter in stats() as "drop.<name>". */
export const DROP_REASONS = [
  'short', 'oversized', 'vlan', 'ethertype', 'arp', 'ip-header', 'ip-checksum', 'fragment', 'ip-proto', 'not-for-us',
  'icmp', 'icmp-remote', 'udp-header', 'udp-checksum', 'tcp-header', 'tcp-checksum', 'tcp-no-flow', 'tcp-out-of-window',
  'tcp-syn-cap', 'tcp-flow-cap', 'udp-flow-cap', 'policy', 'dhcp', 'dns-no-resolver', 'rx-queue-full', 'guest-offload', 'internal',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export class Counters {
  rxFrames = 0; rxBytes = 0; txFrames = 0; txBytes = 0;
  arpReplies = 0; dhcpReplies = 0; icmpEchoReplies = 0; dnsQueries = 0; dnsAnswers = 0;
  tcpOpened = 0; tcpRefused = 0; tcpReset = 0; tcpRetransmits = 0; tcpFastRetransmits = 0; tcpZeroWindowProbes = 0;
  tcpBytesToGuest = 0; tcpBytesFromGuest = 0; udpBytesToGuest = 0; udpBytesFromGuest = 0;
  private readonly drops = new Float64Array(DROP_REASONS.length);
  private static readonly index = new Map<DropReason, number>(DROP_REASONS.map((r, i) => [r, i]));

  drop(reason: DropReason): void {
    this.drops[Counters.index.get(reason)!]!++;
  }

  dropped(reason: DropReason): number { return this.drops[Counters.index.get(reason)!]!; }

  snapshot(gauges: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    let total = 0;
    for (const [k, v] of Object.entries(this)) if (typeof v === 'number') out[k] = v;
    DROP_REASONS.forEach((r, i) => {
      total += this.drops[i]!;
      if (this.drops[i]) out[`drop.${r}`] = this.drops[i]!;
    });
    out.dropped = total;
    return { ...out, ...gauges };
  }
}

/** The virtual hosts' MAC: 52:55 then the IPv4 address, as libslirp answers ARP. */
export function virtualMac(ip: number): Uint8Array {
  return Uint8Array.from([0x52, 0x55, ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff]);
}

const MAX_NEIGHBOURS = 1024;

export const L3 = Eth.SIZE;
export const L4 = Eth.SIZE + Ip4.SIZE;

export class GuestLink {
  /** The frame being built; write the L4 part at L4, then call sendIp. */
  readonly buf = new Uint8Array(MAX_FRAME);
  readonly meta: FrameMeta = plainFrame();
  private readonly plain: FrameMeta = plainFrame();
  private port: NicPort | undefined;
  /** The guest's MAC: the NIC's until the guest sends from another. */
  guestMac = new Uint8Array(6);
  /** Guests' MACs by IPv4 address, when several share this network (a switch's NAT uplink). */
  private readonly neighbours = new Map<number, Uint8Array>();
  private readonly queue: Uint8Array[] = [];
  /** Sources waiting for room (TCP connections with data); called on onRxSpace. */
  readonly waiting = new Set<{ flush(): void }>();
  private ipId = 0;
  private readonly gatewayMac: Uint8Array;
  private readonly dnsMac: Uint8Array;

  constructor(readonly counters: Counters, private readonly queueCap: number, gatewayIp: number, private readonly dnsIp: number) {
    this.gatewayMac = virtualMac(gatewayIp);
    this.dnsMac = virtualMac(dnsIp);
  }

  attach(port: NicPort): void {
    this.port = port;
    this.guestMac.set(port.mac);
    port.onRxSpace = () => this.rxSpace();
  }

  get offloads(): NicPort['offloads'] | undefined { return this.port?.offloads; }
  /** Whether frames wait in the queue: new ones go behind them. */
  get blocked(): boolean { return this.queue.length > 0; }

  /** The MAC frames from `src` carry: the DNS address has its own, everything else comes through the gateway. */
  macFor(src: number): Uint8Array { return src === this.dnsIp ? this.dnsMac : this.gatewayMac; }

  /** Remembers which MAC sent from `ip` (frame bytes [at, at+6)); bounded, as a switch's table. */
  learn(ip: number, f: Uint8Array, at: number): void {
    const known = this.neighbours.get(ip);
    if (known && known[0] === f[at] && known[1] === f[at + 1] && known[2] === f[at + 2] && known[3] === f[at + 3] && known[4] === f[at + 4] && known[5] === f[at + 5]) return;
    if (!known && this.neighbours.size >= MAX_NEIGHBOURS) return;
    this.neighbours.set(ip, f.slice(at, at + 6));
  }

  /** The MAC frames to `ip` go to: the guest that sent from it, else the NIC's guest. */
  macOf(ip: number): Uint8Array { return this.neighbours.get(ip) ?? this.guestMac; }

  /** Writes Ethernet and IPv4 headers for an L4 payload of `l4Len` bytes already at L4 in buf; returns the frame length. */
  ipHeader(src: number, dst: number, proto: number, l4Len: number, dstMac: Uint8Array = this.macOf(dst)): number {
    const b = this.buf;
    writeEthernet(b, dstMac, this.macFor(src), EtherType.IPV4);
    b[L3 + Ip4.VER_IHL] = 0x45;
    b[L3 + Ip4.TOS] = 0;
    put16(b, L3 + Ip4.TOTAL_LEN, Ip4.SIZE + l4Len);
    put16(b, L3 + Ip4.ID, this.ipId);
    put16(b, L3 + Ip4.FLAGS_FRAG, IP4_DF);
    b[L3 + Ip4.TTL] = 64;
    b[L3 + Ip4.PROTO] = proto;
    put16(b, L3 + Ip4.CSUM, 0);
    put32(b, L3 + Ip4.SRC, src);
    put32(b, L3 + Ip4.DST, dst);
    put16(b, L3 + Ip4.CSUM, checksum(b, L3, L4));
    return L4 + l4Len;
  }

  /** Advances the IP id by the number of segments a frame stands for. */
  nextIds(n: number): void { this.ipId = (this.ipId + n) & 0xffff; }

  /** Delivers buf[0, len) now, or returns false (nothing kept): for TCP, which sends again later. */
  deliverNow(len: number, meta: FrameMeta): boolean {
    const port = this.port;
    if (!port || this.queue.length > 0 || !port.deliver(this.buf.subarray(0, len), meta)) return false;
    this.counters.txFrames++;
    this.counters.txBytes += len;
    return true;
  }

  /** Delivers buf[0, len) (a plain frame), queueing a copy if the guest has no room; false if dropped. */
  deliverOrQueue(len: number): boolean {
    this.nextIds(1);
    if (this.deliverNow(len, this.plain)) return true;
    if (!this.port || this.queue.length >= this.queueCap) {
      this.counters.drop('rx-queue-full');
      return false;
    }
    this.queue.push(this.buf.slice(0, len));
    return true;
  }

  /** Sends the queued frames, then lets waiting sources go, while the guest has room. */
  rxSpace(): void {
    const port = this.port;
    if (!port) return;
    while (this.queue.length > 0) {
      const f = this.queue[0]!;
      if (!port.deliver(f, this.plain)) return;
      this.queue.shift();
      this.counters.txFrames++;
      this.counters.txBytes += f.length;
    }
    for (const w of this.waiting) {
      this.waiting.delete(w);
      w.flush();
      if (this.waiting.has(w)) return; // it ran out of room again
    }
  }

  /** Sends a UDP datagram to the guest (payload copied from `data`); false if dropped. */
  sendUdp(src: number, srcPort: number, dst: number, dstPort: number, data: Uint8Array, dstMac: Uint8Array = this.macOf(dst)): boolean {
    const b = this.buf;
    const len = Udp.SIZE + data.length;
    if (L4 + len > MAX_FRAME || L4 + len > (this.port?.offloads.maxFrame ?? 0)) {
      this.counters.drop('oversized');
      return false;
    }
    put16(b, L4 + Udp.SRC_PORT, srcPort);
    put16(b, L4 + Udp.DST_PORT, dstPort);
    put16(b, L4 + Udp.LEN, len);
    put16(b, L4 + Udp.CSUM, 0);
    b.set(data, L4 + Udp.SIZE);
    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
    put16(b, L4 + Udp.CSUM, checksum(b, L4, L4 + len, pseudoSum(src, dst, IpProto.UDP, len)) || 0xffff);
    return this.deliverOrQueue(this.ipHeader(src, dst, IpProto.UDP, len, dstMac));
  }

  get queued(): number { return this.queue.length; }

  clear(): void {
    this.queue.length = 0;
    this.waiting.clear();
    this.neighbours.clear();
  }
}
