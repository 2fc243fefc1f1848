/**
 * A switch port: its configuration as users give it (validated here, once), its counters, and its
 * link — what carries frames to the far end. A link is either a channel to a VM thread (channel.ts)
 * or a NetBackend in the daemon's thread (the uplink: the NAT, later), which the port serves as
 * its NicPort, so anything written as a VM's backend plugs into the switch unchanged.
 */
import type { FrameMeta, GuestOffloads, NetBackend, NicPort } from '../../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../../devices/virtio/net/layout.js';
import { IoThrottle } from '../../storage/throttle.js';
import { parseMac } from '../mac.js';
import { Acl, type AclRule } from './acl.js';
import { Off, St, type Endpoint, type Transport } from './channel.js';
import { SwitchError } from './errors.js';
import { parseIp4 } from '../packet/ip.js';
import { mac48 } from './frame.js';
import type { FdbPort } from './fdb.js';

export interface RateLimit {
  /** Bytes per second the port may send into the switch; 0 or absent = unlimited. */
  bps?: number;
  /** Frames per second; 0 or absent = unlimited. */
  pps?: number;
  /** Bytes / frames that may pass at once after a quiet period (default: a tenth of a second's worth). */
  bpsBurst?: number;
  ppsBurst?: number;
}

export interface PortOptions {
  /** Unique within the switch (the daemon uses "<vm>/<nic>"). */
  id: string;
  /** The VM the port belongs to, for stats. */
  vm?: string;
  /** The NIC's MAC ("52:54:00:12:34:56" or 6 bytes). */
  mac: string | Uint8Array;
  /** A fixed IPv4 address: from the start only it may be the port's source address. */
  ip?: string;
  /** Access mode: the port's VLAN (1 to 4094, default 1); its guest sends and receives untagged frames. */
  vlan?: number;
  /** Trunk mode: tagged frames of the allowed VLANs pass; untagged ones belong to `native` (if set). */
  trunk?: { allowed: readonly number[] | string; native?: number };
  /** No spoofing checks (a VM that bridges or routes for others; the uplink). */
  trusted?: boolean;
  /** Default: the switch's. Traffic between two isolated ports is denied unless an ACL rule allows it. */
  isolated?: boolean;
  acl?: readonly AclRule[];
  /** Limits on what the port sends into the switch; excess frames are dropped. */
  rate?: RateLimit;
  /** Addresses the port may teach the learning table (default: the switch's macLimit). */
  macLimit?: number;
  /** Frame transport to the VM thread (default: the switch's). */
  transport?: Transport;
  /** Bytes of each ring, or in flight each way with the message transport (a power of two). */
  ringBytes?: number;
}

export interface DropCounters { acl: number; spoof: number; rate: number; vlan: number; malformed: number; noroute: number; queue: number }

/** rx: frames the port sent into the switch; tx: frames the switch sent out of it (Open vSwitch's sense). */
export interface PortCounters { rxFrames: number; rxBytes: number; txFrames: number; txBytes: number; drops: DropCounters }

/** Where a port's frames go, and what the far end takes. */
export interface PortLink {
  /** Hands a frame to the far end; false when it has no room (dropped). */
  transmit(frame: Uint8Array, meta: FrameMeta): boolean;
  /** What the far end accepts (Off bits), with Off.LINK when it can receive at all. */
  caps(): number;
  maxFrame(): number;
  /** Frames the far end dropped on their way in because the path to the switch was full. */
  farDrops(): number;
  close(): void;
}

const bad = (id: string, message: string): SwitchError => new SwitchError('bad-port', `Port ${id}: ${message}`);

export class SwitchPort implements FdbPort {
  readonly id: string;
  readonly vm: string;
  readonly mac: number;
  readonly macBytes: Uint8Array;
  /** The address the port may use as its source on its own VLAN, -1 until fixed or learned from a DHCPACK. */
  ip: number;
  readonly fixedIp: boolean;
  readonly trunk: boolean;
  /** Access VLAN, or the native VLAN of a trunk (0: none). */
  readonly vlan: number;
  private readonly members = new Uint8Array(4096);
  readonly trusted: boolean;
  readonly isolated: boolean;
  readonly uplink: boolean;
  readonly acl: Acl | undefined;
  readonly throttle: IoThrottle | undefined;
  readonly macLimit: number;
  learned = 0;
  readonly counters: PortCounters = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0,
    drops: { acl: 0, spoof: 0, rate: 0, vlan: 0, malformed: 0, noroute: 0, queue: 0 },
  };
  link!: PortLink;

  constructor(o: PortOptions, defaults: { isolated: boolean; macLimit: number }, uplink: boolean) {
    if (typeof o !== 'object' || o === null) throw new SwitchError('bad-port', 'Port options are an object');
    const id = o.id;
    if (typeof id !== 'string' || id === '' || id.length > 200) throw new SwitchError('bad-port', 'A port needs an id (1 to 200 characters)');
    this.id = id;
    this.vm = typeof o.vm === 'string' ? o.vm : '';
    this.macBytes = macBytes(id, o.mac);
    this.mac = mac48(this.macBytes, 0);
    this.ip = o.ip === undefined ? -1 : (typeof o.ip === 'string' ? parseIp4(o.ip) ?? -1 : -1);
    if (o.ip !== undefined && (typeof o.ip !== 'string' || this.ip <= 0)) throw bad(id, `ip ${JSON.stringify(o.ip)} is not an IPv4 address`);
    this.fixedIp = o.ip !== undefined;
    this.uplink = uplink;
    this.trusted = o.trusted ?? uplink;
    this.isolated = o.isolated ?? (uplink ? false : defaults.isolated);
    if (o.trunk !== undefined) {
      if (o.vlan !== undefined) throw bad(id, 'vlan (access mode) and trunk exclude each other');
      this.trunk = true;
      for (const v of vlanList(id, o.trunk.allowed)) this.members[v] = 1;
      this.vlan = o.trunk.native === undefined ? 0 : vlanId(id, o.trunk.native, 'trunk.native');
      if (this.vlan) this.members[this.vlan] = 1;
    } else {
      this.trunk = false;
      this.vlan = o.vlan === undefined ? 1 : vlanId(id, o.vlan, 'vlan');
      this.members[this.vlan] = 1;
    }
    this.acl = o.acl === undefined ? undefined : new Acl(o.acl, `Port ${id}: acl`);
    this.throttle = o.rate === undefined ? undefined : throttle(id, o.rate);
    this.macLimit = count(id, o.macLimit, 'macLimit') ?? defaults.macLimit;
  }

  isMember(vlan: number): boolean { return this.members[vlan] === 1; }
  /** Frames of `vlan` leave this port tagged (a trunk, and not its native VLAN). */
  tags(vlan: number): boolean { return this.trunk && vlan !== this.vlan; }
}

