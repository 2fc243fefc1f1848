/**
 * The user-mode network backend (QEMU's -nic user, libslirp, passt): the guest sits on a small
 * virtual network whose gateway, DNS relay and DHCP server are this object, and its TCP and UDP
 * flows leave through ordinary host sockets, so no privileges are needed. The gateway address is
 * the host's 127.0.0.1; other destinations are reached as the host reaches them; forwarded host
 * ports open connections into the guest.
 *
 * Everything the guest sends is hostile: send() parses with bounds checks, drops what is wrong
 * (counted in stats() by reason) and never throws. ICMP echo is answered for the gateway and DNS
 * addresses only (other hosts would need raw or ping sockets): other ICMP is dropped, counted.
 */
import type { Server } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import { Gso, type FrameMeta, type NetBackend, type NicPort } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { checksum, verifies } from '../packet/checksum.js';
import { Arp, ArpOp, be16, be32, Eth, EtherType, isMulticastMac, parseEthernet, put16, put32, writeEthernet } from '../packet/ethernet.js';
import { DHCP_SERVER_PORT } from '../packet/dhcp.js';
import { formatIp4, Icmp, IcmpType, Ip4, IP4_FRAG_OFFSET, IP4_MF, IpProto, Udp } from '../packet/ip.js';
import { resolveConfig, type Resolved, type UserNetConfig } from './config.js';
import { DhcpServer } from './dhcp-server.js';
import { Counters, GuestLink, L4, virtualMac } from './link.js';
import { TcpNat } from './tcp.js';
import type { HostSocket, TcpConnState } from './tcp-conn.js';
import { UdpNat } from './udp.js';

export { UserNetError } from './config.js';

/** A TCP flow leaving with its VM (live migration): the guest-side state and the host socket that stays behind to be relayed. */
export interface MovingFlow { state: TcpConnState; socket: HostSocket }

export interface BoundForward { proto: 'tcp' | 'udp'; hostAddr: string; hostPort: number; guestPort: number }

export class UserNet implements NetBackend {
  readonly description: string;
  private readonly counters = new Counters();
  private readonly link: GuestLink;
  private readonly tcp: TcpNat;
  private readonly udp: UdpNat;
  private readonly dhcp: DhcpServer;
  private readonly eth = new Int32Array(2);
  private readonly bound: BoundForward[] = [];
  private closed = false;
  private internalLogged = false;

  private constructor(private readonly cfg: Resolved, private readonly log: (line: string) => void) {
    this.description = `user ${formatIp4(cfg.net)}/${cfg.prefix}`;
    this.link = new GuestLink(this.counters, cfg.limits.rxQueueFrames, cfg.host, cfg.dns);
    this.tcp = new TcpNat(cfg, this.link, log);
    this.udp = new UdpNat(cfg, this.link, log);
    this.dhcp = new DhcpServer(cfg, this.link);
  }

  /** Checks the config and binds the forwarded ports; rejects with a UserNetError naming what failed. */
  static async open(config: UserNetConfig = {}, log: (line: string) => void = () => {}): Promise<UserNet> {
    const net = new UserNet(resolveConfig(config), log);
    try {
      for (const f of net.cfg.forwards) {
        const s: Server | DgramSocket = f.proto === 'tcp' ? await net.tcp.listen(f) : await net.udp.listen(f);
        const a = s.address();
        const port = typeof a === 'object' && a !== null ? a.port : f.hostPort;
        net.bound.push({ proto: f.proto, hostAddr: f.hostAddr, hostPort: port, guestPort: f.guestPort });
      }
    } catch (err) {
      net.close();
      throw err;
    }
    return net;
  }

  /** The forwarded ports as bound (a host port of 0 in the config shows the one the system chose). */
  get forwards(): readonly BoundForward[] { return this.bound; }

  attach(port: NicPort): void {
    this.link.attach(port);
  }

