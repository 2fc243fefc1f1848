/**
 * IPv4 (RFC 791 §3.1), ICMP echo (RFC 792), UDP (RFC 768) and TCP (RFC 9293 §3.1; options:
 * MSS RFC 9293 §3.2, window scale and timestamps RFC 7323, SACK-permitted RFC 2018) headers.
 * All fields big-endian. Addresses are held as unsigned 32-bit numbers.
 */
import { be16, put16 } from './ethernet.js';

/** IPv4 header without options (IHL 5); IHL × 4 gives the real length. */
export const enum Ip4 {
  VER_IHL = 0, // u8: version 4 (high nibble), header length in words (low)
  TOS = 1, // u8: DSCP/ECN
  TOTAL_LEN = 2, // be16: header + payload
  ID = 4, // be16
  FLAGS_FRAG = 6, // be16: reserved, DF (0x4000), MF (0x2000), fragment offset in 8-byte units (0x1fff)
  TTL = 8, // u8
  PROTO = 9, // u8
  CSUM = 10, // be16: header checksum
  SRC = 12, // be32
  DST = 16, // be32
  SIZE = 20,
}

export const IP4_DF = 0x4000;
export const IP4_MF = 0x2000;
export const IP4_FRAG_OFFSET = 0x1fff;

export const enum IpProto { ICMP = 1, TCP = 6, UDP = 17 }

/** ICMP echo request/reply (RFC 792 p.14). */
export const enum Icmp {
  TYPE = 0, // u8: 8 echo request, 0 echo reply
  CODE = 1, // u8
  CSUM = 2, // be16 over the ICMP message
  ID = 4, // be16
  SEQ = 6, // be16
  SIZE = 8,
}
export const enum IcmpType { ECHO_REPLY = 0, DEST_UNREACH = 3, ECHO_REQUEST = 8 }

/** UDP header (RFC 768). */
export const enum Udp {
  SRC_PORT = 0, // be16
  DST_PORT = 2, // be16
  LEN = 4, // be16: header + data
  CSUM = 6, // be16: with the pseudo-header; 0 = none (IPv4 only)
  SIZE = 8,
}

/** TCP header without options (data offset 5). */
export const enum Tcp {
  SRC_PORT = 0, // be16
  DST_PORT = 2, // be16
  SEQ = 4, // be32
  ACK = 8, // be32
  OFF_FLAGS = 12, // be16: data offset in words (high 4 bits), reserved, then CWR ECE URG ACK PSH RST SYN FIN
  WINDOW = 14, // be16
  CSUM = 16, // be16 with the pseudo-header
  URGENT = 18, // be16
  SIZE = 20,
}

export const enum TcpFlag { FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10, URG = 0x20, ECE = 0x40, CWR = 0x80 }

export const enum TcpOpt { END = 0, NOP = 1, MSS = 2, WSCALE = 3, SACK_OK = 4, TIMESTAMP = 8 }
/** RFC 7323 §2.3: shifts above 14 are treated as 14. */
export const TCP_MAX_WSCALE = 14;

/** The options of a SYN that matter here; -1 when absent. */
export interface SynOptions { mss: number; wscale: number }

/** Reads MSS and window scale from the options in [from, to); malformed options end the scan. */
export function parseTcpOptions(b: Uint8Array, from: number, to: number, out: SynOptions): void {
  out.mss = -1;
  out.wscale = -1;
  let i = from;
  while (i < to) {
    const kind = b[i]!;
    if (kind === TcpOpt.END) return;
    if (kind === TcpOpt.NOP) { i++; continue; }
    if (i + 1 >= to) return;
    const len = b[i + 1]!;
    if (len < 2 || i + len > to) return;
    if (kind === TcpOpt.MSS && len === 4) out.mss = be16(b, i + 2);
    else if (kind === TcpOpt.WSCALE && len === 3) out.wscale = Math.min(b[i + 2]!, TCP_MAX_WSCALE);
    i += len;
  }
}

/** Writes MSS (4 bytes), NOP and window scale (3 bytes) when `wscale` ≥ 0; returns the options' length (4 or 8). */
export function writeSynOptions(b: Uint8Array, off: number, mss: number, wscale: number): number {
  b[off] = TcpOpt.MSS;
  b[off + 1] = 4;
  put16(b, off + 2, mss);
  if (wscale < 0) return 4;
  b[off + 4] = TcpOpt.NOP;
  b[off + 5] = TcpOpt.WSCALE;
  b[off + 6] = 3;
  b[off + 7] = wscale;
  return 8;
}

export function parseIp4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1, 5).map(Number);
  if (parts.some(p => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export const formatIp4 = (a: number): string => `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;

/** Sequence-space comparisons modulo 2^32 (RFC 9293 §3.4). */
export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLe = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqDiff = (a: number, b: number): number => (a - b) | 0;