/** The link to a VM thread. */
export class ChannelLink implements PortLink {
  constructor(private readonly end: Endpoint) {}
  transmit(frame: Uint8Array, meta: FrameMeta): boolean { return this.end.tx.push(frame, meta); }
  caps(): number { return Atomics.load(this.end.state, St.OFFLOADS); }
  maxFrame(): number { return Atomics.load(this.end.state, St.MAX_FRAME); }
  farDrops(): number { return Atomics.load(this.end.state, St.VM_DROPS) + this.end.rx.corrupt; }
  close(): void {
    Atomics.store(this.end.state, St.CLOSED, 1);
    this.end.close();
  }
}

/** The link to a NetBackend in this thread; the backend finishes offloaded frames itself (backend.ts's contract). */
export class BackendLink implements PortLink, NicPort {
  readonly mac: Uint8Array;
  readonly offloads: GuestOffloads = { csum: true, tso4: true, tso6: false, maxFrame: MAX_FRAME };
  onRxSpace: (() => void) | undefined;
  linkUp = true;

  constructor(mac: Uint8Array, private readonly backend: NetBackend, private readonly ingress: (frame: Uint8Array, meta: FrameMeta) => void) {
    this.mac = mac;
  }

  deliver(frame: Uint8Array, meta: FrameMeta): boolean {
    if (this.linkUp) this.ingress(frame, meta);
    return true;
  }

  transmit(frame: Uint8Array, meta: FrameMeta): boolean {
    this.backend.send(frame, meta);
    return true;
  }

  caps(): number { return Off.CSUM | Off.TSO4 | Off.LINK; }
  maxFrame(): number { return MAX_FRAME; }
  farDrops(): number { return 0; }
  close(): void {
    this.linkUp = false;
    this.backend.close();
  }
}

function macBytes(id: string, mac: string | Uint8Array): Uint8Array {
  if (typeof mac === 'string') return parseMac(`Port ${id}: mac`, mac);
  if (!(mac instanceof Uint8Array && mac.length === 6)) throw bad(id, 'mac is a string or 6 bytes');
  if (mac[0]! & 1) throw bad(id, 'mac is a multicast address; a port needs a unicast one');
  return Uint8Array.from(mac);
}

function vlanId(id: string, v: unknown, what: string): number {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4094)) throw bad(id, `${what} ${JSON.stringify(v)} is not a VLAN id (1 to 4094)`);
  return v;
}

/** VLAN ids from [10, 20] or "10,20-30". */
export function vlanList(id: string, list: readonly number[] | string): number[] {
  const out: number[] = [];
  if (typeof list === 'string') {
    for (const part of list.split(',')) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw bad(id, `trunk.allowed ${JSON.stringify(list)}: want a list like "10,20-30"`);
      const lo = vlanId(id, Number(m[1]), 'trunk.allowed'), hi = vlanId(id, Number(m[2] ?? m[1]), 'trunk.allowed');
      for (let v = lo; v <= hi; v++) out.push(v);
    }
  } else if (Array.isArray(list)) for (const v of list) out.push(vlanId(id, v, 'trunk.allowed'));
  else throw bad(id, 'trunk.allowed is a list of VLAN ids');
  if (out.length === 0) throw bad(id, 'trunk.allowed is empty');
  return out;
}

function count(id: string, v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1 << 24)) throw bad(id, `${what} ${JSON.stringify(v)} is not a count`);
  return v;
}

/** Reuses the disks' token buckets: frames are their requests, bytes their bytes. */
function throttle(id: string, r: RateLimit): IoThrottle | undefined {
  const num = (v: unknown, what: string, positive: boolean): number | undefined => {
    if (v === undefined) return undefined;
    if (!(typeof v === 'number' && Number.isFinite(v) && (positive ? v > 0 : v >= 0))) throw bad(id, `rate.${what} ${JSON.stringify(v)} is not a ${positive ? 'positive ' : ''}number`);
    return v;
  };
  const bps = num(r.bps, 'bps', false), pps = num(r.pps, 'pps', false);
  const bpsBurst = num(r.bpsBurst, 'bpsBurst', true), ppsBurst = num(r.ppsBurst, 'ppsBurst', true);
  if ((bpsBurst !== undefined && !bps) || (ppsBurst !== undefined && !pps)) throw bad(id, 'a rate burst needs its rate');
  const t = new IoThrottle({ bps, iops: pps, bpsBurst, iopsBurst: ppsBurst });
  return t.limited ? t : undefined;
}