  send(frame: Uint8Array, meta: FrameMeta): void {
    if (this.closed) return;
    try {
      this.receive(frame, meta);
    } catch (err) {
      // A bug here must not become the VM's crash: count it, say it once.
      this.counters.drop('internal');
      if (!this.internalLogged) {
        this.internalLogged = true;
        this.log(`user net: internal error on a guest frame (dropped): ${(err as Error).stack ?? err}`);
      }
    }
  }

  private receive(f: Uint8Array, meta: FrameMeta): void {
    const c = this.counters;
    c.rxFrames++;
    c.rxBytes += f.length;
    if (f.length > MAX_FRAME) { c.drop('oversized'); return; }
    const l3 = parseEthernet(f, this.eth);
    if (l3 < 0) { c.drop('short'); return; }
    if (this.eth[1] !== -1) { c.drop('vlan'); return; } // this network is untagged
    if (!isMulticastMac(f, Eth.SRC)) this.learnMac(f);
    const type = this.eth[0];
    if (type === EtherType.ARP) this.arp(f, l3);
    else if (type === EtherType.IPV4) this.ipv4(f, l3, meta);
    else c.drop('ethertype');
  }

  private learnMac(f: Uint8Array): void {
    const m = this.link.guestMac;
    for (let i = 0; i < 6; i++) {
      if (m[i] !== f[Eth.SRC + i]) { m.set(f.subarray(Eth.SRC, Eth.SRC + 6)); return; }
    }
  }

  private inNet(a: number): boolean {
    const cfg = this.cfg;
    return ((a & cfg.mask) >>> 0) === cfg.net && a !== cfg.net && a !== ((cfg.net | ~cfg.mask) >>> 0);
  }

  /** RFC 826: answer requests for every address of the network but the asker's own (libslirp does too), or only the gateway's and DNS's on a shared network. */
  private arp(f: Uint8Array, a: number): void {
    const c = this.counters;
    if (f.length < a + Arp.SIZE || be16(f, a + Arp.HTYPE) !== 1 || be16(f, a + Arp.PTYPE) !== EtherType.IPV4 || f[a + Arp.HLEN] !== 6 || f[a + Arp.PLEN] !== 4) {
      c.drop('arp');
      return;
    }
    if (be16(f, a + Arp.OPER) !== ArpOp.REQUEST) return; // replies and announcements need no answer
    const spa = be32(f, a + Arp.SPA), tpa = be32(f, a + Arp.TPA);
    if (tpa === spa || !this.inNet(tpa) || (tpa === this.cfg.guest && spa !== 0)) return;
    if (this.cfg.shared && tpa !== this.cfg.host && tpa !== this.cfg.dns) return; // another guest answers for itself
    const b = this.link.buf;
    const mac = virtualMac(tpa);
    writeEthernet(b, f.subarray(a + Arp.SHA, a + Arp.SHA + 6), mac, EtherType.ARP);
    const r = Eth.SIZE;
    put16(b, r + Arp.HTYPE, 1);
    put16(b, r + Arp.PTYPE, EtherType.IPV4);
    b[r + Arp.HLEN] = 6;
    b[r + Arp.PLEN] = 4;
    put16(b, r + Arp.OPER, ArpOp.REPLY);
    b.set(mac, r + Arp.SHA);
    put32(b, r + Arp.SPA, tpa);
    b.set(f.subarray(a + Arp.SHA, a + Arp.SHA + 6), r + Arp.THA);
    put32(b, r + Arp.TPA, spa);
    // Pad to Ethernet's 60-byte minimum, as a NIC would.
    b.fill(0, r + Arp.SIZE, 60);
    c.arpReplies++;
    this.link.deliverOrQueue(60);
  }

