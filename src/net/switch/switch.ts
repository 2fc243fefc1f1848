/**
 * The virtual switch of one of gasangd's named networks, in the daemon's main thread: an L2
 * learning switch with 802.1Q VLANs (access and trunk ports), per-port ACLs, MAC/IPv4 spoofing
 * protection, ingress rate limits and counters, as a libvirt network or an Open vSwitch bridge.
 *
 * A frame from a port goes through, in order (the first failing step drops it and counts why):
 *   size → rate limit → parse (malformed) → VLAN of the frame (vlan) → source MAC/IP (spoof)
 *   → the sender's ACL, direction out (acl) → learn the source → one destination port, or a
 *   flood to every other port of the VLAN → per destination: link up (noroute), its ACL,
 *   direction in, and the default action (acl) → tag/untag, finish offloads the destination's
 *   guest does not take → its link (queue, when full).
 * Frames are switched untagged with their VLAN number beside them; a tag is put back only on the
 * way out of a trunk port. Nothing here allocates per frame; scratch buffers are reused.
 *
 * ARP and DHCP (UDP 68 → 67 and 67 → 68) bypass ACLs and isolation: a guest needs them to get and
 * announce an address. They are still spoof-checked, and DHCP replies are accepted from trusted
 * ports only (no rogue DHCP server on a VM port); the DHCPACKs they carry teach the switch each
 * port's address (DHCP snooping, as libvirt's IP learning).
 */
import { Gso, plainFrame, type FrameMeta, type NetBackend } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { formatMac } from '../mac.js';
import { Dir, Verdict } from './acl.js';
import { Off, createChannel, type PortHandle, type Transport } from './channel.js';
import { SwitchError } from './errors.js';
import { Fdb } from './fdb.js';
import { completeChecksum, Tcp4Segmenter } from '../offload.js';
import { Eth, EtherType, Vlan, put16 } from '../packet/ethernet.js';
import { IpProto, formatIp4, parseIp4 } from '../packet/ip.js';
import { FrameInfo, TAG_SIZE, dhcpAckAddress, dhcpChaddrAt, isDhcpReply, isDhcpRequest, mac48, parseFrame } from './frame.js';
import { BackendLink, ChannelLink, SwitchPort, type PortCounters, type PortLink, type PortOptions } from './port.js';
import { DEFAULT_RING_BYTES } from './ring.js';

export interface SwitchOptions {
  /** The network's name, for stats. */
  name: string;
  /** What happens to IPv4 (and other non-ARP) traffic no ACL rule decides: default allow. */
  defaultAction?: 'allow' | 'deny';
  /** Ports are isolated unless they say otherwise: VM-to-VM traffic is denied unless allowed by a rule. */
  isolated?: boolean;
  /** Largest IP packet of a plain (non-GSO) frame: default 1500. */
  mtu?: number;
  /** Learned addresses in all (default 4096). */
  fdbCapacity?: number;
  /** Learned addresses are forgotten after this long without a frame from them (default 300 s, as Linux's bridge). */
  fdbAgingMs?: number;
  /** Addresses one port may teach the table (default 256; an untrusted port only ever sends from its own). */
  macLimit?: number;
  /** Transport of new ports' frames (default ring). */
  transport?: Transport;
  ringBytes?: number;
  /** Monotonic clock in ms (default performance.now), for rate limits and aging. */
  now?: () => number;
}

export interface PortStats extends PortCounters {
  id: string;
  vm: string;
  mac: string;
  /** The address the port is held to (fixed or learned), null while unknown. */
  ip: string | null;
  learned: number;
  /** Frames each ACL rule decided, in rule order. */
  aclHits: number[];
}

export interface SwitchStats {
  name: string;
  fdb: { size: number; capacity: number; refused: number };
  ports: PortStats[];
}

/** Frames a port in this thread may hand in while the switch is busy with another (a NAT answering at once). */
const MAX_DEFERRED = 64;
const PLAIN = plainFrame();

