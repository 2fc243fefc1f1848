/**
 * Test helpers for the switch: frame builders with correct checksums, and a NIC (the device side
 * a SwitchPortBackend serves) that records what it receives, can refuse frames as a guest without
 * receive buffers does, and accepts whatever offloads a test gives it.
 */
import type { FrameMeta, GuestOffloads, NicPort } from '../../devices/virtio/net/backend.js';
import { plainFrame } from '../../devices/virtio/net/backend.js';
import { checksum, pseudoSum } from '../packet/checksum.js';
import { Eth, EtherType, put16, put32 } from '../packet/ethernet.js';
import { Ip4, IpProto, parseIp4 } from '../packet/ip.js';
import { SwitchPortBackend } from './backend.js';
import type { PortHandle } from './channel.js';

export const mac = (n: number): string => `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;
export const macBytes = (s: string): number[] => s.split(':').map(h => parseInt(h, 16));
export const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const ip = (s: string): number => parseIp4(s)!;

export interface L2 { dst: string; src: string; vlan?: number }

/** An Ethernet frame (tagged when `vlan` is given) around `payload`. */
export function ether(l2: L2, type: number, payload: Uint8Array): Uint8Array {
  const tag = l2.vlan === undefined ? 0 : 4;
  const f = new Uint8Array(Eth.SIZE + tag + payload.length);
  f.set(macBytes(l2.dst), 0);
  f.set(macBytes(l2.src), 6);
  if (tag) { put16(f, 12, EtherType.VLAN); put16(f, 14, l2.vlan!); }
  put16(f, 12 + tag, type);
  f.set(payload, Eth.SIZE + tag);
  return f;
}

export interface L4 { srcIp: string; dstIp: string; sport: number; dport: number; payload?: Uint8Array | number }

function ipPacket(proto: number, l4: L4, l4Header: number): Uint8Array {
  const data = typeof l4.payload === 'number' ? Uint8Array.from({ length: l4.payload }, (_, i) => (i * 7 + 3) & 0xff) : l4.payload ?? new Uint8Array(0);
  const p = new Uint8Array(Ip4.SIZE + l4Header + data.length);
  p[0] = 0x45;
  put16(p, Ip4.TOTAL_LEN, Math.min(0xffff, p.length));
  p[Ip4.TTL] = 64;
  p[Ip4.PROTO] = proto;
  put32(p, Ip4.SRC, ip(l4.srcIp));
  put32(p, Ip4.DST, ip(l4.dstIp));
  put16(p, Ip4.CSUM, checksum(p, 0, Ip4.SIZE));
  put16(p, Ip4.SIZE, l4.sport);
  put16(p, Ip4.SIZE + 2, l4.dport);
  p.set(data, Ip4.SIZE + l4Header);
  return p;
}

/** A TCP segment (ACK|PSH) with a correct checksum. */
export function tcp(l2: L2, l4: L4 & { seq?: number }): Uint8Array {
  const p = ipPacket(IpProto.TCP, l4, 20);
  put32(p, Ip4.SIZE + 4, l4.seq ?? 1000);
  p[Ip4.SIZE + 12] = 5 << 4;
  p[Ip4.SIZE + 13] = 0x18;
  put16(p, Ip4.SIZE + 14, 65535);
  put16(p, Ip4.SIZE + 16, checksum(p, Ip4.SIZE, p.length, pseudoSum(ip(l4.srcIp), ip(l4.dstIp), IpProto.TCP, p.length - Ip4.SIZE)));
  return ether(l2, EtherType.IPV4, p);
}

export function udp(l2: L2, l4: L4): Uint8Array {
  const p = ipPacket(IpProto.UDP, l4, 8);
  put16(p, Ip4.SIZE + 4, p.length - Ip4.SIZE);
  return ether(l2, EtherType.IPV4, p);
}

/** An ARP request from `sha`/`spa` for `tpa`. */
export function arp(l2: L2, sha: string, spa: string, tpa: string): Uint8Array {
  const a = new Uint8Array(28);
  put16(a, 0, 1); put16(a, 2, EtherType.IPV4); a[4] = 6; a[5] = 4; put16(a, 6, 1);
  a.set(macBytes(sha), 8); put32(a, 14, ip(spa)); put32(a, 24, ip(tpa));
  return ether(l2, EtherType.ARP, a);
}

/** A DHCPACK (UDP 67 → 68) giving `yiaddr` to `chaddr`. */
export function dhcpAck(l2: L2, chaddr: string, yiaddr: string): Uint8Array {
  const m = new Uint8Array(300);
  m[0] = 2; m[1] = 1; m[2] = 6;
  put32(m, 16, ip(yiaddr));
  m.set(macBytes(chaddr), 28);
  put32(m, 236, 0x63825363);
  m.set([53, 1, 5, 255], 240);
  return udp(l2, { srcIp: '10.0.0.1', dstIp: '255.255.255.255', sport: 67, dport: 68, payload: m });
}

/** A TCPv4 GSO super-frame of `payload` bytes with a partial checksum, as a TSO guest sends it. */
export function gsoFrame(l2: L2, l4: L4, payload: number, mss: number): { frame: Uint8Array; meta: FrameMeta } {
  const frame = tcp(l2, { ...l4, payload });
  const l3 = Eth.SIZE + (l2.vlan === undefined ? 0 : 4);
  const l4at = l3 + Ip4.SIZE;
  // The guest leaves the pseudo-header sum (without the length, as Linux's GSO does) in the checksum field.
  put16(frame, l4at + 16, ~checksum(new Uint8Array(0), 0, 0, pseudoSum(ip(l4.srcIp), ip(l4.dstIp), IpProto.TCP, 0)) & 0xffff);
  const meta: FrameMeta = { ...plainFrame(), needsCsum: true, csumStart: l4at, csumOffset: 16, gso: 1, gsoSize: mss, hdrLen: l4at + 20 };
  return { frame, meta };
}

const ALL: GuestOffloads = { csum: true, tso4: true, tso6: false, maxFrame: 65_550 };
const NONE: GuestOffloads = { csum: false, tso4: false, tso6: false, maxFrame: 1514 };

/** The device side of a guest NIC, for a SwitchPortBackend. */
export class TestNic implements NicPort {
  readonly mac: Uint8Array;
  readonly offloads: GuestOffloads;
  onRxSpace: (() => void) | undefined;
  linkUp = true;
  readonly got: { frame: Uint8Array; meta: FrameMeta }[] = [];
  /** Frames it takes before it says it has no room (Infinity: always room). */
  room = Infinity;

  constructor(macAddr: string, offloads: 'all' | 'none' = 'all') {
    this.mac = Uint8Array.from(macBytes(macAddr));
    this.offloads = { ...(offloads === 'all' ? ALL : NONE) };
  }

  deliver(frame: Uint8Array, meta: FrameMeta): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.got.push({ frame: frame.slice(), meta: { ...meta } });
    return true;
  }

  /** Posts buffers for `n` more frames. */
  give(n: number): void {
    this.room = n;
    this.onRxSpace?.();
  }
}

/** A guest on a port in this thread: the real backend over the real channel, a recording NIC. */
export function guest(handle: PortHandle, macAddr: string, offloads: 'all' | 'none' = 'all'): { nic: TestNic; backend: SwitchPortBackend } {
  const nic = new TestNic(macAddr, offloads);
  const backend = new SwitchPortBackend(handle);
  backend.attach(nic);
  return { nic, backend };
}

/** Lets the channels' wake-ups run: resolves once `cond` holds (or after `ms`, for "nothing arrives" checks). */
export async function settle(cond: () => boolean = () => false, ms = 30): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise(r => setTimeout(r, 1));
}

/** Frames sent through the guest's backend (as its device would). */
export function sendAll(backend: SwitchPortBackend, ...frames: Uint8Array[]): void {
  for (const f of frames) backend.send(f, plainFrame());
}
