/**
 * BOOTP/DHCP messages (RFC 2131 §2, RFC 951) and the options used here (RFC 2132): 1 subnet
 * mask, 3 router, 6 DNS servers, 12 host name, 15 domain name, 50 requested address, 51 lease
 * time, 53 message type, 54 server identifier, 55 parameter request list, 61 client identifier.
 */
import { be32, put32 } from './ethernet.js';

export const enum Dhcp {
  OP = 0, // u8: 1 BOOTREQUEST, 2 BOOTREPLY
  HTYPE = 1, // u8: 1 Ethernet
  HLEN = 2, // u8: 6
  HOPS = 3, // u8
  XID = 4, // be32
  SECS = 8, // be16
  FLAGS = 10, // be16: 0x8000 broadcast
  CIADDR = 12, // be32 client address (when it has one)
  YIADDR = 16, // be32 "your" address
  SIADDR = 20, // be32 next server
  GIADDR = 24, // be32 relay agent
  CHADDR = 28, // u8[16] client hardware address
  SNAME = 44, // u8[64]
  FILE = 108, // u8[128]
  MAGIC = 236, // be32: 0x63825363 (RFC 2131 §3)
  OPTIONS = 240,
  /** BOOTP's minimum message: 300 bytes (RFC 951's 64-byte vendor area). */
  MIN_SIZE = 300,
}

export const DHCP_MAGIC = 0x63825363;
export const DHCP_FLAG_BROADCAST = 0x8000;
export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const enum DhcpOpt {
  PAD = 0, SUBNET_MASK = 1, ROUTER = 3, DNS = 6, HOSTNAME = 12, DOMAIN = 15, REQUESTED_IP = 50,
  LEASE_TIME = 51, MSG_TYPE = 53, SERVER_ID = 54, PARAM_LIST = 55, CLIENT_ID = 61, END = 255,
}

export const enum DhcpType { DISCOVER = 1, OFFER = 2, REQUEST = 3, DECLINE = 4, ACK = 5, NAK = 6, RELEASE = 7, INFORM = 8 }

/** What a client's request says, as far as a one-lease server cares. */
export interface DhcpRequest {
  type: number;
  xid: number;
  flags: number;
  ciaddr: number;
  /** Option 50, or 0. */
  requested: number;
  /** Option 54, or 0. */
  serverId: number;
}

/** Reads a BOOTREQUEST in [off, end); false when it is not a well-formed DHCP request. */
export function parseDhcpRequest(b: Uint8Array, off: number, end: number, out: DhcpRequest): boolean {
  if (end - off < Dhcp.OPTIONS || b[off + Dhcp.OP] !== 1 || b[off + Dhcp.HTYPE] !== 1 || b[off + Dhcp.HLEN] !== 6) return false;
  if (be32(b, off + Dhcp.MAGIC) !== DHCP_MAGIC) return false;
  out.type = 0;
  out.xid = be32(b, off + Dhcp.XID);
  out.flags = (b[off + Dhcp.FLAGS]! << 8) | b[off + Dhcp.FLAGS + 1]!;
  out.ciaddr = be32(b, off + Dhcp.CIADDR);
  out.requested = 0;
  out.serverId = 0;
  let i = off + Dhcp.OPTIONS;
  while (i < end) {
    const code = b[i]!;
    if (code === DhcpOpt.END) break;
    if (code === DhcpOpt.PAD) { i++; continue; }
    if (i + 1 >= end) return false;
    const len = b[i + 1]!;
    const v = i + 2;
    if (v + len > end) return false;
    if (code === DhcpOpt.MSG_TYPE && len === 1) out.type = b[v]!;
    else if (code === DhcpOpt.REQUESTED_IP && len === 4) out.requested = be32(b, v);
    else if (code === DhcpOpt.SERVER_ID && len === 4) out.serverId = be32(b, v);
    i = v + len;
  }
  return out.type !== 0;
}

/** Appends option `code` with a 32-bit value at `i`; returns the next offset. */
export function putOpt32(b: Uint8Array, i: number, code: number, v: number): number {
  b[i] = code;
  b[i + 1] = 4;
  put32(b, i + 2, v);
  return i + 6;
}

/** Appends option `code` with the bytes of an ASCII string (at most 255 of them). */
export function putOptString(b: Uint8Array, i: number, code: number, s: string): number {
  const n = Math.min(s.length, 255);
  b[i] = code;
  b[i + 1] = n;
  for (let k = 0; k < n; k++) b[i + 2 + k] = s.charCodeAt(k) & 0x7f;
  return i + 2 + n;
}