export class VirtualSwitch {
  readonly name: string;
  private readonly ports: SwitchPort[] = [];
  private readonly byId = new Map<string, SwitchPort>();
  private readonly byMac = new Map<number, SwitchPort>();
  private readonly fdb: Fdb<SwitchPort>;
  private readonly defaultAllow: boolean;
  private readonly isolated: boolean;
  private readonly mtu: number;
  private readonly macLimit: number;
  private readonly transport: Transport;
  private readonly ringBytes: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private uplink: SwitchPort | undefined;
  private readonly info = new FrameInfo();
  private readonly untagged = new Uint8Array(MAX_FRAME);
  private readonly out = new Uint8Array(MAX_FRAME + TAG_SIZE);
  private readonly segmenter = new Tcp4Segmenter();
  /** Where the segments of the frame being cut go. */
  private segDst: SwitchPort | undefined;
  private readonly emitSegment = (seg: Uint8Array): void => this.send(this.segDst!, seg, PLAIN);
  private readonly inMeta = plainFrame();
  private readonly outMeta = plainFrame();
  /** The sender's ACL verdict on the frame being switched. */
  private outVerdict = Verdict.NONE;
  private busy = false;
  private readonly deferred: { port: SwitchPort; frame: Uint8Array; meta: FrameMeta }[] = [];

  constructor(o: SwitchOptions) {
    const bad = (m: string): SwitchError => new SwitchError('bad-switch', `Network ${String(o?.name)}: ${m}`);
    if (typeof o?.name !== 'string' || o.name === '') throw new SwitchError('bad-switch', 'A network needs a name');
    this.name = o.name;
    if (o.defaultAction !== undefined && o.defaultAction !== 'allow' && o.defaultAction !== 'deny') throw bad('defaultAction is allow or deny');
    this.defaultAllow = o.defaultAction !== 'deny';
    this.isolated = o.isolated === true;
    const int = (v: number | undefined, def: number, lo: number, hi: number, what: string): number => {
      if (v === undefined) return def;
      if (!(Number.isInteger(v) && v >= lo && v <= hi)) throw bad(`${what} ${JSON.stringify(v)} is not an integer from ${lo} to ${hi}`);
      return v;
    };
    this.mtu = int(o.mtu, 1500, 68, MAX_FRAME - Eth.SIZE, 'mtu');
    this.macLimit = int(o.macLimit, 256, 0, 1 << 20, 'macLimit');
    this.fdb = new Fdb(int(o.fdbCapacity, 4096, 1, 1 << 20, 'fdbCapacity'), int(o.fdbAgingMs, 300_000, 1, 2 ** 31, 'fdbAgingMs'));
    if (o.transport !== undefined && o.transport !== 'ring' && o.transport !== 'message') throw bad('transport is ring or message');
    this.transport = o.transport ?? 'ring';
    this.ringBytes = o.ringBytes ?? DEFAULT_RING_BYTES;
    this.now = o.now ?? (() => performance.now());
    this.sweeper = setInterval(() => this.fdb.sweep(this.now()), Math.min(30_000, this.fdb.agingMs)).unref();
  }

  /**
   * Adds a port for a VM thread. Pass the handle to that thread (with handleTransfer(handle) as
   * the transfer list) and open it there with `new SwitchPortBackend(handle)`.
   */
  addPort(o: PortOptions): PortHandle {
    const port = this.newPort(o, false);
    const transport = o.transport ?? this.transport;
    if (transport !== 'ring' && transport !== 'message') throw new SwitchError('bad-port', `Port ${port.id}: transport is ring or message`);
    const { handle, end } = createChannel(port.id, transport, o.ringBytes ?? this.ringBytes);
    this.add(port, new ChannelLink(end));
    end.rx.start((frame, meta) => { this.receive(port, frame, meta); return true; });
    return handle;
  }

