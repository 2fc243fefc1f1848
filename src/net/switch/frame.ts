/**
 * What the switch reads of a frame's headers, filled into a reused FrameInfo (no allocation per
 * frame). The layouts themselves are declared once, in src/net/packet/. Guest frames are hostile:
 * every offset is checked against the frame's length before it is read.
 */
import { Dhcp, DHCP_CLIENT_PORT, DHCP_MAGIC, DHCP_SERVER_PORT, DhcpOpt, DhcpType } from '../packet/dhcp.js';
import { Arp, Eth, EtherType, Vlan, be16, be32 } from '../packet/ethernet.js';
import { IP4_FRAG_OFFSET, Ip4, IpProto, Tcp, Udp } from '../packet/ip.js';

/** An 802.1Q tag's length, and its VID bits (IEEE 802.1Q-2018 §9.6). */
export const TAG_SIZE = 4;
const VID_MASK = 0x0fff;
const BOOTREPLY = 2;

/** A MAC address as one exact number (48 bits fit in a double). */
export const mac48 = (b: Uint8Array, o: number): number => be16(b, o) * 0x1_0000_0000 + be32(b, o + 2);

/** What the switch knows about one frame; one instance is reused for every frame. */
export class FrameInfo {
  /** The frame came with an 802.1Q (or 802.1ad) tag; `vid` is its VLAN id. */
  tagged = false;
  /** The tag was an 802.1ad service tag (never accepted). */
  serviceTag = false;
  vid = 0;
  /** The ethertype after any tag, and where the L3 header starts in the frame as received. */
  ethertype = 0;
  l3 = 0;
  ipv4 = false;
  proto = -1;
  src = 0;
  dst = 0;
  /** A fragment other than the first: no L4 header in it. */
  laterFragment = false;
  /** Offset of the L4 header, -1 when there is none (or it is not TCP/UDP). */
  l4 = -1;
  sport = -1;
  dport = -1;
  /** TCP header length in bytes (data offset × 4), 0 when not TCP. */
  tcpLen = 0;
  arp = false;
  /** ARP sender hardware and protocol addresses (RFC 826 sha, spa). */
  arpSha = 0;
  arpSpa = 0;
}

/**
 * Fills `info` from `frame` (at least Eth.SIZE bytes). False when the frame is malformed: an L3
 * header that is cut short or inconsistent, or a first fragment too short to hold the L4 ports (a
 * "tiny fragment", which would let ports slip past an ACL).
 */
export function parseFrame(frame: Uint8Array, info: FrameInfo): boolean {
  const len = frame.length;
  info.tagged = info.serviceTag = info.ipv4 = info.arp = info.laterFragment = false;
  info.vid = 0;
  info.proto = info.l4 = info.sport = info.dport = -1;
  info.src = info.dst = info.tcpLen = 0;
  let type = be16(frame, Eth.TYPE);
  let l3 = Eth.SIZE;
  if (type === EtherType.VLAN || type === EtherType.QINQ) {
    if (len < Vlan.SIZE) return false;
    info.tagged = true;
    info.serviceTag = type === EtherType.QINQ;
    info.vid = be16(frame, Vlan.TCI) & VID_MASK;
    type = be16(frame, Vlan.TYPE);
    l3 += TAG_SIZE;
  }
  info.ethertype = type;
  info.l3 = l3;
  if (type === EtherType.ARP) {
    if (len < l3 + Arp.SIZE || be16(frame, l3 + Arp.PTYPE) !== EtherType.IPV4 || frame[l3 + Arp.HLEN] !== 6 || frame[l3 + Arp.PLEN] !== 4) return false;
    info.arp = true;
    info.arpSha = mac48(frame, l3 + Arp.SHA);
    info.arpSpa = be32(frame, l3 + Arp.SPA);
    return true;
  }
  if (type !== EtherType.IPV4) return true;
  if (len < l3 + Ip4.SIZE) return false;
  const verIhl = frame[l3 + Ip4.VER_IHL]!;
  const ihl = (verIhl & 0x0f) * 4;
  if (verIhl >>> 4 !== 4 || ihl < Ip4.SIZE || len < l3 + ihl) return false;
  info.ipv4 = true;
  info.proto = frame[l3 + Ip4.PROTO]!;
  info.src = be32(frame, l3 + Ip4.SRC);
  info.dst = be32(frame, l3 + Ip4.DST);
  if ((be16(frame, l3 + Ip4.FLAGS_FRAG) & IP4_FRAG_OFFSET) !== 0) {
    info.laterFragment = true;
    return true;
  }
  const l4 = l3 + ihl;
  if (info.proto === IpProto.TCP) {
    if (len < l4 + Tcp.SIZE) return false;
    const tcpLen = (frame[l4 + Tcp.OFF_FLAGS]! >>> 4) * 4;
    if (tcpLen < Tcp.SIZE || len < l4 + tcpLen) return false;
    info.tcpLen = tcpLen;
  } else if (info.proto === IpProto.UDP) {
    if (len < l4 + Udp.SIZE) return false;
  } else return true;
  info.l4 = l4;
  info.sport = be16(frame, l4);
  info.dport = be16(frame, l4 + 2);
  return true;
}

/** A DHCP message from a server to a client (UDP 67 → 68). */
export const isDhcpReply = (i: FrameInfo): boolean => i.proto === IpProto.UDP && i.sport === DHCP_SERVER_PORT && i.dport === DHCP_CLIENT_PORT;
/** A DHCP message from a client to a server (UDP 68 → 67). */
export const isDhcpRequest = (i: FrameInfo): boolean => i.proto === IpProto.UDP && i.sport === DHCP_CLIENT_PORT && i.dport === DHCP_SERVER_PORT;

/** Where a DHCP message (UDP at info.l4) keeps the client's hardware address. */
export const dhcpChaddrAt = (info: FrameInfo): number => info.l4 + Udp.SIZE + Dhcp.CHADDR;

/**
 * The address a DHCPACK assigns (yiaddr), or -1 when the frame is not a well-formed BOOTREPLY
 * carrying message type ACK. Options are walked with a bound on the frame's length.
 */
export function dhcpAckAddress(frame: Uint8Array, info: FrameInfo): number {
  const m = info.l4 + Udp.SIZE;
  if (frame.length < m + Dhcp.OPTIONS || frame[m + Dhcp.OP] !== BOOTREPLY || be32(frame, m + Dhcp.MAGIC) !== DHCP_MAGIC) return -1;
  let o = m + Dhcp.OPTIONS;
  while (o < frame.length) {
    const code = frame[o]!;
    if (code === DhcpOpt.END) break;
    if (code === DhcpOpt.PAD) { o++; continue; }
    if (o + 2 >= frame.length) break;
    const n = frame[o + 1]!;
    if (code === DhcpOpt.MSG_TYPE && n === 1) return frame[o + 2] === DhcpType.ACK ? be32(frame, m + Dhcp.YIADDR) : -1;
    o += 2 + n;
  }
  return -1;
}
