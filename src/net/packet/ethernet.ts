/**
 * Ethernet II (IEEE 802.3 §3.1.1 with the DIX type field), the 802.1Q tag (IEEE 802.1Q §9.3) and
 * ARP for IPv4 over Ethernet (RFC 826). All fields big-endian (network order).
 */

/** Ethernet II header. */
export const enum Eth {
  DST = 0, // u8[6]
  SRC = 6, // u8[6]
  TYPE = 12, // be16: EtherType (≥ 0x0600)
  SIZE = 14,
}

export const enum EtherType { IPV4 = 0x0800, ARP = 0x0806, VLAN = 0x8100, QINQ = 0x88a8, IPV6 = 0x86dd }

/** 802.1Q tag, after the source address: TPID (0x8100) then TCI (PCP:3, DEI:1, VID:12), then the inner EtherType. */
export const enum Vlan {
  TPID = 12, // be16
  TCI = 14, // be16
  TYPE = 16, // be16: the inner EtherType
  SIZE = 18, // the header with one tag
}

export const MAC_SIZE = 6;
/** Largest untagged frame without FCS for a 1500-byte MTU. */
export const ETH_MAX_PLAIN = 1514;

export const be16 = (b: Uint8Array, off: number): number => (b[off]! << 8) | b[off + 1]!;
export const be32 = (b: Uint8Array, off: number): number => ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}
export function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/**
 * Where the payload of a frame starts and which EtherType it has, skipping one 802.1Q tag.
 * Returns the payload offset (14 or 18) with the type in `out[0]` and the VLAN id (or -1) in
 * `out[1]`; -1 for a frame too short to hold its header.
 */
export function parseEthernet(f: Uint8Array, out: Int32Array): number {
  if (f.length < Eth.SIZE) return -1;
  const type = be16(f, Eth.TYPE);
  if (type !== EtherType.VLAN) {
    out[0] = type;
    out[1] = -1;
    return Eth.SIZE;
  }
  if (f.length < Vlan.SIZE) return -1;
  out[0] = be16(f, Vlan.TYPE);
  out[1] = be16(f, Vlan.TCI) & 0x0fff;
  return Vlan.SIZE;
}

export function writeEthernet(f: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  f.set(dst, Eth.DST);
  f.set(src, Eth.SRC);
  put16(f, Eth.TYPE, type);
}

export const isBroadcastMac = (b: Uint8Array, off: number): boolean =>
  (b[off]! & b[off + 1]! & b[off + 2]! & b[off + 3]! & b[off + 4]! & b[off + 5]!) === 0xff;
export const isMulticastMac = (b: Uint8Array, off: number): boolean => (b[off]! & 1) !== 0;
export const BROADCAST_MAC: Uint8Array = new Uint8Array(6).fill(0xff);

/** ARP packet for Ethernet/IPv4 (RFC 826), after the Ethernet header. */
export const enum Arp {
  HTYPE = 0, // be16: 1 = Ethernet
  PTYPE = 2, // be16: 0x0800
  HLEN = 4, // u8: 6
  PLEN = 5, // u8: 4
  OPER = 6, // be16: 1 request, 2 reply
  SHA = 8, // u8[6] sender hardware address
  SPA = 14, // be32 sender protocol address
  THA = 18, // u8[6]
  TPA = 24, // be32
  SIZE = 28,
}

export const enum ArpOp { REQUEST = 1, REPLY = 2 }