  /**
   * Adds a port whose far end is a NetBackend in this thread; the switch is the backend's NicPort.
   * `uplink` marks the network's one way out (the NAT): trusted and not isolated unless told otherwise.
   */
  addLocalPort(o: PortOptions & { uplink?: boolean }, backend: NetBackend): void {
    const uplink = o.uplink === true;
    if (uplink && this.uplink) throw new SwitchError('port-exists', `Network ${this.name} has an uplink already (${this.uplink.id})`);
    const port = this.newPort(o, uplink);
    const link = new BackendLink(port.macBytes, backend, (frame, meta) => this.receive(port, frame, meta));
    this.add(port, link);
    if (uplink) this.uplink = port;
    backend.attach(link);
  }

  removePort(id: string): void {
    const p = this.port(id);
    this.byId.delete(id);
    this.ports.splice(this.ports.indexOf(p), 1);
    this.byMac.delete(p.mac);
    this.fdb.forget(p);
    if (this.uplink === p) this.uplink = undefined;
    p.link.close();
  }

  /** Holds a port to `ip` (or frees it: undefined), e.g. when the daemon assigns an address. */
  setPortIp(id: string, ip: string | undefined): void {
    const p = this.port(id);
    const v = typeof ip === 'string' ? parseIp4(ip) ?? -1 : -1;
    if (ip !== undefined && v <= 0) throw new SwitchError('bad-port', `Port ${id}: ip ${JSON.stringify(ip)} is not an IPv4 address`);
    p.ip = v;
  }

  /** Counters of the switch and its ports, as plain data (for inspect and /metrics). */
  stats(): SwitchStats {
    return {
      name: this.name,
      fdb: { size: this.fdb.size, capacity: this.fdb.capacity, refused: this.fdb.refused },
      ports: this.ports.map(p => {
        const c = p.counters;
        return {
          id: p.id, vm: p.vm, mac: formatMac(p.macBytes), ip: p.ip < 0 ? null : formatIp4(p.ip), learned: p.learned,
          rxFrames: c.rxFrames, rxBytes: c.rxBytes, txFrames: c.txFrames, txBytes: c.txBytes,
          drops: { ...c.drops, queue: c.drops.queue + p.link.farDrops() },
          aclHits: p.acl ? [...p.acl.hits] : [],
        };
      }),
    };
  }

  /** Removes every port (closing the VM ends and local backends) and stops the aging timer. */
  close(): void {
    clearInterval(this.sweeper);
    for (const p of [...this.ports]) this.removePort(p.id);
  }

  private port(id: string): SwitchPort {
    const p = this.byId.get(id);
    if (!p) throw new SwitchError('no-port', `Network ${this.name} has no port ${JSON.stringify(id)}`);
    return p;
  }

  private newPort(o: PortOptions, uplink: boolean): SwitchPort {
    const port = new SwitchPort(o, { isolated: this.isolated, macLimit: this.macLimit }, uplink);
    if (this.byId.has(port.id)) throw new SwitchError('port-exists', `Network ${this.name} has a port ${port.id} already`);
    const other = this.byMac.get(port.mac);
    if (other) throw new SwitchError('port-exists', `Port ${port.id}: MAC ${formatMac(port.macBytes)} is port ${other.id}'s`);
    return port;
  }

  private add(port: SwitchPort, link: PortLink): void {
    port.link = link;
    this.ports.push(port);
    this.byId.set(port.id, port);
    this.byMac.set(port.mac, port);
    this.fdb.addStatic(port.mac, port);
  }

  /** A frame from a port. A port in this thread may answer from inside a delivery: its frames wait until the current one is done. */
  private receive(port: SwitchPort, frame: Uint8Array, meta: FrameMeta): void {
    if (this.busy) {
      if (this.deferred.length >= MAX_DEFERRED) port.counters.drops.queue++;
      else this.deferred.push({ port, frame: frame.slice(), meta: { ...meta } });
      return;
    }
    this.busy = true;
    try {
      this.ingress(port, frame, meta);
      for (let d = this.deferred.shift(); d; d = this.deferred.shift()) this.ingress(d.port, d.frame, d.meta);
    } finally {
      this.busy = false;
    }
  }