  private ipv4(f: Uint8Array, l3: number, meta: FrameMeta): void {
    const c = this.counters, cfg = this.cfg;
    if (f.length < l3 + Ip4.SIZE) { c.drop('short'); return; }
    const vi = f[l3 + Ip4.VER_IHL]!;
    const ihl = (vi & 0x0f) * 4;
    let total = be16(f, l3 + Ip4.TOTAL_LEN);
    if (total === 0 && meta.gso !== Gso.NONE) total = f.length - l3; // a GSO frame may leave it to the length
    if (vi >> 4 !== 4 || ihl < Ip4.SIZE || total < ihl || l3 + total > f.length) { c.drop('ip-header'); return; }
    if (!verifies(f, l3, l3 + ihl)) { c.drop('ip-checksum'); return; }
    if (be16(f, l3 + Ip4.FLAGS_FRAG) & (IP4_MF | IP4_FRAG_OFFSET)) { c.drop('fragment'); return; }
    if (meta.gso !== Gso.NONE && (meta.gso !== Gso.TCPV4 || f[l3 + Ip4.PROTO] !== IpProto.TCP)) { c.drop('guest-offload'); return; }
    const src = be32(f, l3 + Ip4.SRC), dst = be32(f, l3 + Ip4.DST);
    if (this.inNet(src) && src !== cfg.host && src !== cfg.dns && !isMulticastMac(f, Eth.SRC)) this.link.learn(src, f, Eth.SRC);
    const l4 = l3 + ihl, end = l3 + total;
    const proto = f[l3 + Ip4.PROTO];
    const verify = !meta.needsCsum && !meta.dataValid;
    if (proto === IpProto.UDP && end - l4 >= Udp.SIZE && be16(f, l4 + Udp.DST_PORT) === DHCP_SERVER_PORT) {
      if (dst === 0xffffffff || dst === cfg.host) this.dhcp.handle(f, l4 + Udp.SIZE, Math.min(end, l4 + Math.max(Udp.SIZE, be16(f, l4 + Udp.LEN))));
      else c.drop('not-for-us');
      return;
    }
    if (!this.inNet(src) || src === cfg.host || src === cfg.dns) { c.drop('not-for-us'); return; }
    if (proto === IpProto.TCP) this.tcp.input(f, l4, end, src, dst, verify);
    else if (proto === IpProto.UDP) this.udp.input(f, l4, end, src, dst, verify);
    else if (proto === IpProto.ICMP) this.icmp(f, l4, end, src, dst, verify);
    else c.drop('ip-proto');
  }

  /** Echo requests to the gateway or DNS address are answered here (RFC 792); others are dropped, counted. */
  private icmp(f: Uint8Array, l4: number, end: number, src: number, dst: number, verify: boolean): void {
    const c = this.counters, cfg = this.cfg;
    if (end - l4 < Icmp.SIZE || (verify && !verifies(f, l4, end))) { c.drop('icmp'); return; }
    if (f[l4 + Icmp.TYPE] !== IcmpType.ECHO_REQUEST) { c.drop('icmp'); return; }
    if (dst !== cfg.host && dst !== cfg.dns) { c.drop('icmp-remote'); return; }
    const len = end - l4;
    const o = this.link.offloads;
    if (!o || L4 + len > o.maxFrame) { c.drop('oversized'); return; }
    const b = this.link.buf;
    b.set(f.subarray(l4, end), L4);
    b[L4 + Icmp.TYPE] = IcmpType.ECHO_REPLY;
    b[L4 + Icmp.CODE] = 0;
    put16(b, L4 + Icmp.CSUM, 0);
    put16(b, L4 + Icmp.CSUM, checksum(b, L4, L4 + len));
    c.icmpEchoReplies++;
    this.link.deliverOrQueue(this.link.ipHeader(dst, src, IpProto.ICMP, len));
  }

  /**
   * Live migration, at the instant the guest is held: the TCP flows that can move (their state and
   * host sockets, which this network lets go of). UDP flows stay: the host sockets they use are
   * opened again where the guest goes, as its next datagram leaves.
   */
  moveOut(): MovingFlow[] {
    return this.tcp.moveOut();
  }

  /** Flows that moved here (moveOut's, their sockets relayed or the originals given back). */
  moveIn(flows: readonly MovingFlow[]): void {
    this.tcp.moveIn(flows);
  }

  stats(): Record<string, number> {
    return this.counters.snapshot({ tcpFlows: this.tcp.flows, udpFlows: this.udp.flowCount, rxQueued: this.link.queued });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tcp.close();
    this.udp.close();
    this.link.clear();
  }
}

