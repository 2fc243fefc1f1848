/**
 * The DHCP server of the user network (RFC 2131 §4.3): a lease per client MAC, the first one the
 * configured guest address (10.0.2.15), later clients the addresses after it (several guests share
 * the network when it is a switch's NAT uplink). DISCOVER → OFFER, REQUEST → ACK (or NAK when it
 * asks for another address or another server), INFORM → ACK without a lease; DECLINE and RELEASE
 * need no answer. Leases never expire while the network lives: the pool is small and bounded.
 */
import { BROADCAST_MAC, put16, put32 } from '../packet/ethernet.js';
import {
  Dhcp, DHCP_CLIENT_PORT, DHCP_FLAG_BROADCAST, DHCP_MAGIC, DHCP_SERVER_PORT, DhcpOpt, DhcpType, parseDhcpRequest,
  putOpt32, putOptString, type DhcpRequest,
} from '../packet/dhcp.js';
import type { Resolved } from './config.js';
import type { GuestLink } from './link.js';

const LEASE_SECONDS = 86400;
const MAX_LEASES = 1024;
const BROADCAST_IP = 0xffffffff;

export class DhcpServer {
  private readonly req: DhcpRequest = { type: 0, xid: 0, flags: 0, ciaddr: 0, requested: 0, serverId: 0 };
  /** The reply, built here and then sent as a UDP payload. */
  private readonly reply = new Uint8Array(576);
  private readonly chaddr = new Uint8Array(6);

  /** Address by client MAC (as a 48-bit number), and the reverse. */
  private readonly leases = new Map<number, number>();
  private readonly taken = new Set<number>();

  constructor(private readonly cfg: Resolved, private readonly link: GuestLink) {}

  /** The client's address: its lease, else the first free one from the guest address up; 0 when the pool is spent. */
  private leaseOf(mac: number): number {
    const known = this.leases.get(mac);
    if (known !== undefined) return known;
    const cfg = this.cfg;
    if (this.leases.size >= MAX_LEASES) return 0; // a guest inventing MACs cannot grow the table
    const last = ((cfg.net | ~cfg.mask) >>> 0) - 1;
    for (let a = cfg.guest; a <= last; a++) {
      if (a === cfg.host || a === cfg.dns || this.taken.has(a)) continue;
      this.leases.set(mac, a);
      this.taken.add(a);
      return a;
    }
    return 0;
  }

  /** Handles the UDP payload [off, end) of a datagram to port 67. */
  handle(b: Uint8Array, off: number, end: number): void {
    const q = this.req;
    if (!parseDhcpRequest(b, off, end, q)) {
      this.link.counters.drop('dhcp');
      return;
    }
    const cfg = this.cfg;
    const c = off + Dhcp.CHADDR;
    const lease = this.leaseOf(((b[c]! * 0x10000 + b[c + 1]! * 0x100 + b[c + 2]!) * 0x1000000) + ((b[c + 3]! << 16) | (b[c + 4]! << 8) | b[c + 5]!));
    if (lease === 0 && q.type !== DhcpType.INFORM) {
      this.link.counters.drop('dhcp'); // no address left: stay silent, as a server with a spent pool
      return;
    }
    let type: number;
    switch (q.type) {
      case DhcpType.DISCOVER: type = DhcpType.OFFER; break;
      case DhcpType.REQUEST: {
        // SELECTING/INIT-REBOOT name the address in option 50, RENEWING/REBINDING in ciaddr (§4.3.2).
        const asked = q.requested || q.ciaddr;
        const otherServer = q.serverId !== 0 && q.serverId !== cfg.host;
        if (otherServer) return; // the client chose another server: stay silent
        type = asked === lease ? DhcpType.ACK : DhcpType.NAK;
        break;
      }
      case DhcpType.INFORM: type = DhcpType.ACK; break;
      case DhcpType.DECLINE: case DhcpType.RELEASE: return;
      default:
        this.link.counters.drop('dhcp');
        return;
    }
    const r = this.reply;
    r.fill(0);
    r[Dhcp.OP] = 2;
    r[Dhcp.HTYPE] = 1;
    r[Dhcp.HLEN] = 6;
    put32(r, Dhcp.XID, q.xid);
    put16(r, Dhcp.FLAGS, q.flags & DHCP_FLAG_BROADCAST);
    const inform = q.type === DhcpType.INFORM;
    if (inform) put32(r, Dhcp.CIADDR, q.ciaddr);
    if (type !== DhcpType.NAK && !inform) put32(r, Dhcp.YIADDR, lease);
    if (type !== DhcpType.NAK) put32(r, Dhcp.SIADDR, cfg.host);
    r.set(b.subarray(off + Dhcp.CHADDR, off + Dhcp.CHADDR + 6), Dhcp.CHADDR);
    this.chaddr.set(b.subarray(off + Dhcp.CHADDR, off + Dhcp.CHADDR + 6));
    put32(r, Dhcp.MAGIC, DHCP_MAGIC);
    let i = Dhcp.OPTIONS;
    r[i++] = DhcpOpt.MSG_TYPE; r[i++] = 1; r[i++] = type;
    i = putOpt32(r, i, DhcpOpt.SERVER_ID, cfg.host);
    if (type !== DhcpType.NAK) {
      if (!inform) i = putOpt32(r, i, DhcpOpt.LEASE_TIME, LEASE_SECONDS);
      i = putOpt32(r, i, DhcpOpt.SUBNET_MASK, cfg.mask);
      i = putOpt32(r, i, DhcpOpt.ROUTER, cfg.host);
      i = putOpt32(r, i, DhcpOpt.DNS, cfg.dns);
      if (cfg.hostname) i = putOptString(r, i, DhcpOpt.HOSTNAME, cfg.hostname);
      if (cfg.domain) i = putOptString(r, i, DhcpOpt.DOMAIN, cfg.domain);
    }
    r[i++] = DhcpOpt.END;
    const len = Math.max(i, Dhcp.MIN_SIZE);
    // §4.1: NAKs and replies to clients without an address (or asking for it) are broadcast.
    const broadcast = type === DhcpType.NAK || (q.flags & DHCP_FLAG_BROADCAST) !== 0;
    const dstIp = inform ? q.ciaddr : broadcast ? BROADCAST_IP : lease;
    this.link.counters.dhcpReplies++;
    this.link.sendUdp(cfg.host, DHCP_SERVER_PORT, dstIp, DHCP_CLIENT_PORT, r.subarray(0, len), broadcast && !inform ? BROADCAST_MAC : this.chaddr);
  }
}