  private ingress(p: SwitchPort, frame: Uint8Array, meta: FrameMeta): void {
    const c = p.counters, drops = c.drops, info = this.info;
    const len = frame.length;
    c.rxFrames++;
    c.rxBytes += len;
    if (len < Eth.SIZE || len > MAX_FRAME) { drops.malformed++; return; }
    const now = this.now();
    if (p.throttle && p.throttle.delayMs(len, now) > 0) { drops.rate++; return; }
    if ((frame[Eth.SRC]! & 1) !== 0 || !parseFrame(frame, info) || !this.sane(frame, meta)) { drops.malformed++; return; }
    let vlan = p.vlan;
    if (info.tagged) {
      if (!p.trunk || info.serviceTag) { drops.vlan++; return; }
      if (info.vid !== 0) vlan = info.vid; // VID 0 is a priority tag: the port's native VLAN (802.1Q §6.9.1)
      if (vlan === 0 || vlan === 4095 || !p.isMember(vlan)) { drops.vlan++; return; }
      frame = this.untag(frame, meta);
      meta = this.inMeta;
    } else if (vlan === 0) { drops.vlan++; return; }
    const src = mac48(frame, Eth.SRC);
    if (src === 0) { drops.malformed++; return; }
    if (!p.trusted && !this.genuine(p, src, vlan)) { drops.spoof++; return; }
    if (p.trusted && isDhcpReply(info)) this.snoop(frame);
    this.outVerdict = p.acl && !exempt(info) ? p.acl.check(info, Dir.OUT) : Verdict.NONE;
    if (this.outVerdict === Verdict.DENY) { drops.acl++; return; }
    this.fdb.learn(vlan, src, p, now);
    if ((frame[Eth.DST]! & 1) === 0) {
      const to = this.fdb.lookup(vlan, mac48(frame, Eth.DST), now);
      if (to) {
        if (to === p || !to.isMember(vlan)) drops.noroute++;
        else this.egress(p, to, frame, meta, vlan);
        return;
      }
    }
    const ports = this.ports;
    let sent = 0;
    for (let i = 0; i < ports.length; i++) {
      const q = ports[i]!;
      if (q !== p && q.isMember(vlan)) { this.egress(p, q, frame, meta, vlan); sent++; }
    }
    if (sent === 0) drops.noroute++;
  }

  /** The offload metadata fits the frame, and a plain frame is no giant. */
  private sane(frame: Uint8Array, meta: FrameMeta): boolean {
    const info = this.info, len = frame.length;
    if (meta.needsCsum && (meta.csumStart < info.l3 || meta.csumStart + meta.csumOffset + 2 > len)) return false;
    if (meta.gso === Gso.NONE) return len <= info.l3 + this.mtu;
    return meta.gso === Gso.TCPV4 && info.ipv4 && info.l4 >= 0 && info.proto === IpProto.TCP && meta.gsoSize > 0
      && info.l4 - info.l3 + info.tcpLen + meta.gsoSize <= this.mtu;
  }

  /**
   * The frame comes from the port's own MAC, and from its IPv4 address once that is known. The
   * address belongs to the port's own VLAN (access or native); on a trunk's tagged VLANs the
   * guest's VLAN interfaces have addresses of their own, so there only the MAC is held.
   */
  private genuine(p: SwitchPort, src: number, vlan: number): boolean {
    const info = this.info;
    if (src !== p.mac) return false;
    const ip = vlan === p.vlan ? p.ip : -1;
    if (info.arp) return info.arpSha === p.mac && (ip < 0 || info.arpSpa === ip || info.arpSpa === 0);
    if (!info.ipv4) return true;
    if (isDhcpReply(info)) return false;
    return ip < 0 || info.src === ip || (info.src === 0 && isDhcpRequest(info));
  }

