/**
 * Turning offloaded frames (FrameMeta: VIRTIO 1.x §5.1.6.2) into wire frames, for backends and
 * tests that need every checksum filled in and every segment at most one MSS: a switch port, a
 * capture, a test's guest.
 *
 * needsCsum: the L4 checksum field holds the pseudo-header sum; the one's-complement sum of the
 * bytes from csumStart to the end of the frame goes there (as Linux's skb_checksum_help does).
 * GSO TCPv4: one large segment behind its headers is cut into gsoSize pieces the way a NIC's TSO
 * engine cuts it (Linux tcp_gso_segment): IP id +1 per piece, sequence numbers advanced, CWR on
 * the first piece only, FIN and PSH on the last only, every checksum recomputed.
 */
import { Gso, type FrameMeta } from '../devices/virtio/net/backend.js';
import { MAX_FRAME } from '../devices/virtio/net/layout.js';
import { checksum, finish, pseudoSum, sumBytes } from './packet/checksum.js';
import { be16, be32, EtherType, parseEthernet, put16, put32 } from './packet/ethernet.js';
import { Ip4, IpProto, Tcp, TcpFlag } from './packet/ip.js';

/** Fills in a needsCsum frame's checksum in place; false when csumStart/csumOffset do not fit the frame. */
export function completeChecksum(frame: Uint8Array, meta: FrameMeta): boolean {
  if (!meta.needsCsum) return true;
  const at = meta.csumStart + meta.csumOffset;
  if (meta.csumStart >= frame.length || at + 2 > frame.length) return false;
  put16(frame, at, finish(sumBytes(frame, meta.csumStart, frame.length)));
  return true;
}

/** Cuts GSO TCPv4 frames into wire segments; holds one scratch frame, reused for every piece. */
export class Tcp4Segmenter {
  private readonly seg = new Uint8Array(MAX_FRAME);
  private readonly eth = new Int32Array(2);

  /**
   * Calls `emit` with each wire segment of `frame` (valid only during the call); a frame that is
   * not GSO only gets its checksum completed. Returns the number of segments, or -1 for a frame
   * whose headers do not describe a TCPv4 segment (nothing is emitted then).
   */
  segment(frame: Uint8Array, meta: FrameMeta, emit: (seg: Uint8Array) => void): number {
    if (meta.gso === Gso.NONE) {
      const s = this.seg.subarray(0, frame.length);
      s.set(frame);
      if (!completeChecksum(s, meta)) return -1;
      emit(s);
      return 1;
    }
    if (meta.gso !== Gso.TCPV4 || meta.gsoSize === 0) return -1;
    const l3 = parseEthernet(frame, this.eth);
    if (l3 < 0 || this.eth[0] !== EtherType.IPV4 || frame.length < l3 + Ip4.SIZE) return -1;
    const ihl = (frame[l3 + Ip4.VER_IHL]! & 0x0f) * 4;
    if (frame[l3 + Ip4.VER_IHL]! >> 4 !== 4 || ihl < Ip4.SIZE || frame[l3 + Ip4.PROTO] !== IpProto.TCP) return -1;
    const l4 = l3 + ihl;
    if (frame.length < l4 + Tcp.SIZE) return -1;
    const thl = (frame[l4 + Tcp.OFF_FLAGS]! >> 4) * 4;
    // The header length is taken from the headers: the guest's hdr_len is only a hint (§5.1.6.2.1).
    const hdrLen = l4 + thl;
    const total = be16(frame, l3 + Ip4.TOTAL_LEN);
    const end = total === 0 ? frame.length : Math.min(frame.length, l3 + total);
    if (thl < Tcp.SIZE || hdrLen > end) return -1;
    const mss = meta.gsoSize;
    const payload = end - hdrLen;
    const src = be32(frame, l3 + Ip4.SRC), dst = be32(frame, l3 + Ip4.DST);
    const id0 = be16(frame, l3 + Ip4.ID), seq0 = be32(frame, l4 + Tcp.SEQ);
    const flags0 = frame[l4 + Tcp.OFF_FLAGS + 1]!;
    const s = this.seg;
    let n = 0;
    for (let off = 0; ; off += mss, n++) {
      const len = Math.min(mss, payload - off);
      const last = off + len >= payload;
      s.set(frame.subarray(0, hdrLen), 0);
      s.set(frame.subarray(hdrLen + off, hdrLen + off + len), hdrLen);
      put16(s, l3 + Ip4.TOTAL_LEN, ihl + thl + len);
      put16(s, l3 + Ip4.ID, (id0 + n) & 0xffff);
      put16(s, l3 + Ip4.CSUM, 0);
      put16(s, l3 + Ip4.CSUM, checksum(s, l3, l4));
      put32(s, l4 + Tcp.SEQ, (seq0 + off) >>> 0);
      let f = flags0;
      if (n > 0) f &= ~TcpFlag.CWR;
      if (!last) f &= ~(TcpFlag.FIN | TcpFlag.PSH);
      s[l4 + Tcp.OFF_FLAGS + 1] = f;
      put16(s, l4 + Tcp.CSUM, 0);
      put16(s, l4 + Tcp.CSUM, finish(sumBytes(s, l4, hdrLen + len, pseudoSum(src, dst, IpProto.TCP, thl + len))));
      emit(s.subarray(0, hdrLen + len));
      if (last) { n++; break; }
    }
    return n;
  }
}