  /** A DHCPACK from a trusted port: the client's port is held to the address from now on. */
  private snoop(frame: Uint8Array): void {
    const info = this.info;
    const at = dhcpChaddrAt(info);
    if (frame.length < at + 6) return;
    const to = this.byMac.get(mac48(frame, at));
    if (!to || to.fixedIp) return;
    const ip = dhcpAckAddress(frame, info);
    if (ip > 0) to.ip = ip;
  }

  private egress(s: SwitchPort, d: SwitchPort, frame: Uint8Array, meta: FrameMeta, vlan: number): void {
    const info = this.info, drops = d.counters.drops;
    const caps = d.link.caps();
    if ((caps & Off.LINK) === 0) { drops.noroute++; return; }
    if (!exempt(info)) {
      const v = d.acl ? d.acl.check(info, Dir.IN) : Verdict.NONE;
      if (v === Verdict.DENY || (v === Verdict.NONE && this.outVerdict === Verdict.NONE && !this.allowedByDefault(s, d))) {
        drops.acl++;
        return;
      }
    }
    let out = frame, m = meta, l3 = info.l3;
    if (d.tags(vlan)) {
      out = this.tag(frame, meta, vlan);
      m = this.outMeta;
      l3 += TAG_SIZE;
    }
    if (m.gso !== Gso.NONE && ((caps & (Off.CSUM | Off.TSO4)) !== (Off.CSUM | Off.TSO4) || out.length > d.link.maxFrame())) {
      this.segDst = d;
      if (this.segmenter.segment(out, m, this.emitSegment) < 0) drops.malformed++;
      return;
    }
    if ((m.needsCsum || m.dataValid) && (caps & Off.CSUM) === 0) {
      if (m.needsCsum) {
        if (out === frame) { this.out.set(frame); out = this.out.subarray(0, frame.length); }
        completeChecksum(out, m);
      }
      m = PLAIN;
    }
    this.send(d, out, m);
  }

  private send(d: SwitchPort, frame: Uint8Array, meta: FrameMeta): void {
    const c = d.counters;
    if (d.link.transmit(frame, meta)) {
      c.txFrames++;
      c.txBytes += frame.length;
    } else c.drops.queue++;
  }

  private allowedByDefault(s: SwitchPort, d: SwitchPort): boolean {
    return !(s.isolated && d.isolated) && this.defaultAllow;
  }

  /** The frame without its tag, in `untagged`; the offsets of `info` and `inMeta` follow it. */
  private untag(frame: Uint8Array, meta: FrameMeta): Uint8Array {
    const u = this.untagged, info = this.info, m = this.inMeta;
    u.set(frame.subarray(0, Vlan.TPID));
    u.set(frame.subarray(Vlan.TYPE), Vlan.TPID);
    info.l3 -= TAG_SIZE;
    if (info.l4 >= 0) info.l4 -= TAG_SIZE;
    Object.assign(m, meta);
    if (m.needsCsum) m.csumStart -= TAG_SIZE;
    if (m.gso !== Gso.NONE) m.hdrLen = Math.max(0, m.hdrLen - TAG_SIZE);
    return u.subarray(0, frame.length - TAG_SIZE);
  }

  /** The frame with an 802.1Q tag for `vlan`, in `out`; `outMeta` follows it. */
  private tag(frame: Uint8Array, meta: FrameMeta, vlan: number): Uint8Array {
    const o = this.out, m = this.outMeta;
    o.set(frame.subarray(0, Vlan.TPID));
    put16(o, Vlan.TPID, EtherType.VLAN);
    put16(o, Vlan.TCI, vlan);
    o.set(frame.subarray(Vlan.TPID), Vlan.TYPE);
    Object.assign(m, meta);
    if (m.needsCsum) m.csumStart += TAG_SIZE;
    if (m.gso !== Gso.NONE) m.hdrLen += TAG_SIZE;
    return o.subarray(0, frame.length + TAG_SIZE);
  }
}

/** ARP and DHCP, which a guest needs to get and announce an address, pass whatever the ACLs say. */
const exempt = (info: FrameInfo): boolean => info.arp || isDhcpRequest(info) || isDhcpReply(info);
